# The client (tools/host_run.py, real UDP on 127.0.0.1) against Eclipse Leshan 2.0.0-M15, the
# server most deployments and the public sandbox run, over plain CoAP. Leshan runs in one JVM
# for the whole session (host_tests/peers/leshan/LeshanPeer.java, built by make setup, driven
# by peers/leshan_server.py); each test starts its own client with an endpoint name of its
# own. What is asserted is what Leshan saw and decoded: the registration, Updates, the
# De-register, Read in every format the client offers, Write, Execute, Discover,
# Write-Attributes and notifications, compared with what the host board and the object
# definitions say the client holds.
#
# Leshan decodes a payload with the model of the object version the client registered; it
# brings objects 0-7 itself, the Temperature object (3303) comes from the DDF files of
# ../shared/lwm2m-registry, so the tests that read 3303 skip without that folder.
import json
import os
import re
import time
from collections import namedtuple

import pytest

import board  # boards/host/board.py: what the host run reports as the device
from peers.host import ROOT
from peers.leshan_server import LeshanError, LeshanServer, available, model_dirs
from peers.pki import Pki

LIFETIME = 300
_COUNTER = [0]

needs_registry = pytest.mark.skipif(
    not model_dirs(), reason="Leshan needs the Temperature DDF (3303) of ../shared/lwm2m-registry")

Client = namedtuple("Client", "run ep reg")


def endpoint(tag):
    _COUNTER[0] += 1
    return "itest-leshan-%s-%d-%d" % (tag, os.getpid(), _COUNTER[0])


def definitions():
    # {object id: object version} of the definitions the host run loads
    out = {}
    for path in (ROOT / "firmware" / "objects").glob("*.json"):
        with open(path) as f:
            d = json.load(f)
        out[d["id"]] = d["ver"]
    return out


def links_of(payload):
    # '</>;rt="oma.lwm2m";ct=110,</1>;ver=1.1,</1/0>' -> {"/": {...}, "/1": {...}, "/1/0": {}}
    out = {}
    for item in payload.split(","):
        parts = item.split(";")
        assert parts[0].startswith("<") and parts[0].endswith(">"), payload
        out[parts[0][1:-1]] = dict(p.split("=", 1) if "=" in p else (p, None) for p in parts[1:])
    return out


def device_values():
    # Device /3/0 as the host run fills it (lib/lwm2m/core.py add_device), less Current Time
    return {
        "0": board.manufacturer(), "1": board.model(), "2": board.serial(), "3": board.firmware_version(),
        "10": board.memory_free() // 1024, "11": {"0": 0}, "14": board.utc_offset(), "16": "U",
        "17": board.device_type(), "19": board.software_version(), "21": board.memory_total() // 1024,
    }


@pytest.fixture(scope="session")
def leshan():
    reason = available()
    if reason:
        pytest.fail(reason)
    server = LeshanServer()
    yield server
    server.close()


def start_client(leshan, hosts, tag, version="1.1"):
    ep = endpoint(tag)
    mark = leshan.mark()
    run = hosts.start(leshan.coap_uri, ep, LIFETIME, version)
    reg = leshan.wait_event("registered", 15, start=mark, endpoint=ep)
    run.wait_log(r"^registered with ", 10)
    return Client(run, ep, reg)


@pytest.fixture
def client(leshan, hosts, request):
    # A registered client of this test's own (stopped, so de-registered, after it)
    return start_client(leshan, hosts, request.node.originalname.replace("test_", "")[:20].replace("_", "-"))


# -- registration


def test_registration_as_leshan_saw_it(leshan, client):
    run, ep, reg = client
    assert reg["endpoint"] == ep
    assert reg["lifetime"] == LIFETIME
    assert reg["version"] == "1.1"
    assert reg["binding"] == "U"
    assert reg["queue"] is False and reg["sms"] is None
    assert reg["secure"] is False and reg["identity"] is None and reg["transport"] == "coap"
    assert reg["address"] == "127.0.0.1" and reg["root"] == "/"
    assert reg["replaced"] is False
    links = links_of(reg["links"])
    assert links["/"] == {"rt": '"oma.lwm2m"', "ct": "110"}
    instances = sorted(t for t in links if t.count("/") == 2)
    assert instances == ["/1/0", "/3/0", "/3303/0", "/3311/0", "/4/0"]
    # an object link carries ver= when the definition's version is not 1.0, and always for
    # the core objects (0 to 7) of a 1.1 client
    versions = definitions()
    for oid in (1, 2, 3, 4, 5, 3303, 3311):
        expected = {"ver": versions[oid]} if versions[oid] != "1.0" or oid < 8 else None
        assert links.get("/%d" % oid) == expected, (oid, reg["links"])
    assert not any(t == "/0" or t.startswith("/0/") for t in links)  # Security is never listed
    # the location Leshan gave is the one the client uses, and Leshan lists the client
    run.wait_log(r"^registered with coap://127\.0\.0\.1:%d at /rd/%s$" % (leshan.coap_port, reg["id"]), 1)
    assert [c["id"] for c in leshan.clients() if c["endpoint"] == ep] == [reg["id"]]


def test_object_versions_as_leshan_understands_them(client):
    versions = definitions()
    assert client.reg["objects"] == {str(oid): versions[oid] for oid in (1, 2, 3, 4, 5, 3303, 3311)}


def test_a_1_0_client_registers_as_1_0(leshan, hosts):
    _run, ep, reg = start_client(leshan, hosts, "v10", version="1.0")
    assert reg["version"] == "1.0" and reg["binding"] == "U"
    assert "/" not in links_of(reg["links"])  # the root link with ct= is LwM2M 1.1
    assert reg["objects"]["4"] == "1.0"  # a 1.0 client: a core object without ver= is 1.0
    answer = leshan.read(ep, "/3/0")
    assert answer["format"] == "TLV"
    assert answer["content"]["resources"]["0"] == board.manufacturer()


def test_execute_registration_update_trigger_sends_an_update(leshan, client):
    run, ep, reg = client
    mark = leshan.mark()
    log_mark = run.mark()
    assert leshan.execute(ep, "/1/0/8")["code"] == "CHANGED"
    update = leshan.wait_event("updated", 10, start=mark, endpoint=ep)
    assert update["id"] == reg["id"]
    # nothing changed: no lifetime, binding or links in the Update
    assert update["update"] == {"lifetime": None, "binding": None, "links": None, "sms": None}
    assert update["lifetime"] == LIFETIME and update["links"] == reg["links"]
    run.wait_log(r"^0\.02 POST /1/0/8 -> 2\.04 Changed$", 1, log_mark)
    run.wait_log(r"^update coap://127\.0\.0\.1:%d at /rd/%s$" % (leshan.coap_port, reg["id"]), 1, log_mark)
    time.sleep(0.3)
    assert len(leshan.events("updated", mark, ep)) == 1


def test_write_lifetime_updates_the_registration(leshan, client):
    run, ep, reg = client
    mark = leshan.mark()
    assert leshan.write(ep, "/1/0/1", 600)["code"] == "CHANGED"
    update = leshan.wait_event("updated", 10, start=mark, endpoint=ep)
    assert update["update"]["lifetime"] == 600 and update["update"]["links"] is None
    assert update["lifetime"] == 600
    assert leshan.value(ep, "/1/0/1") == 600
    assert [c["lifetime"] for c in leshan.clients() if c["endpoint"] == ep] == [600]
    # a lifetime of 0 is refused and nothing is sent
    mark = leshan.mark()
    with pytest.raises(LeshanError) as err:
        leshan.write(ep, "/1/0/1", 0, format="TLV")
    assert err.value.code == "BAD_REQUEST"
    assert leshan.value(ep, "/1/0/1") == 600
    assert leshan.events("updated", mark, ep) == []


def test_stopping_the_client_deregisters(leshan, hosts):
    run, ep, reg = start_client(leshan, hosts, "bye")
    mark = leshan.mark()
    run.terminate()
    gone = leshan.wait_event("deregistered", 10, start=mark, endpoint=ep)
    assert gone["id"] == reg["id"] and gone["expired"] is False and gone["replaced"] is False
    assert run.wait_exit(15) == 0, run.dump()
    assert run.log()[-2:] == ["de-register from coap://127.0.0.1:%d" % leshan.coap_port, "stopped"]
    assert not any(c["endpoint"] == ep for c in leshan.clients())
    with pytest.raises(LeshanError) as err:
        leshan.read(ep, "/3/0/0")
    assert "no registration" in err.value.error


# -- Read


@pytest.mark.parametrize("fmt, ct", [("TLV", 11542), ("SENML_JSON", 110), ("SENML_CBOR", 112), ("JSON", 11543),
                                     (None, 11542)])
def test_read_device_instance(leshan, client, fmt, ct):
    answer = leshan.read(client.ep, "/3/0", fmt)
    assert answer["code"] == "CONTENT" and answer["ct"] == ct  # without Accept: TLV
    content = answer["content"]
    assert content["kind"] == "instance" and content["id"] == 0
    values = dict(content["resources"])
    now = values.pop("13")
    assert abs(now - time.time()) < 5  # Current Time, as Leshan decoded the TIME value
    assert values == device_values()
    assert content["types"]["13"] == "TIME" and content["types"]["11"] == "INTEGER"
    assert content["types"]["0"] == "STRING"


def test_read_object_and_multiple_resource(leshan, client):
    content = leshan.read(client.ep, "/3", "TLV")["content"]
    assert content["kind"] == "object" and list(content["instances"]) == ["0"]
    assert content["instances"]["0"]["resources"]["0"] == board.manufacturer()
    error_codes = leshan.read(client.ep, "/3/0/11", "SENML_JSON")["content"]
    assert error_codes == {"kind": "multiple", "id": 11, "type": "INTEGER", "values": {"0": 0}}
    connectivity = leshan.read(client.ep, "/4/0", "TLV")["content"]["resources"]
    assert connectivity["0"] == 21 and connectivity["2"] == board.rssi()
    assert connectivity["4"] == {str(i): a for i, a in enumerate(board.ip_addresses())}


def test_read_single_resources_as_text(leshan, client):
    ep = client.ep
    for path, expected in (("/3/0/0", board.manufacturer()), ("/3/0/17", board.device_type()),
                           ("/3/0/16", "U"), ("/3/0/19", board.software_version()), ("/1/0/1", LIFETIME),
                           ("/1/0/6", False)):
        for fmt in ("TEXT", "CBOR"):
            answer = leshan.read(ep, path, fmt)
            assert answer["format"] == fmt and answer["content"]["value"] == expected, answer
    assert abs(leshan.value(ep, "/3/0/13", "TEXT") - time.time()) < 5
    instance = leshan.read(ep, "/3/0/11/0", "TEXT")["content"]
    assert instance == {"kind": "resource-instance", "id": 0, "type": "INTEGER", "value": 0}
    # without Accept one resource comes as plain text
    answer = leshan.read(ep, "/3/0/0")
    assert answer["format"] == "TEXT" and answer["content"]["value"] == board.manufacturer()


@needs_registry
def test_read_temperature(leshan, client):
    for fmt in ("TEXT", "TLV", "SENML_JSON", "CBOR", "SENML_CBOR"):
        content = leshan.read(client.ep, "/3303/0/5700", fmt)["content"]
        assert content["type"] == "FLOAT" and 17.0 <= content["value"] <= 25.0  # 21 +- 3 degrees
    resources = leshan.read(client.ep, "/3303/0", "TLV")["content"]["resources"]
    assert resources["5701"] == "Cel" and 17.0 <= resources["5700"] <= 25.0


def test_read_as_opaque(leshan, client):
    # The client holds no opaque resource a server may read (Security is not readable), and
    # octet-stream carries opaque resources only: a string is refused with 4.06.
    mark = client.run.mark()
    with pytest.raises(LeshanError) as err:
        leshan.read(client.ep, "/3/0/0", "OPAQUE")
    assert (err.value.code, err.value.coap) == ("NOT_ACCEPTABLE", "4.06")
    client.run.wait_log(r"^0\.01 GET /3/0/0 -> 4\.06 Not Acceptable", 1, mark)


# -- Write and Execute


@pytest.mark.parametrize("fmt, offset", [("TEXT", "+02:00"), ("TLV", "-05:30"), ("SENML_JSON", "+09:00"),
                                         ("JSON", "+01:00"), ("CBOR", "+03:00"), ("SENML_CBOR", "-01:00")])
def test_write_utc_offset_then_read_back(leshan, client, fmt, offset):
    mark = client.run.mark()
    assert leshan.write(client.ep, "/3/0/14", offset, fmt)["code"] == "CHANGED"
    assert leshan.value(client.ep, "/3/0/14") == offset
    assert leshan.read(client.ep, "/3/0", "TLV")["content"]["resources"]["14"] == offset
    client.run.wait_log(r"^0\.03 PUT /3/0/14 -> 2\.04 Changed$", 1, mark)
    with pytest.raises(LeshanError) as err:
        leshan.write(client.ep, "/3/0/14", "two hours", fmt)
    assert err.value.code == "BAD_REQUEST"
    assert leshan.value(client.ep, "/3/0/14") == offset


def test_write_current_time(leshan, client):
    assert leshan.write(client.ep, "/3/0/13", 1700000000, "TLV")["code"] == "CHANGED"
    assert 1700000000 <= leshan.value(client.ep, "/3/0/13", "TLV") <= 1700000005


def test_write_to_a_read_only_resource_is_refused(leshan, client):
    with pytest.raises(LeshanError) as err:
        leshan.write(client.ep, "/3/0/0", "Someone Else", "TEXT")
    assert (err.value.code, err.value.coap) == ("METHOD_NOT_ALLOWED", "4.05")
    assert leshan.value(client.ep, "/3/0/0") == board.manufacturer()


def test_execute(leshan, client):
    mark = client.run.mark()
    # Reset Error Code, with arguments (which it ignores)
    assert leshan.execute(client.ep, "/3/0/12", args="0='now'")["code"] == "CHANGED"
    client.run.wait_log(r"^0\.02 POST /3/0/12 -> 2\.04 Changed$", 1, mark)
    with pytest.raises(LeshanError) as err:
        leshan.execute(client.ep, "/3/0/0")
    assert err.value.code == "METHOD_NOT_ALLOWED"


# -- Discover and Write-Attributes


def test_discover(leshan, client):
    links = leshan.discover(client.ep, "/3/0")
    assert list(links)[0] == "/3/0" and links["/3/0"] == {}
    assert sorted(int(t.split("/")[3]) for t in links if t.count("/") == 3) == \
        [0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 16, 17, 19, 21]
    assert links["/3/0/11"] == {"dim": "1"}  # Error Code: one instance
    assert "/3/0/9" not in links  # no Battery Level on the host
    assert leshan.discover(client.ep, "/3")["/3"] == {"ver": definitions()[3]}
    server = leshan.discover(client.ep, "/1/0")
    assert "/1/0/1" in server and "/1/0/8" in server
    assert leshan.discover(client.ep, "/3/0/13") == {"/3/0/13": {}}


def test_write_attributes_show_in_discover(leshan, client):
    ep = client.ep
    assert leshan.write_attributes(ep, "/3/0/13", {"pmin": 10, "pmax": 60})["code"] == "CHANGED"
    assert leshan.discover(ep, "/3/0")["/3/0/13"] == {"pmin": "10", "pmax": "60"}
    assert leshan.write_attributes(ep, "/3/0", {"pmax": 300})["code"] == "CHANGED"
    assert leshan.discover(ep, "/3/0")["/3/0"] == {"pmax": "300"}
    # a bare name removes the attribute
    assert leshan.write_attributes(ep, "/3/0/13", {"pmin": None})["code"] == "CHANGED"
    assert leshan.discover(ep, "/3/0/13") == {"/3/0/13": {"pmax": "60"}}
    assert leshan.write_attributes(ep, "/3303/0/5700", {"gt": 30, "lt": 10.5, "st": 0.5})["code"] == "CHANGED"
    assert leshan.discover(ep, "/3303/0/5700") == {"/3303/0/5700": {"gt": "30", "lt": "10.5", "st": "0.5"}}
    with pytest.raises(LeshanError) as err:
        leshan.write_attributes(ep, "/3/0/0", {"gt": 5})  # not a number
    assert err.value.code == "BAD_REQUEST"
    # with the gt and st already set, lt=29.5 breaks lt + 2*st < gt: only the client can tell
    with pytest.raises(LeshanError) as err:
        leshan.write_attributes(ep, "/3303/0/5700", {"lt": 29.5})
    assert err.value.code == "BAD_REQUEST"
    assert leshan.discover(ep, "/3303/0/5700") == {"/3303/0/5700": {"gt": "30", "lt": "10.5", "st": "0.5"}}


# -- Observe


def _notifications(leshan, ep, path, start, count, timeout):
    # Waits for `count` notifications of path from index start on; returns them all.
    deadline = time.monotonic() + timeout
    while True:
        seen = [n for n in leshan.events("notification", start, ep) if n["path"] == path]
        if len(seen) >= count or time.monotonic() >= deadline:
            return seen
        time.sleep(0.05)


def assert_no_more_notifications(leshan, seconds=2.5):
    # Nothing with an Observe option reaches Leshan for that long: the trace shows what
    # arrives, also what Leshan no longer has an observation for (and so no event). The
    # tests run one at a time, so this test's client is the only one observed.
    trace = leshan.trace_mark()
    time.sleep(seconds)
    arrived = [l for l in leshan.err.lines(trace) if re.match(r'coap <- (NON|CON)-2\.05 .*"Observe"', l)]
    assert arrived == [], "\n".join(arrived)


@needs_registry
def test_observe_temperature_then_cancel_passively(leshan, client):
    ep, path = client.ep, "/3303/0/5700"
    mark = leshan.mark()
    first = leshan.observe(ep, path)
    assert first["code"] == "CONTENT" and first["format"] == "TEXT"
    assert 17.0 <= first["content"]["value"] <= 25.0
    # the simulated sensor drifts, sampled every second: a notification each second or so
    seen = _notifications(leshan, ep, path, mark, 2, 6)
    assert len(seen) >= 2, leshan.dump()
    assert all(n["code"] == "CONTENT" and n["content"]["type"] == "FLOAT" for n in seen)
    assert all(17.0 <= n["content"]["value"] <= 25.0 for n in seen)
    numbers = [n["observe"] for n in seen]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    # Leshan forgets the observation: it answers the client's next notification with a Reset,
    # which ends the observation there too
    trace = leshan.trace_mark()
    assert leshan.cancel_observe(ep, path)["cancelled"] == 1
    leshan.wait_trace(r"^coap -> RST ", 5, trace)
    assert_no_more_notifications(leshan)


@needs_registry
def test_observe_instance_in_senml_then_cancel_actively(leshan, client):
    ep, path = client.ep, "/3303/0"
    mark = leshan.mark()
    first = leshan.observe(ep, path, "SENML_JSON")
    assert first["format"] == "SENML_JSON" and first["content"]["resources"]["5701"] == "Cel"
    seen = _notifications(leshan, ep, path, mark, 1, 6)
    assert seen and seen[0]["format"] == "SENML_JSON", leshan.dump()
    assert seen[0]["content"]["kind"] == "instance" and 17.0 <= seen[0]["content"]["resources"]["5700"] <= 25.0
    # a GET with Observe 1: answered with the value, and the notifications stop
    cancel = leshan.cancel_observe(ep, path, active=True)
    assert cancel["code"] == "CONTENT" and cancel["content"]["resources"]["5701"] == "Cel"
    assert_no_more_notifications(leshan)


def test_observe_with_pmax(leshan, client):
    # Manufacturer never changes: only pmax makes the client notify, each second with pmax=1.
    ep, path = client.ep, "/3/0/0"
    mark = leshan.mark()
    assert leshan.observe(ep, path, "TLV")["content"]["value"] == board.manufacturer()
    assert_no_more_notifications(leshan, 1.5)  # nothing changed, no pmax
    assert leshan.write_attributes(ep, path, {"pmax": 1})["code"] == "CHANGED"
    seen = _notifications(leshan, ep, path, mark, 2, 5)
    assert len(seen) >= 2, leshan.dump()
    assert all(n["format"] == "TLV" and n["content"]["value"] == board.manufacturer() for n in seen)
    assert leshan.cancel_observe(ep, path, active=True)["code"] == "CONTENT"
    assert_no_more_notifications(leshan, 1.5)


# -- over DTLS with a pre-shared key (Leshan's CoAPS endpoint, its security store set per
#    endpoint as the demo's Security page does)

PSK_KEY = "00112233445566778899aabbccddeeff"


def start_psk_client(leshan, hosts, tag, key=PSK_KEY):
    ep = endpoint(tag)
    identity = ep + "-id"
    leshan.add_psk(ep, identity, PSK_KEY)
    run = hosts.start(leshan.coaps_uri, ep, LIFETIME, extra=["--psk-identity", identity, "--psk-key", key])
    return run, ep, identity


@needs_registry
def test_psk_registration_read_write_execute_and_observe(leshan, hosts):
    mark = leshan.mark()
    started = time.monotonic()
    run, ep, identity = start_psk_client(leshan, hosts, "psk")
    reg = leshan.wait_event("registered", 20, start=mark, endpoint=ep)
    assert reg["secure"] is True and reg["identity"] == identity and reg["transport"] == "coaps"
    line = run.wait_log(r"^registered with coaps://127\.0\.0\.1:%d at /rd/%s over TLS-PSK-WITH-" % (
        leshan.coaps_port, reg["id"]), 10)
    print("DTLS: %s, registered %.2f s after the start" % (line.rsplit(" ", 1)[1], time.monotonic() - started))
    assert leshan.read(ep, "/3/0", "TLV")["content"]["resources"]["0"] == board.manufacturer()
    assert leshan.write(ep, "/3/0/14", "+04:00", "TEXT")["code"] == "CHANGED"
    assert leshan.value(ep, "/3/0/14") == "+04:00"
    mark = leshan.mark()
    assert leshan.execute(ep, "/1/0/8")["code"] == "CHANGED"
    leshan.wait_event("updated", 10, start=mark, endpoint=ep)
    mark = leshan.mark()
    assert leshan.observe(ep, "/3303/0/5700")["code"] == "CONTENT"
    assert len(_notifications(leshan, ep, "/3303/0/5700", mark, 2, 6)) >= 2, leshan.dump()
    leshan.cancel_observe(ep, "/3303/0/5700", active=True)
    mark = leshan.mark()
    run.terminate()
    leshan.wait_event("deregistered", 10, start=mark, endpoint=ep)
    assert run.wait_exit(10) == 0


def test_a_wrong_psk_registers_nowhere_and_says_what_to_check(leshan, hosts):
    mark = leshan.mark()
    run, ep, _identity = start_psk_client(leshan, hosts, "badkey", key="ff" * 16)
    run.wait_log(r"register with coaps://\S+ failed \(the DTLS handshake timed out: check the PSK identity and key\)", 40)
    assert leshan.events("registered", mark, ep) == []


# -- over DTLS with X.509 certificates (Security Mode 2): a CA made at run time, Leshan's
#    certificate signed by it, and for each client a certificate with CN = its endpoint name
#    (Leshan takes an X.509 client for the endpoint its CN names); a second Leshan whose CoAPS
#    endpoint holds the server certificate and trusts the CA, PSK still beside it. The client
#    checks Leshan's certificate as its Certificate Usage (/0/x/15, lwm2m.dtls) says: by
#    default (3) it pins the certificate it was given; with 0 or 2 it was given the CA and
#    checks the chain and the name (Leshan's certificate names 127.0.0.1, the host of its URI).


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("x509"))


@pytest.fixture(scope="module")
def leshan_x509(pki):
    reason = available()
    if reason:
        pytest.fail(reason)
    started = time.monotonic()
    server = LeshanServer(x509_cert=pki.server_cert, x509_key=pki.server_key, x509_trust=[pki.ca_file])
    print("Leshan with X.509 listening %.2f s after the start" % (time.monotonic() - started))
    yield server
    server.close()


def start_x509_client(leshan, hosts, pki, tag, trust=None, usage=3, uri=None, **cert):
    # trust: the server's certificate the client is given (/0/x/4), by default Leshan's own
    ep = endpoint(tag)
    leshan.add_x509(ep)
    certificate, key = pki.client(ep, **cert)
    run = hosts.start(uri or leshan.coaps_uri, ep, LIFETIME, extra=[
        "--certificate", certificate, "--private-key", key, "--server-certificate", trust or pki.server_cert,
        "--certificate-usage", str(usage)])
    return run, ep


def test_x509_registration_read_and_deregistration(leshan_x509, hosts, pki):
    leshan = leshan_x509
    mark = leshan.mark()
    started = time.monotonic()
    run, ep = start_x509_client(leshan, hosts, pki, "x509")
    reg = leshan.wait_event("registered", 20, start=mark, endpoint=ep)
    registered = time.monotonic() - started
    assert reg["secure"] is True and reg["transport"] == "coaps"
    assert (reg["identity_type"], reg["identity"]) == ("x509", ep)  # the CN of the client's certificate
    line = run.wait_log(r"^registered with coaps://127\.0\.0\.1:%d at /rd/%s over TLS-ECDHE-ECDSA-WITH-" % (
        leshan.coaps_port, reg["id"]), 10)
    suite = line.rsplit(" ", 1)[1]
    t = time.monotonic()
    content = leshan.read(ep, "/3/0", "TLV")["content"]
    read = time.monotonic() - t
    assert content["resources"]["0"] == board.manufacturer()
    print("DTLS: %s, registered %.2f s after the start, Read /3/0 %.3f s" % (suite, registered, read))
    mark = leshan.mark()
    run.terminate()
    gone = leshan.wait_event("deregistered", 10, start=mark, endpoint=ep)
    assert gone["id"] == reg["id"] and gone["expired"] is False
    assert run.wait_exit(15) == 0, run.dump()
    assert run.log()[-2:] == ["de-register from coaps://127.0.0.1:%d" % leshan.coaps_port, "stopped"]


def test_x509_with_pem_files(leshan_x509, hosts, pki):
    # the same with the client's certificate and key as PEM
    leshan = leshan_x509
    mark = leshan.mark()
    run, ep = start_x509_client(leshan, hosts, pki, "x509pem", pem=True)
    reg = leshan.wait_event("registered", 20, start=mark, endpoint=ep)
    assert (reg["secure"], reg["identity_type"], reg["identity"]) == (True, "x509", ep)
    assert leshan.value(ep, "/3/0/0") == board.manufacturer()


@needs_registry
def test_psk_beside_x509_on_the_same_endpoint(leshan_x509, hosts):
    leshan = leshan_x509
    mark = leshan.mark()
    run, ep, identity = start_psk_client(leshan, hosts, "x509psk")
    reg = leshan.wait_event("registered", 20, start=mark, endpoint=ep)
    assert (reg["secure"], reg["identity_type"], reg["identity"]) == (True, "psk", identity)
    run.wait_log(r"^registered with coaps://\S+ at /rd/%s over TLS-PSK-WITH-" % reg["id"], 10)
    assert leshan.value(ep, "/3/0/0") == board.manufacturer()


def test_x509_a_certificate_for_another_endpoint_is_refused(leshan_x509, hosts, pki):
    # CN names someone else: the handshake succeeds (the CA signed it), Leshan refuses the
    # Register (4.03) and registers nothing
    leshan = leshan_x509
    mark = leshan.mark()
    run, ep = start_x509_client(leshan, hosts, pki, "x509cn", cn="someone-else")
    run.wait_log(r"register with coaps://\S+ failed", 30)
    assert leshan.events("registered", mark, ep) == []


# A failed certificate handshake: the server's fatal alert (a client certificate of another
# CA), or the client's own verification (a server certificate it does not trust). Unlike a
# wrong PSK (the server stays silent) the failure is known at once: the client reports a
# failed Register within seconds, with mbedTLS's reason, and retries later without
# restarting.
PIN_REFUSED = "failed (MBEDTLS_ERR_X509_FATAL_ERROR: the server's certificate is not the one of /0/x/4)"


def _assert_register_fails_quietly(leshan, run, ep, mark, reason):
    line = run.wait_log(r"register with coaps://\S+ failed \(|client stopped by ", 45)
    assert not line.startswith("client stopped by "), line
    assert reason in line, line  # mbedTLS's reason, not a PSK hint
    assert leshan.events("registered", mark, ep) == []
    # told at once, not after the handshake deadline
    first, failed = run.out.items[0][0], next(t for t, l in run.out.items if "failed (" in l or "stopped by" in l)
    assert failed - first < 10, "%.1f s" % (failed - first)


def test_x509_a_client_certificate_of_another_ca_is_refused(leshan_x509, hosts, pki, tmp_path):
    leshan = leshan_x509
    other = Pki(tmp_path)
    mark = leshan.mark()
    ep = endpoint("x509ca")
    leshan.add_x509(ep)
    certificate, key = other.client(ep)
    run = hosts.start(leshan.coaps_uri, ep, LIFETIME, extra=[
        "--certificate", certificate, "--private-key", key, "--server-certificate", pki.server_cert])
    _assert_register_fails_quietly(leshan, run, ep, mark, "failed (MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE)")


def test_x509_a_server_certificate_the_client_does_not_trust(leshan_x509, hosts, pki, tmp_path):
    # Certificate Usage 3 (the default) pins the certificate given: Leshan's is another
    leshan = leshan_x509
    other = Pki(tmp_path)
    mark = leshan.mark()
    run, ep = start_x509_client(leshan, hosts, pki, "x509trust", trust=other.server_cert)
    _assert_register_fails_quietly(leshan, run, ep, mark, PIN_REFUSED)


@pytest.mark.parametrize("usage", [0, 2])
def test_x509_the_ca_as_constraint_or_trust_anchor_checks_chain_and_name(leshan_x509, hosts, pki, usage):
    # Certificate Usage 0 (CA constraint) and 2 (trust anchor) with the CA: Leshan's chain
    # leads to it and its certificate names the URI's host (127.0.0.1)
    leshan = leshan_x509
    mark = leshan.mark()
    run, ep = start_x509_client(leshan, hosts, pki, "x509u%d" % usage, trust=pki.ca_file, usage=usage)
    reg = leshan.wait_event("registered", 20, start=mark, endpoint=ep)
    assert (reg["secure"], reg["identity_type"], reg["identity"]) == (True, "x509", ep)
    run.wait_log(r"^registered with coaps://127\.0\.0\.1:%d at /rd/%s over TLS-ECDHE-ECDSA-WITH-" % (
        leshan.coaps_port, reg["id"]), 10)


def test_x509_a_certificate_that_does_not_name_the_host_is_refused(leshan_x509, hosts, pki):
    # Usage 2 with the CA, the server reached as localhost: Leshan's certificate names
    # 127.0.0.1. MicroPython's tls raises ValueError for a certificate CERT_REQUIRED refuses
    # (mbedTLS's reason; the stand-in's python-mbedtls tells no more than this).
    leshan = leshan_x509
    mark = leshan.mark()
    run, ep = start_x509_client(leshan, hosts, pki, "x509name", trust=pki.ca_file, usage=2,
                                uri="coaps://localhost:%d" % leshan.coaps_port)
    _assert_register_fails_quietly(leshan, run, ep, mark, "Certificate verification failed")


def test_x509_the_ca_pinned_as_the_server_certificate_is_refused(leshan_x509, hosts, pki):
    # Usage 3 with the CA: a CA is not the server's own certificate
    leshan = leshan_x509
    mark = leshan.mark()
    run, ep = start_x509_client(leshan, hosts, pki, "x509u3ca", trust=pki.ca_file)
    _assert_register_fails_quietly(leshan, run, ep, mark, PIN_REFUSED)


def test_x509_a_self_signed_service_certificate(hosts, pki):
    # Certificate Usage 1 (service certificate constraint): the server's certificate must be
    # /0/x/4 and pass validation with it as the anchor, which a self-signed one does
    reason = available()
    if reason:
        pytest.fail(reason)
    cert, key = pki.client("self-signed", cn="127.0.0.1", self_signed=True)
    leshan = LeshanServer(x509_cert=cert, x509_key=key, x509_trust=[pki.ca_file])
    try:
        mark = leshan.mark()
        run, ep = start_x509_client(leshan, hosts, pki, "x509u1", trust=cert, usage=1)
        reg = leshan.wait_event("registered", 20, start=mark, endpoint=ep)
        assert (reg["secure"], reg["identity"]) == (True, ep)
    finally:
        leshan.close()


def test_psk_registration_and_an_execute_that_runs_once_through_30_percent_loss(leshan, hosts):
    # The relay of test_integration_lossy.py between the client and Leshan's CoAPS endpoint,
    # dropping 30 % of the datagrams each way from its seeded draws: the DTLS handshake, the
    # Register and an Execute all get through by retransmission. The client's first answer to
    # the Execute (its first application record after it) is dropped on top, so Leshan sends
    # the Execute again: the client answers that copy from its cache and runs it once.
    import sys

    sys.path.insert(0, str(ROOT / "host_tests"))
    from peers.relay import UP, UdpRelay

    relay = UdpRelay(("127.0.0.1", leshan.coaps_port), log=lambda line: None)
    try:
        relay.set_loss(0.3, 13)
        ep = endpoint("lossy")
        identity = ep + "-id"
        leshan.add_psk(ep, identity, PSK_KEY)
        mark = leshan.mark()
        run = hosts.start("coaps://127.0.0.1:%d" % relay.port, ep, LIFETIME,
                          extra=["--psk-identity", identity, "--psk-key", PSK_KEY])
        leshan.wait_event("registered", 90, start=mark, endpoint=ep)
        log_mark = run.mark()
        relay.drop_next(UP, lambda data: data[:1] == b"\x17")  # DTLS application data
        assert leshan.execute(ep, "/1/0/8", timeout=90)["code"] == "CHANGED"
        leshan.wait_event("updated", 90, start=mark, endpoint=ep)
        assert run.count_log(r"^0\.02 POST /1/0/8 -> 2\.04 Changed$", log_mark) == 1
        assert any(r.why == "forced" for r in relay.seen(UP)), "the forced drop did not happen"
    finally:
        relay.close()


def test_after_a_leshan_restart_the_client_handshakes_and_registers_again(hosts):
    # A Leshan of this test's own, stopped once the client is registered over DTLS and started
    # again on the same ports: it has lost the DTLS session and the registration, so it drops
    # the client's next Update unread. Once the Update is given up (ACK_TIMEOUT 0.5 s: about
    # 20 s), the client makes a new handshake and registers again one retry period (10 s) later.
    first = LeshanServer()
    ports = first.coap_port, first.coaps_port
    ep = endpoint("restart")
    identity = ep + "-id"
    try:
        first.add_psk(ep, identity, PSK_KEY)
        run = hosts.start(first.coaps_uri, ep, 20, extra=["--psk-identity", identity, "--psk-key", PSK_KEY,
                                                          "--ack-timeout", "0.5"])
        first.wait_event("registered", 20, endpoint=ep)
        run.wait_log(r"^registered with coaps://", 10)
        assert first.observe(ep, "/3/0/13")["code"] == "CONTENT"
    finally:
        first.close()
    second = LeshanServer(coap_port=ports[0], coaps_port=ports[1])
    try:
        second.add_psk(ep, identity, PSK_KEY)
        mark = run.mark()
        run.wait_log(r"^update with coaps://127\.0\.0\.1:%d failed \(no answer\); retrying in 10 s$" % ports[1], 45, mark)
        failed_at = time.monotonic()
        reg = second.wait_event("registered", 20, endpoint=ep)
        took = time.monotonic() - failed_at
        assert 8 < took < 13, took  # the retry period, and the new handshake within it
        assert reg["secure"] is True and reg["identity"] == identity
        # the observation's NON notifications went to the new Leshan unread: it ends, and says so
        run.wait_log(r"^coaps://127\.0\.0\.1:%d: 1 observations ended with the last registration$" % ports[1], 1, mark)
        run.wait_log(r"^registered with coaps://127\.0\.0\.1:%d at /rd/%s over TLS-PSK-WITH-" % (ports[1], reg["id"]), 5, mark)
        assert second.read(ep, "/3/0", "TLV")["content"]["resources"]["0"] == board.manufacturer()
    finally:
        second.close()


# -- Send (LwM2M 1.1)


def _sends(leshan, ep, start, count, timeout):
    deadline = time.monotonic() + timeout
    while True:
        seen = leshan.events("send", start, ep)
        if len(seen) >= count or time.monotonic() >= deadline:
            return seen
        time.sleep(0.05)


@needs_registry
@pytest.mark.parametrize("fmt, ct", [("senml-cbor", "SENML_CBOR"), ("senml-json", "SENML_JSON")])
def test_send_reports_the_device_and_the_sensor_and_mute_send_stops_it(leshan, hosts, fmt, ct):
    ep = endpoint("send-" + fmt[6:])
    mark = leshan.mark()
    run = hosts.start(leshan.coap_uri, ep, LIFETIME, "1.1",
                      ["--send", "/3/0/0", "--send", "/3303/0", "--send-period", "1", "--send-format", fmt])
    leshan.wait_event("registered", 15, start=mark, endpoint=ep)
    sends = _sends(leshan, ep, mark, 2, 10)
    assert len(sends) >= 2, leshan.dump()
    nodes = sends[0]["nodes"]
    assert sends[0]["format"] == ct and nodes["/3/0/0"]["value"] == board.manufacturer()
    assert nodes["/3303/0/5701"]["value"] == "Cel" and 17.0 <= nodes["/3303/0/5700"]["value"] <= 25.0
    # Mute Send: the client logs each report it keeps back, Leshan gets none
    assert leshan.write(ep, "/1/0/23", True)["code"] == "CHANGED"
    muted = run.mark()
    run.wait_log(r"^send: coap://127\.0\.0\.1:\d+ has Mute Send on: not sent$", 5, muted)
    quiet = leshan.mark()
    time.sleep(2.5)
    assert leshan.events("send", quiet, ep) == []
    assert leshan.write(ep, "/1/0/23", False)["code"] == "CHANGED"
    assert len(_sends(leshan, ep, quiet, 1, 5)) == 1


# -- composite operations (LwM2M 1.1)


@needs_registry
@pytest.mark.parametrize("fmt", ["SENML_JSON", "SENML_CBOR"])
def test_composite_read_and_write(leshan, client, fmt):
    ep = client.ep
    answer = leshan.command("read-composite", ep, "/", paths=["/3/0/0", "/3303/0", "/1/0/1"], format=fmt)
    assert answer["code"] == "CONTENT" and answer["format"] == fmt, answer
    content = answer["content"]
    assert content["/3/0/0"]["value"] == board.manufacturer() and content["/1/0/1"]["value"] == LIFETIME
    assert content["/3303/0"]["kind"] == "instance" and content["/3303/0"]["resources"]["5701"] == "Cel"
    offset = "+05:00" if fmt == "SENML_JSON" else "-03:00"
    written = leshan.command("write-composite", ep, "/", values={"/3/0/14": offset, "/3303/0/5750": fmt}, format=fmt)
    assert written["code"] == "CHANGED", written
    assert leshan.value(ep, "/3/0/14") == offset and leshan.value(ep, "/3303/0/5750") == fmt
    # one value the client refuses, and neither is written
    with pytest.raises(LeshanError) as err:
        leshan.command("write-composite", ep, "/", values={"/3/0/14": "noon", "/3303/0/5750": "other"}, format=fmt)
    assert err.value.code == "BAD_REQUEST"
    assert leshan.value(ep, "/3303/0/5750") == fmt


@needs_registry
@pytest.mark.parametrize("fmt", ["SENML_JSON", "SENML_CBOR"])
def test_observe_composite_notifies_the_paths_together(leshan, client, fmt):
    ep = client.ep
    mark = leshan.mark()
    first = leshan.command("observe-composite", ep, "/", paths=["/3303/0/5700", "/3/0/0"], format=fmt)
    assert first["code"] == "CONTENT" and first["format"] == fmt, first
    assert first["content"]["/3/0/0"]["value"] == board.manufacturer()
    # the simulated sensor drifts, sampled every second: notifications of both paths
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline and len(leshan.events("composite-notification", mark, ep)) < 2:
        time.sleep(0.05)
    seen = leshan.events("composite-notification", mark, ep)
    assert len(seen) >= 2, leshan.dump()
    assert all(set(n["content"]) == {"/3303/0/5700", "/3/0/0"} for n in seen)
    assert all(17.0 <= n["content"]["/3303/0/5700"]["value"] <= 25.0 for n in seen)
