# Drives host_tests/peers/lwm2m_server.js (lwm2m-node-lib, a third-party LwM2M server) from
# Python: its events and command answers are JSON lines on its stdout, its commands JSON lines
# on its stdin. Every wait is bounded; close() always leaves no process behind.
import json
import subprocess
import threading

from peers.host import ROOT, Lines, json_line, stop_process

SCRIPT = ROOT / "host_tests" / "peers" / "lwm2m_server.js"


class NodeError(Exception):
    # The server's error answer to a command (it starts with the CoAP code, e.g. "4.05 ...").
    pass


class NodeServer:
    def __init__(self, port, start_timeout=15):
        self.port = port
        self.proc = subprocess.Popen(["node", str(SCRIPT), str(port)], cwd=str(ROOT), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
        self.out = Lines(self.proc.stdout, "node-stdout")
        self.err = Lines(self.proc.stderr, "node-stderr")
        self._ids = 0
        self._lock = threading.Lock()
        try:
            self.wait_event("listening", timeout=start_timeout)
        except Exception:
            self.close()
            raise

    # -- stdout: events and answers

    def messages(self, start=0):
        # Every JSON object the server printed, from index start on (other lines skipped,
        # but indices count every line).
        out = []
        for line in self.out.lines(start):
            msg = json_line(line)
            if msg is not None:
                out.append(msg)
        return out

    def mark(self):
        return self.out.count()

    def events(self, name, start=0, endpoint=None):
        return [m for m in self.messages(start)
                if m.get("event") == name and (endpoint is None or m.get("endpoint") == endpoint)]

    def wait_event(self, name, timeout, start=0, endpoint=None):
        def match(line):
            msg = json_line(line)
            return msg is not None and msg.get("event") == name and (endpoint is None or msg.get("endpoint") == endpoint)

        line = self.out.wait(match, timeout, start)
        assert line is not None, "no %r event%s from the node server within %.0f s\n%s" % (
            name, "" if endpoint is None else " for " + endpoint, timeout, self.dump())
        return json_line(line)

    # -- stdin: commands

    def command(self, op, endpoint, path=None, timeout=30, **fields):
        # Sends one command and returns its result; raises NodeError for an error answer. The
        # harness answers every command within 20 s, so timeout is a second safety net.
        with self._lock:
            self._ids += 1
            cid = self._ids
        cmd = dict(fields, id=cid, op=op, endpoint=endpoint)
        if path is not None:
            cmd["path"] = path
        start = self.mark()
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        line = self.out.wait(lambda l: (json_line(l) or {}).get("id") == cid, timeout, start)
        assert line is not None, "no answer to %r within %.0f s\n%s" % (cmd, timeout, self.dump())
        answer = json_line(line)
        if "error" in answer:
            raise NodeError(answer["error"])
        return answer["result"]

    def read(self, endpoint, path, **kw):
        return self.command("read", endpoint, path, **kw)

    def write(self, endpoint, path, value, **kw):
        return self.command("write", endpoint, path, value=value, **kw)

    def execute(self, endpoint, path, args=None, **kw):
        return self.command("execute", endpoint, path, args=args, **kw)

    def discover(self, endpoint, path, **kw):
        return self.command("discover", endpoint, path, **kw)

    def device(self, endpoint, **kw):
        return self.command("device", endpoint, **kw)

    # -- the process

    def dump(self):
        return "  node stdout:\n%s\n  node stderr:\n%s" % (
            "\n".join("    " + l for l in self.out.lines()), "\n".join("    " + l for l in self.err.lines()))

    def close(self):
        stop_process(self.proc, self.out, self.err)
