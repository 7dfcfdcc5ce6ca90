# Send (lwm2m.send, TS Core 1.1 6.4.7): the values of chosen paths POSTed to /dp unasked, in
# SenML CBOR or SenML JSON, Mute Send honoured. Portable: runs under pytest and in the
# MicroPython VM.
import json

from fakes import CON, POST, PUT, add_sensor, registered
from lwm2m import cbor, formats

TEXT, SENML_JSON, SENML_CBOR = 0, 110, 112


def test_a_send_posts_the_values_of_each_path_to_dp_in_senml_cbor():
    client, peer, _reg = registered()
    add_sensor(client)
    peer.take()
    assert client.send(["/3303/0", "/3/0/9"]) == 1  # /3/0/9 has no value: left out
    sent = [m for m in peer.take() if m.code == POST and m.path() == "/dp"]
    assert len(sent) == 1 and sent[0].type == CON and sent[0].get(12) == SENML_CBOR
    items = cbor.decode(sent[0].payload)
    assert items[0][-2] == "/" and [i[0] for i in items] == ["3303/0/5700", "3303/0/5701"]
    assert items[0][2] == 21.5 and items[1][3] == "Cel"
    assert any("send: /3/0/9 left out" in line for line in client.lines)
    types = {5700: "f", 5701: "s"}
    records = formats.decode(SENML_CBOR, (), sent[0].payload, lambda p: types[p[2]])
    assert records == [((3303, 0, 5700), "f", 21.5), ((3303, 0, 5701), "s", "Cel")]


def test_a_send_in_senml_json_and_its_answer():
    client, peer, _reg = registered()
    assert client.send(["/3/0/0"], SENML_JSON) == 1
    msg = peer.take_one()
    assert json.loads(msg.payload) == [{"bn": "/", "n": "3/0/0", "vs": "Test Maker"}]
    peer.answer(msg, 0x80)  # a server that refuses it: logged, nothing else
    client.poll(20)
    assert any("send to coap://127.0.0.1:5683 failed: 4.00 Bad Request" in line for line in client.lines)


def test_mute_send_keeps_reports_from_that_server():
    client, peer, _reg = registered()
    assert peer.request(PUT, "/1/0/23", 100, b"1", cf=TEXT).code == 0x44
    assert client.send(["/3/0/0"]) == 0 and peer.take() == []
    assert any("Mute Send on" in line for line in client.lines)
    peer.request(PUT, "/1/0/23", 110, b"0", cf=TEXT)
    assert client.send(["/3/0/0"]) == 1 and peer.take_one().path() == "/dp"


def test_send_needs_lwm2m_1_1_a_senml_format_and_a_registration():
    client, peer, _reg = registered(version="1.0")
    try:
        client.send(["/3/0/0"])
    except ValueError as exc:
        assert "LwM2M 1.1" in str(exc)
    else:
        assert False, "a 1.0 client sent"
    client, peer, _reg = registered()
    try:
        client.send(["/3/0/0"], TEXT)
    except ValueError as exc:
        assert "SenML" in str(exc)
    else:
        assert False, "sent in text"
    client.servers[0].location = None
    client.servers[0].state = 0  # not registered any more
    assert client.send(["/3/0/0"]) == 0
