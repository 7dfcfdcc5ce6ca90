# fakefs.FakeFS with folders, for the tests of the bundle swap (which moves whole folders).
# Portable like fakefs. The disk maps a path to its text, or to None for a folder (so empty
# folders survive a reboot too); "/" is always there. Every open, write, close, remove,
# rename, mkdir, rmdir and sync is a step that can fail; a folder moves with one rename, at
# once, as on littlefs and POSIX. stat and listdir only read.
from fakefs import EEXIST, ENOENT, FakeFile, FakeFS, FakeOS, PowerCut

ENOTEMPTY, EINVAL = 39, 22


def parent(path):
    return path.rsplit("/", 1)[0] or "/"


class TreeFS(FakeFS):
    def __init__(self, mode, disk=None, fail_at=0, error=PowerCut):
        FakeFS.__init__(self, mode, disk, fail_at, error)
        self.os = TreeOS(self, True)

    def reboot(self):
        return TreeFS(self.mode, dict(self.disk))

    def kind(self, path):
        # "dir", "file" or None.
        if path == "/":
            return "dir"
        if path not in self.disk:
            return None
        return "dir" if self.disk[path] is None else "file"

    def children(self, folder):
        return sorted(p.rsplit("/", 1)[1] for p in self.disk if parent(p) == folder)

    def open(self, path, mode="r"):
        assert mode in ("r", "w"), mode
        self.step("open %s %s" % (path, mode))
        if self.kind(parent(path)) != "dir" or self.kind(path) == "dir":
            raise OSError(ENOENT)
        if mode == "w":
            self.disk[path] = ""
        elif path not in self.disk:
            raise OSError(ENOENT)
        return FakeFile(self, path, mode == "w")


class TreeOS(FakeOS):
    def stat(self, path):
        kind = self.fs.kind(path)
        if kind is None:
            raise OSError(ENOENT)
        size = 0 if kind == "dir" else len(self.fs.disk[path])
        return (0x4000 if kind == "dir" else 0x8000, 0, 0, 0, 0, 0, size, 0, 0, 0)

    def listdir(self, folder):
        if self.fs.kind(folder) != "dir":
            raise OSError(ENOENT)
        return self.fs.children(folder)

    def mkdir(self, path):
        self.fs.step("mkdir " + path)
        if self.fs.kind(path) is not None:
            raise OSError(EEXIST)
        if self.fs.kind(parent(path)) != "dir":
            raise OSError(ENOENT)
        self.fs.disk[path] = None

    def rmdir(self, path):
        self.fs.step("rmdir " + path)
        if self.fs.kind(path) != "dir":
            raise OSError(ENOENT)
        if self.fs.children(path):
            raise OSError(ENOTEMPTY)
        del self.fs.disk[path]

    def remove(self, path):
        self.fs.step("remove " + path)
        if self.fs.kind(path) != "file":
            raise OSError(ENOENT)
        del self.fs.disk[path]

    def rename(self, src, dst):
        fs, disk = self.fs, self.fs.disk
        fs.step("rename %s %s" % (src, dst))
        kind = fs.kind(src)
        if kind is None or fs.kind(parent(dst)) != "dir":
            raise OSError(ENOENT)
        if dst == src:
            return
        if kind == "dir" and dst.startswith(src + "/"):
            raise OSError(EINVAL)
        if fs.kind(dst) is not None:
            if kind == "dir" or fs.kind(dst) == "dir" or fs.mode == "fat":
                raise OSError(EEXIST)
            if fs.mode == "fat-micropython":
                del disk[dst]  # MicroPython's FAT rename: the target goes first, a step of its own
                fs.step("rename %s %s, %s removed" % (src, dst, dst))
        for path in [p for p in disk if p == src or p.startswith(src + "/")]:
            disk[dst + path[len(src):]] = disk.pop(path)
