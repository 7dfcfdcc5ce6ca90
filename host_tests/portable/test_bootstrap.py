# The Bootstrap interface on the client's side (lwm2m.bootstrap, through lwm2m.client): the
# Request and its Client Hold Off Time, Bootstrap-Write in TLV, SenML JSON and text,
# Bootstrap-Read, -Discover (bytes checked exactly) and -Delete, the Finish check (2.04 or
# 4.06 with what is missing), a bootstrap that never finishes, the fall-back after failed
# registrations and the server-initiated one (/1/x/9).
from fakefs import MODES, FakeFS, PowerCut
from fakes import (CON, DELETE, GET, POST, PUT, SERVER, URI_QUERY, FakeBoard, Peer, objects_dir)
from lwm2m import coap, core, formats, store
from lwm2m.client import Client
from lwm2m.model import Model, load_definition
from lwm2m.store import Persist
from lwm2m.transport import MemoryTransport

BS = ("127.0.0.1", 5783)
STATE = "/flash/state/servers.json"  # on a FakeFS
BS_URI = "coap://127.0.0.1:5783"
DM_URI = "coap://127.0.0.1:5683"
TLV, SENML_JSON, TEXT, LINK = 11542, 110, 0, 40


def new_client(management=False, version="1.1", hold_off=0, fs=None):
    # A started client whose only account is a bootstrap server's at BS (and, with
    # `management`, the factory management server at SERVER too); returns (client, the
    # bootstrap server's peer, the management server's peer). With fs (a FakeFS), what it
    # was given is kept in STATE there, as the firmware keeps it (firmware/main.py), and
    # restored before it starts; client.persist is the Persist.
    model = Model()
    for oid in (0, 1, 2, 3, 4, 3303):
        model.define(load_definition("%s/%d.json" % (objects_dir(), oid)))
    transport = MemoryTransport()
    lines = []
    client = Client(model, "test-ep", transport, version, lines.append, lambda: 0.0)
    client.lines = lines
    account = core.add_security(model, BS_URI, 0, bootstrap=True)
    account.set(11, hold_off)
    if management:
        core.add_security(model, DM_URI, 1)
        core.add_server(model, 1, 300)
    core.add_device(model, FakeBoard(), client.defer)
    core.add_connectivity(model, FakeBoard())
    if fs is not None:
        on_fs = lambda action: client.defer(lambda: fs.run(store, action))  # noqa: E731
        client.persist = Persist(model, STATE, (1, 3), on_fs, (0, 1, 2), lambda: client.bootstrap is not None)
        fs.run(store, client.persist.restore)
        model.watchers.append(client.persist.changed)
        client.on_bootstrapped = lambda: fs.run(store, client.persist.bootstrapped)
    client.start()
    return client, Peer(client, transport, BS), Peer(client, transport, SERVER)


def requested(bs, now=0):
    # The Bootstrap-Request the client sends at `now`, answered 2.04.
    bs.client.poll(now)
    req = bs.take_one()
    assert (req.code, req.path()) == (POST, "/bs")
    bs.answer(req, 0x44)
    bs.client.poll(now)
    return req


def security_tlv(iid, uri, ssid, mode=3, identity=b"", key=b""):
    records = [((0, iid, 0), "s", uri), ((0, iid, 1), "b", False), ((0, iid, 2), "i", mode),
               ((0, iid, 3), "o", identity), ((0, iid, 4), "o", b""), ((0, iid, 5), "o", key),
               ((0, iid, 10), "i", ssid)]
    return formats.encode(TLV, (0, iid), records)


def server_senml(iid, ssid, lifetime):
    return ('[{"bn":"/1/%d/","n":"0","v":%d},{"n":"1","v":%d},{"n":"6","vb":false},{"n":"7","vs":"U"}]'
            % (iid, ssid, lifetime)).encode()


def provision(bs, now, lifetime=120):
    # What a bootstrap server writes for one management server at SERVER, ssid 101.
    assert bs.request(PUT, "/0/1", now, security_tlv(1, DM_URI, 101), cf=TLV).code == 0x44
    assert bs.request(PUT, "/1/0", now, server_senml(0, 101, lifetime), cf=SENML_JSON).code == 0x44


def test_the_request_names_the_endpoint_and_the_preferred_format():
    client, bs, _dm = new_client()
    req = requested(bs)
    assert req.type == CON and req.get_all(URI_QUERY) == ["ep=test-ep", "pct=11542"]
    assert "bootstrap from %s: no management server account" % BS_URI in client.lines


def test_a_1_0_client_sends_no_pct():
    _client, bs, _dm = new_client(version="1.0")
    assert requested(bs).get_all(URI_QUERY) == ["ep=test-ep"]


def test_client_hold_off_time_delays_the_request():
    client, bs, _dm = new_client(hold_off=5)
    client.poll(0)
    client.poll(4999)
    assert bs.take() == []
    client.poll(5000)
    assert bs.take_one().path() == "/bs"


def test_write_delete_finish_then_register_with_what_was_written():
    client, bs, dm = new_client()
    requested(bs)
    assert bs.request(DELETE, "/", 10).code == 0x42
    assert client.model.instance(0, 0) is not None  # its own account stays
    assert client.model.instance(3, 0) is not None and client.model.instance(4, 0) is not None
    provision(bs, 20)
    assert bs.request(PUT, "/1/0/3", 30, b"600", cf=TEXT).code == 0x44  # a resource, in text
    assert bs.request(POST, "/bs", 40).code == 0x44
    client.poll(50)
    reg = dm.take_one()
    assert (reg.code, reg.path()) == (POST, "/rd")
    assert "lt=120" in reg.get_all(URI_QUERY)
    assert client.model.instance(1, 0).get(3) == 600
    assert client.model.instance(0, 1).get(10) == 101
    assert "bootstrap from %s finished" % BS_URI in client.lines


def test_the_bootstrap_module_is_unloaded_after_the_finish():
    import sys

    client, bs, _dm = new_client()
    requested(bs)
    assert "lwm2m.bootstrap" in sys.modules
    provision(bs, 20)
    assert bs.request(POST, "/bs", 40).code == 0x44
    client.poll(50)
    assert "lwm2m.bootstrap" not in sys.modules and client.bootstrap is None
    import lwm2m

    assert not hasattr(lwm2m, "bootstrap")


def test_write_in_lwm2m_json_and_of_a_whole_object_in_tlv():
    client, bs, _dm = new_client()
    requested(bs)
    lwm2m_json = b'{"bn":"/1/0/","e":[{"n":"0","v":101},{"n":"1","v":45},{"n":"6","bv":false},{"n":"7","sv":"U"}]}'
    assert bs.request(PUT, "/1/0", 10, lwm2m_json, cf=11543).code == 0x44
    records = [((0, 1, 0), "s", DM_URI), ((0, 1, 1), "b", False), ((0, 1, 2), "i", 3), ((0, 1, 10), "i", 101),
               ((0, 2, 0), "s", "coap://127.0.0.1:5685"), ((0, 2, 1), "b", False), ((0, 2, 2), "i", 3),
               ((0, 2, 10), "i", 102)]
    assert bs.request(PUT, "/0", 10, formats.encode(TLV, (0,), records), cf=TLV).code == 0x44
    assert sorted(client.model.object(0).instances) == [0, 1, 2]
    assert client.model.instance(1, 0).get(1) == 45 and client.model.instance(0, 2).get(10) == 102


def test_an_inconsistent_finish_is_refused_and_the_old_state_comes_back():
    client, bs, _dm = new_client()
    requested(bs)
    # a Server instance whose Security instance is missing, and one that has no key
    assert bs.request(PUT, "/1/0", 10, server_senml(0, 101, 120), cf=SENML_JSON).code == 0x44
    assert bs.request(PUT, "/0/2", 10, security_tlv(2, "coaps://127.0.0.1:5684", 102, mode=0), cf=TLV).code == 0x44
    assert bs.request(PUT, "/1/1", 10, server_senml(1, 102, 120), cf=SENML_JSON).code == 0x44
    answer = bs.request(POST, "/bs", 20)
    assert answer.code == 0x86  # 4.06 Not Acceptable
    assert answer.payload == (b"/1/0: no Security instance with Short Server ID 101; "
                              b"/0/2/3: empty, Security Mode 0 needs it; /0/2/5: empty, Security Mode 0 needs it")
    client.poll(30)
    assert sorted(client.model.object(0).instances) == [0] and client.model.object(1).instances == {}
    assert any("bootstrap from %s failed (the configuration was not usable); retrying in 10 s" % BS_URI in line
               for line in client.lines)
    client.poll(10019)  # the Finish was refused in the poll at 20
    assert bs.take() == []
    client.poll(10020)
    assert bs.take_one().path() == "/bs"


def test_a_bootstrap_that_never_finishes_is_given_up_and_undone():
    client, bs, _dm = new_client()
    requested(bs)
    provision(bs, 1000)
    client.poll(247999)
    assert client.model.instance(1, 0) is not None
    client.poll(248000)
    assert client.model.instance(1, 0) is None and client.model.instance(0, 1) is None
    assert client.lines[-1] == ("bootstrap from %s failed (no Bootstrap-Finish within 247 s of the last operation); "
                                "retrying in 10 s" % BS_URI)
    client.poll(258000)
    assert bs.take_one().path() == "/bs"


def test_an_unanswered_request_is_retried_with_back_off():
    client, bs, _dm = new_client()
    client.poll(0)
    bs.take()
    for now in (2000, 6000, 14000, 30000):  # rand() = 0: CoAP's retransmissions
        client.poll(now)
        assert bs.take_one().path() == "/bs"
    client.poll(62000)
    assert client.lines[-1] == "bootstrap from %s failed (Bootstrap-Request: no answer); retrying in 10 s" % BS_URI
    client.poll(72000)
    assert bs.take_one().path() == "/bs"


def test_discover_of_root_and_of_an_object():
    client, bs, _dm = new_client()
    requested(bs)
    provision(bs, 10)
    answer = bs.request(GET, "/", 20, accept=LINK)
    assert (answer.code, answer.get(12)) == (0x45, LINK)
    assert answer.payload == (b'</>;lwm2m=1.1,</0>;ver=1.1,</0/0>;uri="coap://127.0.0.1:5783",'
                              b'</0/1>;ssid=101;uri="coap://127.0.0.1:5683",</1>;ver=1.1,</1/0>;ssid=101,'
                              b'</2>;ver=1.1,</3>;ver=1.1,</3/0>,</4/0>,</3303>;ver=1.1')
    answer = bs.request(GET, "/1", 30, accept=LINK)
    assert answer.payload == b"</>;lwm2m=1.1,</1>;ver=1.1,</1/0>;ssid=101"
    assert bs.request(GET, "/1/0", 40, accept=LINK).code == 0x80
    assert bs.request(GET, "/9", 50, accept=LINK).code == 0x84


def test_read_is_for_server_and_access_control_only():
    client, bs, _dm = new_client()
    requested(bs)
    provision(bs, 10)
    answer = bs.request(GET, "/1/0", 20, accept=SENML_JSON)
    assert answer.code == 0x45 and b'"n":"1","v":120' in answer.payload
    for path in ("/0", "/0/1", "/3/0", "/"):
        assert bs.request(GET, path, 30, accept=TLV).code == 0x81, path


def test_delete_keeps_the_bootstrap_account_and_the_device():
    client, bs, _dm = new_client(management=True)
    assert client.request_bootstrap("test")
    requested(bs)
    assert bs.request(DELETE, "/0/0", 10).code == 0x80
    assert bs.request(DELETE, "/3/0", 10).code == 0x80
    assert bs.request(DELETE, "/0/1", 10).code == 0x42
    assert bs.request(DELETE, "/0/1", 10).code == 0x84
    assert bs.request(DELETE, "/1", 10).code == 0x42
    assert client.model.object(1).instances == {}
    assert sorted(client.model.object(0).instances) == [0]
    assert bs.request(DELETE, "/1/0/1", 10).code == 0x80


def test_write_refuses_what_it_cannot_take_and_changes_nothing():
    client, bs, _dm = new_client()
    requested(bs)
    assert bs.request(PUT, "/3/0/14", 10, b"02:00", cf=TEXT).code == 0x80  # the check refuses it
    assert client.model.instance(3, 0).get(14) == "+01:00"
    assert bs.request(PUT, "/1/0", 10, b"").code == 0x80  # no Content-Format
    assert bs.request(PUT, "/1/0/4", 10, b"1", cf=TEXT).code == 0x85  # an executable
    assert bs.request(PUT, "/7/0", 10, b"1", cf=TEXT).code == 0x84
    assert bs.request(PUT, "/3/1/14", 10, b"+02:00", cf=TEXT).code == 0x80  # Device is single
    assert bs.request(PUT, "/1/65535/1", 10, b"60", cf=TEXT).code == 0x80
    assert client.model.object(1).instances == {}
    # two Device instances in one Write, to an object that holds one, and more Server
    # instances than the "instances" limit (8): refused whole
    devices = formats.encode(TLV, (3,), [((3, 1, 14), "s", "+02:00"), ((3, 2, 14), "s", "+03:00")])
    client.model.delete_instance(3, 0)
    assert bs.request(PUT, "/3", 10, devices, cf=TLV).code == 0x80 and client.model.object(3).instances == {}
    servers = formats.encode(TLV, (1,), [((1, iid, 1), "i", 60) for iid in range(9)])
    assert bs.request(PUT, "/1", 10, servers, cf=TLV).code == 0x80 and client.model.object(1).instances == {}
    assert bs.request(PUT, "/1", 10, formats.encode(TLV, (1,), [((1, iid, 1), "i", 60) for iid in range(8)]),
                      cf=TLV).code == 0x44


def test_requests_of_others_wait_while_bootstrapping():
    client, bs, dm = new_client(management=True)
    client.poll(0)
    dm.answer(dm.take_one(), 0x41, "/rd/1")
    client.poll(10)
    assert client.request_bootstrap("test")
    requested(bs, 20)
    assert dm.request(GET, "/3/0/0", 30).code == 0xA3  # 5.03: ask again once registered
    assert bs.request(GET, "/3/0/0", 40).code == 0x81


def test_bootstrap_request_trigger_bootstraps_again():
    client, bs, dm = new_client(management=True)
    client.poll(0)
    dm.answer(dm.take_one(), 0x41, "/rd/1")
    client.poll(10)
    assert dm.request(POST, "/1/0/9", 20).code == 0x44
    assert "bootstrap from %s: asked by %s" % (BS_URI, DM_URI) in client.lines
    requested(bs, 30)
    provision(bs, 40, lifetime=90)
    assert bs.request(POST, "/bs", 50).code == 0x44
    client.poll(60)
    reg = dm.take_one()
    assert reg.path() == "/rd" and "lt=90" in reg.get_all(URI_QUERY)


def test_failed_registrations_fall_back_to_bootstrap():
    # The factory Server instance: 5 attempts 10, 20, 40 and 80 s apart, each given up after
    # CoAP's 62 s (rand() = 0), then the bootstrap.
    client, bs, dm = new_client(management=True)
    now = 0
    for wait in (10000, 20000, 40000, 80000, None):
        for at in (0, 2000, 6000, 14000, 30000):  # the Register and its retransmissions
            client.poll(now + at)
            assert dm.take_one().path() == "/rd"
        now += 62000
        client.poll(now)
        assert dm.take() == []
        if wait:
            assert bs.take() == [] and client.lines[-1].endswith("retrying in %d s" % (wait // 1000))
            now += wait
    assert "bootstrap from %s: register with %s failed (no answer)" % (BS_URI, DM_URI) in client.lines
    assert bs.take_one().path() == "/bs"


def test_a_refused_register_bootstraps_at_once():
    client, bs, dm = new_client(management=True)
    client.poll(0)
    dm.answer(dm.take_one(), 0x83)  # 4.03 Forbidden
    client.poll(10)
    assert "bootstrap from %s: register with %s failed (4.03 Forbidden)" % (BS_URI, DM_URI) in client.lines
    assert bs.take_one().path() == "/bs"


def test_without_a_bootstrap_server_failed_sequences_go_on():
    client, _bs, dm = new_client(management=True)
    client.model.delete_instance(0, 0)
    client.poll(0)
    dm.answer(dm.take_one(), 0x83)
    client.poll(10)
    assert client.lines[-1] == "register with %s failed (4.03 Forbidden); retrying in 300 s" % DM_URI
    client.poll(300009)
    assert dm.take() == []
    client.poll(300010)
    assert dm.take_one().path() == "/rd"


def test_what_a_bootstrap_gave_survives_a_restart_keys_included():
    fs = FakeFS("littlefs")
    client, bs, _dm = new_client(fs=fs)
    requested(bs)
    assert bs.request(PUT, "/0/1", 10, security_tlv(1, DM_URI, 101, 3, b"ep-id", b"\x00\xffkey"),
                      cf=TLV).code == 0x44
    assert bs.request(PUT, "/1/0", 10, server_senml(0, 101, 120), cf=SENML_JSON).code == 0x44
    acl = [((2, 0, 0), "i", 3), ((2, 0, 1), "i", 0), ((2, 0, 2, 0), "i", 1), ((2, 0, 2, 101), "i", 3), ((2, 0, 3), "i", 101)]
    assert bs.request(PUT, "/2/0", 10, formats.encode(TLV, (2, 0), acl), cf=TLV).code == 0x44
    assert fs.disk == {}  # nothing is saved before the Finish
    assert bs.request(POST, "/bs", 20).code == 0x44
    assert STATE in fs.disk and fs.disk[STATE].count("ep-id".encode().hex()) == 1
    again, bs2, dm2 = new_client(fs=fs.reboot())
    account = again.model.instance(0, 1)
    assert (account.get(0), account.get(3), account.get(5), account.get(10)) == (
        DM_URI, b"ep-id", b"\x00\xffkey", 101)
    assert again.model.instance(0, 0).get(1) is True  # the bootstrap account is kept too
    assert again.model.instance(1, 0).get(1) == 120 and again.persist.whole_saved
    assert again.model.instance(2, 0).get(2) == {0: 1, 101: 3} and again.model.instance(2, 0).get(3) == 101
    assert again.bootstrap is None and len(again.servers) == 1  # registers without bootstrapping
    again.poll(0)
    assert bs2.take() == []


def test_a_management_write_after_a_bootstrap_is_kept_with_it():
    fs = FakeFS("posix")
    client, bs, dm = new_client(fs=fs)
    requested(bs)
    provision(bs, 10)
    assert bs.request(POST, "/bs", 20).code == 0x44
    client.poll(30)
    dm.answer(dm.take_one(), 0x41, "/rd/9")
    client.poll(40)
    assert dm.request(PUT, "/1/0/1", 50, b"777", cf=TEXT).code == 0x44
    again = new_client(fs=fs.reboot())[0]
    assert again.model.instance(1, 0).get(1) == 777 and again.model.instance(0, 1).get(10) == 101


def _bootstrapped(fs):
    # A client that was bootstrapped once (lifetime 120) and saved that, registered.
    client, bs, dm = new_client(fs=fs)
    requested(bs)
    provision(bs, 10)
    assert bs.request(POST, "/bs", 20).code == 0x44
    client.poll(30)
    dm.answer(dm.take_one(), 0x41, "/rd/1")
    client.poll(40)
    return client, bs, dm


def test_a_cut_at_any_step_of_a_second_bootstrap_leaves_the_old_state_or_the_new():
    # A server asks for a new bootstrap, which gives lifetime 90; the power goes at each step
    # of the sequence (nothing is written before the Finish) and of the save after it. After
    # the reboot the board has the first bootstrap's state or the second's, whole.
    for mode in MODES:
        k = 0
        seen = set()
        while True:
            k += 1
            fs = FakeFS(mode)
            client, bs, dm = _bootstrapped(fs)
            before = dict(fs.disk)
            assert dm.request(POST, "/1/0/9", 50).code == 0x44
            requested(bs, 60)
            for step in (lambda: bs.request(DELETE, "/0", 70), lambda: bs.request(DELETE, "/1", 70),
                         lambda: provision(bs, 80, lifetime=90)):
                step()
                assert fs.disk == before
            fs.fail_at = len(fs.steps) + k  # the k-th step of the save
            try:
                bs.request(POST, "/bs", 90)
                cut = False
            except PowerCut:
                cut = True
            again = new_client(fs=fs.reboot())[0]
            assert again.bootstrap is None and again.model.instance(0, 1).get(10) == 101
            lifetime = again.model.instance(1, 0).get(1)
            seen.add(lifetime)
            assert lifetime in (120, 90), (mode, k, lifetime)
            if not cut:
                assert lifetime == 90
                break
        assert k > 5 and seen == {120, 90}, (mode, k, seen)


def test_malformed_bootstrap_requests_get_4_xx_and_change_nothing():
    client, bs, _dm = new_client()
    requested(bs)
    before = sorted((oid, sorted(obj.instances)) for oid, obj in client.model.objects.items())
    for path, payload, cf in (("/0/1", b"\xff\x00", TLV), ("/0/1", b"[{", SENML_JSON), ("/1/0", b"{}", 11543),
                              ("/1/0/1", b"x", TEXT), ("/1/0", b"1", 9999), ("/0/1/0", b"\xc3", TEXT),
                              ("/1/x", b"1", TEXT), ("/0/1", formats.encode(TLV, (0, 1), [((0, 1, 1), "i", 5)]), TLV)):
        code = bs.request(PUT, path, 10, payload, cf=cf).code
        assert 0x80 <= code < 0xA0, (path, payload, coap.code_name(code))
    assert bs.request(9, "/1/0", 10).code == 0x85  # a method no bootstrap operation uses
    assert sorted((oid, sorted(obj.instances)) for oid, obj in client.model.objects.items()) == before
    assert not any("handler failed" in line for line in client.lines)
