# Puts lib/, the CPython shim and the shared board modules (the host board's firmware
# update sink is the bundle sink of boards/common) on the path, as the host runner does.
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "lib"), str(ROOT / "boards" / "host"), str(ROOT / "boards" / "common")]

import cpython_shim  # noqa: E402

cpython_shim.install()

# In CI (CI=true) the property tests draw the same examples every run, so a green main stays
# green; on a developer's machine they draw new ones each run and keep failures in .hypothesis/.
import os  # noqa: E402

from hypothesis import settings  # noqa: E402

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


import pytest  # noqa: E402


@pytest.fixture
def hosts():
    # The test's tools/host_run.py processes (peers.host.HostRuns), all closed after it.
    from peers.host import HostRuns

    runs = HostRuns()
    yield runs
    runs.close_all()
