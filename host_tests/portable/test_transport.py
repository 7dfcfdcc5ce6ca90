# UdpTransport over stand-ins of the socket and select modules as MicroPython's ports have
# them, so that it runs in the MicroPython VM too (which has no socket module): the lwIP
# ports' tuple addresses and the unix port's sockaddr bytes, datagrams received one by one
# although readinto() would join them. host_tests/test_transport_udp.py has the same
# transport on real sockets.
import errno
import sys

import micropython

from check import raises

POLLIN = 1
SERVER = ("192.0.2.10", 5683)


def sockaddr(host, port):
    # The unix port's form of an IPv4 address, as its getaddrinfo() and recvfrom() give it: a
    # struct sockaddr_in in a bytearray (family, port big-endian, address, 8 zero bytes).
    return bytearray(b"\x02\x00" + bytes((port >> 8, port & 255)) + bytes(int(x) for x in host.split(".")) + bytes(8))


class LwipAddresses:
    # ESP32 and Pico W (extmod/modlwip.c, netutils_parse_inet_addr): addresses are (host,
    # port) tuples, and anything else is refused.
    @staticmethod
    def make(host, port):
        return (host, port)

    @staticmethod
    def parse(addr):
        if not isinstance(addr, (tuple, list)):
            raise TypeError("object '%s' isn't a tuple or list" % type(addr).__name__)
        return tuple(addr)


class UnixAddresses:
    # The unix port (ports/unix/modsocket.c): bind() and connect() take the bytes of a
    # sockaddr, as getaddrinfo() gives them, and refuse a tuple.
    make = staticmethod(sockaddr)

    @staticmethod
    def parse(addr):
        if isinstance(addr, (tuple, list, str)):
            raise TypeError("object with buffer protocol required")
        addr = bytes(addr)
        return (".".join(str(b) for b in addr[4:8]), addr[2] << 8 | addr[3])


FORMS = (LwipAddresses, UnixAddresses)


class FakeSocket:
    # A connected, non-blocking UDP socket as MicroPython's: recv(n) reads one datagram (and
    # allocates it), raising OSError(EAGAIN) when none waits; readinto(buf) is the generic
    # stream read of py/stream.c, which reads datagram after datagram until buf is full or
    # none is left, so waiting datagrams come back joined. No recv_into, no fileno.
    def __init__(self, family, kind):
        self.peer = None
        self.inbox = []  # the datagrams waiting, oldest first
        self.sent = []

    def setblocking(self, flag):
        assert flag is False

    def bind(self, addr):
        # Local ports are taken until closed; TAKEN holds ports some other program has.
        host, port = FORM[0].parse(addr)
        if port in BOUND or port in TAKEN:
            raise OSError(errno.EADDRINUSE, "address in use")
        assert host == "0.0.0.0" and self.peer is None  # bound before it is connected
        self.local = port
        BOUND.add(port)

    def connect(self, addr):
        self.peer = FORM[0].parse(addr)

    def send(self, data):
        self.sent.append(bytes(data))
        return len(data)

    def recv(self, size):
        if not self.inbox:
            raise OSError(errno.EAGAIN, "EAGAIN")  # two arguments: CPython sets errno only then
        return self.inbox.pop(0)[:size]

    def readinto(self, buf):
        done = 0
        while self.inbox and done < len(buf):
            data = self.inbox.pop(0)[: len(buf) - done]
            for i in range(len(data)):  # copied byte by byte: as in C, nothing is allocated
                buf[done + i] = data[i]
            done += len(data)
        return done or None

    def close(self):
        BOUND.discard(getattr(self, "local", None))


BOUND = set()
TAKEN = set()
FORM = [LwipAddresses]  # the port stood in for


class FakeSocketModule:
    AF_INET = 2
    SOCK_DGRAM = 2
    socket = FakeSocket

    @staticmethod
    def getaddrinfo(host, port, family, kind):
        return [(family, kind, 0, "", FORM[0].make(host, port))]


class FakePoll:
    # ipoll() as MicroPython's: the ready (object, event) pairs, made once, no allocation.
    def __init__(self):
        self.socks = []
        self.ready = {}

    def register(self, sock, events):
        self.socks.append(sock)
        self.ready[id(sock)] = ((sock, POLLIN),)

    def unregister(self, sock):
        self.socks.remove(sock)

    def ipoll(self, timeout):
        for sock in self.socks:
            if sock.inbox:
                return self.ready[id(sock)]
        return ()

    poll = ipoll


class FakeSelectModule:
    POLLIN = POLLIN
    poll = FakePoll


def _with_transport(test, form=LwipAddresses):
    # Runs test(transport) with the stand-ins in place of the socket and select modules, the
    # addresses in the form of the port stood in for.
    saved = (sys.modules.get("socket"), sys.modules.get("select"))
    sys.modules["socket"] = FakeSocketModule
    sys.modules["select"] = FakeSelectModule
    FORM[0] = form
    try:
        from lwm2m.transport import UdpTransport

        test(UdpTransport())
    finally:
        FORM[0] = LwipAddresses
        for name, module in zip(("socket", "select"), saved):
            if module is None:
                del sys.modules[name]
            else:
                sys.modules[name] = module


def _with_each_form(test):
    for form in FORMS:
        _with_transport(test, form)


def test_the_stand_in_refuses_the_address_form_of_the_other_port():
    # As the real modules do: lwIP parses a tuple, the unix port takes a sockaddr's bytes.
    sock = FakeSocket(2, 2)
    FORM[0] = UnixAddresses
    try:
        assert "buffer protocol" in str(raises(TypeError, sock.bind, ("0.0.0.0", 50000)))
    finally:
        FORM[0] = LwipAddresses
    assert "isn't a tuple" in str(raises(TypeError, sock.bind, sockaddr("0.0.0.0", 50000)))


def test_the_stand_in_joins_waiting_datagrams_in_readinto_as_micropython_does():
    sock = FakeSocket(2, 2)
    sock.inbox = [b"one", b"two"]
    buf = bytearray(16)
    assert sock.readinto(buf) == 6 and buf[:6] == b"onetwo"
    assert sock.readinto(buf) is None
    assert raises(OSError, sock.recv, 16).errno == errno.EAGAIN


def test_waiting_datagrams_are_received_one_by_one():
    _with_each_form(_one_by_one)


def _one_by_one(transport):
    addr = transport.resolve(*SERVER)
    sock = transport.socket(addr)
    assert sock.peer == SERVER  # connected to its server
    buf = bytearray(1280)
    assert transport.recv_into(buf) == -1
    get = b"\x40\x01\x12\x34\xb1\x33"  # CON GET /3
    ping = b"\x40\x00\x12\x35"  # CON, empty: a ping
    sock.inbox = [get, ping]  # both arrived before the poll
    n = transport.recv_into(buf)
    assert (bytes(buf[:n]), transport.source) == (get, addr)
    n = transport.recv_into(buf)
    assert (bytes(buf[:n]), transport.source) == (ping, addr)
    assert transport.recv_into(buf) == -1
    assert {addr: "server"}[transport.source] == "server"  # an address can be a key


def test_a_datagram_longer_than_the_buffer_is_cut_to_it():
    _with_transport(_cut)


def _cut(transport):
    addr = transport.resolve(*SERVER)
    transport.socket(addr).inbox = [b"0123456789", b"ab"]
    buf = bytearray(4)
    assert transport.recv_into(buf) == 4 and buf == b"0123"
    assert transport.recv_into(buf) == 2 and buf[:2] == b"ab"


def test_a_datagram_that_finds_no_heap_is_dropped_with_those_behind_it():
    # recv() allocates the datagram. When the heap has no room for it, what waits is read
    # into the buffer (which allocates nothing) and dropped, as if lost: left waiting, it
    # would wake the loop again and again.
    _with_transport(_no_heap)


def _no_heap(transport):
    addr = transport.resolve(*SERVER)
    sock = transport.socket(addr)

    def no_heap(size):
        raise MemoryError

    sock.recv = no_heap
    assert transport.recv_into(bytearray(64)) == -1  # nothing waited: nothing lost, no error
    sock.inbox = [b"\x40\x01\x12\x34", b"\x40\x01\x12\x35"]
    raises(MemoryError, transport.recv_into, bytearray(64))
    assert sock.inbox == [] and transport.recv_into(bytearray(64)) == -1


class _NoHeapContext:
    # A tls.SSLContext whose wrap_socket finds no heap for mbedTLS, as on a full Pico W.
    def wrap_socket(self, sock, server_side=False, do_handshake_on_connect=True, server_hostname=None):
        raise OSError(errno.ENOMEM, "ENOMEM")


def test_a_dtls_session_that_cannot_be_made_lets_nothing_through():
    _with_transport(_no_session)


def _no_session(transport):
    addr = transport.resolve(*SERVER)
    raises(OSError, transport.secure, addr, _NoHeapContext())
    sock = transport.socket(addr)
    transport.send(b"\x40\x02\x00\x01register", addr)
    assert sock.sent == []  # not in the clear, not at all
    assert transport.failure(addr) and not transport.handshaking()
    sock.inbox = [b"\x60\x41\x00\x01"]  # whatever arrives is dropped, not left to wake the loop
    assert transport.recv_into(bytearray(64)) == -1 and sock.inbox == []
    raises(OSError, transport.secure, addr, _NoHeapContext())  # and a later try starts afresh


def test_each_server_has_its_own_socket():
    _with_each_form(_one_socket_each)


def _one_socket_each(transport):
    one = transport.resolve("192.0.2.10", 5683)
    two = transport.resolve("192.0.2.11", 5683)
    assert transport.resolve("192.0.2.10", 5683) == one
    transport.send(b"a", one)
    transport.send(b"b", two)
    assert transport.socket(one).sent == [b"a"] and transport.socket(two).sent == [b"b"]
    transport.socket(two).inbox = [b"xyz"]
    buf = bytearray(8)
    assert transport.recv_into(buf) == 3 and transport.source == two
    assert not transport.handshaking()


def test_each_socket_is_bound_to_a_port_it_picked_and_can_have_it_again():
    _with_each_form(_ports)


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


class _Link:
    # A DTLS session as MicroPython's tls gives it, whose reads raise `error`.
    def __init__(self, error):
        self.error = error

    def recv(self, size):
        raise self.error

    def send(self, data):
        raise self.error


class _Context:
    def __init__(self, error):
        self.error = error

    def wrap_socket(self, sock, server_side=False, do_handshake_on_connect=True, server_hostname=None):
        return _Link(self.error)


def test_what_fails_a_dtls_session_for_good():
    _with_transport(_session_failures)


def _session_failures(transport):
    addr = transport.resolve(*SERVER)
    buf = bytearray(64)
    transport.socket(addr).inbox = [b"\x00"]  # an ICMP port unreachable, on a plain socket:
    transport.socket(addr).recv = _Link(OSError(errno.ECONNREFUSED, "ECONNREFUSED")).recv
    assert transport.recv_into(buf) == -1 and transport.failure(addr) is None  # a datagram lost
    # A certificate CERT_REQUIRED refused: mbedTLS's reason, on one line in the log
    refused = ValueError("  ! The certificate Common Name (CN) does not match with the expected CN\n")
    transport.secure(addr, _Context(refused))
    assert transport.recv_into(buf) == -1 and not transport.handshaking()
    assert transport.failure(addr) == "! The certificate Common Name (CN) does not match with the expected CN"
    # the real tls keeps an ICMP port unreachable as the session's error for good
    transport.secure(addr, _Context(OSError(errno.ECONNREFUSED, "ECONNREFUSED")))
    assert transport.recv_into(buf) == -1 and transport.failure(addr) == "ECONNREFUSED"
