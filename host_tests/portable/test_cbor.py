# CBOR (lwm2m/cbor.py) against the examples of RFC 8949 appendix A, its refusals, and the two
# CBOR formats through the client: reads and writes in SenML CBOR (112) and CBOR (60).
# Portable: runs under pytest and in the MicroPython VM.
from fakes import GET, PUT, registered
from lwm2m import Error, cbor

SENML_CBOR, CBOR = 112, 60

# (item, its encoding in hex) from RFC 8949 appendix A; floats as this codec writes them
EXAMPLES = (
    (0, "00"), (1, "01"), (10, "0a"), (23, "17"), (24, "1818"), (25, "1819"), (100, "1864"),
    (1000, "1903e8"), (1000000, "1a000f4240"), (1000000000000, "1b000000e8d4a51000"),
    (18446744073709551615, "1bffffffffffffffff"), (-1, "20"), (-10, "29"), (-100, "3863"),
    (-1000, "3903e7"), (-18446744073709551616, "3bffffffffffffffff"), (False, "f4"), (True, "f5"),
    (None, "f6"), (b"", "40"), (b"\x01\x02\x03\x04", "4401020304"), ("", "60"), ("a", "6161"),
    ("IETF", "6449455446"), ("\u00fc", "62c3bc"), ([], "80"), ([1, 2, 3], "83010203"),
    ([1, [2, 3], [4, 5]], "8301820203820405"), ({}, "a0"), ({1: 2, 3: 4}, "a201020304"),
    ({"a": 1, "b": [2, 3]}, "a26161016162820203"), (1.1, "fb3ff199999999999a"),
)
# Encodings of the appendix this codec reads but writes otherwise: shorter floats and
# indefinite lengths.
READS = (
    ("f90000", 0.0), ("f93c00", 1.0), ("f93e00", 1.5), ("f97bff", 65504.0), ("fa47c35000", 100000.0),
    ("f90001", 5.960464477539063e-08), ("f9c400", -4.0), ("9f018202039f0405ffff", [1, [2, 3], [4, 5]]),
    ("bf61610161629f0203ffff", {"a": 1, "b": [2, 3]}), ("9fff", []),
)
REFUSED = (
    "", "18", "1901", "62c3", "6241", "83010203ff" "00", "c11a514b67b0", "f0", "f818", "1c", "5f4101ff",
    "7f6161ff", "ff", "8201ff", "a1f601", "818181818181818181818101", "9b00000000000000ff", "fa0000",
)


def test_the_examples_of_rfc_8949_both_ways():
    for item, hexed in EXAMPLES:
        assert bytes(cbor.encode(item)).hex() == hexed, item
        assert cbor.decode(bytes.fromhex(hexed)) == item, hexed


def test_shorter_floats_and_indefinite_lengths_are_read():
    for hexed, item in READS:
        assert cbor.decode(bytes.fromhex(hexed)) == item, hexed


def test_what_it_does_not_take_is_a_4_00():
    for hexed in REFUSED:
        try:
            cbor.decode(bytes.fromhex(hexed))
        except Error as exc:
            assert exc.code == 0x80 and str(exc).startswith("CBOR: "), hexed
        else:
            assert False, "accepted " + hexed


def _device(peer, accept, path="/3/0"):
    answer = peer.request(GET, path, 100, accept=accept)
    assert answer.code == 0x45 and answer.get(12) == accept
    return cbor.decode(answer.payload)


def test_a_read_in_senml_cbor_names_every_value_under_a_base_name():
    _client, peer, _reg = registered()
    records = _device(peer, SENML_CBOR)
    assert records[0][-2] == "/3/0/" and records[0][0] == "0" and records[0][3] == "Test Maker"
    assert bytes(cbor.encode(records[0]))[:3] == bytes.fromhex("a30061")  # "n" first: keys sorted
    by_name = {r[0]: r for r in records}
    assert by_name["11/0"][2] == 0 and by_name["21"][2] == 256  # Error Code, Memory Total (KiB)
    one = _device(peer, SENML_CBOR, "/3/0/0")
    assert one == [{-2: "/3/0/0", 0: "", 3: "Test Maker"}]


def test_a_single_value_reads_and_writes_in_cbor():
    client, peer, _reg = registered()
    assert _device(peer, CBOR, "/3/0/0") == "Test Maker"
    assert _device(peer, CBOR, "/1/0/1") == 300
    answer = peer.request(PUT, "/1/0/1", 110, bytes(cbor.encode(600)), cf=CBOR)
    assert answer.code == 0x44 and client.model.instance(1, 0).get(1) == 600
    wrong = peer.request(PUT, "/1/0/1", 120, bytes(cbor.encode("600")), cf=CBOR)
    assert wrong.code == 0x80 and client.model.instance(1, 0).get(1) == 600
    assert peer.request(GET, "/3/0", 130, accept=CBOR).code == 0x86  # one value only


def test_a_write_in_senml_cbor_is_checked_like_any_other():
    client, peer, _reg = registered()
    payload = bytes(cbor.encode([{-2: "/1/0/", 0: "1", 2: 900}, {0: "2", 2: 5}]))
    assert peer.request(PUT, "/1/0", 100, payload, cf=SENML_CBOR).code == 0x44
    server = client.model.instance(1, 0)
    assert (server.get(1), server.get(2)) == (900, 5)
    bad = bytes(cbor.encode([{-2: "/1/0/", 0: "1", 2: 1000}, {0: "2", 3: "five"}]))
    assert peer.request(PUT, "/1/0", 110, bad, cf=SENML_CBOR).code == 0x80
    assert (server.get(1), server.get(2)) == (900, 5)  # all or nothing
