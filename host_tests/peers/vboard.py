# The virtual board (make vboard: tools/vboard.py and tools/vboard.mjs) for the tests and the
# benchmarks: started with `make vboard` in a folder of the caller's, talked to with the real
# mpremote over its pseudo-terminal, watched through its serial log (everything the board
# prints) and its event lines ("vboard: pin 2 = 1", "vboard: hard reset" ...). Every wait is
# bounded; close() stops make, the pty bridge and the VM, and checks that none is left.
import os
import re
import signal
import subprocess
from pathlib import Path

from peers.host import ROOT, Lines, python, wait_until

_PORT_LINE = re.compile(r"^vboard: serial port (\S+)")
_PID_LINE = re.compile(r"^vboard: the VM runs as process (\d+)")


class MpremoteError(AssertionError):
    pass


class VBoard:
    def __init__(self, folder, board_id, wifi=("vboard:micropython",), start_timeout=30, fast_sleep=False,
                 romfs_bytes=0):
        self.folder = Path(folder)
        self.id = board_id
        self.log_path = self.folder / "serial.log"
        argv = ["make", "--no-print-directory", "vboard", "VBOARD_DIR=%s" % self.folder,
                "VBOARD_ID=%s" % board_id, "VBOARD_WIFI=%s" % " ".join(wifi)] + (["VBOARD_FAST_SLEEP=1"] if fast_sleep else []) + (["VBOARD_ROMFS=%d" % romfs_bytes] if romfs_bytes else [])
        # make in a process group of its own, so that close() can signal make and the bridge
        # together (the VM has a session of its own: the bridge stops it).
        self.proc = subprocess.Popen(argv, cwd=str(ROOT), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1, start_new_session=True)
        self.out = Lines(self.proc.stdout, "vboard")
        self.vm_pid = None
        try:
            line = self.out.wait(lambda l: _PORT_LINE.match(l) is not None, start_timeout)
            assert line is not None, "make vboard printed no serial port within %d s:\n%s" % (start_timeout, self.dump())
            self.port = _PORT_LINE.match(line).group(1)
            line = self.out.wait(lambda l: _PID_LINE.match(l) is not None, 5)
            self.vm_pid = int(_PID_LINE.match(line).group(1)) if line else None
            self.wait_event(r"^vboard: power on$", start_timeout)
        except BaseException:
            self.close()
            raise

    # -- mpremote, as a user runs it

    def mpremote(self, *args, timeout=60, check=True):
        # `mpremote connect PORT ARGS...`; its CompletedProcess (stdout and stderr as text).
        argv = [python(), "-m", "mpremote", "connect", self.port] + list(args)
        try:
            proc = subprocess.run(argv, cwd=str(ROOT), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise MpremoteError("mpremote %s: no end within %d s\n%s\n%s" % (
                " ".join(args), timeout, exc.stdout, self.dump()))
        if check and proc.returncode != 0:
            raise MpremoteError("mpremote %s: exit %d\nstdout:\n%s\nstderr:\n%s\n%s" % (
                " ".join(args), proc.returncode, proc.stdout, proc.stderr, self.dump()))
        return proc

    def make(self, *args, timeout=240):
        # `make ARGS... PORT=<this board's terminal>`, e.g. make("deploy", "BOARD=vboard").
        argv = ["make", "--no-print-directory"] + list(args) + ["PORT=%s" % self.port]
        # In a process group of its own: on a timeout make, deploy.py and mpremote all stop.
        proc = subprocess.Popen(argv, cwd=str(ROOT), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate(timeout=10)
            raise MpremoteError("make %s: no end within %d s\n%s\n%s" % (" ".join(args), timeout, out, self.dump()))
        assert proc.returncode == 0, "make %s: exit %d\n%s\n%s" % (" ".join(args), proc.returncode, out, self.dump())
        return out

    # -- what the board prints (its serial log) and its events

    def serial(self):
        # Everything the board printed so far, as text with "\r\n" and "\n" both ending lines.
        try:
            data = self.log_path.read_bytes()
        except FileNotFoundError:
            return ""
        return data.decode("utf-8", "replace").replace("\r\n", "\n")

    def mark(self):
        # A position in the serial log for wait_serial(start=...).
        return len(self.serial())

    def wait_serial(self, pattern, timeout, start=0):
        # The first line printed after position start that matches the regular expression.
        rx = re.compile(pattern)

        def find():
            for line in self.serial()[start:].split("\n"):
                if rx.search(line):
                    return line
            return None

        line = wait_until(find, timeout, 0.05)
        assert line is not None, "the board printed no line like %r within %.0f s\n%s" % (pattern, timeout, self.dump())
        return line

    def events(self, start=0):
        return [l for l in self.out.lines(start) if l.startswith("vboard: ")]

    def event_mark(self):
        return self.out.count()

    def wait_event(self, pattern, timeout, start=0):
        rx = re.compile(pattern)
        line = self.out.wait(lambda l: rx.search(l) is not None, timeout, start)
        assert line is not None, "no board event like %r within %.0f s\n%s" % (pattern, timeout, self.dump())
        return line

    def dump(self, tail=3000):
        return "  make vboard output:\n%s\n  serial log (last %d characters):\n%s" % (
            "\n".join("    " + l for l in self.out.lines()), tail,
            "\n".join("    " + l for l in self.serial()[-tail:].split("\n")))

    # -- the processes

    def close(self):
        # SIGTERM to make and the bridge (the bridge ends the VM's input, the VM saves its
        # flash and exits), then SIGKILL to whatever is left; no process may outlive this.
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(5)
        self.out.thread.join(15)  # the bridge holds the pipe until it has stopped the VM
        if self.vm_pid is not None and not wait_until(lambda: not _alive(self.vm_pid), 10):
            os.kill(self.vm_pid, signal.SIGKILL)
            wait_until(lambda: not _alive(self.vm_pid), 5)
        if self.proc.stdout:
            self.proc.stdout.close()


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A child that exited but was not reaped yet counts as gone (the bridge reaps it).
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
