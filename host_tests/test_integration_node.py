# The client (tools/host_run.py, real UDP on 127.0.0.1) against lwm2m-node-lib 1.4.0, a
# third-party LwM2M server run by host_tests/peers/lwm2m_server.js. What is asserted is what
# the server saw and answered: registration parameters and links, Read, Write, Execute,
# Discover results, Updates and the De-register.
#
# lwm2m-node-lib sends its requests from its own port (it proxies them through its server
# socket), writes in content format 1541 (pre-1.0 plain text) and reads with Accept: text/plain.
import os
import socket
import time

import pytest

import board  # boards/host/board.py: what the host run reports as the device
from peers.host import HostRuns, free_udp_port
from peers.node_server import NodeError, NodeServer

LIFETIME = 300
_COUNTER = [0]


def endpoint(tag):
    _COUNTER[0] += 1
    return "itest-node-%s-%d-%d" % (tag, os.getpid(), _COUNTER[0])


def links_of(payload):
    # '</>;rt="oma.lwm2m";ct=110,</1>;ver=1.1,</1/0>' -> {"/": {...}, "/1": {...}, "/1/0": {}}
    out = {}
    for item in payload.split(","):
        parts = item.split(";")
        target = parts[0]
        assert target.startswith("<") and target.endswith(">"), payload
        out[target[1:-1]] = dict(p.split("=", 1) if "=" in p else (p, None) for p in parts[1:])
    return out


@pytest.fixture
def cleanup():
    # Things a test opens itself, closed afterwards in reverse order (even on failure).
    closers = []
    yield closers
    for close in reversed(closers):
        close()


@pytest.fixture
def node():
    server = NodeServer(free_udp_port())
    yield server
    server.close()


@pytest.fixture(scope="module")
def session():
    # One server and one registered client shared by the device management tests.
    server = NodeServer(free_udp_port())
    runs = HostRuns()
    try:
        ep = endpoint("dm")
        client = runs.start("coap://127.0.0.1:%d" % server.port, ep, LIFETIME)
        registration = server.wait_event("registration", 15, endpoint=ep)
        client.wait_log(r"^registered with ", 10)
        yield server, client, ep, registration
    finally:
        runs.close_all()
        server.close()


def test_registration_as_the_server_saw_it(session):
    server, client, ep, reg = session
    assert reg["endpoint"] == ep
    assert reg["lifetime"] == str(LIFETIME)
    assert reg["version"] == "1.1"
    assert reg["binding"] == "U"
    links = links_of(reg["payload"])
    assert links["/"] == {"rt": '"oma.lwm2m"', "ct": "110"}
    for target in ("/1/0", "/3/0", "/4/0", "/3303/0"):
        assert target in links, reg["payload"]
    assert links["/3"] == {"ver": "1.1"}
    assert not any(t == "/0" or t.startswith("/0/") for t in links)  # Security is never listed
    device = server.device(ep)
    assert device["address"] == "127.0.0.1" and device["path"] == "/rd"
    # the location the server gave is the one the client uses
    client.wait_log(r"^registered with coap://127\.0\.0\.1:%d at /rd/%d$" % (server.port, device["id"]), 1)


def test_read_device_resources(session):
    server, client, ep, _reg = session
    mark = client.mark()
    assert server.read(ep, "/3/0/0") == board.manufacturer()
    assert server.read(ep, "/3/0/17") == board.device_type()
    assert server.read(ep, "/3/0/16") == "U"
    temperature = float(server.read(ep, "/3303/0/5700"))
    assert 17.0 <= temperature <= 25.0  # the simulated sensor: 21 +- 3 degrees
    # one log line per request the client handled, with its answer
    assert client.count_log(r"^0\.01 GET /3/0/0 -> 2\.05 Content$", mark) == 1


def test_read_of_a_missing_resource_is_4_04(session):
    server, _client, ep, _reg = session
    with pytest.raises(NodeError) as err:
        server.read(ep, "/3/0/9")  # Battery Level: defined, no value on the host
    assert err.value.args[0].startswith("4.04")


def test_write_lifetime_is_accepted_and_updates_the_registration(session):
    server, client, ep, _reg = session
    mark = server.mark()
    log_mark = client.mark()
    assert server.write(ep, "/1/0/1", "600") == ""
    update = server.wait_event("update", 10, start=mark, endpoint=ep)
    assert update["lifetime"] == "600"  # the library keeps the lt= of the Update
    assert update["payload"] == ""  # nothing else changed: no links
    assert server.read(ep, "/1/0/1") == "600"
    assert server.device(ep)["lifetime"] == "600"
    client.wait_log(r"^0\.03 PUT /1/0/1 -> 2\.04 Changed$", 1, log_mark)
    client.wait_log(r"^update coap://127\.0\.0\.1:%d at /rd/" % server.port, 1, log_mark)
    # a lifetime of 0 is refused and nothing is sent
    mark = server.mark()
    with pytest.raises(NodeError) as err:
        server.write(ep, "/1/0/1", "0")
    assert err.value.args[0].startswith("4.00")
    assert server.read(ep, "/1/0/1") == "600"
    assert server.events("update", mark, ep) == []


def test_write_to_a_read_only_resource_is_refused(session):
    server, client, ep, _reg = session
    mark = client.mark()
    with pytest.raises(NodeError) as err:
        server.write(ep, "/3/0/0", "Someone Else")
    assert err.value.args[0].startswith("4.05")  # Method Not Allowed
    assert server.read(ep, "/3/0/0") == board.manufacturer()
    client.wait_log(r"^0\.03 PUT /3/0/0 -> 4\.05 Method Not Allowed", 1, mark)


def test_execute_registration_update_trigger(session):
    server, client, ep, _reg = session
    mark = server.mark()
    assert server.execute(ep, "/1/0/8") == ""
    update = server.wait_event("update", 10, start=mark, endpoint=ep)
    assert update["payload"] == ""
    assert len(server.events("update", mark, ep)) == 1
    # executing something that is not executable is refused
    with pytest.raises(NodeError) as err:
        server.execute(ep, "/3/0/0")
    assert err.value.args[0].startswith("4.05")


def test_discover_an_instance(session):
    server, _client, ep, _reg = session
    links = links_of(server.discover(ep, "/3/0"))
    assert list(links)[0] == "/3/0"
    for rid in (0, 1, 2, 3, 4, 5, 11, 13, 16, 17):
        assert "/3/0/%d" % rid in links
    assert links["/3/0/11"] == {"dim": "1"}  # Error Code: a multiple resource, one instance
    assert "/3/0/9" not in links  # no Battery Level on the host
    server_links = links_of(server.discover(ep, "/1/0"))
    assert "/1/0/1" in server_links and "/1/0/8" in server_links
    object_links = links_of(server.discover(ep, "/3"))
    assert object_links["/3"] == {"ver": "1.1"} and "/3/0" in object_links


def test_write_attributes_show_in_discover(session):
    server, _client, ep, _reg = session
    assert server.command("write-attributes", ep, "/3/0/13", attributes={"pmin": 10, "pmax": 60}) == ""
    links = links_of(server.discover(ep, "/3/0"))
    assert links["/3/0/13"] == {"pmin": "10", "pmax": "60"}
    with pytest.raises(NodeError) as err:
        server.command("write-attributes", ep, "/3/0/0", attributes={"gt": 5})  # not a number
    assert err.value.args[0].startswith("4.00")


def test_sigterm_deregisters_and_exits_0(node, hosts):
    ep = endpoint("bye")
    client = hosts.start("coap://127.0.0.1:%d" % node.port, ep, LIFETIME)
    node.wait_event("registration", 15, endpoint=ep)
    client.wait_log(r"^registered with ", 10)
    mark = node.mark()
    client.terminate()
    node.wait_event("unregistration", 10, start=mark, endpoint=ep)
    assert client.wait_exit(15) == 0, client.dump()
    log = client.log()
    assert log[-2:] == ["de-register from coap://127.0.0.1:%d" % node.port, "stopped"], client.dump()
    assert node.events("expired", endpoint=ep) == []
    with pytest.raises(NodeError):
        node.device(ep)  # the server forgot it




def test_retries_until_the_server_appears(cleanup, hosts):
    # (cleanup before hosts: the client is stopped first, while the server can still answer
    # its De-register.) Nothing answers on the port at first: a plain socket only records
    # what arrives there.
    port = free_udp_port()
    recorder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    cleanup.append(recorder.close)
    recorder.bind(("127.0.0.1", port))
    recorder.settimeout(0.2)
    ep = endpoint("late")
    client = hosts.start("coap://127.0.0.1:%d" % port, ep, LIFETIME)
    seen = []
    deadline = time.monotonic() + 8  # first try, and its retransmission 2 to 3 s later
    while len(seen) < 2 and time.monotonic() < deadline:
        try:
            seen.append((time.monotonic(), recorder.recvfrom(2048)[0]))
        except socket.timeout:
            pass
    assert len(seen) == 2, "expected a Register and its retransmission within 8 s; log:\n" + client.dump()
    (t1, first), (t2, again) = seen
    assert first[0] >> 4 == 4 and first[1] == 0x02 and again == first  # CON POST, same MID: a retransmission
    assert 1.9 <= t2 - t1 <= 3.2  # ACK_TIMEOUT 2 s, ACK_RANDOM_FACTOR 1.5
    # the log shows the attempt and no success: the client is still trying
    log = client.log()
    assert log[0] == "register with coap://127.0.0.1:%d as %s (lifetime %d s)" % (port, ep, LIFETIME)
    assert not any(line.startswith("registered") for line in log)
    recorder.close()
    node = NodeServer(port)
    cleanup.append(node.close)
    # the next retransmissions leave 6-9 s and 14-21 s after the first try
    reg = node.wait_event("registration", 30, endpoint=ep)
    assert reg["lifetime"] == str(LIFETIME) and reg["version"] == "1.1"
    client.wait_log(r"^registered with coap://127\.0\.0\.1:%d at /rd/" % port, 5)
    assert client.count_log(r"^register with ") == 1  # one Register, reached by a retransmission
    assert node.read(ep, "/3/0/0") == board.manufacturer()
