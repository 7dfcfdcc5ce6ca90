# Block-wise transfers (RFC 7959) between the exchange and the request handler, both ways.
#
# Serving (Blocks.serve): a Block1 request is reassembled in a buffer of at most `cap`
# bytes, or handed on block by block to a stream (the firmware Package); a GET whose answer
# is larger than a block, or that asks for a block, is answered with Block2 from a copy kept
# for that server until its last block is fetched, so the representation cannot change
# between blocks (each new one has a new ETag).
# Requesting (send): a request whose payload is larger than a block (a Register or Update
# with a long object list) goes out with Block1, block by block.
from micropython import const

from lwm2m import Error, coap

_GET = const(0x01)
_POST = const(0x02)
_PUT = const(0x03)
_CONTENT = const(0x45)
_CONTINUE = const(0x5F)
_BAD_REQUEST = const(0x80)
_BAD_OPTION = const(0x82)
_INCOMPLETE = const(0x88)
_TOO_LARGE = const(0x8D)
_ETAG = const(4)
_CONTENT_FORMAT = const(12)
_ACCEPT = const(17)
_BLOCK2 = const(23)
_BLOCK1 = const(27)
_SIZE2 = const(28)
_SIZE1 = const(60)
SZX = const(6)  # the largest block, 1024 bytes: what this client uses unless asked for less

# A transfer being received: a list indexed by these fields.
_KEY = const(0)  # (code, path, content format) of its requests
_RECEIVED = const(1)  # bytes received so far
_DATA = const(2)  # the reassembly buffer; None for a stream


class Blocks:
    def __init__(self, cap=4096):
        self.cap = cap
        self._in = {}  # addr -> the transfer it is sending
        self._out = {}  # addr -> the answer it is fetching
        self._etag = 0

    def serve(self, request, addr, dispatch, streams):
        # The answer to request: dispatch(request, addr, piece) answers a whole request
        # (piece None) or one block for a stream, piece (offset, last, size1); streams holds
        # the paths that take their Block1 writes as a stream.
        block1 = request.block(_BLOCK1)
        if block1 is not None:
            return self._receive(request, addr, block1, dispatch, streams)
        block2 = request.block(_BLOCK2) if request.code == _GET else None
        kept = self._out.get(addr)
        if block2 and block2[0] and kept and kept[0] == _key(request):
            response = coap.Message(0, _CONTENT)
            if kept[3] is not None:
                response.add(_CONTENT_FORMAT, kept[3])
            return self._block(kept, block2[0], min(block2[2], SZX), addr, response)
        response = dispatch(request, addr, None)
        if response.code == _CONTENT and (block2 or not fits(response.payload)):
            num, szx = (block2[0], min(block2[2], SZX)) if block2 else (0, SZX)
            return self._block(self._keep(_key(request), response), num, szx, addr, response)
        return response

    def first(self, addr, key, response):
        # The first block of a notification that does not fit one message (fits()), the
        # rest kept for the GETs that follow (key: the observed path and Accept, as those
        # GETs carry them).
        return self._block(self._keep(key, response), 0, SZX, addr, response)

    def _keep(self, key, response):
        # What the blocks of an answer are cut from: [key, ETag, payload, content format].
        self._etag = (self._etag + 1) & 0xFFFFFFFF
        return [key, coap.uint_bytes(self._etag) or b"\0", response.payload, response.get(_CONTENT_FORMAT)]

    def forget(self, addr):
        # A server's transfers end (it is gone, or registers anew).
        self._in.pop(addr, None)
        self._out.pop(addr, None)

    def _block(self, kept, num, szx, addr, response):
        # Block num of a kept answer, in response (whose options it keeps: Observe, the
        # Content-Format); kept for the next block while more follow.
        payload = kept[2]
        size = 16 << szx
        start = num * size
        if start >= len(payload) and num:
            raise Error(_BAD_OPTION, "block %d is past the end of a %d-byte answer" % (num, len(payload)))
        more = start + size < len(payload)
        response.payload = payload[start:start + size]
        response.add(_ETAG, kept[1])
        response.add(_BLOCK2, coap.block_value(num, more, szx))
        if num == 0:
            response.add(_SIZE2, len(payload))
        if more:
            self._out[addr] = kept
        elif self._out.get(addr) is kept:
            del self._out[addr]
        return response

    def _receive(self, request, addr, block1, dispatch, streams):
        num, more, szx = block1
        size = 16 << szx
        payload = request.payload
        if more and len(payload) != size:
            raise Error(_BAD_REQUEST, "block %d is %d bytes: all but the last have %d" % (num, len(payload), size))
        path = request.path()
        key = (request.code, path, request.get(_CONTENT_FORMAT))
        stream = (request.code == _PUT or request.code == _POST) and path in streams
        transfer = self._in.get(addr)
        offset = num * size
        size1 = request.get(_SIZE1)
        if num == 0:
            # A new transfer, even in the middle of another one.
            if not stream and size1 is not None and size1 > self.cap:
                return self._too_large(addr)
            transfer = self._in[addr] = [key, 0, None if stream else bytearray()]
        elif transfer is None or transfer[_KEY] != key or offset > transfer[_RECEIVED]:
            raise Error(_INCOMPLETE, "block %d of %s: expected block 0 or the one at byte %d"
                        % (num, path, transfer[_RECEIVED] if transfer and transfer[_KEY] == key else 0))
        elif offset < transfer[_RECEIVED]:
            return _continue(block1)  # a repeated block: it is there already
        if stream:
            try:
                response = dispatch(request, addr, (offset, not more, size1))
            except Exception:
                self._in.pop(addr, None)
                raise
            transfer[_RECEIVED] = offset + len(payload)
        else:
            data = transfer[_DATA]
            if len(data) + len(payload) > self.cap:
                return self._too_large(addr)
            data += payload
            transfer[_RECEIVED] = len(data)
            if not more:
                del self._in[addr]
                request.payload = bytes(data)
                request.options = [o for o in request.options if o[0] != _BLOCK1]
                response = dispatch(request, addr, None)
        if more:
            return _continue(block1)
        self._in.pop(addr, None)
        response.add(_BLOCK1, coap.block_value(num, False, szx))
        return response

    def _too_large(self, addr):
        self._in.pop(addr, None)
        response = coap.Message(0, _TOO_LARGE, 0, b"", ("at most %d bytes" % self.cap).encode())
        response.add(_SIZE1, self.cap)
        return response


def fits(payload):
    # Does a payload go in one message, with no Block2?
    return len(payload) <= 16 << SZX


def _key(request):
    # What the blocks of one answer are asked with: the path and Accept (made only when
    # blocks are at stake, not for every request).
    return request.path(), request.get(_ACCEPT)


def _continue(block1):
    response = coap.Message(0, _CONTINUE)
    response.add(_BLOCK1, coap.block_value(block1[0], True, block1[2]))
    return response


def send(exchange, msg, addr, callback, clock):
    # exchange.request() for a request of any size: one whose payload is larger than a block
    # goes as Block1 blocks, each sent when the server answered 2.31 to the one before (at
    # the smaller size it may ask for); callback gets the final answer, or the first one that
    # is not 2.31, or None. clock() gives the ticks to send at.
    payload = msg.payload
    if len(payload) <= 16 << SZX:
        exchange.request(msg, addr, callback, clock())
        return
    options = msg.options

    def block(offset, szx):
        size = 16 << szx
        part = coap.Message(msg.type, msg.code, 0, msg.token, payload[offset:offset + size])
        part.options = list(options)
        more = offset + size < len(payload)
        part.add(_BLOCK1, coap.block_value(offset // size, more, szx))
        if offset == 0:
            part.add(_SIZE1, len(payload))
        exchange.request(part, addr, lambda r: answered(r, offset, size, more), clock())
        msg.token = part.token  # every block under the first one's token

    def answered(response, offset, size, more):
        if not more or response is None or response.code != _CONTINUE:
            callback(response)
            return
        echo = response.block(_BLOCK1)
        szx = min(echo[2], SZX) if echo else SZX
        block(offset + size, szx)

    block(0, SZX)
