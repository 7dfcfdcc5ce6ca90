# Queue mode (TS Core 1.1 6.5, lwm2m.client with queue_window_ms): registered with Q (b=UQ for
# 1.0), awake for the queue window after the last datagram, then asleep (not listening)
# until an Update, a notification or a Send is due; what the server queued is served once it
# is awake again. On the virtual clock. Portable: runs under pytest and in the MicroPython VM.
from fakes import CON, GET, PUT, SERVER, make_client
from lwm2m import coap

WINDOW = 2000


def _queued(version="1.1", lifetime=60):
    client, peer = make_client(version, lifetime)
    client.queue_window_ms = WINDOW
    client.poll(0)
    register = peer.take_one()
    peer.answer(register, 0x41, "/rd/q1")
    client.poll(10)
    return client, peer, register


def test_the_register_says_queue_mode_in_both_versions():
    _client, _peer, register = _queued()
    assert register.query()["b"] == "U" and "Q" in register.query() and register.query()["Q"] is None
    _client, _peer, register = _queued("1.0")
    assert register.query()["b"] == "UQ" and "Q" not in register.query()


def test_asleep_after_the_window_and_awake_for_the_update():
    client, peer, _reg = _queued(lifetime=60)
    assert not client.asleep
    assert client.poll(1000) <= WINDOW
    wait = client.poll(2100)
    assert client.asleep and 25000 < wait <= 30000  # until the Update (lifetime 60 s: at 30 s)
    # a request of the server now is not heard ...
    peer.mid += 1
    read = coap.Message(CON, GET, peer.mid, b"r1")
    read.set_path("/3/0/0")
    peer.inject(read)
    for now in (5000, 10000, 20000):
        client.poll(now)
    assert peer.take() == [] and client.asleep
    # ... until the Update wakes the client; then it is answered
    client.poll(30010)
    update = peer.take_one()
    assert update.path() == "/rd/q1" and not client.asleep
    peer.answer(update, 0x44)
    client.poll(30020)
    client.poll(30030)
    answers = [m for m in peer.take() if m.mid == peer.mid]
    assert [a.payload for a in answers] == [b"Test Maker"]
    assert any("queue mode: asleep" in line for line in client.lines)
    assert any("queue mode: awake" in line for line in client.lines)


def test_a_due_notification_wakes_it_and_keeps_it_awake_for_the_window():
    client, peer, _reg = _queued(lifetime=600)
    client.model.add_instance(3303, 0, {5700: 20.0})
    peer.settle(20)
    peer.request(PUT, "/3303/0/5700", 30, query=["pmax=10"])
    peer.request(GET, "/3303/0/5700", 40, observe=0, token=b"qn")
    client.poll(3000)
    assert client.asleep
    client.poll(10040)
    note = peer.take_one()
    assert note.token == b"qn" and not client.asleep
    client.poll(11000)
    assert not client.asleep  # the window after the notification
    client.poll(12100)
    assert client.asleep


def test_nothing_outstanding_before_it_sleeps():
    client, peer, _reg = _queued(lifetime=600)
    client.servers[0].trigger_update()  # an Update goes out and is not answered yet
    client.poll(100)
    update = peer.take_one()
    client.poll(2500)
    assert not client.asleep  # still waiting for the Update's answer
    peer.answer(update, 0x44)
    client.poll(2600)
    client.poll(4700)
    assert client.asleep
