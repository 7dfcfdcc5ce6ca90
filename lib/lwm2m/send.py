# Send (TS Core 1.1 6.4.7, the Information Reporting interface): the client POSTs the
# current values of chosen paths to /dp of each registered server, unasked, in SenML CBOR
# (112) or SenML JSON (110). A server whose Mute Send (/1/x/23) is true gets nothing; a path a
# server may not read (Access Control) or that does not exist is left out of its report and
# logged. Loaded on the first Send.
import time

from micropython import const

from lwm2m import Error, block, coap, dm, formats

_CON = const(0)
_POST = const(0x02)
_CHANGED = const(0x44)
_CONTENT_FORMAT = const(12)
_READ = const(1)
_MUTE_SEND = const(23)
FORMATS = (110, 112)


def paths_of(paths):
    # "/3/0" or (3, 0) -> (3, 0); lwm2m.Error 4.04 for what is not a path.
    return [tuple(p) if type(p) is tuple else dm.parse_path(p.strip("/").split("/")) for p in paths]


def send(client, paths, cf):
    # Reports the paths to every registered server that takes Sends; returns how many were sent.
    if client.version == "1.0":
        raise ValueError("Send is LwM2M 1.1: this client registers as 1.0")
    if cf not in FORMATS:
        raise ValueError("Send takes SenML JSON (110) or SenML CBOR (112), not %r" % cf)
    paths = paths_of(paths)
    sent = 0
    for server in client.servers:
        if not server.registered():
            continue
        inst = server.instance
        if inst.has(_MUTE_SEND) and inst.get(_MUTE_SEND):
            client.log("send: %s has Mute Send on: not sent" % server.uri)
            continue
        records = _records(client, server, paths)
        if not records:
            continue
        msg = coap.Message(_CON, _POST)
        msg.set_path("/dp")
        msg.add(_CONTENT_FORMAT, cf)
        msg.payload = formats.encode(cf, (), records)
        block.send(client.exchange, msg, server.addr, lambda r, s=server: _answered(client, s, r), lambda: client.now)
        sent += 1
    return sent


def _records(client, server, paths):
    records = []
    visible = client.serve.visible(server)
    for path in paths:
        try:
            if client.access:
                client.access.allow(client.model, server, _READ, path)
            records += dm.read_records(client.model, path, visible)
        except Error as exc:
            client.log("send: %s left out for %s: %s" % (dm.path_str(path), server.uri, exc))
    return records


def _answered(client, server, response):
    if response is None or response.code != _CHANGED:
        client.log("send to %s failed: %s" % (server.uri, "no answer" if response is None else coap.code_name(response.code)))


class Every:
    # A task of the client's poll loop (client.tasks) that sends paths every period_ms, the
    # first time once a server has registered: a sensor that reports by Send instead of
    # being observed.
    def __init__(self, client, paths, period_ms, cf=112):
        self.client = client
        self.paths = paths_of(paths)
        self.period_ms = period_ms
        self.cf = cf
        self.due = None  # ticks of the next report; None until a server is registered

    def step(self, now):
        if self.due is None:
            if not self.client.registered():
                return 1000  # a registration comes from the poll loop; look again soon
            self.due = now
        wait = time.ticks_diff(self.due, now)
        if wait > 0:
            return wait
        self.client.send(self.paths, self.cf)
        self.due = time.ticks_add(now, self.period_ms)
        return self.period_ms

    def freeze(self, now):
        # For lwm2m.hibernate: the ms to the next report, None before the first.
        return None if self.due is None else time.ticks_diff(self.due, now)

    def thaw(self, left_ms, now, slept_ms):
        self.due = time.ticks_add(now, max(0, left_ms - slept_ms))
