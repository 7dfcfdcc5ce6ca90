# The heap each module of lib/ keeps once imported, in the MicroPython VM (run by
# tools/bench.py through tools/mpvm.mjs, with lib/ as .py, as .mpy or from a ROMFS image).
# Modules are imported one per step, each after the ones it imports, so a module's figure
# is its own; the VM collects garbage only between calls, hence one step to import and the
# next to read. What a registered client imports comes first (the client's own imports), the
# features loaded on demand after it. micropython.qstr_info() is printed before the first
# import and after each, for tools/bench.py to tell how much of a module's figure went to
# the pools of interned names (a new pool, twice the last one's size, falls to whichever
# module needs the first name that does not fit).
import gc
import micropython

import c_modules  # noqa: F401  (first: C on the boards, not counted)
import sys

ORDER = ("lwm2m", "lwm2m.text", "lwm2m.tlv", "lwm2m.link", "lwm2m.coap", "lwm2m.model", "lwm2m.dm",
         "lwm2m.formats", "lwm2m.core", "lwm2m.exchange", "lwm2m.observe", "lwm2m.block",
         "lwm2m.registration", "lwm2m.serve", "lwm2m.client", "lwm2m.transport", "lwm2m.store",
         "lwm2m.firmware")
ON_DEMAND = ("lwm2m.senml", "lwm2m.cbor", "lwm2m.send", "lwm2m.hibernate", "lwm2m.access",
             "lwm2m.bootstrap", "lwm2m.download")  # lwm2m.dtls needs tls, which the VM lacks
ORDER += ON_DEMAND
STEPS = 2 * len(ORDER) + 1
_heap = []


def step(i):
    if i == 0:
        gc.collect()
        micropython.qstr_info()
        return
    _heap.append(gc.mem_alloc())
    if i % 2:
        __import__(ORDER[i // 2])
        gc.collect()
    else:
        micropython.qstr_info()


def main(args):
    # _heap: before each import, after it (read after the collection that followed), ...
    loaded = set(sys.modules)
    for n, name in enumerate(ORDER):
        kept = _heap[2 * n + 1] - _heap[2 * n] if 2 * n + 1 < len(_heap) else 0
        state = "missing" if name not in loaded else "on-demand" if name in ON_DEMAND else "loaded"
        print("module %s %d %s" % (name, kept, state))
