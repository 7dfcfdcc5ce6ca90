# DTLS 1.2 for coaps:// servers: the security context a Security (0) instance asks for, made
# with MicroPython's `tls` module (on CPython the shim's stand-in of it, built on
# python-mbedtls). Loaded only when a server uses coaps://.
#   Security Mode /0/x/2: 0 PSK (identity /0/x/3, key /0/x/5), 2 Certificate (client
#   certificate /0/x/3, server certificate or CA /0/x/4, private key /0/x/5, all DER),
#   3 NoSec (coap:// only). 1 Raw Public Key has no support in MicroPython's tls: refused.
import tls

from micropython import const

_PSK = const(0)
_RPK = const(1)
_CERTIFICATE = const(2)
_NO_SEC = const(3)


def context(security):
    # The tls.SSLContext for a Security instance; ValueError naming what is wrong.
    mode = security.get(2)
    uri = security.get(0)
    if mode == _NO_SEC:
        raise ValueError("%s: coaps:// needs a Security Mode of PSK (0) or Certificate (2), not NoSec" % uri)
    if mode == _RPK:
        raise ValueError("%s: Raw Public Key (1) is not supported by MicroPython's tls: use PSK or Certificate" % uri)
    if mode == _PSK:
        identity, key = security.get(3), security.get(5)
        if not identity or not key:
            raise ValueError("%s: PSK needs an identity (/0/x/3) and a key (/0/x/5)" % uri)
        return psk_context(identity, key)
    ctx = tls.SSLContext(tls.PROTOCOL_DTLS_CLIENT)
    if mode == _CERTIFICATE:
        ctx.load_cert_chain(security.get(3), security.get(5))
        ctx.load_verify_locations(cadata=security.get(4))
    else:
        raise ValueError("%s: unknown Security Mode %r" % (uri, mode))
    return ctx


def psk_context(identity, key):
    # A PSK context: identity and key as bytes (a firmware download's own PSK, or /0/x/3, /0/x/5).
    ctx = tls.SSLContext(tls.PROTOCOL_DTLS_CLIENT)
    ctx.verify_mode = tls.CERT_NONE
    ctx.psk_identity = identity
    ctx.psk_key = bytes(key)
    return ctx
