# Firmware pulls (Package URI /5/0/1): a coap:// or coaps:// URI fetched with Block2 GETs
# straight into the firmware sink, block by block. After each block the progress (URI,
# offset, ETag, CRC-32 of what was written) is saved, so a pull cut by a restart goes on
# from the next block, provided the sink still holds the same bytes and the server's ETag
# has not changed; otherwise it starts over. A coaps:// server is reached with the
# security of the Security instance of the same URI, else with the download PSK.
import binascii

from micropython import const

from lwm2m import coap
from lwm2m.firmware import Failed
from lwm2m.registration import split_uri

_CON = const(0)
_GET = const(0x01)
_CONTENT = const(0x45)
_SERVER_ERRORS = const(0xA0)
_ETAG = const(4)
_URI_PATH = const(11)
_URI_QUERY = const(15)
_BLOCK2 = const(23)
_SIZE2 = const(28)
_SZX = const(6)  # 1024-byte blocks unless the server gives smaller ones
_TRIES = const(4)  # sends of one block, each with CoAP's retransmissions, before giving up
_LOST = const(4)
_INVALID_URI = const(7)
_UNSUPPORTED_PROTOCOL = const(9)


def _scheme_ok(scheme):
    # RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
    if not scheme or not scheme[0].isalpha():
        return False
    for c in scheme:
        if not (c.isalpha() or c.isdigit() or c in "+-."):
            return False
    return True


class Download:
    # One pull for a lwm2m.firmware.Firmware, which it reports to: pulled() after each block,
    # pull_done(None or the exception) at the end. resumed: the progress saved by pulled().
    def __init__(self, firmware, uri, resumed):
        self.firmware = firmware
        self.client = client = firmware.client
        self.uri = uri
        scheme, sep, rest = uri.partition("://")
        if scheme not in ("coap", "coaps"):
            if sep and _scheme_ok(scheme):
                raise Failed(_UNSUPPORTED_PROTOCOL, "%s: only coap:// and coaps:// are supported" % uri)
            raise Failed(_INVALID_URI, "%r is not a URI" % uri)
        try:
            scheme, host, port = split_uri(uri)
        except ValueError as exc:
            raise Failed(_INVALID_URI, str(exc))
        target = rest.partition("/")[2]
        path, _, query = target.partition("?")
        self.path = [segment for segment in path.split("/") if segment]
        self.query = [item for item in query.split("&") if item]
        try:
            self.addr = client.transport.resolve(host, port)
        except OSError as exc:
            raise Failed(_LOST, "%s: cannot resolve %s: %r" % (uri, host, exc))
        if scheme == "coaps" and not [s for s in client.servers if s.addr == self.addr]:
            self._secure(scheme, host, port)
        self.stopped = False
        self.tries = 0
        self.offset = 0
        self.szx = _SZX
        self.etag = None
        self.crc = 0
        if resumed:
            self._resume(resumed)
        client.log("firmware: downloading %s from byte %d" % (uri, self.offset))
        self._get()

    def _secure(self, scheme, host, port):
        # A DTLS session with the security of a Security instance for the same server, else
        # with the download PSK. One that cannot be had fails the download.
        from lwm2m import dtls

        account = None
        security = self.client.model.object(0)
        for inst in security.instances.values() if security else ():
            try:
                if split_uri(inst.get(0)) == (scheme, host, port):
                    account = inst
                    break
            except ValueError:
                continue
        psk = self.firmware.psk
        if account is None and not psk:
            raise Failed(_INVALID_URI, "%s: no Security instance for that server and no download PSK" % self.uri)
        why = dtls.secure(self.client.transport, self.addr, account, psk)
        if why:
            raise Failed(_LOST, "%s: %s" % (self.uri, why))

    def _resume(self, saved):
        offset = saved["offset"]
        if self.firmware.sink.resume(offset) != saved["crc"]:
            self.client.log("firmware: the %d bytes downloaded before are not intact: starting over" % offset)
            return
        self.offset, self.etag, self.crc = offset, saved["etag"], saved["crc"]
        while offset % (16 << self.szx):
            self.szx -= 1  # the blocks were smaller: go on at their size

    def stop(self):
        self.stopped = True

    def _get(self):
        msg = coap.Message(_CON, _GET)
        for segment in self.path:
            msg.add(_URI_PATH, segment)
        for item in self.query:
            msg.add(_URI_QUERY, item)
        msg.add(_BLOCK2, coap.block_value(self.offset >> (4 + self.szx), False, self.szx))
        if self.offset == 0:
            msg.add(_SIZE2, 0)  # asks for the size (RFC 7959 4), for the sink's room check
        self.client.exchange.request(msg, self.addr, self._answered, self.client.now)

    def _answered(self, response):
        if self.stopped:
            return
        try:
            if self._block(response):
                self._get()
        except Exception as exc:
            self.stopped = True
            self.firmware.pull_done(exc)

    def _block(self, response):
        # Writes one block; True when the next one is to be fetched.
        if response is None:
            self.tries += 1
            if self.tries >= _TRIES:
                raise Failed(_LOST, "%s: no answer for the block at byte %d" % (self.uri, self.offset))
            self.client.log("firmware: no answer for the block at byte %d: asking again" % self.offset)
            return True
        if response.code != _CONTENT:
            result = _LOST if response.code >= _SERVER_ERRORS else _INVALID_URI
            raise Failed(result, "%s: %s" % (self.uri, coap.code_name(response.code)))
        self.tries = 0
        block = response.block(_BLOCK2)
        num, more, szx = block if block else (0, False, self.szx)
        etag = response.get(_ETAG)
        etag = etag.hex() if etag is not None else None
        if num << (4 + szx) != self.offset:
            raise Failed(_LOST, "%s: got the block at byte %d, asked for %d" % (self.uri, num << (4 + szx), self.offset))
        sink = self.firmware.sink
        if self.offset and etag != self.etag:
            self.client.log("firmware: %s changed on the server (ETag): starting over" % self.uri)
            self.offset = self.crc = 0
            return True
        if self.offset == 0:
            sink.begin(response.get(_SIZE2))
            self.etag = etag
        payload = response.payload
        sink.write(self.offset, payload)
        self.crc = binascii.crc32(payload, self.crc)
        self.offset += len(payload)
        self.szx = szx
        if not more:
            self.stopped = True
            self.client.log("firmware: %s: %d bytes downloaded" % (self.uri, self.offset))
            self.firmware.pull_done(None)
            return False
        self.firmware.pulled(self.uri, self.offset, self.etag, self.crc)
        return True
