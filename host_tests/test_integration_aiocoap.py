# The client (tools/host_run.py, real UDP on 127.0.0.1) against a scripted aiocoap server, for
# what lwm2m-node-lib cannot do: observation with notification attributes and its
# cancellation, and reads of objects and instances in TLV, SenML JSON and LwM2M JSON.
#
# Between the two runs a relay (peers/relay.py, no loss here) that records every datagram, so
# that what the client sent can be checked on the wire, and that can send a request to the
# client from the server's address with a token of our choosing (the cancelling GET).
# aiocoap decodes what we assert on; lib/lwm2m/tlv.py decodes TLV payloads.
import asyncio
import json
import os

import aiocoap
import pytest
from aiocoap.numbers.codes import Code

import board  # boards/host/board.py: what the host run reports as the device
from lwm2m import tlv
from peers.coap_server import CoapServer, query_of
from peers.host import HostRuns, free_udp_port
from peers.relay import DOWN, UP, UdpRelay

TLV, SENML_JSON, LWM2M_JSON, TEXT, LINK = 11542, 110, 11543, 0, 40
LIFETIME = 300


@pytest.fixture(scope="module")
def lwm2m():
    # One aiocoap server, one relay, one client registered through the relay.
    server = CoapServer(free_udp_port())
    relay = None
    runs = HostRuns()
    try:
        relay = UdpRelay(("127.0.0.1", server.port))
        ep = "itest-aiocoap-%d" % os.getpid()
        client = runs.start("coap://127.0.0.1:%d" % relay.port, ep, LIFETIME)
        assert server.wait(lambda: server.root.registrations, 10), client.dump()
        client.wait_log(r"^registered with .* at /rd/x$", 5)
        yield server, relay, client, server.root.registrations[0]
    finally:
        runs.close_all()  # de-registers while the server still answers
        if relay is not None:
            relay.close()
        server.close()


def request(server, reg, code, path, timeout=10, **options):
    # One request from the server's context to the client; its response.
    async def go():
        return await server.ctx.request(aiocoap.Message(code=code, uri=server.uri(reg, path), **options)).response

    return server.call(go(), timeout)


def test_registration_seen_by_aiocoap(lwm2m):
    server, relay, client, reg = lwm2m
    assert reg.code == Code.POST and reg.mtype == aiocoap.CON
    assert query_of(reg) == {"ep": client.endpoint, "lt": str(LIFETIME), "lwm2m": "1.1", "b": "U"}
    assert reg.opt.content_format == LINK
    assert b"</3/0>" in reg.payload and b"</3303/0>" in reg.payload
    # the server sees the relay's far side; the client sees the relay as its server
    assert server.uri(reg, "") == "coap://127.0.0.1:%d" % relay.far_port


def senml_records(payload):
    # SenML JSON -> {"/3/0/0": record}: the base name carries over to the records after it.
    out = {}
    base = ""
    for rec in json.loads(payload):
        base = rec.get("bn", base)
        out[base + rec.get("n", "")] = rec
    return out


def lwm2m_json_records(payload):
    # LwM2M JSON (TS 1.0) -> {"/3/0/0": entry}
    doc = json.loads(payload)
    return {doc["bn"] + entry["n"]: entry for entry in doc["e"]}


def instance_ids(paths, oid):
    return sorted({int(p.split("/")[2]) for p in paths if p.startswith("/%d/" % oid)})


def test_read_instance_and_object_in_tlv(lwm2m):
    server, _relay, _client, reg = lwm2m
    res = request(server, reg, Code.GET, "/3/0", accept=TLV)
    assert res.code == Code.CONTENT and res.opt.content_format == TLV
    entries = tlv.decode(res.payload)
    assert all(kind == tlv.RESOURCE or kind == tlv.MULTIPLE_RESOURCE for kind, _i, _v in entries)
    values = {ident: value for _k, ident, value in entries}
    assert tlv.unpack(values[0], "s") == board.manufacturer()
    assert tlv.unpack(values[17], "s") == board.device_type()
    assert 4 not in values  # Reboot is executable, not readable

    res = request(server, reg, Code.GET, "/3", accept=TLV)
    assert res.code == Code.CONTENT and res.opt.content_format == TLV
    entries = tlv.decode(res.payload)
    assert [(kind, ident) for kind, ident, _v in entries] == [(tlv.OBJECT_INSTANCE, 0)]
    resources = {ident: value for _k, ident, value in entries[0][2]}
    assert tlv.unpack(resources[0], "s") == board.manufacturer()

    res = request(server, reg, Code.GET, "/1", accept=TLV)
    (kind, iid, inner), = tlv.decode(res.payload)
    resources = {ident: value for _k, ident, value in inner}
    assert (kind, iid) == (tlv.OBJECT_INSTANCE, 0)
    assert tlv.unpack(resources[0], "i") == 1 and tlv.unpack(resources[1], "i") == LIFETIME


def test_read_instance_and_object_in_senml_json(lwm2m):
    server, _relay, _client, reg = lwm2m
    res = request(server, reg, Code.GET, "/3/0", accept=SENML_JSON)
    assert res.code == Code.CONTENT and res.opt.content_format == SENML_JSON
    records = senml_records(res.payload)
    assert records["/3/0/0"]["vs"] == board.manufacturer()
    assert records["/3/0/11/0"]["v"] == 0  # Error Code: a multiple resource
    assert instance_ids(records, 3) == [0]

    res = request(server, reg, Code.GET, "/3", accept=SENML_JSON)
    assert res.code == Code.CONTENT and res.opt.content_format == SENML_JSON
    records = senml_records(res.payload)
    assert records["/3/0/0"]["vs"] == board.manufacturer()
    assert instance_ids(records, 3) == [0]
    assert all(p.startswith("/3/0/") for p in records)


def test_read_in_lwm2m_json(lwm2m):
    server, _relay, _client, reg = lwm2m
    for path in ("/3/0", "/3"):
        res = request(server, reg, Code.GET, path, accept=LWM2M_JSON)
        assert res.code == Code.CONTENT and res.opt.content_format == LWM2M_JSON
        records = lwm2m_json_records(res.payload)
        assert records["/3/0/0"]["sv"] == board.manufacturer()
        assert records["/3/0/16"]["sv"] == "U"
        assert instance_ids(records, 3) == [0]


def test_read_with_an_unknown_accept_is_4_06(lwm2m):
    server, _relay, _client, reg = lwm2m
    assert request(server, reg, Code.GET, "/3/0", accept=TEXT).code == Code.NOT_ACCEPTABLE
    assert request(server, reg, Code.GET, "/3/0/0", accept=TEXT).payload.decode() == board.manufacturer()


def raw_message(mtype, mid, token, code, **options):
    # A message whose type, MID and token we choose (aiocoap manages those for its own).
    msg = aiocoap.Message(code=code, **options)
    msg.mtype, msg.mid, msg.token = mtype, mid, token
    return msg


def unused_mid(relay):
    # A message ID far from the ones aiocoap has been using towards the client.
    last = relay.seen(DOWN)[-1].data
    return ((last[2] << 8 | last[3]) + 0x8000) & 0xFFFF


def _is_notification(token):
    # A notification on the wire: NON or CON, 2.05, with the observation's token.
    def match(data):
        tkl = data[0] & 0x0F
        return data[0] >> 4 & 3 < 2 and data[1] == 0x45 and bytes(data[4:4 + tkl]) == token

    return match


def test_observe_with_pmin_pmax_then_cancel(lwm2m):
    server, relay, client, reg = lwm2m
    path = "/3303/0/5700"
    res = request(server, reg, Code.PUT, path + "?pmin=1&pmax=2")
    assert res.code == Code.CHANGED
    links = request(server, reg, Code.GET, path, accept=LINK).payload.decode()
    assert links == "</3303/0/5700>;pmin=1;pmax=2"
    mark = client.mark()

    t0 = server.loop.time()
    # pmax 2 s: one at least every 2 s; pmin 1 s: at most one a second
    req, first, notes = server.observe(reg, path, 3)
    assert first.code == Code.CONTENT and first.opt.content_format == TEXT
    assert first.opt.observe is not None
    numbers = [first.opt.observe] + [n.opt.observe for _t, n in notes]
    assert numbers == sorted(set(numbers)), numbers  # strictly increasing
    for _t, note in notes:
        assert note.code == Code.CONTENT and note.opt.content_format == TEXT
        assert 17.0 <= float(note.payload.decode()) <= 25.0
    times = [t0] + [t for t, _n in notes]
    assert all(0.8 <= b - a <= 3.5 for a, b in zip(times[1:], times[2:])), times
    assert notes[-1][0] - t0 <= 10

    # Cancel: a GET with Observe 1 and the observation's token, from the server's address
    token = first.token
    notify = _is_notification(token)
    # on the wire (aiocoap would hide reordered ones): every notification so far, numbers rising
    wire = [aiocoap.Message.decode(r.data).opt.observe for r in relay.seen(UP, notify)]
    assert len(wire) >= 3 and wire == sorted(set(wire)) and wire[0] > first.opt.observe, wire
    cancel = raw_message(aiocoap.CON, unused_mid(relay), token, Code.GET, uri_path=("3303", "0", "5700"), observe=1)
    answer = relay.inject(cancel.encode(), timeout=5)
    assert answer is not None, relay.dump()
    answer = aiocoap.Message.decode(answer)
    assert (answer.mtype, answer.mid, answer.code, answer.token) == (aiocoap.ACK, cancel.mid, Code.CONTENT, token)
    assert answer.opt.observe is None  # a plain answer: the observation is over
    answered_at = relay.seen(UP, lambda d: d[2:4] == cancel.encode()[2:4])[-1].t
    server.loop.call_soon_threadsafe(req.observation.cancel)  # aiocoap forgets it too

    # 3 s: one and a half pmax, three samples of the sensor
    server.wait(lambda: False, 3.0)
    late = [r for r in relay.seen(UP, notify) if r.t > answered_at]
    assert late == [], "notifications after the cancelling GET:\n" + relay.dump()
    assert client.count_log(r"^0\.01 GET /3303/0/5700 -> 2\.05 Content$", mark) == 2  # observe, cancel


def test_reset_of_a_notification_ends_the_observation(lwm2m):
    # RFC 7641 3.6: a client's RST to a notification cancels the observation. aiocoap itself
    # ignores an unknown NON notification, so the relay sends the RST from the server's address.
    server, relay, _client, reg = lwm2m
    path = "/3303/0"
    assert request(server, reg, Code.PUT, path + "?pmin=1&pmax=2").code == Code.CHANGED

    async def observe():
        req = server.ctx.request(aiocoap.Message(code=Code.GET, uri=server.uri(reg, path), observe=0, accept=TLV))
        first = await asyncio.wait_for(req.response, 5)
        note = await asyncio.wait_for(req.observation.__aiter__().__anext__(), 4)
        return req, first, note

    req, first, note = server.call(observe(), 15)
    assert note.opt.content_format == TLV
    values = {ident: value for _k, ident, value in tlv.decode(note.payload)}
    assert 17.0 <= tlv.unpack(values[5700], "f") <= 25.0 and tlv.unpack(values[5701], "s") == "Cel"
    server.loop.call_soon_threadsafe(req.observation.cancel)
    notify = _is_notification(first.token)
    last = relay.seen(UP, notify)[-1]
    assert last.data[0] >> 4 & 3 == 1  # NON
    rst = raw_message(aiocoap.RST, note.mid, b"", Code.EMPTY)
    # the RST answers one notification (the client remembers its recent NON notifications by
    # MID); nothing comes back to an RST
    relay.inject(rst.encode(), timeout=0.3)
    sent_at = relay.seen(DOWN, lambda d: d[0] >> 4 & 3 == 3)[-1].t
    server.wait(lambda: False, 3.0)
    late = [r for r in relay.seen(UP, notify) if r.t > sent_at + 0.05]
    assert late == [], "notifications after the RST:\n" + relay.dump()
