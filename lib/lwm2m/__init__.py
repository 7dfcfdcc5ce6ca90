# LwM2M client for MicroPython. Modules are imported one by one (lwm2m.coap, lwm2m.tlv ...)
# so a board loads only what it uses; this file holds the one error type they all raise, and
# release(), which unloads a feature loaded on demand once it is done.


from micropython import const

_TEXT_MAX = const(200)  # characters of what a request puts in an answer or a log line


def clip(text):
    # text cut to _TEXT_MAX characters: what a server sent, quoted in a diagnostic payload or
    # a log line, keeps neither large.
    return text if len(text) <= _TEXT_MAX else text[:_TEXT_MAX - 3] + "..."


class Error(Exception):
    # A message, payload or request that cannot be served. `code` is the CoAP response code
    # that answers it (0x80 is 4.00 Bad Request: class << 5 | detail), or None when no answer
    # is possible and the message must be rejected (RST) or ignored. The message, clipped,
    # is the diagnostic payload of the answer and ends its log line.
    def __init__(self, code, message):
        super().__init__(clip(message))
        self.code = code


def release(name):
    # Forgets the module lwm2m.<name> (a bootstrap after its Finish, a finished download), so
    # that its code and data can be collected once nothing else refers to them; the next use
    # imports it again.
    import sys

    sys.modules.pop("lwm2m." + name, None)
    globals().pop(name, None)
