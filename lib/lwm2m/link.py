# CoRE Link Format (RFC 6690, content format 40): the registration payload and Discover
# answers. A document is a list of (uri, attrs); attrs is a list of (name, value) pairs in
# order, duplicates kept; value is None (";obs"), an int, a float or a str (written quoted),
# or bytes (written unquoted as they are, for tokens such as ver=1.1; they parse back as what
# the text looks like).
#
# Parsing: a quoted value is a str with backslash escapes removed (';' and ',' inside quotes
# belong to it). An unquoted value (RFC 6690 ptoken: printable ASCII other than '"', ',',
# ';' and '\') is an int when it is an optional '-' and 1 to 20 digits, a float when it is
# an optional '-', digits, '.', digits ("1.1", "-0.5") that is finite as a float, else a
# str ("U", "1e5", "1.").
# Names are RFC 7230 tokens. The URI is anything up to the first '>'. Whitespace (space,
# tab, CR, LF) may come before each link, so after a separating comma, and at the end.
# Empty text (or only whitespace) is []. Input is a str or UTF-8 bytes (a str that cannot be
# encoded, with a lone surrogate, is refused too). Errors name the character offset.
from lwm2m import Error
from lwm2m.text import isdec, put_int

from micropython import const

_BAD_REQUEST = const(0x80)  # 4.00
_QUOTE = const(0x22)  # "
_COMMA = const(0x2C)  # ,
_SEMI = const(0x3B)  # ;
_LT = const(0x3C)  # <
_EQ = const(0x3D)  # =
_BACKSLASH = const(0x5C)  # \
_WS = b" \t\r\n"


class Writer:
    # A document written into one bytearray as it goes: link(uri) starts each link (uri a
    # str, or a tuple of ids for "/3/0/1"), attr(name, value) adds to the last one, end()
    # gives the bytes.
    def __init__(self):
        self.out = bytearray()

    def link(self, uri):
        out = self.out
        if out:
            out.append(_COMMA)
        out.append(_LT)
        if type(uri) is str:
            if ">" in uri:
                raise ValueError(uri)  # a URI cannot hold ">"
            out += uri.encode()
        else:
            for i in uri:
                out.append(47)  # /
                put_int(out, i)
        out.append(0x3E)  # >

    def attr(self, name, value):
        out = self.out
        out.append(_SEMI)
        out += name.encode()
        if value is None:
            return
        out.append(_EQ)
        if isinstance(value, str):
            if '"' in value or "\\" in value:
                value = value.replace("\\", "\\\\").replace('"', '\\"')
            out.append(_QUOTE)
            out += value.encode()
            out.append(_QUOTE)
        elif isinstance(value, bytes):
            out += value  # a token written as it is: ver=1.1
        elif type(value) is int and value >= 0:
            put_int(out, value)
        else:
            # a negative int as digits, 1.1 as "1.1" on both; a float whose repr has an
            # exponent (1e+16) parses back as a str
            out += repr(value).encode()

    def end(self):
        return self.out


def encode(links):
    # The bytes of a document [(uri, [(name, value)])].
    w = Writer()
    for uri, attrs in links:
        w.link(uri)
        for name, value in attrs:
            w.attr(name, value)
    return w.end()


def _fail(b, i, expected):
    # i is a byte offset at the start of a character; the message names the character offset
    i = len(str(b[:i], "utf-8"))
    raise Error(_BAD_REQUEST, "link format: expected %s at offset %d" % (expected, i))


def _ptoken(b, j, i):
    # The unquoted value b[j:i]: an int, a float or the str itself.
    for k in range(j, i):
        c = b[k]
        if c <= 0x20 or c > 0x7E or c in b'"\\':
            _fail(b, k, "a value character")
    s = str(b[j:i], "utf-8")
    t = s[1:] if s[:1] == "-" else s
    if len(t) <= 20 and isdec(t):
        return int(s)
    i = t.find(".")
    if i > 0 and isdec(t[:i]) and isdec(t[i + 1 :]):
        v = float(s)
        if v - v == 0:  # not overflowed to inf (some 300 digits before the '.')
            return v
    return s


# The parser walks bytes: indexing a str is O(n) in MicroPython, which walks the UTF-8 from
# the start every time, so a str parser would take quadratic time on a board.
def parse(text):
    try:
        if isinstance(text, str):
            b = text.encode()
        else:
            b = bytes(text)
            str(b, "utf-8")  # every slice taken below then decodes
    except UnicodeError:
        raise Error(_BAD_REQUEST, "link format: expected UTF-8")
    n = len(b)
    while n and b[n - 1] in _WS:
        n -= 1
    links = []
    i = 0
    while True:
        while i < n and b[i] in _WS:
            i += 1
        if i >= n and not links:
            return links
        if i >= n or b[i] != _LT:
            _fail(b, i, "'<'")
        j = b.find(b">", i)
        if j < 0:
            _fail(b, n, "'>'")
        attrs = []
        links.append((str(b[i + 1 : j], "utf-8"), attrs))
        i = j + 1
        while i < n and b[i] == _SEMI:
            i += 1
            j = i
            while i < n and b[i] not in b"=;,":
                c = b[i]
                if c <= 0x20 or c > 0x7E or c in b'"(),/:;<=>?@[\\]{}':
                    _fail(b, i, "a name character")
                i += 1
            if i == j:
                _fail(b, i, "a name")
            name = str(b[j:i], "utf-8")
            value = None
            if i < n and b[i] == _EQ:
                i += 1
                if i < n and b[i] == _QUOTE:
                    value = b""
                    while True:
                        i += 1
                        j = i
                        while i < n and b[i] not in b'"\\':
                            i += 1
                        value += b[j:i]
                        if i + 1 >= n and (i >= n or b[i] == _BACKSLASH):
                            _fail(b, n, "a closing '\"'")
                        if b[i] == _QUOTE:
                            break
                        i += 1  # after a backslash, the next byte as it is
                        value += b[i : i + 1]
                    i += 1
                    value = str(value, "utf-8")
                else:
                    j = i
                    while i < n and b[i] not in b";,":
                        i += 1
                    if i == j:
                        _fail(b, i, "a value")
                    value = _ptoken(b, j, i)
            attrs.append((name, value))
        if i < n:
            if b[i] != _COMMA:
                _fail(b, i, "';' or ','")
            i += 1
        else:
            return links
