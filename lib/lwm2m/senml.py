# SenML JSON (content format 110: RFC 8428 as LwM2M 1.1 uses it), SenML CBOR (112: the same
# records as CBOR maps with RFC 8428's integer labels, opaque values as byte strings) and the
# older LwM2M JSON (11543: TS 1.0 6.4.4), both ways, between a payload and records (path, rtype, value); path
# is a tuple (oid, iid, rid) or (oid, iid, rid, riid), base the request target (1 to 4 ids).
#
# Encoding: the base name is the target with a trailing slash ("/3/0/") and each name the
# rest of the path ("0", "6/1"); when the only record is the target itself, the base name is
# the path without the slash and the name "" (so bn + n is still a clean path). Values by
# type: Integer, Unsigned, Float and Time as numbers in "v"; Boolean in "vb" ("bv"); String
# and Corelnk in "vs" ("sv"); Objlnk "oid:iid" in "vlo" ("ov"); Opaque in "vd" as base64url
# without padding, as RFC 8428 4.3 says and OMA confirmed (OMA_LwM2M_for_Developers#553),
# and in LwM2M JSON in "sv" as standard padded base64 (TS 1.0).
#
# Decoding: "bn" may appear on any record and holds for the records after it; bn + n must be
# an absolute path "/oid/iid/rid[/riid]" (one trailing slash tolerated) under the target.
# Only the value field of the resource's type may be present (4.00 otherwise). Integer and
# Unsigned take a JSON number with an integral value (5.0 is 5) within 64 bits; Time any
# finite number within int64, fractions dropped; Float any finite number. "vd" takes base64
# in either alphabet, padded or not. Time fields ("bt", "t") and unknown fields are ignored;
# unknown fields ending in "_" (must-understand, RFC 8428 4.4) are refused. Every failure is
# lwm2m.Error 4.00, except what rtype_of raises itself (4.04 for an unknown resource).
import json

from lwm2m import Error, text

from micropython import const

_BAD_REQUEST = const(0x80)  # 4.00
# The value field of each kind of value, by _field(): numbers, strings, booleans, opaque,
# object links; in SenML (JSON names, then CBOR labels, "vlo" staying a text label), in
# LwM2M JSON, and as the JSON writer puts them.
_KEYS = const(("v", "vs", "vb", "vd", "vlo"))
_CBOR_KEYS = const((2, 3, 4, 8, "vlo"))
_LW_KEYS = const(("v", "sv", "bv", "sv", "ov"))
_PUT_KEYS = const((b'","v":', b'","vs":', b'","vb":', b'","vd":', b'","vlo":'))
_PUT_LW_KEYS = const((b'","v":', b'","sv":', b'","bv":', b'","sv":', b'","ov":'))
# SenML CBOR labels (RFC 8428 6) of the fields read here, by their JSON names
_LABELS = {-2: "bn", -3: "bt", 0: "n", 2: "v", 3: "vs", 4: "vb", 6: "t", 8: "vd"}


def _bad(expected):
    raise Error(_BAD_REQUEST, "JSON: expected " + expected)


def _field(rtype):
    # the index of a resource type's value field in the tables above
    if rtype in "iuft":
        return 0
    if rtype == "b":
        return 2
    if rtype == "l":
        return 4
    return 3 if rtype == "o" else 1


def _ids(path):
    return "/".join([str(i) for i in path])


# -- encoding ---------------------------------------------------------------------------


def _put_ids(out, path, start):
    # path[start:] as "6/1"
    for i in range(start, len(path)):
        if i > start:
            out.append(47)  # /
        text.put_int(out, path[i])


def _put_json(out, rtype, value, lw):
    # the JSON text of one value; ValueError or TypeError for a value its type cannot hold
    if rtype == "b":
        out += b"true" if value else b"false"
    elif rtype in "sc":
        if type(value) is not str:
            raise TypeError(rtype)
        out += json.dumps(value).encode()
    else:
        raw = text.encode(value, rtype)  # range-checked; ValueError for a bad type
        if rtype in "iuft":
            out += raw
            return
        if rtype == "o" and not lw:
            raw = raw.replace(b"+", b"-").replace(b"/", b"_").rstrip(b"=")
        out.append(34)  # "
        out += raw
        out.append(34)


class Writer:
    # SenML JSON, LwM2M JSON or SenML CBOR (cf 110, 11543 or 112) for a Read of base, written
    # record by record into one bytearray: no record list, no strings of whole records.
    def __init__(self, cf, base):
        self.cf = cf
        self.base = base
        self.out = bytearray()
        self.count = 0
        self.alone = False  # the first record is the target itself: no other may follow

    def _put_base_name(self, out, alone):
        # "/3/0/" for the records under /3/0, "/3/0/9" for that resource alone (the only
        # record is the target itself), "/" for no base (a Send or composite read, whose
        # names are then "3/0/9" and the like)
        out.append(47)  # /
        if self.base:
            _put_ids(out, self.base, 0)
            if not alone:
                out.append(47)

    def _put_head(self, out, alone, lw):
        # What comes before the first record's name: the base name, in LwM2M JSON ahead of
        # the array "e", in SenML JSON in the first record
        out += b'{"bn":"' if lw else b'[{"bn":"'
        self._put_base_name(out, alone)
        out += b'","e":[' if lw else b'",'

    def add(self, path, rtype, value):
        out = self.out
        first = not self.count
        if self.alone:
            raise ValueError("%r after the target itself" % (path,))
        self.alone = path == self.base
        self.count += 1
        if self.cf == 112:
            return self._add_cbor(out, path, rtype, value, first)
        lw = self.cf == 11543
        if first:
            self._put_head(out, self.alone, lw)
            out += b'{"n":"' if lw else b'"n":"'
        else:
            out += b',{"n":"'
        _put_ids(out, path, len(self.base))
        out += (_PUT_LW_KEYS if lw else _PUT_KEYS)[_field(rtype)]
        _put_json(out, rtype, value, lw)
        out.append(125)  # }

    def _add_cbor(self, out, path, rtype, value, first):
        # One map, its keys in the order of their encodings (deterministic CBOR, as
        # lwm2m.cbor sorts them): n (0), then v, vs, vb or vd (2 to 8), then bn (-2), then
        # "vlo".
        from lwm2m import cbor

        out.append(0xA3 if first else 0xA2)  # a map of 3 or 2 pairs
        out.append(0)  # n
        name = bytearray()
        _put_ids(name, path, len(self.base))
        cbor.put_text(out, name)
        key = _CBOR_KEYS[_field(rtype)]
        item = cbor_item(rtype, value)
        if key != "vlo":
            cbor.encode(key, out)
            cbor.encode(item, out)
        if first:
            out.append(0x21)  # bn
            name = bytearray()
            self._put_base_name(name, self.alone)
            cbor.put_text(out, name)
        if key == "vlo":
            cbor.encode(key, out)
            cbor.encode(item, out)

    def end(self):
        out = self.out
        if self.cf == 112:
            from lwm2m import cbor

            head = bytearray()
            cbor.head(head, 4, self.count)  # the array of the maps, now that they are counted
            out[0:0] = head
        elif self.cf == 11543:
            if not self.count:
                self._put_head(out, False, True)
            out += b"]}"
        else:
            out += b"]" if self.count else b"[]"
        return out


def cbor_item(rtype, value):
    # The CBOR item of one value (also content format 60's); ValueError or TypeError for a value its type cannot hold
    if rtype == "b":
        return bool(value)
    if rtype in "sc":
        if type(value) is not str:
            raise TypeError(rtype)
        return value
    raw = text.encode(value, rtype)  # range-checked; ValueError for a bad type
    if rtype == "f":
        return float(value)
    if rtype in "iut":
        return int(value)
    return bytes(value) if rtype == "o" else str(raw, "ascii")


# -- decoding ---------------------------------------------------------------------------


def _load(payload):
    try:
        return json.loads(str(payload, "utf-8"))
    except Exception:  # ValueError, UnicodeError, and RecursionError on CPython
        _bad("UTF-8 JSON")


def _str(obj, key, default):
    s = obj.get(key, default)
    if type(s) is not str:
        _bad('a string in "%s"' % key)
    return s


def _path(name, base, shortest=3):
    # bn + n as a tuple of ids, checked to lie under base: a resource or resource instance,
    # or (shortest 1) any path from an object down
    p = name[1:].split("/")
    if p[-1] == "":
        p.pop()
    path = []
    for s in p:
        if len(s) > 5 or not text.isdec(s) or int(s) > 65535:
            break
        path.append(int(s))
    path = tuple(path)
    if name[:1] != "/" or len(path) != len(p) or not shortest <= len(path) < 5:
        _bad("a %spath, not '%s'" % ("resource " if shortest == 3 else "", name))
    if path[: len(base)] != base:
        _bad("a path under /%s, not '%s'" % (_ids(base), name))
    return path


def _number(x, rtype):
    if type(x) is int and rtype == "f":
        try:
            x = float(x)  # inf on MicroPython for a huge int
        except OverflowError:  # CPython; x stays an int and is refused below
            pass
    if type(x) is float:
        if x - x != 0:  # inf and nan
            _bad("a finite number")
        if rtype == "f":
            return x
        n = int(x)
        if n != x and rtype != "t":
            _bad("an integer")
        x = n
    if type(x) is not int or rtype == "f":  # bool is not int in either interpreter
        _bad("a number")
    lo = 0 if rtype == "u" else -(1 << 63)
    if lo <= x < lo + (1 << 64):
        return x
    _bad("a number within 64 bits")


def _value(x, rtype, lw, raw_opaque=False):
    if rtype == "b":
        if x is True or x is False:
            return x
        _bad("true or false")
    if rtype in "iuft":
        return _number(x, rtype)
    if raw_opaque and rtype == "o":
        if type(x) is not bytes:
            _bad("a byte string")
        return x
    if type(x) is not str:
        _bad("a string")
    try:
        raw = x.encode()
    except UnicodeError:  # CPython: a lone surrogate from a \ud800 escape
        _bad("UTF-8")
    if rtype in "sc":
        return x
    if rtype == "o" and not lw:
        raw = raw.replace(b"-", b"+").replace(b"_", b"/")
        raw += b"=" * (-len(raw) % 4)
    return text.decode(raw, rtype)  # Opaque, Objlnk; ValueError for an unknown type


def _records(base, recs, bn, rtype_of, lw, cbor=False):
    out = []
    for rec in recs:
        if type(rec) is not dict:
            _bad("an object per record")
        for k in rec:
            if type(k) is not str or k[-1:] == "_":  # MicroPython's json allows {1: 2}
                _bad("known fields, not %r" % k)
        bn = _str(rec, "bn", bn)
        name = bn + _str(rec, "n", "")
        path = _path(name, base)
        rtype = rtype_of(path)
        key = (_LW_KEYS if lw else _KEYS)[_field(rtype)]
        for k in _LW_KEYS if lw else _KEYS:
            if (k in rec) != (k == key):
                _bad('"%s" and no other value for %s' % (key, name))
        out.append((path, rtype, _value(rec[key], rtype, lw, cbor)))
    return out


def decode(base, payload, rtype_of):
    recs = _load(payload)
    if type(recs) is not list:
        _bad("an array")
    return _records(base, recs, "", rtype_of, False)


def cbor_value(item, rtype):
    # The value of a decoded CBOR item (content format 60's), checked as SenML CBOR's are.
    return _value(item, rtype, False, True)


def _cbor_records(payload):
    # The records of a SenML CBOR payload with their integer labels named as in JSON;
    # unknown integer labels are ignored, as unknown fields are in JSON (only text labels
    # ending in "_" must be understood).
    from lwm2m import cbor

    recs = cbor.decode(payload)
    if type(recs) is not list:
        _bad("an array")
    named = []
    for rec in recs:
        if type(rec) is not dict:
            _bad("an object per record")
        named.append({_LABELS[k] if type(k) is int else k: v for k, v in rec.items()
                      if type(k) is str or k in _LABELS})
    return named


def decode_cbor(base, payload, rtype_of):
    return _records(base, _cbor_records(payload), "", rtype_of, False, True)


def decode_paths(payload, cbor):
    # The paths a Read-Composite names (SenML JSON, or SenML CBOR when cbor): records with a
    # name and no value, each "/oid[/iid[/rid[/riid]]]".
    recs = _cbor_records(payload) if cbor else _load(payload)
    if type(recs) is not list:
        _bad("an array")
    paths = []
    bn = ""
    for rec in recs:
        if type(rec) is not dict:
            _bad("an object per record")
        bn = _str(rec, "bn", bn)
        paths.append(_path(bn + _str(rec, "n", ""), (), 1))
    return paths


def decode_lwm2m(base, payload, rtype_of):
    top = _load(payload)
    if type(top) is not dict or type(top.get("e")) is not list:
        _bad('an object with an array "e"')
    return _records(base, top["e"], _str(top, "bn", ""), rtype_of, True)
