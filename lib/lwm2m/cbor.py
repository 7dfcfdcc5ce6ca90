# CBOR (RFC 8949) as the LwM2M 1.1 formats use it: SenML CBOR (112) and single values (60).
# Encoding is deterministic: integers and lengths in their shortest form, floats as float64,
# map keys sorted by their encoded bytes (RFC 8949 4.2.1, but for the floats). Decoding takes definite and indefinite lengths
# for arrays and maps, every integer width, floats of 16, 32 and 64 bits and the simple values
# false, true and null; anything else (tags, other simple values, indefinite strings, more
# than _DEPTH levels, bytes after the item) is refused with lwm2m.Error 4.00, and a length
# never allocates more than the payload holds.
import struct
from math import ldexp

from micropython import const

from lwm2m import Error

_BAD_REQUEST = const(0x80)
_DEPTH = const(8)  # SenML needs 2 (an array of maps)
_STOP = object()  # what decoding a break gives, inside an indefinite array or map


def _bad(why):
    raise Error(_BAD_REQUEST, "CBOR: " + why)


def head(out, major, n):
    # The initial byte and argument, shortest form.
    major <<= 5
    if n < 24:
        out.append(major | n)
    elif n < 0x100:
        out.append(major | 24)
        out.append(n)
    elif n < 0x10000:
        out.append(major | 25)
        out += n.to_bytes(2, "big")
    elif n < 0x100000000:
        out.append(major | 26)
        out += n.to_bytes(4, "big")
    elif n < 0x10000000000000000:
        out.append(major | 27)
        out += n.to_bytes(8, "big")
    else:
        raise ValueError("integer beyond 64 bits")


def put_text(out, raw):
    # A text string of the UTF-8 bytes raw.
    head(out, 3, len(raw))
    out += raw


def encode(item, out=None):
    # The bytes of item: int, float, bool, None, str, bytes, list or tuple, dict.
    if out is None:
        out = bytearray()
    if item is True or item is False or item is None:
        out.append(0xF5 if item is True else 0xF4 if item is False else 0xF6)
    elif type(item) is int:
        if item >= 0:
            head(out, 0, item)
        else:
            head(out, 1, -1 - item)
    elif type(item) is float:
        out.append(0xFB)
        out += struct.pack(">d", item)
    elif type(item) is str:
        put_text(out, item.encode())
    elif type(item) in (bytes, bytearray):
        head(out, 2, len(item))
        out += item
    elif type(item) in (list, tuple):
        head(out, 4, len(item))
        for each in item:
            encode(each, out)
    elif type(item) is dict:
        # keys in the bytewise order of their encodings (RFC 8949 4.2.1): the same bytes
        # whatever order the interpreter's dict gives them in
        keys = list(item)
        small = True
        for key in keys:
            small = small and type(key) is int and -25 < key < 24
        keys.sort(key=_small_order if small else _encoded)
        head(out, 5, len(keys))
        for key in keys:
            encode(key, out)
            encode(item[key], out)
    else:
        raise TypeError("no CBOR for %r" % (item,))
    return out


def _small_order(key):
    # The one byte that encodes an int from -24 to 23 (SenML's labels), as a number: no
    # encoding is made to sort by.
    return key if key >= 0 else 0x1F - key


def _encoded(key):
    return bytes(encode(key))


def decode(data):
    # The one item data holds.
    item, pos = _item(memoryview(data), 0, 0)
    if item is _STOP:
        _bad("a break outside an indefinite array or map")
    if pos != len(data):
        _bad("%d bytes after the item" % (len(data) - pos))
    return item


def _argument(data, pos, info):
    # (argument, position after it) of an initial byte's low 5 bits.
    if info < 24:
        return info, pos
    if info > 27:
        _bad("reserved or indefinite argument %d at byte %d" % (info, pos - 1))
    size = 1 << (info - 24)
    if pos + size > len(data):
        _bad("truncated at byte %d" % pos)
    return int.from_bytes(bytes(data[pos:pos + size]), "big"), pos + size


def _item(data, pos, depth):
    if pos >= len(data):
        _bad("truncated at byte %d" % pos)
    first = data[pos]
    pos += 1
    major = first >> 5
    info = first & 31
    if major == 7:
        return _simple(data, pos, info)
    if info == 31 and (major == 4 or major == 5):
        return _indefinite(data, pos, depth, major == 5)
    n, pos = _argument(data, pos, info)
    if major == 0:
        return n, pos
    if major == 1:
        return -1 - n, pos
    if major == 2 or major == 3:
        if n > len(data) - pos:
            _bad("a string of %d bytes in %d" % (n, len(data) - pos))
        raw = bytes(data[pos:pos + n])
        if major == 3:
            try:
                raw = raw.decode()
            except UnicodeError:
                _bad("text that is not UTF-8")
        return raw, pos + n
    if major == 6:
        _bad("tags are not taken")
    if depth >= _DEPTH:
        _bad("nested deeper than %d" % _DEPTH)
    if n > len(data) - pos:  # each element takes a byte at least
        _bad("%d elements in %d bytes" % (n, len(data) - pos))
    if major == 4:
        items = []
        for _ in range(n):
            item, pos = _element(data, pos, depth)
            items.append(item)
        return items, pos
    pairs = {}
    for _ in range(n):
        key, pos = _element(data, pos, depth)
        pairs[_key(key)], pos = _element(data, pos, depth)
    return pairs, pos


def _element(data, pos, depth):
    item, pos = _item(data, pos, depth + 1)
    if item is _STOP:
        _bad("a break inside a definite array or map")
    return item, pos


def _key(key):
    if type(key) not in (int, str):
        _bad("a map key that is not an integer or text")
    return key


def _indefinite(data, pos, depth, is_map):
    if depth >= _DEPTH:
        _bad("nested deeper than %d" % _DEPTH)
    items = {} if is_map else []
    while True:
        item, pos = _item(data, pos, depth + 1)
        if item is _STOP:
            return items, pos
        if is_map:
            value, pos = _element(data, pos, depth)
            items[_key(item)] = value
        else:
            items.append(item)


def _simple(data, pos, info):
    if info == 20 or info == 21:
        return info == 21, pos
    if info == 22:
        return None, pos
    if info == 31:
        return _STOP, pos
    if not 25 <= info <= 27:
        _bad("simple value %d" % info)
    size = 1 << (info - 24)
    if pos + size > len(data):
        _bad("truncated float at byte %d" % pos)
    raw = bytes(data[pos:pos + size])
    if size == 2:
        return _half(raw[0] << 8 | raw[1]), pos + 2
    return struct.unpack(">f" if size == 4 else ">d", raw)[0], pos + size


def _half(bits):
    # IEEE 754 binary16 (RFC 8949 appendix D). ldexp, not 2.0 ** -24: freezing folds that
    # constant and writes it with 16 digits, one short of exact.
    exp = bits >> 10 & 31
    mant = bits & 1023
    if exp == 0:
        value = ldexp(mant, -24)
    elif exp != 31:
        value = ldexp(mant + 1024, exp - 25)
    else:
        value = float("inf") if mant == 0 else float("nan")
    return -value if bits & 0x8000 else value
