# Puts lib/ and the CPython shim on the path, as the host runner does.
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "lib"), str(ROOT / "boards" / "host")]

import cpython_shim  # noqa: E402

cpython_shim.install()

# In CI (CI=true) the property tests draw the same examples every run, so a green main stays
# green; on a developer's machine they draw new ones each run and keep failures in .hypothesis/.
import os  # noqa: E402

from hypothesis import settings  # noqa: E402

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
