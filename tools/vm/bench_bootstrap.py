# Bootstrap figures inside the MicroPython VM (run by tools/bench.py through tools/mpvm.mjs):
# the heap lwm2m.bootstrap keeps once imported, the heap a bootstrap holds while it runs (the
# module, the session and the copy of the model it can go back to), the time from the
# Bootstrap-Request to the Register it ends in, and the state file it leaves (size, save
# time) on the VM's in-memory filesystem. Each heap figure is read in a step after the step
# that called gc.collect(), since the VM collects only between calls from JavaScript.
import gc
import os
import time

from bench_client import Board

STEPS = 5
STATE = "/tmp/bench-servers.json"
BS = ("127.0.0.1", 5783)
SERVER = ("127.0.0.1", 5683)
_figures = {}
_kept = {}


def _client():
    # The firmware's client with only a bootstrap account, its state kept in STATE.
    from lwm2m import core
    from lwm2m.client import Client
    from lwm2m.model import Model, load_definition
    from lwm2m.store import Persist
    from lwm2m.transport import MemoryTransport

    model = Model()
    for oid in (0, 1, 3, 4, 3303):
        model.define(load_definition("/objects/%d.json" % oid))
    transport = MemoryTransport()
    client = Client(model, "esp32-a1b2c3", transport, "1.1", lambda line: None, lambda: 0.0)
    core.add_security(model, "coap://127.0.0.1:5783", None, True)
    core.add_device(model, Board(), client.defer)
    core.add_connectivity(model, Board())
    persist = Persist(model, STATE, (1, 3), client.defer, (0, 1), lambda: client.bootstrap is not None)
    model.watchers.append(persist.changed)
    client.on_bootstrapped = persist.bootstrapped
    _kept.update(client=client, transport=transport, persist=persist)


def _request(code, path, payload=b"", cf=None):
    # One request of the bootstrap server, answered before this returns.
    from lwm2m import coap

    client, transport = _kept["client"], _kept["transport"]
    _kept["mid"] = mid = _kept.get("mid", 0x6000) + 1
    msg = coap.Message(0, code, mid, b"bs", payload)
    msg.set_path(path)
    if cf is not None:
        msg.add(12, cf)
    transport.inject(coap.encode(msg), BS)
    client.poll(10)


def _bootstrap_operations():
    # What Leshan's bootstrap server sends: Delete /0 and /1, a PSK Security instance and a
    # Server instance in TLV, then the Finish (whose save is timed on its own below).
    from lwm2m import coap, formats

    client, transport = _kept["client"], _kept["transport"]
    _kept["started"] = time.ticks_ms()
    client.start()  # no management account: it bootstraps
    client.poll(0)
    request = coap.decode(transport.sent.pop()[0])
    transport.inject(coap.encode(coap.Message(2, 0x44, request.mid, request.token)), BS)
    client.poll(0)
    _request(0x04, "/0")
    _request(0x04, "/1")
    security = [((0, 1, 0), "s", "coaps://127.0.0.1:5684"), ((0, 1, 1), "b", False), ((0, 1, 2), "i", 0),
                ((0, 1, 3), "o", b"esp32-a1b2c3"), ((0, 1, 4), "o", b""), ((0, 1, 5), "o", bytes(range(16))),
                ((0, 1, 10), "i", 101), ((0, 1, 11), "i", 1)]
    _request(0x03, "/0/1", formats.encode(11542, (0, 1), security), 11542)
    server = [((1, 0, 0), "i", 101), ((1, 0, 1), "i", 300), ((1, 0, 2), "i", 1), ((1, 0, 6), "b", True),
              ((1, 0, 7), "s", "U")]
    _request(0x03, "/1/0", formats.encode(11542, (1, 0), server), 11542)


def _finish():
    # The Finish, without its save (timed apart), then the Register it ends in.
    client, persist = _kept["client"], _kept["persist"]
    client.on_bootstrapped = None
    client.transport.sent.clear()
    _request(0x02, "/bs")
    client.poll(20)
    _figures["request_to_register_ms"] = time.ticks_diff(time.ticks_ms(), _kept.pop("started"))
    _figures["register_sent"] = len(client.transport.sent)
    started = time.ticks_us()
    persist.bootstrapped()
    _figures["save_ms"] = "%.1f" % (time.ticks_diff(time.ticks_us(), started) / 1000)
    _figures["state_file_bytes"] = os.stat(STATE)[6]
    os.remove(STATE)


def step(i):
    if i == 0:
        from lwm2m import client, core, model, store, transport  # noqa: F401 (what the firmware imports)

        _client()
        gc.collect()
    elif i == 1:
        _figures["base"] = gc.mem_alloc()
        import lwm2m.bootstrap  # noqa: F401

        gc.collect()
    elif i == 2:
        _figures["module_bytes"] = gc.mem_alloc() - _figures["base"]
        _bootstrap_operations()
        gc.collect()
    elif i == 3:
        _figures["bootstrapping_bytes"] = gc.mem_alloc() - _figures["base"]
        _finish()
        gc.collect()
    elif i == 4:
        _figures["after_bytes"] = gc.mem_alloc() - _figures["base"]


def main(args):
    for key in sorted(_figures):
        print("%s=%s" % (key, _figures[key]))
