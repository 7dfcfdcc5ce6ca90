# The bundle sink (boards/common/bundle_sink.py) on the real filesystem, here so that it also
# runs in the MicroPython VM: the files, hashlib and memoryview calls a board makes. The
# thorough tests, with make bundle's packages, are host_tests/test_bundle.py.
import binascii
import hashlib
import json

from lwm2m.firmware import Failed

try:
    import bundle_sink
except ImportError:  # under pytest; tools/mpvm.mjs puts boards/common on the VM's path
    import sys

    sys.path.append(__file__.replace("\\", "/").rsplit("/", 3)[0] + "/boards/common")
    import bundle_sink
import bundle_swap

FOLDER = "/tmp/lwm2m-bundle-sink"
FILES = [("main.py", b"print('new')\n"), ("lib/lwm2m/x.mpy", bytes(range(256)) * 9),
         ("objects/3.json", b"{}"), ("board.mpy", b"")]


def _bundle(files=FILES, board="rp2", version="2.0"):
    header = json.dumps({"name": "micropython-lwm2m", "version": version, "board": board,
                         "files": [[path, len(data)] for path, data in files]}).encode()
    body = b"LWMB\x01" + len(header).to_bytes(4, "little") + header + b"".join(data for _p, data in files)
    return body + hashlib.sha256(body).digest()


def _sink(board="rp2"):
    bundle_swap.discard(FOLDER)
    return bundle_sink.BundleSink(FOLDER + "/update", board)


def _feed(sink, data, chunk, start=0):
    offset = start
    while offset < len(data):
        sink.write(offset, data[offset : offset + chunk])
        offset += chunk


def _raises(func, *args):
    try:
        func(*args)
    except Failed as exc:
        return exc.result
    raise AssertionError("no Failed")


def test_the_sink_unpacks_what_it_was_fed_in_chunks():
    data = _bundle()
    for chunk in (1024, 100, 3):
        sink = _sink()
        sink.begin(len(data))
        _feed(sink, data, chunk)
        assert sink.finish() == ("micropython-lwm2m", "2.0")
        for path, content in FILES:
            with open(FOLDER + "/update/new/" + path, "rb") as f:
                assert f.read() == content, (chunk, path)
        sink.apply()
        assert bundle_swap.read(FOLDER + "/update/apply")["version"] == "2.0"
    bundle_swap.discard(FOLDER)


def test_damage_truncation_and_other_packages_are_told_apart():
    data = _bundle()
    damaged = bytearray(data)
    damaged[len(data) // 2] ^= 1
    for package, result in ((bytes(damaged), 5), (data[:-1], 5), (data[:100], 5), (b"UF2\n" + data, 6),
                            (_bundle(board="esp32"), 6), (_bundle(FILES[1:]), 6)):
        sink = _sink()
        sink.begin(None)
        _feed(sink, package, 512)
        assert _raises(sink.finish) == result, (len(package), result)
    bundle_swap.discard(FOLDER)


def test_resume_gives_the_crc_of_what_a_new_sink_finds():
    data = _bundle()
    sink = _sink()
    sink.begin(len(data))
    _feed(sink, data[:1500], 256)
    again = bundle_sink.BundleSink(FOLDER + "/update", "rp2")
    assert again.resume(1500) == binascii.crc32(data[:1500])
    assert again.resume(1501) is None
    assert again.resume(1000) == binascii.crc32(data[:1000])
    _feed(again, data, 256, 1000)
    assert again.finish()[1] == "2.0"
    bundle_swap.discard(FOLDER)


def test_begin_refuses_what_cannot_fit():
    assert _raises(_sink().begin, 1 << 40) == 2
    bundle_swap.discard(FOLDER)
