# ESP32 partition tables: the CSV that ESP-IDF and MicroPython write them in, checked, and
# the binary the bootloader reads at 0x8000 (make flash PARTITIONS=file.csv writes it there,
# after the firmware). The binary: one 32-byte entry per partition (magic AA 50, type,
# subtype, offset and size little-endian, a 16-byte name, flags), an MD5 entry (EB EB, 14 bytes
# FF, the MD5 of the entries before it), the rest of 0xC00 bytes 0xFF.
import hashlib
import struct

TABLE_OFFSET = 0x8000
TABLE_SIZE = 0xC00
_ENTRY = struct.Struct("<2sBBII16sI")
_MAGIC = b"\xaa\x50"
_MD5_MAGIC = b"\xeb\xeb" + b"\xff" * 14
_TYPES = {"app": 0x00, "data": 0x01}
_SUBTYPES = {
    0x00: dict({"factory": 0x00, "test": 0x20}, **{"ota_%d" % n: 0x10 + n for n in range(16)}),
    0x01: {"ota": 0x00, "phy": 0x01, "nvs": 0x02, "coredump": 0x03, "nvs_keys": 0x04, "efuse": 0x05,
           "undefined": 0x06, "esphttpd": 0x80, "fat": 0x81, "spiffs": 0x82, "littlefs": 0x83},
}
_FLAGS = {"": 0, "encrypted": 1, "readonly": 2}


class PartitionError(ValueError):
    pass


def _number(text, what, where):
    # 0x1000, 4096, 64K, 1M
    scale = 1
    if text[-1:] in ("K", "k", "M", "m"):
        scale = 1024 if text[-1] in "Kk" else 1024 * 1024
        text = text[:-1]
    try:
        return int(text, 0) * scale
    except ValueError:
        raise PartitionError("%s: %s: expected a number such as 0x10000, 65536 or 64K, got %r" % (where, what, text))


def parse(text, name="partitions.csv"):
    # [(label, type, subtype, offset, size, flags)], checked: every field known, offsets given,
    # 4 KiB aligned (app partitions 64 KiB), after the table, in order and not overlapping.
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        where = "%s:%d" % (name, number)
        fields = [f.strip() for f in line.split(",")]
        if len(fields) < 5:
            raise PartitionError("%s: expected Name, Type, SubType, Offset, Size[, Flags], got %d fields" % (where, len(fields)))
        label, kind, sub, offset, size = fields[:5]
        flags = fields[5] if len(fields) > 5 else ""
        if not label or len(label.encode()) > 15:
            raise PartitionError("%s: Name: expected 1 to 15 characters, got %r" % (where, label))
        kind_id = _TYPES[kind] if kind in _TYPES else _number(kind, "Type", where) if kind[:1].isdigit() else None
        if kind_id is None or not 0 <= kind_id <= 0xFE:
            raise PartitionError("%s: Type: expected app, data or a number up to 0xfe, got %r" % (where, kind))
        known = _SUBTYPES.get(kind_id, {})
        sub_id = known[sub] if sub in known else _number(sub, "SubType", where) if sub[:1].isdigit() else None
        if sub_id is None or not 0 <= sub_id <= 0xFE:
            raise PartitionError("%s: SubType: expected one of %s or a number such as 0x8f, got %r"
                                 % (where, ", ".join(sorted(known)) or "(none for this type)", sub))
        if not offset:
            raise PartitionError("%s: Offset: expected an offset (this tool does not place partitions)" % where)
        at, length = _number(offset, "Offset", where), _number(size, "Size", where)
        align = 0x10000 if kind_id == 0x00 else 0x1000
        if at % align or length % 0x1000 or length <= 0:
            raise PartitionError("%s: Offset/Size: expected the offset a multiple of 0x%x and the size of 0x1000, "
                                 "got 0x%x and 0x%x" % (where, align, at, length))
        if flags not in _FLAGS:
            raise PartitionError("%s: Flags: expected encrypted, readonly or nothing, got %r" % (where, flags))
        end = rows[-1][3] + rows[-1][4] if rows else TABLE_OFFSET + 0x1000
        if at < end:
            raise PartitionError("%s: Offset: 0x%x overlaps what comes before it (free from 0x%x)" % (where, at, end))
        rows.append((label, kind_id, sub_id, at, length, _FLAGS[flags]))
    if not rows:
        raise PartitionError("%s: no partitions" % name)
    return rows


def binary(rows):
    # The table as the bootloader reads it.
    entries = b"".join(_ENTRY.pack(_MAGIC, kind, sub, at, length, label.encode(), flags)
                       for label, kind, sub, at, length, flags in rows)
    table = entries + _MD5_MAGIC + hashlib.md5(entries).digest()
    if len(table) > TABLE_SIZE:
        raise PartitionError("%d partitions: more than a table holds" % len(rows))
    return table + b"\xff" * (TABLE_SIZE - len(table))


def read_binary(data):
    # The rows of a binary table, its MD5 checked (what the bootloader does).
    rows, at = [], 0
    while data[at:at + 2] == _MAGIC:
        _magic, kind, sub, offset, length, label, flags = _ENTRY.unpack_from(data, at)
        rows.append((label.rstrip(b"\0").decode(), kind, sub, offset, length, flags))
        at += _ENTRY.size
    if data[at:at + 16] != _MD5_MAGIC or data[at + 16:at + 32] != hashlib.md5(data[:at]).digest():
        raise PartitionError("the table's MD5 entry is missing or does not match")
    return rows


def find(rows, kind, sub=None, label=None):
    for row in rows:
        if row[1] == kind and (sub is None or row[2] == sub) and (label is None or row[0] == label):
            return row
    return None
