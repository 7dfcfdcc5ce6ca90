# Several servers and access control inside the MicroPython VM (run by tools/bench.py through
# tools/mpvm.mjs): the heap lwm2m.access keeps, the heap of a client registered with 1, 2
# and 3 management servers (so what one more server costs), and the time a GET takes with
# one server (no ACL check) and with two (an ACL check on /3311/0 before each). Heap figures
# are read in a step after the step that called gc.collect().
import gc
import time

from bench_client import Board

STEPS = 12
_figures = {}
_kept = {}
ROUNDS = 200


def _registered(count):
    # A client registered with `count` servers (ssid 101, 102 ...), /3311/0 with an ACL
    # instance giving each of them Read; returns (client, transport).
    from lwm2m import coap, core
    from lwm2m.client import Client
    from lwm2m.model import Model, load_definition
    from lwm2m.transport import MemoryTransport

    model = Model()
    for oid in (0, 1, 2, 3, 4, 3311):
        model.define(load_definition("/objects/%d.json" % oid))
    transport = MemoryTransport()
    client = Client(model, "esp32-a1b2c3", transport, "1.1", lambda line: None, lambda: 0.0)
    for i in range(count):
        core.add_security(model, "coap://127.0.0.1:%d" % (5683 + i), 101 + i)
        core.add_server(model, 101 + i, 300)
    core.add_device(model, Board(), client.defer)
    model.add_instance(3311, 0, {5850: False})
    model.add_instance(2, 0, {0: 3311, 1: 0, 2: {0: 1}})
    client.start()
    client.poll(0)
    for data, addr in transport.sent:
        register = coap.decode(data)
        answer = coap.Message(2, 0x41, register.mid, register.token)
        answer.set_path("/rd/%d" % addr[1], 8)
        transport.inject(coap.encode(answer), addr)
    transport.sent.clear()
    client.poll(10)
    return client, transport


def _get_time(client, transport):
    # us per GET /3311/0/5850 from the first server, answered in full: the best of 3 runs of
    # ROUNDS after a warm-up (the VM's timing swings)
    from lwm2m import coap

    msg = coap.Message(0, 0x01, 0, b"g")
    msg.set_path("/3311/0/5850")
    addr = ("127.0.0.1", 5683)
    best = None
    for run in range(4):
        started = time.ticks_us()
        for i in range(ROUNDS):
            msg.mid = (run * ROUNDS + i) & 0xFFFF
            transport.inject(coap.encode(msg), addr)
            client.poll(100 + i)
            transport.sent.clear()
        took = time.ticks_diff(time.ticks_us(), started) / ROUNDS
        if run and (best is None or took < best):
            best = took
    return best


def step(i):
    # 0: what the firmware imports; 1-2: lwm2m.access weighed; then for 1, 2 and 3 servers:
    # free the last client, build and register one, read its heap (and time GETs with 1 and 2)
    if i == 0:
        from lwm2m import client, core, model, transport  # noqa: F401

        gc.collect()
    elif i == 1:
        _figures["base"] = gc.mem_alloc()
        import lwm2m.access  # noqa: F401

        gc.collect()
    elif i == 2:
        _figures["access_module_bytes"] = gc.mem_alloc() - _figures["base"]
    else:
        count, phase = i // 3, i % 3
        if phase == 0:
            _kept.clear()
            gc.collect()
        elif phase == 1:
            _figures["base"] = gc.mem_alloc()
            _kept["client"] = _registered(count)
            gc.collect()
        else:
            _figures["servers_%d_bytes" % count] = gc.mem_alloc() - _figures["base"]
            if count < 3:
                _figures["get_us_%d" % count] = "%.0f" % _get_time(*_kept["client"])


def main(args):
    for key in sorted(_figures):
        print("%s=%s" % (key, _figures[key]))
