# Persistence of what servers set: saves that survive a power cut at any step on each
# filesystem, corrupt files reported, values restored.
import json
import os

from check import raises
from fakefs import MODES, FakeFS, PowerCut
from fakes import PUT, registered
from lwm2m import store
from lwm2m.store import Persist, StoreError

FOLDER = "/tmp"
PATH = "/flash/lwm2m.json"  # on the fake filesystem
TMP = PATH + ".tmp"
OLD = {"1/0/1": 60, "3/0/14": "+01:00"}
NEW = {"1/0/1": 86400, "1/0/6": True, "3/0/14": "+05:30"}
THIRD = {}  # falsy: load() must still tell it from None


def _fresh(name):
    path = "%s/%s" % (FOLDER, name)
    for stale in (path, path + ".tmp"):
        try:
            os.remove(stale)
        except OSError:
            pass
    return path


def _disk(mode, doc):
    # A disk on which doc was saved (None: an empty disk).
    fs = FakeFS(mode)
    if doc is not None:
        fs.run(store, store.save, PATH, doc)
    return fs.disk


def _load(mode, disk):
    # What load() finds after a reboot.
    return FakeFS(mode, dict(disk)).run(store, store.load, PATH)


def _failed_saves(mode, disk, doc, error=PowerCut):
    # What save(PATH, doc) leaves when it fails at each of its steps in turn: (step number,
    # step, disk, what it raised: None when it returned, as it may from an OSError).
    fs = FakeFS(mode, dict(disk))
    fs.run(store, store.save, PATH, doc)
    assert _load(mode, fs.disk) == doc and TMP not in fs.disk, (mode, fs.disk)
    out = []
    for k in range(1, len(fs.steps) + 1):
        failing = FakeFS(mode, dict(disk), k, error)
        raised = None
        try:
            failing.run(store, store.save, PATH, doc)
        except (error, StoreError) as exc:  # StoreError: tmp did not read back
            raised = exc
        out.append((k, failing.steps[k - 1], failing.disk, raised))
    return out


def _cut_twice(mode, start):
    # Cuts a save of NEW at every step, then from each disk that leaves a save of THIRD at
    # every step; after each cut load() must find the document before that save or its own.
    old = _load(mode, start)
    seen = 0
    for k, step, disk, raised in _failed_saves(mode, start, NEW):
        assert isinstance(raised, PowerCut), (mode, k, step, raised)
        first = _load(mode, disk)
        assert first in (old, NEW), (mode, k, step, first, disk)
        for k2, step2, disk2, raised in _failed_saves(mode, disk, THIRD):
            assert isinstance(raised, PowerCut), (mode, k, step, k2, step2, raised)
            second = _load(mode, disk2)
            assert second in (first, THIRD), (mode, k, step, k2, step2, second, disk2)
            seen += 1
    assert seen >= 50, seen


def test_save_replaces_and_load_reads_back():
    path = _fresh("lwm2m-store-a.json")
    assert store.load(path) is None
    store.save(path, {"1/0/1": 60})
    store.save(path, {"1/0/1": 600})
    assert store.load(path) == {"1/0/1": 600}
    assert "lwm2m-store-a.json.tmp" not in os.listdir(FOLDER)


def test_corrupt_file_is_reported_with_its_path():
    path = _fresh("lwm2m-store-b.json")
    for text in ('{"1/0/1": 6', "[1, 2]"):
        with open(path, "w") as f:
            f.write(text)
        err = raises(StoreError, store.load, path)
        assert str(err).startswith(path + ": corrupt")


def test_a_cut_at_any_step_leaves_the_old_document_or_the_new():
    for mode in MODES:
        _cut_twice(mode, _disk(mode, OLD))


def test_a_cut_first_save_leaves_nothing_or_the_new_document():
    for mode in MODES:
        _cut_twice(mode, _disk(mode, None))


def test_a_cut_beside_a_stale_partial_tmp_leaves_the_old_document_or_the_new():
    for mode in MODES:
        start = _disk(mode, OLD)
        start[TMP] = '{"1/0/1": 6'
        _cut_twice(mode, start)


def test_a_failing_step_leaves_the_old_document_or_the_new_and_the_next_save_works():
    for mode in MODES:
        for k, step, disk, raised in _failed_saves(mode, _disk(mode, OLD), NEW, OSError):
            got = _load(mode, disk)
            assert got in ((OLD, NEW) if raised else (NEW,)), (mode, k, step, raised, got, disk)
            fs = FakeFS(mode, disk)
            fs.run(store, store.save, PATH, THIRD)
            assert _load(mode, disk) == THIRD and TMP not in disk, (mode, k, step, disk)


def test_a_rename_fat_refuses_still_ends_with_the_new_document_and_no_tmp():
    fs = FakeFS("fat", _disk("fat", OLD))
    fs.run(store, store.save, PATH, NEW)
    assert "remove " + PATH in fs.steps
    assert _load("fat", fs.disk) == NEW
    assert fs.os.listdir("/flash") == ["lwm2m.json"]


def test_what_is_written_is_synced_before_the_rename_and_the_rename_after():
    for mode in MODES:
        fs = FakeFS(mode, _disk(mode, OLD))
        fs.run(store, store.save, PATH, NEW)
        steps = fs.steps
        written = steps.index("close " + TMP)  # the first close of tmp is the write's
        renamed = [i for i, step in enumerate(steps) if step.startswith("rename")][-1]
        assert "sync" in steps[written:renamed] and steps[-1] == "sync", (mode, steps)


def test_a_tmp_that_does_not_read_back_leaves_the_file_alone():
    fs = FakeFS("fat-micropython", _disk("fat-micropython", OLD))
    real_open = fs.open

    def lossy_open(path, mode="r"):
        # A card that drops the end of what is written, without an error.
        f = real_open(path, mode)
        if mode == "w":
            write = f.write
            f.write = lambda text: write(text[:-1])
        return f

    fs.open = lossy_open
    err = raises(StoreError, fs.run, store, store.save, PATH, NEW)
    assert str(err).startswith(PATH + ": not saved"), err
    assert not [step for step in fs.steps if step.startswith("r")], fs.steps  # no remove, no rename
    assert _load("fat-micropython", fs.disk) == OLD


def test_a_port_without_os_sync_saves_too():
    fs = FakeFS("fat-micropython", _disk("posix", OLD), sync=False)
    fs.run(store, store.save, PATH, NEW)
    assert _load("posix", fs.disk) == NEW and "sync" not in fs.steps


def test_a_stale_partial_tmp_is_ignored_and_replaced():
    fs = FakeFS("posix", _disk("posix", OLD))
    fs.disk[TMP] = '{"1/0/1": 6'
    assert fs.run(store, store.load, PATH) == OLD
    fs.run(store, store.save, PATH, NEW)
    assert _load("posix", fs.disk) == NEW and TMP not in fs.disk


def test_a_complete_tmp_is_read_when_the_file_is_missing_or_corrupt_and_finished_by_save():
    for text in (None, "", '{"1/0/1": 8', "[1, 2]"):
        fs = FakeFS("fat", {TMP: json.dumps(NEW)})
        if text is not None:
            fs.disk[PATH] = text
        assert fs.run(store, store.load, PATH) == NEW
        # The next save must put tmp, the only good copy, in place before writing tmp.
        fs.run(store, store.save, PATH, THIRD)
        steps = fs.steps
        assert steps.index("rename %s %s" % (TMP, PATH)) < steps.index("open %s w" % TMP)
        assert _load("fat", fs.disk) == THIRD and TMP not in fs.disk


def test_a_corrupt_file_without_a_complete_tmp_is_reported_with_its_path():
    for tmp in (None, "", '{"1/0/1": 8', "7"):
        fs = FakeFS("littlefs", {PATH: '{"1/0/1": 6'})
        if tmp is not None:
            fs.disk[TMP] = tmp
        err = raises(StoreError, fs.run, store, store.load, PATH)
        assert str(err).startswith(PATH + ": corrupt"), err


def test_nothing_saved_is_none_even_beside_a_partial_tmp():
    assert _load("posix", {}) is None
    assert _load("posix", {TMP: '{"1/0/1": 6'}) is None


def test_values_a_server_writes_survive_a_restart():
    path = _fresh("lwm2m-store-c.json")
    client, peer, _reg = registered()
    persist = Persist(client.model, path, (1, 3), client.defer)
    client.model.watchers.append(persist.changed)
    assert peer.request(PUT, "/1/0/1", 100, b"600", cf=0).code == 0x44
    assert peer.request(PUT, "/3/0/14", 200, b"+05:30", cf=0).code == 0x44
    saved = store.load(path)
    assert saved["1/0/1"] == 600 and saved["3/0/14"] == "+05:30"
    assert "3/0/0" not in saved  # read-only values are not the servers' to set
    again, _peer = registered()[:2]
    restored = Persist(again.model, path, (1, 3), again.defer).restore()
    assert restored == (len(saved), [])
    assert again.model.instance(1, 0).get(1) == 600


def test_restore_refuses_bad_keys():
    path = _fresh("lwm2m-store-d.json")
    store.save(path, {"one/0/1": 5})
    client = registered()[0]
    raises(StoreError, Persist(client.model, path, (1,), client.defer).restore)


def test_restore_refuses_values_the_resources_would_not_take():
    path = _fresh("lwm2m-store-e.json")
    store.save(path, {"1/0/1": 0, "1/0/2": 60, "1/0/7": "X", "3/0/14": 5, "1/0/3": True, "1/0/5": 4294967296})
    client = registered()[0]
    restored, refused = Persist(client.model, path, (1, 3), client.defer).restore()
    assert restored == 1 and sorted(refused) == ["1/0/1", "1/0/3", "1/0/5", "1/0/7", "3/0/14"]
    server = client.model.instance(1, 0)
    assert (server.get(1), server.get(2), server.get(3), server.get(7)) == (300, 60, 0, "U")
