# Content-format dispatch: records to payloads and back by content-format number, in both
# interpreters. TLV payloads are compared byte for byte; JSON ones after json.loads.
import json

from check import codec_error
from lwm2m import formats
from test_senml import DEVICE, DEVICE_SENML, device_type
from test_tlv import DEVICE as DEVICE_TLV  # TS Core's Read /3/0 example

h = bytes.fromhex

def test_device_example_tlv_both_ways():
    payload = formats.encode(11542, (3, 0), DEVICE)
    assert payload == DEVICE_TLV
    assert type(payload) in (bytes, bytearray)
    assert formats.decode(11542, (3, 0), DEVICE_TLV, device_type) == DEVICE


# Read /3 with two instances: 0 holds Manufacturer and Error Codes {0: 0}, 1 holds Battery
# Level 87 and Available Power Sources {0: 1, 1: 5}.
OBJECT = [
    ((3, 0, 0), "s", "ACME"),
    ((3, 0, 11, 0), "i", 0),
    ((3, 1, 6, 0), "i", 1),
    ((3, 1, 6, 1), "i", 5),
    ((3, 1, 9), "i", 87),
]
#   C4 00 41434D45           Resource 0, 4 bytes "ACME"        6 bytes
#   83 0B 41 00 00           Multiple Resource 11, 3 bytes     5 bytes
# 00 00 + 11 = 0x0B: 3-bit length only up to 7, so 08 00 0B
#   86 06 41 00 01 41 01 05  Multiple Resource 6, 6 bytes      8 bytes
#   C1 09 57                 Resource 9 = 87 = 0x57            3 bytes
# 8 + 3 = 11 = 0x0B: 08 01 0B
OBJECT_TLV = h("08 00 0B C4 00 41434D45 83 0B 41 00 00"
               "08 01 0B 86 06 41 00 01 41 01 05 C1 09 57")
OBJECT_SENML = [
    {"bn": "/3/", "n": "0/0", "vs": "ACME"},
    {"n": "0/11/0", "v": 0},
    {"n": "1/6/0", "v": 1},
    {"n": "1/6/1", "v": 5},
    {"n": "1/9", "v": 87},
]
OBJECT_JSON = {"bn": "/3/", "e": [
    {"n": "0/0", "sv": "ACME"},
    {"n": "0/11/0", "v": 0},
    {"n": "1/6/0", "v": 1},
    {"n": "1/6/1", "v": 5},
    {"n": "1/9", "v": 87},
]}


def test_object_read_in_tlv_senml_and_lwm2m_json():
    assert formats.encode(11542, (3,), OBJECT) == OBJECT_TLV
    assert formats.decode(11542, (3,), OBJECT_TLV, device_type) == OBJECT
    payload = formats.encode(110, (3,), OBJECT)
    assert json.loads(payload) == OBJECT_SENML
    assert formats.decode(110, (3,), payload, device_type) == OBJECT
    payload = formats.encode(11543, (3,), OBJECT)
    assert json.loads(payload) == OBJECT_JSON
    assert formats.decode(11543, (3,), payload, device_type) == OBJECT


def test_single_resource_in_text_and_opaque():
    rec = [((3, 0, 0), "s", "Open Mobile Alliance")]
    assert formats.encode(0, (3, 0, 0), rec) == b"Open Mobile Alliance"
    assert formats.decode(0, (3, 0, 0), b"Open Mobile Alliance", device_type) == rec
    assert formats.encode(0, (3, 0, 9), [((3, 0, 9), "i", 100)]) == b"100"
    assert formats.decode(0, (3, 0, 9), b"100", device_type) == [((3, 0, 9), "i", 100)]
    # a resource instance
    assert formats.encode(0, (3, 0, 6, 1), [((3, 0, 6, 1), "i", 5)]) == b"5"
    assert formats.decode(0, (3, 0, 6, 1), b"5", device_type) == [((3, 0, 6, 1), "i", 5)]
    # opaque: raw bytes as octet-stream, base64 as text
    def opaque(path):
        return "o"
    rec = [((5, 0, 0), "o", b"\x00\xff")]
    assert formats.encode(42, (5, 0, 0), rec) == b"\x00\xff"
    assert formats.decode(42, (5, 0, 0), b"\x00\xff", opaque) == rec
    assert formats.encode(0, (5, 0, 0), rec) == b"AP8="
    assert formats.decode(0, (5, 0, 0), b"AP8=", opaque) == rec


def test_single_resource_in_tlv_and_json():
    rec = [((3, 0, 9), "i", 100)]
    assert formats.encode(11542, (3, 0, 9), rec) == h("C1 09 64")
    assert formats.decode(11542, (3, 0, 9), h("C1 09 64"), device_type) == rec
    assert json.loads(formats.encode(110, (3, 0, 9), rec)) == [{"bn": "/3/0/9", "n": "", "v": 100}]


def test_multiple_resource():
    rec = [((3, 0, 6, 0), "i", 1), ((3, 0, 6, 1), "i", 5)]
    tlv = h("86 06 41 00 01 41 01 05")
    assert formats.encode(11542, (3, 0, 6), rec) == tlv
    assert formats.decode(11542, (3, 0, 6), tlv, device_type) == rec
    # bare Resource Instances in a write to the resource are taken too
    assert formats.decode(11542, (3, 0, 6), h("41 00 01 41 01 05"), device_type) == rec
    payload = formats.encode(110, (3, 0, 6), rec)
    assert json.loads(payload) == [{"bn": "/3/0/6/", "n": "0", "v": 1}, {"n": "1", "v": 5}]
    assert formats.decode(110, (3, 0, 6), payload, device_type) == rec
    # one of its instances: a bare Resource Instance entry
    rec = [((3, 0, 6, 1), "i", 5)]
    assert formats.encode(11542, (3, 0, 6, 1), rec) == h("41 01 05")
    assert formats.decode(11542, (3, 0, 6, 1), h("41 01 05"), device_type) == rec
    assert formats.decode(11542, (3, 0, 6, 1), h("83 06 41 01 05"), device_type) == rec


def test_instance_write_with_or_without_the_instance_entry():
    rec = [((3, 0, 14), "s", "+02:00"), ((3, 0, 6, 0), "i", 1)]
    bare = h("C6 0E 2B30323A3030 83 06 41 00 01")  # 8 + 5 = 13 = 0x0D
    assert formats.encode(11542, (3, 0), rec) == bare
    assert formats.decode(11542, (3, 0), bare, device_type) == rec
    assert formats.decode(11542, (3, 0), h("08 00 0D") + bare, device_type) == rec
    # a Create on /3 carries the instance entry; without it, the client picks the id and
    # decodes with that instance as the target
    assert formats.decode(11542, (3,), h("08 00 0D") + bare, device_type) == rec
    err = codec_error(formats.decode, 11542, (3,), bare, device_type)
    assert err.code == 0x80


def test_tlv_ids_that_contradict_the_target():
    for base, hexed in (
        ((3, 1), "08 00 03 C1 09 64"),  # instance 0 in a write to /3/1
        ((3, 0, 10), "C1 09 64"),  # resource 9 in a write to /3/0/10
        ((3, 0, 7), "86 06 41 00 01 41 01 05"),  # multiple resource 6 to /3/0/7
        ((3, 0, 6, 0), "41 01 05"),  # instance 1 to /3/0/6/0
        ((3, 0, 6, 0), "C1 06 05"),  # a Resource where the target is a resource instance
        ((3, 0, 6), "08 00 03 C1 09 64"),  # an instance holding resource 9 in a write to 6
        ((3,), "41 01 05"),  # a bare Resource Instance for the object
        ((3, 0), "41 01 05"),  # and for an instance
    ):
        err = codec_error(formats.decode, 11542, base, h(hexed), device_type)
        assert err.code == 0x80, (base, hexed)
        assert "TLV" in str(err), str(err)


def test_tlv_bad_values_and_unknown_resources():
    err = codec_error(formats.decode, 11542, (3, 0), h("C3 09 000064"), device_type)
    assert err.code == 0x80  # a 3-byte Integer
    err = codec_error(formats.decode, 11542, (3, 0), h("C1 63 01"), device_type)
    assert err.code == 0x84  # resource 99: the model's answer
    err = codec_error(formats.decode, 11542, (3, 0), h("C1 09"), device_type)
    assert err.code == 0x80  # truncated


def test_pre_1_0_numbers_on_input():
    assert formats.decode(1541, (3, 0, 9), b"100", device_type) == [((3, 0, 9), "i", 100)]
    assert formats.decode(1542, (3, 0), DEVICE_TLV, device_type) == DEVICE
    payload = b'{"bn":"/3/0/","e":[{"n":"9","v":100},{"n":"6/0","v":1}]}'
    assert formats.decode(1543, (3, 0), payload, device_type) == [
        ((3, 0, 9), "i", 100), ((3, 0, 6, 0), "i", 1)]
    # and an Accept: of a pre-1.0 number gets that format
    assert formats.encode(1542, (3, 0), DEVICE) == DEVICE_TLV
    assert formats.encode(1541, (3, 0, 9), [((3, 0, 9), "i", 100)]) == b"100"
    assert json.loads(formats.encode(1543, (3, 0), DEVICE))["e"][0] == {
        "n": "0", "sv": "Open Mobile Alliance"}


def test_senml_dispatch():
    assert json.loads(formats.encode(110, (3, 0), DEVICE)) == DEVICE_SENML
    assert formats.decode(110, (3, 0), formats.encode(110, (3, 0), DEVICE), device_type) == DEVICE


def test_text_or_opaque_for_more_than_one_value_is_unsupported():
    # a write of text to an object or an instance: the format cannot carry it there
    for cf in (0, 1541, 42):
        for base in ((3,), (3, 0)):
            err = codec_error(formats.decode, cf, base, b"100", device_type)
            assert err.code == 0x8F, (cf, base)  # 4.15
    # octet-stream for a resource that is not opaque
    assert codec_error(formats.decode, 42, (3, 0, 9), b"100", device_type).code == 0x8F


def test_unsupported_content_format():
    for cf in (40, 60, 11544, 1, 9999, None):  # 60: CBOR takes one resource, not an instance
        err = codec_error(formats.decode, cf, (3, 0), b"", device_type)
        assert err.code == 0x8F, cf
    # a text payload that is malformed for its type is 4.00
    assert codec_error(formats.decode, 0, (3, 0, 9), b"x", device_type).code == 0x80
    # JSON that is not JSON
    assert codec_error(formats.decode, 110, (3, 0), b"[", device_type).code == 0x80


def test_accept_not_possible():
    one = [((3, 0, 9), "i", 100)]
    for cf, base, records in (
        (0, (3, 0), DEVICE),  # text for an instance
        (0, (3,), OBJECT),  # for an object
        (0, (3, 0, 6), [((3, 0, 6, 0), "i", 1)]),  # for a multiple resource
        (0, (3, 0, 6), []),  # nothing to answer with
        (42, (3, 0), DEVICE),
        (42, (3, 0, 9), one),  # octet-stream for an Integer
        (60, (3, 0), DEVICE),  # CBOR: one value only
        (11544, (3, 0), DEVICE),  # LwM2M CBOR (1.2): not supported
        (40, (3, 0), DEVICE),  # link-format answers Discover, not Read
        (None, (3, 0, 9), one),
    ):
        err = codec_error(formats.encode, cf, base, records)
        assert err.code == 0x86, (cf, base)  # 4.06


def test_default_format():
    assert formats.default_format((3, 0, 9), True) == 0
    assert formats.default_format((3, 0, 6, 1), True) == 0
    assert formats.default_format((3, 0, 6), False) == 11542
    assert formats.default_format((3, 0), False) == 11542
    assert formats.default_format((3,), False) == 11542


def test_a_resource_cannot_be_a_value_and_instances_at_once():
    # /3/0/9 as Resource Instance 0, then as a Resource, then as Resource Instance 0 again
    payload = bytes.fromhex("4000 c009 4000")
    assert codec_error(formats.decode, 11542, (3, 0, 9), payload, lambda path: "s").code == 0x80


def test_instances_and_resources_come_in_one_piece():
    rtype = lambda path: "s"  # noqa: E731
    # Object Instance 0, 1, then 0 again, each holding Resource 0 = ""
    twice = bytes.fromhex("0200c000 0201c000 0200c000")
    assert codec_error(formats.decode, 11542, (3,), twice, rtype).code == 0x80
    # Resource 0 twice in one instance; Resource Instance 1 twice in one resource
    assert codec_error(formats.decode, 11542, (3, 0), bytes.fromhex("c000c000"), rtype).code == 0x80
    assert codec_error(formats.decode, 11542, (3, 0, 9), bytes.fromhex("41010041010 0".replace(" ", "")), rtype).code == 0x80
    senml = b'[{"n":"/3/0/1","vs":"a"},{"n":"/3/0/1","vs":"b"}]'
    assert codec_error(formats.decode, 110, (3, 0), senml, rtype).code == 0x80
