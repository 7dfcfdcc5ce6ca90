# CoAP message format (RFC 7252 section 3): bytes on the wire, both directions.
from check import codec_error, raises
from lwm2m import coap
from lwm2m.coap import MessageError

CON, NON, ACK, RST = 0, 1, 2, 3
GET, POST, CONTENT = 0x01, 0x02, 0x45
URI_PATH, CONTENT_FORMAT, URI_QUERY, ACCEPT = 11, 12, 15, 17
OBSERVE, LOCATION_PATH, BLOCK2, BLOCK1, SIZE2, SIZE1 = 6, 8, 23, 27, 28, 60


def roundtrip(data):
    assert bytes(coap.encode(coap.decode(data))) == data
    return coap.decode(data)


def test_get_with_uri_path_and_token():
    msg = coap.Message(CON, GET, 0x1234, b"\xab\xcd")
    msg.set_path("/3/0/1")
    # 0x42: ver 1, CON, TKL 2; 0xB1: delta 11 (Uri-Path), length 1; then 0x01: delta 0, length 1
    wire = bytes.fromhex("4201 1234 abcd b133 0130 0131".replace(" ", ""))
    assert bytes(coap.encode(msg)) == wire
    back = roundtrip(wire)
    assert (back.type, back.code, back.mid, back.token) == (CON, GET, 0x1234, b"\xab\xcd")
    assert back.path() == "/3/0/1"
    assert back.get_all(URI_PATH) == ["3", "0", "1"]


def test_all_four_types():
    for mtype in (CON, NON, ACK, RST):
        msg = coap.decode(bytes((0x40 | mtype << 4, 0, 0, 7)))
        assert msg.type == mtype and msg.code == 0 and msg.mid == 7


def test_tokens_of_every_length():
    for tkl in range(9):
        token = bytes(range(1, tkl + 1))
        msg = coap.Message(NON, CONTENT, 1, token, b"x")
        wire = bytes(coap.encode(msg))
        assert wire[0] == 0x50 | tkl
        assert roundtrip(wire).token == token


def test_payload_marker():
    wire = bytes.fromhex("6045 0001 ff") + b"hello"  # ACK 2.05, no token, no option
    assert roundtrip(wire).payload == b"hello"
    assert bytes(coap.encode(coap.Message(ACK, CONTENT, 1))) == bytes.fromhex("60450001")


def test_option_delta_forms():
    # delta 12 fits the nibble; 13 and 268 take one extra byte (value - 13); 269 and 65535
    # take two (value - 269).
    for number, header in ((12, "c0"), (13, "d000"), (268, "d0ff"), (269, "e00000"), (65535, "e0fef2")):
        msg = coap.Message(CON, GET, 0)
        msg.add(number, b"")
        wire = bytes(coap.encode(msg))
        assert wire[4:].hex() == header, (number, wire.hex())
        assert roundtrip(wire).options == [(number, b"")]


def test_option_length_forms():
    # lengths 12 | 13 and 268 (one byte) | 269 and 65804 (two bytes: 65804 - 269 = 0xffff)
    for length, header in ((12, "0c"), (13, "0d00"), (268, "0dff"), (269, "0e0000"), (65804, "0effff")):
        msg = coap.Message(CON, GET, 0)
        msg.add(0, b"v" * length)
        wire = bytes(coap.encode(msg))
        assert wire[4 : 4 + len(header) // 2].hex() == header, length
        assert roundtrip(wire).options[0][1] == b"v" * length
    msg = coap.Message(CON, GET, 0)
    msg.add(0, b"v" * 65805)
    raises(ValueError, coap.encode, msg)


def test_repeated_options_keep_their_order():
    msg = coap.Message(CON, POST, 9)
    msg.add_query("lt", 300)
    msg.set_path("/rd")
    msg.add_query("ep", "node-1")
    msg.add(CONTENT_FORMAT, 40)
    msg.add_query("b", "U")
    back = roundtrip(bytes(coap.encode(msg)))
    assert [n for n, _ in back.options] == [URI_PATH, CONTENT_FORMAT, URI_QUERY, URI_QUERY, URI_QUERY]
    assert back.get_all(URI_QUERY) == ["lt=300", "ep=node-1", "b=U"]
    assert back.query() == {"lt": "300", "ep": "node-1", "b": "U"}


def test_uint_options_are_minimal():
    assert coap.uint_bytes(0) == b""
    assert coap.uint_bytes(255) == b"\xff"
    assert coap.uint_bytes(256) == b"\x01\x00"
    assert coap.uint_bytes(0xFFFFFF) == b"\xff\xff\xff"
    assert coap.uint_bytes(0xFFFFFFFF) == b"\xff\xff\xff\xff"
    msg = coap.Message(ACK, CONTENT, 1)
    msg.add(CONTENT_FORMAT, 0)  # text/plain: an empty option
    msg.add(OBSERVE, 0x10000)
    wire = bytes(coap.encode(msg))
    # Observe 6: delta 6, length 3; Content-Format 12: delta 6, length 0
    assert wire[4:] == bytes.fromhex("63010000 60")
    back = roundtrip(wire)
    assert back.get(CONTENT_FORMAT) == 0 and back.get(OBSERVE) == 0x10000


def test_content_format_accept_and_missing_options():
    msg = coap.Message(CON, GET, 3)
    msg.add(ACCEPT, 11542)
    back = roundtrip(bytes(coap.encode(msg)))
    assert back.get(ACCEPT) == 11542
    assert back.get(CONTENT_FORMAT) is None
    assert back.get(CONTENT_FORMAT, 0) == 0
    assert back.path() == "/"


def test_location_path_and_query_helpers():
    msg = coap.Message(ACK, 0x41, 5)
    msg.set_path("rd/5a3f", LOCATION_PATH)
    msg.add_query("Q", number=20)
    back = roundtrip(bytes(coap.encode(msg)))
    assert back.path(LOCATION_PATH) == "/rd/5a3f"
    assert back.query(20) == {"Q": None}
    empty = coap.Message()
    empty.set_path("/")
    assert empty.options == []


def test_block_values_in_one_two_and_three_bytes():
    # NUM << 4 | M << 3 | SZX: 1 byte up to NUM 15, 2 bytes up to 4095, 3 bytes up to 2**20 - 1
    cases = ((0, False, 0, b""), (2, True, 6, b"\x2e"), (15, False, 2, b"\xf2"),
             (16, True, 6, b"\x01\x0e"), (4095, False, 6, b"\xff\xf6"),
             (4096, True, 1, b"\x01\x00\x09"), ((1 << 20) - 1, True, 6, b"\xff\xff\xfe"))
    for num, more, szx, raw in cases:
        value = coap.block_value(num, more, szx)
        assert coap.uint_bytes(value) == raw
        msg = coap.Message(CON, GET, 1)
        msg.add(BLOCK2, value)
        assert roundtrip(bytes(coap.encode(msg))).block(BLOCK2) == (num, more, szx)
    raises(ValueError, coap.block_value, 0, False, 7)
    raises(ValueError, coap.block_value, 1 << 20, False, 0)
    assert coap.Message().block(BLOCK1) is None


def test_block_szx_7_is_refused_with_4_00():
    msg = coap.Message(CON, POST, 1)
    msg.add(BLOCK1, 0x0F)  # NUM 0, M 1, SZX 7
    back = roundtrip(bytes(coap.encode(msg)))
    assert codec_error(back.block, BLOCK1).code == 0x80


def test_size_options():
    msg = coap.Message(ACK, 0x8D, 1)
    msg.add(SIZE1, 1024)
    msg.add(SIZE2, 70000)
    back = roundtrip(bytes(coap.encode(msg)))
    assert back.get(SIZE1) == 1024 and back.get(SIZE2) == 70000


def test_code_names():
    assert coap.code_name(0x45) == "2.05 Content"
    assert coap.code_name(0x01) == "0.01 GET"
    assert coap.code_name(0x8F) == "4.15 Unsupported Content-Format"
    assert coap.code_name(0xA3) == "5.03 Service Unavailable"
    assert coap.code_name(0x5F) == "2.31 Continue"
    assert coap.code_name(0x20) == "1.00"


def decode_error(data):
    return raises(MessageError, coap.decode, data)


def test_short_datagram_and_wrong_version_are_ignored():
    for data in (b"", b"\x40\x01\x00", bytes.fromhex("80010001"), bytes.fromhex("c0010001")):
        err = decode_error(data)
        assert err.code is None and err.mid is None


def test_token_length_9_to_15_is_rejected():
    for tkl in range(9, 16):
        err = decode_error(bytes((0x40 | tkl, GET, 0x12, 0x34)) + b"t" * 15)
        assert err.code is None and err.mid == 0x1234 and err.type == CON


def test_truncated_token_is_rejected():
    err = decode_error(bytes.fromhex("4401 0007 aabbcc"))
    assert err.code is None and err.mid == 7


def test_empty_message_with_content_is_rejected():
    err = decode_error(bytes.fromhex("4000 0009 ff00"))
    assert err.code is None and err.mid == 9


def test_malformed_con_request_is_answered_with_4_00():
    bad = (
        "4101 0001 aa d0",          # delta 13 without its extra byte
        "4101 0001 aa e000",        # delta 14 with one of its two extra bytes
        "4101 0001 aa 0d",          # length 13 without its extra byte
        "4101 0001 aa f1",          # delta nibble 15 that is not the payload marker
        "4101 0001 aa 1f",          # length nibble 15
        "4101 0001 aa b3 3030",     # option value runs past the end
        "4101 0001 aa ff",          # payload marker with no payload
        "4101 0001 aa e0ffff e0ffff",  # option number above 65535
    )
    for text in bad:
        err = decode_error(bytes.fromhex(text.replace(" ", "")))
        assert err.code == 0x80, text
        assert (err.mid, err.type, err.token) == (1, CON, b"\xaa")


def test_malformed_non_request_or_response_is_rejected():
    for text in ("5101 0001 aa ff", "6145 0001 aa d0", "4145 0001 aa f1"):
        err = decode_error(bytes.fromhex(text.replace(" ", "")))
        assert err.code is None and err.mid == 1, text


def test_known_option_with_impossible_length():
    # Uri-Port (7, critical) with 3 bytes: a CON request gets 4.02 Bad Option.
    err = decode_error(bytes.fromhex("4001 0002 73 000050"))
    assert err.code == 0x82 and err.mid == 2
    # Content-Format (12, elective) with 3 bytes is ignored like an unknown elective option.
    msg = coap.decode(bytes.fromhex("4002 0003 b3 726466 13 000028 ff 41"))
    assert msg.path() == "/rdf" and msg.options == [(URI_PATH, b"rdf")] and msg.payload == b"A"


def test_unknown_options_are_kept_raw():
    wire = bytes.fromhex("4001 0004 d2 ee 0102") + b""  # option 13 + 0xee = 251, 2 bytes
    back = roundtrip(wire)
    assert back.get(251) == b"\x01\x02"


def test_string_option_that_is_not_utf8_is_4_00():
    msg = coap.decode(bytes.fromhex("4001 0005 b2 c328"))
    assert codec_error(msg.get, URI_PATH).code == 0x80


def test_decode_reads_a_memoryview_of_a_larger_buffer():
    buf = bytearray(64)
    wire = bytes.fromhex("4101 0042 07 b3 726466 ff 6869")
    buf[: len(wire)] = wire
    msg = coap.decode(memoryview(buf)[: len(wire)])
    assert msg.mid == 0x42 and msg.path() == "/rdf" and msg.payload == b"hi"


def test_encode_refuses_a_long_token_and_unsorted_options():
    raises(ValueError, coap.encode, coap.Message(CON, GET, 1, b"123456789"))
    msg = coap.Message(CON, GET, 1)
    msg.options = [(11, b"a"), (3, b"b")]
    raises(ValueError, coap.encode, msg)
