# UdpTransport over real sockets on 127.0.0.1 (CPython only: the MicroPython VM has no
# socket module): one connected socket per peer. The peers here are plain sockets bound to
# free ports. Every wait is bounded.
import socket
import time

import pytest

from lwm2m import coap
from lwm2m.exchange import Exchange
from lwm2m.transport import UdpTransport, resolve
from peers.host import free_udp_port


class Peer:
    # A server's socket on a free loopback port.
    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(2)
        self.port = self.sock.getsockname()[1]

    def recv(self):
        return self.sock.recvfrom(2048)

    # The transport interface, for an Exchange serving on this socket.
    source = None

    def send(self, data, addr):
        self.sock.sendto(data, addr)

    def recv_into(self, buf):
        self.sock.setblocking(False)
        try:
            n, self.source = self.sock.recvfrom_into(buf)
        except BlockingIOError:
            return -1
        finally:
            self.sock.settimeout(2)
        return n


@pytest.fixture
def net():
    made = []

    def make(kind):
        made.append(kind())
        return made[-1]

    yield make
    for thing in made:
        (thing.sock if isinstance(thing, Peer) else thing).close()


def _receive(transport, buf, timeout_ms=2000):
    assert transport.wait(timeout_ms)
    return transport.recv_into(buf)


def test_resolve_gives_a_sockaddr(net):
    assert resolve("127.0.0.1", 5683) == ("127.0.0.1", 5683)
    assert net(UdpTransport).resolve("localhost", 5683) == ("127.0.0.1", 5683)  # IPv4


def test_datagrams_both_ways_on_a_connected_socket(net):
    server = net(Peer)
    transport = net(UdpTransport)
    addr = transport.resolve("127.0.0.1", server.port)
    buf = bytearray(64)
    assert transport.recv_into(buf) == -1  # nothing waits: no exception, no block
    transport.send(b"hello", addr)
    data, client = server.recv()
    assert data == b"hello" and client == transport.socket(addr).getsockname()
    server.sock.sendto(b"\x00" * 10, client)
    assert _receive(transport, buf) == 10 and transport.source == addr
    assert transport.recv_into(buf) == -1


def test_one_socket_per_peer_and_one_wait_for_all(net):
    one, two = net(Peer), net(Peer)
    transport = net(UdpTransport)
    addr_one = transport.resolve("127.0.0.1", one.port)
    addr_two = transport.resolve("127.0.0.1", two.port)
    assert transport.resolve("127.0.0.1", one.port) == addr_one  # the same socket again
    transport.send(b"1", addr_one)
    transport.send(b"2", addr_two)
    (_, from_one), (_, from_two) = one.recv(), two.recv()
    assert from_one != from_two  # a socket of its own for each
    buf = bytearray(16)
    two.sock.sendto(b"second", from_two)
    assert _receive(transport, buf) == 6 and transport.source == addr_two
    one.sock.sendto(b"first", from_one)
    assert _receive(transport, buf) == 5 and transport.source == addr_one


def test_datagrams_from_anyone_else_are_never_seen(net):
    server, stranger = net(Peer), net(Peer)
    transport = net(UdpTransport)
    addr = transport.resolve("127.0.0.1", server.port)
    transport.send(b"hi", addr)
    _data, client = server.recv()
    stranger.sock.sendto(b"spoofed", client)
    buf = bytearray(16)
    assert transport.wait(200) is False and transport.recv_into(buf) == -1


def test_a_peer_not_listening_is_no_error(net):
    gone = net(Peer)
    port = gone.port
    gone.sock.close()
    transport = net(UdpTransport)
    addr = transport.resolve("127.0.0.1", port)
    transport.send(b"anyone?", addr)  # answered by an ICMP port unreachable
    transport.wait(200)
    assert transport.recv_into(bytearray(8)) == -1


def test_wait_times_out(net):
    transport = net(UdpTransport)
    start = time.monotonic()
    assert transport.wait(50) is False
    assert time.monotonic() - start >= 0.04


def test_empty_and_long_datagrams(net):
    server = net(Peer)
    transport = net(UdpTransport)
    addr = transport.resolve("127.0.0.1", server.port)
    transport.send(b"x", addr)
    _data, client = server.recv()
    buf = bytearray(8)
    server.sock.sendto(b"", client)
    assert _receive(transport, buf) == 0 and transport.source == addr
    server.sock.sendto(b"0123456789abcdef", client)
    assert _receive(transport, buf) == 8 and buf == bytearray(b"01234567")  # truncated
    assert transport.recv_into(buf) == -1


def test_exchanges_talk_over_udp(net):
    # A client Exchange asks a server Exchange; the response comes back piggybacked.
    def handler(req, addr):
        return coap.Message(code=0x45, payload=req.path().encode())

    peer = net(Peer)
    transport = net(UdpTransport)
    addr = transport.resolve("127.0.0.1", peer.port)
    client = Exchange(transport, None)
    server = Exchange(peer, handler)
    answers = []
    msg = coap.Message(0, 0x01)
    msg.set_path("/3/0/1")
    client.request(msg, addr, answers.append, time.ticks_ms())
    buf = bytearray(256)
    deadline = time.monotonic() + 2
    while not answers and time.monotonic() < deadline:
        time.sleep(0.01)
        server.poll(buf, time.ticks_ms())
        transport.wait(100)
        client.poll(buf, time.ticks_ms())
    assert len(answers) == 1
    res = answers[0]
    assert (res.type, res.code, res.token, res.payload) == (2, 0x45, msg.token, b"/3/0/1")
    assert not client.pending(addr)


def test_two_datagrams_sent_back_to_back_are_two_receives(net):
    server = net(Peer)
    transport = net(UdpTransport)
    addr = transport.resolve("127.0.0.1", server.port)
    transport.send(b"x", addr)
    _data, client = server.recv()
    server.sock.sendto(b"first", client)
    server.sock.sendto(b"second", client)
    time.sleep(0.1)  # both wait before the first receive
    buf = bytearray(64)
    assert _receive(transport, buf) == 5 and buf[:5] == b"first"
    assert _receive(transport, buf) == 6 and buf[:6] == b"second"


def test_a_dtls_handshake_that_the_reads_alone_finish_is_seen_done(net):
    # The stall seen on a real port: the client's reads drove the whole handshake before it
    # sent anything, then its Register went straight through, and the session was never
    # marked done, so every answer was read as handshake traffic and dropped. A record that
    # goes through, either way, ends the handshake.
    from test_dtls import IDENTITY, KEY, DtlsServer

    from lwm2m import dtls

    port = free_udp_port()
    server = net(lambda: DtlsServer(port, IDENTITY, KEY))
    server.wait("listening", 10)
    transport = net(UdpTransport)
    addr = transport.resolve("127.0.0.1", port)
    transport.secure(addr, dtls.psk_context(IDENTITY.encode(), bytes.fromhex(KEY)))
    buf = bytearray(1153)
    deadline = time.monotonic() + 10
    while not any(line.startswith("handshake ") for line in server.out.lines()):
        assert time.monotonic() < deadline, "no handshake in 10 s"
        transport.wait(50)
        assert transport.recv_into(buf) == -1  # handshake traffic only
    assert transport.handshaking()  # nothing went through yet, either way
    register = coap.Message(0, 2, 0x1234, b"r", b"</3/0>")  # CON POST
    register.set_path("/rd")
    register.add_query("ep=stall")
    transport.send(coap.encode(register), addr)
    assert not transport.handshaking() and transport.cipher(addr).startswith("TLS-PSK-WITH-")
    assert server.wait("register", 10) == "register ep=stall"
    created = coap.decode(memoryview(buf)[:_receive(transport, buf)])
    read = coap.decode(memoryview(buf)[:_receive(transport, buf)])
    assert (created.type, created.mid, created.code) == (2, 0x1234, 0x41)  # ACK 2.01
    assert (read.type, read.code, read.path()) == (0, 1, "/3/0/0")  # CON GET, just after it
