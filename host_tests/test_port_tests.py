# tools/port_tests.py (make test-port) without a MicroPython binary, as CI has none: what it
# refuses, and that the real make target says what to give it.
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import port_tests  # noqa: E402


def test_make_test_port_without_micropython_says_what_to_give():
    proc = subprocess.run(["make", "-s", "test-port", "MICROPYTHON="], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "MICROPYTHON is not given: make test-port MICROPYTHON=/path/to/micropython" in proc.stderr


def test_a_missing_binary_is_refused(tmp_path):
    with pytest.raises(SystemExit) as exc:
        port_tests.main(["--micropython", str(tmp_path / "micropython")])
    assert exc.value.code == "MICROPYTHON=%s: no such file" % (tmp_path / "micropython")


def test_a_binary_that_is_not_micropython_is_refused(tmp_path):
    fake = tmp_path / "micropython"
    fake.write_text("#!/bin/sh\necho 'CPython 3'\n")
    fake.chmod(0o755)
    with pytest.raises(SystemExit) as exc:
        port_tests.main(["--micropython", str(fake), "--heapsize", "112K"])
    assert exc.value.code.startswith("MICROPYTHON=%s is not a working MicroPython with HEAPSIZE=112K" % fake)


def test_each_module_runs_the_vm_runner_on_the_repository_folders():
    # The code given to the binary: the folders mpvm.mjs lays out in the VM, in that order.
    code = port_tests.module_code("test_coap")
    assert code.splitlines()[1:5] == ["sys.path.insert(%d, %r)" % (i, str(ROOT / p)) for i, p in
                                      enumerate(("host_tests/portable", "lib", "tools/vm", "boards/common"))]
    assert code.endswith("vm_test_runner.main(['test_coap'], %r))" % str(ROOT / "host_tests" / "portable"))
