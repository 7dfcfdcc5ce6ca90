# The heap a single request takes, in the MicroPython VM (run by tools/bench.py through
# tools/mpvm.mjs): the client of bench_client (objects 0, 1, 3, 4, 5, 3303, registered over an
# in-memory transport) answers one request per step, and what the heap grew by during the
# step is printed. The VM collects garbage only between calls from JavaScript, so nothing
# allocated within a step is freed before it ends: the growth is the most the request can
# have held at once (an upper bound of its peak).
import gc

import c_modules  # noqa: F401  (first: C on the boards, not counted)

import bench_client

# (name, method, path, accept, observe)
REQUESTS = (
    ("Read /3/0 as TLV", 0x01, "/3/0", 11542, None),
    ("Read /3/0 as SenML JSON", 0x01, "/3/0", 110, None),
    ("Read /3/0 as LwM2M JSON", 0x01, "/3/0", 11543, None),
    ("Read /3/0 as SenML CBOR", 0x01, "/3/0", 112, None),
    ("Read /3303/0/5700 as text", 0x01, "/3303/0/5700", 0, None),
    ("Discover /3", 0x01, "/3", 40, None),
    ("Observe /3303/0/5700", 0x01, "/3303/0/5700", 0, 0),
)
STEPS = 3 + 2 * len(REQUESTS)
_grown = []
_answers = []


def step(i):
    from lwm2m import coap

    if i == 0:
        gc.collect()
    elif i == 1:
        bench_client._register()
        from lwm2m import cbor, senml  # noqa: F401  (loaded by the first request in their formats: not counted)

        gc.collect()
    elif i == 2:
        gc.collect()
    elif i % 2 == 1:  # one request, measured within this call
        name, code, path, accept, observe = REQUESTS[(i - 3) // 2]
        client = bench_client._kept["client"]
        transport = bench_client._kept["transport"]
        msg = coap.Message(0, code, 0x6000 + i, b"rq%d" % i)
        msg.set_path(path)
        if observe is not None:
            msg.add(6, observe)
        msg.add(17, accept)
        data = coap.encode(msg)
        before = gc.mem_alloc()
        transport.inject(data, bench_client.SERVER)
        client.poll(1000 + i)
        _grown.append((name, gc.mem_alloc() - before))
        answer = coap.decode(transport.sent[-1][0])
        _answers.append((name, coap.code_name(answer.code), len(answer.payload)))
        transport.sent.clear()
    else:
        gc.collect()


def main(args):
    for (name, grown), (_n, code, size) in zip(_grown, _answers):
        print("request %s|%d|%s|%d" % (name, grown, code, size))
