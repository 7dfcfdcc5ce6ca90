# Properties of the CoAP codec over generated messages and arbitrary bytes (CPython only).
from hypothesis import given, settings
from hypothesis import strategies as st

from lwm2m import coap
from lwm2m.coap import MessageError

# Allowed value lengths of the options RFC 7252 (5.10), 7641 and 7959 define, written out
# here independently of the codec's own table.
KNOWN_LENGTHS = {
    1: (0, 8), 3: (1, 255), 4: (1, 8), 5: (0, 0), 6: (0, 3), 7: (0, 2), 8: (0, 255),
    11: (0, 255), 12: (0, 2), 14: (0, 4), 15: (0, 255), 17: (0, 2), 20: (0, 255),
    23: (0, 3), 27: (0, 3), 28: (0, 4), 35: (1, 1034), 39: (1, 255), 60: (0, 4),
}


@st.composite
def option(draw):
    number = draw(st.one_of(st.sampled_from(sorted(KNOWN_LENGTHS)), st.integers(0, 65535)))
    low, high = KNOWN_LENGTHS.get(number, (0, 300))
    return number, draw(st.binary(min_size=low, max_size=min(high, 300)))


@st.composite
def message(draw):
    mtype = draw(st.integers(0, 3))
    code = draw(st.integers(0, 255))
    mid = draw(st.integers(0, 65535))
    if code == 0:  # an empty message is the 4-byte header alone
        return coap.Message(mtype, 0, mid)
    msg = coap.Message(mtype, code, mid, draw(st.binary(max_size=8)), draw(st.binary(max_size=64)))
    for number, value in draw(st.lists(option(), max_size=12)):
        msg.add(number, value)
    return msg


def fields(msg):
    return msg.type, msg.code, msg.mid, msg.token, msg.options, msg.payload


@settings(max_examples=3000, deadline=None)
@given(message())
def test_encode_then_decode_gives_the_same_message(msg):
    assert fields(coap.decode(coap.encode(msg))) == fields(msg)


@settings(max_examples=3000, deadline=None)
@given(message())
def test_decode_then_encode_gives_the_same_bytes(msg):
    wire = bytes(coap.encode(msg))
    assert bytes(coap.encode(coap.decode(wire))) == wire


@settings(max_examples=1000, deadline=None)
@given(st.integers(0, (1 << 20) - 1), st.booleans(), st.integers(0, 6))
def test_block_values_round_trip(num, more, szx):
    msg = coap.Message(0, 1, 1)
    msg.add(23, coap.block_value(num, more, szx))
    assert coap.decode(coap.encode(msg)).block(23) == (num, more, szx)


@settings(max_examples=12000, deadline=None)
@given(st.one_of(st.binary(max_size=80), message().map(lambda m: bytes(coap.encode(m))).flatmap(
    lambda wire: st.tuples(st.integers(0, len(wire)), st.integers(0, 255)).map(
        lambda cut: wire[: cut[0]] + bytes((cut[1],)) + wire[cut[0] + 1:]))))
def test_any_bytes_give_a_message_or_a_message_error(data):
    # Arbitrary bytes and valid messages with one byte changed: decode either succeeds or
    # raises MessageError, whose code says how to answer.
    try:
        msg = coap.decode(data)
    except MessageError as err:
        assert err.code in (None, 0x80, 0x82)
        if err.code is not None:
            assert err.type == 0 and 1 <= data[1] <= 31
    else:
        assert isinstance(msg, coap.Message)
