# The virtual board (make vboard): the real MicroPython 1.29 VM from npm, behind a
# pseudo-terminal, with UDP over the host's loopback. Everything here runs on MicroPython:
# mpremote talks to the VM's own REPL, `make deploy BOARD=vboard` copies the compiled client
# onto it, and the unchanged firmware/main.py runs there, registering with lwm2m-node-lib and
# with a scripted aiocoap server. What is asserted is what mpremote, the servers and the
# board's event lines saw.
import ast
import asyncio
import json
import os
import re
import select
import socket
import subprocess
import termios
import threading
import time
import tty

import aiocoap
import pytest
from aiocoap.numbers.codes import Code

from peers.coap_server import CoapServer, query_of
from peers.host import ROOT, free_udp_port
from peers.node_server import NodeServer
from peers.vboard import VBoard

LIFETIME = 120
_IDS = [0]


def board_id():
    # machine.unique_id() of a new board, unique to this test run: the endpoint name is
    # "vboard-" + it.
    _IDS[0] += 1
    return "02%06x%04x" % (os.getpid() & 0xFFFFFF, _IDS[0])


@pytest.fixture(scope="module")
def bare(tmp_path_factory):
    # A board with nothing deployed: the REPL, the filesystem and the network.
    board = VBoard(tmp_path_factory.mktemp("vboard-bare"), board_id())
    yield board
    board.close()


# ------------------------------------------------------------------------------------------
# The serial line, byte for byte


class Serial:
    # The board's terminal opened as a terminal program would (raw, no echo).
    def __init__(self, port):
        self.fd = os.open(port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self.fd, termios.TCSANOW)

    def write(self, data):
        os.write(self.fd, data)

    def drain(self, quiet=0.3, timeout=5):
        # Reads what is waiting (older output) until nothing has come for `quiet` seconds.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and select.select([self.fd], [], [], quiet)[0]:
            os.read(self.fd, 4096)

    def read_until(self, ending, timeout=10):
        data = b""
        deadline = time.monotonic() + timeout
        while not data.endswith(ending):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %r within %s s; got %r" % (ending, timeout, data))
            if select.select([self.fd], [], [], min(left, 0.2))[0]:
                data += os.read(self.fd, 4096)
        return data

    def close(self):
        os.close(self.fd)


def test_the_repl_on_the_serial_line(bare):
    line = Serial(bare.port)
    try:
        line.write(b"\x03\r")  # whatever ran: stopped; a fresh prompt
        line.read_until(b">>> ", 30)  # the VM may still be printing its banner on a busy machine
        line.drain(quiet=1)
        line.write(b"print(6 * 7)\r")
        assert line.read_until(b">>> ") == b"print(6 * 7)\r\n42\r\n>>> "  # echoed, answered
        # Ctrl-C stops a program waiting on the board; Ctrl-D at the prompt: a soft reset
        line.write(b"import select\rselect.poll().poll(-1)\r")
        line.read_until(b"select.poll().poll(-1)\r\n")
        line.write(b"\x03")
        assert b"KeyboardInterrupt: \r\n>>> " in line.read_until(b">>> ")
        line.write(b"\x04")
        reboot = line.read_until(b">>> ")
        assert reboot.startswith(b"\r\nMPY: soft reboot\r\n") and b"\r\nMicroPython v1.29.0" in reboot
        line.write(b"\r\x01")  # raw REPL
        line.read_until(b"raw REPL; CTRL-B to exit\r\n>")
        line.write(b"print('raw', 1 + 1)\x04")
        assert line.read_until(b"\x04>") == b"OKraw 2\r\n\x04\x04>"
        # mpremote's raw-paste request: declined ("R\x00"), since the VM cannot take it
        line.write(b"\x05A\x01")
        assert line.read_until(b"R\x00", 5) == b"R\x00"
        line.write(b"import sys\nprint(sys.implementation.name, sys.platform)\x04")
        assert line.read_until(b"\x04>") == b"OKmicropython webassembly\r\n\x04\x04>"
        # Ctrl-D at the empty raw prompt: a soft reset, after which the REPL is raw again
        line.write(b"\x04")
        assert line.read_until(b"raw REPL; CTRL-B to exit\r\n>").startswith(b"OK\r\nMPY: soft reboot\r\n")
        line.write(b"\x02")  # back to the friendly REPL
        line.read_until(b">>> ")
    finally:
        line.close()


# ------------------------------------------------------------------------------------------
# mpremote


def test_mpremote_fs_and_exec(bare, tmp_path):
    src = tmp_path / "greeting.txt"
    src.write_bytes(b"hello from the host\n" * 50)  # 1000 bytes: several fs cp chunks
    out = bare.mpremote("fs", "cp", str(src), ":greeting.txt", "+", "fs", "ls", ":", "+",
                        "fs", "cat", ":greeting.txt").stdout
    assert "greeting.txt" in out and out.count("hello from the host") == 50
    # mpremote compares sha256 computed on the board (hashlib) and skips an identical copy
    assert "Up to date: greeting.txt" in bare.mpremote("fs", "cp", str(src), ":greeting.txt").stdout
    back = tmp_path / "back.txt"
    bare.mpremote("fs", "cp", ":greeting.txt", str(back))
    assert back.read_bytes() == src.read_bytes()
    out = bare.mpremote("exec", "import os\nprint(os.stat('greeting.txt')[6], 'greeting.txt' in os.listdir())").stdout
    assert out.split() == ["1000", "True"]
    # errors a board's filesystem gives, as mpremote understands them
    missing = bare.mpremote("fs", "cat", ":no-such-file", check=False)
    assert missing.returncode != 0 and "No such file or directory" in missing.stderr
    bare.mpremote("fs", "rm", ":greeting.txt")
    assert "greeting.txt" not in bare.mpremote("fs", "ls", ":").stdout


def test_mpremote_run_imports_from_lib(bare, tmp_path):
    module = tmp_path / "vbmod.py"
    module.write_text("def answer():\n    return 6 * 7\n")
    script = tmp_path / "script.py"
    script.write_text("import sys, vbmod\nprint('answer', vbmod.answer(), sys.path)\n")
    bare.mpremote("fs", "mkdir", ":lib", check=False)
    bare.mpremote("fs", "cp", str(module), ":lib/vbmod.py")
    out = bare.mpremote("run", str(script)).stdout
    assert out.startswith("answer 42 ['', '.frozen', '/lib']")
    bare.mpremote("fs", "rm", ":lib/vbmod.py")


def test_files_survive_soft_and_hard_resets(bare, tmp_path):
    boot = tmp_path / "boot.py"
    boot.write_text("print('boot.py ran')\n")
    bare.mpremote("fs", "cp", str(boot), ":boot.py")
    try:
        mark = bare.mark()
        bare.mpremote("soft-reset")
        bare.wait_serial(r"^MPY: soft reboot$", 5, mark)
        bare.wait_serial(r"^boot\.py ran$", 5, mark)
        mark, events = bare.mark(), bare.event_mark()
        bare.mpremote("reset")  # machine.reset(): a new VM on the same files
        bare.wait_event(r"^vboard: hard reset$", 10, events)
        bare.wait_serial(r"^boot\.py ran$", 10, mark)
        # make vboard keeps the board's files in its --flash folder, saved at each reset
        assert (bare.folder / "flash" / "boot.py").read_text() == "print('boot.py ran')\n"
        bare.wait_serial(r'^Type "help\(\)" for more information\.$', 10, mark)
        assert bare.mpremote("fs", "cat", ":boot.py").stdout == "print('boot.py ran')\n"
    finally:
        bare.mpremote("fs", "rm", ":boot.py")


def test_ctrl_c_interrupts_a_program_waiting_on_the_board(bare):
    mark = bare.mark()
    # a program that waits forever in select.poll(), then one that blocks in recvfrom()
    for program in ("import select\nselect.poll().poll(-1)",
                    "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.recvfrom(10)"):
        bare.mpremote("exec", "--no-follow", program)
        start = time.monotonic()
        assert bare.mpremote("exec", "print('free again')").stdout == "free again\n"  # its Ctrl-C ended it
        assert time.monotonic() - start < 10
    assert bare.serial()[mark:].count("KeyboardInterrupt") == 2


def test_udp_on_the_board(bare):
    # An echo server on the host; the board sends, polls and receives through its socket and
    # select modules, as lwm2m.transport does.
    echo = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    echo.bind(("127.0.0.1", 0))
    echo.settimeout(0.2)
    seen = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                data, addr = echo.recvfrom(2048)
            except socket.timeout:
                continue
            seen.append((data, addr))
            echo.sendto(b"echo " + data, addr)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("0.0.0.0", 0))
    port = echo.getsockname()[1]
    try:
        program = """
import errno, select, socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setblocking(False)
s.bind(socket.getaddrinfo('0.0.0.0', 0, socket.AF_INET, socket.SOCK_DGRAM)[0][-1])
poller = select.poll()
poller.register(s, select.POLLIN)
server = socket.getaddrinfo('localhost', %d)[0][-1]
print('server', server)
try:
    s.recvfrom(100)
except OSError as e:
    print('empty', e.errno == errno.EAGAIN)
for n in (1, 2, 1100):
    s.sendto(b'x' * n, server)
    ready = [ev for obj, ev in poller.ipoll(2000) if obj is s]
    data, addr = s.recvfrom(2000)
    print('got', ready == [select.POLLIN], len(data), addr == server)
t = time.ticks_ms()
print('idle', list(poller.ipoll(200)), time.ticks_diff(time.ticks_ms(), t) >= 195)
s2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    s2.bind(('0.0.0.0', %d))
except OSError as e:
    print('in use', e.errno == errno.EADDRINUSE)
s2.close()
s.close()
""" % (port, taken.getsockname()[1])
        lines = bare.mpremote("exec", program).stdout.splitlines()
    finally:
        stop.set()
        thread.join(5)
        echo.close()
        taken.close()
    assert lines == ["server ('127.0.0.1', %d)" % port, "empty True", "got True 6 True", "got True 7 True",
                     "got True 1105 True", "idle [] True", "in use True"]
    assert [len(d) for d, _a in seen] == [1, 2, 1100]
    assert all(a[0] == "127.0.0.1" for _d, a in seen)


# ------------------------------------------------------------------------------------------
# The firmware, deployed with make deploy, against lwm2m-node-lib


def write_config(path, server_port, wifi=("vboard", "micropython")):
    config = json.loads((ROOT / "firmware" / "config.example.json").read_text())
    config["wifi"].update(ssid=wifi[0], password=wifi[1], timeout_s=5, retries=2)
    config["server"] = "coap://127.0.0.1:%d" % server_port
    config["endpoint"] = None  # from the board: "vboard-" + machine.unique_id()
    config["lifetime"] = LIFETIME
    path.write_text(json.dumps(config, indent=2))
    return path


@pytest.fixture(scope="module")
def fw(tmp_path_factory):
    # A board with the client deployed by make deploy and registered with lwm2m-node-lib.
    folder = tmp_path_factory.mktemp("vboard-fw")
    had_config = (ROOT / "config.json").exists()
    node = NodeServer(free_udp_port())
    board = None
    try:
        board = VBoard(folder / "board", board_id())
        ep = "vboard-" + board.id
        config = write_config(folder / "config.json", node.port)
        deployed = board.make("deploy", "BOARD=vboard", "CONFIG=%s" % config)
        registration = node.wait_event("registration", 30, endpoint=ep)
        board.wait_serial(r"^registered with coap://127\.0\.0\.1:%d at /rd/" % node.port, 10)
        yield board, node, ep, registration, deployed
    finally:
        if board is not None:
            board.close()
        node.close()
    assert (ROOT / "config.json").exists() == had_config  # CONFIG= left the repo's config.json alone


# The board interface: the public functions of boards/host/board.py.
INTERFACE = tuple(sorted(node.name for node in ast.parse((ROOT / "boards" / "host" / "board.py").read_text()).body
                         if isinstance(node, ast.FunctionDef) and not node.name.startswith("_")))
BOARD_CHECK = "import board\nprint('missing', [n for n in %r if not callable(getattr(board, n, None))])"
# UdpTransport's idle path (wait, then a receive that finds nothing) under heap_lock(), on the
# board's own socket and select modules. The lock is released in `finally`: an exception
# that reached JavaScript with the heap locked would hang the VM.
IDLE_CHECK = """
import micropython
from lwm2m.transport import UdpTransport
t = UdpTransport()
buf = bytearray(64)
t.wait(0)
t.recv_into(buf)
n = 0
micropython.heap_lock()
try:
    while n < 50:
        t.wait(1)
        t.recv_into(buf)
        n += 1
except MemoryError:
    pass
finally:
    micropython.heap_unlock()
t.close()
print('idle without allocating:', n)
"""

# Two datagrams that arrive together, taken by UdpTransport one by one on the board, whose
# socket joins waiting datagrams in readinto() as MicroPython's stream read does. The host's
# server answers the board's datagram with both at once (AnswerTwice).
PAIR = (b"\x60\x45\x00\x01", b"\x40\x01\x00\x02\xb1\x33")  # an ACK, then a CON GET /3
PAIR_CHECK = """
import time
from lwm2m.transport import UdpTransport
t = UdpTransport()
addr = t.resolve('127.0.0.1', %d)
t.send(b'hello', addr)
t.wait(3000)
time.sleep_ms(300)
buf = bytearray(1153)
for _ in range(3):
    n = t.recv_into(buf)
    print('received', n, bytes(buf[:n]).hex() if n >= 0 else '-', n >= 0 and t.source == addr)
t.close()
"""


class AnswerTwice:
    # A server on the host that answers the first datagram it gets with PAIR, sent at once.
    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(10)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._answer, daemon=True)
        self.thread.start()

    def _answer(self):
        try:
            _data, addr = self.sock.recvfrom(2048)
        except OSError:
            return
        for datagram in PAIR:
            self.sock.sendto(datagram, addr)

    def close(self):
        self.sock.close()
        self.thread.join(5)


def test_make_deploy_to_the_virtual_board(fw):
    board, node, ep, _reg, deployed = fw
    assert "for BOARD=vboard staged" in deployed
    assert ("deploy: the board on %s has no ROMFS partition (vfs.rom_ioctl found none): modules as .mpy files"
            % board.port) in deployed
    assert ", 0 skipped as unchanged" in deployed
    assert "restarts into the client" in deployed
    # on the board: what boot.py and the firmware printed, from the Wi-Fi join on
    log = board.serial()
    assert "wifi: connecting to 'vboard' (attempt 1 of 2)" in log and "wifi: connected, address 127.0.0.1" in log
    assert "register with coap://127.0.0.1:%d as %s (lifetime %d s)" % (node.port, ep, LIFETIME) in log
    mark, events, serial = node.mark(), board.event_mark(), board.mark()
    pair = AnswerTwice()
    try:
        out = board.mpremote("fs", "ls", ":", "+", "fs", "ls", ":lib/lwm2m", "+", "exec", BOARD_CHECK % (INTERFACE,),
                             "+", "exec", IDLE_CHECK, "+", "exec", PAIR_CHECK % pair.port).stdout
    finally:
        pair.close()
    assert "board.mpy" in out and "wifi_board.mpy" in out and "main.py" in out and "client.mpy" in out
    assert "missing []" in out  # boards/vboard offers every function of the board interface
    assert "idle without allocating: 50" in out  # lwm2m.transport over the board's socket and select
    assert "received 4 %s True\nreceived 6 %s True\nreceived -1 - False" % (PAIR[0].hex(), PAIR[1].hex()) in out
    # mpremote's Ctrl-C interrupted the client, which de-registered on its way out ...
    node.wait_event("unregistration", 10, start=mark, endpoint=ep)
    # ... and left the watchdog it had armed, which resets the board 8 s after the last feed
    # (a soft reset does not stop it): the reason make deploy copies in safe mode.
    board.wait_event(r"^vboard: watchdog reset: not fed for 8000 ms$", 15, events)
    board.wait_event(r"^vboard: hard reset$", 5, events)
    wait_registered(board, node, ep, mark, serial)


def test_registration_as_lwm2m_node_lib_saw_it(fw):
    _board, _node, ep, reg, _deployed = fw
    assert reg["endpoint"] == ep and reg["lifetime"] == str(LIFETIME)
    assert reg["version"] == "1.1" and reg["binding"] == "U"
    links = reg["payload"].split(",")
    for link in ("</1/0>", "</3/0>", "</4/0>", "</3303/0>", "</3311/0>"):
        assert link in links, reg["payload"]


def wait_registered(board, node, ep, start, serial_start):
    # The node server's registration of ep from index start on, once the board says so too.
    reg = node.wait_event("registration", 30, start=start, endpoint=ep)
    board.wait_serial(r"^registered with coap://127\.0\.0\.1:%d at /rd/" % node.port, 10, serial_start)
    return reg


def test_read_the_device_on_micropython(fw):
    board, node, ep, _reg, _deployed = fw
    node.wait_event("registration", 30, endpoint=ep)
    assert node.read(ep, "/3/0/0") == "micropython-lwm2m"
    assert node.read(ep, "/3/0/1") == "vboard (MicroPython VM, JS with Emscripten)"
    assert node.read(ep, "/3/0/2") == board.id  # serial number: machine.unique_id() in hex
    assert node.read(ep, "/3/0/3") == "MicroPython 1.29.0"
    assert 17.0 <= float(node.read(ep, "/3303/0/5700")) <= 25.0
    assert node.read(ep, "/3303/0/5701") == "Cel"


def test_write_switches_the_boards_led(fw):
    board, node, ep, _reg, _deployed = fw
    events = board.event_mark()
    node.write(ep, "/3311/0/5850", "1")
    board.wait_event(r"^vboard: pin 2 = 1$", 5, events)
    assert node.read(ep, "/3311/0/5850") == "1"
    node.write(ep, "/3311/0/5850", "0")
    board.wait_event(r"^vboard: pin 2 = 0$", 5, events)
    board.wait_serial(r"^0\.\d\d PUT /3311/0/5850 -> 2\.04 Changed$", 5)


def test_write_current_time_sets_the_boards_clock(fw):
    # Device /3/0/13 goes to machine.RTC().datetime() (boards/common/wifi_board.py), which the
    # board's time.time() follows.
    _board, node, ep, _reg, _deployed = fw
    later = int(time.time()) + 86400
    node.write(ep, "/3/0/13", str(later))
    assert abs(int(node.read(ep, "/3/0/13")) - later) <= 5


def test_execute_registration_update_and_reboot(fw):
    board, node, ep, _reg, _deployed = fw
    mark = node.mark()
    node.execute(ep, "/1/0/8")  # Registration Update Trigger
    node.wait_event("update", 10, start=mark, endpoint=ep)
    mark, events, serial = node.mark(), board.event_mark(), board.mark()
    node.execute(ep, "/3/0/4")  # Reboot: answered first, then machine.reset()
    board.wait_event(r"^vboard: hard reset$", 10, events)
    wait_registered(board, node, ep, mark, serial)
    assert node.read(ep, "/3/0/0") == "micropython-lwm2m"


# ------------------------------------------------------------------------------------------
# Deployed again, now against a scripted aiocoap server: Observe


TEXT, LINK = 0, 40


def test_redeploy_then_observe_from_an_aiocoap_server(fw, tmp_path):
    board, node, ep, _reg, _deployed = fw
    server = CoapServer(free_udp_port())
    try:
        config = write_config(tmp_path / "config.json", server.port)
        mark = node.mark()
        out = board.make("deploy", "BOARD=vboard", "CONFIG=%s" % config)
        # only config.json changed: mpremote found every other file's sha256 on the board
        assert "deploy: 1 copied, " in out, out
        node.wait_event("unregistration", 10, start=mark, endpoint=ep)  # the old client left
        assert server.wait(lambda: server.root.registrations, 30), board.dump()
        reg = server.root.registrations[0]
        assert query_of(reg) == {"ep": ep, "lt": str(LIFETIME), "lwm2m": "1.1", "b": "U"}

        def request(code, path, **options):
            async def go():
                return await server.ctx.request(aiocoap.Message(code=code, uri=server.uri(reg, path),
                                                                **options)).response
            return server.call(go(), 10)

        path = "/3303/0/5700"
        assert request(Code.PUT, path + "?pmin=1&pmax=2").code == Code.CHANGED
        assert request(Code.GET, path, accept=LINK).payload.decode() == "</3303/0/5700>;pmin=1;pmax=2"

        t0 = server.loop.time()
        req, first, notes = server.observe(reg, path, 3)
        server.loop.call_soon_threadsafe(req.observation.cancel)  # aiocoap lives on its loop
        assert first.code == Code.CONTENT and first.opt.content_format == TEXT and first.opt.observe is not None
        numbers = [first.opt.observe] + [n.opt.observe for _t, n in notes]
        assert numbers == sorted(set(numbers)), numbers
        for _t, note in notes:
            assert note.code == Code.CONTENT and 17.0 <= float(note.payload.decode()) <= 25.0
        times = [t0] + [t for t, _n in notes]
        assert all(0.8 <= b - a <= 3.5 for a, b in zip(times[1:], times[2:])), times
        board.wait_serial(r"^0\.01 GET /3303/0/5700 -> 2\.05 Content$", 5)
        # mpremote stops the client (Ctrl-C), which de-registers
        board.mpremote("exec", "print('stopped')")
        assert server.wait(lambda: server.root.deregistrations, 10), board.dump()
    finally:
        server.close()


def test_bootstrap_on_the_board_from_leshans_bootstrap_server(fw, tmp_path):
    # config.json names only a bootstrap server (Leshan's, over plain CoAP): the firmware on
    # MicroPython bootstraps, is given lwm2m-node-lib as its management server, and registers.
    from peers.leshan_bootstrap import LeshanBootstrapServer, server

    board, node, ep, _reg, _deployed = fw
    bs = LeshanBootstrapServer()
    try:
        bs.config(ep, [server(101, "coap://127.0.0.1:%d" % node.port, LIFETIME)])
        config = json.loads(write_config(tmp_path / "config.json", node.port).read_text())
        del config["server"]
        config["bootstrap_server"] = bs.coap_uri
        (tmp_path / "config.json").write_text(json.dumps(config))
        mark, serial = node.mark(), board.mark()
        board.make("deploy", "BOARD=vboard", "CONFIG=%s" % (tmp_path / "config.json"))
        request = bs.wait_event("bootstrap-request", 40, endpoint=ep)
        assert request["pct"] == 11542 and request["secure"] is False
        bs.wait_event("bootstrap-finished", 20, endpoint=ep)
        assert [e["code"] for e in bs.events("bootstrap-response", endpoint=ep)] == [
            "DELETED", "DELETED", "CHANGED", "CHANGED", "CHANGED"]
        node.wait_event("registration", 30, start=mark, endpoint=ep)
        board.wait_serial(r"^bootstrap from %s finished$" % re.escape(bs.coap_uri), 5, serial)
    finally:
        bs.close()


def test_leshan_updates_the_board_with_an_application_bundle(fw, tmp_path):
    # The firmware on MicroPython registers with Leshan, which pushes an application bundle
    # (tools/bundle.py, BOARD=vboard) to /5/0/0 and executes Update: the board resets,
    # boot.py swaps the bundle in, the new app registers and reports Update Result 1 and its
    # version as the Firmware Version.
    import sys

    from peers.leshan_server import LeshanServer

    sys.path.insert(0, str(ROOT / "tools"))
    import bundle

    board, _node, ep, _reg, _deployed = fw
    leshan = LeshanServer()
    try:
        config = json.loads(write_config(tmp_path / "config.json", leshan.coap_port).read_text())
        config["state_dir"] = "/state-fw"  # not what earlier tests (a bootstrap) left in /state
        (tmp_path / "config.json").write_text(json.dumps(config))
        mark = leshan.mark()
        board.make("deploy", "BOARD=vboard", "CONFIG=%s" % (tmp_path / "config.json"))
        leshan.wait_event("registered", 40, start=mark, endpoint=ep)
        package, size, version = bundle.build("vboard", "vb-update-2", tmp_path / "bundle.bin", work=tmp_path / "mpy")
        assert leshan.value(ep, "/5/0/3") == 0
        written = leshan.command("write", ep, "/5/0/0", file=str(package), format="OPAQUE", timeout=180)
        assert written["code"] == "CHANGED", written
        assert leshan.value(ep, "/5/0/3") == 2 and leshan.value(ep, "/5/0/7") == version
        serial, again, events = board.mark(), leshan.mark(), board.event_mark()
        assert leshan.execute(ep, "/5/0/2")["code"] == "CHANGED"
        board.wait_event(r"^vboard: hard reset$", 15, events)
        board.wait_serial(r"update: vb-update-2 installed", 30, serial)
        leshan.wait_event("registered", 60, start=again, endpoint=ep)
        board.wait_serial(r"firmware: vb-update-2 registered: confirmed", 20, serial)
        assert leshan.value(ep, "/5/0/5") == 1 and leshan.value(ep, "/3/0/3") == "vb-update-2"
        assert leshan.value(ep, "/5/0/3") == 0
        print("bundle %d bytes" % size)
    finally:
        leshan.close()


def test_queue_mode_deep_sleep_cycle_with_leshan(tmp_path):
    # The firmware on MicroPython in queue mode with the board's deep sleep: it registers with
    # Leshan (which counts it awake for 2 s after its last message), is observed, deep-sleeps
    # (the board resets, keeping its RTC memory), wakes and goes on from what it kept: the
    # notification of the same observation, its Update to the same registration, and the
    # Read that the test held while Leshan saw it SLEEPING, answered once it is AWAKE. Then
    # it sleeps again. Nothing registers twice.
    # A board of its own: one that deep-sleeps is reachable by mpremote only while awake.
    from peers.leshan_server import LeshanError, LeshanServer

    leshan = LeshanServer(awake_ms=2000)
    board = None
    try:
        board = VBoard(tmp_path / "board", board_id())
        ep = "vboard-" + board.id
        config = json.loads(write_config(tmp_path / "config.json", leshan.coap_port).read_text())
        config.update(state_dir="/state-queue", queue_mode=True, queue_window_s=3, lifetime=40)  # Update after 20 s
        (tmp_path / "config.json").write_text(json.dumps(config))
        mark, serial, events = leshan.mark(), board.mark(), board.event_mark()
        board.make("deploy", "BOARD=vboard", "CONFIG=%s" % (tmp_path / "config.json"))
        reg = leshan.wait_event("registered", 40, start=mark, endpoint=ep)
        assert reg["queue"] is True
        assert leshan.write_attributes(ep, "/3303/0/5700", {"pmax": 12})["code"] == "CHANGED"
        first = leshan.observe(ep, "/3303/0/5700", "TEXT")
        assert first["code"] == "CONTENT"
        board.wait_event(r"^vboard: deep sleep for \d+ ms: radio on for \d+ ms since waking$", 20, events)
        leshan.wait_event("sleeping", 10, start=mark, endpoint=ep)
        asleep = leshan.mark()
        with pytest.raises(LeshanError) as err:
            leshan.read(ep, "/3/0/0", "TEXT")
        assert "ClientSleepingException" in err.value.error  # held by the test until AWAKE
        board.wait_event(r"^vboard: woke from deep sleep$", 20, events)
        board.wait_serial(r"^woke after \d+ ms: 1 registrations, 1 observations kept$", 20, serial)
        note = leshan.wait_event("notification", 30, start=asleep, endpoint=ep)
        assert note["path"] == "/3303/0/5700" and note["code"] == "CONTENT"
        leshan.wait_event("awake", 40, start=asleep, endpoint=ep)
        answer = leshan.read(ep, "/3/0/0", "TEXT")
        assert answer["content"]["value"] == "micropython-lwm2m"
        names = [m["event"] for m in leshan.messages(mark) if m and m.get("endpoint") == ep]
        assert names.count("registered") == 1 and "updated" in names, names
        again = board.event_mark()
        board.wait_event(r"^vboard: deep sleep for \d+ ms", 30, again)
    finally:
        if board is not None:
            board.close()
        leshan.close()


def test_deploy_romfs_says_when_the_board_has_no_romfs_partition(fw, tmp_path):
    board, node, _ep, _reg, _deployed = fw
    config = write_config(tmp_path / "config.json", node.port)
    argv = ["make", "--no-print-directory", "deploy", "BOARD=vboard", "ROMFS=1", "CONFIG=%s" % config, "PORT=%s" % board.port]
    proc = subprocess.run(argv, cwd=str(ROOT), capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "deploy: the board on %s has no ROMFS partition" % board.port in proc.stderr, proc.stdout + proc.stderr
    assert "romfs deploy" not in proc.stdout and "Writing at offset" not in proc.stdout  # nothing was written


WHERE = "import lwm2m.client, board\nprint('from', lwm2m.client.__file__, board.__file__)"


def test_deploy_runs_the_client_from_the_romfs_partition_by_default_and_romfs_0_from_files(tmp_path):
    # A board with a 256 KiB ROMFS partition. make deploy ROMFS=0 copies .mpy files; make deploy
    # then puts the compiled modules into one image there, the client imports them from /rom and
    # registers, and the .mpy copies on the filesystem are removed (they would shadow the image's);
    # make deploy ROMFS=0 again replaces the image, which would shadow the new /lib, by an empty one.
    node = NodeServer(free_udp_port())
    board = None
    try:
        board = VBoard(tmp_path / "board", board_id(), romfs_bytes=256 * 1024)
        ep = "vboard-" + board.id
        config = write_config(tmp_path / "config.json", node.port)
        out = board.make("deploy", "BOARD=vboard", "ROMFS=0", "CONFIG=%s" % config, "NO_RESET=1")
        assert "deploy: ROMFS=0: modules as .mpy files (they keep about 60 KB more heap" in out
        assert "ROMFS image deployed" not in out and "holds /lib/lwm2m" not in out  # the partition was empty

        out = board.make("deploy", "BOARD=vboard", "CONFIG=%s" % config)
        assert "in a ROMFS image of" in out and "which the board's ROMFS partition of 262144 bytes holds" in out
        assert "ROMFS image deployed" in out
        assert "removed /lib/lwm2m/client.mpy" in out and "removed /board.mpy" in out
        node.wait_event("registration", 40, endpoint=ep)
        mark, events = node.mark(), board.event_mark()
        where = board.mpremote("exec", WHERE, "+", "fs", "ls", ":lib/lwm2m").stdout
        assert "from /rom/lib/lwm2m/client.mpy /rom/board.mpy" in where, where
        assert ".mpy" not in where.split("ls :lib/lwm2m", 1)[1]  # the filesystem holds no copy
        # mpremote stopped the client, whose watchdog resets the board: deploy once it is back
        board.wait_event(r"^vboard: watchdog reset", 15, events)
        node.wait_event("registration", 40, start=mark, endpoint=ep)

        mark = node.mark()
        out = board.make("deploy", "BOARD=vboard", "ROMFS=0", "CONFIG=%s" % config)
        assert "deploy: ROMFS=0: modules as .mpy files" in out
        assert ("the board's ROMFS partition holds /lib/lwm2m from an earlier deploy, which would shadow the .mpy "
                "files: it is replaced by an empty ROMFS image") in out and "ROMFS image deployed" in out
        node.wait_event("registration", 40, start=mark, endpoint=ep)
        where = board.mpremote("exec", WHERE + "\nimport os\nprint('rom', os.listdir('/rom'))").stdout
        assert "from /lib/lwm2m/client.mpy board.mpy" in where and "rom []" in where, where  # board.mpy: "" in sys.path
    finally:
        if board is not None:
            board.close()
        node.close()
