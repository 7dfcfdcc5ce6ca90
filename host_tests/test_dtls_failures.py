# What MicroPython's tls raises while a server's DTLS session is being made never leaves
# client.run(): a tls without PSK (MicroPython before 1.29) is refused at start with the
# version it needs; a session that cannot be had (OSError ENOMEM or MemoryError when the heap
# is short, ValueError from wrap_socket) is that server's failure, logged with its name and
# retried after its back-off, for a Register, a Bootstrap-Request, the Update after a deep
# sleep and a firmware download. Stand-ins raise what the real module would; the client
# runs on the virtual clock.
import errno
import socket
import sys

import pytest

import tls  # boards/host/tls.py, the stand-in
from peers.host import free_udp_port

sys.path.insert(0, __file__.rsplit("/", 1)[0] + "/portable")

from fakes import SERVER, FakeBoard, make_client, objects_dir  # noqa: E402
from test_firmware_update import CHANGED, PUT, TEXT, setup, state  # noqa: E402
from lwm2m import core  # noqa: E402
from lwm2m.client import Client  # noqa: E402
from lwm2m.model import Model, load_definition  # noqa: E402
from lwm2m.transport import UdpTransport  # noqa: E402

KEY = bytes(range(16))
# What wrap_socket raises when the heap is short (mbedTLS's MBEDTLS_ERR_SSL_ALLOC_FAILED on
# the ESP32's IDF heap, MicroPython's own on rp2), or when asked for what it refuses.
FAILURES = [
    (OSError(errno.ENOMEM), "OSError: %d" % errno.ENOMEM),
    (MemoryError(), "MemoryError"),
    (ValueError("CERT_REQUIRED requires server_hostname"), "ValueError: CERT_REQUIRED requires server_hostname"),
]


class SSLContext128:
    # MicroPython 1.28's SSLContext: no psk_identity or psk_key, and a C object takes no
    # attribute it does not have
    __slots__ = ("verify_mode",)

    def __init__(self, protocol):
        self.verify_mode = tls.CERT_REQUIRED


def _client(uri, bootstrap=False):
    # A client on real UDP with one coaps:// account with a PSK: a management server's, or
    # a bootstrap server's. Its log lines in client.lines.
    model = Model()
    for oid in (0, 1, 3):
        model.define(load_definition("%s/%d.json" % (objects_dir(), oid)))
    lines = []
    client = Client(model, "dtls-ep", UdpTransport(), log=lines.append)
    client.lines = lines
    core.add_security(model, uri, None if bootstrap else 1, bootstrap, 0, b"dtls-ep", KEY)
    if not bootstrap:
        core.add_server(model, 1, 300)
    core.add_device(model, FakeBoard(), client.defer)
    return client


@pytest.fixture
def server():
    # The server's socket: what the client sends arrives there.
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", free_udp_port()))
    sock.settimeout(0.3)
    yield sock
    sock.close()


def _received(sock):
    out = []
    try:
        while True:
            out.append(sock.recv(2048))
    except socket.timeout:
        return out


def test_a_tls_without_psk_is_refused_at_start_with_the_version_it_needs(monkeypatch):
    monkeypatch.setattr(tls, "SSLContext", SSLContext128)
    client = _client("coaps://127.0.0.1:5684")
    client.start()
    client.poll()
    assert client.lines == [
        "coaps://127.0.0.1:5684: DTLS with a PSK needs MicroPython 1.29 or newer (this tls module has no PSK):"
        " not registering",
        "no management server configured"]
    assert client.servers == []
    client.transport.close()


def test_a_bootstrap_over_a_tls_without_psk_is_refused_at_start(monkeypatch):
    monkeypatch.setattr(tls, "SSLContext", SSLContext128)
    client = _client("coaps://127.0.0.1:5784", bootstrap=True)
    client.start()
    client.poll()
    assert client.lines == [
        "cannot bootstrap: coaps://127.0.0.1:5784: DTLS with a PSK needs MicroPython 1.29 or newer (this tls module"
        " has no PSK)"]
    assert client.bootstrap is None
    client.transport.close()


def _failing(failure):
    def wrap_socket(*args, **kw):
        raise failure
    return wrap_socket


@pytest.mark.parametrize("failure, why", FAILURES)
def test_a_register_whose_session_cannot_be_had_is_retried_after_the_back_off(monkeypatch, server, failure, why):
    port = server.getsockname()[1]
    client = _client("coaps://127.0.0.1:%d" % port)
    try:
        monkeypatch.setattr(tls.SSLContext, "wrap_socket", _failing(failure))
        client.start()
        for now in (0, 100, 200):
            client.poll(now)
        assert "register with coaps://127.0.0.1:%d failed (no DTLS session: %s); retrying in 10 s" % (port, why) \
            in client.lines, client.lines
        assert _received(server) == []  # no plain CoAP instead
        monkeypatch.undo()
        client.poll(10000)  # the back-off (/1/x/18) is over: a new session
        hello = _received(server)
        assert hello and hello[0][0] == 22  # a DTLS handshake record: the ClientHello
    finally:
        client.transport.close()


@pytest.mark.parametrize("failure, why", FAILURES[:2])
def test_a_bootstrap_request_whose_session_cannot_be_had_is_retried(monkeypatch, server, failure, why):
    port = server.getsockname()[1]
    client = _client("coaps://127.0.0.1:%d" % port, bootstrap=True)
    try:
        monkeypatch.setattr(tls.SSLContext, "wrap_socket", _failing(failure))
        client.start()
        client.poll(0)
        client.poll(100)
        assert "bootstrap from coaps://127.0.0.1:%d failed (no DTLS session: %s); retrying in 10 s" % (port, why) \
            in client.lines, client.lines
        assert _received(server) == []
    finally:
        client.transport.close()


class Sessions:
    # What UdpTransport has for DTLS, on a client's in-memory transport: secure() raises
    # `failure` when it is set, else the session is made at once.
    def __init__(self, transport):
        self.failure = None
        self.made = []  # (addr, hostname) of each session
        transport.secure = self.secure
        transport.cipher = lambda addr: "TLS-PSK-WITH-AES-128-CCM-8" if self.made else None
        transport.failure = lambda addr: None

    def secure(self, addr, context, hostname=None):
        if self.failure:
            raise self.failure
        self.made.append((addr, hostname))


def _coaps(failure=None):
    # make_client's prepare: its server as coaps:// with a PSK, its transport with Sessions.
    def prepare(client):
        client.model.instance(0, 0).values.update({0: "coaps://%s:%d" % SERVER, 2: 0, 3: b"dtls-ep", 5: KEY})
        client.sessions = Sessions(client.transport)
        client.sessions.failure = failure
    return prepare


def test_the_update_after_a_deep_sleep_whose_session_cannot_be_had_registers_again_later():
    client, peer = make_client(lifetime=600, queue_window_ms=2000, prepare=_coaps())
    client.poll(0)
    peer.answer(peer.take_one(), 0x41, "/rd/q1")
    client.poll(10)
    client.poll(3000)
    assert client.asleep and client.sessions.made == [(SERVER, None)]
    state = client.freeze()
    woken, peer = make_client(lifetime=600, queue_window_ms=2000, prepare=_coaps(MemoryError()), woken=(state, 50000),
                              now=500)
    assert "update with coaps://127.0.0.1:5683 failed (no DTLS session: MemoryError); retrying in 10 s" in woken.lines
    woken.poll(500)
    assert peer.take() == [] and not woken.servers[0].registered()  # no Update without a session
    woken.sessions.failure = None
    woken.poll(10500)
    register = peer.take_one()
    assert register.path() == "/rd" and woken.sessions.made == [(SERVER, None)]


def test_a_download_whose_session_cannot_be_had_fails_with_result_4():
    client, peer = setup()
    client.firmware.psk = (b"loader", KEY)
    Sessions(client.transport).failure = OSError(errno.ENOMEM)
    uri = "coaps://127.0.0.1:5694/fw"
    assert peer.request(PUT, "/5/0/1", 100, uri.encode(), cf=TEXT).code == CHANGED
    assert state(client) == (0, 4)  # Idle, connection lost
    assert any("%s: no DTLS session: OSError: %d" % (uri, errno.ENOMEM) in line for line in client.lines), client.lines
