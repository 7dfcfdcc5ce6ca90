# SenML JSON (110) and LwM2M JSON (11543) between records and payloads, in both
# interpreters. JSON key order differs between them (MicroPython's dicts are not ordered),
# so payloads are compared after json.loads.
import json

from check import codec_error
from lwm2m import Error, formats, senml

# /3/0, the Device example of TS Core 7.4.3.1, as records
DEVICE_TYPES = {0: "s", 1: "s", 2: "s", 3: "s", 6: "i", 7: "i", 8: "i", 9: "i", 10: "i",
                11: "i", 13: "t", 14: "s", 16: "s"}
DEVICE = [
    ((3, 0, 0), "s", "Open Mobile Alliance"),
    ((3, 0, 1), "s", "Lightweight M2M Client"),
    ((3, 0, 2), "s", "345000123"),
    ((3, 0, 3), "s", "1.0"),
    ((3, 0, 6, 0), "i", 1),
    ((3, 0, 6, 1), "i", 5),
    ((3, 0, 7, 0), "i", 3800),
    ((3, 0, 7, 1), "i", 5000),
    ((3, 0, 8, 0), "i", 125),
    ((3, 0, 8, 1), "i", 900),
    ((3, 0, 9), "i", 100),
    ((3, 0, 10), "i", 15),
    ((3, 0, 11, 0), "i", 0),
    ((3, 0, 13), "t", 1367491215),
    ((3, 0, 14), "s", "+02:00"),
    ((3, 0, 16), "s", "U"),
]
DEVICE_SENML = [
    {"bn": "/3/0/", "n": "0", "vs": "Open Mobile Alliance"},
    {"n": "1", "vs": "Lightweight M2M Client"},
    {"n": "2", "vs": "345000123"},
    {"n": "3", "vs": "1.0"},
    {"n": "6/0", "v": 1},
    {"n": "6/1", "v": 5},
    {"n": "7/0", "v": 3800},
    {"n": "7/1", "v": 5000},
    {"n": "8/0", "v": 125},
    {"n": "8/1", "v": 900},
    {"n": "9", "v": 100},
    {"n": "10", "v": 15},
    {"n": "11/0", "v": 0},
    {"n": "13", "v": 1367491215},
    {"n": "14", "vs": "+02:00"},
    {"n": "16", "vs": "U"},
]


def device_type(path):
    if path[0] != 3 or path[2] not in DEVICE_TYPES:
        raise Error(0x84, "no such resource")  # 4.04, as the object model answers
    return DEVICE_TYPES[path[2]]


def test_device_example_senml_both_ways():
    payload = formats.encode(110, (3, 0), DEVICE)
    assert type(payload) in (bytes, bytearray)
    assert json.loads(payload) == DEVICE_SENML
    assert senml.decode((3, 0), payload, device_type) == DEVICE
    # the target /3 also holds every path
    assert senml.decode((3,), payload, device_type) == DEVICE


def test_device_example_lwm2m_json_both_ways():
    entries = [dict(e) for e in DEVICE_SENML]
    del entries[0]["bn"]
    for e in entries:
        if "vs" in e:
            e["sv"] = e.pop("vs")
    payload = formats.encode(11543, (3, 0), DEVICE)
    assert json.loads(payload) == {"bn": "/3/0/", "e": entries}
    assert senml.decode_lwm2m((3, 0), payload, device_type) == DEVICE


# Every type, /1000/0/R with R the index in TYPES
TYPES = "sifbotluc"
ALL = [
    ((1000, 0, 0), "s", "\u00e9t\u00e9 \"quoted\""),
    ((1000, 0, 1), "i", -(1 << 63)),
    ((1000, 0, 2), "f", -2.5),
    ((1000, 0, 3), "b", True),
    ((1000, 0, 4), "o", b"\xfb\xff"),  # standard base64 "+/8=", base64url "-_8"
    ((1000, 0, 5), "t", 1700000000),
    ((1000, 0, 6), "l", (3, 65535)),
    ((1000, 0, 7), "u", (1 << 64) - 1),
    ((1000, 0, 8), "c", "</3/0>;rt=\"x\""),
]
ALL_SENML = [
    {"bn": "/1000/0/", "n": "0", "vs": "\u00e9t\u00e9 \"quoted\""},
    {"n": "1", "v": -9223372036854775808},
    {"n": "2", "v": -2.5},
    {"n": "3", "vb": True},
    {"n": "4", "vd": "-_8"},
    {"n": "5", "v": 1700000000},
    {"n": "6", "vlo": "3:65535"},
    {"n": "7", "v": 18446744073709551615},
    {"n": "8", "vs": "</3/0>;rt=\"x\""},
]
ALL_LWM2M = {"bn": "/1000/0/", "e": [
    {"n": "0", "sv": "\u00e9t\u00e9 \"quoted\""},
    {"n": "1", "v": -9223372036854775808},
    {"n": "2", "v": -2.5},
    {"n": "3", "bv": True},
    {"n": "4", "sv": "+/8="},
    {"n": "5", "v": 1700000000},
    {"n": "6", "ov": "3:65535"},
    {"n": "7", "v": 18446744073709551615},
    {"n": "8", "sv": "</3/0>;rt=\"x\""},
]}


def by_rid(path):
    return TYPES[path[2] % 9]


def _typed_equal(got, want):
    assert got == want, got
    for (_, _, a), (_, _, b) in zip(got, want):
        assert type(a) is type(b), (a, b)


def test_every_type_senml_both_ways():
    payload = formats.encode(110, (1000, 0), ALL)
    assert json.loads(payload) == ALL_SENML
    _typed_equal(senml.decode((1000, 0), payload, by_rid), ALL)


def test_every_type_lwm2m_json_both_ways():
    payload = formats.encode(11543, (1000, 0), ALL)
    assert json.loads(payload) == ALL_LWM2M
    _typed_equal(senml.decode_lwm2m((1000, 0), payload, by_rid), ALL)


def test_single_resource_names_the_path_itself():
    # bn + n must stay a clean path: "/3/0/0" + "", not "/3/0/0/" + ""
    rec = [((3, 0, 0), "s", "Open Mobile Alliance")]
    payload = formats.encode(110, (3, 0, 0), rec)
    assert json.loads(payload) == [{"bn": "/3/0/0", "n": "", "vs": "Open Mobile Alliance"}]
    assert senml.decode((3, 0, 0), payload, device_type) == rec
    payload = formats.encode(11543, (3, 0, 0), rec)
    assert json.loads(payload) == {"bn": "/3/0/0", "e": [{"n": "", "sv": "Open Mobile Alliance"}]}
    assert senml.decode_lwm2m((3, 0, 0), payload, device_type) == rec
    # a resource instance, and a multiple resource under its own path
    rec = [((3, 0, 6, 1), "i", 5)]
    assert json.loads(formats.encode(110, (3, 0, 6, 1), rec)) == [{"bn": "/3/0/6/1", "n": "", "v": 5}]
    rec = [((3, 0, 6, 0), "i", 1), ((3, 0, 6, 1), "i", 5)]
    assert json.loads(formats.encode(110, (3, 0, 6), rec)) == [
        {"bn": "/3/0/6/", "n": "0", "v": 1}, {"n": "1", "v": 5}]


def test_empty():
    assert formats.encode(110, (3, 0), []) == b"[]"
    assert json.loads(formats.encode(11543, (3, 0), [])) == {"bn": "/3/0/", "e": []}
    assert senml.decode((3, 0), b"[]", device_type) == []
    assert senml.decode_lwm2m((3, 0), b'{"e":[]}', device_type) == []


def test_names_from_any_base_name_and_full_paths():
    payload = b"""[
        {"n": "/3/0/9", "v": 80},
        {"bn": "/3/0/", "bt": 1700000000, "n": "10", "v": 20, "t": -5},
        {"n": "6/0", "v": 1},
        {"bn": "/3/0/7/", "n": "1", "v": 4000},
        {"bn": "", "n": "/3/0/14", "vs": "Z"},
        {"bn": "/3/0/13", "v": 1.7e9}
    ]"""
    assert senml.decode((3, 0), payload, device_type) == [
        ((3, 0, 9), "i", 80),
        ((3, 0, 10), "i", 20),
        ((3, 0, 6, 0), "i", 1),
        ((3, 0, 7, 1), "i", 4000),
        ((3, 0, 14), "s", "Z"),
        ((3, 0, 13), "t", 1700000000),
    ]
    # LwM2M JSON: full names and no bn
    payload = b'{"e":[{"n":"/3/0/9","v":80},{"n":"/3/0/6/1","v":2,"t":0}],"bt":5}'
    assert senml.decode_lwm2m((3, 0), payload, device_type) == [
        ((3, 0, 9), "i", 80), ((3, 0, 6, 1), "i", 2)]
    # one trailing slash is tolerated, and leading zeros
    payload = b'[{"bn":"/3/0/9/","v":1},{"bn":"/03/00/010","v":2}]'
    assert senml.decode((3, 0), payload, device_type) == [((3, 0, 9), "i", 1), ((3, 0, 10), "i", 2)]


def test_numbers():
    def one(field, value, rtype):
        payload = ('[{"n":"/1000/0/%d","%s":%s}]' % (TYPES.index(rtype), field, value)).encode()
        return senml.decode((1000,), payload, by_rid)[0][2]

    assert one("v", "5.0", "i") == 5 and type(one("v", "5.0", "i")) is int
    assert one("v", "1e3", "u") == 1000
    assert one("v", "-0", "i") == 0
    assert one("v", "9223372036854775807", "i") == (1 << 63) - 1
    assert one("v", "1.5", "t") == 1  # fractions of a second dropped
    assert one("v", "-1.5", "t") == -1
    assert one("v", "7", "f") == 7.0 and type(one("v", "7", "f")) is float
    assert one("v", "1e300", "f") == 1e300
    assert one("vd", '"-_8"', "o") == b"\xfb\xff"
    assert one("vd", '"+/8="', "o") == b"\xfb\xff"  # standard alphabet, padded, also taken
    assert one("vd", '""', "o") == b""
    assert one("vd", '"AQIDBAU"', "o") == b"\x01\x02\x03\x04\x05"
    for field, value, rtype in (
        ("v", "5.5", "i"), ("v", "9223372036854775808", "i"), ("v", "-9223372036854775809", "i"),
        ("v", "-1", "u"), ("v", "18446744073709551616", "u"), ("v", "1e19", "i"),
        ("v", "1e400", "f"), ("v", "-1e400", "t"), ("v", "true", "i"), ("v", '"5"', "i"),
        ("v", "null", "f"), ("v", "[1]", "t"), ("vb", "1", "b"), ("vb", '"true"', "b"),
        ("vs", "5", "s"), ("vs", "null", "c"), ("vd", '"A"', "o"), ("vd", '"AP9"', "o"),
        ("vd", '"A P8"', "o"), ("vd", "[]", "o"), ("vlo", '"3"', "l"), ("vlo", '"3:65536"', "l"),
        ("vlo", '"3:-1"', "l"), ("vlo", "3", "l"),
    ):
        err = codec_error(one, field, value, rtype)
        assert err.code == 0x80, (field, value, rtype)
        assert "expected" in str(err), str(err)


def test_wrong_value_field_for_the_type():
    for payload in (
        b'[{"n":"/3/0/9","vs":"100"}]',  # a string for an Integer
        b'[{"n":"/3/0/0","v":1}]',  # a number for a String
        b'[{"n":"/3/0/9","v":1,"vs":"1"}]',  # two values
        b'[{"n":"/3/0/9"}]',  # no value
        b'[{"n":"/3/0/9","sv":"1"}]',  # LwM2M JSON's field in SenML
    ):
        err = codec_error(senml.decode, (3, 0), payload, device_type)
        assert err.code == 0x80, payload
        assert "expected" in str(err), str(err)
    for payload in (b'{"e":[{"n":"/3/0/9","sv":"1"}]}', b'{"e":[{"n":"/3/0/0","vs":"a"}]}',
                    b'{"e":[{"n":"/3/0/0","ov":"1:1","sv":"a"}]}'):
        assert codec_error(senml.decode_lwm2m, (3, 0), payload, device_type).code == 0x80


def test_paths_outside_the_target():
    for base, name in (((3, 1), "/3/0/9"), ((4,), "/3/0/9"), ((3, 0, 10), "/3/0/9"),
                       ((3, 0, 6, 0), "/3/0/6/1"), ((3, 0, 6, 0), "/3/0/6")):
        payload = ('[{"n":"%s","v":1}]' % name).encode()
        err = codec_error(senml.decode, base, payload, device_type)
        assert err.code == 0x80 and "under" in str(err), (base, name, str(err))
        payload = ('{"e":[{"n":"%s","v":1}]}' % name).encode()
        assert codec_error(senml.decode_lwm2m, base, payload, device_type).code == 0x80


def test_bad_names():
    for name in ("3/0/9", "/3/0", "/3", "/", "", "/3/0/9/0/1", "/3/0/x", "/3/0/-9", "/3/0/ 9",
                 "/3/0/65536", "/3/0/000009", "/3//0/9", "/3/0/9//", "//3/0/9"):
        payload = ('[{"n":"%s","v":1}]' % name).encode()
        err = codec_error(senml.decode, (3,), payload, device_type)
        assert err.code == 0x80, name
        assert "path" in str(err), (name, str(err))


def test_unknown_resource_is_the_callers_error():
    err = codec_error(senml.decode, (3, 0), b'[{"n":"/3/0/99","v":1}]', device_type)
    assert err.code == 0x84


def test_bad_json_and_wrong_shapes():
    for payload in (b"", b"[", b'[{"n":"/3/0/9","v":1}', b"{'a':1}", b"[1,2] x", b"NaN",
                    b'[{"n":"/3/0/9","v":1}]]', b"\xff[]", b'["\xff"]', b"[tru]"):
        err = codec_error(senml.decode, (3, 0), payload, device_type)
        assert err.code == 0x80 and "JSON" in str(err), payload
        err = codec_error(senml.decode_lwm2m, (3, 0), payload, device_type)
        assert err.code == 0x80 and "JSON" in str(err), payload
    for payload in (b"{}", b"1", b'"x"', b"null", b"[1]", b"[[]]", b'[{"bn":1,"n":"9","v":1}]',
                    b'[{"n":["9"],"v":1}]', b'[{"n":"/3/0/9","v":1,"x_":0}]',
                    b'[{1:2,"n":"/3/0/9","v":1}]'):  # MicroPython's json takes {1: 2}
        assert codec_error(senml.decode, (3, 0), payload, device_type).code == 0x80, payload
    for payload in (b"[]", b"{}", b'{"e":{}}', b'{"bn":5,"e":[]}', b'{"e":[5]}', b"null"):
        assert codec_error(senml.decode_lwm2m, (3, 0), payload, device_type).code == 0x80, payload


def test_unknown_fields_are_ignored():
    payload = b'[{"n":"/3/0/9","v":1,"u":"%EL","ut":5,"bver":10}]'
    assert senml.decode((3, 0), payload, device_type) == [((3, 0, 9), "i", 1)]


def test_encode_refuses_values_the_type_cannot_hold():
    for rtype, value in (("i", 1 << 63), ("u", -1), ("f", float("inf")), ("l", (65536, 0)),
                         ("x", 1)):
        try:
            formats.encode(110, (1000, 0), [((1000, 0, 1), rtype, value)])
        except ValueError:
            continue
        raise AssertionError("no ValueError for %s %r" % (rtype, value))
    try:
        formats.encode(110, (3, 1), [((3, 0, 9), "i", 1)])
    except ValueError:
        return
    raise AssertionError("a path outside the target was encoded")
