# Two Leshan management servers at once, both given to the client (tools/host_run.py, real
# UDP) by Leshan's bootstrap server together with Access Control instances: server A (101)
# may read and write /3311/0, server B (102) only read it, and B may create Temperature
# instances. Over plain CoAP and over DTLS with a PSK on each server. What is asserted is
# what each Leshan got back from the client.
import os

import pytest

from peers.leshan_bootstrap import LeshanBootstrapServer, server, unavailable
from peers.leshan_server import LeshanError, LeshanServer, model_dirs

KEYS = {101: "00112233445566778899aabbccddeeff", 102: "ffeeddccbbaa99887766554433221100"}
ACLS = [(3311, 0, {101: 1 | 2, 102: 1}, None), (3303, 65535, {102: 16}, None)]
_COUNTER = [0]

needs_registry = pytest.mark.skipif(
    not model_dirs(), reason="Leshan needs the DDF files of 3303 and 3311 in ../shared/lwm2m-registry")


@pytest.fixture(scope="module")
def leshans():
    # (the bootstrap server, server A, server B): one JVM each for the module
    reason = unavailable()
    if reason:
        pytest.fail(reason)
    started = []
    try:
        started.append(LeshanBootstrapServer())
        started.append(LeshanServer())
        started.append(LeshanServer())
        yield tuple(started)
    finally:
        for peer in started:
            peer.close()


def start(leshans, hosts, secure):
    # A client bootstrapped with A and B and the ACLs, registered with both; its endpoint.
    bs, a, b = leshans
    _COUNTER[0] += 1
    ep = "itest-acl-%s-%d-%d" % ("psk" if secure else "coap", os.getpid(), _COUNTER[0])
    servers = []
    for ssid, leshan in ((101, a), (102, b)):
        if secure:
            leshan.add_psk(ep, "%s-%d" % (ep, ssid), KEYS[ssid])
            servers.append(server(ssid, leshan.coaps_uri, 120, identity="%s-%d" % (ep, ssid), key=KEYS[ssid]))
        else:
            servers.append(server(ssid, leshan.coap_uri, 120))
    bs.config(ep, servers, acls=ACLS)
    marks = a.mark(), b.mark()
    hosts.start(None, ep, 300, extra=["--bootstrap", bs.coap_uri])
    for leshan, mark in zip((a, b), marks):
        reg = leshan.wait_event("registered", 30, mark, ep)
        assert reg["secure"] is secure
    return ep


def refused(call):
    # The CoAP code of the error answer a Leshan request got.
    with pytest.raises(LeshanError) as err:
        call()
    return err.value.coap


@needs_registry
@pytest.mark.parametrize("secure", [False, True], ids=["coap", "psk"])
def test_two_servers_with_different_rights(leshans, hosts, secure):
    _bs, a, b = leshans
    ep = start(leshans, hosts, secure)
    # /3311/0: A reads and writes, B only reads
    assert refused(lambda: b.write(ep, "/3311/0/5850", True)) == "4.01"
    assert a.write(ep, "/3311/0/5850", True)["code"] == "CHANGED"
    assert b.value(ep, "/3311/0/5850") is True
    # B creates a Temperature instance and owns it; A may not delete it until B says so
    assert b.create(ep, "/3303", 7, {"5750": "greenhouse"})["code"] == "CREATED"
    assert refused(lambda: a.delete(ep, "/3303/7")) == "4.01"
    assert refused(lambda: a.read(ep, "/3303/7")) == "4.01"
    owned = b.read(ep, "/2")["content"]["instances"]  # B sees only the ACL instance it owns
    assert len(owned) == 1
    (acl_iid, acl), = owned.items()
    assert acl["resources"]["0"] == 3303 and acl["resources"]["1"] == 7 and acl["resources"]["3"] == 102
    assert b.write(ep, "/2/%s/2/101" % acl_iid, 8, type="INTEGER")["code"] == "CHANGED"
    assert a.delete(ep, "/3303/7")["code"] == "DELETED"
    # a read of an object lists only what the server may read: /3311/0 for B, not /3303/0
    assert list(b.read(ep, "/3311")["content"]["instances"]) == ["0"]
    assert b.read(ep, "/3303")["content"]["instances"] == {}


def test_one_server_unreachable_while_the_other_keeps_working(leshans, hosts):
    # A's address answers nobody: its Register is given up (ACK_TIMEOUT 0.2 s: within about
    # 7 s) and retried later, while B is registered and served all along.
    from peers.host import free_udp_port

    bs, _a, b = leshans
    _COUNTER[0] += 1
    ep = "itest-acl-dead-%d-%d" % (os.getpid(), _COUNTER[0])
    dead = "coap://127.0.0.1:%d" % free_udp_port()
    bs.config(ep, [server(101, dead, 120), server(102, b.coap_uri, 120)], acls=[(3, 0, {0: 1}, None)])
    mark = b.mark()
    run = hosts.start(None, ep, 300, extra=["--bootstrap", bs.coap_uri, "--ack-timeout", "0.2"])
    b.wait_event("registered", 30, mark, ep)
    assert b.read(ep, "/3/0/0")["code"] == "CONTENT"
    run.wait_log(r"^register with %s failed \(no answer\); retrying in 60 s$" % dead.replace(".", r"\."), 15)
    assert b.read(ep, "/3/0/0")["code"] == "CONTENT"
    assert refused(lambda: b.write(ep, "/3/0/14", "+02:00")) == "4.01"  # the default entry: Read only
