# The virtual board's `vfs` module (tools/vboard.mjs installs it as a built-in): the VM's own
# (mount, umount, VfsRom, VfsPosix) with rom_ioctl() over the board's ROMFS partition
# (--romfs-bytes; none by default, as on most boards' stock firmware), the calls that
# `mpremote romfs query|deploy` make: 1 the number of partitions, 2 the partition as a
# memoryview, 3 prepare a range for writing (erased to 0xFF), 4 write, 5 writing done, 6 the
# erase block size. The partition lies outside the MicroPython heap, as flash does; at each
# boot the harness mounts a valid image there at /rom with /rom and /rom/lib in sys.path.
import errno

import _vboard
import uctypes
from vfs import VfsPosix, VfsRom, mount, umount  # noqa: F401  (the VM's, re-exported)

_BLOCK = 4096


def _partition():
    at, size = _vboard.rom_segment()
    return uctypes.bytearray_at(at, size) if size else None


def rom_ioctl(op, rom_id=0, *args):
    rom = _partition()
    if op == 1:
        return 1 if rom is not None else 0
    if rom is None or rom_id != 0:
        return -errno.EINVAL
    if op == 2:
        return memoryview(rom)
    if op == 3:  # (offset, length) or (length,) from 0
        offset, length = args if len(args) == 2 else (0, args[0])
        if offset < 0 or offset + length > len(rom):
            return -errno.EINVAL
        rom[offset:offset + length] = b"\xff" * length
        return 4  # the smallest write
    if op == 4:
        offset, data = args
        if offset < 0 or offset + len(data) > len(rom):
            return -errno.EINVAL
        rom[offset:offset + len(data)] = data
        return 0
    if op == 5:
        _vboard.rom_written()
        return 0
    if op == 6:
        return _BLOCK
    return -errno.EINVAL
