# UdpTransport over stand-ins of the socket and select modules, so that it runs in the
# MicroPython VM too (which has no socket module): receiving a datagram on a connected socket
# allocates nothing, proved under heap_lock. host_tests/test_transport_udp.py has the same
# transport on real sockets.
import errno
import sys

import micropython

POLLIN = 1
SERVER = ("192.0.2.10", 5683)


class FakeSocket:
    # A connected UDP socket as MicroPython's: readinto, no recvfrom_into, no fileno.
    def __init__(self, family, kind):
        self.peer = None
        self.datagram = None  # what the next readinto gives
        self.sent = []

    def setblocking(self, flag):
        assert flag is False

    def bind(self, addr):
        # Local ports are taken until closed; TAKEN holds ports some other program has.
        if addr[1] in BOUND or addr[1] in TAKEN:
            raise OSError(errno.EADDRINUSE, "address in use")
        assert addr[0] == "0.0.0.0" and self.peer is None  # bound before it is connected
        self.local = addr[1]
        BOUND.add(addr[1])

    def connect(self, addr):
        self.peer = addr

    def send(self, data):
        self.sent.append(bytes(data))
        return len(data)

    def readinto(self, buf):
        data = self.datagram
        if data is None:
            return None
        self.datagram = None
        n = min(len(data), len(buf))
        buf[:n] = data[:n] if n < len(data) else data
        return n

    def close(self):
        BOUND.discard(getattr(self, "local", None))


BOUND = set()
TAKEN = set()


class FakeSocketModule:
    AF_INET = 2
    SOCK_DGRAM = 2
    socket = FakeSocket

    @staticmethod
    def getaddrinfo(host, port, family, kind):
        return [(family, kind, 0, "", (host, port))]


class FakePoll:
    # ipoll() as MicroPython's: the ready (object, event) pairs, made once, no allocation.
    def __init__(self):
        self.socks = []
        self.ready = {}

    def register(self, sock, events):
        self.socks.append(sock)
        self.ready[sock] = ((sock, POLLIN),)

    def unregister(self, sock):
        self.socks.remove(sock)

    def ipoll(self, timeout):
        for sock in self.socks:
            if sock.datagram is not None:
                return self.ready[sock]
        return ()

    poll = ipoll


class FakeSelectModule:
    POLLIN = POLLIN
    poll = FakePoll


def _with_transport(test):
    # Runs test(transport) with the stand-ins in place of the socket and select modules.
    saved = (sys.modules.get("socket"), sys.modules.get("select"))
    sys.modules["socket"] = FakeSocketModule
    sys.modules["select"] = FakeSelectModule
    try:
        from lwm2m.transport import UdpTransport

        test(UdpTransport())
    finally:
        for name, module in zip(("socket", "select"), saved):
            if module is None:
                del sys.modules[name]
            else:
                sys.modules[name] = module


def test_a_datagram_is_received_into_the_buffer_without_allocating():
    _with_transport(_receive_without_allocating)


def _receive_without_allocating(transport):
    addr = transport.resolve(*SERVER)
    sock = transport.socket(addr)
    assert sock.peer == SERVER  # connected to its server
    buf = bytearray(1280)
    datagram = b"\x40\x01\x12\x34\xb1\x33"  # CON GET /3
    assert transport.recv_into(buf) == -1
    sock.datagram = datagram
    micropython.heap_lock()
    try:
        n = transport.recv_into(buf)
        nothing = transport.recv_into(buf)
    finally:
        micropython.heap_unlock()
    assert (n, nothing, bytes(buf[:n]), transport.source) == (6, -1, datagram, SERVER)


def test_each_server_has_its_own_socket():
    _with_transport(_one_socket_each)


def _one_socket_each(transport):
    one = transport.resolve("192.0.2.10", 5683)
    two = transport.resolve("192.0.2.11", 5683)
    assert transport.resolve("192.0.2.10", 5683) == one
    transport.send(b"a", one)
    transport.send(b"b", two)
    assert transport.socket(one).sent == [b"a"] and transport.socket(two).sent == [b"b"]
    transport.socket(two).datagram = b"xyz"
    buf = bytearray(8)
    assert transport.recv_into(buf) == 3 and transport.source == two
    assert not transport.handshaking()


def test_each_socket_is_bound_to_a_port_it_picked_and_can_have_it_again():
    _with_transport(_ports)


def _ports(transport):
    addr = transport.resolve(*SERVER)
    old = transport.socket(addr)
    port = transport.local_port(addr)
    assert old.local == port and 49152 <= port <= 65535
    transport.close()
    old.close()  # the board rebooted: the port is free again
    TAKEN.add(port + 1)
    assert transport.rebind(addr, port)
    assert transport.socket(addr).local == port and transport.local_port(addr) == port
    assert transport.socket(addr).peer == SERVER
    assert not transport.rebind(addr, port + 1)  # taken by someone else: the socket stays as it was
    assert transport.local_port(addr) == port
    TAKEN.clear()


def test_a_taken_port_is_passed_over_when_picking():
    _with_transport(_taken)


def _taken(transport):
    import random

    random.seed(7)
    first = 49152 + random.getrandbits(14)
    random.seed(7)
    TAKEN.add(first)
    try:
        addr = transport.resolve("192.0.2.20", 5683)
        assert transport.local_port(addr) not in (None, first)
    finally:
        TAKEN.clear()
