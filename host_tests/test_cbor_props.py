# Properties of the CBOR codec (lwm2m/cbor.py) and the CBOR formats, SenML CBOR (112) and
# single values (60) (CPython only, hypothesis): items agree with cbor2, an independent
# codec, both ways; records -> encode -> decode gives the records back; any input gives an
# item (records) or lwm2m.Error 4.00, nothing else, at 10,000 examples per decoder.
import cbor2
from hypothesis import given, settings
from hypothesis import strategies as st

from lwm2m import Error, cbor, formats, senml
from test_formats_props import _BASES, _PIECES, _mutate, _same, rtype_of, rtype_or_404, targets

_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(1 << 64), (1 << 64) - 1),
                     st.floats(allow_nan=False), st.text(max_size=8), st.binary(max_size=8))
ITEMS = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.integers(-30, 30) | st.text(max_size=3), inner, max_size=4),
                     max_leaves=12)


@settings(max_examples=2000, deadline=None)
@given(ITEMS)
def test_items_agree_with_cbor2_both_ways(item):
    ours = bytes(cbor.encode(item))
    assert cbor2.loads(ours) == item
    assert cbor.decode(ours) == item
    # cbor2's shortest floats (16 and 32 bits) and its own choices decode the same
    assert cbor.decode(cbor2.dumps(item, canonical=True)) == item
    if not _has_float(item) and not _has_map(item):
        assert ours == cbor2.dumps(item)  # shortest integers and lengths
    assert bytes(cbor.encode(cbor.decode(ours))) == ours  # one encoding per item


def _has_map(item):
    # a map of two keys or more, whose order cbor2 keeps as given and this codec sorts
    if type(item) is dict:
        return len(item) > 1 or any(_has_map(i) for i in item.values())
    return type(item) is list and any(_has_map(i) for i in item)


def _has_float(item):
    if type(item) is float:
        return True
    if type(item) is list:
        return any(_has_float(i) for i in item)
    if type(item) is dict:
        return any(_has_float(i) for i in item.values())
    return False


@settings(max_examples=1000, deadline=None)
@given(targets())
def test_senml_cbor_round_trip(target):
    base, recs = target
    _same(formats.decode(112, base, formats.encode(112, base, recs), rtype_of), recs)


@settings(max_examples=300, deadline=None)
@given(targets().filter(lambda t: len(t[1]) == 1 and t[1][0][0] == t[0]))
def test_cbor_round_trip_for_one_value(target):
    base, recs = target
    _same(formats.decode(60, base, formats.encode(60, base, recs), rtype_of), recs)


# -- any input ----------------------------------------------------------------------------

def _valid_senml():
    return targets(st.just(3)).map(lambda t: (t[0], formats.encode(112, t[0], t[1])))


def _damaged_senml():
    return st.tuples(_valid_senml(), st.integers(0, 400), st.sampled_from(_PIECES + (b"\xff", b"\x9f", b"\xbf", b"\xc1", b"\xf9", b"\x1b", b"\x7f", b"\x5a\xff\xff\xff\xff")),
                     st.none() | st.integers(0, 400), st.none() | st.integers(0, 400)).map(
        lambda a: (a[0][0], _mutate((a[0][1],) + a[1:])))


def _edited_senml():
    # a valid SenML CBOR record list with one field set to another item
    def edit(args):
        (base, payload), at, key, value = args
        recs = cbor.decode(payload)
        if recs:
            recs[at % len(recs)][key] = value
        return base, bytes(cbor.encode(recs))

    keys = st.sampled_from((-2, -3, 0, 2, 3, 4, 6, 8, "vlo", -1, 99, "x_", "n"))
    return st.tuples(_valid_senml(), st.integers(0, 20), keys, ITEMS).map(edit)


@settings(max_examples=10000, deadline=None)
@given(st.binary(max_size=64) | st.builds(lambda i: bytes(cbor.encode(i)), ITEMS))
def test_any_bytes_give_an_item_or_a_4_00(data):
    try:
        item = cbor.decode(data)
    except Error as exc:
        assert exc.code == 0x80
        return
    assert cbor.decode(bytes(cbor.encode(item))) == item or _has_float(item)


@settings(max_examples=10000, deadline=None)
@given(st.one_of(st.tuples(_BASES, st.binary(max_size=64)), _damaged_senml(), _edited_senml()))
def test_any_senml_cbor_gives_records_or_an_error(case):
    base, data = case
    try:
        recs = formats.decode(112, base, data, rtype_or_404)
    except Error as exc:
        assert exc.code in (0x80, 0x84), exc.code
        return
    for path, rtype, _value in recs:
        assert type(path) is tuple and len(path) in (3, 4) and path[: len(base)] == base
        assert rtype == rtype_of(path)
    # whatever decodes encodes, and decodes the same
    assert senml.decode_cbor(base, formats.encode(112, base, recs), rtype_of) == recs


@settings(max_examples=10000, deadline=None)
@given(st.sampled_from(((3, 0, 0), (3, 0, 1), (3, 0, 2), (3, 0, 3), (3, 0, 4), (3, 0, 5), (3, 0, 6), (3, 0, 7),
                        (3, 0, 8), (3, 0, 6, 1))),
       st.binary(max_size=16) | st.builds(lambda i: bytes(cbor.encode(i)), _SCALARS))
def test_any_single_cbor_value_gives_a_value_or_a_4_00(base, data):
    try:
        recs = formats.decode(60, base, data, rtype_of)
    except Error as exc:
        assert exc.code == 0x80, exc.code
        return
    assert formats.decode(60, base, formats.encode(60, base, recs), rtype_of) == recs
