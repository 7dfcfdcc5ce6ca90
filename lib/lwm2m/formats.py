# Content-format dispatch: records (path, rtype, value) to a payload and back, by the
# content-format number, for a request target `base` (a tuple of 1 to 4 ids). A Read is
# written as lwm2m.dm walks the model, record by record into one bytearray (writer()), with
# no list of records or pieces held: that is what keeps the heap of a request small.
#
# Formats: plain text 0, octet-stream 42 and CBOR 60 (one resource or resource instance: the
# target itself), TLV 11542, SenML JSON 110, SenML CBOR 112 and LwM2M JSON 11543. The pre-1.0 numbers 1541 (text),
# 1542 (TLV) and 1543 (JSON) are the same formats, both ways: a server that asks with Accept:
# 1542 gets TLV, and the caller labels it with the number that was asked for.
#
# Errors: a format that cannot answer a read (text for an instance, any unknown number)
# gives 4.06 from encode() and a writer's end(); a format that cannot carry a write gives
# 4.15 from decode(), also text or octet-stream sent to an object or an instance (the number
# is known but not for that target; text.decode_opaque answers a non-opaque resource the same
# way); a payload that is malformed or names other ids than the target gives 4.00.
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


def writer(cf, base):
    # What writes the answer to a Read of `base` in format cf: add(path, rtype, value) for
    # each record, as lwm2m.dm reads them, then end() gives the payload. A format that
    # cannot answer (text for an instance, any unknown number) gives 4.06 from end(), so
    # that a Read's own errors (4.04, 4.05) come first.
    cf = _same(cf)
    if cf == _TLV:
        return tlv.Writer(base)
    if cf == _SENML_JSON or cf == _JSON or cf == _SENML_CBOR:
        from lwm2m import senml  # loaded when a server first uses SenML

        return senml.Writer(cf, base)
    return _Single(cf, base)


def encode(cf, base, records):
    # The payload of records (path, rtype, value) under base (for TLV, those of one Object
    # Instance or Multiple Resource together, as lwm2m.dm reads them).
    w = writer(cf, base)
    for path, rtype, value in records:
        if not under(path, base) or not 1 < len(path) - 1 < 4:
            raise ValueError(path)
        w.add(path, rtype, value)
    return w.end()


class _Single:
    # Plain text, octet-stream and CBOR (60): the target's one value.
    def __init__(self, cf, base):
        self.cf = cf
        self.base = base
        self.record = None
        self.count = 0

    def add(self, path, rtype, value):
        self.record = (path, rtype, value)
        self.count += 1

    def end(self):
        cf = self.cf
        if (cf == _TEXT or cf == _OPAQUE or cf == _CBOR) and self.count == 1 and self.record[0] == self.base:
            path, rtype, value = self.record
            if cf == _CBOR:
                from lwm2m import cbor, senml

                return cbor.encode(senml.cbor_item(rtype, value))
            return text.encode_opaque(value, rtype) if cf else text.encode(value, rtype)
        raise Error(_NOT_ACCEPTABLE, "cannot answer %r in content format %r" % (self.base, cf))


def under(path, base):
    # Does path start with base? Compared in place: a slice would make a tuple per record.
    if len(path) < len(base):
        return False
    for i in range(len(base)):
        if path[i] != base[i]:
            return False
    return True


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
