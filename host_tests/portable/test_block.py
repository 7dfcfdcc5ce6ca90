# Block-wise transfers (RFC 7959, lwm2m.block) through the client: large answers in Block2,
# large writes in Block1 (reassembled or streamed), and a Register too long for one block.
# Portable: runs under pytest and in the MicroPython VM.
from fakes import ACK, CON, GET, OBSERVE, POST, PUT, make_client, registered
from lwm2m import coap, tlv

TEXT, TLV, OPAQUE = 0, 11542, 42
ETAG, BLOCK2, BLOCK1, SIZE2, SIZE1 = 4, 23, 27, 28, 60
CONTINUE, CHANGED, CONTENT = 0x5F, 0x44, 0x45
RESOURCE = 3


def _request(peer, code, path, now, payload=b"", cf=None, options=()):
    # A CON request with extra (number, value) options; returns the client's answer.
    peer.mid += 1
    msg = coap.Message(CON, code, peer.mid, b"\x42", payload)
    msg.set_path(path)
    if cf is not None:
        msg.add(12, cf)
    for number, value in options:
        msg.add(number, value)
    peer.inject(msg)
    peer.client.poll(now)
    answers = [m for m in peer.take() if m.type == ACK and m.mid == peer.mid]
    assert len(answers) == 1
    return answers[0]


def _lights(client, count, name_size):
    # Light Control instances with long Application Types: a Read of /3311 then needs blocks.
    for i in range(count):
        client.model.add_instance(3311, i, {5850: False, 5750: "%d:" % i + "x" * name_size})


def _fetch(peer, path, now, szx=6, accept=None, answers=()):
    # Every block of a Block2 answer, asked for by NUM after the answers given; returns (all
    # answers, the reassembled payload).
    answers = list(answers)
    num = len(answers)
    while True:
        options = [(BLOCK2, coap.block_value(num, False, szx))]
        if accept is not None:
            options.append((17, accept))
        answer = _request(peer, GET, path, now, options=options)
        assert answer.code == CONTENT, coap.code_name(answer.code)
        answers.append(answer)
        got, more, got_szx = answer.block(BLOCK2)
        assert (got, got_szx) == (num, szx)
        if not more:
            return answers, b"".join(a.payload for a in answers)
        num += 1


def test_a_large_read_is_answered_block_by_block_from_one_representation():
    client, peer, _reg = registered()
    _lights(client, 6, 300)
    whole = _request(peer, GET, "/3311", 100, options=[(17, TLV)])
    assert whole.block(BLOCK2) == (0, True, 6) and len(whole.payload) == 1024
    assert whole.get(SIZE2) > 1024 and whole.get(12) == TLV
    etag = whole.get(ETAG)
    client.model.instance(3311, 0).set(5750, "changed meanwhile")
    answers, payload = _fetch(peer, "/3311", 110, accept=TLV, answers=[whole])
    assert len(payload) == whole.get(SIZE2)
    assert [a.get(ETAG) for a in answers[1:]] == [etag] * (len(answers) - 1)
    assert all(a.get(12) == TLV for a in answers)
    records = tlv.decode(payload)
    assert records[0][1] == 0 and len(records) == 6  # six instances, as they were at block 0
    # Asked for anew from block 0, the answer is the new representation with a new ETag.
    again, payload = _fetch(peer, "/3311", 120, accept=TLV)
    assert again[0].get(ETAG) != etag and b"changed meanwhile" in payload


def test_the_server_may_ask_for_smaller_blocks_and_a_block_past_the_end_is_refused():
    client, peer, _reg = registered()
    _lights(client, 1, 100)
    answers, payload = _fetch(peer, "/3311/0", 100, szx=2, accept=TLV)  # 64-byte blocks
    assert all(len(a.payload) == 64 for a in answers[:-1]) and len(answers) > 1
    assert payload == _request(peer, GET, "/3311/0", 101, options=[(17, TLV)]).payload
    past = _request(peer, GET, "/3311/0", 102, options=[(BLOCK2, coap.block_value(40, False, 2)), (17, TLV)])
    assert past.code == 0x82  # 4.02 Bad Option (RFC 7959 2.2)


def test_a_small_answer_has_no_block_option_unless_asked():
    client, peer, _reg = registered()
    plain = _request(peer, GET, "/3/0/0", 100)
    assert plain.block(BLOCK2) is None and plain.payload == b"Test Maker"
    asked = _request(peer, GET, "/3/0/0", 101, options=[(BLOCK2, coap.block_value(0, False, 6))])
    assert asked.block(BLOCK2) == (0, False, 6) and asked.payload == b"Test Maker"


def _write_blocks(peer, path, value, now, szx=4, cf=TEXT, first=0, size1=None):
    # PUTs value in blocks from block `first`; returns the answers.
    size = 16 << szx
    answers = []
    for num in range(first, (len(value) + size - 1) // size):
        part = value[num * size:(num + 1) * size]
        more = (num + 1) * size < len(value)
        options = [(BLOCK1, coap.block_value(num, more, szx))]
        if num == 0 and size1 is not None:
            options.append((SIZE1, size1))
        answers.append(_request(peer, PUT, path, now, part, cf, options))
    return answers


def test_a_block1_write_is_acknowledged_block_by_block_and_applied_at_the_end():
    client, peer, _reg = registered()
    _lights(client, 1, 1)
    value = b"A" * 200 + b"B" * 200 + b"C" * 50
    answers = _write_blocks(peer, "/3311/0/5750", value, 100, szx=3)
    assert [a.code for a in answers] == [CONTINUE] * 3 + [CHANGED]
    assert [a.block(BLOCK1) for a in answers] == [(0, True, 3), (1, True, 3), (2, True, 3), (3, False, 3)]
    assert client.model.instance(3311, 0).get(5750) == value.decode()


def test_out_of_order_blocks_get_4_08_and_a_repeated_block_is_harmless():
    client, peer, _reg = registered()
    _lights(client, 1, 1)
    value = b"0123456789abcdef" * 20  # 320 bytes: 5 blocks of 64
    assert _write_blocks(peer, "/3311/0/5750", value, 100, szx=2, first=3)[0].code == 0x88  # no block 0 yet
    first = _request(peer, PUT, "/3311/0/5750", 101, value[:64], TEXT, [(BLOCK1, coap.block_value(0, True, 2))])
    assert first.code == CONTINUE
    skipped = _request(peer, PUT, "/3311/0/5750", 102, value[128:192], TEXT, [(BLOCK1, coap.block_value(2, True, 2))])
    assert skipped.code == 0x88
    # The transfer went on: block 1, then block 1 again (a new message, as after a lost ACK).
    for _ in range(2):
        again = _request(peer, PUT, "/3311/0/5750", 103, value[64:128], TEXT, [(BLOCK1, coap.block_value(1, True, 2))])
        assert again.code == CONTINUE
    rest = _write_blocks(peer, "/3311/0/5750", value, 104, szx=2, first=2)
    assert rest[-1].code == CHANGED
    assert client.model.instance(3311, 0).get(5750) == value.decode()


def test_a_new_block_0_restarts_the_transfer():
    client, peer, _reg = registered()
    _lights(client, 1, 1)
    _write_blocks(peer, "/3311/0/5750", b"old" * 100, 100)[:2]
    first = _request(peer, PUT, "/3311/0/5750", 101, b"n" * 256, TEXT, [(BLOCK1, coap.block_value(0, True, 4))])
    assert first.code == CONTINUE
    last = _request(peer, PUT, "/3311/0/5750", 102, b"ew", TEXT, [(BLOCK1, coap.block_value(1, False, 4))])
    assert last.code == CHANGED
    assert client.model.instance(3311, 0).get(5750) == "n" * 256 + "ew"


def test_a_write_larger_than_the_buffer_gets_4_13_with_size1_and_changes_nothing():
    client, peer, _reg = registered(limits={"block_bytes": 512})
    _lights(client, 1, 1)
    announced = _write_blocks(peer, "/3311/0/5750", b"x" * 1000, 100, size1=1000)
    assert announced[0].code == 0x8D and announced[0].get(SIZE1) == 512
    unannounced = _write_blocks(peer, "/3311/0/5750", b"x" * 1000, 101)
    assert [a.code for a in unannounced[:3]] == [CONTINUE, CONTINUE, 0x8D] and unannounced[2].get(SIZE1) == 512
    assert unannounced[3].code == 0x88  # the transfer was dropped
    assert client.model.instance(3311, 0).get(5750) == "0:x"


def test_a_short_block_that_says_more_follow_is_a_bad_request():
    client, peer, _reg = registered()
    _lights(client, 1, 1)
    answer = _request(peer, PUT, "/3311/0/5750", 100, b"short", TEXT, [(BLOCK1, coap.block_value(0, True, 4))])
    assert answer.code == 0x80


def test_a_streamed_resource_gets_each_block_as_it_comes():
    client, peer, _reg = registered()
    _lights(client, 1, 1)
    pieces = []
    client.stream("/3311/0/5750", lambda offset, data, last, size: pieces.append((offset, bytes(data), last, size)))
    value = bytes(range(256)) * 3
    answers = _write_blocks(peer, "/3311/0/5750", value, 100, szx=6, cf=OPAQUE, size1=len(value))
    assert [a.code for a in answers] == [CHANGED]  # 768 bytes: one block of 1024
    answers = _write_blocks(peer, "/3311/0/5750", value, 101, szx=4, cf=OPAQUE, size1=len(value))
    assert [a.code for a in answers] == [CONTINUE] * 2 + [CHANGED]
    assert pieces[1:] == [(0, value[:256], False, 768), (256, value[256:512], False, None), (512, value[512:], True, None)]
    assert client.model.instance(3311, 0).get(5750) == "0:x"  # streamed, never stored
    tlv_write = _write_blocks(peer, "/3311/0/5750", value, 102, szx=4, cf=TLV)
    assert tlv_write[0].code == 0x8F  # 4.15: a stream takes octets


def test_a_stream_that_refuses_a_block_ends_the_transfer():
    from lwm2m import Error

    client, peer, _reg = registered()
    _lights(client, 1, 1)

    def refuse(offset, data, last, size):
        if offset:
            raise Error(0x80, "bad block")

    client.stream("/3311/0/5750", refuse)
    answers = _write_blocks(peer, "/3311/0/5750", b"z" * 700, 100, szx=4, cf=OPAQUE)
    assert [a.code for a in answers] == [CONTINUE, 0x80, 0x88]


def test_a_register_too_long_for_one_block_goes_in_block1_at_the_size_the_server_asks():
    client, peer = make_client()
    for i in range(120):
        client.model.add_instance(3303, i, {5701: "Cel"})
    links = client.links()
    assert len(links) > 1024
    client.poll(0)
    first = peer.take_one()
    assert first.block(BLOCK1) == (0, True, 6) and first.get(SIZE1) == len(links)
    assert first.payload == links[:1024] and first.query()["ep"] == "test-ep"
    # The server asks for 512-byte blocks: the next is block 2 of 512 bytes.
    answer = coap.Message(ACK, CONTINUE, first.mid, first.token)
    answer.add(BLOCK1, coap.block_value(0, True, 5))
    peer.inject(answer)
    client.poll(10)
    parts = [first]
    while True:
        part = peer.take_one()
        parts.append(part)
        num, more, szx = part.block(BLOCK1)
        assert szx == 5 and num == 1 + len(parts) - 1 and part.token == first.token
        if not more:
            break
        answer = coap.Message(ACK, CONTINUE, part.mid, part.token)
        answer.add(BLOCK1, coap.block_value(num, True, 5))
        peer.inject(answer)
        client.poll(20)
    assert b"".join(p.payload for p in parts) == links
    peer.answer(parts[-1], 0x41, "/rd/big")
    client.poll(30)
    assert client.servers[0].location == "/rd/big"


def test_an_update_whose_object_list_outgrew_a_block_is_sent_in_block1():
    client, peer, _reg = registered()
    for i in range(150):
        client.model.add_instance(3303, i, {5701: "Cel"})
    client.poll(1000)
    update = peer.take_one()
    assert update.path() == "/rd/ab12" and update.block(BLOCK1) == (0, True, 6)
    assert update.get(SIZE1) == len(client.links()) and update.payload == client.links()[:1024]


def test_a_notification_larger_than_a_block_sends_its_first_block_and_serves_the_rest():
    client, peer, _reg = registered()
    _lights(client, 3, 400)
    first = peer.request(GET, "/3311", 100, accept=TLV, observe=0, token=b"\x0b")
    assert first.block(BLOCK2)[1] and first.get(OBSERVE) is not None
    client.model.instance(3311, 1).set(5850, True)
    note = [m for m in peer.settle(200) if m.token == b"\x0b"][0]
    assert note.get(OBSERVE) > first.get(OBSERVE) and note.block(BLOCK2) == (0, True, 6)
    payload = note.payload
    num = 1
    while True:
        part = _request(peer, GET, "/3311", 230, options=[(BLOCK2, coap.block_value(num, False, 6)), (17, TLV)])
        assert part.get(ETAG) == note.get(ETAG) and part.get(OBSERVE) is None
        payload += part.payload
        if not part.block(BLOCK2)[1]:
            break
        num += 1
    assert payload == _request(peer, GET, "/3311", 240, options=[(17, TLV)]).payload[:0] + payload
    assert len(tlv.decode(payload)) == 3 and b"\x01" in payload
