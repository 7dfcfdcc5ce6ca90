# make bundle: the application bundle (firmware/BUNDLE.md) that a Pico W or the virtual board
# takes as a Firmware Update (object 5) package: the client's own files, compiled as make
# deploy compiles them, in one file with a SHA-256 at the end.
#
#   python3 tools/bundle.py [--board rp2|vboard|esp32] [--version V] [--out FILE]
#
# What goes in (paths as on the board, without the leading /):
#   lib/lwm2m/*.py           -> lib/lwm2m/*.mpy
#   firmware/*.py            -> *.mpy           except boot.py (the updater, never replaced)
#                                               and main.py, kept as source
#   boards/BOARD/board.py    -> board.mpy
#   boards/BOARD/*.py        -> *.mpy           the board's other modules, not manifest.py
#   boards/common/*.py       -> *.mpy           except bundle_swap.py (the updater)
#   firmware/objects/*.json  -> objects/*.json
# config.json is not in it: a board keeps its own settings.
import argparse
import hashlib
import json
import re
import struct
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from deploy import BOARDS, DeployError, _mpy_cross  # noqa: E402  (the same compilation)

ROOT = Path(__file__).resolve().parent.parent
MAGIC = b"LWMB"
FORMAT = 1
NAME = "micropython-lwm2m"
UPDATER = ("boot.py", "bundle_swap.py")  # installed by make deploy only: they do the swap
VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,31}$")  # fits /5/0/7 and a file name


class BundleError(Exception):
    pass


def default_version(root=ROOT):
    # `git describe --always --dirty`: the last tag and commits since, or the commit.
    try:
        proc = subprocess.run(["git", "describe", "--always", "--dirty", "--tags"], cwd=root,
                              capture_output=True, text=True)
    except OSError:
        proc = None
    if proc is None or proc.returncode != 0 or not proc.stdout.strip():
        raise BundleError("cannot derive a version from git (not a git checkout?): give one with VERSION=x")
    return proc.stdout.strip()


def collect(board, root=ROOT, out=None):
    # Compiles the app for board into out; returns [(path in the bundle, local file)].
    if board not in BOARDS:
        raise BundleError("unknown BOARD %r: expected one of %s" % (board, ", ".join(BOARDS)))
    board_py = root / "boards" / board / "board.py"
    main_py = root / "firmware" / "main.py"
    for needed in (board_py, main_py):
        if not needed.is_file():
            raise BundleError("%s is missing" % needed)
    out = Path(out) if out else root / "build" / "bundle" / board
    entries = []
    lib = root / "lib"
    for src in sorted(lib.rglob("*.py")):
        rel = src.relative_to(lib)
        if rel.parts[0] != "lwm2m":
            raise BundleError("%s: only lib/lwm2m is part of a bundle (see firmware/BUNDLE.md)" % src)
        name = rel.with_suffix(".mpy").as_posix()
        _mpy_cross(lib, rel.as_posix(), out / "lib" / name)
        entries.append(("lib/" + name, out / "lib" / name))
    for src in sorted((root / "firmware").glob("*.py")):
        if src.name in UPDATER or src.name == "main.py":
            continue
        _mpy_cross(src.parent, src.name, out / (src.stem + ".mpy"))
        entries.append((src.stem + ".mpy", out / (src.stem + ".mpy")))
    _mpy_cross(board_py.parent, "board.py", out / "board.mpy")
    entries.append(("board.mpy", out / "board.mpy"))
    others = [src for src in sorted(board_py.parent.glob("*.py")) if src.name not in ("board.py", "manifest.py")]
    for src in others + sorted((root / "boards" / "common").glob("*.py")):
        if src.name in UPDATER:
            continue
        _mpy_cross(src.parent, src.name, out / (src.stem + ".mpy"))
        entries.append((src.stem + ".mpy", out / (src.stem + ".mpy")))
    for src in sorted((root / "firmware" / "objects").glob("*.json")):
        try:
            json.loads(src.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise BundleError("%s: not valid JSON: %s" % (src, exc))
        entries.append(("objects/" + src.name, src))
    entries.append(("main.py", main_py))
    return entries


def pack(entries, board, version, name=NAME):
    # The bundle's bytes: magic, format, header length (u32 LE), the header (JSON), the
    # files in the header's order, then the SHA-256 of all that.
    files = [(path, Path(local).read_bytes()) for path, local in entries]
    header = json.dumps({"name": name, "version": version, "board": board,
                         "files": [[path, len(data)] for path, data in files]},
                        separators=(",", ":")).encode()
    body = MAGIC + bytes([FORMAT]) + struct.pack("<I", len(header)) + header + b"".join(data for _p, data in files)
    return body + hashlib.sha256(body).digest()


def build(board="rp2", version=None, out=None, root=ROOT, work=None):
    # Writes the bundle (compiling in work, default build/bundle/BOARD); returns (path, size,
    # version).
    if board not in BOARDS:
        raise BundleError("unknown BOARD %r: expected one of %s" % (board, ", ".join(BOARDS)))
    version = version if version is not None else default_version(root)
    if not VERSION_RE.match(version):
        raise BundleError("VERSION %r: expected 1 to 32 letters, digits and . _ + - (starting with a letter or digit)"
                          % version)
    out = Path(out) if out else root / "build" / ("bundle-%s-%s.bin" % (board, version))
    if out.is_dir():
        raise BundleError("OUT %s is a folder: name the file to write" % out)
    try:
        entries = collect(board, root, work)
    except DeployError as exc:  # mpy-cross missing or refusing a module
        raise BundleError(str(exc))
    data = pack(entries, board, version)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    return out, len(data), version


def main(argv=None):
    parser = argparse.ArgumentParser(description="Build an application bundle for a firmware update (firmware/BUNDLE.md).")
    parser.add_argument("--board", default="rp2", help="board module: %s (default rp2)" % " or ".join(BOARDS))
    parser.add_argument("--version", help="the bundle's version (default: git describe --always --dirty --tags)")
    parser.add_argument("--out", help="the file to write (default build/bundle-BOARD-VERSION.bin)")
    args = parser.parse_args(argv)
    try:
        path, size, version = build(args.board, args.version or None, args.out)
    except BundleError as exc:
        print("bundle: %s" % exc, file=sys.stderr)
        return 1
    try:
        shown = path.resolve().relative_to(Path.cwd())
    except ValueError:
        shown = path
    print("bundle: %s (%d bytes, version %s, BOARD=%s)" % (shown, size, version, args.board))
    return 0


if __name__ == "__main__":
    sys.exit(main())
