# CoAP messaging (RFC 7252 section 4) through the in-memory transport: the exact datagrams
# sent back, the retransmission schedule, duplicates, NSTART and notifications.
import micropython
from time import ticks_add, ticks_diff
from lwm2m import Error, coap
from lwm2m.exchange import Exchange
from lwm2m.transport import MemoryTransport

CON, NON, ACK, RST = 0, 1, 2, 3
GET, POST, PUT, CONTENT, CHANGED = 0x01, 0x02, 0x03, 0x45, 0x44
SERVER = ("192.0.2.1", 5683)
OTHER = ("192.0.2.2", 5683)
BUF = bytearray(1152)
IDLE = 3600000
# 10 s before the ticks wrap (at the interpreter's period: 2**30 on boards, 2**62 on a
# 64-bit port), so every schedule below crosses it.
NEAR_WRAP = ticks_add(0, -1) + 1 - 10000


def zero():
    return 0.0


def content(req, addr):
    res = coap.Message(code=CONTENT, payload=b"ok")
    res.add(12, 0)  # Content-Format text/plain: an empty option, delta 12 -> 0xC0
    return res


def setup(handler=content, rand=zero):
    transport = MemoryTransport()
    return transport, Exchange(transport, handler, rand)


def sent(transport):
    # The datagrams sent since the last call, as hex strings.
    out = [data.hex() for data, addr in transport.sent]
    del transport.sent[:]
    return out


def deliver(transport, exchange, hexdata, now=0, addr=SERVER):
    transport.inject(bytes.fromhex(hexdata.replace(" ", "")), addr)
    wait = exchange.poll(BUF, now)
    return sent(transport), wait


class Calls:
    # A callback that records what it is called with.
    def __init__(self):
        self.args = []

    def __call__(self, arg):
        self.args.append(arg)


def get(path="/3/0", mtype=CON, token=b""):
    msg = coap.Message(mtype, GET, 0, token)
    msg.set_path(path)
    return msg


# --- serving requests


def test_con_request_gets_piggybacked_ack():
    transport, exchange = setup()
    # CON GET MID 0x1234 token abcd /3/0/1
    out, wait = deliver(transport, exchange, "4201 1234 abcd b133 0130 0131")
    # ACK 2.05, same MID and token, Content-Format 0 (c0), payload "ok"
    assert out == ["62451234abcdc0ff6f6b"]
    assert wait == IDLE


def test_non_request_gets_non_response_with_new_mid():
    transport, exchange = setup()
    # rand() = 0: our MIDs start at 0
    out, _ = deliver(transport, exchange, "5201 1234 abcd b133")
    assert out == ["52450000abcdc0ff6f6b"]
    out, _ = deliver(transport, exchange, "5201 1235 abce b133")
    assert out == ["52450001abcec0ff6f6b"]


def test_handler_sees_the_request_and_address():
    seen = []

    def handler(req, addr):
        seen.append((req.type, req.code, req.mid, req.token, req.path(), req.payload, addr))
        return coap.Message(code=CHANGED)

    transport, exchange = setup(handler)
    out, _ = deliver(transport, exchange, "4202 0007 0102 b133 0130 0134 ff 31", addr=OTHER)
    assert seen == [(CON, POST, 7, b"\x01\x02", "/3/0/4", b"1", OTHER)]
    assert out == ["624400070102"]
    assert transport.sent == []


def test_duplicate_con_answered_from_cache_handler_runs_once():
    runs = []

    def execute(req, addr):
        runs.append(req.mid)
        return coap.Message(code=CHANGED)

    transport, exchange = setup(execute)
    request = "4102 0100 aa b133 0130 0134"  # CON POST /3/0/4 (Reboot), MID 0x0100
    first, _ = deliver(transport, exchange, request, NEAR_WRAP)
    again, _ = deliver(transport, exchange, request, ticks_add(NEAR_WRAP, 30000))
    assert first == again == ["61440100aa"]
    assert runs == [0x100]
    # the same MID from another endpoint is another request
    out, _ = deliver(transport, exchange, request, ticks_add(NEAR_WRAP, 30000), OTHER)
    assert out == ["61440100aa"] and runs == [0x100, 0x100]
    # after EXCHANGE_LIFETIME (247 s) the MID may be reused for a new request
    out, _ = deliver(transport, exchange, request, ticks_add(NEAR_WRAP, 247000))
    assert out == ["61440100aa"] and runs == [0x100, 0x100, 0x100]


def test_duplicate_non_answered_from_cache():
    runs = []

    def handler(req, addr):
        runs.append(1)
        return coap.Message(code=CHANGED)

    transport, exchange = setup(handler)
    first, _ = deliver(transport, exchange, "5102 0100 aa b133")
    again, _ = deliver(transport, exchange, "5102 0100 aa b133", 1000)
    assert first == again == ["51440000aa"]  # the same response, same MID 0
    assert runs == [1]


def _counting_exchange(**caps):
    # An exchange whose handler records the MID of every request it serves; GETs get a
    # 100-byte answer.
    runs = []

    def handler(req, addr):
        runs.append(req.mid)
        return coap.Message(code=CONTENT if req.code == GET else CHANGED, payload=b"x" * 100 if req.code == GET else b"")

    transport = MemoryTransport()
    return transport, Exchange(transport, handler, zero, **caps), runs


def test_duplicate_cache_forgets_gets_before_other_requests():
    transport, exchange, runs = _counting_exchange(seen_max=4)
    deliver(transport, exchange, "40020000")  # CON POST, MID 0
    for mid in range(1, 20):
        deliver(transport, exchange, "40010%03x" % mid)  # CON GET
    out, _ = deliver(transport, exchange, "40020000")  # the POST again: still remembered
    assert out == ["60440000"] and runs == list(range(20))
    deliver(transport, exchange, "40010001")  # a forgotten GET is served again
    assert runs == list(range(20)) + [1]


def test_duplicate_cache_holds_at_most_its_bytes_of_answers():
    transport, exchange, runs = _counting_exchange(seen_bytes=250)
    for mid in range(3):
        deliver(transport, exchange, "40010%03x" % mid)  # answers of 105 bytes each
    deliver(transport, exchange, "40010002")  # the newest two fit: cached
    deliver(transport, exchange, "40010001")
    assert runs == [0, 1, 2]
    deliver(transport, exchange, "40010000")  # the oldest did not: served again
    assert runs == [0, 1, 2, 0]


def _large_answers_exchange(cap):
    # An exchange whose PUTs get 1,100-byte 4.00 answers, and whose POSTs run once each.
    runs = []

    def handler(req, addr):
        runs.append(req.mid)
        if req.code == PUT:
            return coap.Message(code=0x80, payload=b"x" * 1100)
        return coap.Message(code=CHANGED)

    transport = MemoryTransport()
    return transport, Exchange(transport, handler, zero, seen_bytes=cap), runs


def test_an_execute_runs_once_whatever_the_size_of_the_answers_after_it():
    # The issue #22 repro: an Execute, 4 PUTs whose answers are 1.1 KB each (4.4 KB, above the
    # 4 KiB cap), then the Execute's retransmission: it is answered, not run again.
    transport, exchange, runs = _large_answers_exchange(4096)
    first, _ = deliver(transport, exchange, "42022000 6562 b131 0130 0138")  # CON POST /1/0/8, MID 0x2000
    for mid in range(4):
        deliver(transport, exchange, "4003010%d" % mid)  # CON PUT, MID 0x010n
    again, _ = deliver(transport, exchange, "42022000 6562 b131 0130 0138")
    assert runs == [0x2000, 0x100, 0x101, 0x102, 0x103]
    assert first == again == ["62442000" + "6562"]  # ACK 2.04, its token: the code alone was enough
    # the newest answer, kept whole, still answers its duplicate in full
    out, _ = deliver(transport, exchange, "40030103")
    assert runs[-1] == 0x103 and len(bytes.fromhex(out[0])) == 4 + 1 + 1100


def test_an_answer_larger_than_the_whole_cache_keeps_its_request_from_running_twice():
    transport, exchange, runs = _large_answers_exchange(1000)
    deliver(transport, exchange, "40030001")
    out, _ = deliver(transport, exchange, "40030001")
    assert runs == [1] and out == ["60800001"]  # 4.00, without its payload


def test_duplicate_cache_forgets_the_oldest_request_when_only_those_are_left():
    transport, exchange, runs = _counting_exchange(seen_max=4)
    for mid in range(5):
        deliver(transport, exchange, "40020%03x" % mid)
    deliver(transport, exchange, "40020001")  # the last 4 are remembered
    assert runs == list(range(5))
    deliver(transport, exchange, "40020000")  # the fifth pushed the first out
    assert runs == list(range(5)) + [0]


def test_ping_answered_with_rst():
    transport, exchange = setup()
    out, _ = deliver(transport, exchange, "4000 1234")
    assert out == ["70001234"]
    out, _ = deliver(transport, exchange, "5000 1235")  # NON empty: ignored
    assert out == []


def test_error_answered_with_its_code_and_diagnostic():
    def handler(req, addr):
        raise Error(0x84, "no object 9")

    transport, exchange = setup(handler)
    out, _ = deliver(transport, exchange, "4101 0042 77 b139")
    # ACK 4.04 (0x84), MID 0x0042, token 77, payload "no object 9"
    assert out == ["61840042" + "77ff" + b"no object 9".hex()]


def test_error_without_code_rejects_with_rst():
    def handler(req, addr):
        raise Error(None, "cannot answer")

    transport, exchange = setup(handler)
    out, _ = deliver(transport, exchange, "4101 0042 77 b139")
    assert out == ["70000042"]
    out, _ = deliver(transport, exchange, "5101 0043 77 b139")
    assert out == []


def test_handler_crash_gives_500_and_the_next_request_is_served():
    calls = []

    def handler(req, addr):
        calls.append(req.mid)
        if len(calls) == 1:
            raise ValueError("bug")
        return coap.Message(code=CHANGED)

    transport, exchange = setup(handler)
    out, _ = deliver(transport, exchange, "4002 0001")
    assert out == ["60a00001"]  # ACK 5.00
    out, _ = deliver(transport, exchange, "4002 0002")
    assert out == ["60440002"]
    assert calls == [1, 2]


def test_handler_returning_nonsense_gives_500():
    transport, exchange = setup(lambda req, addr: None)
    out, _ = deliver(transport, exchange, "4001 0001")
    assert out == ["60a00001"]


# --- malformed and unexpected input


def test_malformed_con_request_gets_ack_with_the_decoder_code():
    transport, exchange = setup()
    data = bytes.fromhex("41010009aa ff")  # payload marker with no payload
    try:
        coap.decode(data)
    except coap.MessageError as exc:
        text = str(exc)
    out, _ = deliver(transport, exchange, data.hex())
    assert out == ["61800009aaff" + text.encode().hex()]  # ACK 4.00 with the reason


def test_malformed_critical_option_gets_402():
    transport, exchange = setup()
    # Uri-Port (7, critical) with 3 bytes: more than its 2
    out, _ = deliver(transport, exchange, "4001 0009 73 010203")
    assert out[0].startswith("60820009ff")


def test_malformed_with_known_mid_rejected_with_rst():
    transport, exchange = setup()
    out, _ = deliver(transport, exchange, "4901 0009")  # TKL 9 in a CON
    assert out == ["70000009"]
    out, _ = deliver(transport, exchange, "6045 0009 ff")  # ACK with an empty payload
    assert out == []
    out, _ = deliver(transport, exchange, "5101 0009")  # NON with a truncated token
    assert out == []
    out, _ = deliver(transport, exchange, "4045 0009 ff")  # CON response: no ACK possible
    assert out == ["70000009"]


def test_garbage_ignored():
    transport, exchange = setup()
    for data in ("", "40", "4001", "8001 0001", "c001 0001"):  # short, or not version 1
        out, wait = deliver(transport, exchange, data)
        assert out == [] and wait == IDLE


def test_reserved_code_class_rejected():
    transport, exchange = setup()
    out, _ = deliver(transport, exchange, "4020 0005")  # 1.00 in a CON
    assert out == ["70000005"]
    out, _ = deliver(transport, exchange, "50e0 0006")  # 7.00 in a NON: ignored
    assert out == []


def test_unexpected_responses():
    transport, exchange = setup()
    out, _ = deliver(transport, exchange, "4145 0010 99")  # CON 2.05 nobody asked for
    assert out == ["70000010"]
    out, _ = deliver(transport, exchange, "5145 0011 99")  # NON: ignored
    assert out == []
    out, _ = deliver(transport, exchange, "6145 0012 99")  # ACK: ignored
    assert out == []
    out, _ = deliver(transport, exchange, "6000 0013")
    assert out == []
    out, _ = deliver(transport, exchange, "7000 0014")
    assert out == []


# --- our requests


def test_request_bytes_mid_and_token():
    transport, exchange = setup()
    msg = get()
    exchange.request(msg, SERVER, Calls(), 0)
    # rand() = 0: MID 0, token 0000 ^ MID
    assert sent(transport) == ["44010000" + "00000000" + "b133 0130".replace(" ", "")]
    assert (msg.mid, msg.token) == (0, b"\x00\x00\x00\x00")
    msg = get(token=b"\x0a\x0b")
    exchange.request(msg, OTHER, Calls(), 0)
    assert sent(transport) == ["42010001" + "0a0b" + "b1330130"]
    msg = get()
    exchange.request(msg, ("192.0.2.3", 5683), Calls(), 0)
    assert msg.token == b"\x00\x00\x00\x02"


def test_mid_and_token_from_rand():
    values = [0.5, 0.25, 0.75]
    transport, exchange = setup(rand=lambda: values.pop(0))
    # MID start 0.5 * 65536 = 0x8000; token 0.25 -> 0x4000, 0.75 -> 0xc000 ^ 0x8000 = 0x4000
    msg = get(mtype=NON)
    exchange.request(msg, SERVER, Calls(), 0)
    assert msg.mid == 0x8000 and msg.token == b"\x40\x00\x40\x00"


def test_retransmission_schedule_and_timeout():
    transport, exchange = setup()
    calls = Calls()
    start = NEAR_WRAP
    exchange.request(get(), SERVER, calls, start)
    first = sent(transport)
    assert len(first) == 1
    assert exchange.poll(BUF, start) == 2000
    assert exchange.poll(BUF, ticks_add(start, 1999)) == 1
    assert sent(transport) == []
    # retransmissions at 2000, 2000 + 4000, + 8000, + 16000; given up at + 32000 = 62000
    for at, wait in ((2000, 4000), (6000, 8000), (14000, 16000), (30000, 32000)):
        assert exchange.poll(BUF, ticks_add(start, at)) == wait
        assert sent(transport) == first, at
        assert exchange.poll(BUF, ticks_add(start, at + 1)) == wait - 1
        assert sent(transport) == []
    assert exchange.poll(BUF, ticks_add(start, 61999)) == 1
    assert calls.args == [] and exchange.pending(SERVER)
    assert exchange.poll(BUF, ticks_add(start, 62000)) == IDLE
    assert calls.args == [None]
    assert sent(transport) == [] and not exchange.pending(SERVER)
    assert ticks_add(start, 62000) < start  # the schedule did cross the wrap


def test_first_timeout_is_random_up_to_3_s():
    values = [0.0, 0.0, 0.0, 0.9995]
    transport, exchange = setup(rand=lambda: values.pop(0))
    exchange.request(get(), SERVER, Calls(), 100)
    # 2000 + int(0.9995 * 1000) = 2999
    assert exchange.poll(BUF, 100) == 2999


def test_ack_timeout_sets_the_schedule_and_its_random_part():
    transport = MemoryTransport()
    exchange = Exchange(transport, content, lambda: 0.5, ack_timeout=500)
    calls = Calls()
    exchange.request(get(), SERVER, calls, 0)
    # 500 + int(0.5 * 250) = 625, doubled at each of the 4 retransmissions: given up at 31 x 625
    assert exchange.poll(BUF, 0) == 625
    at = 0
    for wait in (625, 1250, 2500, 5000):
        at += wait
        assert exchange.poll(BUF, at) == 2 * wait
        assert len(sent(transport)) == (2 if wait == 625 else 1)  # the first send counted once
    assert exchange.poll(BUF, 31 * 625 - 1) == 1 and calls.args == []
    exchange.poll(BUF, 31 * 625)
    assert calls.args == [None]


def test_late_poll_retransmits_once_and_restarts_the_timer():
    transport, exchange = setup()
    exchange.request(get(), SERVER, Calls(), 0)
    sent(transport)
    assert exchange.poll(BUF, 5000) == 4000  # 3 s late: one retransmission, next in 4 s
    assert len(sent(transport)) == 1


def test_piggybacked_response():
    transport, exchange = setup()
    calls = Calls()
    exchange.request(get(), SERVER, calls, 0)
    sent(transport)
    # ACK 2.05 MID 0 token 00000000 payload "hi"
    out, wait = deliver(transport, exchange, "6445 0000 00000000 ff 6869", 500)
    assert out == [] and wait == IDLE
    assert len(calls.args) == 1
    res = calls.args[0]
    assert (res.type, res.code, res.payload) == (ACK, CONTENT, b"hi")
    assert not exchange.pending(SERVER)
    # a duplicate of the ACK is ignored
    out, _ = deliver(transport, exchange, "6445 0000 00000000 ff 6869", 600)
    assert out == [] and len(calls.args) == 1


def test_ack_from_another_address_or_with_another_token_does_not_match():
    transport, exchange = setup()
    calls = Calls()
    exchange.request(get(), SERVER, calls, 0)
    sent(transport)
    deliver(transport, exchange, "6445 0000 00000000", 10, OTHER)
    deliver(transport, exchange, "6445 0000 00000001", 10)
    assert calls.args == [] and exchange.pending(SERVER)


def test_separate_con_response_after_empty_ack():
    transport, exchange = setup()
    calls = Calls()
    exchange.request(get(), SERVER, calls, 0)
    sent(transport)
    out, wait = deliver(transport, exchange, "6000 0000", 100)  # empty ACK
    assert out == [] and calls.args == []
    assert wait == 247000  # the separate response is awaited 247 s from the ACK
    assert exchange.pending(SERVER)
    # no retransmission after the ACK
    assert exchange.poll(BUF, 30000) == 247000 - 30000 + 100
    assert sent(transport) == []
    # CON 2.05 MID 0x5000 with our token: we ACK it (empty ACK, its MID)
    out, wait = deliver(transport, exchange, "4445 5000 00000000 ff 6869", 40000)
    assert out == ["60005000"] and wait == IDLE
    assert [m.payload for m in calls.args] == [b"hi"]
    # the server did not get our ACK and sends it again: ACKed again, no second callback
    out, _ = deliver(transport, exchange, "4445 5000 00000000 ff 6869", 42000)
    assert out == ["60005000"] and len(calls.args) == 1


def test_separate_non_response():
    transport, exchange = setup()
    calls = Calls()
    exchange.request(get(), SERVER, calls, 0)
    sent(transport)
    deliver(transport, exchange, "6000 0000", 100)
    out, _ = deliver(transport, exchange, "5445 7000 00000000", 200)
    assert out == [] and len(calls.args) == 1 and calls.args[0].type == NON


def test_separate_response_before_the_empty_ack():
    # The ACK was lost: the response acknowledges the request too (RFC 7252 5.2.2).
    transport, exchange = setup()
    calls = Calls()
    exchange.request(get(), SERVER, calls, 0)
    sent(transport)
    out, wait = deliver(transport, exchange, "4445 5000 00000000", 100)
    assert out == ["60005000"] and wait == IDLE and len(calls.args) == 1


def test_separate_response_times_out():
    transport, exchange = setup()
    calls = Calls()
    exchange.request(get(), SERVER, calls, NEAR_WRAP)
    sent(transport)
    deliver(transport, exchange, "6000 0000", NEAR_WRAP)
    assert exchange.poll(BUF, ticks_add(NEAR_WRAP, 246999)) == 1
    assert exchange.poll(BUF, ticks_add(NEAR_WRAP, 247000)) == IDLE
    assert calls.args == [None]


def test_rst_to_our_request_gives_none():
    transport, exchange = setup()
    calls = Calls()
    exchange.request(get(), SERVER, calls, 0)
    sent(transport)
    out, wait = deliver(transport, exchange, "7000 0000", 10)
    assert out == [] and wait == IDLE and calls.args == [None]


def test_non_request():
    transport, exchange = setup()
    calls = Calls()
    exchange.request(get(mtype=NON), SERVER, calls, 0)
    assert sent(transport) == ["54010000" + "00000000" + "b1330130"]
    assert exchange.poll(BUF, 0) == 93000  # no retransmission, given up after 93 s
    out, _ = deliver(transport, exchange, "5445 0123 00000000 ff 6869", 10)
    assert out == [] and calls.args[0].payload == b"hi"
    # given up
    calls = Calls()
    exchange.request(get(mtype=NON), SERVER, calls, 0)
    assert exchange.poll(BUF, 92999) == 1 and calls.args == []
    exchange.poll(BUF, 93000)
    assert calls.args == [None]
    assert len(sent(transport)) == 1


def test_nstart_one_per_address():
    transport, exchange = setup()
    first, second, third = Calls(), Calls(), Calls()
    exchange.request(get("/1"), SERVER, first, 0)
    exchange.request(get("/2"), SERVER, second, 0)
    exchange.request(get("/3"), OTHER, third, 0)
    # MIDs 0, 1, 2 in call order; /2 waits behind /1, /3 goes to another address
    assert [(d[:4].hex(), a) for d, a in transport.sent] == [("44010000", SERVER), ("44010002", OTHER)]
    del transport.sent[:]
    assert exchange.pending(SERVER) and exchange.pending(OTHER)
    # /1 is answered: /2 goes out at once, with its own fresh timeout
    out, wait = deliver(transport, exchange, "6445 0000 00000000", 1000)
    assert out == ["44010001" + "00000001" + "b132"]
    assert wait == 1000  # /3 retransmits at 2000; /2 at 3000
    assert len(first.args) == 1 and second.args == []
    deliver(transport, exchange, "6445 0002 00000002", 1100, OTHER)
    assert len(third.args) == 1
    assert exchange.poll(BUF, 1100) == 1900
    # /2 times out (its schedule starts at 1000): then nothing is pending
    for at in (3000, 7000, 15000, 31000, 63000):
        exchange.poll(BUF, at)
    assert second.args == [None] and not exchange.pending(SERVER)


def test_queued_request_goes_out_when_the_first_times_out():
    transport, exchange = setup()
    first, second = Calls(), Calls()
    exchange.request(get("/1"), SERVER, first, 0)
    exchange.request(get("/2"), SERVER, second, 0)
    for at in (2000, 6000, 14000, 30000):
        exchange.poll(BUF, at)
    del transport.sent[:]
    assert exchange.poll(BUF, 62000) == 2000
    assert first.args == [None] and second.args == []
    assert sent(transport) == ["44010001" + "00000001" + "b132"]


def test_empty_ack_frees_the_slot():
    transport, exchange = setup()
    exchange.request(get("/1"), SERVER, Calls(), 0)
    exchange.request(get("/2"), SERVER, Calls(), 0)
    del transport.sent[:]
    out, _ = deliver(transport, exchange, "6000 0000", 500)
    assert out == ["44010001" + "00000001" + "b132"]


def test_callback_may_send_the_next_request():
    transport, exchange = setup()
    results = []

    def again(res):
        results.append(res)
        if len(results) == 1:
            exchange.request(get("/2"), SERVER, again, 62000)

    exchange.request(get("/1"), SERVER, again, 0)
    for at in (2000, 6000, 14000, 30000, 62000):
        exchange.poll(BUF, at)
    assert results == [None] and exchange.pending(SERVER)
    assert exchange.poll(BUF, 62000) == 2000


def test_cancel_drops_without_callbacks():
    transport, exchange = setup()
    calls = Calls()
    exchange.request(get("/1"), SERVER, calls, 0)
    exchange.request(get("/2"), SERVER, calls, 0)
    exchange.request(get("/3"), OTHER, calls, 0)
    exchange.cancel(SERVER)
    assert not exchange.pending(SERVER) and exchange.pending(OTHER)
    del transport.sent[:]
    assert exchange.poll(BUF, 2000) == 4000
    assert [a for d, a in transport.sent] == [OTHER]
    exchange.cancel(OTHER)
    assert exchange.poll(BUF, 100000) == IDLE
    assert calls.args == []


# --- notifications


def note(mtype=CON, token=b"\x0b", seq=5):
    msg = coap.Message(mtype, CONTENT, 0, token, b"21")
    msg.add(6, seq)  # Observe
    return msg


def test_con_notification_acked():
    transport, exchange = setup()
    calls = Calls()
    exchange.notify(note(), SERVER, calls, 0)
    # CON 2.05 MID 0 token 0b, Observe 5 (61 05), payload "21"
    assert sent(transport) == ["41450000" + "0b" + "6105" + "ff3231"]
    assert exchange.poll(BUF, 0) == 2000
    assert not exchange.pending(SERVER)  # notifications are not requests
    out, wait = deliver(transport, exchange, "6000 0000", 300)
    assert out == [] and wait == IDLE and calls.args == [True]


def test_con_notification_times_out_or_is_reset():
    transport, exchange = setup()
    calls = Calls()
    exchange.notify(note(), SERVER, calls, NEAR_WRAP)
    for at in (2000, 6000, 14000, 30000):
        exchange.poll(BUF, ticks_add(NEAR_WRAP, at))
    assert len(sent(transport)) == 5 and calls.args == []
    exchange.poll(BUF, ticks_add(NEAR_WRAP, 62000))
    assert calls.args == [False]
    calls = Calls()
    exchange.notify(note(), SERVER, calls, 0)
    deliver(transport, exchange, "7000 0001", 10)
    assert calls.args == [False]


def test_notifications_do_not_wait_behind_requests():
    transport, exchange = setup()
    exchange.request(get(), SERVER, Calls(), 0)
    exchange.notify(note(), SERVER, Calls(), 0)
    exchange.notify(note(NON), SERVER, Calls(), 0)
    assert [d[:4].hex() for d, a in transport.sent] == ["44010000", "41450001", "51450002"]


def test_new_con_notification_replaces_the_unacknowledged_one():
    transport, exchange = setup()
    old, new = Calls(), Calls()
    exchange.notify(note(seq=5), SERVER, old, 0)
    exchange.poll(BUF, 2000)  # first retransmission; the next is due at 6000
    del transport.sent[:]
    exchange.notify(note(seq=6), SERVER, new, 3000)
    # sent at once with a new MID, keeping the old schedule
    assert sent(transport) == ["41450001" + "0b" + "6106" + "ff3231"]
    assert exchange.poll(BUF, 3000) == 3000
    exchange.poll(BUF, 6000)
    assert sent(transport) == ["41450001" + "0b" + "6106" + "ff3231"]
    # the old MID no longer matters; the new one's ACK completes it
    deliver(transport, exchange, "6000 0000", 6100)
    assert old.args == [] and new.args == []
    deliver(transport, exchange, "6000 0001", 6200)
    assert old.args == [] and new.args == [True]
    # another token is another observation: no replacement
    a, b = Calls(), Calls()
    exchange.notify(note(token=b"\x01"), SERVER, a, 7000)
    exchange.notify(note(token=b"\x02"), SERVER, b, 7000)
    deliver(transport, exchange, "6000 0002", 7100)
    deliver(transport, exchange, "6000 0003", 7100)
    assert a.args == [True] and b.args == [True]


def test_non_notification_cancelled_by_rst():
    transport, exchange = setup()
    calls = Calls()
    exchange.notify(note(NON), SERVER, calls, NEAR_WRAP)
    assert sent(transport) == ["51450000" + "0b" + "6105" + "ff3231"]
    # nothing to retransmit, nothing to wake up for
    assert exchange.poll(BUF, NEAR_WRAP) == IDLE
    out, _ = deliver(transport, exchange, "7000 0000", ticks_add(NEAR_WRAP, 144999))
    assert out == [] and calls.args == [False]


def test_non_notification_forgotten_after_non_lifetime():
    transport, exchange = setup()
    calls = Calls()
    exchange.notify(note(NON), SERVER, calls, NEAR_WRAP)
    exchange.poll(BUF, ticks_add(NEAR_WRAP, 145000))
    deliver(transport, exchange, "7000 0000", ticks_add(NEAR_WRAP, 145001))
    assert calls.args == []


def test_only_the_last_8_non_notifications_are_remembered():
    transport, exchange = setup()
    calls = Calls()
    for seq in range(9):
        exchange.notify(note(NON, seq=seq), SERVER, calls, 0)
    deliver(transport, exchange, "7000 0000", 10)  # the first: forgotten
    assert calls.args == []
    deliver(transport, exchange, "7000 0001", 10)
    assert calls.args == [False]


# --- memory


def test_idle_poll_allocates_nothing():
    transport, exchange = setup()
    exchange.poll(BUF, 0)
    # with a request outstanding and a cached answer too, before anything is due
    exchange.request(get(), SERVER, Calls(), 0)
    deliver(transport, exchange, "4001 0100", 0)
    exchange.notify(note(NON), OTHER, Calls(), 0)
    micropython.heap_lock()
    try:
        first = exchange.poll(BUF, 100)
        second = exchange.poll(BUF, ticks_add(100, 1))
    finally:
        micropython.heap_unlock()
    assert (first, second) == (1900, 1899)
    empty = Exchange(MemoryTransport(), content, zero)
    micropython.heap_lock()
    try:
        wait = empty.poll(BUF, NEAR_WRAP)
    finally:
        micropython.heap_unlock()
    assert wait == IDLE


def test_memory_transport_truncates_like_a_board():
    transport = MemoryTransport()
    transport.inject(b"abcdef", SERVER)
    buf = bytearray(4)
    assert transport.wait(0)
    assert transport.recv_into(buf) == 4 and buf == bytearray(b"abcd") and transport.source == SERVER
    assert transport.recv_into(buf) == -1 and not transport.wait(0)
    assert transport.resolve("example.org", 5683) == ("example.org", 5683)


def test_a_memory_error_while_answering_drops_the_datagram_and_the_loop_goes_on():
    failures = [True]

    def starved(req, addr):
        if failures:
            failures.pop()
            raise MemoryError()
        return coap.Message(code=CONTENT)

    lines = []
    transport = MemoryTransport()
    exchange = Exchange(transport, starved, zero, lines.append)
    out, _ = deliver(transport, exchange, "4001 0101 b133")  # answered 5.00 from _serve
    assert out == ["60a00101"] and lines[0].startswith("coap: handler failed: MemoryError")

    def broke(data):
        raise MemoryError()

    exchange._receive = lambda data, addr, now: broke(data)
    out, _ = deliver(transport, exchange, "4001 0102 b133")
    assert out == [] and lines[-1] == "coap: out of memory: a datagram dropped"
