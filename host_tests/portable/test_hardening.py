# What a hostile or careless server may send, one class at a time: nothing ends the loop,
# every format is checked against the model, writes are all or nothing, long periods do not
# overflow the ticks, caps bound what servers make the client hold, and protected state
# stays. Runs under pytest and in the MicroPython VM (ticks wrap at 2**30 in both, and
# ticks_add refuses 2**29 ms or more in both).
import time

import micropython

from fakes import ACK, CON, DELETE, GET, OBSERVE, POST, PUT, make_client, registered
from lwm2m import coap, formats, senml, tlv

CONTENT_FORMAT, LOCATION_PATH = 12, 8
TEXT, LINK, OPAQUE, SENML, TLV, JSON = 0, 40, 42, 110, 11542, 11543
DAY = 86400000
RESOURCE, MULTIPLE, INSTANCE, RESOURCE_INSTANCE = 3, 2, 0, 1


def _sensor(client, peer):
    sensor = client.model.add_instance(3303, 0, {5700: 20.0, 5701: "Cel"})
    peer.settle(10)
    return sensor


def _later(start, ms):
    # start + ms in ticks for any ms: ticks_add takes less than half the ticks period.
    while ms > 1 << 28:
        start = time.ticks_add(start, 1 << 28)
        ms -= 1 << 28
    return time.ticks_add(start, ms)


# -- 1. nothing a server sends ends the loop ------------------------------------------------


def test_an_observed_read_hook_that_raises_ends_its_observation_with_5_00():
    client, peer, _reg = registered()
    sensor = _sensor(client, peer)
    readings = [20.0]

    def read():
        if readings[0] is None:
            raise OSError("sensor unplugged")
        return readings[0]

    sensor.on_read(5700, read)
    assert peer.request(GET, "/3303/0/5700", 100, observe=0, token=b"hk").code == 0x45
    readings[0] = None
    client.poll(1200)  # sampled once a second: the hook raises
    (note,) = peer.take()
    assert (note.type, note.code, note.token) == (CON, 0xA0, b"hk")
    assert client.observer.observations == []
    assert len([line for line in client.lines if "observation of /3303/0/5700 ended" in line]) == 1
    assert peer.request(GET, "/3/0/0", 1300).code == 0x45  # the loop goes on


def test_a_value_that_cannot_be_encoded_ends_its_observation():
    client, peer, _reg = registered()
    sensor = _sensor(client, peer)
    peer.request(GET, "/3303/0/5700", 100, observe=0, token=b"nf")
    sensor.set(5700, float("inf"))  # the application's bug, not the server's
    client.poll(200)
    (note,) = peer.take()
    assert (note.code, note.token) == (0xA0, b"nf")
    assert client.observer.observations == []
    assert peer.request(GET, "/3303/0/5700", 300).code == 0xA0  # a Read says so too


def test_a_register_answer_with_a_bad_location_is_retried():
    client, peer = make_client()
    client.poll(0)
    reg = peer.take_one()
    answer = coap.Message(ACK, 0x41, reg.mid, reg.token)
    answer.add(LOCATION_PATH, b"\xff\xfe")  # not UTF-8
    peer.inject(answer)
    client.poll(10)
    assert any("register with" in line and "failed" in line for line in client.lines)
    client.poll(10010)
    assert peer.take_one().path() == "/rd"


def test_a_failing_deferred_action_is_logged_and_the_loop_goes_on():
    client, peer, _reg = registered()

    def full():
        raise OSError(28)  # ENOSPC: the flash is full

    client.defer(full)
    client.poll(100)
    assert any("deferred action failed: OSError" in line for line in client.lines)
    assert peer.request(GET, "/3/0/0", 200).code == 0x45


# -- 2. input is checked against the model, the same way in every format -------------------


def test_a_value_for_an_executable_resource_is_refused_in_every_format():
    client, peer, _reg = registered()
    _sensor(client, peer)
    reset = tlv.encode([(RESOURCE, 5605, b"\x01")])  # Reset Min and Max Measured Values
    assert peer.request(PUT, "/3303/0", 100, reset, cf=TLV).code == 0x85
    assert peer.request(PUT, "/3303/0/5605", 100, b"1", cf=TEXT).code == 0x85
    records = b'[{"bn":"/3303/0/","n":"5605","v":1}]'
    assert peer.request(POST, "/3303/0", 100, records, cf=SENML).code == 0x85
    assert 5605 not in client.model.instance(3303, 0).values


def test_execute_arguments_follow_the_ts_grammar():
    client, peer, _reg = registered()
    runs = []
    client.model.instance(3, 0).on_execute(12, runs.append)
    assert peer.request(POST, "/3/0/12", 100, b"0='a b',1,2='x'", cf=TEXT).code == 0x44
    for bad in (b"x", b"0=a", b"0='a", b"0,", b",1", b"12", b"0='\xc3\xa9'"):
        assert peer.request(POST, "/3/0/12", 100, bad).code == 0x80, bad
    assert peer.request(POST, "/1/0/8", 100, tlv.encode([(RESOURCE, 8, b"\x01")]), cf=TLV).code == 0x80
    assert runs == ["0='a b',1,2='x'"]


def test_a_resource_instance_of_a_single_resource_is_not_found_in_every_accept():
    client, peer, _reg = registered()
    for accept in (None, TEXT, OPAQUE, LINK, SENML, TLV, JSON, 1542):
        assert peer.request(GET, "/3/0/0/7", 100, accept=accept).code == 0x84, accept
    assert peer.request(GET, "/3/0/11/7", 100).code == 0x84  # Error Code has only instance 0
    assert peer.request(GET, "/3/0/11/0", 100).payload == b"0"
    assert peer.request(PUT, "/3/0/14/0", 100, b"+02:00", cf=TEXT).code == 0x84


def test_create_refuses_the_reserved_instance_id():
    client, peer, _reg = registered()
    units = tlv.encode([(INSTANCE, 65535, [(RESOURCE, 5701, b"Cel")])])
    assert peer.request(POST, "/3303", 100, units, cf=TLV).code == 0x80
    records = b'[{"bn":"/3303/65535/","n":"5701","vs":"Cel"}]'
    assert peer.request(POST, "/3303", 100, records, cf=SENML).code == 0x80
    assert client.model.object(3303).instances == {}


def test_create_checks_single_against_multiple_as_write_does():
    client, peer, _reg = registered()
    ssid_twice = tlv.encode([(INSTANCE, 5, [(MULTIPLE, 0, [(RESOURCE_INSTANCE, 0, b"\x07")]), (RESOURCE, 1, b"\x3c")])])
    assert peer.request(POST, "/1", 100, ssid_twice, cf=TLV).code == 0x80
    ok = tlv.encode([(INSTANCE, 5, [(RESOURCE, 0, b"\x07"), (RESOURCE, 1, b"\x3c")])])
    assert peer.request(POST, "/1", 100, ok, cf=TLV).code == 0x41
    assert client.model.instance(1, 5).values == {0: 7, 1: 60}


def test_non_finite_floats_are_refused_in_every_format():
    client, peer, _reg = registered()
    nan = tlv.encode([(INSTANCE, 0, [(RESOURCE, 5700, b"\x7f\xc0\x00\x00")])])
    assert peer.request(POST, "/3303", 100, nan, cf=TLV).code == 0x80
    assert client.model.object(3303).instances == {}
    for raw in (b"\x7f\xc0\x00\x00", b"\x7f\x80\x00\x00", b"\xff\xf0\x00\x00\x00\x00\x00\x00"):
        err = None
        try:
            tlv.unpack(raw, "f")
        except Exception as exc:
            err = exc
        assert err is not None and getattr(err, "code", None) == 0x80, raw
    for value in (float("nan"), float("inf"), -float("inf")):
        for encode in (lambda v: tlv.pack(v, "f"), lambda v: formats.encode(110, (1, 0, 1), [((1, 0, 1), "f", v)])):
            err = None
            try:
                encode(value)
            except ValueError as exc:
                err = exc
            assert err is not None, value


def test_write_attributes_are_parsed_strictly():
    client, peer, _reg = registered()
    _sensor(client, peer)
    path = "/3303/0/5700"
    for good in ("gt=-5.5", "gt=+3", "lt=.5", "st=5.", "pmin=0", "pmax=4294967295"):
        assert peer.request(PUT, path, 100, query=[good]).code == 0x44, good
        assert peer.request(PUT, path, 100, query=[good.split("=")[0]]).code == 0x44  # removed
    for bad in ("gt=nan", "gt=inf", "gt=1e3", "gt=\u0661", "gt= 5", "gt=5 ", "gt=+", "gt=",
                "gt=1_0", "pmin=-1", "pmin=1.5", "pmin=4294967296", "pmin=\u0661", "st=-1"):
        assert peer.request(PUT, path, 100, query=[bad]).code == 0x80, bad


def test_write_attributes_only_on_paths_that_exist():
    client, peer, _reg = registered()
    for missing in ("/3/9", "/3/0/15", "/3/0/11/5", "/9", "/3/0/0/1"):
        assert peer.request(PUT, missing, 100, query=["pmin=5"]).code == 0x84, missing
    for present in ("/3", "/3/0", "/3/0/11", "/3/0/11/0", "/3/0/4"):
        assert peer.request(PUT, present, 100, query=["pmin=5"]).code == 0x44, present


def test_binding_must_match_the_ts_grammar_and_what_the_client_does():
    client, peer, _reg = registered()
    for bad in (b"", b"X", b"UU", b"QU", b"UQ", b"S", b"u"):
        assert peer.request(PUT, "/1/0/7", 100, bad, cf=TEXT).code == 0x80, bad
    assert peer.request(PUT, "/1/0/7", 100, b"U", cf=TEXT).code == 0x44
    assert client.model.instance(1, 0).get(7) == "U"


# -- 3. writes are all or nothing ----------------------------------------------------------


def test_a_write_with_one_bad_value_changes_nothing():
    client, peer, _reg = registered()
    clock = tlv.encode([(RESOURCE, 13, b"\x6b\x49\xd2\x00"), (RESOURCE, 14, b"bad")])
    assert peer.request(POST, "/3/0", 100, clock, cf=TLV).code == 0x80
    assert (client.board.clock, client.board.offset) == (1700000000, "+01:00")
    lifetime = tlv.encode([(RESOURCE, 1, b"\x02\x58"), (RESOURCE, 7, b"S")])
    assert peer.request(POST, "/1/0", 100, lifetime, cf=TLV).code == 0x80
    assert client.model.instance(1, 0).get(1) == 300
    assert peer.others == []  # and no Update for a lifetime that did not change


# -- 4. time has no overflow ----------------------------------------------------------------


def test_a_lifetime_of_600000_s_updates_once_shortly_before_it_runs_out():
    client, peer, _reg = registered(lifetime=600000)  # the 2.01 arrived at 10 ms
    # margin: lifetime / 10 = 60000 s -> the Update is due 540000 s after the 2.01
    now = 10
    for _hour in range(149):
        now = time.ticks_add(now, 3600000)
        assert client.poll(now) > 0
        assert peer.take() == []
    due = _later(10, 540000 * 1000)
    client.poll(time.ticks_add(due, -1))
    assert peer.take() == []
    client.poll(due)
    assert peer.take_one().path() == "/rd/ab12"


def test_the_longest_lifetime_and_disable_timeout_schedule_without_overflow():
    client, peer, reg = registered(lifetime=4294967295)
    assert "lt=4294967295" in reg.get_all(15)
    now = 10
    for _day in range(30):
        now = time.ticks_add(now, DAY)
        client.poll(now)
    assert peer.take() == []
    client.model.instance(1, 0).set(5, 4294967295)
    assert peer.request(POST, "/1/0/4", now).code == 0x44  # Disable
    (bye,) = peer.others
    peer.answer(bye, 0x42)
    for _day in range(30):
        now = time.ticks_add(now, DAY)
        client.poll(now)
    assert peer.take() == []


def _quiet(peer, start, days):
    # Polls once an hour for `days`, answering registration Updates and acknowledging CON
    # notifications; returns the time then and the notifications.
    now, sent = start, []
    for _hour in range(days * 24):
        now = time.ticks_add(now, 3600000)
        for msg in peer.settle(now):
            sent.append(msg)
            if msg.type == CON:
                peer.inject(coap.Message(ACK, 0, msg.mid))
    return now, sent


def test_a_pmin_of_a_week_holds_back_notifications_for_a_week():
    client, peer, _reg = registered()
    sensor = _sensor(client, peer)
    peer.request(PUT, "/3303/0/5700", 50, query=["pmin=604800"])
    peer.request(GET, "/3303/0/5700", 100, observe=0, token=b"wk")
    sensor.set(5700, 30.0)
    now, sent = _quiet(peer, 100, 6)
    assert sent == []
    micropython.heap_lock()  # counting the week in steps allocates nothing
    try:
        client.poll(now)
    finally:
        micropython.heap_unlock()
    now, sent = _quiet(peer, now, 1)  # the week is over at 7 days after the first answer
    assert [(m.type, m.payload) for m in sent] == [(CON, b"30.0")]


def test_the_longest_pmax_sends_nothing_while_nothing_changes():
    client, peer, _reg = registered()
    _sensor(client, peer)
    peer.request(PUT, "/3303/0/5700", 50, query=["pmax=4294967295"])
    peer.request(GET, "/3303/0/5700", 100, observe=0, token=b"lp")
    assert _quiet(peer, 100, 20)[1] == []


def test_without_pmax_a_notification_goes_out_daily():
    client, peer, _reg = registered()
    _sensor(client, peer)
    peer.request(GET, "/3303/0/5700", 100, observe=0, token=b"dy")
    now, sent = _quiet(peer, 100, 3)
    assert [(m.type, m.payload) for m in sent] == [(CON, b"20.0")] * 3


def test_written_periods_are_range_checked():
    client, peer, _reg = registered()
    for rid, bad in ((1, b"0"), (1, b"4294967296"), (2, b"-1"), (3, b"4294967296"), (5, b"-5")):
        assert peer.request(PUT, "/1/0/%d" % rid, 100, bad, cf=TEXT).code == 0x80, (rid, bad)
    assert peer.request(PUT, "/1/0/1", 100, b"4294967295", cf=TEXT).code == 0x44
    assert peer.request(PUT, "/3/0/13", 100, b"-1", cf=TEXT).code == 0x80


# -- 5. bounded resources ---------------------------------------------------------------------


def test_past_the_observation_cap_a_get_is_answered_without_observe():
    client, peer, _reg = registered(limits={"observations": 2})
    _sensor(client, peer)
    assert peer.request(GET, "/3/0/0", 100, observe=0, token=b"o1").get(OBSERVE) is not None
    assert peer.request(GET, "/3/0/1", 100, observe=0, token=b"o2").get(OBSERVE) is not None
    third = peer.request(GET, "/3303/0/5700", 100, observe=0, token=b"o3")
    assert (third.code, third.payload, third.get(OBSERVE)) == (0x45, b"20.0", None)
    renewed = peer.request(GET, "/3/0/1", 100, observe=0, token=b"o2")  # the same token renews
    assert renewed.get(OBSERVE) is not None
    assert len(client.observer.observations) == 2


def test_write_attributes_entries_are_capped():
    client, peer, _reg = registered(limits={"attributes": 2})
    assert peer.request(PUT, "/3/0/0", 100, query=["pmin=1"]).code == 0x44
    assert peer.request(PUT, "/3/0/1", 100, query=["pmin=1"]).code == 0x44
    assert peer.request(PUT, "/3/0/2", 100, query=["pmin=1"]).code == 0x80
    assert peer.request(PUT, "/3/0/1", 100, query=["pmax=9"]).code == 0x44  # changing one is fine
    assert peer.request(PUT, "/3/0/1", 100, query=["pmin", "pmax"]).code == 0x44  # removing frees it
    assert peer.request(PUT, "/3/0/2", 100, query=["pmin=1"]).code == 0x44


def test_instances_a_server_may_create_are_capped():
    client, peer, _reg = registered(limits={"instances": 2})
    records = tlv.encode([(RESOURCE, 5701, b"Cel")])  # bare resources: the client picks the id
    assert peer.request(POST, "/3303", 100, records, cf=TLV).code == 0x41
    assert peer.request(POST, "/3303", 100, records, cf=TLV).code == 0x41
    assert peer.request(POST, "/3303", 100, records, cf=TLV).code == 0x80
    client.model.add_instance(3303, 5)  # the application's own do not count
    assert peer.request(DELETE, "/3303/0", 100).code == 0x42
    assert peer.request(POST, "/3303", 100, records, cf=TLV).code == 0x41


def test_an_execute_retransmitted_after_many_reads_runs_once():
    client, peer, _reg = registered()
    runs = []
    client.model.instance(3, 0).on_execute(12, runs.append)
    execute = coap.Message(CON, POST, 0x5151, b"x")
    execute.set_path("/3/0/12")
    peer.inject(execute)
    client.poll(100)
    for i in range(100):  # 100 reads of the Device instance, about 150 bytes each
        peer.request(GET, "/3/0", 200 + i)
    for i in range(20):  # and 20 other non-read requests
        peer.request(PUT, "/3/0/14", 300 + i, b"+02:00", cf=TEXT)
    peer.take()
    peer.inject(execute)
    client.poll(400)
    (again,) = peer.take()
    assert (again.mid, again.code) == (0x5151, 0x44)
    assert runs == [""]


# -- 6. protected state ------------------------------------------------------------------


def test_a_server_cannot_delete_device_security_or_its_own_server_instance():
    client, peer, _reg = registered()
    assert peer.request(DELETE, "/3/0", 100).code == 0x85
    assert peer.request(DELETE, "/0/0", 100).code == 0x81
    assert peer.request(DELETE, "/1/0", 100).code == 0x85
    assert client.model.instance(3, 0) and client.model.instance(0, 0) and client.model.instance(1, 0)


def test_a_disabled_server_is_not_served_until_it_registers_again():
    client, peer, _reg = registered()
    client.model.instance(1, 0).set(5, 60)
    peer.request(GET, "/3/0/0", 100, observe=0, token=b"ds")
    assert peer.request(POST, "/1/0/4", 100).code == 0x44
    peer.answer(peer.others[0], 0x42)
    client.poll(200)
    assert client.observer.observations == []
    assert peer.request(GET, "/3/0/0", 30000).code == 0x81
    assert peer.request(PUT, "/3/0/14", 30000, b"+03:00", cf=TEXT).code == 0x81
    assert client.board.offset == "+01:00"
    client.poll(60100)
    peer.answer(peer.take_one(), 0x41, "/rd/cd34")
    client.poll(60200)
    assert peer.request(GET, "/3/0/0", 60300).code == 0x45


def test_a_diagnostic_never_makes_an_answer_or_a_log_line_large():
    # Each of these quotes what the server sent in its 4.00 or 4.04: 1,080 bytes of it made a
    # 4,394-byte answer (every byte escaped as \x01), above the 1,152-byte CoAP limit. A quote
    # is clipped to 200 characters.
    client, peer, _reg = registered()
    lines = client.lines
    cases = (
        (POST, "/1/0/8", b"\x01" * 1080, None, 0x80),  # Execute arguments
        (PUT, "/3/0/14", b"a" * 1080, TEXT, 0x80),  # UTC offset
        (PUT, "/1/0/7", b"U" * 1080, TEXT, 0x80),  # binding
        (GET, "/3/" + "x" * 250, b"", None, 0x84),  # a path segment (Uri-Path takes 255 bytes at most)
        (PUT, "/3/0", b"", None, 0x80),  # an unknown attribute (Write-Attributes)
    )
    for code, path, payload, cf, expected in cases:
        query = ["x" * 250 + "=1"] if path == "/3/0" else None
        before = len(lines)
        answer = peer.request(code, path, 100, payload, cf=cf, query=query)
        assert (answer.code, len(answer.payload) <= 200) == (expected, True), (path, answer.code, len(answer.payload))
        assert len(coap.encode(answer)) < 240
        assert max(len(line) for line in lines[before:]) < 450, lines[before:]  # two clipped quotes at most
