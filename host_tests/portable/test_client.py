# The client on the wire: registration, device management and observation, driven through
# an in-memory transport with explicit clock values. Runs under pytest and in the MicroPython VM.
import micropython

from time import ticks_add

from fakes import ACK, CON, DELETE, GET, NON, OBSERVE, POST, PUT, RST, make_client, registered
from lwm2m import coap, tlv

CONTENT_FORMAT, LOCATION_PATH = 12, 8
REGISTER_LINKS = (
    b'</>;rt="oma.lwm2m";ct=110,</1>;ver=1.1,</1/0>,</3>;ver=1.1,</3/0>,</4>;ver=1.0,</4/0>,'
    b"</3303>;ver=1.1,</3311>"
)


def test_register_message():
    client, peer = make_client()
    client.poll(0)
    reg = peer.take_one()
    assert (reg.type, reg.code) == (CON, POST)
    assert reg.path() == "/rd"
    assert reg.get_all(15) == ["ep=test-ep", "lt=300", "lwm2m=1.1", "b=U"]
    assert reg.get(CONTENT_FORMAT) == 40
    assert reg.payload == REGISTER_LINKS


def test_register_as_lwm2m_1_0_has_no_root_link():
    client, peer = make_client(version="1.0")
    client.poll(0)
    reg = peer.take_one()
    assert "lwm2m=1.0" in reg.get_all(15)
    assert reg.payload.startswith(b"</1>;ver=1.1,</1/0>")


def test_update_before_the_lifetime_runs_out():
    client, peer, _reg = registered(lifetime=300)  # the 2.01 arrived at 10 ms
    # margin: the larger of lifetime/10 and MAX_TRANSMIT_WAIT (93 s) -> update at 207 s
    assert client.poll(206010) == 1000
    client.poll(207009)
    assert peer.take() == []
    client.poll(207010)
    update = peer.take_one()
    assert (update.code, update.path()) == (POST, "/rd/ab12")
    assert update.get_all(15) == [] and update.payload == b""
    peer.answer(update, 0x44)
    client.poll(207020)
    client.poll(207020 + 206999)
    assert peer.take() == []
    client.poll(207020 + 207000)
    assert peer.take_one().path() == "/rd/ab12"


def test_update_answered_4_04_registers_again_and_says_the_observations_ended():
    client, peer, _reg = registered()
    client.model.add_instance(3303, 0, {5700: 20.0})
    peer.request(GET, "/3303/0/5700", 100, observe=0, token=b"o1")
    peer.request(GET, "/3/0", 200, observe=0, token=b"o2")
    client.poll(207010)
    peer.answer(peer.take_one(), 0x84)
    client.poll(207011)
    reg = peer.take_one()
    assert reg.path() == "/rd" and b",</3303/0>," in reg.payload
    assert "coap://127.0.0.1:5683: 2 observations ended with the last registration" in client.lines
    assert client.observer.observations == []


def test_registers_at_once_whatever_the_ticks_when_it_starts():
    # A board up for days starts a client just before its ticks wrap: a deadline of tick 0
    # would then lie half a ticks period ahead.
    client, peer = make_client()
    client.poll(ticks_add(0, -1))
    assert peer.take_one().path() == "/rd"


def test_unreachable_server_is_retried_with_growing_backoff():
    client, peer = make_client()
    client.poll(0)
    assert peer.take_one().path() == "/rd"
    # with rand() = 0 the retransmissions go at 2, 6, 14 and 30 s and the exchange gives up
    # at 62 s; the next Register follows 10 s later, the one after that 20 s after its failure
    for now in (2000, 6000, 14000, 30000):
        client.poll(now)
        assert peer.take_one().path() == "/rd"
    client.poll(62000)
    assert peer.take() == []
    client.poll(71999)
    assert peer.take() == []
    client.poll(72000)
    assert peer.take_one().path() == "/rd"
    for now in (74000, 78000, 86000, 102000):
        client.poll(now)
        assert peer.take_one().path() == "/rd"
    client.poll(134000)
    client.poll(153999)
    assert peer.take() == []
    client.poll(154000)
    assert peer.take_one().path() == "/rd"
    assert any("retrying in 10 s" in line for line in client.lines)
    assert any("retrying in 20 s" in line for line in client.lines)


def test_read_resource_as_text_and_instance_as_tlv():
    client, peer, _reg = registered()
    answer = peer.request(GET, "/3/0/0", 100)
    assert (answer.code, answer.get(CONTENT_FORMAT), answer.payload) == (0x45, 0, b"Test Maker")
    answer = peer.request(GET, "/3/0", 100)
    assert answer.get(CONTENT_FORMAT) == 11542
    entries = {ident: value for _kind, ident, value in tlv.decode(answer.payload)}
    assert tlv.unpack(entries[1], "s") == "T-1"
    assert tlv.unpack(entries[10], "i") == 100  # memory free, KiB, from the board


def test_read_errors():
    client, peer, _reg = registered()
    assert peer.request(GET, "/3/0/0", 100, accept=9999).code == 0x86
    assert peer.request(GET, "/0/0", 100).code == 0x81  # Security: never for a DM server
    assert peer.request(GET, "/9/0", 100).code == 0x84
    assert peer.request(GET, "/3/7", 100).code == 0x84
    assert peer.request(GET, "/3/0/4", 100).code == 0x85  # Reboot is executable
    assert peer.request(GET, "/3/0/x", 100).code == 0x84


def test_write_lifetime_takes_effect_at_once():
    client, peer, _reg = registered()
    answer = peer.request(PUT, "/1/0/1", 100, b"600", cf=0)
    assert answer.code == 0x44
    (update,) = peer.others  # sent in the same poll
    assert update.path() == "/rd/ab12" and update.get_all(15) == ["lt=600"]
    assert peer.request(PUT, "/1/0/1", 200, b"-5", cf=0).code == 0x80
    assert peer.request(PUT, "/3/0/0", 200, b"x", cf=0).code == 0x85  # read-only


def test_registration_update_trigger():
    client, peer, _reg = registered()
    assert peer.request(POST, "/1/0/8", 100).code == 0x44
    (update,) = peer.others
    assert update.path() == "/rd/ab12" and update.payload == b""


def test_reboot_runs_after_its_answer():
    client, peer, _reg = registered()
    answer = peer.request(POST, "/3/0/4", 100)
    assert answer.code == 0x44
    assert client.board.reboots == 1


def test_create_and_delete_an_instance_update_the_registration():
    client, peer, _reg = registered()
    payload = tlv.encode([(0, 0, [(3, 5701, tlv.pack("Cel", "s"))])])
    answer = peer.request(POST, "/3303", 100, payload, cf=11542)
    assert answer.code == 0x41 and answer.path(LOCATION_PATH) == "/3303/0"
    (update,) = peer.others
    assert b"</3303>;ver=1.1,</3303/0>" in update.payload
    peer.answer(update, 0x44)
    assert peer.request(DELETE, "/3303/0", 200).code == 0x42
    assert peer.request(GET, "/3303/0", 201).code == 0x84


def test_execute_failing_in_application_code_is_5_00_and_the_loop_goes_on():
    client, peer, _reg = registered()
    inst = client.model.add_instance(3311, 0, {5850: False})
    peer.settle(10)

    def broken(_args):
        raise RuntimeError("driver fault")

    inst.on_write(5850, broken)
    assert peer.request(PUT, "/3311/0/5850", 100, b"1", cf=0).code == 0xA0
    assert peer.request(GET, "/3/0/0", 101).code == 0x45


def test_discover_an_instance():
    client, peer, _reg = registered()
    assert peer.request(PUT, "/3/0/13", 50, query=["pmin=10", "pmax=60"]).code == 0x44
    answer = peer.request(GET, "/3/0", 100, accept=40)
    assert answer.code == 0x45 and answer.get(CONTENT_FORMAT) == 40
    links = answer.payload.decode().split(",")
    assert links[0] == "</3/0>"
    assert "</3/0/0>" in links and "</3/0/4>" in links
    assert "</3/0/11>;dim=1" in links
    assert "</3/0/13>;pmin=10;pmax=60" in links


def test_write_attributes_are_validated():
    client, peer, _reg = registered()
    client.model.add_instance(3303, 0, {5700: 20.0})
    peer.settle(10)
    assert peer.request(PUT, "/3303/0/5700", 100, query=["gt=30", "lt=10", "st=2"]).code == 0x44
    assert peer.request(PUT, "/3303/0/5700", 100, query=["gt=10", "lt=30"]).code == 0x80
    assert peer.request(PUT, "/3303/0/5700", 100, query=["lt=5", "gt=10", "st=3"]).code == 0x80
    assert peer.request(PUT, "/3303/0/5700", 100, query=["pmin=abc"]).code == 0x80
    assert peer.request(PUT, "/3303/0/5700", 100, query=["colour=red"]).code == 0x80
    assert peer.request(PUT, "/3/0/0", 100, query=["gt=1"]).code == 0x80  # a string resource


def test_observe_a_resource_with_pmin_and_pmax():
    client, peer, _reg = registered()
    sensor = client.model.add_instance(3303, 0, {5700: 20.0})
    peer.settle(10)
    assert peer.request(PUT, "/3303/0/5700", 50, query=["pmin=2", "pmax=10"]).code == 0x44
    answer = peer.request(GET, "/3303/0/5700", 1000, observe=0, token=b"ob")
    first = answer.get(OBSERVE)
    assert answer.code == 0x45 and answer.payload == b"20.0" and first is not None
    sensor.set(5700, 21.5)
    client.poll(2000)
    assert peer.take() == []  # pmin has not elapsed
    client.poll(3000)
    note = peer.take_one()
    assert (note.type, note.code, note.token, note.payload) == (NON, 0x45, b"ob", b"21.5")
    assert note.get(OBSERVE) > first
    client.poll(12999)
    assert peer.take() == []
    client.poll(13000)  # pmax: the same value again
    again = peer.take_one()
    assert again.payload == b"21.5" and again.get(OBSERVE) > note.get(OBSERVE)


def test_observe_with_gt_notifies_only_on_crossing():
    client, peer, _reg = registered()
    sensor = client.model.add_instance(3303, 0, {5700: 20.0})
    peer.settle(10)
    peer.request(PUT, "/3303/0/5700", 50, query=["gt=25"])
    peer.request(GET, "/3303/0/5700", 100, observe=0, token=b"gt")
    sensor.set(5700, 22.0)
    client.poll(200)
    assert peer.take() == []
    sensor.set(5700, 26.0)
    client.poll(300)
    assert peer.take_one().payload == b"26.0"


def test_observe_an_instance_in_tlv_and_cancel_with_get():
    client, peer, _reg = registered()
    sensor = client.model.add_instance(3303, 0, {5700: 20.0, 5701: "Cel"})
    peer.settle(10)
    answer = peer.request(GET, "/3303/0", 100, observe=0, accept=11542, token=b"in")
    assert answer.get(CONTENT_FORMAT) == 11542
    sensor.set(5700, 19.0)
    client.poll(200)
    note = peer.take_one()
    assert note.get(CONTENT_FORMAT) == 11542
    values = {ident: value for _k, ident, value in tlv.decode(note.payload)}
    assert tlv.unpack(values[5700], "f") == 19.0
    answer = peer.request(GET, "/3303/0", 300, observe=1, accept=11542, token=b"in")
    assert answer.code == 0x45 and answer.get(OBSERVE) is None
    sensor.set(5700, 18.0)
    client.poll(400)
    assert peer.take() == []


def test_rst_to_a_notification_cancels_the_observation():
    client, peer, _reg = registered()
    sensor = client.model.add_instance(3303, 0, {5700: 20.0})
    peer.settle(10)
    peer.request(GET, "/3303/0/5700", 100, observe=0, token=b"rs")
    sensor.set(5700, 21.0)
    client.poll(200)
    note = peer.take_one()
    peer.inject(coap.Message(RST, 0, note.mid))
    client.poll(300)
    assert client.lines[-1] == "observation of /3303/0/5700 by coap://127.0.0.1:5683 ended: notification reset or not acknowledged"
    sensor.set(5700, 22.0)
    client.poll(400)
    assert peer.take() == []


def test_sensor_read_on_demand_is_sampled_while_observed():
    client, peer, _reg = registered()
    readings = [20.0]
    sensor = client.model.add_instance(3303, 0)
    sensor.on_read(5700, lambda: readings[0])
    peer.settle(10)
    peer.request(GET, "/3303/0/5700", 100, observe=0, token=b"sa")
    readings[0] = 23.0
    client.poll(600)
    assert peer.take() == []  # sampled at most once a second
    client.poll(1100)
    assert peer.take_one().payload == b"23.0"


def test_con_notification_at_least_every_con_interval_and_dropped_when_unacknowledged():
    client, peer, _reg = registered()
    client.observer.con_interval = 30000
    client.model.add_instance(3303, 0, {5700: 20.0})
    peer.settle(10)
    peer.request(GET, "/3303/0/5700", 100, observe=0, token=b"cn")
    client.poll(30100)
    note = peer.take_one()
    assert note.type == CON
    # never acknowledged: retransmitted (at 60.1 s the next notification, CON again,
    # replaces it), then the observation is dropped
    for now in (32100, 36100, 44100):
        client.poll(now)
        assert peer.take_one().mid == note.mid
    client.poll(60100)
    assert [m.type for m in peer.take()] == [CON, CON]
    assert len(client.observer.observations) == 1
    client.poll(92100)
    assert client.observer.observations == []
    assert client.lines[-1].endswith("/3303/0/5700 by coap://127.0.0.1:5683 ended: notification reset or not acknowledged")


def test_disable_deregisters_for_the_disable_timeout():
    client, peer, _reg = registered()
    client.model.instance(1, 0).set(5, 60)
    assert peer.request(POST, "/1/0/4", 100).code == 0x44
    (bye,) = peer.others
    assert (bye.code, bye.path()) == (DELETE, "/rd/ab12")
    peer.answer(bye, 0x42)
    client.poll(59000)
    assert peer.take() == []
    client.poll(60100)
    assert peer.take_one().path() == "/rd"


def test_stop_deregisters():
    client, peer, _reg = registered()
    client.stop(timeout_ms=0)
    bye = peer.take_one()
    assert (bye.type, bye.code, bye.path()) == (CON, DELETE, "/rd/ab12")


def test_duplicate_execute_runs_once():
    client, peer, _reg = registered()
    inst = client.model.add_instance(3311, 0, {5850: False})
    peer.settle(10)
    runs = []
    client.model.instance(3, 0).on_execute(12, lambda args: runs.append(args))
    request = coap.Message(CON, POST, 0x4242, b"d", b"")
    request.set_path("/3/0/12")
    peer.inject(request)
    peer.inject(request)
    client.poll(100)
    answers = peer.take()
    assert len(answers) == 2 and answers[0].code == answers[1].code == 0x44
    assert runs == [""]
    assert inst.values[5850] is False


def test_an_idle_poll_allocates_nothing():
    client, peer, _reg = registered()
    client.model.add_instance(3303, 0, {5700: 20.0})
    peer.settle(10)
    peer.request(GET, "/3303/0/5700", 100, observe=0, token=b"id")
    client.poll(200)
    micropython.heap_lock()
    try:
        wait = client.poll(300)
    finally:
        micropython.heap_unlock()
    assert wait > 0


class _LockedInbox:
    # One datagram, copied out byte by byte: its receive allocates nothing (a board's
    # recv() allocates the datagram: test_transport has what happens when that fails), so
    # that with the heap locked the first allocation to fail is the decoding's.
    def __init__(self, transport, data, source):
        self.transport = transport
        self.data = data
        self.source = source

    def recv_into(self, buf):
        data = self.data
        if data is None:
            return -1
        self.data = None
        for i in range(len(data)):
            buf[i] = data[i]
        return len(data)

    def send(self, data, addr):
        self.transport.send(data, addr)


def test_a_request_that_finds_no_heap_is_dropped_and_the_client_goes_on():
    # On MicroPython the heap is really locked here: every allocation fails, from the
    # request's decoding on. The datagram is dropped as if lost, with a log line, the rest of
    # the poll goes on, and the server's retransmission is answered once there is heap again.
    # (CPython cannot lock its heap: there the request is answered at once.)
    import sys

    client, peer, _reg = registered()
    request = coap.Message(CON, GET, 0x4242, b"m", b"")
    request.set_path("/3/0/0")
    data = coap.encode(request)
    exchange = client.exchange
    real = exchange._t
    exchange._t = _LockedInbox(real, data, peer.addr)
    dropped = []
    log = exchange._log
    exchange._log = lambda line: dropped.append(line) if line == "coap: out of memory: a datagram dropped" else None
    micropython.heap_lock()
    try:
        wait = client.poll(100)
    finally:
        micropython.heap_unlock()
        exchange._t = real
        exchange._log = log
    first = peer.take()
    if sys.implementation.name == "micropython":
        assert (first, dropped, wait > 0) == ([], ["coap: out of memory: a datagram dropped"], True)
        peer.transport.inject(data, peer.addr)  # the retransmission
        client.poll(2100)
        first = peer.take()
    assert [(m.type, m.mid, m.code, m.payload) for m in first] == [(ACK, 0x4242, 0x45, b"Test Maker")]
    assert peer.request(GET, "/3/0/0", 2200).code == 0x45  # and the client goes on


class _NoHeapInbox:
    # A transport whose receive finds no heap for the datagram, once.
    def __init__(self):
        self.failed = False

    def recv_into(self, buf):
        if self.failed:
            return -1
        self.failed = True
        raise MemoryError


def test_a_datagram_that_finds_no_heap_to_be_received_in_is_dropped_and_the_client_goes_on():
    client, peer, _reg = registered()
    exchange = client.exchange
    real = exchange._t
    exchange._t = _NoHeapInbox()
    logged = []
    log = exchange._log
    exchange._log = logged.append
    try:
        wait = client.poll(100)
    finally:
        exchange._t = real
        exchange._log = log
    assert (logged, wait > 0) == (["coap: out of memory: a datagram dropped"], True)
    assert peer.request(GET, "/3/0/0", 200).code == 0x45  # and the client goes on


def test_a_request_larger_than_the_receive_buffer_gets_4_13():
    client, peer, _reg = registered()
    request = coap.Message(CON, PUT, 0x4343, b"b", b"x" * 2000)
    request.set_path("/3/0/14")
    request.add(CONTENT_FORMAT, 0)
    peer.inject(request)
    client.poll(100)
    answer = peer.take_one()
    assert (answer.type, answer.mid, answer.code) == (ACK, 0x4343, 0x8D)
    assert answer.get(60) == len(client.buf)  # Size1: the largest datagram the client takes
    assert client.board.offset == "+01:00"  # not acted on


def test_an_unsupported_critical_option_is_4_02_and_an_elective_one_is_ignored():
    client, peer, _reg = registered()
    request = coap.Message(CON, GET, 0x4444, b"c")
    request.set_path("/3/0/0")
    request.add(1, b"\x01")  # If-Match: critical, not supported
    peer.inject(request)
    client.poll(100)
    answer = peer.take_one()
    assert (answer.mid, answer.code) == (0x4444, 0x82)
    request = coap.Message(CON, GET, 0x4445, b"e")
    request.set_path("/3/0/0")
    request.add(2048, b"x")  # an unknown elective option
    peer.inject(request)
    client.poll(200)
    assert peer.take_one().payload == b"Test Maker"


def test_utc_offset_writes_are_checked_before_the_board_sees_them():
    client, peer, _reg = registered()
    assert peer.request(PUT, "/3/0/14", 100, b"-05:30", cf=0).code == 0x44
    assert client.board.offset == "-05:30"
    for bad in (b"5", b"+0530", b"x05:30", b"+ab:cd"):
        assert peer.request(PUT, "/3/0/14", 200, bad, cf=0).code == 0x80
    assert client.board.offset == "-05:30"


class _OutOfHeapOnce:
    # An exchange whose next request finds no heap (the Register or Update being queued).
    def __init__(self, exchange):
        self.exchange = exchange
        self.real = exchange.request

    def request(self, *args):
        self.exchange.request = self.real
        raise MemoryError


def test_a_register_that_finds_no_heap_fails_with_the_back_off_and_is_tried_again():
    client, peer = make_client(prepare=lambda c: setattr(c.exchange, "request", _OutOfHeapOnce(c.exchange).request))
    client.poll(0)  # no exception out of the poll
    assert peer.take() == []
    assert "register with coap://127.0.0.1:5683 failed (out of memory); retrying in 10 s" in client.lines
    client.poll(9999)
    assert peer.take() == []
    client.poll(10000)
    assert peer.take_one().path() == "/rd"


def test_disable_answers_the_execute_before_it_de_registers():
    # TS Core, Server resource 4: the client sends the response, then de-registers. Leshan
    # cancels an Execute whose De-register comes first.
    client, peer, _reg = registered()
    execute = coap.Message(CON, POST, 0x7777, b"d", b"")
    execute.set_path("/1/0/4")
    peer.inject(execute)
    client.poll(100)
    sent = peer.take()
    assert [(m.type, m.code) for m in sent] == [(ACK, 0x44), (CON, DELETE)]
    assert sent[0].mid == 0x7777 and sent[1].path().startswith("/rd/")
