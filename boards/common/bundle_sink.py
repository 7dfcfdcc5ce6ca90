# The Firmware Update sink (the interface is described in lib/lwm2m/firmware.py) of boards
# without OTA partitions (Pico W, the virtual board): the package is an application bundle
# (firmware/BUNDLE.md). It is streamed to FOLDER/package.bin, verified and unpacked into
# FOLDER/new by finish(); boot.py swaps it in at the next reset (bundle_swap.py), and it runs
# on trial until confirm(). The package is read in chunks of _CHUNK bytes into one buffer:
# it never has to fit in RAM.
import binascii
import hashlib
import os

from micropython import const

import bundle_swap
from bundle_swap import discard, exists, join, mkdirs
from lwm2m.firmware import Failed

_MAGIC = b"LWMB"
_FORMAT = const(1)
_PRELUDE = const(9)  # magic, format, header length (u32 little-endian)
_DIGEST = const(32)  # SHA-256 of everything before it, at the end
_HEADER_MAX = const(16384)
_CHUNK = const(1024)
_SPARE_BLOCKS = const(16)  # room asked beyond twice the package: directory and file blocks


def _size(path):
    try:
        return os.stat(path)[6]
    except OSError:
        return None


def _app_path(path):
    # Is path one the app may hold (the units of bundle_swap.py)? Nothing outside them, so a
    # bundle cannot replace boot.py, the updater or config.json.
    parts = path.split("/")
    if "" in parts or "." in parts or ".." in parts or "\\" in path:
        return False
    if len(parts) == 1:
        return path == "main.py" or (path.endswith(".mpy") and path != "bundle_swap.mpy")
    return (parts[0] == "objects") or (len(parts) > 2 and parts[0] == "lib" and parts[1] == "lwm2m")


class BundleSink:
    def __init__(self, folder="/update", board=None):
        self.folder = folder  # boot.py looks in /update: another folder is for tests
        self.board = board  # the board a bundle must be built for; None takes any
        self.package = join(folder, "package.bin")
        self._buf = None
        self._file = None
        self._kept = 0  # bytes of the package on flash

    def _buffer(self):
        if self._buf is None:
            self._buf = bytearray(_CHUNK)
        return memoryview(self._buf)

    def _close(self):
        if self._file is not None:
            self._file.close()
            self._file = None

    def begin(self, size):
        if exists(join(self.folder, "trial")):
            raise Failed(8, "the last update runs on trial: confirm or roll it back first")
        self._close()
        # Whatever an earlier update left (with no trial running, old/ holds nothing needed).
        for name in ("apply", "ready", "result", "booted", "rollback", "package.tmp", "new", "old", "bad"):
            discard(join(self.folder, name))
        discard(self.package)
        mkdirs(self.folder)
        if size:
            self._check_room(size)
        self._file = open(self.package, "wb")
        self._kept = 0

    def _check_room(self, size):
        # The package and what it unpacks to, side by side until finish() removes the former.
        statvfs = getattr(os, "statvfs", None)
        if statvfs is None:
            return
        st = statvfs(self.folder)
        free = st[1] * st[4]
        needed = 2 * size + _SPARE_BLOCKS * st[0]
        if free < needed:
            raise Failed(2, "a %d-byte bundle needs about %d bytes free in %s, %d are" % (size, needed, self.folder, free))

    def write(self, offset, data):
        if offset > self._kept:
            raise Failed(8, "write at %d beyond the %d bytes kept" % (offset, self._kept))
        if offset < self._kept:
            self._cut(offset)
        if self._file is None:
            self._file = open(self.package, "ab")
        self._file.write(data)
        self._file.flush()  # what resume() finds after a reset is what was flushed
        self._kept += len(data)

    def _cut(self, offset):
        # Keeps the first offset bytes (MicroPython's files cannot truncate).
        self._close()
        tmp = join(self.folder, "package.tmp")
        with open(self.package, "rb") as src, open(tmp, "wb") as dst:
            for chunk in self._chunks(src, offset):
                dst.write(chunk)
        os.remove(self.package)  # FAT renames over nothing
        os.rename(tmp, self.package)
        self._kept = offset

    def resume(self, offset):
        # The CRC-32 of the first offset bytes kept (what lwm2m.download compares with the
        # CRC it saved), or None when fewer are there.
        self._close()
        kept = _size(self.package)
        if kept is None or kept < offset:
            return None
        self._kept = kept  # a write at offset drops the rest
        crc = 0
        with open(self.package, "rb") as f:
            for chunk in self._chunks(f, offset):
                crc = binascii.crc32(chunk, crc)
        return crc

    def _chunks(self, f, count):
        # The next count bytes of f, a buffer's worth at a time (the same buffer each time).
        buf = self._buffer()
        while count:
            n = f.readinto(buf[: min(count, _CHUNK)])
            if not n:
                raise Failed(5, "%s: shorter than expected" % self.package)
            yield buf[:n]
            count -= n

    def _digest(self, f, count):
        # SHA-256 of the next count bytes of f.
        h = hashlib.sha256()
        for chunk in self._chunks(f, count):
            h.update(chunk)
        return h.digest()

    def finish(self):
        self._close()
        total = _size(self.package)
        if total is None:
            raise Failed(5, "no package was written")
        with open(self.package, "rb") as f:
            length = self._verify(f, total)
            header = self._header(f, length)
            name, version, files = self._check(header, total - _PRELUDE - length - _DIGEST)
            self._unpack(f, files)
        bundle_swap.write(join(self.folder, "ready"), {"name": name, "version": version})
        discard(self.package)  # its room is needed for the unpacked files and the old app
        return name, version

    def _verify(self, f, total):
        # The header's length, once the package is a bundle of a known format whose digest
        # matches: a damaged package fails here, before anything of it is believed.
        prelude = f.read(_PRELUDE)
        if prelude and prelude[:4] != _MAGIC[: len(prelude)]:
            raise Failed(6, "not an application bundle (no %r at the start)" % _MAGIC)
        if len(prelude) < _PRELUDE or total < _PRELUDE + _DIGEST:
            raise Failed(5, "the bundle is truncated (%d bytes)" % total)
        if prelude[4] != _FORMAT:
            raise Failed(6, "bundle format %d is unknown here (format %d is)" % (prelude[4], _FORMAT))
        f.seek(0)
        digest = self._digest(f, total - _DIGEST)
        if f.read(_DIGEST) != digest:
            raise Failed(5, "the bundle's SHA-256 does not match: it is truncated or damaged")
        length = int.from_bytes(prelude[5:], "little")
        if length > _HEADER_MAX or _PRELUDE + length > total - _DIGEST:
            raise Failed(6, "a bundle header of %d bytes" % length)
        return length

    def _header(self, f, length):
        # The header's JSON; f is left at the first file.
        import json

        f.seek(_PRELUDE)
        try:
            return json.loads(f.read(length))
        except (ValueError, UnicodeError):
            raise Failed(6, "the bundle header is not JSON")

    def _check(self, header, payload):
        # (name, version, files) of a well-formed header for this board whose files take the
        # payload's bytes exactly.
        try:
            name, version, board, files = header["name"], header["version"], header["board"], header["files"]
            if not (isinstance(name, str) and isinstance(version, str)):
                raise ValueError("name, version")
            paths = set()
            for path, size in files:
                if not _app_path(path) or path in paths or not isinstance(size, int) or size < 0:
                    raise ValueError(path)
                paths.add(path)
                payload -= size
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise Failed(6, "a bad bundle header (%r)" % (exc,))
        if "main.py" not in paths:
            raise Failed(6, "the bundle has no main.py")
        if self.board is not None and board != self.board:
            raise Failed(6, "the bundle is for the %s board, this is %s" % (board, self.board))
        if payload:
            raise Failed(6, "the bundle's files do not add up to its size")
        return name, version, files

    def _unpack(self, f, files):
        new = join(self.folder, "new")
        discard(new)
        for path, size in files:
            target = join(new, path)
            mkdirs(target.rsplit("/", 1)[0])
            with open(target, "wb") as out:
                for chunk in self._chunks(f, size):
                    out.write(chunk)

    def apply(self):
        ready = bundle_swap.read(join(self.folder, "ready"))
        if ready is None:
            raise Failed(8, "no verified bundle to apply")
        bundle_swap.write(join(self.folder, "apply"), ready)

    def outcome(self):
        return bundle_swap.outcome(self.folder)

    def confirm(self):
        bundle_swap.confirm(self.folder)

    def rollback(self):
        bundle_swap.rollback(self.folder)
