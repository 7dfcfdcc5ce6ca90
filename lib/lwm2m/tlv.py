# OMA LwM2M TLV content format (TS Core 7.4.3), content format 11542. No I/O.
# An entry is (kind, ident, value): value is bytes for RESOURCE and RESOURCE_INSTANCE, a list
# of entries for OBJECT_INSTANCE and MULTIPLE_RESOURCE. pack()/unpack() convert one resource
# value to and from its bytes by the project's one-letter type code.
import struct
from micropython import const
from lwm2m import Error

# Identifier type, bits 7-6 of the type byte. The two odd kinds carry a value, the even kinds
# carry entries.
OBJECT_INSTANCE = const(0)
RESOURCE_INSTANCE = const(1)
MULTIPLE_RESOURCE = const(2)
RESOURCE = const(3)

_BAD_REQUEST = const(0x80)  # CoAP 4.00
_ID16 = const(0x20)  # type byte bit 5: the identifier takes two bytes
# Kinds allowed inside a container, as bit masks over the kind: anything at top level,
# Resource and Multiple Resource in an Object Instance, Resource Instance in a Multiple
# Resource. Nesting is at most three deep because of these.
_ANY = const(0b1111)
_IN_INSTANCE = const(0b1100)
_IN_MULTIPLE = const(0b0010)


def _bad(what, pos):
    return Error(_BAD_REQUEST, "TLV: %s at byte %d" % (what, pos))


def decode(data):
    mv = memoryview(data)
    return _entries(mv, 0, len(mv), _ANY)


def _entries(mv, pos, end, allowed):
    out = []
    while pos < end:
        start = pos
        t = mv[pos]
        kind = t >> 6
        if not allowed >> kind & 1:
            raise _bad("type %d not allowed here" % kind, start)
        idlen = 2 if t & _ID16 else 1
        ltype = t >> 3 & 3  # number of length bytes; 0: the length is in bits 2-0
        pos += 1 + idlen + ltype
        if pos > end:
            raise _bad("truncated header", start)
        ident = int.from_bytes(mv[start + 1 : start + 1 + idlen], "big")
        value = pos
        pos += int.from_bytes(mv[pos - ltype : pos], "big") if ltype else t & 7
        if pos > end:
            raise _bad("value overruns by %d bytes" % (pos - end), start)
        if kind & 1:
            value = bytes(mv[value:pos])
        else:
            value = _entries(mv, value, pos, _IN_MULTIPLE if kind else _IN_INSTANCE)
        out.append((kind, ident, value))
    return out


def encode(entries):
    out = bytearray()
    for kind, ident, value in entries:
        if not kind & 1:
            value = encode(value)
        _header(out, kind, ident, len(value))
        out += value
    return out


def _header(out, kind, ident, n):
    # Appends the type byte, identifier and length of an entry whose value takes n bytes.
    if kind & ~3 or ident & ~0xFFFF or n >> 24:
        raise ValueError("TLV entry out of range")
    ltype = 0 if n < 8 else 1 if n < 0x100 else 2 if n < 0x10000 else 3
    out.append(kind << 6 | (_ID16 if ident >> 8 else 0) | ltype << 3 | (0 if ltype else n))
    if ident >> 8:
        out.append(ident >> 8)
    out.append(ident & 0xFF)
    while ltype:
        ltype -= 1
        out.append(n >> 8 * ltype & 0xFF)


class Writer:
    # The TLV of a Read of `base`, written into one bytearray as the records (path, rtype,
    # value) come, those of one Object Instance or Multiple Resource together (as lwm2m.dm
    # reads them; apart, they would make two entries of one id): Object Instances for /O,
    # resources for /O/I, one Resource or Multiple Resource for /O/I/R, one Resource Instance
    # for /O/I/R/RI. An Object Instance or Multiple Resource gets its header, inserted before
    # its entries, once the first record outside it comes. What has no records does not
    # appear.
    def __init__(self, base):
        n = len(base)
        self.first = n - 1 if n > 2 else n  # index in a path of the top-level entries' ids
        self.out = bytearray()
        self.open = []  # (ident, start in out) of each container being written, outermost first

    def add(self, path, rtype, value):
        first = self.first
        last = len(path) - 1
        open = self.open
        depth = 0  # how many of the open containers hold this record
        while depth < len(open) and first + depth < last and open[depth][0] == path[first + depth]:
            depth += 1
        self._close(depth)
        for i in range(first + depth, last):
            open.append((path[i], len(self.out)))
        raw = pack(value, rtype)
        _header(self.out, RESOURCE if last == 2 else RESOURCE_INSTANCE, path[last], len(raw))
        self.out += raw

    def _close(self, depth):
        out = self.out
        open = self.open
        while len(open) > depth:
            ident, start = open.pop()
            head = bytearray()
            _header(head, OBJECT_INSTANCE if self.first + len(open) == 1 else MULTIPLE_RESOURCE, ident, len(out) - start)
            out[start:start] = head

    def end(self):
        self._close(0)
        return self.out


# Struct codes by value length 1..8 ('_': not a valid length for the type).
_SIGNED = const("bh_i___q")
_UNSIGNED = const("BH_I___Q")
_FLOAT = const("___f___d")


def _num_codes(rtype):
    if rtype == "i" or rtype == "t":
        return _SIGNED
    if rtype == "u":
        return _UNSIGNED
    if rtype == "f":
        return _FLOAT
    raise ValueError(rtype)  # an unknown resource type


def pack(value, rtype):
    if rtype == "s" or rtype == "c":
        return value.encode()
    if rtype == "o":
        return bytes(value)
    if rtype == "b":
        return b"\x01" if value else b"\x00"
    if rtype == "l":
        # struct does not range-check on MicroPython
        if (value[0] | value[1]) & ~0xFFFF:
            raise ValueError(value)  # an objlnk out of range
        return struct.pack(">HH", value[0], value[1])
    codes = _num_codes(rtype)
    if codes == _FLOAT:
        if value - value != 0:  # inf - inf and nan - nan are nan: no format carries them
            raise ValueError(value)
        # 4 bytes only when no precision is lost; CPython raises OverflowError for values
        # beyond float32, MicroPython gives inf (which then fails the comparison)
        try:
            raw = struct.pack(">f", value)
            if struct.unpack(">f", raw)[0] == value:
                return raw
        except OverflowError:
            pass
        return struct.pack(">d", value)
    n = 1
    while n <= 8:
        span = 1 << 8 * n
        low = -(span >> 1) if codes == _SIGNED else 0
        if low <= value < low + span:
            return struct.pack(">" + codes[n - 1], value)
        n <<= 1
    raise ValueError("%d out of range for %s" % (value, rtype))


def unpack(raw, rtype):
    n = len(raw)
    if rtype == "s" or rtype == "c":
        try:
            return str(raw, "utf-8")
        except UnicodeError:
            raise Error(_BAD_REQUEST, "TLV: invalid UTF-8")
    if rtype == "o":
        return bytes(raw)
    if rtype == "b":
        if n == 1 and raw[0] < 2:
            return raw[0] == 1
    elif rtype == "l":
        if n == 4:
            return struct.unpack(">HH", raw)
    else:
        codes = _num_codes(rtype)
        code = codes[n - 1] if 0 < n <= 8 else "_"
        if code != "_":
            value = struct.unpack(">" + code, raw)[0]
            if value - value == 0:  # not NaN or infinite (an int always passes)
                return value
    raise Error(_BAD_REQUEST, "TLV: %d-byte value is no valid type %s" % (n, rtype))
