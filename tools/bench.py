# `make bench`: prints figures, asserts nothing. Code size of each lib module as .mpy
# (mpy-cross -O2); codec throughput on CPython beside aiocoap on the same messages, and the
# same codec code inside the MicroPython VM; the heap of the client in the VM, and of each cap
# of lwm2m.client.LIMITS filled to its default there; a bootstrap in the VM (heap, time, the
# state file it leaves); the heap per extra server and the time of an ACL check in the VM;
# the heap of the client registered on the virtual board (make vboard).
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "lib"), str(ROOT / "boards" / "host"), str(ROOT / "tools" / "vm"), str(ROOT / "tools")]

import cpython_shim  # noqa: E402

cpython_shim.install()

import bench_codecs  # noqa: E402
import romfs  # noqa: E402
from aiocoap.message import Direction, Message as AiocoapMessage  # noqa: E402

CODEC_MODULES = ("coap.py", "tlv.py", "text.py", "link.py")


def mpy_sizes():
    print("== .mpy size (mpy-cross -O2) ==")
    total = codecs = 0
    with tempfile.TemporaryDirectory() as out:
        compile_lib(out)
        for src in sorted((ROOT / "lib").rglob("*.py")):
            rel = src.relative_to(ROOT / "lib")
            size = (Path(out) / rel.with_suffix(".mpy")).stat().st_size
            total += size
            if src.name in CODEC_MODULES:
                codecs += size
            print("%-28s %6d B" % (rel, size))
    # No target: flash is not what limits a board (the frozen client takes about 80 KB of a
    # Pico W's 2 MB), heap is.
    print("%-28s %6d B" % ("all of lib/", total))
    print("%-28s %6d B" % ("coap+tlv+text+link", codecs))


def best_rate(func, ops, repeat=5):
    # Operations per second of the fastest of `repeat` runs of func(), doing `ops` each.
    best = min(_timed(func) for _ in range(repeat))
    return ops / best


def _timed(func):
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def cpython_figures(wires, rounds):
    def ours():
        for _ in range(rounds):
            for wire in wires:
                bench_codecs.coap.encode(bench_codecs.coap.decode(wire))

    def theirs():
        for _ in range(rounds):
            for wire in wires:
                aiocoap_roundtrip(wire)

    def tlv():
        for _ in range(rounds):
            bench_codecs.tlv.encode(bench_codecs.tlv.decode(bench_codecs.TLV_DEVICE))

    for wire in wires:  # the peer must agree with the bytes before its speed means anything
        assert aiocoap_roundtrip(wire) == wire
    ops = rounds * len(wires)
    return best_rate(ours, ops), best_rate(theirs, ops), best_rate(tlv, rounds)


def aiocoap_roundtrip(wire):
    msg = AiocoapMessage.decode(wire)
    msg.direction = Direction.OUTGOING  # aiocoap encodes only messages it is sending
    return msg.encode()


def vm_output(module, env=None):
    # What a tools/vm module prints, run inside the MicroPython VM.
    return subprocess.run(["node", "tools/mpvm.mjs", module], cwd=ROOT, check=True,
                          capture_output=True, text=True, env=env).stdout


def vm_run(module, env=None):
    # The key=value lines a tools/vm module prints.
    return dict(line.split("=", 1) for line in vm_output(module, env).split() if "=" in line)


def vm_figures():
    figures = vm_run("bench_codecs")
    return int(figures["coap_per_s"]), int(figures["tlv_per_s"])


def compile_lib(out):
    # lib/ as `mpy-cross -O2` .mpy files under out/, as deployed to a board (compiled from
    # lib/, so the source name inside each .mpy is lwm2m/....py).
    romfs.compile_tree(ROOT / "lib", out)


# The three ways lib/ reaches a board's import, run in the VM: sources, .mpy files on the
# filesystem (make deploy), and a ROMFS image (make deploy ROMFS=1). Frozen modules need a
# firmware build of the VM, which this machine cannot make (no Emscripten): not measured.
DEPLOYMENTS = (".py", ".mpy", "ROMFS")
# The heap goals of issue #21: the smallest heap in which the client registers and serves, on
# a real 32-bit port (docs/memory.md has those figures; the VM's below are estimates).
HEAP_GOALS = {".mpy": 96 * 1024, "ROMFS": 48 * 1024}


def _deployment_env(kind, tmp):
    # The environment of tools/mpvm.mjs for one deployment of lib/.
    if kind == ".py":
        return dict(os.environ)
    compiled = Path(tmp) / "rom" / "lib"
    compile_lib(compiled)
    if kind == ".mpy":
        return dict(os.environ, MPVM_LIB=str(compiled))
    image = Path(tmp) / "lib.img"
    romfs.build(compiled.parent, image)
    return dict(os.environ, MPVM_ROMFS=str(image))


def client_figures():
    figures, modules = {}, {}
    for kind in DEPLOYMENTS:
        with tempfile.TemporaryDirectory() as tmp:
            env = _deployment_env(kind, tmp)
            figures[kind] = vm_run("bench_client", env)
            if kind != ".py":
                modules[kind], on_demand = _module_heaps(env, kind == "ROMFS")
            if kind == "ROMFS":
                requests = _request_heaps(env)
    f = figures[".mpy"]
    print("== client in the MicroPython VM (objects 0, 1, 3, 4, 5, 3303), by deployment ==")
    print("%-44s %9s %9s %9s" % ("", *DEPLOYMENTS))
    print("%-44s %7s B %7s B %7s B" % ("heap kept by the imported modules", *(figures[k]["imports_bytes"] for k in DEPLOYMENTS)))
    print("%-44s %7s B %7s B %7s B" % ("client data after registration", *(figures[k]["registered_bytes"] for k in DEPLOYMENTS)))
    resident = {k: int(figures[k]["imports_bytes"]) + int(figures[k]["registered_bytes"]) for k in DEPLOYMENTS}
    print("%-44s %7d B %7d B %7d B" % ("resident, registered (modules + data)", *(resident[k] for k in DEPLOYMENTS)))
    print("%-44s %7d B %7d B %7d B  (%s names interned: pools, and their text from files)"
          % ("  of it, interned names (qstrs)", *(_names_heap(figures[k], k == "ROMFS") for k in DEPLOYMENTS),
             figures[".mpy"]["n_qstr"].rstrip(",")))
    print("%-44s %7s B  (heap_lock: %s; target 0)" % ("allocated per idle loop iteration", f["idle_poll_bytes"], f["idle_poll_heap_locked"]))
    print("%-44s %7s B  (%s sent)" % ("allocated per notification", f["notification_bytes"], f["notifications_sent"]))
    print("%-44s %7s B" % ("Register message on the wire", f["register_bytes"]))
    print("== heap one request takes (VM, growth within the request: nothing is collected before it ends) ==")
    for name, grown, answer in requests:
        print("%-44s %7d B  (%s; target <= %d B)" % (name, grown, answer, REQUEST_TARGET))
    # The VM's heap cannot be capped: it grows from the host's memory whatever heapsize says
    # (gc.mem_alloc() + gc.mem_free() is 128 MiB), so the smallest heap that works is the
    # resident heap plus the largest request, and a margin for fragmentation.
    peak = max(grown for _name, grown, _answer in requests)
    print("%-44s %9s %7d B %7d B  (resident + largest request + 25 %%; not a hard cap: the VM cannot have one)"
          % ("smallest heap that works, about", "", (resident[".mpy"] + peak) * 5 // 4, (resident["ROMFS"] + peak) * 5 // 4))
    print("%-44s %9s %7d B %7d B  (ROMFS: and frozen; measured on a real 32-bit port: docs/memory.md)"
          % ("  goal", "", HEAP_GOALS[".mpy"], HEAP_GOALS["ROMFS"]))
    print("== heap each module keeps once imported (VM), and of it the interned names' ==")
    print("%-22s %9s %9s %9s %9s" % ("", ".mpy", "names", "ROMFS", "names"))
    for name in modules[".mpy"]:
        print("%-22s %7d B %7d B %7d B %7d B%s" % (name, *modules[".mpy"][name], *modules["ROMFS"][name],
                                                 "  (on demand)" if name in on_demand else ""))
    print("%-22s (a pool of names twice the last one's size falls to whichever module needs the first name that does not fit)" % "")
    features = {k: sum(modules[k][name][0] for name in on_demand) for k in (".mpy", "ROMFS")}
    print("%-22s %7d B %19d B  (every feature loaded on demand, at once)" % ("on demand, all", features[".mpy"], features["ROMFS"]))
    print("== with every feature loaded: resident + the features + the largest request (VM) ==")
    print("%-44s %9s %9s" % ("", ".mpy", "ROMFS"))
    every = {k: resident[k] + features[k] + peak for k in (".mpy", "ROMFS")}
    print("%-44s %7d B %7d B  (ESP32: mbedTLS is not on MicroPython's heap)" % ("no DTLS", every[".mpy"], every["ROMFS"]))
    print("%-44s %7d B %7d B  (Pico W: mbedTLS allocates from MicroPython's heap; 27.7 KiB measured on rp2, not here: the VM has no tls)"
          % ("with a DTLS session", every[".mpy"] + DTLS_SESSION_RP2, every["ROMFS"] + DTLS_SESSION_RP2))
    cap_figures(f)


REQUEST_TARGET = 4 * 1024
DTLS_SESSION_RP2 = 28365  # 27.7 KiB: one mbedTLS session on rp2 (issue #14's measurement on a Pico W)


def _request_heaps(env):
    # [(request, bytes the heap grew by while answering it, the answer)] (tools/vm/bench_requests.py)
    rows = []
    for line in vm_output("bench_requests", env).splitlines():
        if line.startswith("request "):
            name, grown, code, size = line[8:].split("|")
            rows.append((name, int(grown), "%s, %s B" % (code, size)))
    return rows


def _names_heap(info, romfs):
    # The heap interned names take, from the fields micropython.qstr_info() prints
    # ("n_total_bytes=9820," and the like): their pools, and their text, which is copied into
    # the heap from .py and .mpy files and stays in flash from ROMFS (counted either way).
    def field(name):
        return int(info[name].rstrip(","))

    return field("n_total_bytes") - (field("n_str_data_bytes") if romfs else 0)


def _module_heaps(env, romfs):
    # {module: (heap it keeps, of it the interned names' heap)}, and the modules loaded only
    # when a feature is first used.
    heaps, on_demand, names = {}, set(), []
    for line in vm_output("bench_modules", env).splitlines():
        if line.startswith("qstr pool: "):
            names.append(_names_heap(dict(item.split("=") for item in line[11:].split()), romfs))
        elif line.startswith("module "):
            _tag, name, kept, state = line.split()
            if state == "missing":
                raise SystemExit("bench: %s did not import in the VM" % name)
            heaps[name] = (int(kept), names[len(heaps) + 1] - names[len(heaps)])
            if state == "on-demand":
                on_demand.add(name)
    return heaps, on_demand


# The caps of lwm2m.client.LIMITS, each filled to its default through requests to the client
# of client_figures() (tools/vm/bench_caps.py, steps 5 on of bench_client): the heap it then holds.
CAPS = (
    ("observations", "per server"),
    ("attributes", "Write-Attributes paths per server"),
    ("instances", "Created by a server, per object"),
    ("duplicates", "requests remembered"),
)


def cap_figures(f):
    print("== caps at their defaults (MicroPython VM, lib/ as .mpy) ==")
    print("%-14s %7s %9s %11s" % ("cap", "default", "heap", "per entry"))
    if f["cap_prepared"] != "ok":
        print("(PREPARING FAILED: the observation of the figures above did not end, or the duplicate"
              " cache did not expire)")
    for name, what in CAPS:
        default, reached = int(f["cap_%s_default" % name]), int(f["cap_%s_reached" % name])
        size = int(f["cap_%s_bytes" % name])
        notes = [what]
        if name == "duplicates":
            discovers = int(f["cap_duplicates_discovers"])
            notes.append("their answers %s B, duplicate_bytes %s B; GET /3/0: %d Read in TLV, %d Discover"
                         % (f["cap_duplicates_answer_bytes"], f["cap_duplicate_bytes_default"],
                            reached - discovers, discovers))
            if int(f["cap_duplicates_answer_bytes"]) < int(f["cap_duplicate_bytes_default"]):
                notes.append("duplicate_bytes NOT REACHED")
        if reached != default:
            notes.append("NOT REACHED: %d held" % reached)
        if f["cap_%s_checked" % name] != "ok":
            notes.append("CHECK FAILED: an answer was not the one expected (tools/vm/bench_caps.py)")
        print("%-14s %7d %7d B %9.0f B  (%s)" % (name, default, size, size / max(reached, 1), "; ".join(notes)))


# On the virtual board (make vboard): the client as make deploy puts it on a board, started
# from the REPL the way firmware/app.py builds it, registered with lwm2m-node-lib over UDP.
# Each step is one mpremote exec: the VM collects garbage only when a call into it returns, so
# a figure read with gc.mem_alloc() in a step follows the step that called gc.collect().
VBOARD_STEPS = (
    "import gc\ngc.collect()",
    "print('heap_idle', gc.mem_alloc())\nimport _vboard\nprint('port_heap', _vboard.port_heap())",
    "import app, board, time\n"
    "from config import load\n"
    "from lwm2m.transport import UdpTransport\n"
    "cfg = load('config.json')\n"
    "w = cfg['wifi']\n"
    "board.connect(w['ssid'], w['password'], w['timeout_s'], w['retries'], print)\n"
    "client = app.build(cfg, board, UdpTransport(), '/objects', print)\n"
    "client.start()\n"
    "t0 = time.ticks_ms()\n"
    "while not client.servers[0].location and time.ticks_diff(time.ticks_ms(), t0) < 20000:\n"
    " client.transport.wait(min(client.poll(), 100))\n"
    "print('registered_ms', time.ticks_diff(time.ticks_ms(), t0) if client.servers[0].location else -1)\n"
    "gc.collect()",
    "print('heap_registered', gc.mem_alloc())",
    # idle iterations of the loop of firmware/main.py's serve(): poll, then wait on the socket
    "a = gc.mem_alloc()\n"
    "for i in range(100):\n"
    " client.transport.wait(min(client.poll(), 5))\n"
    "print('idle_bytes', gc.mem_alloc() - a)\n"
    "client.stop()",
)


def vboard_figures():
    sys.path.insert(0, str(ROOT / "host_tests"))
    from peers.host import free_udp_port
    from peers.node_server import NodeServer
    from peers.vboard import VBoard

    print("== client on the virtual board (make vboard, make deploy BOARD=vboard, lwm2m-node-lib) ==")
    with tempfile.TemporaryDirectory() as tmp:
        node = NodeServer(free_udp_port())
        board = None
        try:
            board = VBoard(Path(tmp) / "board", "02b3e0c0ffee")
            config = json.loads((ROOT / "firmware" / "config.example.json").read_text())
            config["wifi"].update(ssid="vboard", password="micropython")
            config.update(server="coap://127.0.0.1:%d" % node.port, endpoint="vboard-bench")
            (Path(tmp) / "config.json").write_text(json.dumps(config))
            board.make("deploy", "BOARD=vboard", "CONFIG=%s" % (Path(tmp) / "config.json"), "NO_RESET=1")
            argv = []
            for step in VBOARD_STEPS:
                argv += ["+", "exec", step] if argv else ["exec", step]
            out = board.mpremote(*argv, timeout=120).stdout
        finally:
            if board is not None:
                board.close()
            node.close()
    f = dict(line.split(" ", 1) for line in out.splitlines() if line.split(" ", 1)[0] in
             ("heap_idle", "port_heap", "registered_ms", "heap_registered", "idle_bytes"))
    idle, port, registered = int(f["heap_idle"]), int(f["port_heap"]), int(f["heap_registered"])
    print("%-44s %7d B  (registered in %s ms)" % ("heap in use after registration (gc.mem_alloc)", registered,
                                                  f["registered_ms"]))
    print("%-44s %7d B  (the VM at its REPL, with the board's own modules)" % ("  before the client started", idle))
    print("%-44s %7d B" % ("  so the client (lib/ as .mpy, board, data)", registered - idle))
    print("%-44s %7d B  (Python here, C on a real board)" % ("  board's socket/select/machine/network", port))
    print("%-44s %7d B  (100 iterations of serve()'s loop)" % ("allocated per idle loop iteration", int(f["idle_bytes"]) // 100))


# Radio-on time of a sensor that reports one value every 60 s by Send (SenML CBOR, to Leshan),
# counted by the virtual board: the time its Wi-Fi station is active while the board is not
# asleep. In queue mode (2 s window) it deep-sleeps between reports; the board runs with
# --fast-sleep, so a sleep costs no host time and its clocks jump ahead, while what it does
# awake (the Wi-Fi join, the boot of the client, the Send and its answer, the window) takes
# its real time. Without queue mode the same client stays awake, counted over RADIO_AWAKE_S.
RADIO_REPORTS = 10
RADIO_WINDOW_S = 2
RADIO_AWAKE_S = 20
_SLEEP_LINE = re.compile(r"^vboard: deep sleep for (\d+) ms: radio on for (\d+) ms since waking$")


def radio_figures():
    sys.path.insert(0, str(ROOT / "host_tests"))
    from peers.leshan_server import LeshanServer, available
    from peers.vboard import VBoard

    print("== radio on per hour, one report every 60 s by Send (virtual board, Leshan) ==")
    if available():
        print("not run: " + available())
        return
    leshan = LeshanServer(trace=False, awake_ms=RADIO_WINDOW_S * 1000)
    try:
        queued = _radio_run(leshan, VBoard, True)
        awake_on, awake_elapsed = _radio_run(leshan, VBoard, False)
    finally:
        leshan.close()
    first, cycles = queued[0], queued[1:]
    per_report = sum(cycles) / len(cycles)
    print("%-44s %7.1f s  (%.2f s awake per report, over %d reports; %d s window)"
          % ("queue mode, deep sleep between reports", per_report * 60 / 1000, per_report / 1000, len(cycles),
             RADIO_WINDOW_S))
    print("%-44s %7.2f s  (Wi-Fi join, boot, Register, Send, window)" % ("  the first wake", first / 1000))
    print("%-44s %7.1f s  (radio on %d of %d ms counted)" % ("without queue mode", awake_on * 3600 / awake_elapsed,
                                                           awake_on, awake_elapsed))


def _radio_run(leshan, VBoard, queue):
    # Queue mode: the radio-on ms of each wake, the first one (which registers) first, for
    # RADIO_REPORTS reports. Else: (radio-on ms, ms since the radio first came on) after
    # RADIO_AWAKE_S of the same client awake.
    with tempfile.TemporaryDirectory() as tmp:
        board = VBoard(Path(tmp) / "board", "02b3e0c0fe%02x" % queue, fast_sleep=True)
        try:
            config = json.loads((ROOT / "firmware" / "config.example.json").read_text())
            config["wifi"].update(ssid="vboard", password="micropython")
            config.update(server=leshan.coap_uri, endpoint="vboard-radio-%d" % queue, lifetime=3600,
                          queue_mode=queue, queue_window_s=RADIO_WINDOW_S,
                          send={"paths": ["/3303/0/5700"], "period_s": 60, "format": "senml-cbor"})
            (Path(tmp) / "config.json").write_text(json.dumps(config))
            mark = board.event_mark()
            board.make("deploy", "BOARD=vboard", "CONFIG=%s" % (Path(tmp) / "config.json"))
            if not queue:
                time.sleep(RADIO_AWAKE_S)
                out = board.mpremote("exec", "import _vboard\nprint('radio', *_vboard.radio_time())").stdout
                on, elapsed = (int(v) for v in out.split("radio", 1)[1].split()[:2])
                return on, elapsed
            awake = []
            while len(awake) <= RADIO_REPORTS:
                line = board.wait_event(_SLEEP_LINE.pattern, 60, mark)
                mark = board.out.lines().index(line, mark) + 1
                awake.append(int(_SLEEP_LINE.match(line).group(2)))
            return awake
        finally:
            board.close()


def main():
    print("%s, Python %s" % (time.strftime("%Y-%m-%d %H:%M"), sys.version.split()[0]))
    mpy_sizes()
    wires = bench_codecs.messages()
    ours, theirs, tlv = cpython_figures(wires, 2000)
    vm_coap, vm_tlv = vm_figures()
    print("== codec throughput (decode + encode, %d typical LwM2M messages, %d..%d B) =="
          % (len(wires), min(map(len, wires)), max(map(len, wires))))
    print("%-40s %10s" % ("", "msg/s"))
    print("%-40s %10d" % ("CoAP, this codec, CPython", ours))
    print("%-40s %10d" % ("CoAP, aiocoap %s, CPython" % aiocoap_version(), theirs))
    print("%-40s %10.1f  (target >= 3.0)" % ("ratio this / aiocoap", ours / theirs))
    print("%-40s %10d" % ("CoAP, this codec, MicroPython VM", vm_coap))
    print("%-40s %10d" % ("TLV Read /3/0 answer, CPython", tlv))
    print("%-40s %10d" % ("TLV Read /3/0 answer, MicroPython VM", vm_tlv))
    client_figures()
    bootstrap_figures()
    access_figures()
    dtls_figures()
    report_figures()
    firmware_figures()
    vboard_figures()
    radio_figures()


def access_figures():
    # tools/vm/bench_access.py: clients with 1, 2 and 3 servers, GETs with and without ACLs
    with tempfile.TemporaryDirectory() as out:
        compile_lib(out)
        f = vm_run("bench_access", dict(os.environ, MPVM_LIB=out))
    one, two, three = (int(f["servers_%d_bytes" % n]) for n in (1, 2, 3))
    print("== several servers and access control (MicroPython VM, lib/ as .mpy) ==")
    print("%-44s %7d B  (1 server %d B, 2 %d B, 3 %d B)" % ("client data per extra registered server",
                                                           (three - one) // 2, one, two, three))
    print("%-44s %7s B" % ("heap kept by lwm2m.access (2 servers on)", f["access_module_bytes"]))
    print("%-44s %7s us (best of 3 x 200; VM speed)" % ("GET /3311/0/5850, one server, no ACL", f["get_us_1"]))
    print("%-44s %7s us (the same, with its ACL check)" % ("GET /3311/0/5850, two servers", f["get_us_2"]))


def bootstrap_figures():
    # tools/vm/bench_bootstrap.py: what Leshan's bootstrap server sends, against the client
    with tempfile.TemporaryDirectory() as out:
        compile_lib(out)
        f = vm_run("bench_bootstrap", dict(os.environ, MPVM_LIB=out))
    print("== bootstrap in the MicroPython VM (lib/ as .mpy; Delete /0 and /1, PSK Security and Server in TLV, Finish) ==")
    print("%-44s %7s B" % ("heap kept by lwm2m.bootstrap once imported", f["module_bytes"]))
    print("%-44s %7s B  (the module, the session, the copy to go back to)" % ("heap held while bootstrapping",
                                                                             f["bootstrapping_bytes"]))
    print("%-44s %7s B  (lwm2m.bootstrap unloaded at the Finish: the new accounts and registration stay)"
          % ("heap kept after the Finish", f["after_bytes"]))
    print("%-44s %7s ms (VM speed; %s Register sent)" % ("Bootstrap-Request to Register", f["request_to_register_ms"],
                                                        f["register_sent"]))
    print("%-44s %7s B" % ("state file after it (servers.json)", f["state_file_bytes"]))
    print("%-44s %7s ms (write, sync, read back, rename; VM's memory filesystem)" % ("its save", f["save_ms"]))


def report_figures():
    # Bytes on the wire per report of a temperature sensor (/3303/0: value and units), as an
    # Observe notification in each format and as a Send, from the client on the in-memory
    # transport of the portable tests (CoAP header, token and options included; no DTLS).
    sys.path.insert(0, str(ROOT / "host_tests" / "portable"))
    from fakes import GET, add_sensor, registered

    print("== bytes on the wire per report of /3303/0 (5700 value, 5701 units; CoAP, no DTLS) ==")
    for name, cf in (("TLV", 11542), ("SenML JSON", 110), ("SenML CBOR", 112), ("LwM2M JSON", 11543)):
        client, peer, _reg = registered()
        sensor = add_sensor(client)
        peer.request(GET, "/3303/0", 100, accept=cf, observe=0, token=b"\x01\x02\x03\x04")
        sensor.on_read(5700, lambda: 22.5)
        note = [d for d, _a in _sent(peer, 1200)]
        print("%-44s %7d B" % ("notification, " + name, len(note[0])))
    for name, cf in (("SenML JSON", 110), ("SenML CBOR", 112)):
        client, peer, _reg = registered()
        add_sensor(client)
        client.send(["/3303/0"], cf)
        print("%-44s %7d B  (a CON POST /dp)" % ("Send, " + name, len(peer.transport.sent[-1][0])))
    for name, cf in (("text", 0), ("CBOR", 60)):
        client, peer, _reg = registered()
        sensor = add_sensor(client)
        peer.request(GET, "/3303/0/5700", 100, accept=cf, observe=0, token=b"\x01\x02\x03\x04")
        sensor.on_read(5700, lambda: 22.5)
        print("%-44s %7d B  (/3303/0/5700 alone)" % ("notification, " + name, len(_sent(peer, 1200)[0][0])))


def _sent(peer, now):
    # The datagrams the client sends at now (a notification once the value changed).
    peer.transport.sent = []
    peer.client.poll(now)
    return list(peer.transport.sent)


def firmware_figures():
    # tools/vm/bench_firmware.py: pulls and a push into the bundle sink, in the VM; then
    # Leshan pushing a 256 KiB bundle to the host client on loopback.
    with tempfile.TemporaryDirectory() as out:
        compile_lib(out)
        f = vm_run("bench_firmware", dict(os.environ, MPVM_LIB=out))
    print("== firmware update (MicroPython VM, lib/ as .mpy; the Pico W's bundle sink on the VM's memory filesystem) ==")
    print("%-44s %7s B  (target <= 8192; %s B stay after it, lwm2m.download unloaded)"
          % ("heap above idle during a 64 KiB pull", f["pull_64k_bytes"], f["after_64k_bytes"]))
    print("%-44s %7s B" % ("heap above idle during a 256 KiB pull", f["pull_256k_bytes"]))
    print("%-44s %7s B  (with the duplicate cache its requests fill, capped)" % (
        "heap above idle during a 256 KiB push", f["push_256k_bytes"]))
    print("%-44s %7s us (VM speed: GET, write, progress saved)" % ("pull, per 1 KiB block", f["pull_256k_us_per_block"]))
    print("%-44s %7s us (VM speed)" % ("push, per 1 KiB block", f["push_256k_us_per_block"]))
    leshan_push()


def leshan_push():
    # The time Leshan takes to push a 256 KiB bundle (Californium's Block1, 1024-byte
    # blocks unless it picks less) to tools/host_run.py, both on 127.0.0.1.
    sys.path[:0] = [str(ROOT / "host_tests"), str(ROOT / "tools")]
    import bundle
    from peers.host import HostRun
    from peers.leshan_server import LeshanServer, available

    if available():
        print("%-44s %s" % ("Leshan push of 256 KiB", "not run: " + available()))
        return
    with tempfile.TemporaryDirectory() as tmp:
        main_py, filler = Path(tmp) / "main.py", Path(tmp) / "filler.bin"
        main_py.write_text("print('bench')\n")
        filler.write_bytes(b"\xa5" * (256 * 1024))
        package = Path(tmp) / "bundle.bin"
        package.write_bytes(bundle.pack([("main.py", main_py), ("objects/filler.bin", filler)], "host", "bench"))
        leshan = LeshanServer(trace=False)
        run = None
        try:
            mark = leshan.mark()
            run = HostRun(leshan.coap_uri, "bench-fw", 300, "1.1", ["--state-dir", str(Path(tmp) / "state")])
            leshan.wait_event("registered", 20, start=mark, endpoint="bench-fw")
            started = time.monotonic()
            leshan.command("write", "bench-fw", "/5/0/0", file=str(package), format="OPAQUE", timeout=300)
            elapsed = time.monotonic() - started
            blocks = run.count_log(r"PUT /5/0/0 -> ")
        finally:
            if run:
                run.close()
            leshan.close()
    print("%-44s %7.2f s  (%d blocks, %.1f ms per block round trip; CPython client)"
          % ("Leshan push of 256 KiB to the host client", elapsed, blocks, elapsed * 1000 / blocks))


# A DTLS PSK handshake on the host: the client's transport (lib/lwm2m/transport.py with
# lwm2m.dtls and the CPython tls stand-in) against the scripted python-mbedtls server of the
# tests, through the tests' UDP relay, which counts what goes over the wire. The heap of a
# DTLS session is not measured here: the VM has no tls module, and on a board it is mbedTLS's
# (about 28 KB on rp2, on the ESP-IDF heap on ESP32: see ../shared/design.md).
DTLS_RUNS = 5


def dtls_figures():
    sys.path.insert(0, str(ROOT / "host_tests"))
    from peers.host import free_udp_port, python
    from peers.relay import DOWN, UP, UdpRelay

    from lwm2m import dtls
    from lwm2m.transport import UdpTransport

    class Psk:  # a Security instance's values: /0/x/0, 2 (mode 0: PSK), 3 and 5
        values = {0: "coaps://127.0.0.1", 2: 0, 3: b"bench", 5: bytes(range(16))}

        def get(self, rid):
            return self.values[rid]

    times, up, down, suites = [], [], [], set()
    for _ in range(DTLS_RUNS):
        port = free_udp_port()
        server = subprocess.Popen([python(), str(ROOT / "host_tests" / "peers" / "dtls_server.py"), str(port),
                                   "bench", bytes(range(16)).hex()], stdout=subprocess.PIPE, text=True)
        relay = UdpRelay(("127.0.0.1", port), log=lambda line: None)
        transport = UdpTransport()
        try:
            server.stdout.readline()  # "listening"
            addr = transport.resolve("127.0.0.1", relay.port)
            buf = bytearray(1280)
            start = time.perf_counter()
            transport.secure(addr, *dtls.context(Psk()))
            transport.send(b"\x40\x00\x00\x01", addr)  # a CoAP ping, sent once the handshake is done
            while transport.handshaking() and time.perf_counter() - start < 10:
                transport.wait(10)
                transport.recv_into(buf)
            times.append(time.perf_counter() - start)
            suites.add(transport.cipher(addr))
            time.sleep(0.05)  # the ping's record reaches the relay
            up.append(sum(len(r.data) for r in relay.seen(UP)) - len(relay.seen(UP)[-1].data))
            down.append(sum(len(r.data) for r in relay.seen(DOWN)))
        finally:
            transport.close()
            relay.close()
            server.kill()
            server.wait()
    times.sort()
    print("== DTLS 1.2 PSK handshake on the host (CPython, python-mbedtls server, loopback) ==")
    print("%-44s %7.1f ms  (median of %d; suite %s)" % ("handshake, ClientHello to done", times[len(times) // 2] * 1000,
                                                         len(times), ", ".join(sorted(map(str, suites)))))
    print("%-44s %7d B  (client %d B, server %d B)" % ("on the wire per handshake", up[0] + down[0], up[0], down[0]))


def aiocoap_version():
    import aiocoap.meta

    return aiocoap.meta.version


if __name__ == "__main__":
    main()
