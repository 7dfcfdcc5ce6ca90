# Application bundles (firmware/BUNDLE.md): make bundle's package, the bundle sink that
# verifies and unpacks it on a board (boards/common/bundle_sink.py), boot.py's hand-over to
# the swap, and a whole update on a real folder. The swap's power-cut tests are portable:
# host_tests/portable/test_bundle_swap.py.
import binascii
import hashlib
import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import bundle  # noqa: E402  tools/bundle.py
import bundle_sink  # noqa: E402
import bundle_swap  # noqa: E402
import deploy  # noqa: E402
from bundle_sink import BundleSink  # noqa: E402
from lwm2m.firmware import Failed  # noqa: E402

VERSION = "1.2.3-test"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    # One rp2 bundle for the module: (bytes, [(path, local file)], work folder).
    tmp = tmp_path_factory.mktemp("bundle")
    path, size, version = bundle.build("rp2", VERSION, tmp / "b.bin", work=tmp / "work")
    data = path.read_bytes()
    assert (size, version) == (len(data), VERSION)
    return data, bundle.collect("rp2", ROOT, tmp / "work"), tmp / "work"


def parse(data):
    # The format read independently of the sink: (header, {path: bytes}).
    assert data[:4] == b"LWMB" and data[4] == 1
    (length,) = struct.unpack("<I", data[5:9])
    header = json.loads(data[9 : 9 + length])
    files, pos = {}, 9 + length
    for path, size in header["files"]:
        files[path] = data[pos : pos + size]
        pos += size
    assert pos == len(data) - 32 and data[-32:] == hashlib.sha256(data[:-32]).digest()
    return header, files


def repack(header, files):
    # A package with a digest that matches, whatever the header says.
    raw = json.dumps(header).encode()
    body = b"LWMB\x01" + struct.pack("<I", len(raw)) + raw + b"".join(files)
    return body + hashlib.sha256(body).digest()


def feed(sink, data, chunk=1024, start=0):
    for offset in range(start, len(data), chunk):
        sink.write(offset, data[offset : offset + chunk])


def update(tmp_path, data, board="rp2", chunk=1024):
    sink = BundleSink(str(tmp_path / "update"), board)
    sink.begin(len(data))
    feed(sink, data, chunk)
    return sink, sink.finish()


def unpacked(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in Path(folder).rglob("*") if p.is_file()}


def failure(func, *args):
    with pytest.raises(Failed) as err:
        func(*args)
    return err.value.result, str(err.value)


# --- make bundle ----------------------------------------------------------------------------

def test_the_bundle_holds_the_app_as_deploy_compiles_it(built):
    data, entries, work = built
    header, files = parse(data)
    assert (header["name"], header["version"], header["board"]) == ("micropython-lwm2m", VERSION, "rp2")
    expected = {"lib/" + p.relative_to(ROOT / "lib").with_suffix(".mpy").as_posix() for p in (ROOT / "lib").rglob("*.py")}
    expected |= {p.stem + ".mpy" for p in (ROOT / "firmware").glob("*.py") if p.name not in ("boot.py", "main.py")}
    expected |= {p.stem + ".mpy" for p in (ROOT / "boards" / "common").glob("*.py") if p.name != "bundle_swap.py"}
    expected |= {"objects/" + p.name for p in (ROOT / "firmware" / "objects").glob("*.json")}
    expected |= {"board.mpy", "main.py"}
    assert set(files) == expected
    assert "boot.py" not in files and "bundle_swap.mpy" not in files and "config.json" not in files
    assert files["main.py"] == (ROOT / "firmware" / "main.py").read_bytes()
    assert files["objects/3.json"] == (ROOT / "firmware" / "objects" / "3.json").read_bytes()
    # Byte for byte what make deploy copies: the same mpy-cross call.
    deploy._mpy_cross(ROOT / "lib", "lwm2m/coap.py", work / "check" / "coap.mpy")
    assert files["lib/lwm2m/coap.mpy"] == (work / "check" / "coap.mpy").read_bytes()
    assert files["lib/lwm2m/coap.mpy"][:2] == b"M\x06" and b"lwm2m/coap.py" in files["lib/lwm2m/coap.mpy"]
    deploy._mpy_cross(ROOT / "boards" / "rp2", "board.py", work / "check" / "board.mpy")
    assert files["board.mpy"] == (work / "check" / "board.mpy").read_bytes()


def test_make_bundle_prints_path_size_and_version(tmp_path):
    out = tmp_path / "v.bin"
    proc = subprocess.run([sys.executable, "tools/bundle.py", "--board", "vboard", "--version", "7.0", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "bundle: %s (%d bytes, version 7.0, BOARD=vboard)" % (out, out.stat().st_size)
    assert parse(out.read_bytes())[0]["board"] == "vboard"


def test_the_default_version_is_git_describe():
    described = subprocess.run(["git", "describe", "--always", "--dirty", "--tags"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
    assert bundle.default_version() == described and described


@pytest.mark.parametrize("argv, message", [
    (["--board", "pico"], "bundle: unknown BOARD 'pico': expected one of esp32, rp2, vboard"),
    (["--version", "1 2"], "bundle: VERSION '1 2': expected 1 to 32 letters"),
    (["--version", "-1"], "bundle: VERSION '-1': expected"),
    (["--version", "x" * 33], "bundle: VERSION 'xxxx"),
    (["--version", "1", "--out", "."], "bundle: OUT . is a folder"),
])
def test_bad_arguments_are_named(argv, message, capsys):
    assert bundle.main(argv) == 1
    assert capsys.readouterr().err.startswith(message)


# --- the sink -------------------------------------------------------------------------------

@pytest.mark.parametrize("chunk", [1024, 1, 7, 333, 1000, 4099])
def test_the_sink_verifies_and_unpacks_byte_exact_files(built, tmp_path, chunk):
    data = built[0]
    if chunk == 1:
        data = repack(*_small(data))  # a byte at a time: a small bundle keeps it quick
    sink, result = update(tmp_path, data, chunk=chunk)
    assert result == ("micropython-lwm2m", VERSION)
    assert unpacked(tmp_path / "update" / "new") == parse(data)[1]
    names = sorted(p.name for p in (tmp_path / "update").iterdir())
    assert names == ["new", "ready"]  # the package is gone: its room is needed


def _small(data):
    header, files = parse(data)
    keep = ["main.py", "objects/3.json", "board.mpy"]
    header = dict(header, files=[[p, len(files[p])] for p in keep])
    return header, [files[p] for p in keep]


def test_a_flipped_byte_anywhere_fails_the_digest(built, tmp_path):
    data = built[0]
    header_end = 9 + struct.unpack("<I", data[5:9])[0]
    for i, where in enumerate((5, 20, header_end + 100, len(data) // 2, len(data) - 33, len(data) - 1)):
        damaged = bytearray(data)
        damaged[where] ^= 0x10
        result, message = failure(update, tmp_path / str(i), bytes(damaged))
        assert result == 5 and "SHA-256" in message, (where, message)
        assert not (tmp_path / str(i) / "update" / "ready").exists()


@pytest.mark.parametrize("keep", [0, 3, 8, 40, 1000, -1, -32, -33])
def test_a_truncated_bundle_fails_with_5(built, tmp_path, keep):
    assert failure(update, tmp_path, built[0][:keep])[0] == 5


@pytest.mark.parametrize("data", [
    b"UF2\n" + bytes(2000),  # a Pico firmware image
    b"\xe9" + bytes(5000),  # an ESP32 one
    b"PK\x03\x04" + bytes(100),
    b"X",  # even one byte that starts otherwise
])
def test_what_is_not_a_bundle_fails_with_6(tmp_path, data):
    result, message = failure(update, tmp_path, data)
    assert result == 6 and "not an application bundle" in message


@pytest.mark.parametrize("data", [b"", b"L", b"LWM", b"LWMB\x01\x00"])
def test_nothing_or_the_start_of_a_bundle_is_truncated(tmp_path, data):
    assert failure(update, tmp_path, data)[0] == 5


def test_an_unknown_format_fails_with_6(built, tmp_path):
    data = bytearray(built[0])
    data[4] = 2
    result, message = failure(update, tmp_path, bytes(data))
    assert result == 6 and "format 2" in message


def test_a_bundle_for_another_board_fails_with_6(built, tmp_path):
    header, files = parse(built[0])
    other = repack(dict(header, board="esp32"), list(files.values()))
    result, message = failure(update, tmp_path, other)
    assert result == 6 and "esp32" in message
    assert update(tmp_path / "any", other, board=None)[1][1] == VERSION  # a sink for any board


@pytest.mark.parametrize("path", ["boot.py", "bundle_swap.mpy", "config.json", "../x.mpy", "/main.mpy",
                                  "lib/other/x.mpy", "lib/lwm2m", "state/servers.json", "a//b.mpy", "x.py"])
def test_a_file_outside_the_app_fails_with_6(built, tmp_path, path):
    header, files = _small(built[0])
    header["files"].append([path, 3])
    result, message = failure(update, tmp_path, repack(header, files + [b"abc"]))
    assert result == 6 and "header" in message, message
    assert not (tmp_path / "update" / "new").exists()


@pytest.mark.parametrize("change", [
    lambda h: h["files"].__setitem__(0, [h["files"][0][0], h["files"][0][1] + 1]),  # sizes past the end
    lambda h: h["files"].pop(),  # bytes left over
    lambda h: h["files"].append(list(h["files"][0])),  # a path twice
    lambda h: h.pop("version"),
    lambda h: h.__setitem__("files", "main.py"),
    lambda h: h["files"].__setitem__(0, ["main.py", "12"]),
    lambda h: h.__setitem__("files", [f for f in h["files"] if f[0] != "main.py"]),
])
def test_a_header_that_does_not_describe_the_package_fails_with_6(built, tmp_path, change):
    header, files = _small(built[0])
    change(header)
    assert failure(update, tmp_path, repack(header, files))[0] == 6


def test_a_header_that_is_not_json_fails_with_6(tmp_path):
    body = b"LWMB\x01" + struct.pack("<I", 5) + b"{nope" + b"x"
    assert failure(update, tmp_path, body + hashlib.sha256(body).digest()) == (6, "the bundle header is not JSON")


def test_resume_after_a_restart_gives_the_crc_of_what_is_kept(built, tmp_path):
    # CRC-32, as lib/lwm2m/firmware.py asks: lwm2m.download compares it with the one it saved.
    data = built[0]
    folder = str(tmp_path / "update")
    first = BundleSink(folder, "rp2")
    first.begin(len(data))
    feed(first, data[:50000])
    del first  # the board restarts: a new sink, the same files
    sink = BundleSink(folder, "rp2")
    assert sink.resume(50000) == binascii.crc32(data[:50000])
    assert sink.resume(50001) is None  # more than is there
    assert sink.resume(0) == 0
    assert sink.resume(30000) == binascii.crc32(data[:30000])
    feed(sink, data, 1024, 30000)  # from the lower offset: the rest kept is dropped
    assert sink.finish() == ("micropython-lwm2m", VERSION)
    assert unpacked(tmp_path / "update" / "new") == parse(data)[1]
    assert BundleSink(folder).resume(10) is None  # finished: no package any more


def test_resume_without_a_package_is_none(tmp_path):
    assert BundleSink(str(tmp_path / "update")).resume(0) is None


def test_a_write_at_a_lower_offset_rewrites_from_there(built, tmp_path):
    data = built[0]
    sink = BundleSink(str(tmp_path / "update"), "rp2")
    sink.begin(None)
    feed(sink, data[:5000], 512)
    feed(sink, bytes(3000), 1000, 0)  # garbage, then a restart of the transfer at block 2
    feed(sink, data, 1024, 2048)
    sink.write(0, data[:2048])  # and at 0 again: everything after is forgotten
    feed(sink, data, 700, 2048)
    assert sink.finish()[1] == VERSION
    assert failure(sink.write, 10 ** 6, b"x")[0] == 8  # a gap is the caller's mistake


def test_begin_refuses_a_bundle_that_cannot_fit(tmp_path):
    sink = BundleSink(str(tmp_path / "update"))
    result, message = failure(sink.begin, 10 ** 15)
    assert result == 2 and "bytes free" in message
    sink.begin(10 ** 5)  # what fits on this disk
    sink.begin(None)  # unknown: nothing to check


def test_begin_clears_what_an_earlier_update_left(built, tmp_path):
    update_dir = tmp_path / "update"
    sink, _ = update(tmp_path, built[0])
    sink.apply()
    (update_dir / "result").write_text('{"result": 8, "version": "0.9"}')
    BundleSink(str(update_dir)).begin(100)
    assert sorted(p.name for p in update_dir.iterdir()) == ["package.bin"]
    assert (update_dir / "package.bin").stat().st_size == 0


def test_apply_marks_the_verified_bundle_for_the_next_boot(built, tmp_path):
    sink = BundleSink(str(tmp_path / "update"), "rp2")
    assert failure(sink.apply) == (8, "no verified bundle to apply")
    sink.begin(len(built[0]))
    feed(sink, built[0])
    sink.finish()
    BundleSink(str(tmp_path / "update")).apply()  # after a restart too
    assert json.loads((tmp_path / "update" / "apply").read_text())["version"] == VERSION


def test_a_whole_update_on_a_folder_confirmed_and_rolled_back(built, tmp_path):
    # The old app as make deploy leaves it, the update through the sink, boot's swap.
    data = built[0]
    old = {"main.py": b"old main", "lib/lwm2m/client.mpy": b"old", "objects/3.json": b"{}", "board.mpy": b"b",
           "gone.mpy": b"only in the old app"}
    keep = {"boot.py": b"boot", "bundle_swap.mpy": b"swap", "config.json": b"{}", "state/servers.json": b"{}"}
    for rel, content in {**old, **keep}.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(content)

    def app():
        files = unpacked(tmp_path)
        return {k: v for k, v in files.items() if not k.startswith(("update/", "state/")) and k not in keep}

    folder = str(tmp_path / "update")
    for confirmed in (False, True):
        sink = BundleSink(folder, "rp2")
        assert sink.outcome() in (None, (8, VERSION))
        sink.begin(len(data))
        feed(sink, data)
        assert sink.finish() == ("micropython-lwm2m", VERSION)
        sink.apply()
        bundle_swap.boot(str(tmp_path), lambda line: None)
        assert app() == parse(data)[1]
        sink = BundleSink(folder, "rp2")
        assert sink.outcome() == (1, VERSION)
        assert failure(sink.begin, 100)[0] == 8  # not while it is on trial
        if confirmed:
            sink.confirm()
        else:
            sink.rollback()
        bundle_swap.boot(str(tmp_path), lambda line: None)
        assert app() == (parse(data)[1] if confirmed else old)
        assert BundleSink(folder).outcome() == (None if confirmed else (8, VERSION))
    assert {k: (tmp_path / k).read_bytes() for k in keep} == keep


# --- the board modules and boot.py ------------------------------------------------------------

@pytest.mark.parametrize("port", ["rp2", "vboard"])
def test_the_board_gives_a_bundle_sink_for_itself(port, monkeypatch):
    from test_boards import Board

    sink = Board(port, monkeypatch).mod.firmware_sink("/state")._loaded()  # loaded when an update needs it
    assert isinstance(sink, bundle_sink.BundleSink) and (sink.folder, sink.board) == ("/update", port)


def run_boot(monkeypatch, tmp_path, update_names, swap=None):
    # firmware/boot.py as MicroPython runs it, with /update's listing and bundle_swap faked;
    # returns the calls to bundle_swap.boot() (None: it was not imported).
    import os
    import types

    real_listdir = os.listdir

    def listdir(path="."):
        if path == "/update":
            if update_names is None:
                raise OSError(2, "no /update")
            return list(update_names)
        return real_listdir(path)

    calls = []
    fake = types.ModuleType("bundle_swap")
    fake.boot = swap or (lambda: calls.append("boot"))
    monkeypatch.setattr(os, "listdir", listdir)
    monkeypatch.setitem(sys.modules, "bundle_swap", fake)
    monkeypatch.chdir(tmp_path)
    exec(compile((ROOT / "firmware" / "boot.py").read_text(), "boot.py", "exec"), {"__name__": "__main__"})
    return calls


@pytest.mark.parametrize("names, swapped", [
    (None, False), ([], False), (["new", "ready", "old", "result", "booted"], False),
    (["apply", "new"], True), (["journal", "old"], True), (["trial", "booted", "old"], True),
])
def test_boot_loads_the_swap_only_when_an_update_asks_for_it(monkeypatch, tmp_path, names, swapped):
    assert run_boot(monkeypatch, tmp_path, names) == (["boot"] if swapped else [])


def test_safe_mode_holds_the_swap_back(monkeypatch, tmp_path, capsys):
    (tmp_path / "safe").write_text("")
    assert run_boot(monkeypatch, tmp_path, ["apply", "trial"]) == []
    assert "safe mode" in capsys.readouterr().out


def test_a_failing_swap_is_printed_and_boot_goes_on(monkeypatch, tmp_path, capsys):
    def broken():
        raise OSError(28, "no space")

    run_boot(monkeypatch, tmp_path, ["journal"], broken)
    assert "update: the swap failed: OSError(28, 'no space')" in capsys.readouterr().out


# --- with lwm2m.firmware: a server pushes a bundle, the board swaps, confirms or rolls back ----

def _old_app(root):
    old = {"main.py": b"old main", "lib/lwm2m/client.mpy": b"old", "objects/3.json": b"{}", "board.mpy": b"b"}
    for rel, content in {**old, "boot.py": b"boot", "config.json": b"{}"}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(content)
    return old


def _app(root):
    files = unpacked(root)
    return {k: v for k, v in files.items() if not k.startswith("update/") and k not in ("boot.py", "config.json")}


@pytest.mark.parametrize("registers", [True, False])
def test_a_pushed_bundle_is_installed_and_then_confirmed_or_rolled_back(built, tmp_path, registers):
    sys.path.append(str(ROOT / "host_tests" / "portable"))
    import test_firmware_update as fw  # its client, Block1 push and state helpers

    data = built[0]
    old = _old_app(tmp_path)
    folder = str(tmp_path / "update")
    client, peer = fw.setup(BundleSink(folder, "rp2"))
    assert fw.push(peer, data, 200)[-1] == fw.CHANGED
    inst = client.model.instance(5, 0)
    assert fw.state(client) == (2, 0) and (inst.get(6), inst.get(7)) == ("micropython-lwm2m", VERSION)
    assert peer.request(fw.POST, "/5/0/2", 300).code == fw.CHANGED
    peer.settle(2400)
    assert client.resets == [2400] and (tmp_path / "update" / "apply").is_file()

    bundle_swap.boot(str(tmp_path), lambda line: None)  # the reset
    assert _app(tmp_path) == parse(data)[1]
    after, peer = fw.setup(BundleSink(folder, "rp2"), confirm_s=60, register=False)
    assert fw.state(after) == (3, 0)  # on trial
    if registers:
        after.poll(0)
        peer.answer(peer.take_one(), 0x41, "/rd/ab12")
        after.poll(10)
        after.poll(20)
        assert fw.state(after) == (0, 1) and after.model.instance(3, 0).get(3) == VERSION
    else:
        now = 0
        while not after.resets and now < 120000:
            after.poll(now)
            peer.take()
            now += 1000
        assert after.resets
    bundle_swap.boot(str(tmp_path), lambda line: None)  # the next reset
    assert _app(tmp_path) == (parse(data)[1] if registers else old)
    again = fw.setup(BundleSink(folder, "rp2"), register=False)[0]
    assert fw.state(again) == ((0, 0) if registers else (0, 8))
