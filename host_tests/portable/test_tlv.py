# TLV codec (TS Core 7.4.3): exact bytes both ways, and every malformed input raises the
# codecs' Error with 4.00. Runs under pytest and inside the MicroPython VM.
from check import codec_error, raises
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

h = bytes.fromhex

# Read /3/0, the example of TS Core 7.4.3.1 (Device object), one TLV per line.
DEVICE = h(
    "C8 00 14 4F70656E204D6F62696C6520416C6C69616E6365"
    "C8 01 16 4C69676874776569676874204D324D20436C69656E74"
    "C8 02 09 333435303030313233"
    "C3 03 312E30"
    "86 06 41 00 01 41 01 05"
    "88 07 08 42 00 0ED8 42 01 1388"
    "87 08 41 00 7D 42 01 0384"
    "C1 09 64"
    "C1 0A 0F"
    "83 0B 41 00 00"
    "C4 0D 5182428F"
    "C6 0E 2B30323A3030"
    "C1 10 55"
)
# Start offset of each of its 13 entries, and its end.
# 3 + 20 = 23, + 3 + 22 = 48, + 3 + 9 = 60, + 2 + 3 = 65, + 2 + 6 = 73, + 3 + 8 = 84,
# + 2 + 7 = 93, + 3 = 96, + 3 = 99, + 2 + 3 = 104, + 2 + 4 = 110, + 2 + 6 = 118, + 3 = 121
DEVICE_BOUNDS = (0, 23, 48, 60, 65, 73, 84, 93, 96, 99, 104, 110, 118, 121)

DEVICE_TYPES = {0: "s", 1: "s", 2: "s", 3: "s", 6: "i", 7: "i", 8: "i", 9: "i", 10: "i",
                11: "i", 13: "t", 14: "s", 16: "s"}
DEVICE_VALUES = {
    0: "Open Mobile Alliance",
    1: "Lightweight M2M Client",
    2: "345000123",
    3: "1.0",
    6: {0: 1, 1: 5},
    7: {0: 3800, 1: 5000},
    8: {0: 125, 1: 900},
    9: 100,
    10: 15,
    11: {0: 0},
    13: 1367491215,
    14: "+02:00",
    16: "U",
}


def _values(entries, types):
    # {resource id: value or {instance id: value}} through unpack
    out = {}
    for kind, ident, value in entries:
        rtype = types[ident]
        if kind == MULTIPLE_RESOURCE:
            inner = {}
            for ikind, iid, raw in value:
                assert ikind == RESOURCE_INSTANCE
                inner[iid] = unpack(raw, rtype)
            out[ident] = inner
        else:
            assert kind == RESOURCE
            out[ident] = unpack(value, rtype)
    return out


def test_spec_example_read_device_decodes():
    entries = decode(DEVICE)
    assert [e[1] for e in entries] == [0, 1, 2, 3, 6, 7, 8, 9, 10, 11, 13, 14, 16]
    assert _values(entries, DEVICE_TYPES) == DEVICE_VALUES


def test_spec_example_read_device_reencodes_to_the_same_bytes():
    assert encode(decode(DEVICE)) == DEVICE
    # built from the values, not from decode()
    entries = []
    for rid in sorted(DEVICE_VALUES):
        value = DEVICE_VALUES[rid]
        rtype = DEVICE_TYPES[rid]
        if isinstance(value, dict):
            inst = [(RESOURCE_INSTANCE, i, pack(value[i], rtype)) for i in sorted(value)]
            entries.append((MULTIPLE_RESOURCE, rid, inst))
        else:
            entries.append((RESOURCE, rid, pack(value, rtype)))
    assert encode(entries) == DEVICE


def test_spec_example_prefixes():
    # a prefix ending between entries is the leading entries; any other prefix is an error
    whole = decode(DEVICE)
    assert DEVICE_BOUNDS[-1] == len(DEVICE)
    for end in range(len(DEVICE)):
        if end in DEVICE_BOUNDS:
            assert decode(DEVICE[:end]) == whole[: DEVICE_BOUNDS.index(end)]
        else:
            assert codec_error(decode, DEVICE[:end]).code == 0x80


# Single resources by width: (name, header hex, identifier, value length). The value is
# `length` bytes of 0xA5. Type byte = 0b11 (Resource) << 6 | id16 << 5 | length type << 3
# | 3-bit length.
LEAVES = (
    ("len0_id8b", "C0 05", 5, 0),  # 0xC0 | 0 = 0xC0
    ("len3b_id8b", "C3 05", 5, 3),  # 0xC0 | 3 = 0xC3
    ("len3b_max_id8b", "C7 FF", 255, 7),  # 0xC0 | 7; 255 still fits 8 bits
    ("len8b_id8b", "C8 05 08", 5, 8),  # 8 > 7: 0xC0 | 1 << 3 = 0xC8, length 0x08
    ("len8b_max_id8b", "C8 05 FF", 5, 255),
    ("len16b_id8b", "D0 05 0100", 5, 256),  # 0xC0 | 2 << 3 = 0xD0, 256 = 0x0100
    ("len24b_id8b", "D8 05 010000", 5, 65536),  # 0xC0 | 3 << 3 = 0xD8, 65536 = 0x010000
    ("len3b_id16b", "E3 0100", 256, 3),  # 0xC0 | 1 << 5 | 3 = 0xE3, 256 = 0x0100
    ("len8b_id16b", "E8 FFFF FF", 65535, 255),  # 0xC0 | 0x20 | 0x08 = 0xE8
    ("len16b_id16b", "F0 1234 FFFF", 0x1234, 65535),  # 0xC0 | 0x20 | 0x10 = 0xF0
    ("len24b_id16b", "F8 0100 010000", 256, 65536),  # 0xC0 | 0x20 | 0x18 = 0xF8
)


def test_leaf_vectors_by_width():
    for name, header, ident, length in LEAVES:
        value = b"\xa5" * length
        data = h(header) + value
        assert decode(data) == [(RESOURCE, ident, value)], name
        assert encode([(RESOURCE, ident, value)]) == data, name
        # the same header bits under the other value kind: Resource Instance (0b01 << 6)
        ri = bytes([data[0] & 0x3F | 0x40]) + data[1:]
        assert decode(ri) == [(RESOURCE_INSTANCE, ident, value)], name
        assert encode([(RESOURCE_INSTANCE, ident, value)]) == ri, name


def test_leaf_vectors_truncated():
    for name, header, ident, length in LEAVES:
        data = h(header) + b"\xa5" * length
        cut = len(h(header))
        # every cut inside the header, the value one byte short, and no value at all
        for end in list(range(1, cut)) + [len(data) - 1, cut]:
            if end == len(data):
                continue  # an empty value is whole
            exc = codec_error(decode, data[:end])
            assert exc.code == 0x80, name
            assert "at byte 0" in str(exc), (name, str(exc))


def test_longer_forms_are_accepted():
    # an 8-bit length of 3 and a 16-bit id of 5 are not shortest, but legal
    assert decode(h("C8 05 03 010203")) == [(RESOURCE, 5, b"\x01\x02\x03")]
    assert decode(h("E1 0005 2A")) == [(RESOURCE, 5, b"\x2a")]
    assert decode(h("D8 05 000001 2A")) == [(RESOURCE, 5, b"\x2a")]
    # and are written back in the shortest form
    assert encode(decode(h("F8 0005 000001 2A"))) == h("C1 05 2A")


# Object Instance 0: Resource 0 = 0x2A and Multiple Resource 1 = {0: 0x01, 1: 0x02}.
#   C1 00 2A                  3 bytes
#   86 01 41 00 01 41 01 02   0x80 | 6: two Resource Instances of 3 bytes each; 8 bytes
#   08 00 0B                  0b00 << 6 | 1 << 3: 8-bit length 3 + 8 = 11 = 0x0B
INSTANCE = h("08 00 0B C1 00 2A 86 01 41 00 01 41 01 02")
INSTANCE_ENTRIES = [
    (OBJECT_INSTANCE, 0, [
        (RESOURCE, 0, b"\x2a"),
        (MULTIPLE_RESOURCE, 1, [(RESOURCE_INSTANCE, 0, b"\x01"), (RESOURCE_INSTANCE, 1, b"\x02")]),
    ]),
]


def test_nested_object_instance():
    assert decode(INSTANCE) == INSTANCE_ENTRIES
    assert encode(INSTANCE_ENTRIES) == INSTANCE


def test_nested_prefixes_all_fail():
    # one entry at top level, so no prefix is a whole entry
    for end in range(1, len(INSTANCE)):
        assert codec_error(decode, INSTANCE[:end]).code == 0x80


def test_several_object_instances_and_16_bit_ids():
    # Instance 300 (0x012C) is empty: 0b00 << 6 | 0x20 = 0x20, length 0.
    # Instance 1 holds the Device example (121 = 0x79 bytes): 0x08, 01, 79.
    data = INSTANCE + h("20 012C") + h("08 01 79") + DEVICE
    entries = INSTANCE_ENTRIES + [(OBJECT_INSTANCE, 300, []), (OBJECT_INSTANCE, 1, decode(DEVICE))]
    assert decode(data) == entries
    assert encode(entries) == data


def test_empty_input_and_empty_containers():
    assert decode(b"") == []
    assert encode([]) == bytearray()
    # empty Object Instance 2, empty Multiple Resource 7
    assert decode(h("00 02 80 07")) == [(OBJECT_INSTANCE, 2, []), (MULTIPLE_RESOURCE, 7, [])]
    assert encode([(OBJECT_INSTANCE, 2, []), (MULTIPLE_RESOURCE, 7, [])]) == h("00 02 80 07")


def test_top_level_accepts_every_kind():
    # a Read of /3/0/6/1 answers one Resource Instance; of /3/0/6 a Multiple Resource
    assert decode(h("41 01 05")) == [(RESOURCE_INSTANCE, 1, b"\x05")]
    assert decode(h("83 06 41 01 05")) == [(MULTIPLE_RESOURCE, 6, [(RESOURCE_INSTANCE, 1, b"\x05")])]


def test_accepts_bytearray_and_memoryview():
    assert decode(bytearray(INSTANCE)) == INSTANCE_ENTRIES
    assert decode(memoryview(b"xx" + INSTANCE)[2:]) == INSTANCE_ENTRIES


def test_bad_nesting():
    cases = (
        # (hex, offset of the misplaced entry)
        ("03 00 00 01 00", 2),  # Object Instance in an Object Instance
        ("03 00 41 00 01", 2),  # Resource Instance in an Object Instance
        ("83 05 C1 00 01", 2),  # Resource in a Multiple Resource
        ("82 05 80 00", 2),  # Multiple Resource in a Multiple Resource
        ("82 05 00 00", 2),  # Object Instance in a Multiple Resource
        ("08 00 08 86 01 41 00 01 C1 01 02", 8),  # Resource inside, after a good one
    )
    for hexed, offset in cases:
        exc = codec_error(decode, h(hexed))
        assert exc.code == 0x80
        assert "at byte %d" % offset in str(exc), (hexed, str(exc))


def test_trailing_and_overrunning_bytes():
    cases = (
        ("C1 00 2A C1", 3),  # a lone type byte after a whole entry
        ("C1 00 2A FF 00 01", 3),  # 0xFF wants 2 id bytes and 3 length bytes
        ("C1 00 2A 00", 3),  # Object Instance header without its id
        ("03 00 C1 00", 0),  # the container's own value is cut short
        ("02 00 C1 00 2A", 2),  # the child's value byte is outside the container
        ("04 00 C1 00 2A C0", 5),  # a container with a stray byte after its child
        ("05 00 C1 00 2A C1 02 FF", 5),  # the container ends inside its second child
    )
    for hexed, offset in cases:
        exc = codec_error(decode, h(hexed))
        assert exc.code == 0x80
        assert "at byte %d" % offset in str(exc), (hexed, str(exc))


def test_encode_rejects_what_tlv_cannot_carry():
    raises(ValueError, encode, [(RESOURCE, 65536, b"")])
    raises(ValueError, encode, [(RESOURCE, -1, b"")])
    raises(ValueError, encode, [(4, 0, b"")])


# Typed values: (type, value, hex) both ways.
TYPED = (
    ("i", 0, "00"),
    ("i", 127, "7F"),
    ("i", 128, "0080"),  # 1-byte signed ends at 127
    ("i", -128, "80"),
    ("i", -129, "FF7F"),
    ("i", 32767, "7FFF"),
    ("i", 32768, "00008000"),
    ("i", -32768, "8000"),
    ("i", -32769, "FFFF7FFF"),
    ("i", 2**31 - 1, "7FFFFFFF"),
    ("i", 2**31, "0000000080000000"),
    ("i", -(2**31), "80000000"),
    ("i", -(2**31) - 1, "FFFFFFFF7FFFFFFF"),
    ("i", 2**63 - 1, "7FFFFFFFFFFFFFFF"),
    ("i", -(2**63), "8000000000000000"),
    ("t", 1367491215, "5182428F"),  # /3/0/13 of the spec example
    ("u", 0, "00"),
    ("u", 255, "FF"),
    ("u", 256, "0100"),
    ("u", 65535, "FFFF"),
    ("u", 65536, "00010000"),
    ("u", 2**32 - 1, "FFFFFFFF"),
    ("u", 2**32, "0000000100000000"),
    ("u", 2**64 - 1, "FFFFFFFFFFFFFFFF"),
    ("f", 1.5, "3FC00000"),  # exact in 32 bits
    ("f", -2.0, "C0000000"),
    ("f", 1e300, "7E37E43C8800759C"),  # beyond float32: 8 bytes
    ("b", True, "01"),
    ("b", False, "00"),
    ("l", (3, 0), "00030000"),
    ("l", (65535, 65535), "FFFFFFFF"),
    ("s", "", ""),
    ("s", "1.0", "312E30"),
    ("s", "\u00e9", "C3A9"),  # e acute in UTF-8
    ("c", "</3/0>", "3C2F332F303E"),
    ("o", b"\x00\xff", "00FF"),
)


def test_non_finite_floats_are_refused_both_ways():
    # No format carries NaN or infinities (text and JSON cannot): one rule for all.
    for value in (float("inf"), -float("inf"), float("nan")):
        raises(ValueError, pack, value, "f")
    for hexed in ("7F800000", "FF800000", "7FC00000", "7FF0000000000000", "7FF8000000000000"):
        assert codec_error(unpack, h(hexed), "f").code == 0x80


def test_typed_values_both_ways():
    for rtype, value, hexed in TYPED:
        raw = h(hexed)
        assert pack(value, rtype) == raw, (rtype, value)
        assert unpack(raw, rtype) == value, (rtype, value)
        assert unpack(memoryview(raw), rtype) == value, (rtype, value)


def test_float_widths():
    # 0.1 needs 8 bytes where float is double precision (CPython, the VM); boards with
    # single-precision floats (ESP32, RP2040) hold only the 4-byte value anyway
    if 1.0 + 2.0**-40 != 1.0:
        assert pack(0.1, "f") == h("3FB999999999999A")
    assert unpack(h("3FB999999999999A"), "f") == 0.1
    # 0.1 rounded to float32 is still read from 4 bytes
    assert abs(unpack(h("3DCCCCCD"), "f") - 0.1) < 1e-8


def test_unpack_rejects_bad_values():
    cases = (
        ("i", ""), ("i", "000000"), ("i", "0000000000"), ("i", "00" * 16),
        ("t", "000000"), ("u", "000000"), ("u", ""), ("f", "0000"), ("f", "00"),
        ("f", "000000000000"), ("b", ""), ("b", "02"), ("b", "FF"), ("b", "0001"),
        ("l", "000300"), ("l", "0003000000"), ("s", "FF"), ("s", "C3"), ("c", "61 80"),
    )
    for rtype, hexed in cases:
        assert codec_error(unpack, h(hexed), rtype).code == 0x80, (rtype, hexed)


def test_pack_rejects_values_out_of_range():
    for value, rtype in ((2**63, "i"), (-(2**63) - 1, "i"), (2**63, "t"), (-1, "u"),
                         (2**64, "u"), ((65536, 0), "l"), ((0, -1), "l"), (1, "x")):
        raises(ValueError, pack, value, rtype)
    raises(ValueError, unpack, b"\x00", "x")
