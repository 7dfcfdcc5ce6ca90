# Access control as a property: random ACL tables and random operations of two servers on
# Temperature instances, each answer compared with a reference model of the TS rules (TS
# Core 1.1 7.3.2, the Access Control object) kept by the test itself: the bits R 1, W 2,
# E 4, D 8, C 16; the Access Control Owner has them all; else the server's own entry, else
# the default entry (ssid 0); an instance without an ACL instance is its creator's alone;
# Create needs C on the object-level ACL instance (65535) and makes the creator the owner of
# a new ACL instance; Delete removes it; only an ACL instance's owner may change it; an
# object-level Discover lists only what the server may read.
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, __file__.rsplit("/", 1)[0] + "/portable")

from test_access import B, TEXT, TLV, LINK, two_servers  # noqa: E402
from fakes import DELETE, GET, POST, PUT  # noqa: E402
from lwm2m import formats  # noqa: E402

SSIDS = (101, 102)
IIDS = (0, 1, 2, 3)
ALL = 31
bits = st.integers(0, 31)
entries = st.dictionaries(st.sampled_from((0, 101, 102)), bits, max_size=3)
acl = st.tuples(entries, st.sampled_from((None, 101, 102)))
tables = st.dictionaries(st.sampled_from(IIDS + (65535,)), acl, max_size=5)
creators = st.lists(st.sampled_from((None, 101, 102)), min_size=4, max_size=4)
operations = st.lists(st.tuples(st.sampled_from(("read", "write", "execute", "delete", "create", "grant", "list")),
                                st.sampled_from(SSIDS), st.sampled_from(IIDS), st.sampled_from((0, 101, 102)), bits),
                      min_size=1, max_size=12)


class Reference:
    # The TS rules over the test's own copy of the state: {iid: creator} of the existing
    # instances, {iid (65535: the object): [entries, owner]} of the ACL instances.
    def __init__(self, table, creators):
        self.instances = dict(enumerate(creators))
        self.acls = {iid: [dict(e), owner] for iid, (e, owner) in table.items()}

    def rights(self, ssid, iid):
        if iid not in self.acls:
            return ALL if self.instances.get(iid) == ssid else 0
        given, owner = self.acls[iid]
        if owner == ssid:
            return ALL
        return given[ssid] if ssid in given else given.get(0, 0)

    def may(self, ssid, iid, bit):
        return bool(self.rights(ssid, iid) & bit)


def acl_iid(client, iid):
    for inst in client.model.object(2).instances.values():
        if inst.get(0) == 3303 and inst.get(1) == iid:
            return inst.iid
    return None


@settings(max_examples=1000, deadline=None)
@given(tables, creators, operations)
def test_every_answer_follows_the_ts_rules(table, owners, ops):
    acls = [(3303, iid, dict(e), owner) for iid, (e, owner) in table.items()]
    client, a, b = two_servers(acls)
    for iid, creator in enumerate(owners):
        client.model.add_instance(3303, iid, {5700: 20.0}).creator = creator
    ref = Reference(table, owners)
    peers = {101: a, 102: b}
    now = 100
    for op, ssid, iid, target, value in ops:
        now += 10
        peer = peers[ssid]
        exists = iid in ref.instances
        if op == "read":
            code = peer.request(GET, "/3303/%d" % iid, now, accept=TLV).code
            expected = 0x84 if not exists else 0x45 if ref.may(ssid, iid, 1) else 0x81
        elif op == "write":
            code = peer.request(PUT, "/3303/%d/5750" % iid, now, b"x", cf=TEXT).code
            expected = 0x84 if not exists else 0x44 if ref.may(ssid, iid, 2) else 0x81
        elif op == "execute":  # allowed, it still has no handler: 4.05
            code = peer.request(POST, "/3303/%d/5605" % iid, now).code
            expected = 0x84 if not exists else 0x85 if ref.may(ssid, iid, 4) else 0x81
        elif op == "delete":
            code = peer.request(DELETE, "/3303/%d" % iid, now).code
            expected = 0x84 if not exists else 0x42 if ref.may(ssid, iid, 8) else 0x81
            if code == 0x42:
                del ref.instances[iid]
                ref.acls.pop(iid, None)
        elif op == "create":
            payload = formats.encode(TLV, (3303,), [((3303, iid, 5700), "f", 1.0)])
            code = peer.request(POST, "/3303", now, payload, cf=TLV).code
            expected = 0x81 if not ref.may(ssid, 65535, 16) else 0x80 if exists else 0x41
            if code == 0x41:
                ref.instances[iid] = ssid
                ref.acls[iid] = [{}, ssid]
        elif op == "grant":
            acl_instance = acl_iid(client, iid)
            if acl_instance is None:
                assert iid not in ref.acls
                continue
            code = peer.request(PUT, "/2/%d/2/%d" % (acl_instance, target), now, str(value).encode(), cf=TEXT).code
            expected = 0x44 if ref.acls[iid][1] == ssid else 0x81
            if code == 0x44:
                ref.acls[iid][0][target] = value
        else:
            answer = peer.request(GET, "/3303", now, accept=LINK)
            code, expected = answer.code, 0x45
            listed = [uri for uri in answer.payload.decode().split(",") if uri.count("/") == 2]
            assert listed == ["</3303/%d>" % i for i in sorted(ref.instances) if ref.may(ssid, i, 1)], (op, answer.payload)
        assert code == expected, (op, ssid, iid, target, value, hex(code), hex(expected), client.lines[-1:])
