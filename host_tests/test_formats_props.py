# Properties of the content-format dispatch and the JSON codecs (CPython only, hypothesis):
# records -> encode -> decode gives the records back in TLV, SenML JSON and LwM2M JSON (and
# plain text for one value), and any input gives records or lwm2m.Error, nothing else.
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from lwm2m import Error, formats, senml, tlv

TYPES = "sifbotluc"


def rtype_of(path):
    # the type of a resource follows from its id
    return TYPES[path[2] % 9]


def rtype_or_404(path):
    # as the object model answers: resource ids from 40000 on do not exist
    if path[2] >= 40000:
        raise Error(0x84, "no such resource")
    return rtype_of(path)


_INT64 = st.integers(-(1 << 63), (1 << 63) - 1)
VALUES = {
    "s": st.text(max_size=20),
    "c": st.text(max_size=20),
    "i": _INT64,
    "t": _INT64,
    "u": st.integers(0, (1 << 64) - 1),
    "f": st.floats(allow_nan=False, allow_infinity=False) | st.floats(width=32, allow_nan=False,
                                                                      allow_infinity=False),
    "b": st.booleans(),
    "o": st.binary(max_size=20),
    "l": st.tuples(st.integers(0, 65535), st.integers(0, 65535)),
}
ids = st.integers(0, 20) | st.integers(0, 65535)


def _ids(draw, max_size):
    return draw(st.lists(ids, unique=True, max_size=max_size))


def _resource(draw, path):
    # one value, or the instances of a multiple resource
    rtype = rtype_of(path)
    if draw(st.booleans()):
        return [(path, rtype, draw(VALUES[rtype]))]
    return [(path + (ri,), rtype, draw(VALUES[rtype])) for ri in _ids(draw, 3)]


def _instance(draw, path):
    out = []
    for rid in _ids(draw, 4):
        out += _resource(draw, path + (rid,))
    return out


@st.composite
def targets(draw, oids=ids):
    # (base, records) for a read of an object, an instance, a resource or a resource instance
    oid = draw(oids)
    depth = draw(st.integers(1, 4))
    if depth == 1:
        recs = []
        for iid in _ids(draw, 3):
            recs += _instance(draw, (oid, iid))
        return (oid,), recs
    base = (oid, draw(ids))
    if depth == 2:
        return base, _instance(draw, base)
    base += (draw(ids),)
    if depth == 3:
        return base, _resource(draw, base)
    base += (draw(ids),)
    return base, [(base, rtype_of(base), draw(VALUES[rtype_of(base)]))]


def _same(got, want):
    assert got == want
    for (_, _, a), (_, _, b) in zip(got, want):
        assert type(a) is type(b), (a, b)


@settings(max_examples=1000, deadline=None)
@given(targets(), st.sampled_from((11542, 110, 11543, 1542, 1543)))
def test_round_trip(target, cf):
    base, recs = target
    payload = formats.encode(cf, base, recs)
    _same(formats.decode(cf, base, payload, rtype_of), recs)


@settings(max_examples=300, deadline=None)
@given(targets().filter(lambda t: len(t[1]) == 1 and t[1][0][0] == t[0]))
def test_round_trip_text_for_one_value(target):
    base, recs = target
    _same(formats.decode(0, base, formats.encode(0, base, recs), rtype_of), recs)
    if recs[0][1] == "o":
        _same(formats.decode(42, base, formats.encode(42, base, recs), rtype_of), recs)


# -- any input ----------------------------------------------------------------------------

_BASES = st.sampled_from(((3,), (3, 0), (3, 0, 9), (3, 0, 6), (3, 0, 6, 1), (1000, 0), (0,)))


def _check(decode, base, data):
    try:
        recs = decode(base, data)
    except Error as exc:
        assert exc.code in (0x80, 0x84), exc.code
        return None
    assert type(recs) is list
    for path, rtype, value in recs:
        assert type(path) is tuple and len(path) in (3, 4) and path[: len(base)] == base
        assert rtype == rtype_of(path)
    return recs


def _senml(base, data):
    recs = _check(lambda b, d: formats.decode(110, b, d, rtype_or_404), base, data)
    if recs is not None:
        # whatever decodes encodes, and decodes the same
        assert senml.decode(base, formats.encode(110, base, recs), rtype_of) == recs
        assert senml.decode_lwm2m(base, formats.encode(11543, base, recs), rtype_of) == recs


def _lwm2m(base, data):
    _check(lambda b, d: senml.decode_lwm2m(b, d, rtype_or_404), base, data)


def _tlv(base, data):
    recs = _check(lambda b, d: formats.decode(11542, b, d, rtype_or_404), base, data)
    if recs is not None:
        assert formats.decode(1542, base, formats.encode(11542, base, recs), rtype_of) == recs


# JSON made of the pieces of SenML, so the parser succeeds and the record checks are reached
_NAMES = st.sampled_from(("/3/0/9", "/3/0/0", "/3/0/1", "/3/0/2", "/3/0/3", "/3/0/4", "/3/0/5",
                          "/3/0/6/1", "/3/0/7/0", "/3/0/8", "/3/1/9", "/3/0/", "/3/", "/3/0/9/",
                          "0", "1", "2", "3", "4", "5", "6/1", "7/0", "8", "9", "", "/", "0/9",
                          "/3/0/40000", "/1000/0/4", "/3//0", "/3/0/x", "/3/0/65535",
                          "/3/0/65536", "/0/0/0", "/3/0/6/1/2"))
_BASE_NAMES = st.sampled_from(("/3/0/", "/3/", "/3/0/6/", "/3/0/9", "/3/0/6/1", "", "/3/1/", "3/0/"))
_KEYS = st.sampled_from(("bn", "n", "v", "vs", "vb", "vd", "vlo", "bt", "t", "e", "sv", "bv",
                         "ov", "u", "x_", "bver"))
_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(1 << 70), 1 << 70), st.floats(), _NAMES,
    st.sampled_from(("-_8", "+/8=", "AP9", "3:0", "3:65536", "3:", "A===", "\ud800", "\u00e9")),
)
_FIELDS = st.one_of(
    st.tuples(st.sampled_from(("n", "bn")), _NAMES | _BASE_NAMES),
    st.tuples(st.just("v"), st.integers(-(1 << 65), 1 << 65) | st.floats()
              | st.sampled_from((0, 1 << 63, 1 << 64, -(1 << 63) - 1, 0.5, -1, 1e19))),
    st.tuples(st.sampled_from(("vs", "sv")), st.text(max_size=5)),
    st.tuples(st.sampled_from(("vb", "bv")), st.booleans()),
    st.tuples(st.sampled_from(("vd", "sv")),
              st.sampled_from(("-_8", "+/8=", "AP9", "", "A===", "AQIDBAU", "AQIDBAU=", "A"))),
    st.tuples(st.sampled_from(("vlo", "ov")),
              st.sampled_from(("3:0", "3:65536", "3:", "x", "65535:65535", "1:2:3"))),
    st.tuples(_KEYS, _SCALARS),
)


def _record(bn, n, fields):
    rec = dict(fields)
    if bn is not None:
        rec["bn"] = bn
    if n is not None:
        rec["n"] = n
    return rec


_RECORD = st.builds(_record, st.none() | _BASE_NAMES, st.none() | _NAMES,
                    st.lists(_FIELDS, max_size=2))
_JSONISH = st.one_of(
    st.lists(_RECORD, max_size=4),
    st.fixed_dictionaries({"e": st.lists(_RECORD, max_size=4)},
                          optional={"bn": _BASE_NAMES | _SCALARS, "bt": _SCALARS}),
    st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=3)
                 | st.dictionaries(_KEYS, inner, max_size=3), max_leaves=8),
).map(lambda doc: json.dumps(doc).encode())

_PIECES = (b'"', b",", b":", b"{", b"}", b"[", b"]", b"1", b"-", b".5", b"1e400", b"true", b"null",
           b'"v"', b'"vs"', b'"vd"', b'"n"', b'"bn"', b'"/3/0/9"', b"\\u00e9", b"\\ud800", b"\xff",
           b"99999999999999999999999", b" ", b"", b"\x00", b"\xc3\xa9")


def _mutate(args):
    # a valid payload with a piece put in somewhere, maybe a byte taken out, maybe cut short
    data, at, piece, drop, end = args
    at %= len(data) + 1
    data = data[:at] + piece + data[at:]
    if drop is not None and data:
        drop %= len(data)
        data = data[:drop] + data[drop + 1:]
    if end is not None:
        data = data[: end % (len(data) + 1)]
    return data


def _mutations(valid):
    return st.tuples(valid, st.integers(0, 400), st.sampled_from(_PIECES),
                     st.none() | st.integers(0, 400), st.none() | st.integers(0, 400)).map(_mutate)


def _valid(cf):
    # (target, payload) for Device object targets, so that the ids agree with the target
    return targets(st.just(3)).map(lambda t: (t[0], formats.encode(cf, t[0], t[1])))


def _damaged(cf):
    return st.tuples(_valid(cf), st.integers(0, 400), st.sampled_from(_PIECES),
                     st.none() | st.integers(0, 400), st.none() | st.integers(0, 400)).map(
        lambda a: (a[0][0], _mutate((a[0][1],) + a[1:])))


# TLV entries nested as TLV allows, with ids near the targets' and values of any length, so
# that the walk over the entries and the value checks are reached
_TLV_IDS = st.sampled_from((0, 1, 3, 6, 9, 40000))
_TLV_LEAF = st.tuples(st.sampled_from((1, 3)), _TLV_IDS, st.binary(max_size=9))
_TLV_MULTI = st.tuples(st.just(2), _TLV_IDS, st.lists(st.tuples(st.just(1), _TLV_IDS,
                                                                st.binary(max_size=9)), max_size=3))
_TLV_INST = st.tuples(st.just(0), _TLV_IDS, st.lists(st.tuples(st.just(3), _TLV_IDS, st.binary(max_size=9))
                                                     | _TLV_MULTI, max_size=3))
_TLV_SHAPES = st.lists(_TLV_LEAF | _TLV_MULTI | _TLV_INST, max_size=3).map(lambda e: bytes(tlv.encode(e)))


def _edit(args):
    # a valid JSON encoding with one field of one record set to another value, or removed
    (base, payload), at, (key, value), remove = args
    doc = json.loads(payload)
    recs = doc if type(doc) is list else doc["e"]
    if recs:
        rec = recs[at % len(recs)]
        if remove:
            rec.pop(key, None)
        else:
            rec[key] = value
    return base, json.dumps(doc).encode()


def _edited(cf):
    return st.tuples(_valid(cf), st.integers(0, 20), _FIELDS, st.booleans()).map(_edit)


def _inputs(cf):
    # (target, payload): any bytes, JSON of SenML pieces, damaged and edited valid encodings
    if cf == 11542:
        return st.one_of(st.tuples(_BASES, st.binary(max_size=64)), _damaged(cf),
                         st.tuples(_BASES, _TLV_SHAPES))
    json_docs = st.one_of(_JSONISH, _mutations(_JSONISH))
    return st.one_of(st.tuples(_BASES, st.binary(max_size=64)), st.tuples(_BASES, json_docs),
                     _damaged(cf), _edited(cf))


@settings(max_examples=10000, deadline=None)
@given(_inputs(110))
def test_senml_any_bytes_give_records_or_error(case):
    _senml(*case)


@settings(max_examples=3000, deadline=None)
@given(_inputs(11543))
def test_lwm2m_json_any_bytes_give_records_or_error(case):
    _lwm2m(*case)


@settings(max_examples=3000, deadline=None)
@given(_inputs(11542))
def test_tlv_any_bytes_give_records_or_error(case):
    _tlv(*case)


@settings(max_examples=500, deadline=None)
@given(targets())
def test_json_names_are_full_paths(target):
    # bn + n is the whole path, so a JSON payload decodes the same for the object as target
    base, recs = target
    for cf in (110, 11543):
        assert formats.decode(cf, base[:1], formats.encode(cf, base, recs), rtype_of) == recs
