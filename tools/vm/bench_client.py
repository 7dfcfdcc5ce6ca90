# Heap and allocation figures of the client inside the MicroPython VM (run by tools/bench.py
# through tools/mpvm.mjs), and the heap each cap of lwm2m.client.LIMITS holds at its default
# (steps 5 on). The VM collects garbage only between calls from JavaScript, so each figure
# is read in a step after the step that called gc.collect().
import gc

import c_modules  # noqa: F401  (first: C on the boards, not counted)

import micropython

STEPS = 14  # 6, then 2 for each of the 4 caps (see step())
_figures = {}
_kept = {}  # what must stay alive between steps


def _imports():
    # What firmware/main.py imports (the client pulls in the codecs, dm, observe and exchange;
    # object 5 lwm2m.firmware and lwm2m.store); senml.py loads later, when a server first
    # asks for JSON.
    from lwm2m import client, core, firmware, model, transport  # noqa: F401


SERVER = ("127.0.0.1", 5683)


class Sink:
    # Object 5's sink (lwm2m/firmware.py) with nothing applied before this boot; board code,
    # defined here for the same reason as Board.
    def outcome(self):
        return None


class Board:
    # Fixed answers; defined here, not imported, so its code is not counted as client data.
    def manufacturer(self):
        return "Espressif"

    def model(self):
        return "ESP32-DevKitC"

    def serial(self):
        return "a1b2c3"

    def firmware_version(self):
        return "1.29.0"

    def software_version(self):
        return "0.1"

    def device_type(self):
        return "sensor"

    def memory_total(self):
        return 320 * 1024

    def memory_free(self):
        return 100 * 1024

    def utc_offset(self):
        return "+00:00"

    def set_utc_offset(self, value):
        pass

    def time(self):
        return 1700000000

    def set_time(self, value):
        pass

    def rssi(self):
        return -60

    def ip_addresses(self):
        return ["192.0.2.7"]

    def router_addresses(self):
        return ["192.0.2.1"]

    def reboot(self):
        pass

    def factory_reset(self):
        pass


def _register():
    # A client with objects 0, 1, 3, 4, 5 and 3303, registered through an in-memory transport.
    from lwm2m import coap, core
    from lwm2m.client import Client
    from lwm2m.firmware import Firmware
    from lwm2m.model import Model, load_definition
    from lwm2m.transport import MemoryTransport

    model = Model()
    for oid in (0, 1, 3, 4, 5, 3303):
        model.define(load_definition("/objects/%d.json" % oid))
    transport = MemoryTransport()
    client = Client(model, "esp32-a1b2c3", transport, "1.1", lambda line: None, lambda: 0.0)
    board = Board()
    core.add_security(model, "coap://127.0.0.1:5683", 1)
    core.add_server(model, 1, 300)
    core.add_device(model, board, client.defer)
    core.add_connectivity(model, board)
    sensor = model.add_instance(3303, 0, {5700: 20.0, 5701: "Cel"})
    Firmware(client, Sink(), lambda: None)
    client.start()
    client.poll(0)
    register = coap.decode(transport.sent[0][0])
    _figures["register_bytes"] = len(transport.sent[0][0])
    answer = coap.Message(2, 0x41, register.mid, register.token)
    answer.set_path("/rd/ab12", 8)
    transport.inject(coap.encode(answer), SERVER)
    client.poll(10)
    transport.sent.clear()
    _kept.update(client=client, transport=transport, sensor=sensor)


def _allocations():
    from lwm2m import coap

    client = _kept["client"]
    transport = _kept["transport"]
    observe = coap.Message(0, 0x01, 0x5000, b"ob")
    observe.set_path("/3303/0/5700")
    observe.add(6, 0)
    transport.inject(coap.encode(observe), SERVER)
    client.poll(100)
    transport.sent.clear()
    rounds = 1000
    before = gc.mem_alloc()
    for i in range(rounds):
        client.poll(200 + i)
    _figures["idle_poll_bytes"] = (gc.mem_alloc() - before) // rounds
    micropython.heap_lock()
    try:
        client.poll(1300)
        _figures["idle_poll_heap_locked"] = "ok"
    finally:
        micropython.heap_unlock()
    sensor = _kept["sensor"]
    rounds = 50
    before = gc.mem_alloc()
    for i in range(rounds):
        sensor.set(5700, 20.0 + i + 1)
        client.poll(2000 + i)
    _figures["notification_bytes"] = (gc.mem_alloc() - before) // rounds
    _figures["notifications_sent"] = len(transport.sent)
    transport.sent.clear()


def step(i):
    if i == 0:
        gc.collect()
    elif i == 1:
        _figures["base"] = gc.mem_alloc()
        _imports()
        gc.collect()
    elif i == 2:
        _figures["imports_bytes"] = gc.mem_alloc() - _figures["base"]
        _register()
        gc.collect()
    elif i == 3:
        _figures["registered_bytes"] = gc.mem_alloc() - _figures["base"] - _figures["imports_bytes"]
        # prints "qstr pool: n_pool=.., n_qstr=.., n_str_data_bytes=.., n_total_bytes=..":
        # tools/bench.py reads the names interned so far, and the heap their pools take
        micropython.qstr_info()
    elif i == 4:
        _allocations()
    else:
        # The caps, in a module of their own loaded only now: loaded with this one, its names
        # would be interned before step 1 and the lib modules using the same names would
        # take less heap, changing the figures above (imports_bytes by 1.5 KB when tried).
        import bench_caps

        bench_caps.step(i)
        gc.collect()


def main(args):
    for key in sorted(_figures):
        print("%s=%s" % (key, _figures[key]))
