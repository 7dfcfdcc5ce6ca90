# The client over DTLS with a pre-shared key, run as the user runs it (tools/host_run.py
# --psk-identity --psk-key) against a scripted DTLS server (peers/dtls_server.py, a process
# of its own) on loopback: handshake, Register, a Read from the server and the De-register
# all go through the DTLS session. Every wait is bounded.
import socket
import subprocess

import pytest

import board  # boards/host/board.py: what the host run reports as the device
from peers.host import ROOT, HostRuns, Lines, free_udp_port, python

IDENTITY = "dtls-ep"
KEY = "000102030405060708090a0b0c0d0e0f"


class DtlsServer:
    def __init__(self, port, identity, key):
        self.proc = subprocess.Popen([python(), "-u", str(ROOT / "host_tests" / "peers" / "dtls_server.py"),
                                      str(port), identity, key], cwd=str(ROOT), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.out = Lines(self.proc.stdout, "dtls-server")

    def wait(self, word, timeout):
        line = self.out.wait(lambda text: text.split(" ")[0] == word, timeout)
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
    suite = server.wait("handshake", 20).split(" ")[1]
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
    # A Security (0) instance's values, for lwm2m.dtls.context
    def __init__(self, mode, identity=b"", server_key=b"", secret=b""):
        self.values = {0: "coaps://192.0.2.1:5684", 2: mode, 3: identity, 4: server_key, 5: secret}

    def get(self, rid):
        return self.values[rid]


@pytest.mark.parametrize("security, message", [
    (Security(1), "Raw Public Key (1) is not supported by MicroPython's tls: use PSK or Certificate"),
    (Security(3), "coaps:// needs a Security Mode of PSK (0) or Certificate (2), not NoSec"),
    (Security(0, b"ep", b"", b""), "PSK needs an identity (/0/x/3) and a key (/0/x/5)"),
    (Security(7), "unknown Security Mode 7"),
])
def test_security_modes_the_client_cannot_use_are_refused_by_name(security, message):
    from lwm2m import dtls

    with pytest.raises(ValueError) as err:
        dtls.context(security)
    assert str(err.value) == "coaps://192.0.2.1:5684: " + message


def test_a_psk_context_offers_psk_suites_only():
    from lwm2m import dtls

    ctx = dtls.context(Security(0, b"ep", b"", bytes(16)))
    conf = ctx._configuration()  # the stand-in's python-mbedtls configuration
    assert conf.ciphers and all(c.startswith("TLS-PSK-WITH-") for c in conf.ciphers)
    assert conf.pre_shared_key == ("ep", bytes(16))
