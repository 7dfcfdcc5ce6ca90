# A hostile LwM2M server for the stateful random test: random well-formed requests (every
# method, object and instance path, content format, Observe, Write-Attributes, Create,
# Delete, Execute) against a registered client on the in-memory transport, with observations
# on everything. Portable: host_tests/test_hostile_props.py drives it with hypothesis under
# CPython, test_hostile.py with a seeded Picker inside the MicroPython VM.
#
# All randomness comes from pick(seq), which returns one element of a non-empty sequence.
# Every list offered to pick() starts with its plainest element, so that hypothesis shrinks
# failures towards simple requests.
import json
import struct
import sys
import time
from binascii import b2a_base64, hexlify

from fakes import ACK, CON, RST, SERVER, registered
from lwm2m import coap, formats, senml, text, tlv

GET, POST, PUT, DELETE, FETCH, PATCH, IPATCH = 1, 2, 3, 4, 5, 6, 7
OBSERVE, URI_PATH, CONTENT_FORMAT, URI_QUERY, ACCEPT = 6, 11, 12, 15, 17

CREATED, DELETED, CHANGED, CONTENT = 0x41, 0x42, 0x44, 0x45
BAD_REQUEST, UNAUTHORIZED, NOT_FOUND, NOT_ALLOWED = 0x80, 0x81, 0x84, 0x85
NOT_ACCEPTABLE, TOO_LARGE, UNSUPPORTED = 0x86, 0x8D, 0x8F

# The codes the TS allows per operation. Never 5.00: nothing here is the application's fault.
_ERRORS = (BAD_REQUEST, UNAUTHORIZED, NOT_FOUND, NOT_ALLOWED)
ALLOWED = {
    "read": (CONTENT,) + _ERRORS + (NOT_ACCEPTABLE,),
    "observe": (CONTENT,) + _ERRORS + (NOT_ACCEPTABLE,),
    "discover": (CONTENT,) + _ERRORS,
    "write": (CHANGED,) + _ERRORS + (TOO_LARGE, UNSUPPORTED),
    "write-attributes": (CHANGED,) + _ERRORS,
    "execute": (CHANGED,) + _ERRORS,
    "create": (CREATED,) + _ERRORS + (UNSUPPORTED,),
    "delete": (DELETED,) + _ERRORS,
    "composite": (CONTENT, CHANGED) + _ERRORS + (NOT_ACCEPTABLE, UNSUPPORTED),
    "other": _ERRORS,
}

# Content-Format and Accept values (None: the option is left out).
FORMATS = (None, 11542, 0, 110, 11543, 42, 40, 1541, 1542, 1543, 60, 112, 9999)
ACCEPTS = (None, None, None, 11542, 0, 110, 11543, 42, 1541, 1542, 1543, 60, 112, 9999, 40)
# Content-Format of writes: mostly the formats a client takes.
WRITE_FORMATS = (11542, 0, 110, 11543, 11542, 0, 110, 1542, 1541, 1543, 42, None, 40, 60, 112, 9999)

NAN = float("nan")
INF = float("inf")
_INT64 = 1 << 63
_UINT64 = 1 << 64
TYPES = "siufbotlc"
# Candidate values by type letter: right ones first, then the edges, then out of range.
VALUES = {
    "s": ("x", "", "Cel", "+02:00", "-05:30", "U", "UQ", "0", "\u00e9\u4e2d\u0661", 'a"b\\c\x00\x7f/',
          "9" * 200),
    "c": ("</3/0>", "", "x"),
    "i": (1, 0, -1, 5, 60, 300, 86400, 127, -129, 70000, 1 << 31, -_INT64, _INT64 - 1, _INT64,
          -_INT64 - 1, 10 ** 30, 1700000000),
    "t": (1700000000, 0, -1, _INT64 - 1, _INT64),
    "u": (1, 0, _UINT64 - 1, 1 << 32, _UINT64, -1),
    "f": (21.5, 0.0, -0.0, -40.25, 1e308, 5e-324, 3.4028235e38, 1e39, NAN, INF, -INF,
          (1 << 53) + 1, 7),
    "b": (True, False),
    "o": (b"\x00\xff", b"", b"abc" * 20),
    "l": ((3, 0), (0, 0), (65535, 65535), (65536, 0), (-1, 1)),
}
ATTR_NAMES = ("pmin", "pmax", "gt", "lt", "st", "epmin", "epmax", "colour", "")
ATTR_VALUES = ("10", "0", "1", "60", "-1", "2.5", "-5.5", "1e3", "nan", "inf", "-inf", "\u0661",
               "", None, "99999999999999999999", "0x10", " 5", "1_0", "\u0663.\u0665")
EXEC_PAYLOADS = (b"", b"0", b"5='x'", b"0='a',1", b"\xff\xfe", b"x" * 60)
GARBAGE = (b"\x00", b"\xff", b"[", b"{}", b"[]", b"null", b'{"e":[]}', b"\xc8\x00", b"\x81\xa1\x00",
           b"</3/0>", b"\xe4\xb8", b'[{"n":"0","v":1e999}]', b'{"bn":"/","e":[{"n":"3/0/0"}]}')

# How often each kind of request is made, in parts of 26.
_WEIGHTS = {
    "read": 4, "observe": 3, "discover": 2, "write": 6, "write-attributes": 3, "execute": 2,
    "create": 3, "delete": 2, "other": 1,
}
KINDS = []
for _k in ("read", "write", "observe", "write-attributes", "discover", "execute", "create",
           "delete", "other"):
    KINDS += [_k] * _WEIGHTS[_k]
KINDS = tuple(KINDS)


class Picker:
    # A seeded pick() for the VM (and for replaying a VM seed under CPython): xorshift32, so
    # both interpreters draw the same sequence from the same seed.
    def __init__(self, seed):
        self.state = (seed * 2654435761 + 0x9E3779B9) & 0xFFFFFFFF or 1

    def getrandbits(self, k):
        # k: 1 to 32
        x = self.state
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self.state = x
        return x >> (32 - k)

    def pick(self, seq):
        n = len(seq)
        if n == 1:
            return seq[0]
        bits = 1
        while (1 << bits) < n:
            bits += 1
        while True:
            i = self.getrandbits(bits)
            if i < n:
                return seq[i]


def classify(msg):
    # The operation of a request, decided exactly as lwm2m.serve.Serve._dispatch does.
    code = msg.code
    depth = len(msg.get_all(URI_PATH))
    if code == GET:
        if msg.get(ACCEPT) == 40:
            return "discover"
        return "observe" if msg.get(OBSERVE) is not None else "read"
    if code == PUT:
        if msg.payload or msg.get(CONTENT_FORMAT) is not None:
            return "write"
        return "write-attributes"
    if code == POST:
        if depth == 1:
            return "create"
        return "execute" if depth == 3 else "write"
    if code == DELETE:
        return "delete"
    if (code == FETCH or code == IPATCH) and depth == 0:
        return "composite"
    return "other"


# -- the model ---------------------------------------------------------------------------


def _type_ok(rtype, v):
    if rtype == "s" or rtype == "c":
        return type(v) is str
    if rtype == "i" or rtype == "t":
        return type(v) is int and -_INT64 <= v < _INT64
    if rtype == "u":
        return type(v) is int and 0 <= v < _UINT64
    if rtype == "f":
        return (type(v) is int or type(v) is float) and v - v == 0
    if rtype == "b":
        return type(v) is bool
    if rtype == "o":
        return type(v) is bytes
    if rtype == "l":
        if type(v) is not tuple and type(v) is not list or len(v) != 2:
            return False
        for x in v:
            if type(x) is not int or not 0 <= x <= 65535:
                return False
        return True
    return False  # an executable (no type) or an unknown type letter


_TYPE_NAMES = {"s": "String", "c": "Corelnk", "i": "Integer", "t": "Time", "u": "Unsigned",
               "f": "finite Float", "b": "Boolean", "o": "Opaque (bytes)", "l": "Objlnk"}


def check_model(model):
    # Every stored value has a defined resource, the resource's multiplicity and its type;
    # instance ids are 0..65534. Returns the problems found, [] when consistent.
    problems = []
    for oid in sorted(model.objects):
        obj = model.objects[oid]
        if not obj.multiple and len(obj.instances) > 1:
            problems.append("/%d is single-instance but has instances %r" % (oid, sorted(obj.instances)))
        for iid in sorted(obj.instances):
            inst = obj.instances[iid]
            where = "/%d/%r" % (oid, iid)
            if type(iid) is not int or not 0 <= iid <= 65534:
                problems.append("%s: instance id out of 0..65534" % where)
            if inst.iid != iid or inst.obj is not obj:
                problems.append("%s: instance says it is /%d/%r" % (where, inst.obj.oid, inst.iid))
            for rid in list(inst.values):
                value = inst.values[rid]
                rpath = "%s/%r" % (where, rid)
                if rid not in obj.resources:
                    problems.append("%s: value %r stored for an undefined resource" % (rpath, value))
                    continue
                rtype = obj.rtype(rid)
                if obj.allows(rid, "E") or not rtype:
                    problems.append("%s: value %r stored for an executable resource" % (rpath, value))
                    continue
                if obj.is_multiple(rid):
                    if type(value) is not dict:
                        problems.append("%s: multiple resource holds %r, not {riid: value}" % (rpath, value))
                        continue
                    items = [(riid, value[riid], "%s/%r" % (rpath, riid)) for riid in value]
                else:
                    if type(value) is dict:
                        problems.append("%s: single resource holds instances %r" % (rpath, value))
                        continue
                    items = [(0, value, rpath)]
                for riid, v, vpath in items:
                    if type(riid) is not int or not 0 <= riid <= 65535:
                        problems.append("%s: resource instance id out of 0..65535" % vpath)
                    if not _type_ok(rtype, v):
                        problems.append("%s: %r is not %s" % (vpath, v, _TYPE_NAMES[rtype]))
    return problems


def _free_iid(obj):
    iid = 0
    while obj is not None and iid in obj.instances:
        iid += 1
    return iid


# -- paths -------------------------------------------------------------------------------
#
# A request is generated either sane (about half of them: paths that exist, values of the
# resource's type and multiplicity, a content format the target takes, no damage) so that
# requests get deep into the client, or free to go wrong anywhere.

_ODD = (False, False, False, True)


class Gen:
    def __init__(self, pick, model, sane):
        self.pick = pick
        self.model = model
        self.sane = sane

    def odd(self):
        # Should this choice go wrong? Never for a sane request, one time in four otherwise.
        return not self.sane and self.pick(_ODD)


def _rids(obj, inst, kind):
    # The resource ids of a kind: R readable (with a value, when inst is given), W writable,
    # E executable, C creatable (anything but executable), N neither R, W nor E.
    out = []
    for rid in sorted(obj.resources):
        flags = obj.resources[rid]
        if kind == "R":
            ok = obj.allows(rid, "R") and (inst is None or inst.has(rid))
        elif kind == "C":
            ok = not obj.allows(rid, "E")
        elif kind == "N":
            ok = not flags & 0x70
        else:
            ok = obj.allows(rid, kind)
        if ok:
            out.append(rid)
    return out


def pick_oid(g):
    if g.odd():
        return g.pick((9, 65535, 2, 5))
    oids = [oid for oid in sorted(g.model.objects) if oid != 0]
    if not g.sane:
        oids.append(0)  # Security: 4.01 whatever the request
    return g.pick(oids)


def pick_iid(g, obj, create=False):
    existing = sorted(obj.instances) if obj is not None else []
    if g.odd() or (create and g.pick((False, False, True))):
        return g.pick(existing + [65535, 65534, 0, 7])
    if create or not existing:
        return _free_iid(obj)
    return g.pick(existing)


def pick_rid(g, obj, inst, prefer):
    if obj is None:
        return g.pick((0, 1, 5700, 65535))
    if g.odd():
        kind = g.pick(("R", "W", "E", "N", "C", "undefined"))
        if kind == "undefined":
            return g.pick((65535, 999, 5699, 31))
        ids = _rids(obj, None, kind)
    else:
        ids = _rids(obj, inst, prefer) or _rids(obj, None, prefer)
    return g.pick(ids) if ids else g.pick(sorted(obj.resources))


def pick_riid(g, obj, inst, rid):
    value = inst.values.get(rid) if inst is not None else None
    existing = sorted(value) if type(value) is dict else []
    if existing and not g.odd():
        return g.pick(existing + [len(existing)])
    return g.pick((0, 1, 7, 65535))


def pick_path(g, depths, prefer):
    depth = g.pick(depths)
    if depth == 0 and g.sane:
        depth = 2
    if depth == 0:
        return ()
    oid = pick_oid(g)
    obj = g.model.object(oid)
    if depth == 1:
        return (oid,)
    iid = pick_iid(g, obj)
    if depth == 2:
        return (oid, iid)
    inst = obj.instances.get(iid) if obj is not None else None
    rid = pick_rid(g, obj, inst, prefer)
    if depth == 3 or (g.sane and not obj.is_multiple(rid)):
        return (oid, iid, rid)
    return (oid, iid, rid, pick_riid(g, obj, inst, rid))


def path_str(path):
    return "/" + "/".join([str(i) for i in path])


# -- payloads ----------------------------------------------------------------------------


def _value(g, path):
    # (type letter, value) for a record at path: the resource's type, or any when odd.
    obj = g.model.object(path[0])
    rtype = ""
    if obj is not None and len(path) > 2 and path[2] in obj.resources:
        rtype = obj.rtype(path[2])
    if not rtype or g.odd():
        rtype = g.pick(TYPES)
    return rtype, g.pick(VALUES[rtype])


def _resource_records(g, path):
    # The records of one resource: its instances when multiple, one value when single, and
    # (odd) the other way round.
    obj = g.model.object(path[0])
    multiple = obj is not None and path[2] in obj.resources and obj.is_multiple(path[2])
    if g.odd():
        multiple = not multiple
    if not multiple:
        rtype, value = _value(g, path)
        return [(path, rtype, value)]
    out = []
    riids = []
    for _ in range(g.pick((1, 2, 0, 3))):
        riid = g.pick((0, 1, 2, 65535))
        if riid in riids and not g.odd():
            continue  # a repeat only when odd
        riids.append(riid)
        rtype, value = _value(g, path + (riid,))
        out.append((path + (riid,), rtype, value))
    return out


def _instance_records(g, path, prefer):
    obj = g.model.object(path[0])
    inst = obj.instances.get(path[1]) if obj is not None else None
    out = []
    rids = []
    for _ in range(g.pick((1, 2, 3, 0))):
        rid = pick_rid(g, obj, inst, prefer)
        if rid in rids and not g.odd():
            continue
        rids.append(rid)
        out += _resource_records(g, path + (rid,))
    return out


def _nearby(g, path):
    # The same path with one id changed.
    i = g.pick(list(range(len(path))))
    return path[:i] + (g.pick((0, 1, 5700, 65535)),) + path[i + 1:]


def make_records(g, base, iid=None):
    # Records for a Write to base (or a Create of instance iid under base).
    n = len(base)
    if n == 1:
        records = _instance_records(g, base + (iid if iid is not None else 0,), "C")
    elif n == 2 or n == 0:
        records = _instance_records(g, base if n else (3, 0), "W")
    elif n == 3:
        records = _resource_records(g, base)
    else:
        rtype, value = _value(g, base)
        records = [(base, rtype, value)]
        if g.odd():
            records = [(base[:3], rtype, value)]
    if records and g.odd():
        i = g.pick(list(range(len(records))))
        path, rtype, value = records[i]
        records[i] = (_nearby(g, path), rtype, value)
    return records


def _raw(value):
    # Bytes for a TLV value its type cannot pack: as close to the value as possible.
    if type(value) is bytes:
        return value
    if type(value) is str:
        return value.encode()
    if type(value) is bool:
        return b"\x01" if value else b"\x00"
    if type(value) is float:
        return struct.pack(">d", value)
    if type(value) is int:
        size = 1
        while size < 32 and not -(1 << (8 * size - 1)) <= value < 1 << (8 * size - 1):
            size += 1
        return (value & ((1 << (8 * size)) - 1)).to_bytes(size, "big")
    return b"".join([(x & 0xFFFFFF).to_bytes(3, "big") for x in value])  # a bad Objlnk


def _tlv_value(value, rtype):
    try:
        return bytes(tlv.pack(value, rtype))
    except Exception:  # out of range for its type: struct.error, ValueError, OverflowError
        return _raw(value)


def tlv_payload(records, first):
    # TLV of the records, with the entries at the top at path index `first` (1: Object
    # Instances, 2: Resources, 3: bare Resource Instances), as formats does for a target.
    top = []
    boxes = {}
    for path, rtype, value in records:
        last = len(path) - 1
        into = top
        for i in range(min(first, last), last):
            key = path[: i + 1]
            box = boxes.get(key)
            if box is None:
                box = boxes[key] = []
                into.append((tlv.OBJECT_INSTANCE if i == 1 else tlv.MULTIPLE_RESOURCE, path[i], box))
            into = box
        kind = tlv.RESOURCE if last == 2 else tlv.RESOURCE_INSTANCE
        into.append((kind, path[last], _tlv_value(value, rtype)))
    return bytes(tlv.encode(top))


def _json_number(value):
    if type(value) is float and value - value != 0:
        if value != value:
            return "NaN"
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)


def _json_text(value, lw):
    # The JSON of one value the project's encoder refused (NaN, inf, out of range).
    if type(value) is bool:
        return "true" if value else "false"
    if type(value) is int or type(value) is float:
        return _json_number(value)
    if type(value) is str:
        return json.dumps(value)
    if type(value) is bytes:
        s = str(b2a_base64(value, newline=False), "ascii")
        return '"%s"' % (s if lw else s.replace("+", "-").replace("/", "_").rstrip("="))
    return '"%d:%d"' % (value[0], value[1])


def _prefix(paths):
    first = paths[0]
    n = len(first)
    for p in paths[1:]:
        m = 0
        while m < n and m < len(p) and p[m] == first[m]:
            m += 1
        n = m
    return first[:n]


def _value_field(rtype, lw):
    # the field holding a value of this type (TS Core 7.4.4 and 7.4.5)
    if rtype in "iuft":
        return "v"
    if lw:
        return {"b": "bv", "l": "ov"}.get(rtype, "sv")
    return {"b": "vb", "l": "vlo", "o": "vd"}.get(rtype, "vs")


def json_payload(base, records, lw):
    # SenML JSON (lw False) or LwM2M JSON of the records, with the base name the longest
    # common prefix of the target and the records' paths.
    prefix = _prefix([base] + [r[0] for r in records])
    try:
        return formats.encode(11543, prefix, records) if lw else formats.encode(110, prefix, records)
    except Exception:  # a value the encoder refuses: written by hand
        pass
    n = len(prefix)
    parts = []
    for path, rtype, value in records:
        name = "/".join([str(i) for i in path[n:]])
        parts.append('{"n":"%s","%s":%s}' % (name, _value_field(rtype, lw), _json_text(value, lw)))
    bn = path_str(prefix) + "/"
    if lw:
        return ('{"bn":"%s","e":[%s]}' % (bn, ",".join(parts))).encode()
    if not parts:
        return b"[]"
    return ('[{"bn":"%s",%s]' % (bn, ",".join(parts)[1:])).encode()


def text_payload(records, opaque):
    if not records:
        return b""
    _path, rtype, value = records[0]
    if opaque and type(value) is bytes:
        return value
    try:
        return bytes(text.encode(value, rtype))
    except Exception:
        if type(value) is float:
            return _json_number(value).encode()
        if type(value) is tuple:
            return ("%d:%d" % value).encode()
        return str(value).encode()


def encode_payload(g, fmt, base, records):
    # The records in content format fmt (any number: unknown ones get something plausible):
    # by lwm2m.formats as the client itself would write them, or built here from the
    # project's codecs where formats refuses (records outside base, values out of range).
    if fmt in _KNOWN and g.pick((True, False)):
        try:
            return bytes(formats.encode(fmt, base, records))
        except Exception:
            pass
    if fmt in (11542, 1542):
        n = len(base)
        first = g.pick((1, 2)) if n == 1 else g.pick((2, 2, 1)) if n == 2 else g.pick((2, 2, 3)) if n >= 3 else 2
        return tlv_payload(records, first)
    if fmt in (110, 11543, 1543):
        return json_payload(base, records, fmt != 110)
    if fmt in (0, 1541, 42):
        return text_payload(records, fmt == 42)
    if fmt == 40:
        return b"</3/0>;pmin=1"
    return g.pick(GARBAGE)


_KNOWN = (11542, 1542, 110, 11543, 1543, 0, 1541, 42)


def mutate(g, payload):
    how = g.pick(("truncate", "flip", "flip", "empty", "append"))
    if how == "empty" or not payload:
        return b""
    if how == "truncate":
        return payload[: g.pick(list(range(len(payload))))]
    if how == "append":
        return payload + g.pick(GARBAGE)
    data = bytearray(payload)
    for _ in range(g.pick((1, 2, 3))):
        i = g.pick(list(range(len(data))))
        data[i] ^= g.pick((1, 0x80, 0xFF, 0x20, 0x40))
    return bytes(data)


def write_format(g, base):
    # A Content-Format for a Write or Create to base: one the target takes when sane.
    if not g.sane:
        return g.pick(WRITE_FORMATS)
    if len(base) < 3:
        return g.pick((11542, 110, 11543, 1542, 1543))
    formats = [11542, 0, 110, 11543, 1542, 1541, 1543]
    obj = g.model.object(base[0])
    if obj is not None and base[2] in obj.resources and obj.rtype(base[2]) == "o":
        formats.append(42)
    return g.pick(formats)


def make_payload(g, base, cf, iid=None):
    fmt = cf
    if cf is None or g.odd():
        fmt = g.pick(FORMATS)
    if fmt is None:
        return g.pick((b"", b"", b"1", b"x"))
    records = make_records(g, base, iid)
    payload = encode_payload(g, fmt, base, records)
    if g.odd():
        payload = mutate(g, payload)
    return payload[:1100]  # one datagram well within the client's 1280-byte buffer


# -- requests ----------------------------------------------------------------------------

SANE_ATTRS = ("pmin", "pmax", "gt", "lt", "st")
SANE_ATTR_VALUES = ("10", "0", "1", "60", "2.5", "-5.5", "30", "25", None)


def _message(code, path):
    msg = coap.Message(CON, code)
    for i in path:
        msg.add(URI_PATH, str(i))
    return msg


def make_request(pick, model, tokens=()):
    # One random well-formed request: (operation as the client classifies it, coap.Message).
    # The caller sets the message ID; the token is one of `tokens` (those of observations)
    # or another.
    g = Gen(pick, model, pick((True, False)))
    kind = pick(KINDS)
    token = b"\x5e"
    if tokens and pick((False, False, True)):
        token = pick(tokens)
    if kind == "read" or kind == "observe" or kind == "discover":
        path = pick_path(g, (3, 2, 1, 4, 0), "R")
        msg = _message(GET, path)
        if kind == "observe":
            msg.add(OBSERVE, pick((0, 1, 0)))
            if tokens:
                token = pick(tokens + [b"\x5e", b"new" + bytes((len(tokens) & 0xFF,))])
        accept = 40 if kind == "discover" else pick(ACCEPTS)
        if accept is not None:
            msg.add(ACCEPT, accept)
    elif kind == "write":
        code = pick((PUT, POST))
        path = pick_path(g, (3, 2, 4, 2, 3, 0, 1), "W")
        msg = _message(code, path)
        cf = write_format(g, path)
        if cf is not None:
            msg.add(CONTENT_FORMAT, cf)
        msg.payload = make_payload(g, path, cf)
    elif kind == "write-attributes":
        path = pick_path(g, (3, 2, 1, 4, 0), "R")
        msg = _message(PUT, path)
        for _ in range(pick((1, 2, 3, 0))):
            if g.sane:
                name, value = pick(SANE_ATTRS), pick(SANE_ATTR_VALUES)
            else:
                name, value = pick(ATTR_NAMES), pick(ATTR_VALUES)
            msg.add(URI_QUERY, name if value is None else name + "=" + value)
    elif kind == "execute":
        path = pick_path(g, (3, 3, 3, 2, 4), "E")
        msg = _message(POST, path)
        if pick((False, True)):
            msg.payload = pick(EXEC_PAYLOADS[:4] if g.sane else EXEC_PAYLOADS)
        if g.odd():
            msg.add(CONTENT_FORMAT, pick(FORMATS[1:]))
    elif kind == "create":
        path = (pick_oid(g),)
        obj = model.object(path[0])
        msg = _message(POST, path)
        cf = write_format(g, path)
        if cf is not None:
            msg.add(CONTENT_FORMAT, cf)
        msg.payload = make_payload(g, path, cf, pick_iid(g, obj, True))
    elif kind == "delete":
        which = pick(("instance", "core", "any"))
        if which == "core":
            path = pick(((3, 0), (1, 0), (0, 0), (4, 0)))
        else:
            path = pick_path(g, (2,) if which == "instance" else (2, 1, 3, 0, 4), "R")
        msg = _message(DELETE, path)
    else:
        code = pick((FETCH, PATCH, IPATCH))
        path = pick_path(g, (3, 2, 1, 4, 0), "R")
        msg = _message(code, path)
        cf = pick(FORMATS)
        if cf is not None:
            msg.add(CONTENT_FORMAT, cf)
            msg.payload = make_payload(g, path, cf)
    msg.token = token
    return classify(msg), msg


# -- the sequence ------------------------------------------------------------------------


def describe(msg):
    options = ", ".join(["%d=%s" % (number, _show(raw)) for number, raw in msg.options])
    return "%s %s mid=%d token=%s [%s] payload=%s" % (
        coap.code_name(msg.code), msg.path() if _utf8(msg) else "?", msg.mid,
        str(hexlify(msg.token), "ascii"), options, _show(msg.payload))


def _utf8(msg):
    try:
        msg.path()
        return True
    except Exception:
        return False


def _show(raw):
    try:
        s = str(raw, "utf-8")
        if s.isprintable() if hasattr(s, "isprintable") else True:
            return repr(s) if len(s) < 200 else repr(s[:200]) + "..."
    except Exception:
        pass
    h = str(hexlify(raw), "ascii")
    return "0x" + (h if len(h) < 400 else h[:400] + "...")


def format_exception(exc):
    try:
        import traceback

        return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    except ImportError:  # MicroPython
        import io

        buf = io.StringIO()
        sys.print_exception(exc, buf)
        return buf.getvalue()


# Log lines that tell of an exception inside the client (contained so that the loop goes on,
# but nothing here should raise one).
LOGGED_FAILURES = ("Traceback", "handler failed", "callback failed", "deferred action failed")


class Failure(AssertionError):
    pass


class Sequence:
    # One registered client, the server's side of its transport and the clock.
    def __init__(self, pick):
        self.pick = pick
        # Observations on everything: about 40, so with the default cap of 16 per server most
        # are answered as plain Reads; with 64 all are held.
        self.client, self.peer, _reg = registered(limits={"observations": pick((64, 16))})
        self.model = self.client.model
        self.now = 10
        self.mid = 0x7000
        self.history = []  # what was sent so far, for failure messages
        self.last = None  # (operation, request, answer code) of the last request
        self.tokens = []
        self.lines_seen = 0
        self.client.observer.con_interval = pick((86400000, 20000))
        sensor = self.model.add_instance(3303, 0, {5700: 21.5, 5701: "Cel"})
        self.model.add_instance(3311, 0, {5850: False})
        self.sensor = sensor
        self.poll(100)
        self.poll(200)

    def fail(self, what, detail=""):
        steps = "\n".join(self.history[-20:])
        raise Failure("%s\n%s\nlast requests (newest last):\n%s" % (what, detail, steps))

    def poll(self, delta):
        # Polls once, delta ms later, and plays the server's part in what the client sent:
        # answers registration requests, acknowledges or resets notifications. Returns the
        # ACKs the client sent (the answers to requests).
        self.now = time.ticks_add(self.now, delta)
        try:
            self.client.poll(self.now)
        except Exception as exc:
            self.fail("poll() raised %r" % (exc,), format_exception(exc))
        try:
            sent = self.peer.take()
        except Exception as exc:
            self.fail("the client sent a datagram that does not decode: %r" % (exc,), format_exception(exc))
        acks = []
        for msg in sent:
            if msg.type == ACK:
                acks.append(msg)
            elif msg.code and msg.code < 32:  # a request: registration traffic
                if msg.type != CON:
                    self.fail("the client sent a NON request: %s" % describe(msg))
                path = msg.path()
                if msg.code == POST and path == "/rd":
                    self.peer.answer(msg, CREATED, "/rd/ab12")
                elif msg.code == POST and path.startswith("/rd/"):
                    self.peer.answer(msg, CHANGED)
                elif msg.code == DELETE and path.startswith("/rd/"):
                    self.peer.answer(msg, DELETED)
                else:
                    self.fail("unexpected request from the client: %s" % describe(msg))
            elif msg.code >> 5 in (2, 4, 5):  # a notification
                if msg.code >> 5 == 5:
                    self.fail("a notification went out as %s: %s" % (coap.code_name(msg.code), describe(msg)),
                              "\n".join(self.client.lines[self.lines_seen:]))
                how = self.pick(("ack", "ack", "ack", "ignore", "rst")) if msg.type == CON else \
                    self.pick(("ignore", "ignore", "ignore", "ignore", "rst"))
                if how == "ack":
                    self.peer.inject(coap.Message(ACK, 0, msg.mid))
                elif how == "rst":
                    self.peer.inject(coap.Message(RST, 0, msg.mid))
            elif msg.type != RST:
                self.fail("unexpected message from the client: %s" % describe(msg))
        lines = self.client.lines
        for line in lines[self.lines_seen:]:
            for sign in LOGGED_FAILURES:
                if sign in line:
                    self.fail("the client logged an exception it contained", line)
        self.lines_seen = len(lines)
        return acks

    def request(self, op, msg, delta):
        self.mid += 1
        msg.type = CON
        msg.mid = self.mid
        self.history.append("%s: %s" % (op, describe(msg)))
        self.peer.inject(msg)
        acks = self.poll(delta)
        mine = [a for a in acks if a.mid == msg.mid]
        if len(mine) != 1 or len(acks) != 1:
            self.fail("%s: expected one ACK with mid %d, got %s" % (op, msg.mid, [describe(a) for a in acks]))
        answer = mine[0]
        self.history[-1] += " -> %s" % coap.code_name(answer.code)
        if answer.code not in ALLOWED[op]:
            detail = "answer: %s" % describe(answer)
            if answer.code >> 5 == 5:
                detail += "\n" + self._replay(msg)
            self.fail("%s answered %s; the TS allows %s" % (
                op, coap.code_name(answer.code), ", ".join([coap.code_name(c) for c in ALLOWED[op]])), detail)
        problems = check_model(self.model)
        if problems:
            self.fail("%s left the model inconsistent:\n  %s" % (op, "\n  ".join(problems)))
        self.last = (op, msg, answer.code, self.now)
        return answer

    def repeat(self):
        # The last request again, as a retransmission: same MID, so the same answer (RFC
        # 7252 4.5), and the request is not acted on twice.
        op, msg, code, _at = self.last
        self.history.append("(again) %s: %s" % (op, describe(msg)))
        self.peer.inject(msg)
        acks = self.poll(self.pick((0, 1000)))
        if len(acks) != 1 or acks[0].mid != msg.mid:
            self.fail("%s repeated: expected one ACK with mid %d, got %s" % (op, msg.mid, [describe(a) for a in acks]))
        self.history[-1] += " -> %s" % coap.code_name(acks[0].code)
        if acks[0].code != code:
            self.fail("%s repeated with the same MID answered %s, first %s" % (
                op, coap.code_name(acks[0].code), coap.code_name(code)))
        problems = check_model(self.model)
        if problems:
            self.fail("%s repeated left the model inconsistent:\n  %s" % (op, "\n  ".join(problems)))

    def _replay(self, msg):
        # The exception behind a 5.00: the request dispatched once more, on today's state.
        try:
            self.client.serve.handle(msg, SERVER)
        except Exception as exc:
            return "replayed, the request raises:\n" + format_exception(exc)
        return "replayed, the request no longer raises"

    def observe_everything(self):
        # GET Observe=0 on every object, instance and readable resource with a value.
        model = self.model
        paths = []
        for oid in sorted(model.objects):
            obj = model.objects[oid]
            paths.append((oid,))
            for iid in sorted(obj.instances):
                inst = obj.instances[iid]
                paths.append((oid, iid))
                for rid in sorted(obj.resources):
                    if obj.allows(rid, "R") and inst.has(rid):
                        paths.append((oid, iid, rid))
        for i in range(len(paths)):
            msg = _message(GET, paths[i])
            msg.add(OBSERVE, 0)
            accept = self.pick(ACCEPTS)
            if accept is not None:
                msg.add(ACCEPT, accept)
            msg.token = b"o" + bytes((i >> 8, i & 0xFF))
            self.tokens.append(msg.token)
            self.request(classify(msg), msg, self.pick((0, 10, 100)))

    def step(self):
        pick = self.pick
        action = pick(("request", "request", "request", "request", "request", "poll", "change", "repeat"))
        # a repeat within EXCHANGE_LIFETIME (247 s), after which it is a new request
        if action == "repeat" and self.last is not None and time.ticks_diff(self.now, self.last[3]) < 240000:
            self.repeat()
            return
        if action == "poll":
            delta = pick((1000, 0, 5000, 30000, 100000, 250000, 86400000))
            self.history.append("(poll %d ms later)" % delta)
            if self.poll(delta):
                self.fail("an ACK went out with no request")
            return
        if action == "change":
            # the application changes a value under observation
            self.history.append("(the application sets /3303/0/5700)")
            try:
                if 0 in self.model.objects[3303].instances:
                    self.model.instance(3303, 0).set(5700, pick((22.0, 21.5, -3.25, 40.0)))
            except Exception as exc:
                self.fail("Instance.set raised %r" % (exc,), format_exception(exc))
            if self.poll(pick((0, 1000))):
                self.fail("an ACK went out with no request")
            return
        op, msg = make_request(pick, self.model, self.tokens)
        self.request(op, msg, pick((0, 1, 10, 100, 500, 1000, 2000, 5000)))


def run_sequence(pick, steps):
    # A registered client observed on everything, then `steps` random requests and polls.
    seq = Sequence(pick)
    seq.observe_everything()
    for _ in range(steps):
        seq.step()
    return seq


def main(args):
    # node tools/mpvm.mjs hostile [FIRST_SEED [SEEDS [STEPS]]]: runs seeded sequences in the
    # VM (or under CPython) and prints each failure and a count of the answers.
    first = int(args[0]) if args else 1
    count = int(args[1]) if len(args) > 1 else 1
    steps = int(args[2]) if len(args) > 2 else 15
    failed = 0
    answers = 0
    for seed in range(first, first + count):
        try:
            seq = run_sequence(Picker(seed).pick, steps)
            answers += len([h for h in seq.history if " -> " in h])
        except AssertionError as exc:
            failed += 1
            print("seed %d: %s" % (seed, exc))
    print("hostile: %d sequences, %d failed, %d answers checked in those that passed" % (count, failed, answers))
    return 1 if failed else 0
