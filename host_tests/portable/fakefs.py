# An in-memory filesystem that can lose power at any step, for the store tests. Portable:
# used under pytest and inside the MicroPython VM. The disk is a dict of path to text; a
# FakeFS is one boot's view of it, with an `open` and an `os` to put in a module's place.
# Every open, write, close, remove, rename and sync is a step; the one numbered fail_at
# raises `error` (PowerCut, or OSError for a failing call) and a cut write leaves half.
MODES = ("posix", "littlefs", "fat", "fat-micropython")
ENOENT, EEXIST = 2, 17


class PowerCut(BaseException):
    # Not an Exception, so that nothing under test can catch it and carry on.
    pass


class FakeFS:
    def __init__(self, mode, disk=None, fail_at=0, error=PowerCut, sync=True):
        assert mode in MODES, mode
        self.mode = mode
        self.disk = {} if disk is None else disk
        self.fail_at = fail_at
        self.error = error
        self.steps = []  # one name per step taken, "open /flash/s.json w" and the like
        self.dead = False  # after a power cut nothing else happens
        self.os = FakeOS(self, sync)

    def reboot(self):
        # A fresh view of the same disk contents, without the failure.
        return FakeFS(self.mode, dict(self.disk))

    def step(self, name, partial=None):
        if self.dead:
            raise PowerCut(name)
        self.steps.append(name)
        if len(self.steps) == self.fail_at:
            if partial:
                partial()
            self.dead = self.error is PowerCut
            raise self.error(name)

    def open(self, path, mode="r"):
        assert mode in ("r", "w"), mode
        self.step("open %s %s" % (path, mode))
        if mode == "w":
            self.disk[path] = ""
        elif path not in self.disk:
            raise OSError(ENOENT)
        return FakeFile(self, path, mode == "w")

    def run(self, module, func, *args):
        # Calls func(*args) with module's open and os replaced by this filesystem's.
        real_os = module.os
        module.open = self.open
        module.os = self.os
        try:
            return func(*args)
        finally:
            module.os = real_os
            del module.open  # module's code sees the builtin open again


class FakeFile:
    def __init__(self, fs, path, writing):
        self.fs = fs
        self.path = path
        self.writing = writing
        self.closed = False

    def _append(self, text):
        self.fs.disk[self.path] += text

    def write(self, text):
        assert self.writing and not self.closed
        self.fs.step("write " + self.path, lambda: self._append(text[: len(text) // 2]))
        self._append(text)
        return len(text)

    def read(self):
        assert not self.writing and not self.closed
        return self.fs.disk[self.path]

    def close(self):
        if not self.closed:
            self.fs.step("close " + self.path)
            self.closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class FakeOS:
    def __init__(self, fs, sync):
        self.fs = fs
        if sync:  # a port without os.sync is FakeFS(..., sync=False)
            self.sync = self._sync

    def _sync(self):
        self.fs.step("sync")

    def remove(self, path):
        self.fs.step("remove " + path)
        if path not in self.fs.disk:
            raise OSError(ENOENT)
        del self.fs.disk[path]

    def rename(self, src, dst):
        fs, disk = self.fs, self.fs.disk
        fs.step("rename %s %s" % (src, dst))
        if src not in disk:
            raise OSError(ENOENT)
        if dst in disk and dst != src:
            if fs.mode == "fat":
                raise OSError(EEXIST)
            if fs.mode == "fat-micropython":
                # MicroPython's FAT rename removes the target, then renames: a second step.
                del disk[dst]
                fs.step("rename %s %s, %s removed" % (src, dst, dst))
        disk[dst] = disk.pop(src)

    def stat(self, path):
        if path in self.fs.disk:
            return (0x8000, 0, 0, 0, 0, 0, len(self.fs.disk[path]), 0, 0, 0)
        if self.listdir(path):
            return (0x4000, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        raise OSError(ENOENT)

    def listdir(self, folder):
        prefix = folder.rstrip("/") + "/"
        names = [p[len(prefix) :].split("/")[0] for p in self.fs.disk if p.startswith(prefix)]
        return sorted(set(names))
