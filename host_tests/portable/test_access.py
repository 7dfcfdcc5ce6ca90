# Access control with two management servers (lwm2m.access through lwm2m.client): the ACL
# bits per operation, the owner's rights, a Create that makes its creator the owner of a new
# ACL instance, a Delete that removes it, object-level reads listing only what a server may
# read, a server's own Server instance, and ACL instances that only their owner may change.
from fakes import DELETE, GET, POST, PUT, SERVER, FakeBoard, Peer, objects_dir
from lwm2m import core, formats
from lwm2m.client import Client
from lwm2m.model import Model, load_definition
from lwm2m.transport import MemoryTransport

B = ("127.0.0.1", 5693)
A_URI, B_URI = "coap://127.0.0.1:5683", "coap://127.0.0.1:5693"
R, W, E, D, C = 1, 2, 4, 8, 16
TEXT, TLV, LINK = 0, 11542, 40


def two_servers(acls=()):
    # A client registered with A (ssid 101, at SERVER) and B (ssid 102, at B), with the
    # instances /3311/0 and /3311/1 of its own and the ACL instances `acls`: (oid, iid,
    # {ssid: bits}, owner); returns (client, A's peer, B's peer).
    model = Model()
    for oid in (0, 1, 2, 3, 4, 3303, 3311):
        model.define(load_definition("%s/%d.json" % (objects_dir(), oid)))
    transport = MemoryTransport()
    lines = []
    client = Client(model, "test-ep", transport, "1.1", lines.append, lambda: 0.0)
    client.lines = lines
    for ssid, uri in ((101, A_URI), (102, B_URI)):
        core.add_security(model, uri, ssid)
        core.add_server(model, ssid, 300)
    core.add_device(model, FakeBoard(), client.defer)
    model.add_instance(3311, 0, {5850: False})
    model.add_instance(3311, 1, {5850: False})
    for oid, iid, entries, owner in acls:
        model.add_instance(2, None, {0: oid, 1: iid, 2: entries, 3: owner})
    client.start()
    peers = Peer(client, transport, SERVER), Peer(client, transport, B)
    client.poll(0)
    for peer in peers:
        peer.answer(peer.take_one(), 0x41, "/rd/%d" % peer.addr[1])
    client.poll(10)
    return client, peers[0], peers[1]


def test_b_may_only_read_what_a_may_read_and_write():
    client, a, b = two_servers([(3311, 0, {101: R | W, 102: R}, 101)])
    assert b.request(GET, "/3311/0/5850", 100).code == 0x45
    assert b.request(PUT, "/3311/0/5850", 110, b"1", cf=TEXT).code == 0x81
    assert client.model.instance(3311, 0).get(5850) is False
    assert a.request(PUT, "/3311/0/5850", 120, b"1", cf=TEXT).code == 0x44
    assert client.model.instance(3311, 0).get(5850) is True
    assert "%s: 0.03 PUT /3311/0/5850 -> 4.01 Unauthorized (%s has no Write right on /3311/0)" % (B_URI, B_URI) \
        in client.lines
    assert "%s: 0.03 PUT /3311/0/5850 -> 2.04 Changed" % A_URI in client.lines


def test_the_default_entry_and_the_owner():
    client, a, b = two_servers([(3311, 0, {0: R}, 102)])
    assert a.request(GET, "/3311/0", 100).code == 0x45  # the default entry (ssid 0)
    assert a.request(PUT, "/3311/0/5850", 110, b"1", cf=TEXT).code == 0x81
    assert b.request(PUT, "/3311/0/5850", 120, b"1", cf=TEXT).code == 0x44  # the owner may do anything
    assert b.request(POST, "/3311/0", 130, formats.encode(TLV, (3311, 0), [((3311, 0, 5850), "b", False)]),
                     cf=TLV).code == 0x44
    assert a.request(DELETE, "/3311/0", 140).code == 0x81


def test_without_an_acl_instance_only_the_creator_may_touch_an_instance():
    client, a, b = two_servers([(3303, 65535, {101: C, 102: C}, 101)])
    for peer in (a, b):
        assert peer.request(GET, "/3311/1", 100).code == 0x81  # the client's own: nobody's
    answer = b.request(POST, "/3303", 110, formats.encode(TLV, (3303,), [((3303, 5, 5700), "f", 21.5)]), cf=TLV)
    assert answer.code == 0x41
    acl = [inst for inst in client.model.object(2).instances.values() if inst.get(0) == 3303 and inst.get(1) == 5]
    assert len(acl) == 1 and acl[0].get(3) == 102 and not acl[0].has(2)  # B owns it, no entries
    assert b.request(GET, "/3303/5/5700", 120).code == 0x45
    assert a.request(GET, "/3303/5/5700", 130).code == 0x81
    assert a.request(DELETE, "/3303/5", 140).code == 0x81
    # B, its ACL instance's owner, gives A the Delete right
    assert b.request(PUT, "/2/%d/2/101" % acl[0].iid, 150, b"8", cf=TEXT).code == 0x44
    assert a.request(DELETE, "/3303/5", 160).code == 0x42
    assert client.model.instance(3303, 5) is None
    assert [i for i in client.model.object(2).instances.values() if i.get(0) == 3303 and i.get(1) == 5] == []


def test_create_needs_the_create_right_on_the_object():
    client, a, b = two_servers([(3303, 65535, {101: C}, 101)])
    payload = formats.encode(TLV, (3303,), [((3303, 7, 5700), "f", 1.0)])
    assert b.request(POST, "/3303", 100, payload, cf=TLV).code == 0x81
    assert client.model.instance(3303, 7) is None
    assert a.request(POST, "/3303", 110, payload, cf=TLV).code == 0x41


def test_object_reads_and_discovers_list_only_what_the_server_may_read():
    client, a, b = two_servers([(3311, 0, {102: R}, 101)])
    answer = b.request(GET, "/3311", 100, accept=TLV)
    assert [rpath[1] for rpath, _t, _v in formats.decode(TLV, (3311,), answer.payload, lambda p: "b")] == [0]
    assert b.request(GET, "/3311", 110, accept=LINK).payload == b"</3311>,</3311/0>,</3311/0/5850>"
    answer = a.request(GET, "/3311", 120, accept=LINK)
    assert answer.payload == b"</3311>,</3311/0>,</3311/0/5850>"  # the owner: /3311/1 is nobody's
    assert b.request(GET, "/3311/1", 130, accept=LINK).code == 0x81


def test_a_server_has_its_own_server_instance_and_no_other():
    client, a, b = two_servers()
    assert a.request(POST, "/1/0/8", 100).code == 0x44  # Registration Update Trigger
    assert a.request(PUT, "/1/0/1", 110, b"600", cf=TEXT).code == 0x44
    assert a.request(GET, "/1/1", 120).code == 0x81
    assert b.request(PUT, "/1/0/1", 130, b"60", cf=TEXT).code == 0x81
    assert b.request(GET, "/1", 140, accept=LINK).payload == b"</1>;ver=1.1,</1/1>,</1/1/0>,</1/1/1>,</1/1/2>," \
        b"</1/1/3>,</1/1/4>,</1/1/5>,</1/1/6>,</1/1/7>,</1/1/8>,</1/1/9>,</1/1/16>,</1/1/17>,</1/1/18>,</1/1/19>,</1/1/20>"
    assert a.request(GET, "/0/0", 150).code == 0x81  # Security: never


def test_acl_instances_are_their_owners_alone():
    client, a, b = two_servers([(3311, 0, {101: R | W | E | D | C, 102: R}, 102)])
    iid = next(iter(client.model.object(2).instances))
    assert a.request(PUT, "/2/%d/2/101" % iid, 100, b"31", cf=TEXT).code == 0x81  # full rights, not owner
    assert a.request(GET, "/2/%d" % iid, 110).code == 0x81
    assert b.request(GET, "/2/%d" % iid, 120).code == 0x45
    assert b.request(PUT, "/2/%d/2/101" % iid, 130, b"1", cf=TEXT).code == 0x44
    assert client.model.instance(2, iid).get(2) == {101: R, 102: R}  # that one entry replaced, alone
    assert a.request(PUT, "/3311/0/5850", 140, b"1", cf=TEXT).code == 0x81  # only Read left
    assert b.request(DELETE, "/2/%d" % iid, 150).code == 0x81
    assert b.request(POST, "/2", 160, formats.encode(TLV, (2,), [((2, 9, 0), "i", 3)]), cf=TLV).code == 0x81


def test_with_one_server_no_acl_is_needed():
    client, a, _b = two_servers()
    client.model.delete_instance(0, 1)  # B's account: one server left
    client.servers = []
    client.access = None
    client.start()
    assert a.request(GET, "/3311/1", 100).code == 0x45
    assert a.request(PUT, "/3311/1/5850", 110, b"1", cf=TEXT).code == 0x44


def test_stop_deregisters_from_every_server():
    client, a, b = two_servers()
    client.stop(timeout_ms=0)
    for peer in (a, b):
        bye = peer.take_one()
        assert (bye.code, bye.path()) == (DELETE, "/rd/%d" % peer.addr[1])
