# Codec throughput, the same code on CPython (through the shim) and in the MicroPython VM:
# decode+encode of typical LwM2M CoAP messages and of the TLV Read /3/0 answer.
import time

from lwm2m import coap, tlv

# TS Core's example answer to Read /3/0 (see spec-notes).
TLV_DEVICE = (
    b"\xc8\x00\x14Open Mobile Alliance"
    b"\xc8\x01\x16Lightweight M2M Client"
    b"\xc8\x02\x09345000123"
    b"\xc3\x031.0"
    b"\x86\x06\x41\x00\x01\x41\x01\x05"
    b"\x88\x07\x08\x42\x00\x0e\xd8\x42\x01\x13\x88"
    b"\x87\x08\x41\x00\x7d\x42\x01\x03\x84"
    b"\xc1\x09\x64\xc1\x0a\x0f"
    b"\x83\x0b\x41\x00\x00"
    b"\xc4\x0d\x51\x82\x42\x8f"
    b"\xc6\x0e+02:00"
    b"\xc1\x10U"
)


def _message(mtype, code, mid, token, options, payload=b""):
    msg = coap.Message(mtype, code, mid, token, payload)
    for number, value in options:
        msg.add(number, value)
    return bytes(coap.encode(msg))


def messages():
    # Register, its answer, a read and its TLV answer, a notification, a block of a large
    # answer and an empty ACK: what a client decodes and encodes most.
    link = b'</>;rt="oma.lwm2m";ct=110,</1/0>,</3/0>,</4/0>,</3303/0>;ver=1.1'
    return [
        _message(0, 0x02, 0x1001, b"\x01\x02\x03\x04\x05\x06\x07\x08",
                 [(11, "rd"), (12, 40), (15, "ep=esp32-a1b2c3"), (15, "lt=300"),
                  (15, "lwm2m=1.1"), (15, "b=U")], link),
        _message(2, 0x41, 0x1001, b"\x01\x02\x03\x04\x05\x06\x07\x08", [(8, "rd"), (8, "5a3f")]),
        _message(0, 0x01, 0x2002, b"\x11\x22\x33\x44", [(11, "3"), (11, "0"), (17, 11542)]),
        _message(2, 0x45, 0x2002, b"\x11\x22\x33\x44", [(12, 11542)], TLV_DEVICE),
        _message(1, 0x45, 0x3003, b"\xaa\xbb", [(6, 12345), (12, 0)], b"23.5"),
        _message(2, 0x45, 0x4004, b"\xcc", [(12, 42), (23, coap.block_value(3, True, 6)), (28, 4000)],
                 bytes(1024)),
        _message(2, 0x00, 0x5005, b"", []),
    ]


def _rate(func, rounds):
    # Operations per second of func(), which does `rounds` operations.
    start = time.ticks_us()
    func()
    elapsed = time.ticks_diff(time.ticks_us(), start)
    return rounds * 1000000 // max(elapsed, 1)


def coap_rate(wires, rounds):
    def run():
        for _ in range(rounds // len(wires)):
            for wire in wires:
                coap.encode(coap.decode(wire))

    return _rate(run, rounds // len(wires) * len(wires))


def tlv_rate(rounds):
    def run():
        for _ in range(rounds):
            tlv.encode(tlv.decode(TLV_DEVICE))

    return _rate(run, rounds)


def main(args):
    rounds = int(args[0]) if args else 7000
    print("coap_per_s=%d" % coap_rate(messages(), rounds))
    print("tlv_per_s=%d" % tlv_rate(rounds // 7))
