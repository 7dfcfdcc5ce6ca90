# Composite operations of LwM2M 1.1 (lwm2m.serve, dm.write_composite): Read-Composite (FETCH /
# with a SenML list of paths) and Write-Composite (iPATCH / with SenML records), in SenML
# JSON and SenML CBOR. Portable: runs under pytest and in the MicroPython VM.
import json

from fakes import CON, add_sensor, registered
from lwm2m import cbor, coap

FETCH, IPATCH = 0x05, 0x07
SENML_JSON, SENML_CBOR, TLV = 110, 112, 11542


def _composite(peer, code, payload, cf, now=100, accept=None, observe=None, token=b"\x0c"):
    # One composite request on "/"; returns the client's answer.
    peer.mid += 1
    msg = coap.Message(CON, code, peer.mid, token, payload)
    if observe is not None:
        msg.add(6, observe)
    msg.add(12, cf)
    if accept is not None:
        msg.add(17, accept)
    peer.inject(msg)
    peer.client.poll(now)
    return [m for m in peer.take() if m.mid == peer.mid][0]


def test_a_composite_read_answers_every_path_in_one_senml_payload():
    client, peer, _reg = registered()
    add_sensor(client)
    paths = json.dumps([{"n": "/3/0/0"}, {"n": "/3303/0"}, {"n": "/1/0/1"}]).encode()
    answer = _composite(peer, FETCH, paths, SENML_JSON)
    assert answer.code == 0x45 and answer.get(12) == SENML_JSON
    assert json.loads(answer.payload) == [
        {"bn": "/", "n": "3/0/0", "vs": "Test Maker"}, {"n": "3303/0/5700", "v": 21.5},
        {"n": "3303/0/5701", "vs": "Cel"}, {"n": "1/0/1", "v": 300}]
    # the same in SenML CBOR, asked with a base name, answered in CBOR unless told otherwise
    answer = _composite(peer, FETCH, bytes(cbor.encode([{-2: "/3/0/", 0: "0"}, {0: "17"}])), SENML_CBOR)
    assert answer.get(12) == SENML_CBOR
    assert cbor.decode(answer.payload) == [{-2: "/", 0: "3/0/0", 3: "Test Maker"}, {0: "3/0/17", 3: "tester"}]
    answer = _composite(peer, FETCH, bytes(cbor.encode([{0: "/3/0/0"}])), SENML_CBOR, accept=SENML_JSON)
    assert json.loads(answer.payload) == [{"bn": "/", "n": "3/0/0", "vs": "Test Maker"}]


def test_paths_that_are_not_there_are_left_out_and_none_at_all_is_4_04():
    client, peer, _reg = registered()
    paths = json.dumps([{"n": "/3/0/0"}, {"n": "/3303/0"}, {"n": "/3/0/9"}, {"n": "/0/0"}]).encode()
    answer = _composite(peer, FETCH, paths, SENML_JSON)
    assert json.loads(answer.payload) == [{"bn": "/", "n": "3/0/0", "vs": "Test Maker"}]
    assert _composite(peer, FETCH, json.dumps([{"n": "/3303/0"}]).encode(), SENML_JSON).code == 0x84
    for bad in (b'[{"n": "3/0/0"}]', b'[{"n": "/3/x"}]', b'{"n": "/3"}', b"[1]", b"["):
        assert _composite(peer, FETCH, bad, SENML_JSON).code == 0x80, bad
    assert _composite(peer, FETCH, b"\x00", TLV).code == 0x8F
    assert _composite(peer, FETCH, json.dumps([{"n": "/3/0/0"}]).encode(), SENML_JSON, accept=TLV).code == 0x86


def test_a_composite_write_changes_several_instances_or_nothing():
    client, peer, _reg = registered()
    add_sensor(client)
    records = [{"bn": "/", "n": "1/0/1", "v": 600}, {"n": "3/0/14", "vs": "+02:00"}, {"n": "3303/0/5750", "vs": "room"}]
    answer = _composite(peer, IPATCH, json.dumps(records).encode(), SENML_JSON)
    assert answer.code == 0x44
    model = client.model
    assert (model.instance(1, 0).get(1), model.instance(3, 0).get(14), model.instance(3303, 0).get(5750)) == (
        600, "+02:00", "room")
    # one refused value (a bad UTC offset; a read-only resource) and nothing changes
    for bad in ([{"n": "/1/0/1", "v": 900}, {"n": "/3/0/14", "vs": "two hours"}],
                [{"n": "/1/0/1", "v": 900}, {"n": "/3/0/0", "vs": "Other Maker"}],
                [{"n": "/1/0/1", "v": 900}, {"n": "/3303/7/5750", "vs": "hall"}]):
        assert _composite(peer, IPATCH, json.dumps(bad).encode(), SENML_JSON).code in (0x80, 0x84, 0x85)
        assert model.instance(1, 0).get(1) == 600 and model.instance(3, 0).get(14) == "+02:00"
    cbor_records = bytes(cbor.encode([{-2: "/1/0/", 0: "1", 2: 700}, {0: "3", 2: 60}]))
    assert _composite(peer, IPATCH, cbor_records, SENML_CBOR).code == 0x44
    assert (model.instance(1, 0).get(1), model.instance(1, 0).get(3)) == (700, 60)


def _observe_composite(peer, paths, observe, now):
    return _composite(peer, FETCH, json.dumps([{"n": p} for p in paths]).encode(), SENML_JSON, now,
                      observe=observe, token=b"oc")


def test_an_observe_composite_notifies_the_paths_together_until_cancelled():
    client, peer, _reg = registered()
    light = client.model.add_instance(3311, 0, {5850: False})
    peer.settle(20)
    first = _observe_composite(peer, ["/3/0/0", "/3311/0/5850"], 0, 100)
    assert first.code == 0x45 and first.get(6) is not None
    assert json.loads(first.payload) == [{"bn": "/", "n": "3/0/0", "vs": "Test Maker"}, {"n": "3311/0/5850", "vb": False}]
    light.set(5850, True)
    notes = [m for m in peer.settle(200) if m.token == b"oc"]
    assert len(notes) == 1 and notes[0].get(6) > first.get(6) and notes[0].get(12) == SENML_JSON
    assert json.loads(notes[0].payload)[1] == {"n": "3311/0/5850", "vb": True}
    client.model.instance(3, 0).set(14, "+03:00")  # not an observed path: nothing
    assert [m for m in peer.settle(300) if m.token == b"oc"] == []
    cancel = _observe_composite(peer, ["/3/0/0", "/3311/0/5850"], 1, 400)
    assert cancel.code == 0x45 and cancel.get(6) is None
    light.set(5850, False)
    assert [m for m in peer.settle(500) if m.token == b"oc"] == []


def test_an_observe_composite_takes_the_shortest_pmax_and_pmin_of_its_paths():
    # pmax=10 on one path (the other has none): notified at 10 s with no change; pmin=5 on
    # a path and 20 on the other: a change waits for the shorter, 5 s.
    client, peer, _reg = registered()
    light = client.model.add_instance(3311, 0, {5850: False})
    peer.settle(20)
    for path, query in (("/3311/0/5850", ["pmax=10", "pmin=5"]), ("/3/0/0", ["pmin=20"])):
        peer.mid += 1
        msg = coap.Message(CON, 0x03, peer.mid, b"wa", b"")
        msg.set_path(path)
        for q in query:
            msg.add(15, q)
        peer.inject(msg)
        client.poll(30)
        assert [m.code for m in peer.take() if m.mid == peer.mid] == [0x44]
    first = _observe_composite(peer, ["/3/0/0", "/3311/0/5850"], 0, 100)
    assert first.code == 0x45
    light.set(5850, True)
    assert [m for m in peer.settle(4000) if m.token == b"oc"] == []  # within the shortest pmin
    notes = [m for m in peer.settle(5200) if m.token == b"oc"]
    assert len(notes) == 1 and json.loads(notes[0].payload)[1] == {"n": "3311/0/5850", "vb": True}
    assert [m for m in peer.settle(15000) if m.token == b"oc"] == []
    notes = [m for m in peer.settle(15300) if m.token == b"oc"]  # no change: the shortest pmax, 10 s after
    assert len(notes) == 1
