# Bootstrap against Eclipse Leshan's bootstrap server (host_tests/peers/leshan/
# LeshanBootstrapPeer.java, Leshan 2.0.0-M15's default bootstrap session: Delete /0 and /1,
# a Write of each Security and Server instance, Finish), with a Leshan management server
# beside it: the client (tools/host_run.py, real UDP on 127.0.0.1) starts knowing only the
# bootstrap server, is given the management server and its account, and registers there.
# What is asserted is what both Leshans saw: the bootstrap session's requests and the
# client's answers, then the registration.
import os
import time

import pytest

from peers.host import HostRuns
from peers.leshan_bootstrap import LeshanBootstrapServer, server
from peers.leshan_server import LeshanServer, available

BS_KEY = "000102030405060708090a0b0c0d0e0f"
DM_KEY = "f0e0d0c0b0a090807060504030201000"
_COUNTER = [0]


def endpoint(tag):
    _COUNTER[0] += 1
    return "itest-bs-%s-%d-%d" % (tag, os.getpid(), _COUNTER[0])


@pytest.fixture(scope="module")
def leshans():
    # (the bootstrap server, the management server), one JVM each for the module
    for main in ("LeshanPeer", "LeshanBootstrapPeer"):
        reason = available(main)
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


@pytest.fixture
def hosts():
    runs = HostRuns()
    yield runs
    runs.close_all()


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
