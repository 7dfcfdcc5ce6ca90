# The swap of an application-bundle update (firmware/BUNDLE.md), run by boot.py before
# main.py when /update holds a marker, and the trial bookkeeping the bundle sink
# (bundle_sink.py) shares with it. It is the updater, like boot.py: never part of a bundle and
# never moved, and it imports nothing of the app (/lib may be half moved when it runs).
#
# The app is a few units, each moved with one rename: the folders lib/lwm2m and objects,
# main.py and every top-level .mpy but this module. A swap is a journal of renames written
# whole before the first one (a cut before leaves nothing moved); each rename is done only
# when its source is there and its target is not, so running the journal again after a cut
# finishes it. That needs an atomic rename, which littlefs (rp2) and POSIX (vboard) have;
# no rename here ever replaces a file, so FAT's refusal to rename over one does not matter.
#
# Files in the update folder U (/update):
#   new/      the unpacked bundle (the sink)          ready     it is complete (the sink)
#   apply     swap new/ in at the next reset          journal   a swap under way
#   old/      the app before the update, kept while the new one is on trial
#   trial     the new app runs, waiting for confirm() booted    it has been started once
#   rollback  rollback() asked for the old app        result    the last update was undone
# The rule: the new app has the boot in which it is installed to confirm. A reset before
# confirm() (rollback(), the watchdog, a crash, a power cut) brings the old app back.
import json
import os

_APP_DIRS = ("lib/lwm2m", "objects")
_UPDATER = "bundle_swap.mpy"
_ROLLED_BACK = 8  # Update Result (/5/0/5) "firmware update failed"


def join(base, name):
    return base.rstrip("/") + "/" + name


def _parent(path):
    return path.rsplit("/", 1)[0] or "/"


def exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _is_dir(path):
    return os.stat(path)[0] & 0x4000


def _sync():
    sync = getattr(os, "sync", None)
    if sync:
        sync()


def mkdirs(path):
    # path and its missing parents.
    if path == "/" or exists(path):
        return
    mkdirs(_parent(path))
    os.mkdir(path)


def discard(path):
    # Removes a file or a whole folder; nothing when it is not there.
    if not exists(path):
        return
    if _is_dir(path):
        for name in os.listdir(path):
            discard(join(path, name))
        os.rmdir(path)
    else:
        os.remove(path)


def read(path):
    # The JSON record at path, or None when it is missing or unreadable.
    try:
        with open(path) as f:
            return json.loads(f.read())
    except (OSError, ValueError):
        return None


def write(path, doc):
    # A record that appears whole or not at all: written to path.tmp, then renamed to a path
    # that is not there (so the rename replaces nothing).
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(json.dumps(doc))
    _sync()
    discard(path)
    os.rename(tmp, path)
    _sync()


def units(base):
    # The app's units present under base (the root, new/ or old/), as paths relative to it.
    found = [d for d in _APP_DIRS if exists(join(base, d))]
    for name in sorted(os.listdir(base)):
        if name == "main.py" or (name.endswith(".mpy") and name != _UPDATER):
            found.append(name)
    return found


def _moves(root, src, dst):
    # Renames that empty the root of the app into dst, then fill it from src.
    return ([[join(root, u), join(dst, u)] for u in units(root)]
            + [[join(src, u), join(root, u)] for u in units(src)])


def _run(root, folder, journal, log):
    # Does what the journal says; safe to run again from any point.
    for src, dst in journal["moves"]:
        if exists(src) and not exists(dst):
            mkdirs(_parent(dst))
            os.rename(src, dst)
    _sync()
    version = journal["version"]
    if journal["op"] == "install":
        write(join(folder, "trial"), {"version": version})
        discard(join(folder, "apply"))  # before the journal: without both nothing restarts
        discard(join(folder, "ready"))
        discard(join(folder, "journal"))
        discard(join(folder, "new"))
        log("update: %s installed; it runs on trial until it is confirmed" % version)
    else:
        write(join(folder, "result"), {"result": _ROLLED_BACK, "version": version})
        discard(join(folder, "trial"))  # the old app is back for good from here
        discard(join(folder, "booted"))
        discard(join(folder, "rollback"))
        discard(join(folder, "journal"))
        discard(join(folder, "bad"))
        discard(join(folder, "old"))
        log("update: %s rolled back; the app from before it runs again" % version)


def _install(root, folder, log):
    marker = read(join(folder, "apply"))
    new = join(folder, "new")
    if marker is None or not exists(join(new, "main.py")):
        log("update: nothing complete to install in %s; the app stays" % new)
        discard(join(folder, "apply"))
        return False
    # Left from an update confirmed or undone before: only now, with no journal, may they go.
    for name in ("old", "bad", "booted", "rollback", "result"):
        discard(join(folder, name))
    version = marker.get("version", "?")
    log("update: installing %s (the app before it is kept in %s)" % (version, join(folder, "old")))
    journal = {"op": "install", "version": version, "moves": _moves(root, new, join(folder, "old"))}
    write(join(folder, "journal"), journal)
    _run(root, folder, journal, log)
    return True


def _restore(root, folder, log):
    old = join(folder, "old")
    version = (read(join(folder, "trial")) or {}).get("version", "?")
    if not exists(join(old, "main.py")):
        log("update: %s was not confirmed but %s holds no app to go back to; keeping it" % (version, old))
        confirm(folder)
        return
    log("update: %s was not confirmed; rolling back" % version)
    discard(join(folder, "bad"))
    journal = {"op": "restore", "version": version, "moves": _moves(root, old, join(folder, "bad"))}
    write(join(folder, "journal"), journal)
    _run(root, folder, journal, log)


def boot(root="/", log=print):
    # At a reset: finish a swap a power cut interrupted, then roll back an unconfirmed trial
    # or start one, then install what apply() marked.
    folder = join(root, "update")
    journal = join(folder, "journal")
    if exists(journal):
        doc = read(journal)
        if doc is None:
            raise OSError("%s: unreadable: the swap cannot be finished" % journal)
        log("update: finishing the interrupted %s of %s" % (doc["op"], doc["version"]))
        _run(root, folder, doc, log)
    trial = join(folder, "trial")
    if exists(trial):
        if exists(join(folder, "booted")) or exists(join(folder, "rollback")):
            _restore(root, folder, log)
        else:
            write(join(folder, "booted"), {})
    elif exists(join(folder, "apply")) and _install(root, folder, log):
        write(join(folder, "booted"), {})  # this boot runs the new app: its trial


# What the sink reports and asks (lib/lwm2m/firmware.py), on the update folder.

def outcome(folder):
    # (1, version) while a new app runs on trial, (8, version) after one was rolled back
    # (until the next update begins), else None.
    trial = read(join(folder, "trial"))
    if trial is not None:
        return 1, trial["version"]
    result = read(join(folder, "result"))
    return (result["result"], result["version"]) if result else None


def confirm(folder):
    # The trial app stays: removing trial is the decision, the rest is clearing up.
    discard(join(folder, "trial"))
    discard(join(folder, "booted"))
    discard(join(folder, "rollback"))
    discard(join(folder, "old"))


def rollback(folder):
    # The next boot puts the old app back (the caller resets); nothing without a trial.
    if exists(join(folder, "trial")):
        write(join(folder, "rollback"), {})
