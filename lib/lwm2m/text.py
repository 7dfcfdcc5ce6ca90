# Plain text (content format 0, and 1541 from pre-1.0 servers) and opaque (42) values of a
# single resource. Type codes: s String, i Integer, u Unsigned, f Float, b Boolean,
# o Opaque, t Time, l Objlnk (a tuple (object id, instance id)), c Corelnk (a str).
#
# Decoding is strict and the same on both interpreters, so characters are checked here
# rather than by int() and float(), which disagree about spaces, underscores and Unicode
# digits. Integer and Time: an optional '-' and 1 to 20 ASCII digits (leading zeros allowed,
# no '+', no spaces) within signed 64 bits. Unsigned: 1 to 20 digits within 0..2**64-1.
# Float: an optional '-', digits with an optional '.' (at least one digit, "5." and ".5"
# allowed), then an optional exponent 'e' or 'E' with an optional sign; a value that
# overflows to infinity is refused. Boolean: "0" or "1". Objlnk: "oid:iid", each 1 to 5
# digits within 0..65535. String and Corelnk: UTF-8 (MicroPython lets overlong forms and
# surrogates through; CPython refuses them). Opaque: canonical base64 (RFC 4648, padded,
# no line breaks, no whitespace, unused bits zero).
from binascii import a2b_base64, b2a_base64

from lwm2m import Error

from micropython import const

_BAD_REQUEST = const(0x80)  # 4.00
_NOT_ACCEPTABLE = const(0x86)  # 4.06
_UNSUPPORTED_FORMAT = const(0x8F)  # 4.15


def _bad(expected):
    raise Error(_BAD_REQUEST, "text: expected " + expected)


def isdec(s):
    # True when s is one or more ASCII decimal digits (link.py uses it too)
    for c in s:
        if c < "0" or c > "9":
            return False
    return s != ""


def put_int(out, n):
    # Appends the decimal digits of n >= 0 to the bytearray out, with no string made
    # (senml.py and link.py write with it).
    if n >= 10:
        put_int(out, n // 10)
    out.append(48 + n % 10)


def _int(s, lo, hi, what):
    # s: a str already known to be ASCII; lo <= value < hi
    t = s[1:] if s[:1] == "-" and lo < 0 else s
    if len(t) > 20 or not isdec(t):
        _bad(what)
    v = int(s)
    if v < lo or v >= hi:
        _bad(what)
    return v


def _checked(v, lo, hi):
    # Encode side: an int within lo <= v < hi, else a programming error.
    if isinstance(v, int) and lo <= v < hi:
        return v
    raise ValueError(v)  # not an int, or out of range


def encode(value, rtype):
    if rtype in "sc":
        return str.encode(value)  # TypeError for anything but a str
    if rtype == "o":
        return b2a_base64(value, newline=False)
    if rtype == "b":
        return b"1" if value else b"0"
    if rtype == "f":
        value = float(value)
        if value - value != 0:  # inf - inf and nan - nan are nan
            raise ValueError(value)
        s = repr(value)
    elif rtype == "l":
        s = "%d:%d" % (_checked(value[0], 0, 0x10000), _checked(value[1], 0, 0x10000))
    elif rtype == "u":
        s = "%d" % _checked(value, 0, 1 << 64)
    elif rtype in "it":
        s = "%d" % _checked(value, -(1 << 63), 1 << 63)
    else:
        raise ValueError(rtype)  # an unknown type
    return s.encode()


def decode(raw, rtype):
    if rtype == "o":
        raw = bytes(raw)
        try:
            v = a2b_base64(raw)
            # Both interpreters skip characters outside the alphabet (MicroPython even stops
            # at the first padding); encoding back and comparing refuses all that.
            if b2a_base64(v, newline=False) == raw:
                return v
        except Exception:  # binascii.Error on CPython, a plain Exception on MicroPython
            pass
        _bad("base64")
    try:
        s = str(raw, "utf-8")
    except UnicodeError:
        _bad("UTF-8")
    if rtype in "sc":
        return s
    if rtype in "it":
        return _int(s, -(1 << 63), 1 << 63, "an int64")
    if rtype == "u":
        return _int(s, 0, 1 << 64, "a uint64")
    if rtype == "b":
        if s == "0" or s == "1":
            return s == "1"
        _bad("'0' or '1'")
    if rtype == "l":
        p = s.split(":")
        what = "'oid:iid' (0..65535)"
        if len(p) != 2:
            _bad(what)
        return (_int(p[0], 0, 0x10000, what), _int(p[1], 0, 0x10000, what))
    if rtype == "f":
        p = s.replace("E", "e").split("e")
        m = p[0][1:] if p[0][:1] == "-" else p[0]
        e = p[1] if len(p) == 2 else "0"
        if e[:1] in "+-":  # also true for "", which then fails as not a digit
            e = e[1:]
        # one '.' at most and at least one digit; "" and "." fail
        if len(p) < 3 and isdec(m.replace(".", "", 1)) and isdec(e):
            v = float(s)
            if v - v == 0:  # not overflowed to inf
                return v
        _bad("a decimal float")
    raise ValueError(rtype)  # an unknown type


# application/octet-stream: the raw bytes of an Opaque resource, and of nothing else. A read
# asking for it gets 4.06, a write sending it gets 4.15.
def _opaque(data, rtype, code):
    if rtype != "o":
        raise Error(code, "octet-stream: opaque resources only")
    return bytes(data)


def encode_opaque(value, rtype):
    return _opaque(value, rtype, _NOT_ACCEPTABLE)


def decode_opaque(raw, rtype):
    return _opaque(raw, rtype, _UNSUPPORTED_FORMAT)
