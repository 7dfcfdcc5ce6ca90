# Plain text (content format 0) and octet-stream (42) values, both ways, in both interpreters.
from check import codec_error, raises
from lwm2m import text

_MIN64 = -(1 << 63)  # -9223372036854775808
_MAX64 = (1 << 63) - 1  # 9223372036854775807
_MAXU64 = (1 << 64) - 1  # 18446744073709551615


def _bad(raw, rtype):
    err = codec_error(text.decode, raw, rtype)
    assert err.code == 0x80, err.code  # 4.00 Bad Request
    assert "expected" in str(err)
    return err


def _both(value, raw, rtype):
    assert text.encode(value, rtype) == raw, text.encode(value, rtype)
    got = text.decode(raw, rtype)
    assert got == value and type(got) is type(value), got


def test_integer_both_ways_with_64_bit_boundaries():
    _both(0, b"0", "i")
    _both(-5, b"-5", "i")
    _both(1367491215, b"1367491215", "i")
    _both(_MIN64, b"-9223372036854775808", "i")
    _both(_MAX64, b"9223372036854775807", "i")


def test_integer_accepts_leading_zeros_and_minus_zero():
    assert text.decode(b"007", "i") == 7
    assert text.decode(b"-0", "i") == 0
    assert text.decode(b"-00000000000000000001", "i") == -1  # 20 digits


def test_integer_refuses_anything_but_minus_and_digits():
    for raw in (b"", b"-", b"+5", b" 5", b"5 ", b"5\n", b"1_000", b"0x10", b"1.0", b"1e3",
                b"--5", b"5-", b"\xd9\xa1", b"\xc2\xb2", b"000000000000000000001"):
        _bad(raw, "i")  # \xd9\xa1 is Arabic-Indic one, \xc2\xb2 superscript two


def test_integer_refuses_values_beyond_64_bits():
    _bad(b"9223372036854775808", "i")  # 2**63
    _bad(b"-9223372036854775809", "i")
    _bad(b"99999999999999999999", "i")


def test_time_is_an_integer_of_seconds():
    _both(1367491215, b"1367491215", "t")
    _both(-1, b"-1", "t")
    _both(_MAX64, b"9223372036854775807", "t")
    _bad(b"2013-05-02", "t")
    _bad(b"9223372036854775808", "t")


def test_unsigned_both_ways_with_boundaries():
    _both(0, b"0", "u")
    _both(_MAXU64, b"18446744073709551615", "u")
    _both(1 << 63, b"9223372036854775808", "u")


def test_unsigned_refuses_signs_and_overflow():
    for raw in (b"-1", b"-0", b"+1", b"18446744073709551616", b"", b"1 ", b"one"):
        _bad(raw, "u")


def test_float_both_ways():
    _both(1.1, b"1.1", "f")
    _both(-0.5, b"-0.5", "f")
    _both(3.0, b"3.0", "f")
    _both(1e22, b"1e+22", "f")
    _both(1e-07, b"1e-07", "f")
    _both(1.7976931348623157e308, b"1.7976931348623157e+308", "f")


def test_float_encode_takes_an_int_and_refuses_inf_and_nan():
    assert text.encode(3, "f") == b"3.0"
    inf = float("inf")
    for value in (inf, -inf, inf - inf):
        raises(ValueError, text.encode, value, "f")


def test_float_decode_accepts_decimal_and_exponent_forms():
    for raw, value in ((b"5", 5.0), (b"-5", -5.0), (b"5.", 5.0), (b".5", 0.5), (b"-.5", -0.5),
                       (b"1E3", 1000.0), (b"1e+3", 1000.0), (b"2.5e-1", 0.25), (b"1.e2", 100.0),
                       (b"007.50", 7.5), (b"1e-400", 0.0)):
        got = text.decode(raw, "f")
        assert got == value and type(got) is float, (raw, got)


def test_float_decode_refuses_what_is_not_a_plain_decimal():
    for raw in (b"", b"-", b".", b"-.", b"e5", b".e5", b"1e", b"1e+", b"1e5.5", b"1.2.3",
                b"1e5e5", b"+1.5", b"--1", b"inf", b"-inf", b"nan", b"Infinity", b"1_0.5",
                b" 1.5", b"1.5 ", b"1.5\n", b"0x1p3", b"1,5", b"1.5f", b"1e\xd9\xa1"):
        _bad(raw, "f")


def test_float_decode_refuses_overflow_to_infinity():
    _bad(b"1e400", "f")
    _bad(b"-1e400", "f")


def test_boolean_both_ways_and_nothing_else():
    _both(False, b"0", "b")
    _both(True, b"1", "b")
    for raw in (b"", b"2", b"00", b"true", b"True", b"01", b" 1", b"1\n"):
        _bad(raw, "b")


def test_objlnk_both_ways_with_boundaries():
    _both((3, 0), b"3:0", "l")
    _both((0, 0), b"0:0", "l")
    _both((65535, 65535), b"65535:65535", "l")
    assert text.decode(b"03:00", "l") == (3, 0)


def test_objlnk_refuses_bad_forms():
    for raw in (b"", b":", b"3", b"3:", b":0", b"3:0:1", b"-1:0", b"3:-1", b"65536:0",
                b"0:65536", b"3 :0", b"3: 0", b"3.0", b"3/0"):
        _bad(raw, "l")


def test_objlnk_encode_refuses_out_of_range():
    raises(ValueError, text.encode, (65536, 0), "l")
    raises(ValueError, text.encode, (0, -1), "l")


def test_integer_encode_refuses_wrong_types_and_ranges():
    raises(ValueError, text.encode, 1 << 63, "i")
    raises(ValueError, text.encode, -(1 << 63) - 1, "t")
    raises(ValueError, text.encode, -1, "u")
    raises(ValueError, text.encode, 1 << 64, "u")
    raises(ValueError, text.encode, 1.5, "i")


def test_string_both_ways_as_utf8():
    _both("Open Mobile Alliance", b"Open Mobile Alliance", "s")
    _both("", b"", "s")
    _both("+02:00", b"+02:00", "s")
    _both("caf\u00e9 \u20ac", b"caf\xc3\xa9 \xe2\x82\xac", "s")
    _both(" 1 ", b" 1 ", "s")  # a string keeps its spaces


def test_string_encode_takes_only_a_str():
    raises(TypeError, text.encode, b"x", "s")
    raises(TypeError, text.encode, 5, "c")


def test_string_refuses_invalid_utf8():
    for raw in (b"\xff", b"abc\xe2\x82", b"\x80", b"\xc3"):
        _bad(raw, "s")
        _bad(raw, "c")
        _bad(raw, "i")


def test_corelnk_is_a_string():
    _both("</3/0>,</1/0>", b"</3/0>,</1/0>", "c")


def test_decode_takes_bytearray_and_memoryview():
    assert text.decode(bytearray(b"-12"), "i") == -12
    assert text.decode(memoryview(b"xx1.5")[2:], "f") == 1.5
    assert text.decode(memoryview(b"YWJj"), "o") == b"abc"
    assert text.decode(bytearray(b"hi"), "s") == "hi"


def test_opaque_as_base64_both_ways():
    _both(b"", b"", "o")
    _both(b"a", b"YQ==", "o")
    _both(b"ab", b"YWI=", "o")
    _both(b"abc", b"YWJj", "o")
    _both(b"\x00\xff\xfe\x80", b"AP/+gA==", "o")
    assert text.encode(bytearray(b"abc"), "o") == b"YWJj"


def test_opaque_refuses_anything_but_canonical_base64():
    for raw in (b"YQ", b"YQ=", b"YQ===", b"Y===", b"YWJj\n", b"YW Jj", b" YWJj", b"YWJ!",
                b"YQ==YQ==", b"=YWJ", b"YR==", b"YWJ-", b"YWJ_", b"\xffYWJ", b"A"):
        _bad(raw, "o")  # YR== has unused bits set; - and _ are the URL-safe alphabet


def test_octet_stream_is_for_opaque_only():
    assert text.encode_opaque(b"\x00\x01", "o") == b"\x00\x01"
    assert text.encode_opaque(bytearray(b"ab"), "o") == b"ab"
    got = text.decode_opaque(memoryview(b"\xffz"), "o")
    assert got == b"\xffz" and type(got) is bytes
    for rtype in "siufbtlc":
        assert codec_error(text.encode_opaque, b"1", rtype).code == 0x86  # 4.06
        assert codec_error(text.decode_opaque, b"1", rtype).code == 0x8F  # 4.15


def test_unknown_type_is_a_programming_error():
    raises(ValueError, text.encode, 1, "x")
    raises(ValueError, text.decode, b"1", "x")
