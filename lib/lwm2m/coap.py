# CoAP messages (RFC 7252 section 3) with the Observe (RFC 7641) and Block (RFC 7959)
# options: encode, decode and option helpers. No I/O.
from micropython import const
from lwm2m import Error

# Protocol numbers are private consts, inlined here at no RAM cost; other modules keep
# their own copies of the few they use.

# Message types
_CON = const(0)

# Codes are class << 5 | detail: 2.05 is 0x45.
_EMPTY = const(0x00)
_BAD_REQUEST = const(0x80)
_BAD_OPTION = const(0x82)

# Option numbers (the others are in _SPECS)
_URI_PATH = const(11)
_URI_QUERY = const(15)
_PROXY_URI = const(35)

# Option value formats
_OPAQUE = const(0)
_UINT = const(1)
_STRING = const(2)
# Value format and allowed length of each known option (RFC 7252 5.10, 7641, 7959), four
# bytes each: number, format, least and most bytes. A bytes constant stays in flash when run
# from ROMFS, where a dict of tuples would keep some 900 B of RAM.
_SPECS = (
    b"\x01\x00\x00\x08"  # If-Match, opaque, 0 to 8 bytes
    b"\x03\x02\x01\xff"  # Uri-Host, string, 1 to 255 bytes
    b"\x04\x00\x01\x08"  # ETag, opaque, 1 to 8 bytes
    b"\x05\x00\x00\x00"  # If-None-Match, opaque, empty
    b"\x06\x01\x00\x03"  # Observe, uint, 0 to 3 bytes
    b"\x07\x01\x00\x02"  # Uri-Port, uint, 0 to 2 bytes
    b"\x08\x02\x00\xff"  # Location-Path, string, 0 to 255 bytes
    b"\x0b\x02\x00\xff"  # Uri-Path, string, 0 to 255 bytes
    b"\x0c\x01\x00\x02"  # Content-Format, uint, 0 to 2 bytes
    b"\x0e\x01\x00\x04"  # Max-Age, uint, 0 to 4 bytes
    b"\x0f\x02\x00\xff"  # Uri-Query, string, 0 to 255 bytes
    b"\x11\x01\x00\x02"  # Accept, uint, 0 to 2 bytes
    b"\x14\x02\x00\xff"  # Location-Query, string, 0 to 255 bytes
    b"\x17\x01\x00\x03"  # Block2, uint, 0 to 3 bytes
    b"\x1b\x01\x00\x03"  # Block1, uint, 0 to 3 bytes
    b"\x1c\x01\x00\x04"  # Size2, uint, 0 to 4 bytes
    b"\x23\x02\x01\xff"  # Proxy-Uri, string, 1 to 1034 bytes (see _most)
    b"\x27\x02\x01\xff"  # Proxy-Scheme, string, 1 to 255 bytes
    b"\x3c\x01\x00\x04"  # Size1, uint, 0 to 4 bytes
)


def _rows():
    # option number -> 1 + the index of its row in _SPECS, 0 for an unknown option: a lookup
    # as fast as a dict's, in 61 bytes of RAM
    rows = bytearray(_SPECS[-4] + 1)
    for i in range(0, len(_SPECS), 4):
        rows[_SPECS[i]] = i // 4 + 1
    return rows


_ROWS = _rows()


def _spec(number):
    # Where a known option's row starts in _SPECS; -1 for another.
    return 4 * _ROWS[number] - 4 if number < len(_ROWS) else -1


def _most(i):
    # The most bytes of the option whose row starts at i: Proxy-Uri's 1034 does not fit a byte.
    return 1034 if _SPECS[i] == _PROXY_URI else _SPECS[i + 3]


# Names for logs: code _CODES[i] is called the i-th "|"-separated word of _NAMES (one string:
# a tuple of 28 would keep 28 string objects in RAM, even from ROMFS).
_CODES = b"\x01\x02\x03\x04\x05\x06\x07\x41\x42\x43\x44\x45\x5f\x80\x81\x82\x83\x84\x85\x86\x88\x89\x8c\x8d\x8f\xa0\xa1\xa3"
_NAMES = (
    "GET|POST|PUT|DELETE|FETCH|PATCH|iPATCH|Created|Deleted|Valid|Changed|Content|Continue|"
    "Bad Request|Unauthorized|Bad Option|Forbidden|Not Found|Method Not Allowed|"
    "Not Acceptable|Request Entity Incomplete|Conflict|Precondition Failed|"
    "Request Entity Too Large|Unsupported Content-Format|Internal Server Error|"
    "Not Implemented|Service Unavailable"
)


def code_name(code):
    # "2.05 Content", "0.01 GET"; a code without a name gives just "c.dd". The name is cut
    # out of _NAMES, not split from it: a split would make 28 strings for each log line.
    start = 0
    for i in range(len(_CODES)):
        if _CODES[i] == code:
            end = _NAMES.find("|", start)
            return "%d.%02d %s" % (code >> 5, code & 31, _NAMES[start:] if end < 0 else _NAMES[start:end])
        start = _NAMES.find("|", start) + 1
    return "%d.%02d" % (code >> 5, code & 31)


class MessageError(Error):
    # The one error decode() raises. `code` is 4.00 or 4.02 when the message is a CON request
    # whose header and token are intact, so the caller can still answer it in an ACK; it is
    # None when the message must be rejected: with RST when `mid` is known and the type was
    # CON, otherwise ignored (a datagram shorter than 4 bytes or not CoAP version 1).
    def __init__(self, code, message, mid=None, mtype=None, token=b""):
        super().__init__(code, message)
        self.mid = mid
        self.type = mtype
        self.token = token


def uint_bytes(value):
    # Minimal big-endian: zero is empty.
    if value < 0:
        raise ValueError("negative uint")
    size = 0
    while value >> (size << 3):
        size += 1
    return value.to_bytes(size, "big")


def block_value(num, more, szx):
    # NUM | M | SZX packed as Block1/Block2 carry it (1 to 3 bytes on the wire).
    if not 0 <= szx < 7 or not 0 <= num < 1 << 20:
        raise ValueError("block NUM/SZX out of range")
    return num << 4 | (8 if more else 0) | szx


def split_block(value):
    # (NUM, M, SZX) of a Block1/Block2 value; the block size is 16 << SZX. SZX 7 is reserved
    # and answered with 4.00.
    szx = value & 7
    if szx == 7:
        raise Error(_BAD_REQUEST, "block size exponent 7 is reserved")
    return value >> 4, bool(value & 8), szx


class Message:
    # options: (number, raw value bytes) pairs sorted by number; repeats keep their order.
    def __init__(self, mtype=_CON, code=_EMPTY, mid=0, token=b"", payload=b""):
        self.type = mtype
        self.code = code
        self.mid = mid
        self.token = token
        self.options = []
        self.payload = payload

    def add(self, number, value):
        # value: an int (uint), a str (UTF-8) or bytes, inserted after options <= number.
        if isinstance(value, int):
            value = uint_bytes(value)
        elif isinstance(value, str):
            value = value.encode()
        options = self.options
        i = len(options)
        while i and options[i - 1][0] > number:
            i -= 1
        options.insert(i, (number, bytes(value)))

    def get_all(self, number):
        # The values of every `number` option, as int, str or bytes by the option's format.
        return [self._value(number, raw) for num, raw in self.options if num == number]

    def get(self, number, default=None):
        # The first `number` option's value (no list made: a request asks for several).
        for num, raw in self.options:
            if num == number:
                return self._value(number, raw)
        return default

    @staticmethod
    def _value(number, raw):
        i = _spec(number)
        fmt = _SPECS[i + 1] if i >= 0 else _OPAQUE
        if fmt == _UINT:
            return int.from_bytes(raw, "big")
        if fmt == _STRING:
            try:
                return raw.decode()
            except UnicodeError:
                raise Error(_BAD_REQUEST, "option %d is not UTF-8" % number)
        return raw

    def set_path(self, path, number=_URI_PATH):
        # "/3/0/1" -> Uri-Path "3", "0", "1"; "/" and "" -> no option.
        if path.startswith("/"):
            path = path[1:]
        if path:
            for segment in path.split("/"):
                self.add(number, segment)

    def path(self, number=_URI_PATH):
        # "/3/0/1" from Uri-Path "3", "0", "1", made as one string (each request's log line
        # has it); "/" for none.
        out = bytearray()
        for num, raw in self.options:
            if num == number:
                out.append(0x2F)  # /
                out += raw
        try:
            return str(out, "utf-8") if out else "/"
        except UnicodeError:
            raise Error(_BAD_REQUEST, "option %d is not UTF-8" % number)

    def add_query(self, name, value=None, number=_URI_QUERY):
        self.add(number, name if value is None else "%s=%s" % (name, value))

    def query(self, number=_URI_QUERY):
        # {"ep": "node1", "Q": None} from Uri-Query "ep=node1", "Q"
        items = {}
        for item in self.get_all(number):
            name, sep, value = item.partition("=")
            items[name] = value if sep else None
        return items

    def block(self, number):
        # (NUM, M, SZX) of Block1 or Block2, or None when absent.
        value = self.get(number)
        return None if value is None else split_block(value)


def encode(msg):
    # The datagram as a bytearray.
    token = msg.token
    if len(token) > 8:
        raise ValueError("token longer than 8 bytes")
    out = bytearray(4)
    out[0] = 0x40 | msg.type << 4 | len(token)
    out[1] = msg.code
    out[2] = msg.mid >> 8
    out[3] = msg.mid & 0xFF
    out += token
    last = 0
    for number, value in msg.options:
        if number < last:
            raise ValueError("options out of order")
        at = len(out)
        out.append(0)
        high = _extend(out, number - last)
        out[at] = high << 4 | _extend(out, len(value))
        out += value
        last = number
    if msg.payload:
        out.append(0xFF)
        out += msg.payload
    return out


def _extend(out, n):
    # Appends the extended bytes of an option delta or length; returns its 4-bit nibble.
    if n < 13:
        return n
    if n < 269:
        out.append(n - 13)
        return 13
    if n <= 65804:
        n -= 269
        out.append(n >> 8)
        out.append(n & 0xFF)
        return 14
    raise ValueError("option delta or length above 65804")


def decode(data):
    # A Message from a datagram (bytes, bytearray or memoryview); malformed input raises
    # MessageError.
    size = len(data)
    if size < 4:
        raise MessageError(None, "%d-byte datagram, shorter than a header" % size)
    first = data[0]
    if first >> 6 != 1:
        raise MessageError(None, "CoAP version %d, expected 1" % (first >> 6))
    mtype = first >> 4 & 3
    tkl = first & 15
    code = data[1]
    mid = data[2] << 8 | data[3]
    pos = 4 + tkl
    if tkl > 8 or pos > size:
        raise MessageError(None, "token length %d in %d bytes" % (tkl, size), mid, mtype)
    msg = Message(mtype, code, mid, bytes(data[4:pos]))
    if code == _EMPTY:
        if pos != size:
            raise MessageError(None, "empty message longer than 4 bytes", mid, mtype)
        return msg
    options = msg.options
    number = 0
    while pos < size:
        byte = data[pos]
        pos += 1
        if byte == 0xFF:
            if pos == size:
                _malformed(msg, _BAD_REQUEST, "payload marker with no payload")
            msg.payload = bytes(data[pos:])
            break
        delta = byte >> 4
        length = byte & 15
        if delta >= 13:
            delta, pos = _extended(msg, data, pos, delta)
        if length >= 13:
            length, pos = _extended(msg, data, pos, length)
        number += delta
        if number > 65535:
            _malformed(msg, _BAD_REQUEST, "option number %d above 65535" % number)
        end = pos + length
        if end > size:
            _malformed(msg, _BAD_REQUEST, "option %d runs past the end" % number)
        i = _spec(number)
        if i < 0 or _SPECS[i + 2] <= length <= _most(i):
            options.append((number, bytes(data[pos:end])))
        elif number & 1:
            # A known critical option with an impossible length counts as unrecognised.
            _malformed(msg, _BAD_OPTION, "option %d has %d bytes, allowed %d-%d" % (number, length, _SPECS[i + 2], _most(i)))
        # An elective one is ignored, as an unrecognised elective option is.
        pos = end
    return msg


def _extended(msg, data, pos, nibble):
    # The value of a 13 (one more byte) or 14 (two more bytes) nibble; 15 is reserved.
    if nibble == 15:
        _malformed(msg, _BAD_REQUEST, "option nibble 15 before byte %d" % pos)
    if pos + nibble - 12 > len(data):
        _malformed(msg, _BAD_REQUEST, "option header truncated at byte %d" % pos)
    if nibble == 13:
        return data[pos] + 13, pos + 1
    return (data[pos] << 8 | data[pos + 1]) + 269, pos + 2


def _malformed(msg, code, text):
    # Only a CON request can still be answered; anything else is rejected with RST.
    if msg.type != _CON or msg.code >> 5 != 0:
        code = None
    raise MessageError(code, text, msg.mid, msg.type, msg.token)
