# LwM2M client for MicroPython. Modules are imported one by one (lwm2m.coap, lwm2m.tlv ...)
# so a board loads only what it uses; this file holds the one error type they all raise.


class Error(Exception):
    # A message, payload or request that cannot be served. `code` is the CoAP response code
    # that answers it (0x80 is 4.00 Bad Request: class << 5 | detail), or None when no answer
    # is possible and the message must be rejected (RST) or ignored.
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
