# Properties of the plain text and link format codecs (CPython only): round trips over
# generated values, and "any input gives a value or lwm2m.Error, nothing else" for the
# decoders, 10,000 examples each.
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lwm2m import Error, link, text

_MANY = settings(max_examples=10000, deadline=None)
_SOME = settings(max_examples=1000, deadline=None)

_MIN64, _MAX64, _MAXU64 = -(1 << 63), (1 << 63) - 1, (1 << 64) - 1

# -- link format ------------------------------------------------------------------------

_TOKEN = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~",
                 min_size=1, max_size=8)
# floats whose repr is a plain decimal, the ones that parse back as float
_PLAIN_FLOATS = st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: "e" not in repr(f))
_VALUES = st.one_of(st.none(), st.integers(-(10**20) + 1, 10**20 - 1), st.text(max_size=10),
                    _PLAIN_FLOATS, st.integers(-10**6, 10**6).map(lambda n: n / 100))
_LINKS = st.lists(st.tuples(st.text(max_size=12).filter(lambda u: ">" not in u),
                            st.lists(st.tuples(_TOKEN, _VALUES), max_size=4)), max_size=5)
# text made of pieces of the syntax, so that the parser gets deep before it fails
_LINK_PIECES = ["<", ">", "</3/0>", "<>", ";", ",", "=", '"', "\\", "ct", "=1", "=-1.5", "=1.",
                '="a,b"', '="\\""', "=U", " ", "\t", "\r\n", "x", "-", ".", "9", "\u00e9", ";obs",
                ",\n", "\x00", "\ud800", ""]
_LINKISH = st.lists(st.sampled_from(_LINK_PIECES), max_size=12).map("".join)


def _mutate(args):
    # valid text with one piece put in at some place, maybe one character taken out, and
    # maybe cut short
    valid, at, piece, cut, end = args
    at %= len(valid) + 1
    valid = valid[:at] + piece + valid[at:]
    if cut and valid:
        cut %= len(valid)
        valid = valid[:cut] + valid[cut + 1 :]
    if end:
        valid = valid[: end % (len(valid) + 1)]
    return valid


# valid documents to mutate (generating them from _LINKS costs Hypothesis too much time)
_LINK_DOCS = ['</>;rt="oma.lwm2m";ct=110,</1/0>,</3/0>,</3303>;ver=1.1',
              "</3/0>;pmin=10;pmax=60,</3/0/1>,</3/0/6>;dim=2",
              '</a>;t="x,y;\\"z\\\\",\r\n <b>;obs;gt=-20.5;b=U', "", "<>"]
_LINK_INPUTS = st.one_of(
    _LINKISH,
    st.tuples(st.sampled_from(_LINK_DOCS), st.integers(0, 80), st.sampled_from(_LINK_PIECES),
              st.integers(0, 80), st.integers(0, 80)).map(_mutate),
    st.text(max_size=40))


def _same(a, b):
    # == but with type checks, so 1 and 1.0 and True differ
    assert a == b
    for (ua, attrs_a), (ub, attrs_b) in zip(a, b):
        assert type(ua) is type(ub) is str
        for (na, va), (nb, vb) in zip(attrs_a, attrs_b):
            assert type(na) is type(nb) is str and type(va) is type(vb)


@_SOME
@given(_LINKS)
def test_link_round_trip(links):
    encoded = link.encode(links)
    assert type(encoded) is bytearray
    _same(link.parse(encoded), links)
    _same(link.parse(str(encoded, "utf-8")), links)


def _check_parsed(got):
    assert type(got) is list
    for uri, attrs in got:
        assert type(uri) is str and ">" not in uri
        for name, value in attrs:
            assert type(name) is str and name
            assert value is None or type(value) in (int, str) or math.isfinite(value)
    # what was parsed encodes to text that parses to the same, except for floats whose
    # repr has an exponent (they come back as str)
    if "e" not in repr([v for _u, attrs in got for _n, v in attrs if type(v) is float]):
        assert link.parse(link.encode(got)) == got


def _parse_or_error(data):
    try:
        got = link.parse(data)
    except Error as exc:
        assert exc.code == 0x80 and "expected" in str(exc)
        return
    _check_parsed(got)


@_MANY
@given(_LINK_INPUTS)
def test_link_parse_any_text(data):
    _parse_or_error(data)


@_MANY
@given(st.one_of(st.binary(max_size=40),
                 _LINK_INPUTS.map(lambda s: s.encode("utf-8", "surrogatepass"))))
def test_link_parse_any_bytes(data):
    _parse_or_error(data)


# -- plain text ---------------------------------------------------------------------------

_TYPED = {
    "s": st.text(),
    "c": st.text(),
    "i": st.integers(_MIN64, _MAX64),
    "t": st.integers(_MIN64, _MAX64),
    "u": st.integers(0, _MAXU64),
    "f": st.floats(allow_nan=False, allow_infinity=False),
    "b": st.booleans(),
    "o": st.binary(),
    "l": st.tuples(st.integers(0, 65535), st.integers(0, 65535)),
}


@pytest.mark.parametrize("rtype", sorted(_TYPED))
def test_text_round_trip(rtype):
    @_SOME
    @given(_TYPED[rtype])
    def check(value):
        got = text.decode(text.encode(value, rtype), rtype)
        assert got == value and type(got) is type(value)

    check()


# inputs near each grammar: digits, signs, dots, exponents, colons, boundaries, base64 and
# look-alikes (Arabic-Indic one, superscript two); valid encodings of every type, mutated
_TEXT_PIECES = ["-", "+", "0", "1", "9", ".", "e", "E", ":", "65535", "65536", "9223372036854775807",
                "18446744073709551615", "00", "inf", "nan", "YWJj", "YQ", "=", "A", "/", " ", "\n",
                "_", "\u0661", "\u00b2", "\u00e9", "\ud800", ""]
_ENCODED = st.sampled_from(sorted(_TYPED)).flatmap(
    lambda r: _TYPED[r].map(lambda v: text.encode(v, r).decode("utf-8", "surrogatepass")))
_RAW = st.one_of(
    st.binary(max_size=30),
    st.lists(st.sampled_from(_TEXT_PIECES), max_size=8)
    .map(lambda p: "".join(p).encode("utf-8", "surrogatepass")),
    st.tuples(_ENCODED, st.integers(0, 40), st.sampled_from(_TEXT_PIECES), st.integers(0, 40),
              st.integers(0, 40))
    .map(lambda args: _mutate(args).encode("utf-8", "surrogatepass")),
    st.text(max_size=20).map(lambda s: s.encode("utf-8", "surrogatepass")))


# One property feeds each input to every type, so each type gets all 10,000 examples at the
# cost of one property (Hypothesis spends about 0.3 ms per example of its own).
@_MANY
@given(_RAW)
def test_text_decode_any_bytes(raw):
    for rtype in _TYPED:
        try:
            got = text.decode(raw, rtype)
        except Error as exc:
            assert exc.code == 0x80 and "expected" in str(exc), rtype
            continue
        # an accepted value encodes to text that decodes to the same value and type
        again = text.decode(text.encode(got, rtype), rtype)
        assert again == got and type(again) is type(got), rtype
