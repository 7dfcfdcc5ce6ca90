# CPython stand-in for MicroPython's `tls` module (part of the CPython shim; see
# cpython_shim.py), the DTLS client only, built on python-mbedtls. It behaves as MicroPython
# 1.29's extmod/modtls_mbedtls.c does, so lib/ has one code path:
#
#   PROTOCOL_DTLS_CLIENT, CERT_NONE, CERT_OPTIONAL, CERT_REQUIRED
#   SSLContext(PROTOCOL_DTLS_CLIENT)
#     .verify_mode       CERT_REQUIRED by default; set CERT_NONE for PSK
#     .psk_identity      str or bytes, and .psk_key bytes: once both are set only PSK cipher
#                        suites are offered
#     .load_cert_chain(cert, key)        the client's certificate and (EC) private key, DER or
#                                        PEM bytes
#     .load_verify_locations(cadata=...) the server's certificate or its CA, DER or PEM bytes
#     .wrap_socket(sock, server_side=False, do_handshake_on_connect=True, server_hostname=None)
#                        sock must be a connected UDP socket (unconnected: OSError
#                        EDESTADDRREQ). With do_handshake_on_connect it blocks until the
#                        handshake is done; without, every read or write advances it.
#   The wrapped socket:
#     .write(buf), .send(buf)      bytes written, or None while the handshake runs
#     .readinto(buf), .recv_into   bytes read, or None when nothing waits (or the handshake runs)
#     .read(n), .recv(n)           bytes, or None likewise
#     .cipher()                    (suite name, protocol version), once the handshake is done
#     .close()
#   A failed handshake or a bad record raises OSError. DTLS retransmissions happen only when
#   read or write is called (select does not wake for them); a wrong PSK gives no error, the
#   server just drops the handshake.
import errno
import select

from mbedtls import pk, tls, x509
from mbedtls.exceptions import TLSError

PROTOCOL_DTLS_CLIENT = 2  # MicroPython's numbers: TLS client 0, server 1, DTLS client 2
CERT_NONE = 0
CERT_OPTIONAL = 1
CERT_REQUIRED = 2
# What has to be retried later on a non-blocking socket.
_AGAIN = (tls.WantReadError, tls.WantWriteError, BlockingIOError)


def _load(kind, data):
    # A certificate or an EC key from DER or PEM, as mbedTLS's parsers take either.
    data = bytes(data)
    return kind.from_PEM(data.decode()) if data.startswith(b"-----") else kind.from_DER(data)


class SSLContext:
    def __init__(self, protocol):
        if protocol != PROTOCOL_DTLS_CLIENT:
            raise ValueError("this stand-in does the DTLS client only")
        self.verify_mode = CERT_REQUIRED
        self.psk_identity = None
        self.psk_key = None
        self._chain = None
        self._trust = None

    def load_cert_chain(self, cert, key):
        self._chain = ([_load(x509.CRT, cert)], _load(pk.ECC, key))

    def load_verify_locations(self, cadata):
        self._trust = tls.TrustStore([_load(x509.CRT, cadata)])

    def _configuration(self):
        options = {"validate_certificates": self.verify_mode != CERT_NONE}
        if self.psk_identity is not None and self.psk_key is not None:
            identity = self.psk_identity
            if isinstance(identity, (bytes, bytearray)):
                identity = bytes(identity).decode()
            options["pre_shared_key"] = (identity, bytes(self.psk_key))
            # As MicroPython does: with a PSK only PSK suites (python-mbedtls would also offer
            # certificate suites, and a server holding a certificate would pick one).
            options["ciphers"] = [c for c in tls.ciphers_available() if c.startswith("TLS-PSK-WITH-")]
        if self._chain:
            options["certificate_chain"] = self._chain
        if self._trust:
            options["trust_store"] = self._trust
        return tls.DTLSConfiguration(**options)

    def wrap_socket(self, sock, server_side=False, do_handshake_on_connect=True, server_hostname=None):
        if server_side:
            raise ValueError("this stand-in does the DTLS client only")
        try:
            sock.getpeername()
        except OSError:
            raise OSError(errno.EDESTADDRREQ, "DTLS needs a connected socket")
        wrapped = SSLSocket(sock, tls.ClientContext(self._configuration()).wrap_buffers(server_hostname))
        if do_handshake_on_connect:
            while not wrapped._handshake():
                select.select([sock], [], [], 0.1)  # the server's flight, or a retransmission due
        return wrapped


class SSLSocket:
    # python-mbedtls's buffers (no I/O of their own) over the connected socket: the records
    # mbedtls wants sent (a flight, a retransmission its timers decided, an application
    # record) go out as one datagram each time it is asked to do something.
    def __init__(self, sock, buffers):
        self._sock = sock
        self._tls = buffers
        self._done = False
        self._failed = None  # the OSError of a failed handshake: raised again by every call

    def _flush(self):
        out = self._tls.peek_outgoing(65536)
        if out:
            self._tls.consume_outgoing(len(out))
            self._sock.send(out)

    def _take(self):
        # One waiting datagram into mbedtls; False when none waits.
        try:
            data = self._sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return False
        self._tls.receive_from_network(data)
        return True

    def _handshake(self):
        # Advances the handshake (and its retransmission timers); True once it is done.
        if self._failed:
            raise self._failed
        if not self._done:
            while self._take():
                pass
            try:
                # do_handshake() returns after each step: go on until it waits or is over
                while self._tls._handshake_state is not tls.HandshakeStep.HANDSHAKE_OVER:
                    self._tls.do_handshake()
                self._done = True
            except _AGAIN:
                pass
            except TLSError as exc:
                # python-mbedtls would start over with a new ClientHello: MicroPython's
                # session stays failed, so this one does too
                self._failed = OSError(errno.EIO, "DTLS handshake failed: %s" % exc)
                raise self._failed
            finally:
                self._flush()
        return self._done

    def write(self, buf):
        if not self._handshake():
            return None
        try:
            n = self._tls.write(bytes(buf))
        except TLSError as exc:
            raise OSError(errno.EIO, "DTLS: %s" % exc)
        self._flush()
        return n

    send = write

    def readinto(self, buf, nbytes=None):
        # One datagram's record at most, so that what select() reported is what is read.
        if not self._handshake() or not self._take():
            return None
        try:
            return self._tls.readinto(buf, nbytes or len(buf))
        except _AGAIN:
            return None
        except TLSError as exc:
            raise OSError(errno.EIO, "DTLS: %s" % exc)
        finally:
            self._flush()

    recv_into = readinto

    def read(self, n=4096):
        buf = bytearray(n)
        got = self.readinto(buf)
        return None if got is None else bytes(buf[:got])

    recv = read

    def cipher(self):
        return (self._tls.cipher(), "DTLSv1.2") if self._done else None

    def close(self):
        self._sock.close()
