# Drives host_tests/peers/leshan/LeshanPeer.java (Eclipse Leshan 2.0.0-M15, a third-party LwM2M
# server in a JVM, built by `make setup` into build/leshan) from Python: its events and
# command answers are JSON lines on its stdout, its commands JSON lines on its stdin; its own
# log and the CoAP trace (--trace) go to stderr, kept for dump(). Every wait is bounded;
# close() always leaves no process behind.
import json
import re
import shutil
import subprocess
import threading

from peers.host import ROOT, Lines, json_line, stop_process

BUILD = ROOT / "build" / "leshan"
CLASSPATH = "%s:%s/*" % (BUILD / "classes", BUILD / "lib")
# The object definitions (DDF) beside the project: Leshan decodes a payload only with the
# model of the object version the client registered, and brings only objects 0-7 itself.
REGISTRY = ROOT.parent / "shared" / "lwm2m-registry"
# A short-lived JVM: the quick C1 compiler and the serial collector start fastest.
JVM_FLAGS = ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xss512k",
             "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"]


def available(main="LeshanPeer"):
    # The peer (main: its class) is built (make setup) and a java runs it: the reason it
    # cannot start, or None.
    if not (BUILD / ".installed").exists() or not (BUILD / "classes" / (main + ".class")).exists():
        return "the Leshan peer %s is not built: run make setup" % main
    if shutil.which("java") is None:
        return "no java on PATH"
    return None


def model_dirs():
    # The registry's DDF files, the current versions and those of version_history/.
    if not REGISTRY.is_dir():
        return []
    dirs = [REGISTRY]
    if (REGISTRY / "version_history").is_dir():
        dirs.insert(0, REGISTRY / "version_history")  # the current files load last and win
    return dirs


class LeshanError(Exception):
    # An answer with "ok": false: an error code from the client (code "NOT_FOUND", coap
    # "4.04"), or no valid answer at all (a timeout, or an exception: what Leshan could not
    # decode). The whole answer is kept in .answer.
    def __init__(self, answer, command):
        self.answer = answer
        self.command = command
        self.code = answer.get("code")
        self.coap = answer.get("coap")
        self.error = answer.get("error")
        super().__init__("%s for %s" % (_summary(answer), json.dumps(command)))


def _summary(answer):
    parts = [answer.get("coap"), answer.get("code"), answer.get("exception"), answer.get("error")]
    return " ".join(str(p) for p in parts if p) or json.dumps(answer)


class LeshanProcess:
    # One of the peers' JVMs (main: LeshanPeer or LeshanBootstrapPeer, args: its flags) bound
    # to 127.0.0.1: started, and waited for until its "listening" event tells the ports of its
    # CoAP and CoAPS endpoints (kernel-chosen unless given in args).
    def __init__(self, main, args, start_timeout):
        reason = available(main)
        if reason:
            raise RuntimeError(reason)
        argv = ["java"] + JVM_FLAGS + ["-cp", CLASSPATH, main, "--host", "127.0.0.1"] + args
        # its working folder is a build folder: nothing it might write lands in the tree
        self.proc = subprocess.Popen(argv, cwd=str(BUILD), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1, encoding="utf-8")
        self.out = Lines(self.proc.stdout, main + "-stdout")
        self.err = Lines(self.proc.stderr, main + "-stderr")
        self._ids = 0
        self._lock = threading.Lock()
        try:
            listening = self.wait_event("listening", start_timeout)
        except BaseException:
            self.close()
            raise
        self.host = listening["host"]
        self.coap_port = listening["coap_port"]
        self.coaps_port = listening["coaps_port"]
        self.coap_uri = "coap://%s:%d" % (self.host, self.coap_port)
        self.coaps_uri = "coaps://%s:%d" % (self.host, self.coaps_port)

    # -- stdout: events and answers

    def mark(self):
        # An index into stdout: events and waits from here on.
        return self.out.count()

    def messages(self, start=0):
        return [m for m in map(json_line, self.out.lines(start)) if m is not None]

    def events(self, name, start=0, endpoint=None):
        return [m for m in self.messages(start) if _is_event(m, name, endpoint)]

    def wait_event(self, name, timeout, start=0, endpoint=None, where=None):
        # The first event `name` (of `endpoint`, and for which where(event) is true) from
        # index start on; fails the test after timeout seconds.
        def match(line):
            m = json_line(line)
            return _is_event(m, name, endpoint) and (where is None or where(m))

        line = self.out.wait(match, timeout, start)
        assert line is not None, "no %r event%s from Leshan within %.0f s\n%s" % (
            name, "" if endpoint is None else " of " + endpoint, timeout, self.dump())
        return json_line(line)

    # -- stderr: the CoAP trace (--trace), e.g. "coap -> RST        MID=55173"

    def trace_mark(self):
        return self.err.count()

    def wait_trace(self, pattern, timeout, start=0):
        # The first stderr line from index start on that matches the regular expression.
        rx = re.compile(pattern)
        line = self.err.wait(lambda l: rx.search(l) is not None, timeout, start)
        assert line is not None, "no trace line like %r from Leshan within %.0f s\n%s" % (
            pattern, timeout, self.dump())
        return line

    # -- stdin: commands

    def command(self, op, endpoint=None, path=None, timeout=10, check=True, **fields):
        # Sends one command and returns its answer (a dict); raises LeshanError for one with
        # "ok": false unless check is false. timeout (s) bounds the request Leshan sends; the
        # answer is awaited a little longer.
        with self._lock:
            self._ids += 1
            cid = self._ids
        cmd = dict(fields, id=cid, op=op, timeout=timeout)
        if endpoint is not None:
            cmd["endpoint"] = endpoint
        if path is not None:
            cmd["path"] = path
        start = self.mark()
        try:
            self.proc.stdin.write(json.dumps(cmd) + "\n")
            self.proc.stdin.flush()
        except OSError as exc:
            raise AssertionError("Leshan is gone (%s)\n%s" % (exc, self.dump()))
        line = self.out.wait(lambda l: (json_line(l) or {}).get("id") == cid, timeout + 5, start)
        assert line is not None, "no answer to %r within %.0f s\n%s" % (cmd, timeout + 5, self.dump())
        answer = json_line(line)
        if check and not answer.get("ok"):
            raise LeshanError(answer, cmd)
        return answer

    # -- the process

    def dump(self):
        return "  leshan stdout:\n%s\n  leshan stderr:\n%s" % (
            "\n".join("    " + l for l in self.out.lines()), "\n".join("    " + l for l in self.err.lines()))

    def close(self):
        stop_process(self.proc, self.out, self.err)



class LeshanServer(LeshanProcess):
    # LeshanServer() binds CoAP and CoAPS on 127.0.0.1 to ports the kernel chooses (or the
    # ones given) and waits for the "listening" event, which tells them.
    # x509_cert and x509_key (files, DER or PEM; an EC P-256 key) give CoAPS an X.509
    # identity, x509_trust (files) the certificates (CAs) a client's certificate must chain
    # to; PSK clients keep working beside them.
    def __init__(self, coap_port=0, coaps_port=0, models=None, trace=True, start_timeout=30,
                 x509_cert=None, x509_key=None, x509_trust=(), awake_ms=None):
        # awake_ms: how long Leshan counts a queue-mode client awake after its last message
        args = ["--coap-port", str(coap_port), "--coaps-port", str(coaps_port)]
        if awake_ms is not None:
            args += ["--awake-time", str(awake_ms)]
        for folder in (model_dirs() if models is None else models):
            args += ["--models", str(folder)]
        if trace:
            args.append("--trace")
        if x509_cert is not None or x509_key is not None:
            args += ["--x509-cert", str(x509_cert), "--x509-key", str(x509_key)]
        for path in x509_trust:
            args += ["--x509-trust", str(path)]
        super().__init__("LeshanPeer", args, start_timeout)

    def clients(self):
        return self.command("clients")["content"]

    def read(self, endpoint, path, format=None, **kw):
        return self.command("read", endpoint, path, format=format, **kw)

    def value(self, endpoint, path, format=None, **kw):
        # The value of one resource (or resource instance) as Leshan decoded it.
        content = self.read(endpoint, path, format, **kw)["content"]
        assert content["kind"] in ("resource", "resource-instance"), content
        return content["value"]

    def write(self, endpoint, path, value, format=None, **kw):
        return self.command("write", endpoint, path, value=value, format=format, **kw)

    def create(self, endpoint, path, instance, resources, format=None, **kw):
        # Create of /oid/instance with {rid: value}, typed by the client's object model
        return self.command("create", endpoint, path, instance=instance, resources=resources, format=format, **kw)

    def delete(self, endpoint, path, **kw):
        return self.command("delete", endpoint, path, **kw)

    def execute(self, endpoint, path, args=None, **kw):
        return self.command("execute", endpoint, path, args=args, **kw)

    def discover(self, endpoint, path, **kw):
        # {target: {attribute: value or None}} in the order the client listed them
        return self.command("discover", endpoint, path, **kw)["content"]["attributes"]

    def write_attributes(self, endpoint, path, attributes, **kw):
        return self.command("write-attributes", endpoint, path, attributes=attributes, **kw)

    def observe(self, endpoint, path, format=None, **kw):
        return self.command("observe", endpoint, path, format=format, **kw)

    def cancel_observe(self, endpoint, path, active=False, **kw):
        return self.command("cancel-observe", endpoint, path, active=active, **kw)

    def add_psk(self, endpoint, identity, key):
        # key: bytes or hex
        return self.command("add-psk", endpoint, identity=identity, key=hex_key(key))

    def add_x509(self, endpoint):
        # The endpoint authenticates with a certificate whose CN is its name (chained to an
        # x509_trust certificate).
        return self.command("add-x509", endpoint)

    def remove_security(self, endpoint):
        return self.command("remove-security", endpoint)


def hex_key(key):
    # A PSK as the peers take it: hex digits (given as bytes or hex).
    return key.hex() if isinstance(key, (bytes, bytearray)) else key


def _is_event(msg, name, endpoint):
    return msg is not None and msg.get("event") == name and (endpoint is None or msg.get("endpoint") == endpoint)
