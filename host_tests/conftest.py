# Puts lib/ and the CPython shim on the path, as the host runner does.
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "lib"), str(ROOT / "boards" / "host")]

import cpython_shim  # noqa: E402

cpython_shim.install()
