# Firmware update figures inside the MicroPython VM (run by tools/bench.py through
# tools/mpvm.mjs, lib/ as .mpy): the heap a pull holds above idle while it runs, for a 64 KiB
# and a 256 KiB application bundle (it must not grow with the image), the same for a push,
# and the VM time per block. The sink is the Pico W's (boards/common/bundle_sink.py) on the
# VM's memory filesystem; the file server is in memory. Heap figures are read in the step
# after the one that called gc.collect(), since the VM collects only between calls.
import gc
import hashlib
import json
import time

from bench_client import Board

STEPS = 8
FILES = ("127.0.0.1", 5690)
SERVER = ("127.0.0.1", 5683)
_figures = {}
_kept = {}


def _bundle(size):
    # A bundle (firmware/BUNDLE.md) of about `size` bytes: main.py and a filler file.
    main = b"print('bench')\n"
    filler = b"\xa5" * (size - 200)
    header = json.dumps({"name": "bench", "version": "2.0", "board": "vboard",
                         "files": [["main.py", len(main)], ["objects/filler.bin", len(filler)]]}).encode()
    body = b"LWMB\x01" + len(header).to_bytes(4, "little") + header + main + filler
    return body + hashlib.sha256(body).digest()


def _client():
    from bundle_sink import BundleSink
    from lwm2m import coap, core
    from lwm2m.client import Client
    from lwm2m.firmware import Firmware
    from lwm2m.model import Model, load_definition
    from lwm2m.transport import MemoryTransport

    model = Model()
    for oid in (0, 1, 3, 4, 5):
        model.define(load_definition("/objects/%d.json" % oid))
    transport = MemoryTransport()
    client = Client(model, "rp2-bench", transport, "1.1", lambda line: None, lambda: 0.0)
    core.add_security(model, "coap://127.0.0.1:5683", 1)
    core.add_server(model, 1, 300)
    core.add_device(model, Board(), client.defer)
    core.add_connectivity(model, Board())
    Firmware(client, BundleSink("/bench-update"), lambda: None, "/bench-firmware.json")
    client.start()
    client.poll(0)
    register = coap.decode(transport.sent.pop()[0])
    answer = coap.Message(2, 0x41, register.mid, register.token)
    answer.set_path("/rd/b", 8)
    transport.inject(coap.encode(answer), SERVER)
    client.poll(1)
    _kept.update(client=client, transport=transport, mid=0x5000)


def _serve(image, blocks):
    # Answers the client's Block2 GETs from image, `blocks` of them at most; returns how many.
    from lwm2m import coap

    client, transport = _kept["client"], _kept["transport"]
    served = 0
    while served < blocks:
        client.poll(10)
        asked = [coap.decode(d) for d, addr in transport.sent if addr == FILES]
        transport.sent.clear()
        if not asked:
            break
        for req in asked:
            num, _more, szx = req.block(23)
            size = 16 << szx
            answer = coap.Message(2, 0x45, req.mid, req.token, image[num * size:(num + 1) * size])
            answer.add(4, b"\x01")
            answer.add(23, coap.block_value(num, (num + 1) * size < len(image), szx))
            if num == 0:
                answer.add(28, len(image))
            transport.inject(coap.encode(answer), FILES)
            served += 1
    return served


def _request(code, path, payload=b"", cf=None, options=()):
    from lwm2m import coap

    client, transport = _kept["client"], _kept["transport"]
    _kept["mid"] += 1
    msg = coap.Message(0, code, _kept["mid"], b"p", payload)
    msg.set_path(path)
    if cf is not None:
        msg.add(12, cf)
    for number, value in options:
        msg.add(number, value)
    transport.inject(coap.encode(msg), SERVER)
    client.poll(10)
    transport.sent = [item for item in transport.sent if item[1] != SERVER]  # the answer


def _push(image, first, last):
    # Blocks first..last-1 of a Block1 push of image to /5/0/0.
    from lwm2m import coap

    for num in range(first, last):
        more = (num + 1) * 1024 < len(image)
        _request(3, "/5/0/0", image[num * 1024:(num + 1) * 1024], 42, [(27, coap.block_value(num, more, 6))])


def _state():
    return _kept["client"].model.instance(5, 0).get(3)


def _pull_start(size):
    _kept["image"] = _bundle(size)
    _request(3, "/5/0/1", b"coap://127.0.0.1:5690/fw", 0)
    _kept["started"] = time.ticks_us()
    _kept["blocks"] = _serve(_kept["image"], len(_kept["image"]) // 2048)


def _pull_end(name):
    _kept["blocks"] += _serve(_kept["image"], 1000)
    elapsed = time.ticks_diff(time.ticks_us(), _kept.pop("started"))
    _figures["%s_us_per_block" % name] = elapsed // _kept["blocks"]
    _figures["%s_state" % name] = _state()
    _request(3, "/5/0/1", b"", 0)  # back to Idle for the next one
    del _kept["image"]


def step(i):
    if i == 0:
        _client()
        gc.collect()
    elif i == 1:
        _figures["idle_bytes"] = gc.mem_alloc()
        _pull_start(64 * 1024)
        gc.collect()
    elif i == 2:
        _figures["pull_64k_bytes"] = gc.mem_alloc() - _figures["idle_bytes"] - len(_kept["image"])
        _pull_end("pull_64k")
        gc.collect()
    elif i == 3:
        _figures["after_64k_bytes"] = gc.mem_alloc() - _figures["idle_bytes"]
        _pull_start(256 * 1024)
        gc.collect()
    elif i == 4:
        _figures["pull_256k_bytes"] = gc.mem_alloc() - _figures["idle_bytes"] - len(_kept["image"])
        _pull_end("pull_256k")
        gc.collect()
    elif i == 5:
        _kept["image"] = _bundle(256 * 1024)
        _kept["started"] = time.ticks_us()
        _push(_kept["image"], 0, 128)
        gc.collect()
    elif i == 6:
        _figures["push_256k_bytes"] = gc.mem_alloc() - _figures["idle_bytes"] - len(_kept["image"])
        _push(_kept["image"], 128, (len(_kept["image"]) + 1023) // 1024)
        elapsed = time.ticks_diff(time.ticks_us(), _kept.pop("started"))
        _figures["push_256k_us_per_block"] = elapsed * 1024 // len(_kept["image"])
        _figures["push_256k_state"] = _state()
        del _kept["image"]
        gc.collect()
    elif i == 7:
        _figures["after_bytes"] = gc.mem_alloc() - _figures["idle_bytes"]


def main(args):
    for key in sorted(_figures):
        print("%s=%s" % (key, _figures[key]))
