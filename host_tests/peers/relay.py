# A UDP relay on 127.0.0.1 between the client and a server, run by a thread: the client is
# given `port` as its server; what it sends goes on to `upstream` from a second socket, and
# what comes back to that socket goes to the client from `port`. So the server sees the relay
# as the client and the client sees the relay as the server.
#
# On the way it records every datagram (time, direction, bytes, dropped or not), drops a
# fraction `loss` of them (each direction has its own seeded random.Random, so the drops
# depend only on how many datagrams went that way: a run is reproducible), drops what a test
# asks it to drop (drop_next), and lets a test inject a request to the client as if the
# server had sent it (inject), taking the client's answer out of the stream.
import random
import select
import socket
import threading
import time

UP = "c->s"  # client to server
DOWN = "s->c"  # server to client
_TYPES = ("CON", "NON", "ACK", "RST")


def summary(data):
    # "CON 0.02 mid=1234 tok=abcd" from the fixed header; no codec needed.
    if len(data) < 4:
        return "%d bytes" % len(data)
    tkl = data[0] & 0x0F
    return "%s %d.%02d mid=%d tok=%s %dB" % (_TYPES[data[0] >> 4 & 3], data[1] >> 5, data[1] & 0x1F,
                                             data[2] << 8 | data[3], bytes(data[4:4 + tkl]).hex(), len(data))


def mid_of(data):
    return data[2] << 8 | data[3] if len(data) >= 4 else None


class Record:
    __slots__ = ("t", "direction", "data", "dropped", "why")

    def __init__(self, t, direction, data, dropped, why):
        self.t = t
        self.direction = direction
        self.data = data
        self.dropped = dropped
        self.why = why

    def __repr__(self):
        return "%.3f %s %s%s" % (self.t, self.direction, summary(self.data),
                                 " DROPPED (%s)" % self.why if self.dropped else "")


class UdpRelay:
    def __init__(self, upstream=None, loss=0.0, seed=0, log=print):
        self.upstream = upstream  # (host, port) of the server
        self.loss = loss
        self.rng = {UP: random.Random("%s/%s" % (seed, UP)), DOWN: random.Random("%s/%s" % (seed, DOWN))}
        self.log = log
        self.records = []
        self.client = None  # the client's address, learnt from its first datagram
        self.t0 = time.monotonic()
        self._lock = threading.Lock()
        self._rules = []  # [direction, predicate, count]: forced drops
        self._injected = {}  # mid -> answer or None, for inject()
        self._stop = threading.Event()
        self.near = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # the client talks to this
        self.far = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # this talks to the server
        try:
            self.near.bind(("127.0.0.1", 0))
            self.far.bind(("127.0.0.1", 0))
        except OSError:
            self.near.close()
            self.far.close()
            raise
        self.port = self.near.getsockname()[1]
        self.far_port = self.far.getsockname()[1]
        self._thread = threading.Thread(target=self._run, name="udp-relay", daemon=True)
        self._thread.start()

    # -- what tests use

    def set_loss(self, loss, seed):
        # From now on drop a fraction `loss` each way, drawn afresh from `seed`.
        with self._lock:
            self.loss = loss
            self.rng = {UP: random.Random("%s/%s" % (seed, UP)), DOWN: random.Random("%s/%s" % (seed, DOWN))}

    def drop_next(self, direction, predicate, count=1):
        # Drops the next `count` datagrams going `direction` for which predicate(bytes) is true.
        with self._lock:
            self._rules.append([direction, predicate, count])

    def seen(self, direction=None, predicate=None, delivered=None):
        # The records so far, filtered by direction, predicate(bytes) and delivered or not.
        with self._lock:
            records = list(self.records)
        return [r for r in records
                if (direction is None or r.direction == direction)
                and (predicate is None or predicate(r.data))
                and (delivered is None or delivered != r.dropped)]

    def inject(self, data, timeout=5.0):
        # Sends a CON request to the client from the server's address (never dropped) and
        # returns the client's answer (an ACK or RST with the same MID, never passed on to
        # the server), or None after timeout seconds.
        mid = mid_of(data)
        with self._lock:
            assert self.client is not None, "the client has not sent anything yet"
            self._injected[mid] = None
            client = self.client
        self.near.sendto(data, client)
        self._note(DOWN, data, False, "injected")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                answer = self._injected.get(mid)
            if answer is not None:
                with self._lock:
                    del self._injected[mid]
                return answer
            time.sleep(0.01)
        with self._lock:
            self._injected.pop(mid, None)
        return None

    def dump(self):
        return "\n".join("    %r" % r for r in self.seen())

    def close(self):
        self._stop.set()
        self._thread.join(5)
        self.near.close()
        self.far.close()

    # -- the thread

    def _note(self, direction, data, dropped, why=""):
        record = Record(time.monotonic() - self.t0, direction, bytes(data), dropped, why)
        with self._lock:
            self.records.append(record)
        if dropped and self.log:
            self.log("relay: %r" % record)
        return record

    def _decide(self, direction, data):
        # -> reason to drop, or "" to pass it on. The random draw is made for every datagram,
        # so forced drops do not shift the random sequence.
        with self._lock:
            draw = self.rng[direction].random()
            for rule in self._rules:
                if rule[0] == direction and rule[2] > 0 and _matches(rule[1], data):
                    rule[2] -= 1
                    return "forced"
            return "random" if draw < self.loss else ""

    def _run(self):
        while not self._stop.is_set():
            try:
                ready, _w, _x = select.select([self.near, self.far], [], [], 0.05)
            except (OSError, ValueError):
                return
            for sock in ready:
                try:
                    data, addr = sock.recvfrom(65535)
                except OSError:
                    continue
                if sock is self.near:
                    self._from_client(data, addr)
                else:
                    self._from_server(data, addr)

    def _from_client(self, data, addr):
        with self._lock:
            self.client = addr
            mid = mid_of(data)
            injected = mid in self._injected and self._injected[mid] is None and len(data) >= 4 and data[0] >> 4 & 3 >= 2
            if injected:
                self._injected[mid] = data
        if injected:
            self._note(UP, data, False, "answer to injected")
            return
        why = self._decide(UP, data)
        self._note(UP, data, bool(why), why)
        if not why and self.upstream is not None:
            self.far.sendto(data, self.upstream)

    def _from_server(self, data, addr):
        why = self._decide(DOWN, data)
        if not why and self.client is None:
            why = "no client yet"
        self._note(DOWN, data, bool(why), why)
        if not why:
            self.near.sendto(data, self.client)


def _matches(predicate, data):
    # A test's predicate that fails on an odd datagram does not stop the relay.
    try:
        return bool(predicate(data))
    except Exception:
        return False
