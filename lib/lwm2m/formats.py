# Content-format dispatch: records (path, rtype, value) to a payload and back, by the
# content-format number, for a request target `base` (a tuple of 1 to 4 ids).
#
# Formats: plain text 0, octet-stream 42 and CBOR 60 (one resource or resource instance: the
# target itself), TLV 11542, SenML JSON 110, SenML CBOR 112 and LwM2M JSON 11543. The pre-1.0 numbers 1541 (text),
# 1542 (TLV) and 1543 (JSON) are the same formats, both ways: a server that asks with Accept:
# 1542 gets TLV, and the caller labels it with the number that was asked for.
#
# Errors: a format that cannot answer a read (text for an instance, any unknown number)
# gives 4.06 from encode(); a format that cannot carry a write gives 4.15 from decode(),
# also text or octet-stream sent to an object or an instance (the number is known but not
# for that target; text.decode_opaque answers a non-opaque resource the same way); a payload
# that is malformed or names other ids than the target gives 4.00.
#
# TLV decoding is liberal about nesting: an Object Instance entry may wrap the resources of
# a write to /O/I, Resource Instance entries may stand bare in a write to /O/I/R, as long as
# every id agrees with the target. A Create without an instance id in TLV carries bare
# resources: decode it with the instance id the client chose as the target. TLV encoding
# writes only what the records hold: an instance or multiple resource with no records
# (nothing readable) does not appear.
from lwm2m import Error, text, tlv

from micropython import const

_TEXT = const(0)
_OPAQUE = const(42)
_CBOR = const(60)
_SENML_JSON = const(110)
_SENML_CBOR = const(112)
_TLV = const(11542)
_JSON = const(11543)
_OLD_TEXT = const(1541)
_OLD_TLV = const(1542)
_OLD_JSON = const(1543)

_BAD_REQUEST = const(0x80)  # 4.00
_NOT_ACCEPTABLE = const(0x86)  # 4.06
_UNSUPPORTED = const(0x8F)  # 4.15

# TLV entry kinds, as in tlv.py
_OBJECT_INSTANCE = const(0)
_RESOURCE_INSTANCE = const(1)
_MULTIPLE_RESOURCE = const(2)
_RESOURCE = const(3)
# Path length of an entry by kind: Object Instance 2, Resource Instance 4, the others 3
_DEPTH = const(b"\x02\x04\x03\x03")


def _same(cf):
    # the number of a pre-1.0 format in 1.0
    if cf == _OLD_TEXT:
        return _TEXT
    if cf == _OLD_TLV:
        return _TLV
    if cf == _OLD_JSON:
        return _JSON
    return cf


def default_format(base, single):
    # what a Read without Accept answers in: plain text for one value, TLV otherwise
    return _TEXT if single and len(base) > 2 else _TLV


def encode(cf, base, records):
    cf = _same(cf)
    if cf == _TLV:
        return bytes(tlv.encode(_entries(base, records)))
    if cf == _SENML_JSON or cf == _JSON or cf == _SENML_CBOR:
        from lwm2m import senml  # loaded when a server first uses SenML

        if cf == _SENML_CBOR:
            return senml.encode_cbor(base, records)
        return senml.encode(base, records) if cf == _SENML_JSON else senml.encode_lwm2m(base, records)
    if (cf == _TEXT or cf == _OPAQUE or cf == _CBOR) and len(records) == 1 and records[0][0] == base:
        path, rtype, value = records[0]
        if cf == _CBOR:
            from lwm2m import cbor, senml

            return bytes(cbor.encode(senml.cbor_item(rtype, value)))
        return text.encode_opaque(value, rtype) if cf else text.encode(value, rtype)
    raise Error(_NOT_ACCEPTABLE, "cannot answer %r in content format %r" % (base, cf))


def under(path, base):
    # Does path start with base? Compared in place: a slice would make a tuple per record.
    if len(path) < len(base):
        return False
    for i in range(len(base)):
        if path[i] != base[i]:
            return False
    return True


def _entries(base, records):
    # TLV entries: Object Instances for /O, resources for /O/I, one Resource or Multiple
    # Resource for /O/I/R, one Resource Instance for /O/I/R/RI
    n = len(base)
    first = n - 1 if n > 2 else n  # index in the path of the top-level entries' ids
    top = []
    boxes = {}  # path prefix -> the entry list of its Object Instance or Multiple Resource
    for path, rtype, value in records:
        last = len(path) - 1
        if not under(path, base) or not 1 < last < 4:
            raise ValueError(path)
        into = top
        for i in range(first, last):
            box = boxes.get(path[: i + 1])
            if box is None:
                box = boxes[path[: i + 1]] = []
                into.append((_OBJECT_INSTANCE if i == 1 else _MULTIPLE_RESOURCE, path[i], box))
            into = box
        into.append((_RESOURCE if last == 2 else _RESOURCE_INSTANCE, path[last], tlv.pack(value, rtype)))
    return top


def decode(cf, base, payload, rtype_of):
    cf = _same(cf)
    if cf == _TLV:
        out = []
        for entry in tlv.decode(payload):
            d = _DEPTH[entry[0]]
            if len(base) < d - 1:
                raise Error(_BAD_REQUEST, "TLV: entry type %d at the top for %r" % (entry[0], base))
            _walk((entry,), base[: d - 1], base, rtype_of, out)
        return _consistent(out)
    if cf == _SENML_JSON or cf == _JSON or cf == _SENML_CBOR:
        from lwm2m import senml

        decoder = senml.decode if cf == _SENML_JSON else senml.decode_cbor if cf == _SENML_CBOR else senml.decode_lwm2m
        return _consistent(decoder(base, payload, rtype_of))
    if cf == _TEXT or cf == _OPAQUE or cf == _CBOR:
        if len(base) < 3:
            raise Error(_UNSUPPORTED, "content format %d for a resource only" % cf)
        rtype = rtype_of(base)
        if cf == _CBOR:
            from lwm2m import cbor, senml

            return [(base, rtype, senml.cbor_value(cbor.decode(payload), rtype))]
        return [(base, rtype, text.decode_opaque(payload, rtype) if cf else text.decode(payload, rtype))]
    raise Error(_UNSUPPORTED, "content format %r not supported" % cf)


def _consistent(records):
    # A payload must give each instance and each resource in one piece, and a resource as one
    # value or as distinct instances, never both: anything else has no single meaning.
    done = set()  # instances and resources already left behind
    inst = res = riids = None  # those of the previous record; riids None: a single value
    for path, _rtype, _value in records:
        if path[:2] != inst:
            if path[:2] in done:
                raise Error(_BAD_REQUEST, "instance %r given in two places" % (path[:2],))
            done.add(inst)
            inst = path[:2]
        if path[:3] != res:
            if path[:3] in done:
                raise Error(_BAD_REQUEST, "resource %r given in two places" % (path[:3],))
            done.add(res)
            res = path[:3]
            riids = set() if len(path) == 4 else None
        elif riids is None or len(path) == 3 or path[3] in riids:
            raise Error(_BAD_REQUEST, "resource %r given twice" % (res,))
        if riids is not None:
            riids.add(path[3])
    return records


def _walk(entries, prefix, base, rtype_of, out):
    i = len(prefix)
    for kind, ident, value in entries:
        path = prefix + (ident,)
        if i < len(base) and ident != base[i]:
            raise Error(_BAD_REQUEST, "TLV: id %d where the target %r has %d" % (ident, base, base[i]))
        if not kind & 1:  # Object Instance or Multiple Resource: their entries
            _walk(value, path, base, rtype_of, out)
        elif i < len(base) - 1:
            raise Error(_BAD_REQUEST, "TLV: a value for %r above the target %r" % (path, base))
        else:
            rtype = rtype_of(path)
            out.append((path, rtype, tlv.unpack(value, rtype)))
