# Persistence of what servers set: the writable values of chosen objects (Server, Device),
# and after a bootstrap every Security and Server instance, kept in one JSON file. A power cut at any step of a save leaves the old document or the
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
    # Saves what servers set to `path`, and puts it back at start-up: the writable, stored (not
    # hook-read) single values of `oids` after a server changes them and, once a bootstrap
    # has finished (bootstrapped()), every instance of `whole` (Security, Server and Access
    # Control) with all its stored values, keys included, under "bootstrapped". While held() is true (a
    # bootstrap under way) nothing is saved: its writes count only once it finishes.
    def __init__(self, model, path, oids, defer, whole=(), held=None):
        self.model = model
        self.path = path
        self.oids = oids
        self.whole = whole
        self.defer = defer  # defer(action): run action after the current answers are sent
        self.held = held
        self.dirty = False
        self.whole_saved = False  # does the document hold a bootstrap's instances?

    def changed(self, oid, iid, rid):
        obj = self.model.object(oid)
        if oid in self.oids and obj.allows(rid, "W") and not self.dirty and not (self.held and self.held()):
            self.dirty = True
            self.defer(self.save)

    def bootstrapped(self):
        # A bootstrap has finished: from now on `whole` is saved instance by instance.
        self.whole_saved = True
        self.save()

    def save(self):
        self.dirty = False
        doc = {}
        for oid in self.oids:
            if self.whole_saved and oid in self.whole:
                continue  # all of it is in "bootstrapped"
            obj = self.model.object(oid)
            for iid, inst in obj.instances.items() if obj else ():
                for rid, value in inst.values.items():
                    if obj.allows(rid, "W") and not obj.is_multiple(rid):
                        doc["%d/%d/%d" % (oid, iid, rid)] = value
        if self.whole_saved:
            doc["bootstrapped"] = {str(oid): _instances_doc(self.model.objects[oid]) for oid in self.whole}
        save(self.path, doc)

    def restore(self):
        # Puts saved values back; returns (how many, the keys of those refused). Entries for
        # what no longer exists are skipped; a value that has not its resource's type, or that
        # the resource's check refuses (a lifetime of 0), is refused rather than restored, so
        # a damaged file cannot stop the client. A bootstrap's instances replace those of the
        # configuration, all of them or none. A corrupt file raises StoreError.
        doc = load(self.path) or {}
        count = 0
        refused = []
        instances = doc.pop("bootstrapped", None)
        if instances is not None:
            count += self._restore_whole(instances)
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

    def _restore_whole(self, doc):
        # Every instance of the `whole` objects from doc, read in full before any replaces the
        # configuration's; returns how many values.
        objects = {}
        count = 0
        for oid in self.whole:
            obj = self.model.objects[oid]
            entries = doc.get(str(oid), {}) if isinstance(doc, dict) else None  # none: no instances
            if not isinstance(entries, dict):
                raise StoreError("%s: corrupt: no instances of object %d" % (self.path, oid))
            objects[oid] = {}
            for iid, values in entries.items():
                objects[oid][_id(iid, self.path)] = decoded = _instance_values(obj, values, self.path)
                count += len(decoded)
        for oid, instances in objects.items():
            obj = self.model.objects[oid]
            for iid in list(obj.instances):
                self.model.delete_instance(oid, iid)
            for iid, values in instances.items():
                self.model.add_instance(oid, iid, values)
        self.whole_saved = True
        return count


def _instances_doc(obj):
    # {iid: {rid: value}} of every instance, opaque values as hex, a multiple resource as
    # {riid: value}.
    out = {}
    for iid, inst in obj.instances.items():
        values = out[str(iid)] = {}
        for rid, value in inst.values.items():
            if isinstance(value, dict):
                value = {str(riid): _hex(v) for riid, v in value.items()}
            values[str(rid)] = _hex(value)
    return out


def _hex(value):
    return value.hex() if isinstance(value, (bytes, bytearray)) else value


def _id(text, path):
    try:
        value = int(text)
    except (TypeError, ValueError):
        value = -1
    if not 0 <= value < 65535:
        raise StoreError("%s: corrupt: %r is not an instance or resource id" % (path, text))
    return value


def _instance_values(obj, values, path):
    # The values of one saved instance, each checked against its resource's type.
    if not isinstance(values, dict):
        raise StoreError("%s: corrupt: an instance of object %d is not an object" % (path, obj.oid))
    out = {}
    for key, value in values.items():
        rid = _id(key, path)
        if rid not in obj.resources:
            raise StoreError("%s: corrupt: object %d has no resource %d" % (path, obj.oid, rid))
        if obj.is_multiple(rid):
            if not isinstance(value, dict):
                raise StoreError("%s: corrupt: /%d/x/%d is multiple" % (path, obj.oid, rid))
            out[rid] = {_id(riid, path): _typed(obj, rid, v, path) for riid, v in value.items()}
        else:
            out[rid] = _typed(obj, rid, value, path)
    return out


def _typed(obj, rid, value, path):
    rtype = obj.rtype(rid)
    if rtype == "o":
        try:
            return bytes.fromhex(value)
        except (TypeError, ValueError):
            pass
    elif rtype == "l":
        if isinstance(value, list) and len(value) == 2 and _has_type("u", value[0]) and _has_type("u", value[1]):
            return (value[0], value[1])  # JSON made the objlnk's tuple a list
    elif _has_type(rtype, value):
        return value
    raise StoreError("%s: corrupt: %r is not a value of /%d/x/%d" % (path, value, obj.oid, rid))


def _has_type(rtype, value):
    # Has value the type of the resource (one that JSON keeps)?
    kind = str if rtype in "sc" else bool if rtype == "b" else (int, float) if rtype == "f" else int
    return rtype in "scbfitu" and isinstance(value, kind) and (type(value) is bool) == (rtype == "b")


def _fits(inst, rid, value):
    # Has value the type of the resource, and does its check pass?
    if not _has_type(inst.obj.rtype(rid), value):
        return False
    check = inst.hook(rid, 3)
    try:
        if check:
            check(value)
    except ValueError:
        return False
    return True
