# DTLS 1.2 for coaps:// servers: the security context a Security (0) instance asks for, made
# with MicroPython's `tls` module (on CPython the shim's stand-in of it, built on
# python-mbedtls), and the session it opens. Loaded only when a server uses coaps://.
#   Security Mode /0/x/2: 0 PSK (identity /0/x/3, key /0/x/5), 2 Certificate (client
#   certificate /0/x/3, server certificate or CA /0/x/4, private key /0/x/5; DER, or PEM),
#   3 NoSec (coap:// only). 1 Raw Public Key has no support in MicroPython's tls: refused.
#   PSK needs MicroPython 1.29 or newer: older tls modules have no psk_identity.
#
# Certificate Usage /0/x/15 (LwM2M 1.1, DANE's usages of RFC 6698), default 3, mapped onto
# what MicroPython's tls can do. A board has no trust store of its own: /0/x/4 is the only
# trust anchor there is.
#   0 CA constraint, 2 trust anchor assertion: /0/x/4 is the CA the server's chain must lead
#     to. load_verify_locations(/0/x/4) and CERT_REQUIRED, with server_hostname (/0/x/14 SNI,
#     else the host of the server URI), which mbedTLS checks against the certificate's
#     subjectAltName or CN, besides the chain and the dates. DANE's 0 also wants the chain
#     to end at one of the client's own anchors; with none, 0 and 2 are the same here.
#   1 service certificate constraint: the server's certificate must be /0/x/4 and pass that
#     validation: the same, with /0/x/4 as the anchor, plus the pin below. Since the anchor
#     is the certificate itself, a self-signed /0/x/4 passes; a CA-issued one cannot (its
#     CA is not on the board): give the CA with usage 0 or 2, or pin it with 3.
#   3 domain-issued certificate: the server's certificate must be /0/x/4, byte for byte, and
#     nothing else is checked (no chain, name or dates: RFC 7671 5.1). CERT_OPTIONAL (mbedTLS
#     verifies but does not enforce, and wants no server_hostname) and the pin.
# The pin is a verify_callback: mbedTLS calls it for each certificate of the server's chain,
# and it fails the handshake (OSError MBEDTLS_ERR_X509_FATAL_ERROR) when the one at depth 0,
# the server's own, is not /0/x/4. Not getpeercert() after the handshake: that exists only
# where mbedTLS keeps the peer's certificate (ESP-IDF's build; MicroPython's own for rp2 and
# unix has no MBEDTLS_SSL_KEEP_PEER_CERTIFICATE), and the server would have a session by
# then. Under CERT_REQUIRED a refused certificate raises ValueError out of the session's
# read or write, with mbedTLS's reason.
import binascii

import tls
from micropython import const

from lwm2m.registration import split_uri

_PSK = const(0)
_RPK = const(1)
_CERTIFICATE = const(2)
_NO_SEC = const(3)
_CA_CONSTRAINT = const(0)
_SERVICE_CERTIFICATE = const(1)
_TRUST_ANCHOR = const(2)
_DOMAIN_ISSUED = const(3)
_X509_FATAL_ERROR = const(-0x3000)  # what the pin fails a handshake with ("the verify callback failed")


def context(security):
    # (the tls.SSLContext for a Security instance, the name the server's certificate is
    # checked against or None); ValueError naming the server and what is wrong.
    try:
        return _context(security)
    except ValueError as exc:  # ours, or tls's "invalid cert", "invalid key"
        raise ValueError("%s: %s" % (security.get(0), exc))


def _context(security):
    mode = security.get(2)
    if mode == _NO_SEC:
        raise ValueError("coaps:// needs a Security Mode of PSK (0) or Certificate (2), not NoSec")
    if mode == _RPK:
        raise ValueError("Raw Public Key (1) is not supported by MicroPython's tls: use PSK or Certificate")
    if mode == _PSK:
        identity, key = security.get(3), security.get(5)
        if not identity or not key:
            raise ValueError("PSK needs an identity (/0/x/3) and a key (/0/x/5)")
        return psk_context(identity, key), None
    if mode != _CERTIFICATE:
        raise ValueError("unknown Security Mode %r" % mode)
    cert, server, key = security.get(3), security.get(4), security.get(5)
    if not cert or not server or not key:
        raise ValueError("Certificate needs the client's certificate (/0/x/3), the server's (/0/x/4) and a key (/0/x/5)")
    usage = security.get(15) if security.has(15) else _DOMAIN_ISSUED
    if usage not in (_CA_CONSTRAINT, _SERVICE_CERTIFICATE, _TRUST_ANCHOR, _DOMAIN_ISSUED):
        raise ValueError("unknown Certificate Usage %r (0 to 3)" % usage)
    server = bytes(server)
    ctx = tls.SSLContext(tls.PROTOCOL_DTLS_CLIENT)
    ctx.load_cert_chain(bytes(cert), bytes(key))
    if usage == _SERVICE_CERTIFICATE or usage == _DOMAIN_ISSUED:
        ctx.verify_callback = _pin(_der(server))
    if usage == _DOMAIN_ISSUED:
        ctx.verify_mode = tls.CERT_OPTIONAL
        return ctx, None
    ctx.load_verify_locations(server)
    sni = security.get(14) if security.has(14) else ""
    return ctx, sni or split_uri(security.get(0))[1]


def psk_context(identity, key):
    # A PSK context: identity and key as bytes (a firmware download's own PSK, or /0/x/3,
    # /0/x/5); ValueError when this MicroPython's tls has no PSK.
    ctx = tls.SSLContext(tls.PROTOCOL_DTLS_CLIENT)
    ctx.verify_mode = tls.CERT_NONE
    try:
        ctx.psk_identity = identity
    except AttributeError:
        raise ValueError("DTLS with a PSK needs MicroPython 1.29 or newer (this tls module has no PSK)")
    ctx.psk_key = bytes(key)
    return ctx


def check(security):
    # Refuses now (ValueError) a Security instance the client cannot use, rather than at each
    # handshake: its context is made and dropped. No heap for it now refuses nothing: each
    # session makes its own context, and fails on its own.
    try:
        context(security)
    except (OSError, MemoryError):
        pass


def secure(transport, addr, security, psk=None):
    # A new DTLS session with the peer at addr, with its own context: as the Security instance
    # says, else with psk, (identity, key). -> None, or why it could not be had, for the log
    # (no heap for mbedTLS, a socket refused, a certificate or key mbedTLS cannot parse):
    # that is the failure of the peer's session, retried as such.
    try:
        ctx, hostname = context(security) if security else (psk_context(psk[0], psk[1]), None)
        transport.secure(addr, ctx, hostname)
    except (OSError, MemoryError, ValueError) as exc:
        text = str(exc)
        return "no DTLS session: " + type(exc).__name__ + (": " + text if text else "")
    return None


def _der(cert):
    # The DER of a certificate given as DER or PEM: what the pin compares.
    if cert[:5] != b"-----":
        return cert
    return binascii.a2b_base64(cert.split(b"-----")[2])  # between BEGIN CERTIFICATE and END


def _pin(der):
    # The verify_callback that accepts no server certificate but der (other certificates of
    # the chain are the server's CAs). It must not raise: it runs inside mbedTLS.
    def verify(cert, depth):
        return 0 if depth or bytes(cert) == der else _X509_FATAL_ERROR

    return verify
