# Persistence of what servers set: the writable values of chosen objects (Server, Device),
# kept in one JSON file. A power cut at any step of a save leaves the old document or the
# new one, on POSIX, littlefs and FAT alike: the new one goes to path.tmp and is synced and
# read back whole before path is touched, and load() falls back to a complete path.tmp
# when path is missing or corrupt (a cut inside the replace, where FAT has removed path).
import json
import os


class StoreError(ValueError):
    pass


def _read(path):
    # (text, doc) of the file at path: text None when there is no file; doc None unless the
    # text is complete, valid JSON that is an object (a cut json.dumps of a dict is not).
    try:
        f = open(path)
    except OSError:
        return None, None
    text = ""
    try:
        with f:
            text = f.read()
        doc = json.loads(text)
    except ValueError:  # not JSON, or not even UTF-8 (a cut inside a character)
        return text, None
    return text, doc if isinstance(doc, dict) else None


def _sync():
    # Puts what was written on the disk where the port can, before anything depends on it.
    sync = getattr(os, "sync", None)
    if sync:
        sync()


def _replace(tmp, path):
    # Only called with a complete tmp, so path may go: load() reads tmp until the rename.
    try:
        os.rename(tmp, path)
    except OSError:
        # FAT refuses to rename over a file (MicroPython's removes it inside the call).
        os.remove(path)
        os.rename(tmp, path)
    _sync()


def save(path, doc):
    tmp = path + ".tmp"
    # A save cut inside the replace leaves the only complete copy in tmp: finish that
    # replace first, so that writing tmp below never overwrites the only good document.
    if _read(path)[1] is None and _read(tmp)[1] is not None:
        _replace(tmp, path)
    text = json.dumps(doc)
    with open(tmp, "w") as f:
        f.write(text)
    _sync()
    back, parsed = _read(tmp)
    if back != text or parsed is None:  # also what would not load (MicroPython's nan)
        raise StoreError("%s: not saved: %s does not read back as written" % (path, tmp))
    _replace(tmp, path)


def load(path):
    # The saved document: path's, or when path is missing or corrupt, path.tmp's if that is
    # complete; None when there is neither; StoreError when path is corrupt and tmp is not
    # complete (a partial tmp beside a good path is a cut save's and is ignored).
    text, doc = _read(path)
    if doc is None:
        doc = _read(path + ".tmp")[1]
        if doc is None and text is not None:
            raise StoreError("%s: corrupt: not a JSON object, and no complete .tmp" % path)
    return doc


class Persist:
    # Saves the writable, stored (not hook-read) single values of `oids` to `path` after a
    # server changes them, and puts them back at start-up.
    def __init__(self, model, path, oids, defer):
        self.model = model
        self.path = path
        self.oids = oids
        self.defer = defer  # defer(action): run action after the current answers are sent
        self.dirty = False

    def changed(self, oid, iid, rid):
        obj = self.model.object(oid)
        if oid in self.oids and obj.allows(rid, "W") and not self.dirty:
            self.dirty = True
            self.defer(self.save)

    def save(self):
        self.dirty = False
        doc = {}
        for oid in self.oids:
            obj = self.model.object(oid)
            for iid, inst in obj.instances.items() if obj else ():
                for rid, value in inst.values.items():
                    if obj.allows(rid, "W") and not obj.is_multiple(rid):
                        doc["%d/%d/%d" % (oid, iid, rid)] = value
        save(self.path, doc)

    def restore(self):
        # Puts saved values back; returns (how many, the keys of those refused). Entries for
        # what no longer exists are skipped; a value that has not its resource's type, or that
        # the resource's check refuses (a lifetime of 0), is refused rather than restored, so
        # a damaged file cannot stop the client. A corrupt file raises StoreError.
        doc = load(self.path) or {}
        count = 0
        refused = []
        for key, value in doc.items():
            try:
                oid, iid, rid = [int(i) for i in key.split("/")]
            except ValueError:
                raise StoreError("%s: corrupt: %r is not an oid/iid/rid path" % (self.path, key))
            inst = self.model.instance(oid, iid)
            if inst is None or rid not in inst.obj.resources:
                continue
            if _fits(inst, rid, value):
                inst.set(rid, value)
                count += 1
            else:
                refused.append(key)
        return count, refused


def _fits(inst, rid, value):
    # Has value the type of the resource (one that JSON keeps), and does its check pass?
    rtype = inst.obj.rtype(rid)
    kind = str if rtype in "sc" else bool if rtype == "b" else (int, float) if rtype == "f" else int
    if rtype not in "scbfitu" or not isinstance(value, kind) or (type(value) is bool) != (rtype == "b"):
        return False
    check = inst.hook(rid, 3)
    try:
        if check:
            check(value)
    except ValueError:
        return False
    return True
