# The client as the user runs it on a host: tools/host_run.py in a subprocess (the venv's
# Python, unbuffered), its log lines collected by a reader thread. Every wait is bounded;
# close() always leaves no process behind.
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HOST_RUN = ROOT / "tools" / "host_run.py"


def python():
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def free_udp_port():
    # A port nobody uses right now: bind to port 0 and let the kernel choose.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout, interval=0.02):
    # Polls predicate() until it gives something true or timeout seconds pass; returns its
    # last value.
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def json_line(line):
    # The JSON object a peer printed on one line, None for any other line.
    if not line.startswith("{"):
        return None
    try:
        msg = json.loads(line)
    except ValueError:
        return None
    return msg if isinstance(msg, dict) else None


def stop_process(proc, *readers):
    # Ends a peer driven through its stdin: closing stdin asks it to stop, then SIGTERM, then
    # SIGKILL, 5 s apart; then its reader threads and streams are closed.
    try:
        if proc.stdin and not proc.stdin.closed:
            proc.stdin.close()
    except OSError:
        pass
    for stop in (None, proc.terminate, proc.kill):
        if stop is not None:
            stop()
        try:
            proc.wait(5)
            break
        except subprocess.TimeoutExpired:
            continue
    for reader in readers:
        reader.thread.join(5)
    for stream in (proc.stdout, proc.stderr):
        if stream:
            stream.close()


class Lines:
    # Lines read from a stream by a daemon thread, each with the monotonic time it arrived.
    def __init__(self, stream, name):
        self.items = []  # (t, line)
        self.cond = threading.Condition()
        self.closed = False
        self.thread = threading.Thread(target=self._read, args=(stream,), name=name, daemon=True)
        self.thread.start()

    def _read(self, stream):
        try:
            for line in stream:
                with self.cond:
                    self.items.append((time.monotonic(), line.rstrip("\n")))
                    self.cond.notify_all()
        except (OSError, ValueError):
            pass
        finally:
            with self.cond:
                self.closed = True
                self.cond.notify_all()

    def lines(self, start=0):
        with self.cond:
            return [line for _t, line in self.items[start:]]

    def count(self):
        with self.cond:
            return len(self.items)

    def wait(self, predicate, timeout, start=0):
        # The first line from index start on for which predicate(line) is true, or None.
        deadline = time.monotonic() + timeout
        i = start
        with self.cond:
            while True:
                while i < len(self.items):
                    if predicate(self.items[i][1]):
                        return self.items[i][1]
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    return None
                self.cond.wait(min(left, 0.2))


class HostRun:
    # tools/host_run.py [--server URI] --endpoint NAME --lifetime S --lwm2m VERSION (server
    # None: none, for a run that bootstraps, with --bootstrap in extra)
    def __init__(self, server, endpoint, lifetime=300, version="1.1", extra=()):
        self.endpoint = endpoint
        argv = [python(), "-u", str(HOST_RUN)] + (["--server", server] if server else []) + [
            "--endpoint", endpoint, "--lifetime", str(lifetime), "--lwm2m", version] + list(extra)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(argv, cwd=str(ROOT), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1, env=env)
        self.out = Lines(self.proc.stdout, "host_run-" + endpoint)

    # -- the log

    def log(self, start=0):
        # The log lines without their time stamp ("12:34:56 ").
        return [_strip_time(line) for line in self.out.lines(start)]

    def mark(self):
        return self.out.count()

    def wait_log(self, pattern, timeout, start=0):
        # The first log line from index start on that matches the regular expression.
        rx = re.compile(pattern)
        line = self.out.wait(lambda l: rx.search(_strip_time(l)) is not None, timeout, start)
        assert line is not None, "no log line like %r within %.0f s; log:\n%s" % (pattern, timeout, self.dump())
        return _strip_time(line)

    def count_log(self, pattern, start=0):
        rx = re.compile(pattern)
        return sum(1 for line in self.log(start) if rx.search(line))

    def dump(self):
        return "\n".join("    " + line for line in self.out.lines())

    # -- the process

    def running(self):
        return self.proc.poll() is None

    def terminate(self, sig=signal.SIGTERM):
        if self.running():
            self.proc.send_signal(sig)

    def wait_exit(self, timeout):
        # The exit status, or None if still running after timeout seconds.
        wait_until(lambda: self.proc.poll() is not None, timeout, 0.05)
        return self.proc.poll()

    def close(self):
        # SIGTERM (the client de-registers, waiting at most 10 s for an answer), then SIGKILL.
        if self.running():
            self.terminate()
            if self.wait_exit(15) is None:
                self.proc.kill()
                self.proc.wait(5)
        self.out.thread.join(5)
        if self.proc.stdout:
            self.proc.stdout.close()


def _strip_time(line):
    return line[9:] if len(line) > 9 and line[2] == ":" and line[5] == ":" and line[8] == " " else line


class HostRuns:
    # A fixture's list of host_run processes, all closed by close_all() (the finalizer).
    def __init__(self):
        self.procs = []

    def start(self, *args, **kwargs):
        proc = HostRun(*args, **kwargs)
        self.procs.append(proc)
        return proc

    def close_all(self):
        for proc in self.procs:
            proc.close()
