# The firmware-update sink of the ESP32 (the interface of lwm2m/firmware.py) on MicroPython's
# esp32.Partition: the image goes into the OTA partition after the running one, which the
# bootloader then boots on trial. It needs a firmware built with OTA partitions (the OTA
# variants, e.g. ESP32_GENERIC-OTA) and an app image, not a whole flash image: the
# micropython.bin of a build (micropython.org's .app-bin), never firmware.bin.
#
# Checked in finish(), as ESP-IDF lays an app image out (esp_image_format.h, esp_app_desc.h):
#   0   esp_image_header_t (24 bytes): magic 0xE9 at 0, segment_count at 1, chip_id (u16 LE)
#       at 12, hash_appended at 23; then segment_count times: load_addr u32, data_len u32,
#       data. Zero padding and a checksum byte make the length a multiple of 16; then, when
#       hash_appended is 1, the SHA-256 of everything before it.
#   32  esp_app_desc_t, at the start of the first segment's data: magic 0xABCD5432, version at
#       +16, project_name at +48, time at +80, date at +96 (char[32], [32], [16], [16]).
# Chip ids: ESP32 0, S2 2, C3 5, S3 9, C2 12, C6 13, H2 16, P4 18, C5 23. By default the chip
# is the running image's own header's, which is right for the chip by construction.
#
# Rollback relies on the bootloader's (CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE, set for every
# board in MicroPython's ports/esp32/boards/sdkconfig.base): set_boot() marks the new image
# NEW, the next boot makes it PENDING_VERIFY, and the boot after that, unless
# mark_app_valid_cancel_rollback() came first, marks it ABORTED and runs the previous image
# again. That also covers an image that crashes before Python starts, so rollback() only
# resets. Calling set_boot() on the previous partition instead would leave that image NEW
# (then PENDING_VERIFY) in its turn: should the board lose power before it confirms, both
# entries end ABORTED and the bootloader tries the slots in order, the bad image perhaps
# first. That is done only as a fallback, when a rollback by reset did not happen (a build
# without rollback support), and the image it brings back is confirmed at once.
#
# Restarts: a write at any lower offset is honoured. Inside the block being buffered it only
# shortens the buffer; further back it reads the partition back from 0 to rebuild the digest
# and the header walk, as resume() does (rare, and it takes longer the further in it goes).
import binascii
import hashlib
import os

import esp32

from lwm2m import store
from lwm2m.firmware import Failed

_BLOCK = 4096  # the partition's erase block, and writeblocks' unit
_HEAD = 144  # the bytes of block 0 kept for finish(): the image header and esp_app_desc_t
_RECORD = "/ota.json"


def _text(raw):
    # A C char[] field of the app description as str ("" when it is not text).
    try:
        return bytes(raw).split(b"\0")[0].decode()
    except ValueError:  # UnicodeError
        return ""


def _label(part):
    return part.info()[4]


def _running():
    return esp32.Partition(esp32.Partition.RUNNING)


class OtaSink:
    def __init__(self, state_dir, chip_id=None):
        self._dir = state_dir
        self._path = state_dir + _RECORD
        self._buf = bytearray(_BLOCK)
        self._mv = memoryview(self._buf)
        self._small = bytearray(32)  # segment headers (8 bytes) and the appended digest
        running = _running()
        if chip_id is None:
            head = memoryview(self._small)[:16]
            running.readblocks(0, head)
            chip_id = head[12] | head[13] << 8
        self.chip_id = chip_id
        try:
            self._part = running.get_next_update()
        except OSError:  # ENOENT: a firmware without OTA partitions
            self._part = None
        self._cap = self._part.ioctl(4, 0) * self._part.ioctl(5, 0) if self._part else 0
        self._open = False
        self._verified = None

    # -- the sink interface --------------------------------------------------------------

    def begin(self, size):
        if self._part is None:
            raise Failed(2, "no OTA partition: flash an OTA build of MicroPython")
        record = self._load()
        if record.get("applied") and record.get("label") == _label(_running()):
            # The target would be the previous image, the one a rollback needs.
            raise Failed(8, "the running image is on trial: confirm it first")
        if size is not None and size > self._cap:
            raise Failed(2, "%d bytes do not fit in %s (%d bytes)" % (size, _label(self._part), self._cap))
        self._restart()
        self._block = self._fill = 0
        self._save({"label": _label(self._part)})
        self._open = True

    def write(self, offset, data):
        if not self._open:
            raise Failed(8, "write before begin")
        start = self._block * _BLOCK
        if offset != start + self._fill:
            if offset > start + self._fill:
                raise Failed(8, "write at %d leaves a gap after %d" % (offset, start + self._fill))
            if offset >= start:
                self._fill = offset - start  # within the block not yet written
            else:
                self._rewind(offset, False)
        n = len(data)
        if offset + n > self._cap:
            raise Failed(2, "the image is larger than %s (%d bytes)" % (_label(self._part), self._cap))
        src = memoryview(data)
        i = 0
        while i < n:
            k = min(_BLOCK - self._fill, n - i)
            self._buf[self._fill:self._fill + k] = src[i:i + k]
            self._fill += k
            i += k
            if self._fill == _BLOCK:
                self._flush(_BLOCK)
                self._block += 1
                self._fill = 0

    def resume(self, offset):
        # What the partition holds up to offset, if it is the image being written here.
        record = self._load()
        if (self._part is None or record.get("applied") or record.get("label") != _label(self._part)
                or not 0 <= offset <= self._cap):
            return None
        self._open = True
        return self._rewind(offset, True)

    def finish(self):
        if not self._open:
            raise Failed(8, "finish before begin")
        total = self._block * _BLOCK + self._fill
        if self._fill:
            self._flush(self._fill)  # padded with 0xFF; the position stays for a later write
        head = self._head
        self._open = False
        if head is None or head[0] != 0xE9:
            raise Failed(6, "not an ESP app image (no 0xE9 magic)")
        if not 0 < head[1] <= 16:
            raise Failed(6, "not an ESP app image (%d segments)" % head[1])
        chip = head[12] | head[13] << 8
        if chip != self.chip_id:
            raise Failed(6, "image for chip id %d, this is chip id %d" % (chip, self.chip_id))
        if head[32:36] != b"\x32\x54\xcd\xab":
            raise Failed(6, "no app description: a bootloader or a whole flash image?")
        if head[23] != 1:
            raise Failed(6, "image without an appended SHA-256")
        end = self._end
        if end is None or end + 32 > total:
            raise Failed(5, "image truncated: %d bytes" % total)
        digest = memoryview(self._small)[:32]
        self._part.readblocks(end // _BLOCK, digest, end % _BLOCK)
        if self._sha.digest() != bytes(digest):
            raise Failed(5, "SHA-256 of the image does not match")
        # MicroPython's builds leave version and project_name empty
        # (CONFIG_APP_EXCLUDE_PROJECT_VER_VAR): the build date and time stand in.
        version = _text(head[48:80]) or ("%s %s" % (_text(head[128:144]), _text(head[112:128]))).strip()
        self._verified = version
        return _text(head[80:112]), version

    def apply(self):
        if self._verified is None:
            raise Failed(8, "no verified image to apply")
        # The record first: a power cut before set_boot() then reads as a rollback (8),
        # never as an update that silently did not happen.
        self._save({"label": _label(self._part), "previous": _label(_running()),
                    "version": self._verified, "applied": 1})
        try:
            self._part.set_boot()  # ESP-IDF verifies the image once more here
        except OSError as exc:
            self._save({})
            raise Failed(8, "the bootloader refused the image: %s" % exc)
        self._verified = None

    def outcome(self):
        record = self._load()
        if not record.get("applied"):
            return None
        version = record.get("version", "")
        if _label(_running()) == record.get("label"):
            return 1, version  # on trial until confirm()
        # Rolled back. Confirm the image that runs: after the fallback of rollback() it is
        # PENDING_VERIFY, and a reset before confirming would abort both images.
        try:
            esp32.Partition.mark_app_valid_cancel_rollback()
        except OSError:
            pass  # already valid, or a build without rollback
        self._save({})
        return 8, version

    def confirm(self):
        esp32.Partition.mark_app_valid_cancel_rollback()
        self._save({})

    def rollback(self):
        # The caller resets next, and the bootloader goes back by itself (see the top). If
        # the new image still runs after such a reset, the build cannot roll back: the
        # previous image is then set to boot outright.
        record = self._load()
        if not record.get("applied"):
            return
        if record.get("rollback"):
            esp32.Partition(record["previous"]).set_boot()
        record["rollback"] = 1
        self._save(record)

    # -- the image, block by block -------------------------------------------------------

    def _restart(self):
        self._sha = hashlib.sha256()  # of the image up to its digest (_end)
        self._head = None
        self._next = 24  # offset of the next segment header
        self._left = 0  # segment headers still to read
        self._end = None  # where the appended digest starts, once every header is read
        self._verified = None

    def _flush(self, n):
        # Writes the buffered block (n bytes of it the image's, the rest padded) and takes it in.
        for i in range(n, _BLOCK):
            self._buf[i] = 0xFF
        self._part.writeblocks(self._block, self._buf)
        self._take(n)

    def _take(self, n):
        # The block _block, of which n bytes belong to the image, is in the partition and in
        # the buffer: walk the segment headers it completes, hash it up to the digest.
        start = self._block * _BLOCK
        buf = self._buf
        if start == 0:
            self._head = bytes(self._mv[:_HEAD])
            self._left = buf[1] if buf[0] == 0xE9 and 0 < buf[1] <= 16 else 0
        end = start + n
        seg = memoryview(self._small)[:8]
        while self._left and self._next + 8 <= end:
            # Read back: a header may straddle blocks.
            self._part.readblocks(self._next // _BLOCK, seg, self._next % _BLOCK)
            self._next += 8 + (seg[4] | seg[5] << 8 | seg[6] << 16 | seg[7] << 24)
            self._left -= 1
            if not self._left:
                self._end = (self._next + 16) & ~15  # a checksum byte, then to 16
        stop = end if self._end is None else min(end, self._end)
        if stop > start:
            self._sha.update(self._mv[:stop - start])

    def _rewind(self, offset, whole):
        # Goes back to offset by reading the partition again from 0; returns the CRC-32 of
        # those offset bytes when whole.
        self._restart()
        crc = 0
        last = offset // _BLOCK
        for block in range(last):
            self._part.readblocks(block, self._buf)
            self._block = block
            self._take(_BLOCK)
            if whole:
                crc = binascii.crc32(self._buf, crc)
        self._block = last
        self._fill = offset % _BLOCK
        if self._fill:
            self._part.readblocks(last, self._buf)
            if whole:
                crc = binascii.crc32(self._mv[:self._fill], crc)
        return crc if whole else None

    # -- the record of what is being written or applied ------------------------------------

    def _load(self):
        # store.save() leaves the old or the new record after a power cut, so a corrupt one
        # is outside damage: read as no record, the safe side (a download starts over, an
        # unconfirmed image goes back at the next reset).
        try:
            return store.load(self._path) or {}
        except ValueError:  # StoreError
            return {}

    def _save(self, record):
        try:
            os.mkdir(self._dir)
        except OSError:
            pass  # there already
        store.save(self._path, record)
