# The heap each cap of lwm2m.client.LIMITS holds at its default, in the MicroPython VM: steps
# 5 on of bench_client (which keeps the registered client in _kept and the figures in
# _figures). The caps are filled through requests injected as the server would send them,
# each from a fresh address tuple as a socket's recvfrom() gives one. Step 5 ends the
# observation of bench_client's allocation figures and lets the duplicate cache expire; then
# each cap takes two steps: the first reads the heap (collected by the step before), fills
# the cap, checks it, lets the duplicate cache expire (but when measuring that cache) and
# collects; the second reads the heap.
import gc

from bench_client import SERVER, _figures, _kept

CAPS = ("observations", "attributes", "instances", "duplicates")
_CON = 0
_ACK = 2
_TLV = 11542
_EXPIRE_MS = 248000  # past EXCHANGE_LIFETIME (247 s): the duplicate cache forgets everything


def _addr():
    return ("%d.%d.%d.%d" % (127, 0, 0, 1), SERVER[1])


def _poll():
    # Polls the client, acknowledging what it sends (an Update with 2.04, a CON
    # notification with an empty ACK) until it sends nothing more; returns its ACKs.
    from lwm2m import coap

    client = _kept["client"]
    transport = _kept["transport"]
    acks = []
    while True:
        client.poll(_kept["now"])
        if not transport.sent:
            return acks
        sent = [coap.decode(data) for data, _to in transport.sent]
        transport.sent.clear()
        for out in sent:
            if out.type == _ACK:
                acks.append(out)
            elif out.type == _CON and 0 < out.code < 32:
                transport.inject(coap.encode(coap.Message(_ACK, 0x44, out.mid, out.token)), _addr())
            elif out.type == _CON:
                transport.inject(coap.encode(coap.Message(_ACK, 0, out.mid)), _addr())


def _send(msg):
    # One CON request from the server, with a new MID, 10 ms after the last; the answer.
    from lwm2m import coap

    msg.mid = _kept["mid"]
    _kept["mid"] = (msg.mid + 1) & 0xFFFF
    _kept["now"] += 10
    _kept["transport"].inject(coap.encode(msg), _addr())
    for ack in _poll():
        if ack.mid == msg.mid:
            return ack
    return None


def _expire():
    # Time passes beyond the exchange lifetime: the duplicate cache empties (an Update that
    # falls due meanwhile is answered).
    _kept["now"] += _EXPIRE_MS
    _poll()
    _check(not _kept["client"].exchange._seen)


def _check(ok):
    _kept["ok"] = _kept["ok"] and bool(ok)


def _request(code, path, token, accept=None, query=None):
    from lwm2m import coap

    msg = coap.Message(_CON, code, 0, token)
    msg.set_path(path)
    if query:
        msg.add_query(query)
    if accept is not None:
        msg.add(17, accept)
    return msg


def _resource_paths(oids, hooked):
    # "/oid/0/rid" of each resource holding a value (hooked: also those behind a read hook).
    model = _kept["client"].model
    paths = []
    for oid in oids:
        obj = model.object(oid)
        inst = obj.instances[0]
        for rid in sorted(obj.resources):
            if rid in inst.values or (hooked and inst.has(rid)):
                paths.append("/%d/0/%d" % (oid, rid))
    return paths


def _observe(path, token, observe):
    msg = _request(0x01, path, token)
    msg.add(6, observe)
    return _send(msg)


def _fill_observations(cap):
    # Observe GETs with distinct 8-byte tokens on distinct resources without a read hook (so
    # none is sampled); one more is to be answered as a plain Read.
    paths = _resource_paths((3, 3303, 4, 1), False)
    for i in range(cap + 1):
        answer = _observe(paths[i], ("obsv%04d" % i).encode(), 0)
        observed = answer is not None and answer.code == 0x45 and answer.get(6) is not None
        _check(answer is not None and observed == (i < cap))
    n = 0
    for obs in _kept["client"].observer.observations:
        if obs.server == 1:
            n += 1
    return n


def _fill_attributes(cap):
    # Write-Attributes pmin=5 on distinct paths (objects, instances, then resources); one
    # more is to be refused with 4.00.
    paths = []
    for oid in (1, 3, 4, 3303):
        paths += ["/%d" % oid, "/%d/0" % oid]
    paths += _resource_paths((3, 1, 4, 3303), True)
    for i in range(cap + 1):
        answer = _send(_request(0x03, paths[i], ("attr%04d" % i).encode(), query="pmin=5"))
        _check(answer is not None and answer.code == (0x44 if i < cap else 0x80))
    return len(_kept["client"].observer.attributes.get(1, {}))


def _fill_instances(cap):
    # Create POST /3303 in TLV of instances 1, 2, ... with a Sensor Value and its unit; one
    # more is to be refused with 4.00.
    from lwm2m import tlv

    for i in range(cap + 1):
        values = [(tlv.RESOURCE, 5700, tlv.pack(20.5 + i, "f")), (tlv.RESOURCE, 5701, b"Cel")]
        msg = _request(0x02, "/3303", ("crea%04d" % i).encode())
        msg.add(12, _TLV)
        msg.payload = bytes(tlv.encode([(tlv.OBJECT_INSTANCE, i + 1, values)]))
        answer = _send(msg)
        _check(answer is not None and answer.code == (0x41 if i < cap else 0x80))
    n = 0
    for inst in _kept["client"].model.object(3303).instances.values():
        if inst.creator == 1:
            n += 1
    return n


def _fill_duplicates(cap):
    # CON GETs with distinct MIDs whose answers fill the byte budget exactly, or as nearly as
    # they can: Reads of /3/0 in TLV and, as many as it takes (answers of GET /3/0 in TLV
    # alone leave it short), Discovers of /3/0, their tokens (0 to 8 bytes, which the
    # answers echo) making up the rest.
    exchange = _kept["client"].exchange
    budget = exchange._seen_cap
    read = _request(0x01, "/3/0", b"", _TLV)
    discover = _request(0x01, "/3/0", b"", 40)
    sizes = []
    for msg in (read, discover):
        _send(msg)
        sizes.append(exchange._seen_bytes - sum(sizes))  # the answers with no token
    _expire()
    discovers = 0
    while discovers < cap and cap * sizes[0] + discovers * (sizes[1] - sizes[0]) + 8 * cap < budget:
        discovers += 1
    extra = max(0, min(8 * cap, budget - cap * sizes[0] - discovers * (sizes[1] - sizes[0])))
    for i in range(cap):
        msg = discover if i < discovers else read
        msg.token = bytes((i + 1,)) * (extra // cap + (1 if i < extra % cap else 0))
        _send(msg)
    _figures["cap_duplicates_answer_bytes"] = exchange._seen_bytes
    _figures["cap_duplicate_bytes_default"] = budget
    _figures["cap_duplicates_discovers"] = discovers
    return len(exchange._seen)


def _prepare():
    # Every figure and state key exists before any is measured, so storing one later
    # allocates nothing; the observation of _allocations() ends by a GET with Observe 1.
    for name in CAPS:
        for what in ("default", "reached", "bytes", "checked"):
            _figures["cap_%s_%s" % (name, what)] = 0
    for key in ("answer_bytes", "discovers"):
        _figures["cap_duplicates_" + key] = 0
    _figures["cap_duplicate_bytes_default"] = 0
    _kept.update(now=3000, mid=0x6000, ok=True, before=0)
    _observe("/3303/0/5700", b"ob", 1)
    _expire()
    _check(not _kept["client"].observer.observations)
    _figures["cap_prepared"] = "ok" if _kept["ok"] else "failed"
    _kept["transport"].sent.clear()


def step(i):
    if i == 5:
        _prepare()
        return
    k = (i - 6) // 2
    name = CAPS[k]
    first = i % 2 == 0
    if first:
        _kept["before"] = gc.mem_alloc()
        from lwm2m.client import LIMITS

        cap = LIMITS[name]
        _kept["ok"] = True
        reached = (_fill_observations, _fill_attributes, _fill_instances, _fill_duplicates)[k](cap)
        if name != "duplicates":
            _expire()
        _figures["cap_%s_default" % name] = cap
        _figures["cap_%s_reached" % name] = reached
        _figures["cap_%s_checked" % name] = "ok" if _kept["ok"] else "failed"
        _kept["transport"].sent.clear()
    else:
        _figures["cap_%s_bytes" % name] = gc.mem_alloc() - _kept["before"]
