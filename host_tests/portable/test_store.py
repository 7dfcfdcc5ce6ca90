# Persistence of what servers set: atomic files, corrupt files reported, values restored.
import os

from check import raises
from fakes import PUT, registered
from lwm2m import store
from lwm2m.store import Persist, StoreError

FOLDER = "/tmp"


def _fresh(name):
    path = "%s/%s" % (FOLDER, name)
    for stale in (path, path + ".tmp"):
        try:
            os.remove(stale)
        except OSError:
            pass
    return path


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
    assert restored == len(saved)
    assert again.model.instance(1, 0).get(1) == 600


def test_restore_refuses_bad_keys():
    path = _fresh("lwm2m-store-d.json")
    store.save(path, {"one/0/1": 5})
    client = registered()[0]
    raises(StoreError, Persist(client.model, path, (1,), client.defer).restore)
