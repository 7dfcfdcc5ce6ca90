# Bootstrap against Eclipse Leshan's bootstrap server (host_tests/peers/leshan/
# LeshanBootstrapPeer.java, Leshan 2.0.0-M15's default bootstrap session: Delete /0 and /1,
# a Write of each Security and Server instance, Finish), with a Leshan management server
# beside it: the client (tools/host_run.py, real UDP on 127.0.0.1) starts knowing only the
# bootstrap server, is given the management server and its account, and registers there.
# What is asserted is what both Leshans saw: the bootstrap session's requests and the
# client's answers, then the registration.
import os
import re
import time

import pytest

from peers.host import free_udp_port
from peers.leshan_bootstrap import LeshanBootstrapServer, server, unavailable
from peers.leshan_server import LeshanServer

BS_KEY = "000102030405060708090a0b0c0d0e0f"
DM_KEY = "f0e0d0c0b0a090807060504030201000"
_COUNTER = [0]


def endpoint(tag):
    _COUNTER[0] += 1
    return "itest-bs-%s-%d-%d" % (tag, os.getpid(), _COUNTER[0])


@pytest.fixture(scope="module")
def leshans():
    # (the bootstrap server, the management server), one JVM each for the module
    reason = unavailable()
    if reason:
        pytest.fail(reason)
    bs = LeshanBootstrapServer()
    try:
        dm = LeshanServer(models=[])
    except BaseException:
        bs.close()
        raise
    yield bs, dm
    dm.close()
    bs.close()


def responses(bs, ep, start=0):
    # [(type, path, code)] of the client's answers in the bootstrap session, in order
    return [(e["type"], e["path"], e["code"]) for e in bs.events("bootstrap-response", start, ep)]


def test_psk_bootstrap_then_psk_registration_with_the_server_it_gave(leshans, hosts):
    bs, dm = leshans
    ep = endpoint("psk")
    bs.add_psk(ep, ep + "-bs", BS_KEY)
    bs.config(ep, [server(101, dm.coaps_uri, 120, identity=ep + "-dm", key=DM_KEY)])
    dm.add_psk(ep, ep + "-dm", DM_KEY)
    mark, dm_mark = bs.mark(), dm.mark()
    started = time.monotonic()
    run = hosts.start(None, ep, 300, extra=["--bootstrap", bs.coaps_uri, "--psk-identity", ep + "-bs",
                                            "--psk-key", BS_KEY])
    request = bs.wait_event("bootstrap-request", 20, mark, ep)
    assert request["secure"] is True and request["identity"] == ep + "-bs" and request["pct"] == 11542
    bs.wait_event("bootstrap-finished", 20, mark, ep)
    finished = time.monotonic() - started
    assert responses(bs, ep, mark) == [
        ("Delete", "/0", "DELETED"), ("Delete", "/1", "DELETED"), ("Write", "/0/1", "CHANGED"),
        ("Write", "/1/0", "CHANGED"), ("Finish", None, "CHANGED")]
    reg = dm.wait_event("registered", 20, dm_mark, ep)
    assert reg["secure"] is True and reg["identity"] == ep + "-dm" and reg["lifetime"] == 120
    run.wait_log(r"^registered with %s at /rd/%s over TLS-PSK-WITH-" % (dm.coaps_uri.replace(".", r"\."), reg["id"]), 10)
    print("bootstrap finished %.2f s after the start, registered %.2f s" % (finished, time.monotonic() - started))
    assert dm.read(ep, "/1/0/1")["content"]["value"] == 120
    assert not any(BS_KEY in line or DM_KEY in line for line in run.log())  # keys are never logged


def start_bootstrapping(bs, dm, hosts, tag, servers=None, extra=()):
    # A client that knows only the bootstrap server (over plain CoAP), given the management
    # server dm (NoSec, ssid 101) or `servers`; returns (run, endpoint) once registered.
    ep = endpoint(tag)
    bs.config(ep, servers or [server(101, dm.coap_uri, 120)])
    mark = dm.mark()
    run = hosts.start(None, ep, 300, extra=["--bootstrap", bs.coap_uri] + list(extra))
    if servers is None:
        dm.wait_event("registered", 20, mark, ep)
    return run, ep


def test_bootstrap_request_trigger_bootstraps_again(leshans, hosts):
    bs, dm = leshans
    run, ep = start_bootstrapping(bs, dm, hosts, "trigger")
    bs.config(ep, [server(101, dm.coap_uri, 90)])  # what the next bootstrap gives
    mark, dm_mark = bs.mark(), dm.mark()
    assert dm.execute(ep, "/1/0/9")["code"] == "CHANGED"
    bs.wait_event("bootstrap-finished", 20, mark, ep)
    assert [r[0] for r in responses(bs, ep, mark)] == ["Delete", "Delete", "Write", "Write", "Finish"]
    reg = dm.wait_event("registered", 20, dm_mark, ep)
    assert reg["lifetime"] == 90
    run.wait_log(r"^bootstrap from coap://\S+: asked by coap://", 1)


def test_an_unreachable_management_server_falls_back_to_bootstrap(leshans, hosts):
    # The first bootstrap gives a server nobody answers at, with 2 attempts 1 s apart and one
    # sequence (ACK_TIMEOUT 0.2 s: each attempt is given up after about 7 s); the client then
    # bootstraps again, and this time is given dm.
    bs, dm = leshans
    dead = "coap://127.0.0.1:%d" % free_udp_port()
    run, ep = start_bootstrapping(bs, dm, hosts, "fallback", [server(101, dead, 120, retry_count=2, retry_timer=1,
                                                                      sequence_retry=1)],
                                  ["--ack-timeout", "0.2"])
    mark = bs.mark()
    bs.wait_event("bootstrap-finished", 20, 0, ep)
    bs.config(ep, [server(101, dm.coap_uri, 120)])
    dm_mark = dm.mark()
    run.wait_log(r"^bootstrap from coap://\S+: register with %s failed \(no answer\)$" % re.escape(dead), 40)
    bs.wait_event("bootstrap-finished", 20, mark, ep)
    dm.wait_event("registered", 20, dm_mark, ep)
    assert run.count_log(r"^register with %s failed \(no answer\); retrying in 1 s$" % re.escape(dead)) == 1


def test_a_restart_with_its_state_registers_without_bootstrapping(leshans, hosts, tmp_path):
    bs, dm = leshans
    state = str(tmp_path / "state")
    run, ep = start_bootstrapping(bs, dm, hosts, "state", extra=["--state-dir", state])
    run.close()
    mark, dm_mark = bs.mark(), dm.mark()
    again = hosts.start(None, ep, 300, extra=["--bootstrap", bs.coap_uri, "--state-dir", state])
    dm.wait_event("registered", 20, dm_mark, ep)
    again.wait_log(r"^restored \d+ values from ", 1)
    assert bs.events("bootstrap-request", mark, ep) == []
    assert again.count_log(r"^bootstrap ") == 0


def test_leshan_reads_the_bootstrap_discover_to_find_the_bootstrap_account(leshans, hosts):
    # With autoIdForSecurityObject Leshan sends a Bootstrap-Discover of / first, finds the
    # bootstrap account in it (the Security instance without ssid) and numbers the Security
    # instances it writes around it.
    bs, dm = leshans
    ep = endpoint("autoid")
    bs.config(ep, [server(101, dm.coap_uri, 120)], auto_id=True)
    mark, dm_mark = bs.mark(), dm.mark()
    hosts.start(None, ep, 300, extra=["--bootstrap", bs.coap_uri])
    bs.wait_event("bootstrap-finished", 20, mark, ep)
    discover = bs.events("bootstrap-response", mark, ep)[0]
    assert (discover["type"], discover["code"]) == ("Discover", "CONTENT")
    assert '</0/0>;uri="%s"' % bs.coap_uri in discover["links"], discover
    writes = [(e["type"], e["path"]) for e in bs.events("bootstrap-send", mark, ep) if e["type"] == "Write"]
    assert writes == [("Write", "/0/1"), ("Write", "/1/0")]  # /0/0 is the bootstrap account's
    dm.wait_event("registered", 20, dm_mark, ep)
