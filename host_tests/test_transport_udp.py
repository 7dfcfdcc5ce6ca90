# UdpTransport over real sockets on 127.0.0.1 (CPython only: the MicroPython VM has no
# socket module). Every wait is bounded.
import time

from lwm2m import coap
from lwm2m.exchange import Exchange
from lwm2m.transport import UdpTransport, resolve


def _pair():
    a = UdpTransport()
    b = UdpTransport()
    return a, b, resolve("127.0.0.1", a.sock.getsockname()[1]), resolve("127.0.0.1", b.sock.getsockname()[1])


def _receive(transport, buf, timeout_ms=2000):
    assert transport.wait(timeout_ms)
    return transport.recv_into(buf)


def test_resolve_gives_a_sockaddr():
    assert resolve("127.0.0.1", 5683) == ("127.0.0.1", 5683)
    a = UdpTransport()
    try:
        assert a.resolve("localhost", 5683) == ("127.0.0.1", 5683)  # IPv4, as the socket is
    finally:
        a.close()


def test_datagrams_both_ways():
    a, b, addr_a, addr_b = _pair()
    try:
        buf = bytearray(64)
        assert b.recv_into(buf) == (0, None)  # nothing waits: no exception, no block
        a.send(b"hello", addr_b)
        n, src = _receive(b, buf)
        assert bytes(buf[:n]) == b"hello" and src == addr_a
        b.send(bytearray(b"\x00" * 10), src)
        n, src = _receive(a, buf)
        assert (n, src) == (10, addr_b)
        assert a.recv_into(buf) == (0, None)
    finally:
        a.close()
        b.close()


def test_wait_times_out():
    a = UdpTransport()
    try:
        start = time.monotonic()
        assert a.wait(50) is False
        assert time.monotonic() - start >= 0.04
    finally:
        a.close()


def test_empty_datagram_is_received_as_zero_bytes():
    a, b, addr_a, addr_b = _pair()
    try:
        buf = bytearray(16)
        a.send(b"", addr_b)
        assert _receive(b, buf) == (0, addr_a)
    finally:
        a.close()
        b.close()


def test_long_datagram_is_truncated_to_the_buffer():
    a, b, addr_a, addr_b = _pair()
    try:
        buf = bytearray(8)
        a.send(b"0123456789abcdef", addr_b)
        n, _ = _receive(b, buf)
        assert n == 8 and buf == bytearray(b"01234567")
        assert b.recv_into(buf) == (0, None)
    finally:
        a.close()
        b.close()


def test_exchanges_talk_over_udp():
    # A client Exchange asks a server Exchange; the response comes back piggybacked.
    def handler(req, addr):
        return coap.Message(code=0x45, payload=req.path().encode())

    a, b, addr_a, addr_b = _pair()
    try:
        client = Exchange(a, None)
        server = Exchange(b, handler)
        answers = []
        msg = coap.Message(0, 0x01)
        msg.set_path("/3/0/1")
        now = time.ticks_ms()
        client.request(msg, addr_b, answers.append, now)
        buf = bytearray(256)
        deadline = time.monotonic() + 2
        while not answers and time.monotonic() < deadline:
            b.wait(100)
            server.poll(buf, time.ticks_ms())
            a.wait(100)
            client.poll(buf, time.ticks_ms())
        assert len(answers) == 1
        res = answers[0]
        assert (res.type, res.code, res.token, res.payload) == (2, 0x45, msg.token, b"/3/0/1")
        assert not client.pending(addr_b)
    finally:
        a.close()
        b.close()
