# The client (tools/host_run.py) and a scripted aiocoap server talking through a UDP relay on
# 127.0.0.1 that loses datagrams (peers/relay.py). The relay drops 30 % of the datagrams each
# way, drawn from a seeded random.Random per direction, so a run drops the same datagrams
# every time (the n-th datagram going one way meets the n-th draw); it prints each drop, and
# pytest shows those lines when a test fails. Some tests also make it drop chosen datagrams.
#
# What "ran exactly once" is judged by: the client logs one line per request it handled
# ("0.02 POST /1/0/8 -> 2.04 Changed"); a retransmitted request it recognises (same MID, same
# source) is answered from its cache of answers, without running the handler and without a
# log line. The Execute used is /1/0/8, Registration Update Trigger, whose effect is visible
# to the server: every run of it sends one Update, so the server must see exactly one Update
# request (aiocoap itself answers the client's retransmissions of one Update without
# rendering it again).
import os

import aiocoap
import pytest
from aiocoap.numbers.codes import Code

import board  # boards/host/board.py: what the host run reports as the device
from peers.coap_server import CoapServer
from peers.host import HostRuns, free_udp_port
from peers.relay import DOWN, UP, UdpRelay

LOSS = 0.3
# With seed 13 the Register and its 2.01 pass at the first try, two of the server's Reads are
# lost once, and the Update's 2.04 and two of the Update's retransmissions are lost: the run
# takes about 25 s of RFC 7252 back-off. Another seed (LWM2M_LOSSY_SEED=n) gives other drops
# and must give the same verdict on the client, except the last check, which is about the
# scenario (random drops hit both ways) and fails for a seed that happens to lose nothing one
# way.
SEED = int(os.environ.get("LWM2M_LOSSY_SEED", "13"))
LIFETIME = 300
CON, ACK = 0, 2  # message types
POST, DELETE, CHANGED = 0x02, 0x04, 0x44


def mtype(data):
    return data[0] >> 4 & 3


def mid(data):
    return data[2] << 8 | data[3]


def is_update(data):
    # A CON POST to the registration's location, as the client sends its Update.
    msg = aiocoap.Message.decode(data)
    return msg.mtype == aiocoap.CON and msg.code == Code.POST and msg.opt.uri_path == ("rd", "x")


@pytest.fixture
def net():
    # An aiocoap server, a relay in front of it (lossless until a test says otherwise) and the
    # client processes of the test; all stopped afterwards, the clients first.
    server = CoapServer(free_udp_port())
    relay = None
    runs = HostRuns()
    try:
        relay = UdpRelay(("127.0.0.1", server.port))
        yield server, relay, runs
    finally:
        runs.close_all()
        if relay is not None:
            relay.close()
        server.close()


def start_client(server, relay, runs, tag, register_timeout):
    client = runs.start("coap://127.0.0.1:%d" % relay.port, "itest-lossy-%s-%d" % (tag, os.getpid()), LIFETIME)
    assert server.wait(lambda: server.root.registrations, register_timeout), (
        "no registration\n%s\nrelay:\n%s" % (client.dump(), relay.dump()))
    client.wait_log(r"^registered with .* at /rd/x$", register_timeout, 0)
    return client


def read(server, reg, path, timeout):
    async def go():
        return await server.ctx.request(aiocoap.Message(code=Code.GET, uri=server.uri(reg, path))).response

    return server.call(go(), timeout)


def execute(server, reg, path, timeout):
    # A CON POST from the server, retransmitted by aiocoap as RFC 7252 says; its response.
    async def go():
        return await server.ctx.request(aiocoap.Message(code=Code.POST, uri=server.uri(reg, path))).response

    return server.call(go(), timeout)


def test_registration_and_an_execute_that_runs_once_through_30_percent_loss(net):
    server, relay, runs = net
    relay.set_loss(LOSS, SEED)
    # Registration: the client retransmits its Register until one copy and its answer pass.
    client = start_client(server, relay, runs, "once", 75)
    reg = server.root.registrations[0]
    assert len(server.root.registrations) == 1, "the client registered twice"

    # Reads: the server retransmits what is lost, the client answers every copy it gets.
    for _ in range(4):
        res = read(server, reg, "/3/0/0", 60)
        assert res.code == Code.CONTENT and res.payload == board.manufacturer().encode()

    # The client's first answer to the Execute is lost on top of the random losses, so that
    # the server's retransmission surely reaches the client as a duplicate.
    relay.drop_next(UP, lambda d: mtype(d) == ACK and d[1] == CHANGED, 1)
    log_mark = client.mark()
    res = execute(server, reg, "/1/0/8", 100)
    assert res.code == Code.CHANGED

    # The Update it triggers reaches the server (retransmitted by the client if lost) ...
    assert server.wait(lambda: server.root.updates, 60), "no Update\n%s\nrelay:\n%s" % (client.dump(), relay.dump())
    update = server.root.updates[0]
    assert update.opt.uri_path == ("rd", "x") and update.opt.uri_query == () and update.payload == b""

    # ... and its 2.04 reaches the client; then nothing more may come.
    def update_answered():
        return relay.seen(DOWN, lambda d: mtype(d) == ACK and mid(d) == update.mid and d[1] == CHANGED, delivered=True)

    assert server.wait(update_answered, 60), relay.dump()
    server.wait(lambda: False, 1.5)

    # Exactly once: one run of the handler in the client's log, one Update at the server.
    assert client.count_log(r"^0\.02 POST /1/0/8 -> 2\.04 Changed$", log_mark) == 1, client.dump()
    assert client.count_log(r"^update coap://127\.0\.0\.1:%d at /rd/x$" % relay.port, log_mark) == 1, client.dump()
    assert len(server.root.updates) == 1, [u.mid for u in server.root.updates]

    # The wire shows that the duplicate did happen: the Execute (one MID) reached the client
    # more than once, and every copy that reached it was answered.
    def is_execute(d):
        msg = aiocoap.Message.decode(d)
        return msg.mtype == aiocoap.CON and msg.code == Code.POST and msg.opt.uri_path == ("1", "0", "8")

    sent = relay.seen(DOWN, is_execute)
    assert len({mid(r.data) for r in sent}) == 1  # one request, retransmitted under its MID
    delivered = [r for r in sent if not r.dropped]
    answers = relay.seen(UP, lambda d: mtype(d) == ACK and mid(d) == mid(sent[0].data))
    assert len(delivered) >= 2, relay.dump()
    assert len(answers) == len(delivered), relay.dump()
    assert all(a.data == answers[0].data for a in answers)  # the cached answer, byte for byte
    # and the random loss was real, both ways
    randomly = [r for r in relay.seen() if r.dropped and r.why == "random"]
    assert {r.direction for r in randomly} == {UP, DOWN}, relay.dump()
    print("relay log, seed %d:\n%s" % (SEED, relay.dump()))




def test_a_lost_update_is_retransmitted_after_ack_timeout(net):
    server, relay, runs = net
    client = start_client(server, relay, runs, "update", 10)
    reg = server.root.registrations[0]

    relay.drop_next(UP, is_update, 1)
    assert execute(server, reg, "/1/0/8", 10).code == Code.CHANGED
    # the first copy of the Update (dropped), then its retransmission 2 to 3 s later
    assert server.wait(lambda: relay.seen(UP, is_update), 3)
    first = relay.seen(UP, is_update)[0]
    assert server.wait(lambda: len(relay.seen(UP, is_update)) >= 2, 6), (
        "the lost Update was not retransmitted within 6 s\n%s\nrelay:\n%s" % (client.dump(), relay.dump()))
    again = relay.seen(UP, is_update)[1]
    assert again.data == first.data and 1.9 <= again.t - first.t <= 3.2
    assert server.wait(lambda: server.root.updates, 2)




def test_a_lost_deregister_is_retransmitted_after_ack_timeout(net):
    server, relay, runs = net
    client = start_client(server, relay, runs, "bye", 10)

    def is_delete(d):
        return mtype(d) == CON and d[1] == DELETE

    relay.drop_next(UP, is_delete, 1)
    server.wait(lambda: False, 4.0)  # idle: the client sleeps, nothing is due
    client.terminate()
    assert client.wait_exit(15) == 0, client.dump()
    copies = relay.seen(UP, is_delete)
    assert len(copies) >= 2 and copies[0].dropped and not copies[1].dropped, relay.dump()
    assert len(server.root.deregistrations) == 1
    assert copies[1].data == copies[0].data
    assert copies[1].t - copies[0].t >= 1.9, relay.dump()  # ACK_TIMEOUT is 2 s
