# Properties of the TLV codec on CPython (hypothesis): round trips over generated nested
# structures and typed values, and any input bytes give a value or lwm2m.Error, nothing else.
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from lwm2m import Error
from lwm2m.tlv import (
    MULTIPLE_RESOURCE,
    OBJECT_INSTANCE,
    RESOURCE,
    RESOURCE_INSTANCE,
    decode,
    encode,
    pack,
    unpack,
)

TYPES = "sifbotluc"

# Identifiers around the 8/16-bit switch and up to the 16-bit limit.
ids = st.one_of(st.integers(0, 300), st.integers(0, 65535))
# Values around the 3-bit/8/16-bit length switches, and now and then past the 24-bit one.
values = st.one_of(
    st.binary(max_size=10),
    st.binary(max_size=300),
    st.sampled_from((65535, 65536)).map(lambda n: b"\x5a" * n),
)
resource_instances = st.tuples(st.just(RESOURCE_INSTANCE), ids, values)
resources = st.tuples(st.just(RESOURCE), ids, values)
multiples = st.tuples(st.just(MULTIPLE_RESOURCE), ids, st.lists(resource_instances, max_size=4))
instances = st.tuples(st.just(OBJECT_INSTANCE), ids, st.lists(st.one_of(resources, multiples), max_size=4))
structures = st.lists(st.one_of(instances, multiples, resources, resource_instances), max_size=4)


@settings(max_examples=1000, deadline=None)
@given(structures)
def test_decode_inverts_encode(entries):
    data = encode(entries)
    assert decode(data) == entries
    assert encode(decode(data)) == data
    assert decode(memoryview(bytes(data))) == entries


def _mutated(data, cut, pos, byte):
    # a valid encoding truncated, or with one byte replaced
    data = bytearray(data)
    if data and byte is not None:
        data[pos % len(data)] = byte
    return bytes(data[: cut % (len(data) + 1)] if cut is not None else data)


def _check_decode(data):
    try:
        entries = decode(data)
    except Error as exc:
        assert exc.code == 0x80
        assert "at byte" in str(exc)
    else:
        # whatever decodes is a valid structure, which re-encodes and decodes the same
        assert decode(encode(entries)) == entries


near_valid = st.builds(
    _mutated,
    structures.map(encode),
    st.none() | st.integers(0, 1000),
    st.integers(0, 1000),
    st.none() | st.integers(0, 255),
)


@settings(max_examples=10000, deadline=None)
@given(st.binary(max_size=64))
def test_any_bytes_decode_or_error(data):
    _check_decode(data)


@settings(max_examples=2000, deadline=None)
@given(near_valid)
def test_damaged_encodings_decode_or_error(data):
    _check_decode(data)


def _fits(value, width, signed):
    span = 1 << 8 * width
    low = -(span >> 1) if signed else 0
    return low <= value < low + span


@given(st.integers(-(2**63), 2**63 - 1), st.sampled_from("it"))
def test_signed_round_trip_shortest(value, rtype):
    raw = pack(value, rtype)
    assert unpack(raw, rtype) == value
    assert len(raw) in (1, 2, 4, 8)
    assert len(raw) == 1 or not _fits(value, len(raw) // 2, True)


@given(st.integers(0, 2**64 - 1))
def test_unsigned_round_trip_shortest(value):
    raw = pack(value, "u")
    assert unpack(raw, "u") == value
    assert len(raw) in (1, 2, 4, 8)
    assert len(raw) == 1 or not _fits(value, len(raw) // 2, False)


@given(st.floats(allow_nan=False, allow_infinity=False) | st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_float_round_trip(value):
    raw = pack(value, "f")
    assert unpack(raw, "f") == value
    try:
        exact32 = struct.unpack(">f", struct.pack(">f", value))[0] == value
    except OverflowError:
        exact32 = False
    assert len(raw) == (4 if exact32 else 8)


@given(st.one_of(
    st.tuples(st.just("b"), st.booleans()),
    st.tuples(st.just("o"), st.binary()),
    st.tuples(st.sampled_from("sc"), st.text()),
    st.tuples(st.just("l"), st.tuples(st.integers(0, 65535), st.integers(0, 65535))),
))
def test_other_types_round_trip(case):
    rtype, value = case
    assert unpack(pack(value, rtype), rtype) == value


@settings(max_examples=500)
@given(st.binary(max_size=12), st.sampled_from(TYPES))
def test_any_bytes_unpack_or_error(raw, rtype):
    try:
        value = unpack(raw, rtype)
    except Error as exc:
        assert exc.code == 0x80
    else:
        # what is accepted can be encoded again: no NaN or infinity gets in
        assert pack(value, rtype) is not None


@given(st.one_of(
    st.tuples(st.sampled_from("it"), st.integers(2**63, 2**80) | st.integers(-(2**80), -(2**63) - 1)),
    st.tuples(st.just("u"), st.integers(2**64, 2**80) | st.integers(-(2**80), -1)),
    st.tuples(st.just("l"), st.tuples(st.integers(), st.integers()).filter(
        lambda v: not (0 <= v[0] <= 65535 and 0 <= v[1] <= 65535))),
))
def test_pack_out_of_range_is_value_error(case):
    rtype, value = case
    try:
        pack(value, rtype)
    except ValueError:
        return
    raise AssertionError("no ValueError")
