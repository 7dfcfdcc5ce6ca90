# The swap of an application-bundle update at boot (boards/common/bundle_swap.py): a power
# cut at any step leaves, once the next boot has run, exactly the old app or exactly the new
# one; an unconfirmed or rolled-back app gives way to the old one; confirm keeps the new.
import json
import os

from fakedirs import TreeFS
from fakefs import MODES, PowerCut

try:
    import bundle_swap
except ImportError:  # under pytest; tools/mpvm.mjs puts boards/common on the VM's path
    import sys

    sys.path.append(__file__.replace("\\", "/").rsplit("/", 3)[0] + "/boards/common")
    import bundle_swap

ROOT = "/flash"
UPDATE = ROOT + "/update"
VERSION = "2.0"
# Beside the app, untouched by any swap: the updater, settings, state, another package.
OTHER = {"boot.py": "boot", "bundle_swap.mpy": "swap", "config.json": "{}", "lib/other/x.mpy": "x",
         "state/servers.json": "{}"}
OLD = {"lib/lwm2m/a.mpy": "old a", "lib/lwm2m/b.mpy": "old b", "objects/3.json": "old 3",
       "main.py": "old main", "board.mpy": "old board", "gone.mpy": "only in the old"}
NEW = {"lib/lwm2m/a.mpy": "new a", "lib/lwm2m/c.mpy": "new c", "objects/3.json": "new 3",
       "objects/4.json": "new 4", "main.py": "new main", "board.mpy": "new board", "added.mpy": "only in the new"}
THIRD = {"lib/lwm2m/a.mpy": "third a", "objects/3.json": "third 3", "main.py": "third main"}


def _put(disk, base, files):
    for rel, text in files.items():
        path = base + "/" + rel
        folder = path.rsplit("/", 1)[0]
        while folder and folder not in disk:
            disk[folder] = None
            folder = folder.rsplit("/", 1)[0]
        disk[path] = text


def _pending(disk, files, version=VERSION):
    # What the sink leaves after finish() and apply(): the unpacked app and two records.
    _put(disk, UPDATE + "/new", files)
    record = json.dumps({"name": "micropython-lwm2m", "version": version})
    _put(disk, UPDATE, {"ready": record, "apply": record})
    return disk


def _start():
    disk = {ROOT: None}
    _put(disk, ROOT, OTHER)
    _put(disk, ROOT, OLD)
    return _pending(disk, NEW)


def _app(disk, base=ROOT):
    # The app's files under base, by the rule of bundle_swap.py: lib/lwm2m, objects, main.py
    # and the top-level .mpy but the updater.
    out = {}
    for path, text in disk.items():
        if text is None or not path.startswith(base + "/"):
            continue
        rel = path[len(base) + 1 :]
        top = "/" not in rel and (rel == "main.py" or (rel.endswith(".mpy") and rel != "bundle_swap.mpy"))
        if top or rel.startswith("lib/lwm2m/") or rel.startswith("objects/"):
            out[rel] = text
    return out


def _others(disk):
    return {rel: disk.get(ROOT + "/" + rel) for rel in OTHER}


def _names(disk):
    return TreeFS("posix", disk).children(UPDATE)


def _run(disk, func, *args, mode="littlefs", fail_at=0):
    # func(*args) on a copy of disk, cut at step fail_at (0: never); (disk after, steps, cut?).
    fs = TreeFS(mode, dict(disk), fail_at)
    try:
        fs.run(bundle_swap, func, *args)
    except PowerCut:
        return fs.disk, fs.steps, True
    return fs.disk, fs.steps, False


def _boot(disk, mode="littlefs", fail_at=0):
    return _run(disk, bundle_swap.boot, ROOT, lambda line: None, mode=mode, fail_at=fail_at)


def _outcome(disk):
    return TreeFS("posix", dict(disk)).run(bundle_swap, bundle_swap.outcome, UPDATE)


def _settled(disk, context):
    # After a boot that ran to its end: "old" or "new", checked to be whole and consistent.
    app = _app(disk)
    assert app in (OLD, NEW), (context, app)
    assert _others(disk) == OTHER, (context, _others(disk))
    names = _names(disk)
    assert "journal" not in names and "apply" not in names, (context, names)
    outcome = _outcome(disk)
    if app == NEW:
        assert outcome == (1, VERSION) and "trial" in names, (context, outcome, names)
        return "new"
    assert outcome == (8, VERSION) and "trial" not in names, (context, outcome, names)
    return "old"


def test_the_swap_puts_the_new_app_in_place_and_keeps_the_old_one():
    disk, steps, cut = _boot(_start())
    assert not cut
    assert _app(disk) == NEW and _app(disk, UPDATE + "/old") == OLD and _others(disk) == OTHER
    assert _names(disk) == ["booted", "old", "trial"]
    assert _outcome(disk) == (1, VERSION)
    # The journal is whole before the first file moves.
    journal = steps.index("rename %s/journal.tmp %s/journal" % (UPDATE, UPDATE))
    first_move = min(i for i, step in enumerate(steps) if step.startswith("rename " + ROOT + "/lib/lwm2m"))
    assert journal < first_move, steps


def test_a_cut_at_every_step_of_the_swap_leaves_the_old_app_or_the_new_one():
    for mode in MODES:
        total = len(_boot(_start(), mode)[1])
        assert total >= 20, total
        seen = set()
        for k in range(1, total + 1):
            cut_disk, steps, cut = _boot(_start(), mode, k)
            assert cut, (mode, k)
            disk = _boot(cut_disk, mode)[0]  # the next boot
            seen.add(_settled(disk, (mode, k, steps[-1])))
        # A cut before the new app was started installs it; one after has used its trial.
        assert seen == {"old", "new"}, (mode, seen)


def test_a_cut_in_the_boot_after_a_cut_still_leaves_one_app_whole():
    for mode in ("littlefs", "fat"):
        total = len(_boot(_start(), mode)[1])
        runs = 0
        for k in range(1, total + 1):
            first = _boot(_start(), mode, k)[0]
            again = len(_boot(first, mode)[1])
            for k2 in range(1, again + 1):
                second, _steps, cut = _boot(first, mode, k2)
                assert cut
                _settled(_boot(second, mode)[0], (mode, k, k2))
                runs += 1
        assert runs >= 200, runs


def test_an_app_not_confirmed_before_the_next_reset_is_rolled_back():
    installed = _boot(_start())[0]
    disk = _boot(installed)[0]
    assert _app(disk) == OLD and _others(disk) == OTHER
    assert _outcome(disk) == (8, VERSION)
    assert _names(disk) == ["result"]  # nothing of the failed app is kept


def test_a_cut_at_every_step_of_a_rollback_still_ends_with_the_old_app():
    installed = _boot(_start())[0]
    total = len(_boot(installed)[1])
    for k in range(1, total + 1):
        cut_disk, _steps, cut = _boot(installed, fail_at=k)
        assert cut
        assert _settled(_boot(cut_disk)[0], k) == "old"


def test_rollback_asks_for_the_old_app_even_before_the_trial_was_counted():
    # A trial not yet started (boot's "booted" record missing, as after a boot in safe mode).
    installed = _boot(_start())[0]
    del installed[UPDATE + "/booted"]
    assert _app(_boot(installed)[0]) == NEW  # without rollback() it gets its boot
    asked = _run(installed, bundle_swap.rollback, UPDATE)[0]
    assert UPDATE + "/rollback" in asked
    disk = _boot(asked)[0]
    assert _app(disk) == OLD and _outcome(disk) == (8, VERSION)


def test_confirm_keeps_the_new_app_and_frees_the_old_one():
    installed = _boot(_start())[0]
    confirmed = _run(installed, bundle_swap.confirm, UPDATE)[0]
    disk = _boot(confirmed)[0]
    assert _app(disk) == NEW and _others(disk) == OTHER
    assert _outcome(disk) is None and _names(disk) == []


def test_a_cut_at_every_step_of_confirm_keeps_the_new_app_once_the_trial_record_is_gone():
    installed = _boot(_start())[0]
    total = len(_run(installed, bundle_swap.confirm, UPDATE)[1])
    seen = set()
    for k in range(1, total + 1):
        cut_disk, steps, cut = _run(installed, bundle_swap.confirm, UPDATE, fail_at=k)
        assert cut
        disk = _boot(cut_disk)[0]
        app = _app(disk)
        assert app in (OLD, NEW), (k, app)
        # Removing the trial record is the decision: before it the reset rolls back.
        assert (app == NEW) == (UPDATE + "/trial" not in cut_disk), (k, steps)
        assert _outcome(disk) == (None if app == NEW else (8, VERSION)), k
        seen.add(app == NEW)
    assert seen == {True, False}


def test_a_second_update_replaces_the_first_one_kept():
    confirmed = _run(_boot(_start())[0], bundle_swap.confirm, UPDATE)[0]
    disk = _boot(_pending(confirmed, THIRD, "3.0"))[0]
    assert _app(disk) == THIRD and _app(disk, UPDATE + "/old") == NEW
    assert _outcome(disk) == (1, "3.0")


def test_an_update_after_a_rollback_reports_its_own_outcome_only():
    rolled_back = _boot(_boot(_start())[0])[0]
    assert _outcome(rolled_back) == (8, VERSION)
    installed = _boot(_pending(rolled_back, THIRD, "3.0"))[0]
    assert _app(installed) == THIRD and _app(installed, UPDATE + "/old") == OLD
    assert _outcome(installed) == (1, "3.0")
    assert _outcome(_run(installed, bundle_swap.confirm, UPDATE)[0]) is None


def test_an_apply_without_a_complete_new_app_changes_nothing():
    disk = _start()
    del disk[UPDATE + "/new/main.py"]
    after = _boot(disk)[0]
    assert _app(after) == OLD and UPDATE + "/apply" not in after
    assert _outcome(after) is None


def test_a_boot_without_an_update_changes_nothing():
    disk = {ROOT: None}
    _put(disk, ROOT, OTHER)
    _put(disk, ROOT, OLD)
    after, steps, _cut = _boot(disk)
    assert after == disk and steps == []


# On the real filesystem (the host's or the VM's): folders really move with os.rename.
FOLDER = "/tmp/lwm2m-bundle-swap"


def _write_tree(base, files):
    for rel, text in files.items():
        path = base + "/" + rel
        bundle_swap.mkdirs(path.rsplit("/", 1)[0])
        with open(path, "w") as f:
            f.write(text)


def _read_app(base):
    out = {}
    for unit in bundle_swap.units(base):
        path = base + "/" + unit
        if os.stat(path)[0] & 0x4000:
            for name in os.listdir(path):
                with open(path + "/" + name) as f:
                    out[unit + "/" + name] = f.read()
        else:
            with open(path) as f:
                out[unit] = f.read()
    return out


def test_on_a_real_filesystem_the_swap_and_the_rollback_move_whole_folders():
    bundle_swap.discard(FOLDER)
    _write_tree(FOLDER, OTHER)
    _write_tree(FOLDER, OLD)
    _write_tree(FOLDER + "/update/new", NEW)
    bundle_swap.write(FOLDER + "/update/apply", {"version": VERSION})
    lines = []
    bundle_swap.boot(FOLDER, lines.append)
    assert _read_app(FOLDER) == NEW and _read_app(FOLDER + "/update/old") == OLD
    assert bundle_swap.outcome(FOLDER + "/update") == (1, VERSION)
    assert "installed" in lines[-1], lines
    bundle_swap.boot(FOLDER, lines.append)  # not confirmed
    assert _read_app(FOLDER) == OLD and sorted(os.listdir(FOLDER + "/update")) == ["result"]
    with open(FOLDER + "/lib/other/x.mpy") as f:
        assert f.read() == "x"
    bundle_swap.discard(FOLDER)
    assert not bundle_swap.exists(FOLDER)
