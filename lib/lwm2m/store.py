# Persistence of what servers set: the writable values of chosen objects (Server, Device),
# kept in one JSON file that is replaced atomically (written to a temporary file, then
# renamed over the old one), so a power cut leaves the old file or the new one, never half.
import json
import os


class StoreError(ValueError):
    pass


def save(path, doc):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f)
    try:
        os.rename(tmp, path)
    except OSError:
        # FAT refuses to rename over an existing file; littlefs and POSIX replace it.
        os.remove(path)
        os.rename(tmp, path)


def load(path):
    # The saved document, None when there is none; StoreError when it is corrupt.
    try:
        f = open(path)
    except OSError:
        return None
    try:
        with f:
            doc = json.load(f)
    except ValueError:
        raise StoreError("%s: corrupt (not JSON)" % path)
    if not isinstance(doc, dict):
        raise StoreError("%s: corrupt: expected a JSON object" % path)
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
        # Puts saved values back; returns how many. Entries for what no longer exists are
        # skipped, a corrupt file raises StoreError.
        doc = load(self.path) or {}
        count = 0
        for key, value in doc.items():
            try:
                oid, iid, rid = [int(i) for i in key.split("/")]
            except ValueError:
                raise StoreError("%s: corrupt: %r is not an oid/iid/rid path" % (self.path, key))
            inst = self.model.instance(oid, iid)
            if inst is not None and rid in inst.obj.resources:
                inst.set(rid, value)
                count += 1
        return count
