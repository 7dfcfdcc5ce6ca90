# CoRE Link Format (RFC 6690): registration payloads and Discover answers, both ways.
from check import codec_error, raises
from lwm2m import link

_REGISTER = [("/", [("rt", "oma.lwm2m"), ("ct", 110)]), ("/1/0", []), ("/3/0", []),
             ("/3303", [("ver", 1.1)])]
_REGISTER_TEXT = '</>;rt="oma.lwm2m";ct=110,</1/0>,</3/0>,</3303>;ver=1.1'
_DISCOVER = [("/3/0", [("pmin", 10), ("pmax", 60)]), ("/3/0/1", []), ("/3/0/6", [("dim", 2)])]
_DISCOVER_TEXT = "</3/0>;pmin=10;pmax=60,</3/0/1>,</3/0/6>;dim=2"


def _bad(text, offset):
    err = codec_error(link.parse, text)
    assert err.code == 0x80, err.code  # 4.00 Bad Request
    assert ("at offset %d" % offset) in str(err), str(err)
    assert "expected" in str(err)
    return err


def test_encode_registration_payload():
    assert link.encode(_REGISTER) == _REGISTER_TEXT.encode()


def test_parse_registration_payload():
    got = link.parse(_REGISTER_TEXT)
    assert got == _REGISTER, got
    assert type(got[0][1][1][1]) is int and type(got[3][1][0][1]) is float


def test_discover_answer_both_ways():
    assert link.encode(_DISCOVER) == _DISCOVER_TEXT.encode()
    assert link.parse(_DISCOVER_TEXT) == _DISCOVER


def test_parse_takes_bytes_as_utf8():
    assert link.parse(_REGISTER_TEXT.encode()) == _REGISTER
    assert link.parse(bytearray(b"</a>;t=\"\xc3\xa9\"")) == [("/a", [("t", "\u00e9")])]


def test_empty_text_and_empty_list():
    assert link.parse("") == []
    assert link.parse(b"") == []
    assert link.parse(" \r\n\t") == []
    assert link.encode([]) == b""


def test_attribute_without_value():
    assert link.encode([("/3/0/13", [("obs", None), ("pmin", 5)])]) == b"</3/0/13>;obs;pmin=5"
    assert link.parse("</3/0/13>;obs;pmin=5,</4>;obs") == [
        ("/3/0/13", [("obs", None), ("pmin", 5)]), ("/4", [("obs", None)])]


def test_unquoted_values_become_int_float_or_str():
    got = link.parse("</a>;i=-7;z=007;f=20.5;n=-0.5;b=U;e=1e5;d=1.;x=.5;m=-;v=1.0.1;h=0x1F;w=+3")
    assert got == [("/a", [("i", -7), ("z", 7), ("f", 20.5), ("n", -0.5), ("b", "U"),
                          ("e", "1e5"), ("d", "1."), ("x", ".5"), ("m", "-"),
                          ("v", "1.0.1"), ("h", "0x1F"), ("w", "+3")])], got
    types = [type(v) for _n, v in got[0][1]]
    assert types[:4] == [int, int, float, float] and types[4] is str


def test_long_digit_runs_stay_strings():
    twenty = "9" * 20
    assert link.parse("</a>;n=" + twenty) == [("/a", [("n", 10**20 - 1)])]
    assert link.parse("</a>;n=-" + twenty) == [("/a", [("n", 1 - 10**20)])]
    assert link.parse("</a>;n=1" + twenty) == [("/a", [("n", "1" + twenty)])]


def test_a_decimal_that_overflows_a_float_stays_a_string():
    huge = "9" * 400 + ".5"
    assert link.parse("</a>;f=" + huge) == [("/a", [("f", huge)])]


def test_quoted_values_keep_commas_semicolons_and_brackets():
    text = '</a>;t="x,y;z=<b>",</c>;u=""'
    assert link.parse(text) == [("/a", [("t", "x,y;z=<b>")]), ("/c", [("u", "")])]


def test_quoted_values_are_always_strings():
    assert link.parse('</a>;ct="110"') == [("/a", [("ct", "110")])]
    assert link.encode([("/a", [("ct", "110")])]) == b'</a>;ct="110"'


def test_escapes_both_ways():
    links = [("/a", [("t", 'say "hi" \\ bye'), ("u", "\\")])]
    text = '</a>;t="say \\"hi\\" \\\\ bye";u="\\\\"'
    assert link.encode(links) == text.encode()
    assert link.parse(text) == links
    # any character after a backslash stands for itself
    assert link.parse('</a>;t="\\a\\,b"') == [("/a", [("t", "a,b")])]


def test_floats_are_written_shortest():
    assert link.encode([("/x", [("ver", 1.1), ("gt", 20.5), ("lt", -0.5), ("st", 2.0)])]) == \
        b"</x>;ver=1.1;gt=20.5;lt=-0.5;st=2.0"


def test_whitespace_after_commas_before_the_first_link_and_at_the_end():
    text = " </1/0>,\r\n</3/0>;ct=40,\t </5>,\n</6>\r\n"
    assert link.parse(text) == [("/1/0", []), ("/3/0", [("ct", 40)]), ("/5", []), ("/6", [])]


def test_uri_is_anything_up_to_the_closing_bracket():
    assert link.parse("<>,<coap://h:5683/a?b=c;d>") == [("", []), ("coap://h:5683/a?b=c;d", [])]


def test_duplicate_attributes_keep_their_order():
    assert link.parse("</a>;x=1;x=2;x") == [("/a", [("x", 1), ("x", 2), ("x", None)])]


def test_encode_refuses_a_bracket_in_a_uri():
    raises(ValueError, link.encode, [("/a>b", [])])


def test_errors_name_the_offset():
    _bad("/1/0", 0)  # no '<'
    _bad("</1/0", 5)  # no '>'
    _bad("</1/0>x", 6)  # junk after '>'
    _bad("</1/0> ,</2>", 6)  # whitespace only after a comma
    _bad("</1/0>,,</2>", 7)  # empty link between commas
    _bad("</1/0>,", 7)  # empty link at the end
    _bad("</1/0>, \n", 7)  # trailing whitespace is dropped first
    _bad(",</1/0>", 0)  # empty link at the start
    _bad("</1/0>;", 7)  # empty attribute name at the end
    _bad("</1/0>;;x", 7)  # empty attribute name between semicolons
    _bad("</1/0>;=5", 7)  # empty attribute name before '='
    _bad("</1/0>;ct=", 10)  # missing value
    _bad("</1/0>;ct=,</2>", 10)  # missing value before a comma
    _bad("</1/0>;ct=;x", 10)  # missing value before a semicolon
    _bad('</1/0>;rt="oma', 14)  # unterminated quote
    _bad('</1/0>;rt="oma\\"', 16)  # the only quote is escaped
    _bad('</1/0>;rt="oma\\', 15)  # backslash at the end
    _bad('</1/0>;rt="x"y', 13)  # junk after the closing quote
    _bad("</1/0>;r t=1", 8)  # space in a name
    _bad("</1/0>;rt:x=1", 9)  # separator in a name
    _bad("</1/0>;\u00e9=1", 7)  # non-ASCII name
    _bad("</1/0>;rt=a b", 11)  # space in an unquoted value
    _bad("</1/0>;rt=a\"b", 11)  # quote inside an unquoted value
    _bad("</1/0>;rt=a\\b", 11)  # backslash in an unquoted value
    _bad("</1/0>;rt=\u00e9", 10)  # non-ASCII unquoted value
    _bad("</1/0>;rt=a\tb", 11)  # control character in an unquoted value
    _bad("<a>\n,<b>", 3)  # whitespace before a comma


def test_offsets_count_characters_not_bytes():
    # "\u00e9" is two bytes in UTF-8; the offsets are the same for str and bytes input
    text = '</\u00e9\u00e9>;t="\u00e9\u00e9";\u00e9'
    _bad(text, 13)
    _bad(text.encode(), 13)  # byte 17
    _bad('</\u00e9\u00e9>x', 5)
    _bad('</a>;t="\u00e9\\', 10)  # unterminated: the offset is the end of the text


def test_parse_takes_memoryview_and_keeps_non_ascii():
    got = link.parse(memoryview('</\u00e9>;t="\\\u00e9\u20ac"'.encode()))
    assert got == [("/\u00e9", [("t", "\u00e9\u20ac")])], got


def test_bytes_that_are_not_utf8():
    err = codec_error(link.parse, b"</a>;t=\"\xff\"")
    assert err.code == 0x80 and "UTF-8" in str(err)


def test_bytes_values_are_written_unquoted():
    assert link.encode([("/3303", [("ver", b"1.1")])]) == b"</3303>;ver=1.1"
