# Deep sleep (lwm2m.hibernate, client.freeze() and start(woken)): a queue-mode client saves
# its registration and observations, is built anew as after an ESP32's deep-sleep reboot, and
# goes on without registering again: the Update and the notifications come when they would
# have, with the same location, tokens and sequence numbers. On the virtual clock. Portable:
# runs under pytest and in the MicroPython VM.
from fakes import GET, POST, PUT, make_client
from lwm2m import cbor

WINDOW = 2000
TEXT = 0


def _sensor(value):
    def prepare(client):
        sensor = client.model.add_instance(3303, 0, {5701: "Cel"})
        sensor.on_read(5700, lambda: value[0])
    return prepare


def _registered(value, lifetime=600):
    # Registered at /rd/q1 at time 0, /3303/0/5700 observed with pmax=60 (token b"ob");
    # asleep at 3000 ms. Returns (client, peer).
    client, peer = make_client(lifetime=lifetime, queue_window_ms=WINDOW, prepare=_sensor(value))
    client.poll(0)
    peer.answer(peer.take_one(), 0x41, "/rd/q1")
    client.poll(10)
    assert peer.request(PUT, "/3303/0/5700", 20, query=["pmax=60", "st=1"]).code == 0x44
    first = peer.request(GET, "/3303/0/5700", 30, observe=0, token=b"ob", accept=TEXT)
    assert first.code == 0x45 and first.payload == b"20.0"
    client.poll(3000)
    assert client.asleep
    return client, peer


def _woken(state, slept_ms, value, now=500, lifetime=600, prepare=None):
    # Built anew at now from state, its first Update (to the same location) answered at now.
    client, peer = make_client(lifetime=lifetime, queue_window_ms=WINDOW, prepare=prepare or _sensor(value),
                               woken=(state, slept_ms), now=now)
    client.poll(now)
    update = [m for m in peer.take() if m.code == POST and m.path().startswith("/rd")]
    if client.servers[0].registered() or update:
        assert len(update) == 1 and update[0].path() == "/rd/q1", update
        peer.answer(update[0], 0x44)
        client.poll(now + 10)
    return client, peer


def test_after_a_deep_sleep_the_client_notifies_at_pmax_with_the_same_token_and_no_register():
    value = [20.0]
    client, peer = _registered(value)
    seq = client.observer.observations[0].seq
    mid = client.exchange._mid
    state = client.freeze()
    assert 0 < len(state) < 2048  # an ESP32's RTC memory
    value[0] = 20.5  # within st: not worth a notification before pmax
    woken, peer = _woken(state, 50000, value)  # saved at 3000 ms, 50 s asleep: 53 s since the first answer
    assert any("woke after 50000 ms: 1 registrations, 1 observations kept" in line for line in woken.lines)
    woken.poll(1000)
    assert peer.take() == []  # no Register, and 20.5 is within st=1 of 20.0
    woken.poll(7540)  # 60 s after the first answer (at 30 ms, 52,970 ms before the wake at 500): pmax
    note = peer.take_one()
    assert note.token == b"ob" and note.payload == b"20.5" and note.get(6) == seq + 1
    assert note.mid == (mid + 1) & 0xFFFF  # the message IDs go on, after the Update's
    assert not woken.asleep


def test_a_change_beyond_st_while_asleep_is_reported_at_once():
    value = [20.0]
    client, peer = _registered(value)
    state = client.freeze()
    value[0] = 25.0
    woken, peer = _woken(state, 10000, value)
    woken.poll(600)
    woken.observer.changed(3303, 0, 5700)  # what the application reports on waking
    woken.poll(700)
    note = peer.take_one()
    assert note.token == b"ob" and note.payload == b"25.0"


def test_the_update_goes_first_and_the_notifications_wait_for_its_answer():
    value = [20.0]
    client, peer = _registered(value)
    state = client.freeze()  # at 3000 ms
    woken, peer = make_client(lifetime=600, queue_window_ms=WINDOW, prepare=_sensor(value), woken=(state, 70000),
                              now=500)  # pmax ran out while asleep
    woken.poll(500)
    update = peer.take_one()
    assert update.code == POST and update.path() == "/rd/q1" and update.payload == b""
    woken.poll(1000)
    assert peer.take() == []  # the notification waits ...
    peer.answer(update, 0x44)
    woken.poll(1010)
    woken.poll(1020)
    assert [m.token for m in peer.take()] == [b"ob"]  # ... for the Update's answer


def test_attributes_survive_and_a_composite_and_resource_observation_both_come_back():
    value = [20.0]
    client, peer = _registered(value)
    state = client.freeze()
    woken, peer = _woken(state, 1000, value)
    obs = woken.observer.observations
    assert len(obs) == 1 and obs[0].path == (3303, 0, 5700) and obs[0].st == 1.0
    assert woken.observer.attributes == client.observer.attributes


def test_a_record_value_changed_while_asleep_is_reported_once_awake():
    value = [20.0]
    client, peer = make_client(queue_window_ms=WINDOW, prepare=_sensor(value))
    client.poll(0)
    peer.answer(peer.take_one(), 0x41, "/rd/q1")
    client.poll(10)
    client.model.object(3303).instances[0].set(5701, "Cel")
    assert peer.request(GET, "/3303/0", 30, observe=0, token=b"oi").code == 0x45
    client.poll(3000)
    state = client.freeze()
    woken, peer = _woken(state, 1000, None, lifetime=300, prepare=_sensor([21.0]))
    woken.observer.changed(3303, 0, 5700)
    woken.poll(600)
    assert [m.token for m in peer.take()] == [b"oi"]
    woken, peer = _woken(state, 1000, None, lifetime=300, prepare=_sensor([20.0]))
    woken.observer.changed(3303, 0, 5700)
    woken.poll(600)
    assert peer.take() == []  # the same records: nothing to report


def test_a_state_that_does_not_fit_is_refused_and_the_client_registers():
    value = [20.0]
    client, _peer = _registered(value)
    state = client.freeze()
    for bad, why in ((b"\xff\x00", "not usable"), (bytes(cbor.encode([9])), "not usable"),
                     (state.replace(b"test-ep", b"test-xx"), "another configuration")):
        woken, peer = make_client(queue_window_ms=WINDOW, prepare=_sensor(value), woken=(bad, 1000), now=500)
        assert any(why in line for line in woken.lines), woken.lines
        woken.poll(600)
        register = peer.take_one()
        assert register.code == POST and register.path() == "/rd"


def test_objects_created_before_the_sleep_and_gone_after_it_make_the_update_carry_links():
    value = [20.0]
    client, peer = _registered(value)
    client.model.add_instance(3311, 0, {})
    client.poll(3100)
    peer.answer(peer.take_one(), 0x44)  # the Update of the new instance
    client.poll(3200)
    client.poll(6000)
    state = client.freeze()
    woken, peer = make_client(queue_window_ms=WINDOW, prepare=_sensor(value), woken=(state, 1000), now=500)
    woken.poll(500)
    assert peer.take_one().payload.count(b"</") > 5  # the Update after the wake carries the object list


def test_no_state_while_a_bootstrap_runs():
    value = [20.0]
    client, _peer = _registered(value)
    client.bootstrap = object()
    assert client.freeze() is None


def test_a_periodic_send_keeps_its_schedule():
    from lwm2m.send import Every

    value = [20.0]
    client, peer = _registered(value)
    every = Every(client, ["/3303/0/5700"], 60000, 110)
    client.tasks.append(every)
    client.poll(3100)  # the first report
    assert [m.path() for m in peer.take()] == ["/dp"]
    state = client.freeze()

    def prepare(woken):
        _sensor(value)(woken)
        woken.tasks.append(Every(woken, ["/3303/0/5700"], 60000, 110))
    woken, peer = _woken(state, 50000, value, now=0, prepare=prepare)
    woken.poll(9000)  # (the observation's pmax notification went out at 6,930 ms)
    assert [m.path() for m in peer.take() if m.code == POST] == []
    woken.poll(10010)  # 60 s after the first report, less 50 s asleep
    assert [m.path() for m in peer.take() if m.code == POST] == ["/dp"]
