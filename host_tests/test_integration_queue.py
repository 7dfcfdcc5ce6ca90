# Queue mode (TS Core 1.1 6.5) of the client on this host (tools/host_run.py --queue-mode)
# against Leshan 2.0.0-M15, whose presence service counts a queue-mode client awake for 2 s
# after its last message (--awake-time): the client sleeps after its own 2 s window and
# Leshan sees it SLEEPING (and refuses to send to it: Leshan 2.0 keeps no queue, the
# application holds its request); the client wakes for its Update, Leshan sees it AWAKE, and
# the request the test held is answered within the client's window.
import os
import re
import time

import pytest

import board
from peers.leshan_server import LeshanError, LeshanServer, available

LIFETIME = 30  # the Update goes out 15 s after the Register


@pytest.fixture
def leshan():
    reason = available()
    if reason:
        pytest.fail(reason)
    server = LeshanServer(awake_ms=2000)
    yield server
    server.close()


def test_a_read_queued_while_the_client_sleeps_is_answered_when_it_wakes(leshan, hosts):
    ep = "queue-%d" % os.getpid()
    mark = leshan.mark()
    run = hosts.start(leshan.coap_uri, ep, LIFETIME, "1.1", ["--queue-mode", "--queue-window", "2"])
    reg = leshan.wait_event("registered", 15, start=mark, endpoint=ep)
    assert reg["queue"] is True and reg["binding"] == "U"
    leshan.wait_event("sleeping", 10, start=mark, endpoint=ep)
    asleep = leshan.mark()
    run.wait_log(r"^queue mode: asleep for \d+ ms$", 5)
    with pytest.raises(LeshanError) as err:
        leshan.read(ep, "/3/0/0", "TEXT")
    assert "ClientSleepingException" in err.value.error
    slept = time.monotonic()
    awake = leshan.wait_event("awake", 25, start=asleep, endpoint=ep)
    assert awake and time.monotonic() - slept > 8  # the Update, about 15 s after the Register
    answer = leshan.read(ep, "/3/0/0", "TEXT")  # the held request, sent once it is awake
    assert answer["content"]["value"] == board.manufacturer()
    names = [m["event"] for m in leshan.messages(asleep - 1)
             if m and m.get("endpoint") == ep and m.get("event") in ("sleeping", "awake", "updated")]
    assert names[0] == "sleeping" and "awake" in names and "updated" in names, names
    log = run.log()
    update = [i for i, line in enumerate(log) if re.match(r"^update coap://", line)]
    read = [i for i, line in enumerate(log) if "GET /3/0/0 -> 2.05" in line]
    assert update and read and update[0] < read[0], "\n".join(log)
