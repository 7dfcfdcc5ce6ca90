# make flash: erase a board and write MicroPython onto it with esptool; for Pico boards
# (CHIP=rp2) print how to copy the UF2 instead.
#
#   python3 tools/flash.py --port PORT --firmware FILE.bin [--chip esp32|esp32s3|...] [--baud N]
#                          [--partitions FILE.csv]
#   python3 tools/flash.py --chip rp2 [--firmware FILE.uf2]
#
# The firmware .bin files of micropython.org/download for ESP chips are whole images that
# start with the second-stage bootloader, so they go at the chip's bootloader offset. The
# offsets are those of MicroPython's download pages (ports/esp32/boards/*/board.json
# "flash_offset", deploy_s2.md), which agree with esptool's own BOOTLOADER_FLASH_OFFSET of
# each chip (host_tests/test_tools.py checks that). The image's header names the chip it was
# built for; it is checked before anything is erased, and gives CHIP when none is given.
#
# Erase and write are one esptool run, `write-flash --erase-all`: esptool erases the whole
# flash (as erase-flash does) and then writes, over one connection. Two runs would reset the
# board in between, and on boards with native USB the port may come back under another name.
#
# --partitions FILE.csv (make flash PARTITIONS=...) replaces the image's partition table: the
# CSV is checked and made into the binary table (tools/partitions.py), written at 0x8000 in
# the same run after the image. The image's application starts at 0x10000, so the table must
# have an app partition there, large enough for it.
import argparse
import subprocess
import sys
from pathlib import Path

import partitions as partition_table

ROOT = Path(__file__).resolve().parent.parent
_APP_OFFSET = 0x10000  # where the application of a micropython.org image begins

# chip: (offset, image chip id). The id is the 16-bit "chip_id" of the ESP image extended
# header (bytes 12-13 of the file).
CHIPS = {
    "esp32": (0x1000, 0),
    "esp32s2": (0x1000, 2),
    "esp32s3": (0x0, 9),
    "esp32c2": (0x0, 12),
    "esp32c3": (0x0, 5),
    "esp32c5": (0x2000, 23),
    "esp32c6": (0x0, 13),
    "esp32h2": (0x0, 16),
    "esp32p4": (0x2000, 18),
}
BAUD = 460800  # the speed of MicroPython's instructions; 115200 if flashing fails part way
_IMAGE_MAGIC = 0xE9
_UF2_MAGIC = b"UF2\n"

RP2_STEPS = """\
Pico boards (RP2040, RP2350) are not flashed with esptool: their ROM shows a USB drive.
  1. Download the .uf2 for your board from https://micropython.org/download/
     (RPI_PICO_W for a Pico W, RPI_PICO2_W for a Pico 2 W).
  2. Unplug the board, hold its BOOTSEL button, plug it in, release the button.
  3. A drive named RPI-RP2 (RP2350 on a Pico 2) appears: copy the .uf2 onto it%s.
  4. The board restarts into MicroPython by itself; then: make deploy PORT=... BOARD=rp2
"""


class FlashError(Exception):
    pass


def image_chip(firmware):
    # The chip an ESP firmware image was built for, from its header; FlashError when the file
    # is not an ESP image.
    path = Path(firmware)
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except IsADirectoryError:
        raise FlashError("FIRMWARE %s is a folder, not a firmware .bin file" % path)
    except OSError as exc:
        raise FlashError("FIRMWARE %s: cannot read it: %s" % (path, exc.strerror or exc))
    if head.startswith(_UF2_MAGIC):
        raise FlashError("FIRMWARE %s is a UF2 file, for Pico boards: use CHIP=rp2, or download "
                         "the .bin for your ESP board from https://micropython.org/download/" % path)
    if len(head) < 16 or head[0] != _IMAGE_MAGIC:
        raise FlashError("FIRMWARE %s is not an ESP firmware image (it does not start with the "
                         "0xE9 image header): download the .bin from https://micropython.org/download/" % path)
    chip_id = head[12] | head[13] << 8
    for chip, (_offset, image_id) in CHIPS.items():
        if image_id == chip_id:
            return chip
    raise FlashError("FIRMWARE %s is an image for an ESP chip (id %d) this tool does not know; "
                     "use esptool directly with the offset of its instructions" % (path, chip_id))


def table_file(csv_path, firmware, offset, out_dir=None):
    # The binary table of csv_path, checked against the image, written under build/; its path.
    path = Path(csv_path)
    try:
        rows = partition_table.parse(path.read_text(), str(path))
    except OSError as exc:
        raise FlashError("PARTITIONS %s: cannot read it: %s" % (csv_path, exc.strerror))
    except partition_table.PartitionError as exc:
        raise FlashError("PARTITIONS %s" % exc)
    app = next((row for row in rows if row[1] == 0x00 and row[3] == _APP_OFFSET), None)
    if app is None:
        raise FlashError("PARTITIONS %s: no app partition at 0x%x, where the image's application is written"
                         % (csv_path, _APP_OFFSET))
    app_bytes = Path(firmware).stat().st_size - (_APP_OFFSET - offset)
    if app_bytes > app[4]:
        raise FlashError("PARTITIONS %s: the image's application (%d bytes) does not fit in %s (%d bytes)"
                         % (csv_path, app_bytes, app[0], app[4]))
    out = Path(out_dir or ROOT / "build") / (path.stem + ".bin")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(partition_table.binary(rows))
    return out


def esptool_argv(port, firmware, chip=None, baud=BAUD, partitions=None):
    # The esptool arguments that erase the flash and write firmware at the chip's offset (and
    # a partition table at 0x8000 after it).
    if not port:
        raise FlashError("PORT is missing: make flash PORT=/dev/ttyUSB0 FIRMWARE=file.bin (or COM3, "
                         "/dev/ttyACM0, /dev/cu.usbserial-...; list them with: .venv/bin/mpremote connect list)")
    if chip and chip not in CHIPS:
        raise FlashError("unknown CHIP %r: expected rp2 or one of %s" % (chip, ", ".join(CHIPS)))
    if not firmware:
        raise FlashError("FIRMWARE is missing: make flash PORT=%s FIRMWARE=path/to/ESP32_GENERIC-....bin "
                         "(download it from https://micropython.org/download/)" % port)
    if not Path(firmware).exists():
        raise FlashError("FIRMWARE %s: no such file" % firmware)
    built_for = image_chip(firmware)
    if chip and chip != built_for:
        raise FlashError("FIRMWARE %s is built for %s, not CHIP=%s: download the image for your "
                         "chip, or use CHIP=%s if that is your board" % (firmware, built_for, chip, built_for))
    chip = built_for
    try:
        baud = int(baud)
    except (TypeError, ValueError):
        raise FlashError("BAUD %r: expected a number such as 460800 or 115200" % (baud,))
    offset = CHIPS[chip][0]
    argv = ["--chip", chip, "--port", port, "--baud", str(baud),
            "write-flash", "--erase-all", "0x%x" % offset, str(firmware)]
    if partitions:
        argv += ["0x%x" % partition_table.TABLE_OFFSET, str(table_file(partitions, firmware, offset))]
    return argv


def run_esptool(argv):
    return subprocess.call([sys.executable, "-m", "esptool"] + argv)


def flash(port, firmware, chip=None, baud=BAUD, runner=run_esptool, log=print, partitions=None):
    if chip == "rp2" or (not chip and str(firmware or "").lower().endswith(".uf2")):
        log((RP2_STEPS % (" (%s)" % firmware if firmware else "")).rstrip("\n"))
        return 0
    argv = esptool_argv(port, firmware, chip, baud, partitions)
    if not chip:
        log("flash: the image is built for %s (CHIP=%s)" % (argv[1], argv[1]))
    log("flash: erasing %s on %s and writing %s at 0x%x%s" % (argv[1], port, firmware, CHIPS[argv[1]][0],
        ", and the partition table of %s at 0x8000" % partitions if partitions else ""))
    code = runner(argv)
    if code != 0:
        raise FlashError("esptool failed (exit %d). If it could not connect, put the board in its "
                         "bootloader: hold BOOT (GPIO0), press and release RESET (EN), release BOOT, "
                         "and run this again; if writing fails part way, try BAUD=115200" % code)
    log("flash: done. Next: cp firmware/config.example.json config.json, edit it, then "
        "make deploy PORT=%s" % port)
    if "ota" not in Path(str(firmware)).name.lower() and not partitions:
        log("flash: note: firmware updates over the air (object 5) need an OTA image (e.g. "
            "ESP32_GENERIC-OTA-....bin): its name has no OTA, so it may have no partition to update into")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description="Erase an ESP board and write MicroPython onto it with esptool.")
    parser.add_argument("--port", default="", help="serial port of the board")
    parser.add_argument("--firmware", default="", help="MicroPython .bin from micropython.org/download")
    parser.add_argument("--chip", default="", help="rp2 or one of: %s (default: from the image)" % ", ".join(CHIPS))
    parser.add_argument("--baud", default=str(BAUD), help="serial speed while writing (default %d)" % BAUD)
    parser.add_argument("--partitions", default="", help="a partition table (CSV) to write instead of the image's")
    args = parser.parse_args(argv)
    try:
        return flash(args.port, args.firmware, args.chip.lower().replace("-", "") or None, args.baud,
                     partitions=args.partitions or None)
    except FlashError as exc:
        print("flash: %s" % exc, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
