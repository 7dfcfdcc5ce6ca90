# CPython stand-in for MicroPython's `tls` module (part of the CPython shim; see
# cpython_shim.py), the DTLS client only, built on python-mbedtls. It accepts what MicroPython
# 1.29's extmod/modtls_mbedtls.c accepts and refuses the rest with the same exceptions, so that
# lib/ has one code path and a call a board would refuse fails here too:
#
#   PROTOCOL_TLS_CLIENT, PROTOCOL_TLS_SERVER, PROTOCOL_DTLS_CLIENT, PROTOCOL_DTLS_SERVER
#   CERT_NONE, CERT_OPTIONAL, CERT_REQUIRED, MBEDTLS_VERSION
#   SSLContext(protocol)                 positional only (only PROTOCOL_DTLS_CLIENT is stood in)
#     .verify_mode       an int; CERT_REQUIRED by default: set CERT_NONE for PSK
#     .verify_callback   None, or f(cert, depth) -> 0 to go on, an mbedTLS error to fail the
#                        handshake. MicroPython calls it for each certificate of the chain it
#                        built, the server's own (depth 0) last, unless verify_mode is
#                        CERT_NONE. Here: once, for the server's own certificate, after the
#                        handshake (python-mbedtls has no verify callback).
#     .psk_identity      str or bytes, and .psk_key (bytes): once both are set only PSK cipher
#                        suites are offered; .server_psk_keys (a DTLS server's) restricts too
#     .load_cert_chain(cert, key)        both positional only: the client's certificate and
#                                        private key, DER or PEM (bytes or str)
#     .load_verify_locations(cadata)     positional only: a trusted certificate, DER or PEM
#     .get_ciphers(), .set_ciphers(list) the board's cipher suites (see board())
#     .wrap_socket(sock, *, server_side=False, do_handshake_on_connect=True,
#                  server_hostname=None, client_id=None)
#                        sock positional only, the rest keyword only. With verify_mode
#                        CERT_REQUIRED a client needs server_hostname (ValueError), which the
#                        server's certificate is checked against. sock must be a connected
#                        UDP socket: the first handshake write fails with OSError
#                        EDESTADDRREQ otherwise. do_handshake_on_connect blocks until the
#                        handshake is done; without it every read or write advances it.
#   The wrapped socket, whose reads are py/stream.c's over mbedtls_ssl_read, which gives one
#   record a call:
#     .recv(n)                     (stream read1) one record: bytes, b"" for the server's
#                                  close_notify, None when nothing waits (or the handshake runs)
#     .read(n), .readinto(buf[, n]), .recv_into(buf[, n])
#                                  (the generic stream read) records until n bytes or the
#                                  buffer are filled or nothing more waits: two waiting
#                                  records come back joined
#     .send(buf)                   (write1) one record; .write(buf), .sendall(buf) all of buf;
#                                  None while the handshake runs
#     .cipher()                    (suite name, protocol version), once the handshake is done
#                                  (before, or after a failed one, MicroPython crashes: here
#                                  RuntimeError)
#     .getpeercert(True)           only on a board whose mbedTLS keeps the peer's
#                                  certificate (MBEDTLS_SSL_KEEP_PEER_CERTIFICATE: ESP-IDF's;
#                                  MicroPython's own configuration for unix and rp2 has not)
#     .setblocking(flag), .close()
#   A failed session stays failed: every later call raises again. A refused server certificate
#   (CERT_REQUIRED) raises ValueError with mbedTLS's reason first, OSError
#   MBEDTLS_ERR_X509_CERT_VERIFY_FAILED after; other failures raise OSError (mbedTLS's error
#   number and name, or the socket's errno). DTLS retransmissions happen only when read or
#   write is called (select does not wake for them); a wrong PSK gives no error, the server
#   just drops the handshake.
import select

from mbedtls import pk, tls, version, x509
from mbedtls.exceptions import TLSError

PROTOCOL_TLS_CLIENT = 0
PROTOCOL_TLS_SERVER = 1
PROTOCOL_DTLS_CLIENT = 2
PROTOCOL_DTLS_SERVER = 3
CERT_NONE = 0
CERT_OPTIONAL = 1
CERT_REQUIRED = 2
MBEDTLS_VERSION = version.version  # python-mbedtls's own (MicroPython 1.29 has 3.6)

# mbedTLS errors (python-mbedtls gives them positive) and their names as MicroPython's
# lib/mbedtls_errors writes them; others keep python-mbedtls's text.
_CERT_VERIFY_FAILED = 0x2700
_PEER_CLOSE_NOTIFY = 0x7880
_BAD_CONFIG = 0x5E80
_FEATURE_UNAVAILABLE = 0x7080  # mbedTLS 3 takes one PSK per configuration, once
_NAMES = {0x7780: "MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE",
          _CERT_VERIFY_FAILED: "MBEDTLS_ERR_X509_CERT_VERIFY_FAILED",
          0x3000: "MBEDTLS_ERR_X509_FATAL_ERROR", 0x6800: "MBEDTLS_ERR_SSL_TIMEOUT",
          0x7180: "MBEDTLS_ERR_SSL_INVALID_MAC", _BAD_CONFIG: "MBEDTLS_ERR_SSL_BAD_CONFIG",
          _FEATURE_UNAVAILABLE: "MBEDTLS_ERR_SSL_FEATURE_UNAVAILABLE"}
# What has to be retried later on a non-blocking socket.
_AGAIN = (tls.WantReadError, tls.WantWriteError, BlockingIOError, InterruptedError)

# The boards stood in for: (key exchanges, cipher modes, keeps the peer's certificate). Their
# cipher suites are those of python-mbedtls with one of those key exchanges and AES in one
# of those modes, which gives exactly the 24 suites of MicroPython 1.29's unix port, in its
# order (extmod/mbedtls/mbedtls_config_common.h: no MBEDTLS_CCM_C, so no CCM or CCM-8;
# rp2 has the same configuration). The ESP32's come from ESP-IDF's mbedTLS as
# ports/esp32/boards/sdkconfig.base sets it (CCM on by default, the PSK key exchanges all
# enabled), not measured on a board. "host", the default, is MicroPython's configuration
# with CCM: it keeps the TS's mandatory TLS_PSK_WITH_AES_128_CCM_8.
_MICROPYTHON = ("ECDHE-ECDSA", "ECDHE-RSA", "RSA", "PSK")
_BOARDS = {
    "unix": (_MICROPYTHON, ("GCM", "CBC"), False),
    "rp2": (_MICROPYTHON, ("GCM", "CBC"), False),
    "esp32": (_MICROPYTHON + ("DHE-PSK", "ECDHE-PSK", "RSA-PSK"), ("GCM", "CBC", "CCM", "CCM-8"),
              True),
    "host": (_MICROPYTHON, ("GCM", "CBC", "CCM", "CCM-8"), False),
}
_board = ["host"]


def board(name):
    # The stand-in becomes the tls of that board (one of _BOARDS) for the contexts made from
    # now on; -> the board it was.
    if name not in _BOARDS:
        raise ValueError("no board %r: one of %s" % (name, ", ".join(_BOARDS)))
    was, _board[0] = _board[0], name
    return was


def _suites(name):
    exchanges, modes, _ = _BOARDS[name]
    found = []
    for suite in tls.ciphers_available():
        exchange, _, cipher = suite[4:].partition("-WITH-")  # TLS-PSK-WITH-AES-128-GCM-SHA256
        mode = cipher[8:] if cipher.endswith("CCM-8") else cipher[8:].split("-")[0]
        if exchange in exchanges and cipher.startswith("AES-") and mode in modes:
            found.append(suite)
    return found


# -- MicroPython's argument checks (py/argcheck.c, py/objstr.c), with their messages


def _fixed(args, kw, n):
    # A C function of exactly n positional arguments (self counted): -> args.
    if kw:
        raise TypeError("function doesn't take keyword arguments")
    if len(args) != n:
        raise TypeError("function takes %d positional arguments but %d were given"
                        % (n, len(args)))
    return args


def _str(value):
    # mp_obj_str_get_data: str or bytes, as bytes.
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bytes):
        return value
    raise TypeError("can't convert '%s' object to str implicitly" % type(value).__name__)


def _int(value):
    # mp_obj_get_int
    if isinstance(value, int):
        return int(value)
    raise TypeError("can't convert %s to int" % type(value).__name__)


def _buffer(value):
    # mp_get_buffer_raise: anything with the buffer protocol (a str has it on MicroPython).
    if isinstance(value, str):
        return value.encode()
    try:
        return bytes(memoryview(value))
    except TypeError:
        raise TypeError("object with buffer protocol required")


def _load(kinds, data, error):
    # A certificate or a private key from DER or PEM (bytes or str), as mbedTLS's parsers take
    # either; ValueError("invalid cert") or ("invalid key") as MicroPython gives for any
    # failure.
    data = _str(data)
    for kind in kinds:
        try:
            if data.startswith(b"-----"):
                return kind.from_PEM(data.decode())
            return kind.from_DER(data)
        except (TLSError, ValueError):
            continue
    raise ValueError(error)


def _certificates(data):
    # Every certificate of DER or PEM data (a PEM file may hold several).
    data = _str(data)
    if not data.startswith(b"-----"):
        return [_load((x509.CRT,), data, "invalid cert")]
    ends = b"-----END CERTIFICATE-----"
    return [_load((x509.CRT,), block + ends, "invalid cert")
            for block in data.split(ends) if block.strip()]


def _error(exc):
    # The OSError MicroPython raises for an mbedTLS error.
    return OSError(-exc.err, _NAMES.get(exc.err, exc.msg))


class SSLContext:
    # A C object: no attribute but its own (__slots__). The underscored ones are the stand-in's.
    __slots__ = ("_verify_mode", "verify_callback", "_psk_identity", "_psk_key", "_server_psk_keys",
                 "_psk_only", "_psk_set", "_suites", "_ciphers", "_chain", "_trust", "_keeps_peer")

    def __init__(self, *args, **kw):
        (protocol,) = _fixed(args, kw, 1)
        if _int(protocol) != PROTOCOL_DTLS_CLIENT:
            raise NotImplementedError("the stand-in does the DTLS client only")
        self._verify_mode = CERT_REQUIRED
        self.verify_callback = None
        self._psk_identity = self._psk_key = self._server_psk_keys = None
        self._psk_only = False
        self._psk_set = False  # the PSK went into mbedTLS's configuration
        self._suites = _suites(_board[0])
        self._keeps_peer = _BOARDS[_board[0]][2]
        self._ciphers = None  # what set_ciphers() chose
        self._chain = None
        self._trust = []

    @property
    def verify_mode(self):
        return self._verify_mode

    @verify_mode.setter
    def verify_mode(self, value):
        self._verify_mode = _int(value)

    @property
    def psk_identity(self):
        return self._psk_identity

    @psk_identity.setter
    def psk_identity(self, value):
        self._psk_identity = value  # kept even when refused below, as MicroPython does
        self._set_psk()

    @property
    def psk_key(self):
        return self._psk_key

    @psk_key.setter
    def psk_key(self, value):
        self._psk_key = value
        self._set_psk()

    @property
    def server_psk_keys(self):
        return self._server_psk_keys

    @server_psk_keys.setter
    def server_psk_keys(self, value):
        self._server_psk_keys = value
        self._psk_only = True

    def _set_psk(self):
        # Once both are set: checked, and only PSK suites from then on; once only.
        if self._psk_identity is None or self._psk_key is None:
            return
        _str(self._psk_identity)
        _buffer(self._psk_key)
        if self._psk_set:
            raise OSError(-_FEATURE_UNAVAILABLE, _NAMES[_FEATURE_UNAVAILABLE])
        self._psk_set = self._psk_only = True

    def get_ciphers(*args, **kw):
        (self,) = _fixed(args, kw, 1)
        return list(self._suites)

    def set_ciphers(*args, **kw):
        self, ciphers = _fixed(args, kw, 2)
        if not isinstance(ciphers, (list, tuple)):
            raise TypeError("object '%s' isn't a tuple or list" % type(ciphers).__name__)
        if not ciphers or [c for c in ciphers if _str(c).decode() not in self._suites]:
            raise OSError(-_BAD_CONFIG, _NAMES[_BAD_CONFIG])
        self._ciphers = [_str(c).decode() for c in ciphers]

    def load_cert_chain(*args, **kw):
        self, cert, key = _fixed(args, kw, 3)
        key = _load((pk.ECC, pk.RSA), key, "invalid key")  # the key first, as MicroPython does
        self._chain = ([_load((x509.CRT,), cert, "invalid cert")], key)

    def load_verify_locations(*args, **kw):
        self, cadata = _fixed(args, kw, 2)
        self._trust.extend(_certificates(cadata))

    def _configuration(self):
        options = {"validate_certificates": self._verify_mode == CERT_REQUIRED}
        suites = self._ciphers or self._suites
        if self._psk_only and not self._ciphers:
            suites = [s for s in suites if "PSK-WITH-" in s]
        options["ciphers"] = suites
        if self._psk_identity is not None and self._psk_key is not None:
            options["pre_shared_key"] = (_str(self._psk_identity).decode(), _buffer(self._psk_key))
        if self._chain:
            options["certificate_chain"] = self._chain
        if self._trust:
            options["trust_store"] = tls.TrustStore(self._trust)
        return tls.DTLSConfiguration(**options)

    def wrap_socket(*args, **kw):
        # mp_arg_parse_all: sock positional, the rest keyword only.
        if len(args) < 2:
            raise TypeError("function missing %d required positional arguments" % (2 - len(args)))
        if len(args) > 2:
            raise TypeError("extra positional arguments given")
        self, sock = args
        allowed = {"server_side": False, "do_handshake_on_connect": True, "server_hostname": None,
                   "client_id": None}
        if [name for name in kw if name not in allowed]:
            raise TypeError("extra keyword arguments given")
        allowed.update(kw)
        if not (hasattr(sock, "recv") and hasattr(sock, "send")):
            raise OSError("stream operation not supported")
        if allowed["server_side"]:
            raise NotImplementedError("the stand-in does the DTLS client only")
        hostname = allowed["server_hostname"]
        if hostname is not None:
            hostname = _str(hostname).decode()
        elif self._verify_mode == CERT_REQUIRED:
            raise ValueError("CERT_REQUIRED requires server_hostname")
        wrapped = (_PeerKeepingSocket if self._keeps_peer else SSLSocket)(self, sock, hostname)
        if allowed["do_handshake_on_connect"]:
            while not wrapped._handshake():
                select.select([sock], [], [], 0.1)  # the server's flight, or a retransmission due
        return wrapped


class SSLSocket:
    # python-mbedtls's buffers (no I/O of their own) over the connected socket: the records
    # mbedtls wants sent (a flight, a retransmission its timers decided, an application
    # record) go out as one datagram each time it is asked to do something, and datagrams
    # are handed to it one at a time, as mbedTLS's own receive callback does.
    __slots__ = ("_context", "_sock", "_tls", "_done", "_failed")

    def __init__(self, context, sock, hostname):
        self._context = context
        self._sock = sock
        self._tls = tls.ClientContext(context._configuration()).wrap_buffers(hostname)
        self._done = False
        self._failed = None  # the exception a failed session raises from then on

    def _fail(self, first, then=None):
        # The session fails for good: first raised now, then (or first again) by every call.
        self._failed = then or first
        return first

    def _flush(self):
        out = self._tls.peek_outgoing(65536)
        if out:
            self._tls.consume_outgoing(len(out))
            try:
                self._sock.send(out)
            except OSError as exc:  # EDESTADDRREQ on a socket not connected, ECONNREFUSED ...
                raise self._fail(OSError(exc.errno))

    def _take(self):
        # One waiting datagram into mbedtls; False when none waits.
        try:
            data = self._sock.recv(65536)
        except _AGAIN:
            return False
        except OSError as exc:  # ECONNREFUSED after an ICMP port unreachable: for good
            raise self._fail(OSError(exc.errno))
        self._tls.receive_from_network(data)
        return True

    def _handshake(self):
        # Advances the handshake (and its retransmission timers); True once it is done.
        if self._failed:
            raise self._failed
        if not self._done:
            try:
                # do_handshake() returns after each step: go on until it is over, handing it
                # a datagram each time it waits for one, until none waits
                while self._tls._handshake_state is not tls.HandshakeStep.HANDSHAKE_OVER:
                    try:
                        self._tls.do_handshake()
                    except _AGAIN:
                        self._flush()
                        if not self._take():
                            return False
            except TLSError as exc:
                # python-mbedtls would start over with a new ClientHello: MicroPython's
                # session stays failed, so this one does too
                if exc.err == _CERT_VERIFY_FAILED:
                    raise self._fail(ValueError("\n%s\n" % exc.msg), _error(exc))
                raise self._fail(_error(exc))
            finally:
                self._flush()
            self._verify()  # a refusal fails the handshake itself, as MicroPython's does
            self._done = True
        return True

    def _verify(self):
        # The context's verify_callback, for the server's own certificate (see the top).
        callback = self._context.verify_callback
        if callback is None or self._context.verify_mode == CERT_NONE:
            return
        result = callback(memoryview(self._tls.getpeercert(True)), 0)
        if result:
            # mbedTLS fails the handshake with what the callback returned: a small negative
            # number is an errno to MicroPython
            if -256 < result < 0:
                error = OSError(-result)
            else:
                error = OSError(result, _NAMES.get(-result, "mbedTLS error"))
            raise self._fail(error)

    def _read1(self, view):
        # One mbedtls_ssl_read: the size of one record (at most len(view)) read into view, 0
        # for the server's close_notify, None when nothing waits (or the handshake runs).
        if not self._handshake():
            return None
        try:
            while True:
                try:
                    return self._tls.readinto(view, len(view))
                except _AGAIN:
                    if not self._take():
                        return None
        except TLSError as exc:
            if exc.err == _PEER_CLOSE_NOTIFY:
                return 0
            raise self._fail(_error(exc))
        finally:
            self._flush()

    def _write1(self, view):
        # One mbedtls_ssl_write: the bytes written, None while the handshake runs.
        if not self._handshake():
            return None
        try:
            self._tls.write(bytes(view))  # which tells the size of the record, not of view
            return len(view)
        except _AGAIN:
            return None
        except TLSError as exc:
            raise self._fail(_error(exc))
        finally:
            self._flush()

    def _stream(self, io, view, once):
        # py/stream.c's mp_stream_rw: calls io until view is done, unless once; stops at 0
        # (the end) and when nothing more waits, with what it has (None for nothing at all).
        done = 0
        while done < len(view):
            n = io(view[done:])
            if n is None:
                return done or None
            if once or not n:
                return done + n
            done += n
        return done

    def recv(self, n):
        buf = bytearray(n)
        got = self._stream(self._read1, memoryview(buf), True)
        return None if got is None else bytes(buf[:got])

    def read(self, n):
        buf = bytearray(n)
        got = self._stream(self._read1, memoryview(buf), False)
        return None if got is None else bytes(buf[:got])

    def readinto(self, buf, nbytes=None):
        view = memoryview(buf)
        return self._stream(self._read1, view if nbytes is None else view[:nbytes], False)

    recv_into = readinto

    def send(self, buf):
        return self._stream(self._write1, memoryview(bytes(buf)), True)

    def write(self, buf):
        return self._stream(self._write1, memoryview(bytes(buf)), False)

    sendall = write

    def setblocking(self, flag):
        self._sock.setblocking(flag)

    def cipher(self):
        # MicroPython reads the suite of a session that has none as a NULL string: before the
        # handshake is done, or after it failed (mbedTLS's context freed). A session that
        # failed after its handshake keeps its suite.
        if not self._done:
            raise RuntimeError("cipher() before the handshake is done crashes MicroPython "
                               "(no suite yet)")
        return (self._tls.cipher(), "DTLSv1.2")

    def close(self):
        self._sock.close()


class _PeerKeepingSocket(SSLSocket):
    # The wrapped socket of a board whose mbedTLS keeps the peer's certificate.
    __slots__ = ()

    def getpeercert(*args, **kw):
        self, binary_form = _fixed(args, kw, 2)
        if not binary_form:
            raise NotImplementedError()
        return self._tls.getpeercert(True) if self._done else None
