# `make test-port MICROPYTHON=path [HEAPSIZE=size]`: the portable tests on a real MicroPython
# binary (a unix-port build of your own), a check run by hand: CI cannot build MicroPython, so
# this is not part of `make test`. Each module of host_tests/portable runs in a fresh process of
# that binary (so HEAPSIZE, given as -X heapsize=, is the heap of one module's run) through
# tools/vm/vm_test_runner.py, with host_tests/portable, lib/, tools/vm and boards/common on
# sys.path as tools/mpvm.mjs lays them out in the VM. Prints the failures with their
# tracebacks, one count line per module and a closing count line; exits non-zero when any test
# failed, none ran, or the binary is missing or not MicroPython.
#   python3 tools/port_tests.py --micropython PATH [--heapsize SIZE] [MODULE ...]
import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "host_tests" / "portable"
SYS_PATH = (TESTS, ROOT / "lib", ROOT / "tools" / "vm", ROOT / "boards" / "common")
TIMEOUT = 600  # seconds for one module


def find_binary(name):
    # A path as given (relative to where make was started), or a name looked up in PATH.
    if not name:
        sys.exit("MICROPYTHON is not given: make test-port MICROPYTHON=/path/to/micropython [HEAPSIZE=112K]")
    found = shutil.which(name) if "/" not in name else (name if Path(name).is_file() else None)
    if not found:
        sys.exit("MICROPYTHON=%s: no such file" % name)
    return str(Path(found).absolute())


def heap_args(heapsize):
    return ["-X", "heapsize=" + heapsize] if heapsize else []


def describe(binary, heapsize):
    # What the binary is, or an exit naming why it cannot run the tests.
    argv = [binary] + heap_args(heapsize) + ["-c", "import sys; print(sys.implementation.name, sys.version, sys.maxsize)"]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        sys.exit("MICROPYTHON=%s does not run: %s" % (binary, exc))
    if proc.returncode != 0 or not proc.stdout.startswith("micropython "):
        sys.exit("MICROPYTHON=%s is not a working MicroPython%s (exit %d):\n%s%s"
                 % (binary, " with HEAPSIZE=" + heapsize if heapsize else "", proc.returncode, proc.stdout, proc.stderr))
    return proc.stdout.strip()


def module_code(name):
    lines = ["import sys"]
    lines += ["sys.path.insert(%d, %r)" % (i, str(p)) for i, p in enumerate(SYS_PATH)]
    lines += ["import vm_test_runner", "sys.exit(vm_test_runner.main([%r], %r))" % (name, str(TESTS))]
    return "\n".join(lines)


def run_module(binary, heapsize, name):
    argv = [binary] + heap_args(heapsize) + ["-c", module_code(name)]
    try:
        proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT)
        out, code = proc.stdout + proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        out, code = "%s\ntimed out after %d s\n" % (exc.stdout or "", TIMEOUT), None
    found = re.search(r"micropython-vm: (\d+) passed, (\d+) failed", out)
    passed, failed = (int(found.group(1)), int(found.group(2))) if found else (0, 0)
    loaded = "lwm2m loaded from %s" % (ROOT / "lib" / "lwm2m" / "__init__.py")
    problems = []
    if not found or code != (1 if failed or not passed else 0):
        problems.append("the run ended with exit %s" % code)  # a crash, a timeout or no count
    if found and loaded not in out:
        problems.append("lwm2m was not loaded from %s" % (ROOT / "lib"))
    if failed or problems:
        sys.stdout.write(out if out.endswith("\n") else out + "\n")
    if problems and not failed:
        failed = 1
    print("%s: %d passed, %d failed%s" % (name, passed, failed, "; " + "; ".join(problems) if problems else ""))
    return passed, failed


def main(argv=None):
    parser = argparse.ArgumentParser(description="The portable tests on a real MicroPython binary.")
    parser.add_argument("--micropython", default="", help="the binary (a unix-port build)")
    parser.add_argument("--heapsize", default="", help="its -X heapsize= (e.g. 112K), per module")
    parser.add_argument("modules", nargs="*", help="test modules of host_tests/portable (default: all)")
    args = parser.parse_args(argv)
    binary = find_binary(args.micropython)
    print("%s: %s" % (binary, describe(binary, args.heapsize)))
    names = sorted(p.stem for p in TESTS.glob("test_*.py"))
    unknown = [n for n in args.modules if n not in names]
    if unknown:
        sys.exit("no such test module in %s: %s" % (TESTS.relative_to(ROOT), " ".join(unknown)))
    passed = failed = 0
    for name in args.modules or names:
        p, f = run_module(binary, args.heapsize, name)
        passed += p
        failed += f
    print("MicroPython %s%s: %d passed, %d failed"
          % (binary, ", heap " + args.heapsize if args.heapsize else "", passed, failed))
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
