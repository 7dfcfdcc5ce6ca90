# epmin and epmax (TS Core 1.1 5.1.2): when an observed value is evaluated. A value behind a
# read hook is read once a second, never more often than epmin; any value is read at least
# every epmax, even one changed without the model hearing of it; a reported change waits for
# epmin since the last evaluation. On the virtual clock of the other observe tests. Portable:
# runs under pytest and in the MicroPython VM.
from fakes import GET, PUT, registered

ACK = 2


def _hooked(client, peer):
    # /3303/0/5700 behind a read hook; returns the list of the times it was read
    reads = []
    value = [20.0]
    sensor = client.model.add_instance(3303, 0)
    sensor.on_read(5700, lambda: reads.append(client.now) or value[0])
    peer.settle(10)
    return reads, value


def _run(peer, start, stop, step=100):
    # polls from start to stop; returns the notifications sent, with the time of each
    out = []
    for now in range(start, stop, step):
        peer.client.poll(now)
        out += [(now, m.payload) for m in peer.take() if m.type != ACK]
    return out


def test_epmin_spaces_the_reads_of_a_sampled_value():
    client, peer, _reg = registered()
    reads, value = _hooked(client, peer)
    assert peer.request(PUT, "/3303/0/5700", 50, query=["epmin=5"]).code == 0x44
    peer.request(GET, "/3303/0/5700", 100, observe=0, token=b"em")
    del reads[:]
    value[0] = 23.0
    sent = _run(peer, 200, 20000)
    # every 5 s, not every second (a notification reads the value again to send it)
    assert sorted(set(t for t in reads if t >= 200)) == [5100, 10100, 15100]
    assert sent == [(5100, b"23.0")]


def test_without_epmin_a_sampled_value_is_read_each_second():
    client, peer, _reg = registered()
    reads, value = _hooked(client, peer)
    peer.request(GET, "/3303/0/5700", 100, observe=0, token=b"s1")
    del reads[:]
    _run(peer, 200, 5050)
    assert reads == [1100, 2100, 3100, 4100]


def test_epmax_evaluates_a_value_the_model_did_not_hear_change():
    for epmax, expected in ((None, []), ("10", [(10100, b"26.0")])):
        client, peer, _reg = registered()
        sensor = client.model.add_instance(3303, 0, {5700: 20.0})
        peer.settle(10)
        if epmax:
            peer.request(PUT, "/3303/0/5700", 50, query=["epmax=" + epmax])
        peer.request(GET, "/3303/0/5700", 100, observe=0, token=b"ex")
        sensor.values[5700] = 26.0  # changed behind the model's back: no watcher is told
        # without epmax nothing looks; with it, a read 10 s after the last evaluation
        assert _run(peer, 200, 30000, 100) == expected


def test_a_reported_change_waits_for_epmin_since_the_last_evaluation():
    client, peer, _reg = registered()
    sensor = client.model.add_instance(3303, 0, {5700: 20.0})
    peer.settle(10)
    peer.request(PUT, "/3303/0/5700", 50, query=["epmin=8"])
    peer.request(GET, "/3303/0/5700", 100, observe=0, token=b"ec")
    sent = _run(peer, 200, 1000)
    sensor.set(5700, 24.0)  # at 900 ms: the last evaluation was the answer at 100 ms
    sent += _run(peer, 1000, 12000)
    assert sent == [(8100, b"24.0")]


def test_epmax_must_be_above_epmin():
    client, peer, _reg = registered()
    client.model.add_instance(3303, 0, {5700: 20.0})
    assert peer.request(PUT, "/3303/0/5700", 50, query=["epmin=10", "epmax=10"]).code == 0x80
    assert peer.request(PUT, "/3303/0/5700", 60, query=["epmin=10", "epmax=20"]).code == 0x44
    assert peer.request(PUT, "/3303/0/5700", 70, query=["epmax=5"]).code == 0x80  # against the epmin set
