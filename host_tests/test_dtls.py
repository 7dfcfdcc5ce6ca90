# The client over DTLS with a pre-shared key, run as the user runs it (tools/host_run.py
# --psk-identity --psk-key) against a scripted DTLS server (peers/dtls_server.py, a process
# of its own) on loopback: handshake, Register, a Read from the server and the De-register
# all go through the DTLS session. Then the contexts lwm2m.dtls makes for each Security Mode
# and Certificate Usage, and the tls stand-in's reads and cipher suites against a
# python-mbedtls server. Every wait is bounded.
import errno
import socket
import subprocess
import time

import pytest

import board  # boards/host/board.py: what the host run reports as the device
import tls  # boards/host/tls.py, the stand-in
from peers.host import ROOT, HostRuns, Lines, free_udp_port, python
from peers.pki import Pki

from lwm2m import dtls

IDENTITY = "dtls-ep"
KEY = "000102030405060708090a0b0c0d0e0f"


class DtlsServer:
    # peers/dtls_server.py, or another script of peers/ taking the same arguments (and extra)
    def __init__(self, port, identity, key, script="dtls_server.py", extra=()):
        self.proc = subprocess.Popen([python(), "-u", str(ROOT / "host_tests" / "peers" / script),
                                      str(port), identity, key] + list(extra), cwd=str(ROOT), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.out = Lines(self.proc.stdout, "dtls-server")

    def wait(self, word, timeout, start=0):
        # The first line from index start on whose first word is word.
        line = self.out.wait(lambda text: text.split(" ")[0] == word, timeout, start)
        assert line is not None, "no %r from the DTLS server in %d s:\n%s" % (word, timeout, "\n".join(self.out.lines()))
        return line

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)


@pytest.fixture
def peers():
    made = {"server": None, "runs": HostRuns()}
    yield made
    made["runs"].close_all()
    if made["server"]:
        made["server"].close()


def test_register_read_and_deregister_over_dtls_psk(peers):
    port = free_udp_port()
    server = peers["server"] = DtlsServer(port, IDENTITY, KEY)
    server.wait("listening", 10)
    run = peers["runs"].start("coaps://127.0.0.1:%d" % port, "dtls-ep-1",
                              extra=["--psk-identity", IDENTITY, "--psk-key", KEY])
    handshake = server.out.wait(lambda text: text.startswith("handshake "), 20)
    assert handshake, "no handshake in 20 s:\n%s\n%s" % ("\n".join(server.out.lines()), run.dump())
    suite = handshake.split(" ")[1]
    assert suite.startswith("TLS-PSK-WITH-")
    assert "ep=dtls-ep-1" in server.wait("register", 10).split(" ")
    assert server.wait("read", 10) == "read " + board.manufacturer()
    line = run.wait_log(r"registered with coaps://127\.0\.0\.1:%d at /rd/x over (\S+)" % port, 10)
    assert line.endswith(" over " + suite)  # the client logs the suite agreed
    run.terminate()
    server.wait("deregister", 10)
    assert run.wait_exit(10) == 0


def test_a_handshake_that_gets_no_answer_times_out_with_a_hint_and_no_plaintext(peers):
    # A server that drops every handshake, as one does for a PSK it does not know: the client
    # gives up after 30 s, says what to check, and never falls back to plain CoAP.
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    silent.settimeout(1)
    port = silent.getsockname()[1]
    run = peers["runs"].start("coaps://127.0.0.1:%d" % port, "dtls-ep-2",
                              extra=["--psk-identity", IDENTITY, "--psk-key", "ff" * 16])
    seen = []
    try:
        line = run.wait_log(r"register with coaps://\S+ failed \(the DTLS handshake timed out: "
                            r"check the PSK identity and key\)", 40)
        while True:
            try:
                seen.append(silent.recv(2048))
            except socket.timeout:
                break
    finally:
        silent.close()
    assert "retrying in 10 s" in line
    assert len(seen) >= 3  # the ClientHello, retransmitted by the DTLS timers
    # every datagram is a DTLS handshake record: content type 22, then a DTLS version (254.x;
    # a ClientHello's record may say 1.0, 254.255), where CoAP would start with 0x4_ or 0x5_
    assert all(d[0] == 22 and d[1] == 254 for d in seen), [d[:3] for d in seen]


class Security:
    # A Security (0) instance's values, for lwm2m.dtls.context; more: {resource id: value}
    def __init__(self, mode, identity=b"", server_key=b"", secret=b"", **more):
        self.values = {0: "coaps://192.0.2.1:5684", 2: mode, 3: identity, 4: server_key, 5: secret}
        self.values.update((int(rid[1:]), value) for rid, value in more.items())

    def get(self, rid):
        return self.values[rid]

    def has(self, rid):
        return rid in self.values


@pytest.mark.parametrize("security, message", [
    (Security(1), "Raw Public Key (1) is not supported by MicroPython's tls: use PSK or Certificate"),
    (Security(3), "coaps:// needs a Security Mode of PSK (0) or Certificate (2), not NoSec"),
    (Security(0, b"ep", b"", b""), "PSK needs an identity (/0/x/3) and a key (/0/x/5)"),
    (Security(7), "unknown Security Mode 7"),
])
def test_security_modes_the_client_cannot_use_are_refused_by_name(security, message):
    with pytest.raises(ValueError) as err:
        dtls.context(security)
    assert str(err.value) == "coaps://192.0.2.1:5684: " + message


def test_a_psk_context_offers_psk_suites_only():
    ctx, hostname = dtls.context(Security(0, b"ep", b"", bytes(16)))
    assert hostname is None  # no certificate to check a name against
    conf = ctx._configuration()  # the stand-in's python-mbedtls configuration
    assert conf.ciphers and all(c.startswith("TLS-PSK-WITH-") for c in conf.ciphers)
    assert conf.pre_shared_key == ("ep", bytes(16))


# -- Security Mode 2: what each Certificate Usage (/0/x/15) makes of the context (lwm2m.dtls)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("x509"))


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _certificate_security(pki, server_key, **more):
    cert, key = pki.client("dtls-ep")
    return Security(2, _read(cert), server_key, _read(key), **more)


def test_usage_3_the_default_pins_the_servers_certificate_and_checks_nothing_else(pki):
    server = _read(pki.server_cert)
    ctx, hostname = dtls.context(_certificate_security(pki, server))
    assert (ctx.verify_mode, hostname) == (tls.CERT_OPTIONAL, None)
    pin = ctx.verify_callback
    assert pin(memoryview(server), 0) == 0
    assert pin(memoryview(_read(pki.ca_file)), 0) == -0x3000  # MBEDTLS_ERR_X509_FATAL_ERROR
    assert pin(memoryview(_read(pki.ca_file)), 1) == 0  # the server's CA, in its chain
    assert dtls.context(_certificate_security(pki, server, r15=3))[1] is None


def test_usage_3_pins_a_pem_certificate_by_its_der(pki):
    from mbedtls import x509

    server = _read(pki.server_cert)
    pem = x509.CRT.from_DER(server).to_PEM().encode()
    ctx, _ = dtls.context(_certificate_security(pki, pem))
    assert ctx.verify_callback(memoryview(server), 0) == 0


@pytest.mark.parametrize("usage", [0, 2])
def test_usages_0_and_2_trust_the_ca_and_check_the_name_of_the_uri_host(pki, usage):
    ctx, hostname = dtls.context(_certificate_security(pki, _read(pki.ca_file), r15=usage))
    assert (ctx.verify_mode, ctx.verify_callback, hostname) == (tls.CERT_REQUIRED, None, "192.0.2.1")
    assert [c.to_DER() for c in ctx._trust] == [_read(pki.ca_file)]  # the stand-in's trust store


def test_the_sni_resource_names_the_server_instead_of_the_uri(pki):
    _, hostname = dtls.context(_certificate_security(pki, _read(pki.ca_file), r15=2, r14="lwm2m.example"))
    assert hostname == "lwm2m.example"


def test_usage_1_checks_the_chain_and_the_name_and_pins(pki):
    server = _read(pki.server_cert)
    ctx, hostname = dtls.context(_certificate_security(pki, server, r15=1))
    assert (ctx.verify_mode, hostname) == (tls.CERT_REQUIRED, "192.0.2.1")
    assert ctx.verify_callback(memoryview(server), 0) == 0
    assert ctx.verify_callback(memoryview(_read(pki.ca_file)), 0) == -0x3000


@pytest.mark.parametrize("values, message", [
    ({"r15": 4}, "unknown Certificate Usage 4 (0 to 3)"),
    ({"r15": 2, "r4": b"\x30\x03abc"}, "invalid cert"),  # usage 3 parses no /0/x/4: it compares it
    ({"r4": b""}, "Certificate needs the client's certificate (/0/x/3), the server's (/0/x/4) and a key (/0/x/5)"),
])
def test_a_certificate_configuration_the_client_cannot_use_is_refused_by_name(pki, values, message):
    security = _certificate_security(pki, _read(pki.server_cert))
    security.values.update((int(rid[1:]), value) for rid, value in values.items())
    with pytest.raises(ValueError) as err:
        dtls.context(security)
    assert str(err.value) == "coaps://192.0.2.1:5684: " + message


# -- the stand-in's reads and cipher suites, against peers/dtls_records.py


def _wrapped(port, board_name="host"):
    # A stand-in session of that board with the server at port, the handshake under way.
    was = tls.board(board_name)
    try:
        ctx = dtls.psk_context(IDENTITY.encode(), bytes.fromhex(KEY))
    finally:
        tls.board(was)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sock.connect(("127.0.0.1", port))
    return ctx.wrap_socket(sock, do_handshake_on_connect=False)


def _handshake(wrapped, seconds=10):
    # Drives the handshake by writing; -> the exception that ended it, None once done.
    deadline = time.monotonic() + seconds
    try:
        while wrapped.write(b"go") is None:
            assert time.monotonic() < deadline, "no handshake in %d s" % seconds
            time.sleep(0.01)
    except (OSError, ValueError) as exc:
        return exc
    return None


def _records_server(peers, *suites):
    port = free_udp_port()
    server = peers["server"] = DtlsServer(port, IDENTITY, KEY, "dtls_records.py", suites)
    server.wait("listening", 10)
    return port, server


def test_reads_give_one_record_or_join_them_as_micropythons_stream_reads_do(peers):
    port, server = _records_server(peers)
    wrapped = _wrapped(port)
    try:
        assert _handshake(wrapped) is None  # its "go" asks for the first step
        server.wait("sent", 10)
        time.sleep(0.1)  # both records on the socket
        buf = bytearray(64)
        assert wrapped.readinto(buf) == 12 and buf[:12] == b"firstsecond!"  # joined
        assert wrapped.recv(64) is None
        wrapped.send(b"more")
        server.wait("sent", 10, server.out.count())
        time.sleep(0.1)
        assert [wrapped.recv(64), wrapped.recv(64), wrapped.recv(64)] == [b"third", b"fourth", None]  # one each
        wrapped.send(b"bye")
        server.wait("sent", 10, server.out.count())
        time.sleep(0.1)
        assert wrapped.recv(64) == b""  # the close_notify
    finally:
        wrapped.close()


@pytest.mark.parametrize("board_name, reachable", [("rp2", False), ("unix", False), ("esp32", True), ("host", True)])
def test_a_server_with_only_the_mandatory_ccm_8_suite_is_out_of_reach_from_rp2_and_unix(peers, board_name, reachable):
    port, server = _records_server(peers, "TLS-PSK-WITH-AES-128-CCM-8")
    wrapped = _wrapped(port, board_name)
    try:
        failure = _handshake(wrapped)
        if reachable:
            assert failure is None and wrapped.cipher()[0] == "TLS-PSK-WITH-AES-128-CCM-8"
            assert server.wait("handshake", 10) == "handshake TLS-PSK-WITH-AES-128-CCM-8"
        else:
            # the server finds no suite it shares and says so (a fatal handshake_failure alert)
            assert failure.args == (-0x7780, "MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE"), failure
            assert server.wait("handshake", 10).startswith("handshake failed ")
    finally:
        wrapped.close()


def test_a_session_whose_server_went_away_fails_for_good_and_keeps_its_suite(peers):
    # An ICMP port unreachable after the handshake: every later call raises ECONNREFUSED, as
    # on MicroPython, and cipher() still tells the suite (before a handshake, or after a
    # failed one, it would crash MicroPython)
    port, server = _records_server(peers)
    wrapped = _wrapped(port)
    try:
        assert _handshake(wrapped) is None
        suite = wrapped.cipher()
        server.close()
        refused = None
        deadline = time.monotonic() + 5
        while refused is None and time.monotonic() < deadline:
            try:
                wrapped.write(b"x")
            except OSError as exc:
                refused = exc
            time.sleep(0.05)
        assert refused is not None and refused.args == (errno.ECONNREFUSED,)
        assert pytest.raises(OSError, wrapped.recv, 64).value.args == (errno.ECONNREFUSED,)
        assert wrapped.cipher() == suite
    finally:
        wrapped.close()
