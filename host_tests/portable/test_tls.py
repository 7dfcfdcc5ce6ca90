# MicroPython's tls refuses what its C functions do not take, with these exceptions and
# messages, and the CPython stand-in (boards/host/tls.py) refuses the same: under pytest these
# run against the stand-in, under `make test-port` against a real port's tls (measured on the
# unix port of MicroPython 1.29, extmod/modtls_mbedtls.c). The VM has no tls: there they pass
# without checking anything.
import errno

from check import raises

try:
    import tls
except ImportError:
    tls = None

# The cipher suites of MicroPython 1.29's unix port (rp2 has the same mbedTLS configuration),
# as its SSLContext.get_ciphers() lists them: no CCM, no CCM-8.
UNIX_SUITES = [
    "TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384", "TLS-ECDHE-RSA-WITH-AES-256-GCM-SHA384",
    "TLS-ECDHE-ECDSA-WITH-AES-256-CBC-SHA384", "TLS-ECDHE-RSA-WITH-AES-256-CBC-SHA384",
    "TLS-ECDHE-ECDSA-WITH-AES-256-CBC-SHA", "TLS-ECDHE-RSA-WITH-AES-256-CBC-SHA",
    "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256", "TLS-ECDHE-RSA-WITH-AES-128-GCM-SHA256",
    "TLS-ECDHE-ECDSA-WITH-AES-128-CBC-SHA256", "TLS-ECDHE-RSA-WITH-AES-128-CBC-SHA256",
    "TLS-ECDHE-ECDSA-WITH-AES-128-CBC-SHA", "TLS-ECDHE-RSA-WITH-AES-128-CBC-SHA",
    "TLS-RSA-WITH-AES-256-GCM-SHA384", "TLS-RSA-WITH-AES-256-CBC-SHA256", "TLS-RSA-WITH-AES-256-CBC-SHA",
    "TLS-RSA-WITH-AES-128-GCM-SHA256", "TLS-RSA-WITH-AES-128-CBC-SHA256", "TLS-RSA-WITH-AES-128-CBC-SHA",
    "TLS-PSK-WITH-AES-256-GCM-SHA384", "TLS-PSK-WITH-AES-256-CBC-SHA384", "TLS-PSK-WITH-AES-256-CBC-SHA",
    "TLS-PSK-WITH-AES-128-GCM-SHA256", "TLS-PSK-WITH-AES-128-CBC-SHA256", "TLS-PSK-WITH-AES-128-CBC-SHA",
]
NO_KEYWORDS = "function doesn't take keyword arguments"


def _context():
    return tls.SSLContext(tls.PROTOCOL_DTLS_CLIENT)


def _as_unix(check):
    # Runs check() with the tls of the unix port: the real one, or the stand-in made that board.
    was = tls.board("unix") if hasattr(tls, "board") else None
    try:
        check()
    finally:
        if was:
            tls.board(was)


def _udp():
    import socket  # not at the top: the VM has no socket module

    return socket.socket(socket.AF_INET, socket.SOCK_DGRAM)


def test_load_methods_take_positional_arguments_only():
    if tls is None:
        return
    ctx = _context()
    assert str(raises(TypeError, lambda: ctx.load_verify_locations(cadata=b"x"))) == NO_KEYWORDS
    assert str(raises(TypeError, lambda: ctx.load_cert_chain(b"c", key=b"k"))) == NO_KEYWORDS
    assert str(raises(TypeError, lambda: ctx.load_cert_chain(certfile=b"c", keyfile=b"k"))) == NO_KEYWORDS
    assert str(raises(TypeError, lambda: ctx.load_cert_chain(b"c"))) == "function takes 3 positional arguments but 2 were given"
    assert str(raises(TypeError, lambda: tls.SSLContext(protocol=2))) == NO_KEYWORDS


def test_what_mbedtls_cannot_parse_is_an_invalid_cert_or_key():
    if tls is None:
        return
    ctx = _context()
    assert str(raises(ValueError, ctx.load_verify_locations, b"\x30\x03abc")) == "invalid cert"
    assert str(raises(ValueError, ctx.load_cert_chain, b"\x30\x03abc", b"\x30\x03abc")) == "invalid key"  # the key first
    assert str(raises(TypeError, ctx.load_verify_locations, bytearray(b"\x30"))) == \
        "can't convert 'bytearray' object to str implicitly"


def test_cert_required_needs_a_server_hostname():
    if tls is None:
        return
    sock = _udp()
    try:
        ctx = _context()  # CERT_REQUIRED by default
        assert ctx.verify_mode == tls.CERT_REQUIRED
        err = raises(ValueError, lambda: ctx.wrap_socket(sock, server_side=False, do_handshake_on_connect=False))
        assert str(err) == "CERT_REQUIRED requires server_hostname"
        ctx.wrap_socket(sock, do_handshake_on_connect=False, server_hostname="lwm2m.example").close()
        for mode in (tls.CERT_OPTIONAL, tls.CERT_NONE):
            ctx.verify_mode = mode
            ctx.wrap_socket(_udp(), do_handshake_on_connect=False).close()
    finally:
        sock.close()


def test_wrap_socket_takes_the_socket_positionally_and_the_rest_by_keyword():
    if tls is None:
        return
    sock = _udp()
    try:
        ctx = _context()
        ctx.verify_mode = tls.CERT_NONE
        assert str(raises(TypeError, lambda: ctx.wrap_socket(sock, False))) == "extra positional arguments given"
        assert str(raises(TypeError, lambda: ctx.wrap_socket(sock, hostname="x"))) == "extra keyword arguments given"
        assert str(raises(TypeError, lambda: ctx.wrap_socket(sock=sock))) == "function missing 1 required positional arguments"
        assert str(raises(TypeError, lambda: ctx.wrap_socket(sock, server_hostname=5))) == \
            "can't convert 'int' object to str implicitly"
    finally:
        sock.close()


def test_an_ssl_context_has_no_attribute_but_its_own():
    if tls is None:
        return
    ctx = _context()
    assert (ctx.psk_identity, ctx.psk_key, ctx.verify_callback) == (None, None, None)
    assert str(raises(AttributeError, setattr, ctx, "psk_hint", b"x")) == "'SSLContext' object has no attribute 'psk_hint'"
    assert str(raises(AttributeError, getattr, ctx, "check_hostname")) == "'SSLContext' object has no attribute 'check_hostname'"
    assert str(raises(TypeError, setattr, ctx, "verify_mode", "none")) == "can't convert str to int"


def test_a_psk_identity_is_str_or_bytes_and_set_once():
    if tls is None:
        return
    ctx = _context()
    ctx.psk_key = b"k" * 16
    err = raises(TypeError, setattr, ctx, "psk_identity", bytearray(b"ep"))
    assert str(err) == "can't convert 'bytearray' object to str implicitly"
    ctx.psk_identity = "ep"
    # mbedTLS 3 takes one PSK per configuration: a second is refused
    err = raises(OSError, setattr, ctx, "psk_identity", b"ep")
    assert err.args == (-0x7080, "MBEDTLS_ERR_SSL_FEATURE_UNAVAILABLE")
    other = _context()
    other.psk_identity = b"ep"
    other.psk_key = b"k" * 16


def test_the_unix_port_offers_no_ccm_suites():
    # No MBEDTLS_CCM_C in MicroPython's own mbedTLS configuration (unix, rp2): a server that
    # offers only TLS_PSK_WITH_AES_128_CCM_8 is out of reach.
    if tls is None:
        return

    def check():
        ctx = _context()
        assert ctx.get_ciphers() == UNIX_SUITES
        err = raises(OSError, ctx.set_ciphers, ["TLS-PSK-WITH-AES-128-CCM-8"])
        assert err.args == (-0x5E80, "MBEDTLS_ERR_SSL_BAD_CONFIG")
        ctx.set_ciphers(["TLS-PSK-WITH-AES-128-GCM-SHA256"])

    _as_unix(check)


def test_the_unix_port_keeps_no_peer_certificate():
    # No MBEDTLS_SSL_KEEP_PEER_CERTIFICATE: the wrapped socket has no getpeercert()
    if tls is None:
        return

    def check():
        ctx = _context()
        ctx.verify_mode = tls.CERT_NONE
        wrapped = ctx.wrap_socket(_udp(), do_handshake_on_connect=False)
        try:
            assert not hasattr(wrapped, "getpeercert")
            for name in ("read", "readinto", "recv", "recv_into", "write", "send", "sendall", "cipher", "close"):
                assert hasattr(wrapped, name), name
        finally:
            wrapped.close()

    _as_unix(check)


def test_a_session_on_a_socket_not_connected_fails_at_its_first_write_and_stays_failed():
    # EDESTADDRREQ, which the unix port's errno module does not name
    if tls is None:
        return
    ctx = _context()
    ctx.verify_mode = tls.CERT_NONE
    ctx.psk_identity = b"ep"
    ctx.psk_key = b"k" * 16
    sock = _udp()
    sock.setblocking(False)
    wrapped = ctx.wrap_socket(sock, do_handshake_on_connect=False)  # not refused here
    try:
        first = raises(OSError, wrapped.write, b"x")
        assert first.args[0] != errno.EAGAIN
        assert raises(OSError, wrapped.write, b"x").args == first.args
        assert raises(OSError, wrapped.recv, 16).args == first.args
    finally:
        wrapped.close()
