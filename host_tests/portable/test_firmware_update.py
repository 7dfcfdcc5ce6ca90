# Firmware Update (object 5, lwm2m.firmware and lwm2m.download) over an in-memory sink: the
# TS state machine for push and pull, each failure's result, resume and the new image's
# trial. Portable: runs under pytest and in the MicroPython VM.
import binascii
import hashlib

import fakefs
from fakes import ACK, CON, GET, OBSERVE, POST, PUT, Peer, make_client, objects_dir
from lwm2m import coap, store
from lwm2m.firmware import Failed, Firmware
from lwm2m.model import load_definition

OPAQUE, TEXT = 42, 0
ETAG, BLOCK2, BLOCK1, SIZE2, SIZE1 = 4, 23, 27, 28, 60
CONTINUE, CHANGED, CONTENT = 0x5F, 0x44, 0x45
FILES = ("127.0.0.1", 5690)  # the file server of the pull tests
PROGRESS = "/flash/firmware.json"


class MemorySink:
    # The sink interface of lwm2m.firmware over a bytearray. Its packages are
    # b"PKG name version\n" + body + the SHA-256 of all that.
    def __init__(self, capacity=64 * 1024, outcome=None):
        self.data = bytearray()
        self.capacity = capacity
        self.offsets = []
        self._outcome = outcome
        self.applied = self.confirmed = self.rolled_back = 0

    def begin(self, size):
        if size is not None and size > self.capacity:
            raise Failed(2, "%d bytes do not fit in %d" % (size, self.capacity))
        self.data = bytearray()

    def write(self, offset, data):
        assert offset <= len(self.data), (offset, len(self.data))
        self.data = self.data[:offset] + data
        self.offsets.append(offset)
        if len(self.data) > self.capacity:
            raise Failed(2, "full")

    def resume(self, offset):
        return binascii.crc32(bytes(self.data[:offset])) if len(self.data) >= offset else None

    def finish(self):
        body, digest = bytes(self.data[:-32]), bytes(self.data[-32:])
        if hashlib.sha256(body).digest() != digest:
            raise Failed(5, "bad digest")
        if not body.startswith(b"PKG "):
            raise Failed(6, "not a package")
        name, version = body[4:body.index(b"\n")].decode().split(" ")
        return name, version

    def apply(self):
        self.applied += 1

    def outcome(self):
        return self._outcome

    def confirm(self):
        self.confirmed += 1

    def rollback(self):
        self.rolled_back += 1


def package(size, name="app", version="2.0"):
    body = b"PKG %s %s\n" % (name.encode(), version.encode())
    body += bytes(i & 0xFF for i in range(size - len(body) - 32))
    return body + hashlib.sha256(body).digest()


def setup(sink=None, progress=None, confirm_s=300, register=True):
    # A client with /5/0 on sink; registered at /rd/ab12 unless told not to.
    client, peer = make_client()
    client.model.define(load_definition(objects_dir() + "/5.json"))
    client.resets = []
    client.firmware = Firmware(client, sink or MemorySink(), lambda: client.resets.append(client.now), progress,
                               confirm_s)
    if register:
        client.poll(0)
        reg = peer.take_one()
        peer.answer(reg, 0x41, "/rd/ab12")
        client.poll(10)
        peer.take()
    return client, peer


def state(client):
    inst = client.model.instance(5, 0)
    return inst.get(3), inst.get(5)


def push(peer, image, now, szx=6, size1=True, blocks=None):
    # Writes /5/0/0 in Block1 blocks (the first `blocks` of them when given); returns the
    # answer codes.
    size = 16 << szx
    codes = []
    for num in range((len(image) + size - 1) // size if blocks is None else blocks):
        peer.mid += 1
        msg = coap.Message(CON, PUT, peer.mid, b"\x77", image[num * size:(num + 1) * size])
        msg.set_path("/5/0/0")
        msg.add(12, OPAQUE)
        msg.add(BLOCK1, coap.block_value(num, (num + 1) * size < len(image), szx))
        if num == 0 and size1:
            msg.add(SIZE1, len(image))
        peer.inject(msg)
        peer.client.poll(now)
        codes.append([m for m in peer.take() if m.mid == peer.mid][0].code)
        if codes[-1] != CONTINUE:
            break
    return codes


def test_a_pushed_package_is_downloaded_verified_and_applied_on_update():
    client, peer = setup()
    assert state(client) == (0, 0)
    assert peer.request(POST, "/5/0/2", 100).code == 0x85  # nothing downloaded yet
    image = package(5000)
    assert push(peer, image, 200) == [CONTINUE] * 4 + [CHANGED]
    sink = client.firmware.sink
    assert bytes(sink.data) == image and sink.offsets == [0, 1024, 2048, 3072, 4096]
    assert state(client) == (2, 0)
    inst = client.model.instance(5, 0)
    assert (inst.get(6), inst.get(7)) == ("app", "2.0")
    assert peer.request(POST, "/5/0/2", 300).code == CHANGED
    assert state(client) == (3, 0) and sink.applied == 0
    peer.settle(1000)
    assert client.resets == [] and sink.applied == 0  # the answer and notifications go first
    peer.settle(2400)
    assert sink.applied == 1 and client.resets == [2400]


def test_the_observed_state_goes_idle_downloading_downloaded_updating():
    client, peer = setup()
    first = peer.request(GET, "/5/0/3", 100, observe=0, token=b"\x53")
    assert first.payload == b"0"
    seen = []
    image = package(3000)
    size = 1024
    for num in range(3):
        push_one = coap.Message(CON, PUT, 0x100 + num, b"\x77", image[num * size:(num + 1) * size])
        push_one.set_path("/5/0/0")
        push_one.add(12, OPAQUE)
        push_one.add(BLOCK1, coap.block_value(num, num < 2, 6))
        peer.inject(push_one)
        seen += [m.payload for m in peer.settle(200 + num * 10) if m.token == b"\x53"]
    peer.request(POST, "/5/0/2", 300)
    seen += [m.payload for m in peer.others + peer.settle(310) if m.token == b"\x53"]
    assert seen == [b"1", b"2", b"3"]


def test_a_short_package_in_one_message_is_taken_too():
    client, peer = setup()
    image = package(600)
    assert peer.request(PUT, "/5/0/0", 100, image, cf=OPAQUE).code == CHANGED
    assert state(client) == (2, 0) and bytes(client.firmware.sink.data) == image


def test_a_corrupted_package_gets_result_5_and_an_unknown_one_6():
    client, peer = setup()
    image = bytearray(package(4000))
    image[2500] ^= 1
    assert push(peer, bytes(image), 100)[-1] == CHANGED
    assert state(client) == (0, 5)
    assert push(peer, b"ZIP" + package(3000)[3:], 200)[-1] == CHANGED
    assert state(client) == (0, 5)  # the digest no longer matches either
    body = b"ELF whatever\n" + b"\0" * 2000
    assert push(peer, body + hashlib.sha256(body).digest(), 300)[-1] == CHANGED
    assert state(client) == (0, 6)
    assert push(peer, package(2000), 400)[-1] == CHANGED and state(client) == (2, 0)  # result reset at the start


def test_an_oversized_package_gets_result_2_announced_or_not():
    client, peer = setup(MemorySink(capacity=4096))
    assert push(peer, package(10000), 100) == [0x8D]
    assert state(client) == (0, 2)
    assert push(peer, package(10000), 200, size1=False) == [CONTINUE] * 4 + [0x8D]
    assert state(client) == (0, 2)


def test_an_empty_package_or_uri_cancels_and_the_update_needs_downloaded():
    client, peer = setup()
    push(peer, package(3000), 100)
    assert state(client) == (2, 0)
    assert push(peer, package(2000), 110) == [0x85]  # a new push must cancel first
    assert peer.request(PUT, "/5/0/0", 120, b"\0", cf=OPAQUE).code == CHANGED
    assert state(client) == (0, 0)
    push(peer, package(3000), 130)
    assert peer.request(PUT, "/5/0/1", 140, b"", cf=TEXT).code == CHANGED
    assert state(client) == (0, 0)
    assert peer.request(POST, "/5/0/2", 150).code == 0x85
    # Cancelling in the middle of a push: the next block is refused, the state stays Idle.
    image = package(5000)
    codes = push(peer, image, 160, blocks=2)
    assert codes == [CONTINUE, CONTINUE] and state(client) == (1, 0)
    assert peer.request(PUT, "/5/0/0", 170, b"", cf=OPAQUE).code == CHANGED
    msg = coap.Message(CON, PUT, 0x999, b"\x77", image[2048:3072])
    msg.set_path("/5/0/0")
    msg.add(12, OPAQUE)
    msg.add(BLOCK1, coap.block_value(2, True, 6))
    peer.inject(msg)
    client.poll(180)
    assert [m.code for m in peer.take() if m.mid == 0x999] == [0x88] and state(client) == (0, 0)


def test_uris_this_client_cannot_pull_get_results_9_and_7():
    client, peer = setup()
    assert peer.request(PUT, "/5/0/1", 100, b"https://example.com/fw.bin", cf=TEXT).code == CHANGED
    assert state(client) == (0, 9)
    assert peer.request(PUT, "/5/0/1", 110, b"not a uri", cf=TEXT).code == CHANGED
    assert state(client) == (0, 7)
    assert peer.request(PUT, "/5/0/1", 120, b"coap://fw.example:abc/fw", cf=TEXT).code == CHANGED
    assert state(client) == (0, 7)


class FileServer(Peer):
    # A CoAP file server in memory: answers the client's Block2 GETs of /fw from `image`.
    def __init__(self, client, image, etag=b"\x01"):
        Peer.__init__(self, client, client.transport, FILES)
        self.image = image
        self.etag = etag
        self.asked = []  # the block numbers asked for, in order
        self.drop = ()  # block numbers whose first request goes unanswered

    def serve(self, now, rounds=400):
        # Answers GETs until the client stops asking; returns the requests it saw.
        for _ in range(rounds):
            self.client.poll(now)
            requests = self.take()
            if not requests:
                return
            for req in requests:
                num, _more, szx = req.block(BLOCK2)
                self.asked.append(num)
                if num in self.drop:
                    self.drop = tuple(n for n in self.drop if n != num)
                    continue
                size = 16 << szx
                part = self.image[num * size:(num + 1) * size]
                answer = coap.Message(ACK, CONTENT, req.mid, req.token, part)
                answer.add(ETAG, self.etag)
                answer.add(BLOCK2, coap.block_value(num, (num + 1) * size < len(self.image), szx))
                if req.get(SIZE2) is not None:
                    answer.add(SIZE2, len(self.image))
                self.inject(answer)
            now += 10


def test_a_pull_fetches_every_block_and_is_verified():
    client, peer = setup()
    image = package(6000)
    files = FileServer(client, image)
    assert peer.request(PUT, "/5/0/1", 100, b"coap://127.0.0.1:5690/fw", cf=TEXT).code == CHANGED
    assert state(client) == (1, 0)
    files.serve(110)
    assert files.asked == [0, 1, 2, 3, 4, 5] and bytes(client.firmware.sink.data) == image
    assert state(client) == (2, 0) and client.model.instance(5, 0).get(1) == "coap://127.0.0.1:5690/fw"
    import sys

    assert "lwm2m.download" not in sys.modules  # unloaded once done


def test_a_pull_whose_server_stops_answering_gets_result_4():
    client, peer = setup()
    peer.request(PUT, "/5/0/1", 100, b"coap://127.0.0.1:5690/fw", cf=TEXT)
    now = 100
    while state(client)[0] == 1 and now < 4000000:
        now += 1000
        client.poll(now)
    assert state(client) == (0, 4)


def test_a_pull_asks_again_for_a_block_whose_answer_was_lost():
    client, peer = setup()
    files = FileServer(client, package(3000))
    files.drop = (1,)
    peer.request(PUT, "/5/0/1", 100, b"coap://127.0.0.1:5690/fw", cf=TEXT)
    now = 110
    while state(client)[0] == 1 and now < 100000:
        files.serve(now, 1)
        now += 500
    assert state(client) == (2, 0) and files.asked == [0, 1, 1, 2]


def test_a_pull_cut_by_a_restart_goes_on_from_the_next_block():
    fs = fakefs.FakeFS("littlefs")

    def scenario():
        client, peer = setup(progress=PROGRESS)
        image = package(8000)
        files = FileServer(client, image)
        peer.request(PUT, "/5/0/1", 100, b"coap://127.0.0.1:5690/fw", cf=TEXT)
        files.serve(110, rounds=4)  # blocks 0 to 3 answered
        client.poll(150)  # block 3 written, block 4 asked for: then the board restarts
        files.take()
        assert files.asked == [0, 1, 2, 3]
        sink = client.firmware.sink
        assert store.load(PROGRESS)["pull"]["offset"] == 4096
        again, _peer = setup(sink, PROGRESS, register=False)
        assert state(again) == (1, 0)
        files2 = FileServer(again, image)
        files2.serve(200)
        assert files2.asked == [4, 5, 6, 7]  # block 4 was asked before the cut, never written
        assert state(again) == (2, 0) and bytes(sink.data) == image
        assert "pull" not in store.load(PROGRESS)
        # The same with a server whose file changed meanwhile (a new ETag): it starts over.
        third, peer3 = setup(MemorySink(), PROGRESS)
        peer3.request(PUT, "/5/0/1", 300, b"coap://127.0.0.1:5690/fw", cf=TEXT)
        FileServer(third, image).serve(310, rounds=3)
        third.poll(350)
        fourth, _p = setup(third.firmware.sink, PROGRESS, register=False)
        changed = FileServer(fourth, package(8000, version="2.1"), etag=b"\x02")
        changed.serve(400)
        assert changed.asked[:2] == [3, 0] and state(fourth) == (2, 0)
        assert fourth.model.instance(5, 0).get(7) == "2.1"

    fs.run(store, scenario)


def test_a_new_image_is_confirmed_once_registered_and_reports_success():
    client, peer = setup(MemorySink(outcome=(1, "2.0")), register=False)
    assert state(client) == (3, 0)
    client.poll(0)
    reg = peer.take_one()
    assert client.firmware.sink.confirmed == 0
    peer.answer(reg, 0x41, "/rd/ab12")
    client.poll(10)
    client.poll(20)
    assert client.firmware.sink.confirmed == 1 and state(client) == (0, 1)
    assert client.model.instance(3, 0).get(3) == "2.0"


def test_a_new_image_that_never_registers_is_rolled_back():
    client, peer = setup(MemorySink(outcome=(1, "2.0")), confirm_s=60, register=False)
    now = 0
    while not client.resets and now < 120000:
        client.poll(now)
        peer.take()
        now += 1000
    sink = client.firmware.sink
    assert sink.rolled_back == 1 and sink.confirmed == 0 and 60000 <= client.resets[0] <= 62000
    after, _peer = setup(MemorySink(outcome=(8, "2.0")), register=False)
    assert state(after) == (0, 8) and after.model.instance(3, 0).get(3) == "1.29.0"
