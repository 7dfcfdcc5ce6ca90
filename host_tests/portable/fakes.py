# Shared test fakes: a board with fixed answers, a client on an in-memory transport, and the
# server's side of that transport. Portable: used under pytest and inside the MicroPython VM.
import os

from lwm2m import coap, core
from lwm2m.client import Client
from lwm2m.model import Model, load_definition
from lwm2m.transport import MemoryTransport

SERVER = ("127.0.0.1", 5683)
CON, NON, ACK, RST = 0, 1, 2, 3
GET, POST, PUT, DELETE = 1, 2, 3, 4
OBSERVE, LOCATION_PATH, URI_PATH, CONTENT_FORMAT, URI_QUERY, ACCEPT = 6, 8, 11, 12, 15, 17


def objects_dir():
    # The compact definitions: copied to /objects in the VM, firmware/objects on the host.
    try:
        os.stat("/objects")
        return "/objects"
    except OSError:
        return __file__.rsplit("/", 1)[0] + "/../../firmware/objects"


class FakeBoard:
    def __init__(self):
        self.reboots = 0
        self.resets = 0
        self.clock = 1700000000
        self.offset = "+01:00"

    def manufacturer(self):
        return "Test Maker"

    def model(self):
        return "T-1"

    def serial(self):
        return "0042"

    def firmware_version(self):
        return "1.29.0"

    def software_version(self):
        return "test"

    def device_type(self):
        return "tester"

    def memory_total(self):
        return 256 * 1024

    def memory_free(self):
        return 100 * 1024

    def utc_offset(self):
        return self.offset

    def set_utc_offset(self, value):
        self.offset = value

    def time(self):
        return self.clock

    def set_time(self, value):
        self.clock = value

    def rssi(self):
        return -61

    def ip_addresses(self):
        return ["192.0.2.7"]

    def router_addresses(self):
        return ["192.0.2.1"]

    def reboot(self):
        self.reboots += 1

    def factory_reset(self):
        self.resets += 1


def make_client(version="1.1", lifetime=300, pmin=0, pmax=0, limits=None, woken=None, now=0, queue_window_ms=None,
                prepare=None):
    # A started client with Security, Server, Device, Connectivity Monitoring, and the
    # Temperature and Light Control objects defined (no instances of those two yet);
    # woken: (state, slept_ms) for start(), a boot after a deep sleep at virtual time now;
    # prepare(client) adds to the model before the start, as the firmware's build() does.
    model = Model()
    folder = objects_dir()
    for oid in (0, 1, 3, 4, 3303, 3311):
        model.define(load_definition("%s/%d.json" % (folder, oid)))
    transport = MemoryTransport()
    lines = []
    client = Client(model, "test-ep", transport, version, lines.append, lambda: 0.0, limits=limits,
                    queue_window_ms=queue_window_ms)
    client.now = now
    client.lines = lines
    client.board = FakeBoard()
    core.add_security(model, "coap://127.0.0.1:5683", 1)
    core.add_server(model, 1, lifetime, pmin, pmax)
    core.add_device(model, client.board, client.defer)
    core.add_connectivity(model, client.board)
    if prepare:
        prepare(client)
    client.start(woken)
    return client, Peer(client, transport)


class Peer:
    # The server's side of the client's MemoryTransport.
    def __init__(self, client, transport, addr=SERVER):
        self.client = client
        self.transport = transport
        self.addr = addr
        self.mid = 0x7000

    def take(self):
        # Every datagram the client sent to this peer since the last take(), decoded.
        sent = self.transport.sent
        out = [coap.decode(data) for data, addr in sent if addr == self.addr]
        self.transport.sent = [item for item in sent if item[1] != self.addr]
        return out

    def take_one(self):
        sent = self.take()
        assert len(sent) == 1, [coap.code_name(m.code) for m in sent]
        return sent[0]

    def inject(self, msg):
        self.transport.inject(coap.encode(msg), self.addr)

    def answer(self, request, code, location=None, payload=b""):
        # A piggybacked answer to one of the client's CON requests.
        msg = coap.Message(ACK, code, request.mid, request.token, payload)
        if location:
            msg.set_path(location, LOCATION_PATH)
        self.inject(msg)

    def settle(self, now):
        # Polls the client, acknowledges the registration Updates it sends (2.04) and returns
        # whatever else it sent.
        self.client.poll(now)
        rest = []
        for msg in self.take():
            if msg.type == CON and msg.code == POST and msg.path().startswith("/rd/"):
                self.answer(msg, 0x44)
            else:
                rest.append(msg)
        self.client.poll(now)
        return rest + self.take()

    def request(self, code, path, now, payload=b"", cf=None, accept=None, query=None, observe=None, token=b"\x5e"):
        # Sends a CON request and returns the client's answer (an ACK).
        self.mid += 1
        msg = coap.Message(CON, code, self.mid, token, payload)
        msg.set_path(path)
        if observe is not None:
            msg.add(OBSERVE, observe)
        if cf is not None:
            msg.add(CONTENT_FORMAT, cf)
        if accept is not None:
            msg.add(ACCEPT, accept)
        for item in query or ():
            msg.add(URI_QUERY, item)
        self.inject(msg)
        self.client.poll(now)
        sent = self.take()
        answers = [m for m in sent if m.type == ACK and m.mid == self.mid]
        assert len(answers) == 1, [coap.code_name(m.code) for m in sent]
        self.others = [m for m in sent if m is not answers[0]]
        return answers[0]


def add_sensor(client):
    # /3303/0: a temperature of 21.5 Cel, read through a hook as a board's sensor is.
    sensor = client.model.add_instance(3303, 0, {5701: "Cel"})
    sensor.on_read(5700, lambda: 21.5)
    return sensor


def registered(version="1.1", lifetime=300, pmin=0, pmax=0, limits=None):
    # A client registered at /rd/ab12 at time 0; returns (client, peer, register request).
    client, peer = make_client(version, lifetime, pmin, pmax, limits)
    client.poll(0)
    register = peer.take_one()
    peer.answer(register, 0x41, "/rd/ab12")
    client.poll(10)
    assert peer.take() == []
    return client, peer, register
