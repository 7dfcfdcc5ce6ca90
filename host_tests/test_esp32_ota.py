# The ESP32 firmware-update sink (boards/esp32/ota.py) on CPython, under a fake `esp32`
# module: two OTA partitions in a bytearray each, a writeblocks that refuses anything but
# whole 4096-byte blocks (as the sink promises), and a bootloader that rolls back as ESP-IDF's
# does with CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE (NEW -> PENDING_VERIFY -> ABORTED unless
# confirmed). Images come from a generator of ESP-IDF app images, checked against esptool's
# own parser so that the sink is not only tested against this file's idea of the format.
import binascii
import errno
import hashlib
import importlib.util
import io
import os
import random
import struct
import sys
import types
from pathlib import Path

import pytest

from lwm2m import store
from lwm2m.firmware import Failed

ROOT = Path(__file__).resolve().parent.parent
BLOCK = 4096
PART_SIZE = 64 * BLOCK  # 256 KB OTA partitions: small images, quick tests
ESP32, ESP32S3, ESP32C3 = 0, 9, 5


# --- an ESP-IDF app image -------------------------------------------------------------------

def esp_image(sizes=(3000, 5000), chip=ESP32, name=b"lwm2m-app", version=b"1.2.3", seed=1,
              magic=0xE9, hash_appended=1, desc_magic=0xABCD5432, date=b"Jan  1 2026", time=b"12:00:00"):
    # header (24) + segments (8-byte header, data) + zero padding + checksum byte, to a
    # multiple of 16, + SHA-256 of all that. Segment 0 starts with esp_app_desc_t (256 bytes).
    assert all(n % 4 == 0 for n in sizes)  # ESP-IDF refuses other segment lengths
    rnd = random.Random(seed)
    desc = (struct.pack("<IIII", desc_magic, 0, 0, 0) + version.ljust(32, b"\0") + name.ljust(32, b"\0")
            + time.ljust(16, b"\0") + date.ljust(16, b"\0") + b"v5.4.1".ljust(32, b"\0") + bytes(32) + bytes(80))
    assert len(desc) == 256
    datas = [desc + rnd.randbytes(sizes[0] - 256)] + [rnd.randbytes(n) for n in sizes[1:]]
    # magic, segment_count, spi_mode, spi_speed/size, entry_addr; wp_pin, spi_pin_drv[3];
    # chip_id, min_chip_rev, min_chip_rev_full, max_chip_rev_full, reserved[4], hash_appended
    out = struct.pack("<BBBBI", magic, len(datas), 2, 0x20, 0x40081234) + bytes([0xEE, 0, 0, 0])
    out += struct.pack("<HBHH", chip, 0, 0, 399) + bytes(4) + bytes([hash_appended])
    assert len(out) == 24
    checksum = 0xEF
    for i, data in enumerate(datas):
        out += struct.pack("<II", 0x3F400020 + 0x10000 * i, len(data)) + data
        for byte in data:
            checksum ^= byte
    out += bytes(15 - len(out) % 16) + bytes([checksum])
    assert len(out) % 16 == 0
    if hash_appended:
        out += hashlib.sha256(out).digest()
    return out


@pytest.mark.parametrize("sizes, chip, esptool_chip", [((3000, 5000), ESP32, "esp32"),
                                                       ((256, 4), ESP32S3, "esp32s3"),
                                                       ((4096 - 32 - 8, 9000, 20), ESP32C3, "esp32c3")])
def test_the_generator_makes_images_that_esptool_accepts(sizes, chip, esptool_chip):
    from esptool.bin_image import LoadFirmwareImage

    image = LoadFirmwareImage(esptool_chip, esp_image(sizes, chip))
    assert image.chip_id == chip and [len(s.data) for s in image.segments] == list(sizes)
    assert image.checksum == image.calculate_checksum()
    assert image.stored_digest == image.calc_digest


# --- the fake esp32 module --------------------------------------------------------------------

class Flash:
    # Two OTA app partitions and the bootloader's view of otadata: which one boots, and each
    # one's state (new, pending, valid, aborted) as esp_ota_ops.c and bootloader_utility.c
    # keep them.
    def __init__(self, running="ota_0", rollback=True):
        self.parts = {"ota_0": bytearray(b"\xff" * PART_SIZE), "ota_1": bytearray(b"\xff" * PART_SIZE)}
        self.parts[running][:len(RUNNING_IMAGE)] = RUNNING_IMAGE
        self.running = self.boot = running
        self.state = {running: "valid"}
        self.rollback = rollback  # the bootloader's CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE
        self.writes = []  # (label, block)
        self.calls = []  # set_boot / mark_valid, in order
        self.refuse_boot = False

    def reset(self):
        # The bootloader: a PENDING_VERIFY image that was not confirmed is ABORTED and the
        # other one runs; a NEW one becomes PENDING_VERIFY and runs.
        if self.rollback:
            for label, state in list(self.state.items()):
                if state == "pending":
                    self.state[label] = "aborted"
            if self.state.get(self.boot) == "aborted":
                self.boot = other(self.boot)
            elif self.state.get(self.boot) == "new":
                self.state[self.boot] = "pending"
        self.running = self.boot


def other(label):
    return "ota_1" if label == "ota_0" else "ota_0"


RUNNING_IMAGE = esp_image((1000, 2000), ESP32, b"", b"", seed=99)  # what the board runs now


def fake_esp32(flash):
    mod = types.ModuleType("esp32")

    class Partition:
        BOOT = 0
        RUNNING = 1
        TYPE_APP = 0
        TYPE_DATA = 1

        def __init__(self, id, block_size=BLOCK):
            if id == Partition.RUNNING:
                id = flash.running
            elif id == Partition.BOOT:
                id = flash.boot
            if id not in flash.parts:
                raise OSError(errno.ENOENT, "no partition %r" % id)
            self.label = id
            self.data = flash.parts[id]

        def info(self):
            return (0, 0x10 + int(self.label[-1]), 0x10000 + PART_SIZE * int(self.label[-1]), PART_SIZE, self.label, False)

        def readblocks(self, block_num, buf, offset=0):
            start = block_num * BLOCK + offset
            assert 0 <= start and start + len(buf) <= PART_SIZE, "read outside the partition"
            buf[:] = self.data[start:start + len(buf)]

        def writeblocks(self, block_num, buf, offset=None):
            # The simple protocol the sink uses: erase then write, whole blocks only.
            assert offset is None, "the sink must not use the extended (no-erase) write"
            assert isinstance(buf, bytearray) and len(buf) == BLOCK, "a write of %d bytes" % len(buf)
            assert 0 <= block_num < PART_SIZE // BLOCK, "block %d outside the partition" % block_num
            assert self.label != flash.running, "a write into the running partition"
            self.data[block_num * BLOCK:(block_num + 1) * BLOCK] = buf
            flash.writes.append((self.label, block_num))

        def ioctl(self, cmd, arg):
            return {4: PART_SIZE // BLOCK, 5: BLOCK}.get(cmd)

        def set_boot(self):
            if flash.refuse_boot:
                raise OSError(-5379, "ESP_ERR_OTA_VALIDATE_FAILED")
            flash.calls.append(("set_boot", self.label))
            flash.boot = self.label
            flash.state[self.label] = "new" if flash.rollback else "valid"

        def get_next_update(self):
            return Partition(other(self.label))

        @classmethod
        def mark_app_valid_cancel_rollback(cls):
            flash.calls.append(("mark_valid", flash.running))
            flash.state[flash.running] = "valid"

        @staticmethod
        def find(type=0, subtype=0xFF, label=None, block_size=BLOCK):
            return [Partition(name) for name in sorted(flash.parts) if label in (None, name)]

    mod.Partition = Partition
    return mod


@pytest.fixture
def flash():
    return Flash()


@pytest.fixture
def board(flash, monkeypatch, tmp_path):
    # The module loaded fresh under this test's fake esp32; board.sink(state) makes a sink
    # as the firmware does at start, so a second call is what a reboot gives.
    monkeypatch.setitem(sys.modules, "esp32", fake_esp32(flash))
    spec = importlib.util.spec_from_file_location("ota", ROOT / "boards" / "esp32" / "ota.py")
    ota = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ota)
    state = str(tmp_path / "state")
    return types.SimpleNamespace(ota=ota, flash=flash, state=state, sink=lambda **kw: ota.OtaSink(state, **kw))


def send(sink, image, chunk=1024, start=0, end=None):
    end = len(image) if end is None else end
    for offset in range(start, end, chunk):
        sink.write(offset, image[offset:min(offset + chunk, end)])


def target(flash):
    return flash.parts[other(flash.running)]


def failed(result, call, *args):
    with pytest.raises(Failed) as info:
        call(*args)
    assert info.value.result == result, str(info.value)
    return str(info.value)


# --- writing and checking an image ------------------------------------------------------------

@pytest.mark.parametrize("chunk", [1024, 700, 5000, 4096, 1, 200000])
def test_an_image_lands_byte_exact_in_whole_blocks(board, chunk):
    image = esp_image((30000, 12344))
    sink = board.sink()
    sink.begin(len(image))
    send(sink, image, chunk)
    assert sink.finish() == ("lwm2m-app", "1.2.3")
    part = target(board.flash)
    assert part[:len(image)] == image
    blocks = -(-len(image) // BLOCK)  # the last one padded with 0xFF
    assert part[len(image):blocks * BLOCK] == b"\xff" * (blocks * BLOCK - len(image))
    assert board.flash.writes == [("ota_1", b) for b in range(blocks)]  # each block once, in order


def test_the_size_may_be_unknown_and_the_image_exactly_a_partition(board):
    # header 24, segment headers 16, data, 3 bytes of padding, checksum byte, digest 32
    image = esp_image((PART_SIZE - 24 - 16 - 3 - 1 - 32 - 4, 4))
    assert len(image) == PART_SIZE
    sink = board.sink()
    sink.begin(None)
    send(sink, image, 1024)
    assert sink.finish() == ("lwm2m-app", "1.2.3")
    assert target(board.flash) == image


def test_bytes_after_the_digest_are_kept_but_not_checked(board):
    image = esp_image() + b"\x00" * 100  # e.g. a signature block
    sink = board.sink()
    sink.begin(len(image))
    send(sink, image, 1024)
    assert sink.finish() == ("lwm2m-app", "1.2.3")


def test_micropython_builds_without_version_report_their_build_time(board):
    # ports/esp32/boards/sdkconfig.base sets CONFIG_APP_EXCLUDE_PROJECT_VER_VAR and _NAME_VAR
    image = esp_image(name=b"", version=b"", date=b"Aug 19 2026", time=b"00:36:09")
    sink = board.sink()
    sink.begin(len(image))
    send(sink, image)
    assert sink.finish() == ("", "Aug 19 2026 00:36:09")


@pytest.mark.parametrize("where", [0x30, 24 + 8 + 300, 24 + 8 + 3000 + 4, 8000, -40, -33, -1])
def test_a_flipped_byte_is_an_integrity_failure(board, where):
    # in the app description, a segment's data, the second segment header's load address,
    # the checksum byte and the digest itself
    image = bytearray(esp_image())
    image[where] ^= 0x01
    sink = board.sink()
    sink.begin(len(image))
    send(sink, bytes(image))
    failed(5, sink.finish)


def test_a_changed_segment_length_is_an_integrity_failure(board):
    image = bytearray(esp_image())
    image[24 + 4] ^= 0x10  # the first segment's data_len: the walk ends elsewhere
    sink = board.sink()
    sink.begin(len(image))
    send(sink, bytes(image))
    failed(5, sink.finish)


def test_a_truncated_image_is_an_integrity_failure(board):
    image = esp_image()
    for cut in (len(image) - 1, len(image) - 32, 24 + 8 + 3000 + 3, 200, 100):
        sink = board.sink()
        sink.begin(None)
        send(sink, image[:cut])
        assert "truncated" in failed(5, sink.finish)


@pytest.mark.parametrize("image, words", [
    (esp_image(magic=0xEA), "magic"),
    (b"PK\x03\x04" + bytes(5000), "magic"),  # a zip
    (esp_image(chip=ESP32S3), "chip id 9"),
    (esp_image(chip=ESP32C3), "chip id 5"),
    (esp_image(desc_magic=0x50), "app description"),  # a bootloader image has no app desc
    (esp_image(hash_appended=0), "SHA-256"),
    (b"\xe9", "segments"),
    (b"", "magic"),
])
def test_another_kind_of_package_or_chip_is_refused(board, image, words):
    sink = board.sink()
    sink.begin(len(image))
    send(sink, image)
    assert words in failed(6, sink.finish)


def test_the_chip_is_the_running_images_unless_given(board):
    assert board.sink().chip_id == ESP32  # RUNNING_IMAGE's header
    image = esp_image(chip=ESP32S3)
    sink = board.sink(chip_id=ESP32S3)
    sink.begin(len(image))
    send(sink, image)
    assert sink.finish() == ("lwm2m-app", "1.2.3")


def test_an_image_larger_than_the_partition_is_refused(board):
    sink = board.sink()
    assert "do not fit" in failed(2, sink.begin, PART_SIZE + 1)
    sink.begin(None)  # unknown size: refused at the first byte too many
    send(sink, bytes(PART_SIZE), 4096)
    failed(2, sink.write, PART_SIZE, b"\x00")
    assert board.flash.writes == [("ota_1", b) for b in range(PART_SIZE // BLOCK)]


def test_without_ota_partitions_nothing_can_begin(board):
    board.flash.parts.pop("ota_1")  # what get_next_update() finds on a non-OTA build: ENOENT
    sink = board.sink()
    assert "OTA" in failed(2, sink.begin, 1000)
    assert sink.resume(0) is None and sink.outcome() is None


def test_writes_need_a_begin_and_no_gaps(board):
    sink = board.sink()
    failed(8, sink.write, 0, b"\xe9")
    sink.begin(None)
    sink.write(0, bytes(1000))
    failed(8, sink.write, 1001, b"\x00")


# --- restarts ---------------------------------------------------------------------------------

@pytest.mark.parametrize("back_to", [0, 1024, 4096, 5000, 8192, 9216, 10000])
def test_a_write_at_a_lower_offset_restarts_from_there(board, back_to):
    image = esp_image((20000, 7000))
    junk = bytes(len(image))
    sink = board.sink()
    sink.begin(len(image))
    send(sink, image, 1024, end=10240)
    sink.write(10240, junk[10240:12000])  # what lay beyond is forgotten
    send(sink, image, 1024, start=back_to, end=10240)
    send(sink, image, 1024, start=10240)
    assert sink.finish() == ("lwm2m-app", "1.2.3")
    assert target(board.flash)[:len(image)] == image


def test_a_restart_after_a_bad_image_takes_the_good_one(board):
    good = esp_image(seed=5)
    bad = bytearray(good)
    bad[7000] ^= 0xFF
    sink = board.sink()
    sink.begin(len(good))
    send(sink, bytes(bad))
    failed(5, sink.finish)
    sink.begin(len(good))
    send(sink, good, 700)
    assert sink.finish() == ("lwm2m-app", "1.2.3")


@pytest.mark.parametrize("cut", [0, 1024, 4096, 6144, 7000, 8192])
def test_resume_after_a_reboot_gives_the_prefix_digest_and_continues(board, cut):
    image = esp_image((9000, 3000))
    sink = board.sink()
    sink.begin(len(image))
    send(sink, image, 1024, end=cut)
    # Power cut: what was buffered and not yet in a whole block is lost; the sink after the
    # reboot finds the block-aligned part.
    kept = cut - cut % BLOCK
    again = board.sink()
    assert again.resume(kept) == binascii.crc32(image[:kept])
    send(again, image, 1024, start=kept)
    assert again.finish() == ("lwm2m-app", "1.2.3")
    assert target(board.flash)[:len(image)] == image


def test_resume_of_bytes_never_written_gives_another_digest(board):
    image = esp_image()
    sink = board.sink()
    sink.begin(len(image))
    send(sink, image, 1024, end=4096)
    digest = board.sink().resume(6000)
    assert digest is not None and digest != binascii.crc32(image[:6000])


def test_resume_without_a_record_is_none(board):
    assert board.sink().resume(0) is None  # nothing begun on this board
    sink = board.sink()
    sink.begin(None)
    assert board.sink().resume(PART_SIZE + 1) is None  # more than a partition can hold
    assert board.sink().resume(0) == binascii.crc32(b"")


def test_resume_is_none_once_the_image_was_applied_or_the_record_is_damaged(board):
    image = esp_image()
    sink = board.sink()
    sink.begin(len(image))
    send(sink, image)
    sink.finish()
    sink.apply()
    assert board.sink().resume(1024) is None
    Path(board.state, "ota.json").write_text("{not json")
    assert board.sink().resume(1024) is None and board.sink().outcome() is None


# --- apply, the trial run, confirm and rollback ------------------------------------------------

def applied(board, version=b"2.0"):
    image = esp_image(version=version)
    sink = board.sink()
    sink.begin(len(image))
    send(sink, image)
    assert sink.finish() == ("lwm2m-app", version.decode())
    sink.apply()
    return sink


def test_apply_sets_the_target_to_boot(board):
    assert board.sink().outcome() is None  # nothing applied before
    applied(board)
    assert board.flash.calls == [("set_boot", "ota_1")]
    assert board.flash.running == "ota_0"  # the caller resets


def test_apply_needs_a_verified_image(board):
    sink = board.sink()
    failed(8, sink.apply)
    image = bytearray(esp_image())
    image[-1] ^= 1
    sink.begin(len(image))
    send(sink, bytes(image))
    failed(5, sink.finish)
    failed(8, sink.apply)
    assert board.flash.calls == []


def test_apply_refused_by_the_bootloader_is_update_failed(board):
    board.flash.refuse_boot = True
    with pytest.raises(Failed) as info:
        applied(board)
    assert info.value.result == 8
    assert board.sink().outcome() is None


def test_the_new_image_runs_on_trial_until_confirmed(board):
    flash = board.flash
    applied(board, b"2.0")
    flash.reset()
    assert flash.running == "ota_1"
    sink = board.sink()
    assert sink.outcome() == (1, "2.0")
    assert board.sink().outcome() == (1, "2.0")  # asked again (another reset): still on trial
    sink.confirm()
    assert flash.calls[-1] == ("mark_valid", "ota_1")
    assert sink.outcome() is None and board.sink().outcome() is None
    flash.reset()
    assert flash.running == "ota_1"  # confirmed: it stays


def test_an_unconfirmed_image_is_rolled_back_by_the_bootloader(board):
    flash = board.flash
    applied(board, b"2.0")
    flash.reset()
    assert board.sink().outcome() == (1, "2.0")
    board.sink().rollback()  # did not register in time
    assert ("set_boot", "ota_0") not in flash.calls  # the bootloader does it
    flash.reset()
    assert flash.running == "ota_0"
    assert board.sink().outcome() == (8, "2.0")
    assert board.sink().outcome() is None  # reported once


def test_an_image_that_crashes_before_python_is_rolled_back(board):
    flash = board.flash
    applied(board, b"2.0")
    flash.reset()  # boots ota_1, which panics: the next reset comes without outcome()
    flash.reset()
    assert flash.running == "ota_0"
    assert board.sink().outcome() == (8, "2.0")


def test_a_power_cut_between_record_and_set_boot_reads_as_rolled_back(board, monkeypatch):
    class Cut(BaseException):
        pass

    def cut(self):
        raise Cut()

    monkeypatch.setattr(sys.modules["esp32"].Partition, "set_boot", cut)
    with pytest.raises(Cut):
        applied(board, b"2.0")
    board.flash.reset()
    assert board.flash.running == "ota_0"
    assert board.sink().outcome() == (8, "2.0")


def test_without_a_rollback_bootloader_the_second_rollback_sets_the_old_image(board):
    flash = board.flash
    flash.rollback = False
    applied(board, b"2.0")
    flash.reset()
    assert board.sink().outcome() == (1, "2.0")
    board.sink().rollback()
    flash.reset()  # nothing happens: the bootloader cannot roll back
    assert flash.running == "ota_1" and board.sink().outcome() == (1, "2.0")
    board.sink().rollback()
    assert flash.calls[-1] == ("set_boot", "ota_0")
    flash.reset()
    assert flash.running == "ota_0"
    assert board.sink().outcome() == (8, "2.0")
    assert flash.calls[-1] == ("mark_valid", "ota_0")


def test_a_new_download_during_the_trial_is_refused(board):
    # It would overwrite the image a rollback goes back to.
    applied(board)
    board.flash.reset()
    sink = board.sink()
    assert "confirm" in failed(8, sink.begin, 1000)
    sink.confirm()
    sink.begin(1000)  # into ota_0 now
    send(sink, bytes(4096))
    assert board.flash.writes[-1] == ("ota_0", 0)


def test_a_second_update_after_confirming_goes_back_to_the_first_partition(board):
    flash = board.flash
    applied(board, b"2.0")
    flash.reset()
    board.sink().confirm()
    applied(board, b"3.0")
    assert flash.calls[-1] == ("set_boot", "ota_0")
    flash.reset()
    assert flash.running == "ota_0" and board.sink().outcome() == (1, "3.0")


# --- the record, across power cuts -------------------------------------------------------------

class PowerCut(BaseException):
    pass


def test_a_power_cut_in_the_rename_leaves_the_old_record(board, monkeypatch):
    sink = applied(board, b"2.0")
    record = store.load(board.state + "/ota.json")
    assert record["applied"] and record["version"] == "2.0"

    def rename(src, dst):
        raise PowerCut()

    with monkeypatch.context() as m:
        m.setattr(os, "rename", rename)
        with pytest.raises(PowerCut):
            sink.confirm()
    assert store.load(board.state + "/ota.json") == record


def test_a_power_cut_in_the_close_leaves_the_old_record(board, monkeypatch):
    applied(board, b"2.0")
    board.flash.reset()
    sink = board.sink()
    real_open = open

    class Cutting(io.StringIO):
        def __init__(self, path):
            super().__init__()
            self.path = path

        def close(self):
            # half the text reaches the file, then the power goes
            with real_open(self.path, "w") as f:
                f.write(self.getvalue()[:3])
            raise PowerCut()

    def cutting_open(path, mode="r", *args, **kw):
        return Cutting(path) if "w" in mode else real_open(path, mode, *args, **kw)

    with monkeypatch.context() as m:
        m.setattr("builtins.open", cutting_open)
        with pytest.raises(PowerCut):
            sink.confirm()
    assert board.sink().outcome() == (1, "2.0")  # the old record: confirm again
    board.sink().confirm()
    assert board.sink().outcome() is None


def test_a_power_cut_between_remove_and_rename_on_fat_leaves_the_new_record(board, monkeypatch):
    # FAT refuses a rename over a file: store.py removes the old one first; cut there, the
    # complete .tmp is what load() reads.
    sink = applied(board, b"2.0")
    calls = []

    def rename(src, dst):
        calls.append(src)
        if len(calls) == 1:
            raise OSError(errno.EEXIST, "exists")
        raise PowerCut()

    with monkeypatch.context() as m:
        m.setattr(os, "rename", rename)
        with pytest.raises(PowerCut):
            sink.confirm()
    assert not os.path.exists(board.state + "/ota.json")
    assert store.load(board.state + "/ota.json") == {}  # the new record: nothing applied
    assert board.sink().outcome() is None


def test_the_record_is_json_in_the_state_folder(board):
    sink = board.sink()
    sink.begin(None)
    assert store.load(board.state + "/ota.json") == {"label": "ota_1"}
    assert sorted(os.listdir(board.state)) == ["ota.json"]


def test_the_board_module_makes_the_sink_and_loads_ota_only_then(board, monkeypatch):
    from test_boards import Board

    monkeypatch.delitem(sys.modules, "ota", raising=False)
    esp = Board("esp32", monkeypatch)  # loads board.py: boards/esp32 is not on the path, so
    assert "ota" not in sys.modules  # an `import ota` at its top would have failed
    monkeypatch.setitem(sys.modules, "ota", board.ota)
    sink = esp.mod.firmware_sink(board.state)
    assert isinstance(sink, board.ota.OtaSink) and sink.resume(0) is None
