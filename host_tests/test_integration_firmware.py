# Firmware update over the air (object 5) of the client on this host (tools/host_run.py
# with --state-dir, real UDP on 127.0.0.1): Leshan 2.0.0-M15 pushes application bundles
# (firmware/BUNDLE.md, tools/bundle.py) with a Write of /5/0/0 that Californium sends in
# Block1 blocks, and executes Update; pulls come from aiocoap's file server (aiocoap-fileserver)
# with Block2, directly, through a relay that loses 30 % of the datagrams, and across a
# client restart. The host board's sink (boards/host/board.py) is the Pico W's bundle sink
# and swap, on a folder nothing runs from; host_run restarts itself where a board resets.
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import board  # boards/host/board.py: what the host run reports as the device
from peers.host import free_udp_port, python, wait_until
from peers.leshan_server import LeshanServer, available
from peers.relay import UP, UdpRelay

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import bundle  # noqa: E402  (tools/bundle.py)

LIFETIME = 300
BLOCK2 = 23


def make_bundle(folder, version, size):
    # A bundle of about `size` bytes: main.py and a filler object file; returns (path, filler).
    folder.mkdir(parents=True, exist_ok=True)
    main = folder / "main.py"
    main.write_text("print('version %s')\n" % version)
    filler = folder / "filler.bin"
    filler.write_bytes(hashlib.sha256(version.encode()).digest() * (size // 32))
    path = folder / ("bundle-%s.bin" % version)
    path.write_bytes(bundle.pack([("main.py", main), ("objects/filler.bin", filler)], "host", version))
    return path, filler


@pytest.fixture(scope="module")
def leshan():
    reason = available()
    if reason:
        pytest.fail(reason)
    server = LeshanServer(coap_port=free_udp_port())
    yield server
    server.close()


def start(leshan, hosts, tag, state, extra=()):
    ep = "fw-%s-%d" % (tag, os.getpid())
    mark = leshan.mark()
    run = hosts.start(leshan.coap_uri, ep, LIFETIME, "1.1", ["--state-dir", str(state), "--ack-timeout", "1"] + list(extra))
    leshan.wait_event("registered", 15, start=mark, endpoint=ep)
    return run, ep


def wait_value(leshan, ep, path, expected, timeout):
    seen = []

    def check():
        try:
            seen.append(leshan.value(ep, path, timeout=2))
        except Exception as exc:  # not registered yet (a restart), or a timeout
            seen.append(repr(exc))
        return seen[-1] == expected

    assert wait_until(check, timeout, 0.5), "%s: %r" % (path, seen[-5:])


def test_leshan_pushes_a_256_kib_bundle_that_is_installed_on_update_and_confirmed(leshan, hosts, tmp_path):
    state = tmp_path / "state"
    image, filler = make_bundle(tmp_path / "pkg", "2.0.1", 256 * 1024)
    run, ep = start(leshan, hosts, "push", state)
    assert leshan.value(ep, "/5/0/3") == 0 and leshan.value(ep, "/5/0/9") == 2
    mark = leshan.mark()
    leshan.observe(ep, "/5/0/3")
    started = time.monotonic()
    answer = leshan.command("write", ep, "/5/0/0", file=str(image), format="OPAQUE", timeout=120)
    pushed_s = time.monotonic() - started
    assert answer["code"] == "CHANGED", answer
    print("pushed %d bytes in %.1f s" % (image.stat().st_size, pushed_s))
    assert leshan.value(ep, "/5/0/3") == 2 and leshan.value(ep, "/5/0/7") == "2.0.1"
    assert leshan.value(ep, "/5/0/6") == "micropython-lwm2m"
    unpacked = state / "app" / "update" / "new" / "objects" / "filler.bin"
    assert hashlib.sha256(unpacked.read_bytes()).digest() == hashlib.sha256(filler.read_bytes()).digest()
    # Californium split it: the client logged one request line per block, 2.31 but the last.
    assert run.count_log(r"PUT /5/0/0 -> 2\.31 Continue") >= 255
    restart = run.mark()
    again = leshan.mark()
    assert leshan.execute(ep, "/5/0/2")["code"] == "CHANGED"
    run.wait_log(r"^rebooting$", 10, restart)
    run.wait_log(r"update: 2\.0\.1 installed", 20, restart)
    leshan.wait_event("registered", 20, start=again, endpoint=ep)
    wait_value(leshan, ep, "/5/0/5", 1, 15)
    assert leshan.value(ep, "/3/0/3") == "2.0.1" and leshan.value(ep, "/5/0/3") == 0
    assert (state / "app" / "main.py").read_text() == "print('version 2.0.1')\n"
    states = [n["content"]["value"] for n in leshan.events("notification", mark, ep) if n["path"] == "/5/0/3"]
    assert states[:3] == [1, 2, 3], states


def test_a_new_version_that_never_registers_is_rolled_back_and_reports_result_8(hosts, tmp_path):
    # A Leshan of its own: it is stopped while the new version starts.
    state = tmp_path / "state"
    image, _filler = make_bundle(tmp_path / "pkg", "3.0", 8 * 1024)
    leshan = LeshanServer(coap_port=free_udp_port())
    try:
        _rollback(leshan, hosts, state, image)
    finally:
        leshan.close()


def _rollback(leshan, hosts, state, image):
    run, ep = start(leshan, hosts, "rollback", state, ["--confirm-s", "4"])
    assert leshan.command("write", ep, "/5/0/0", file=str(image), format="OPAQUE", timeout=30)["code"] == "CHANGED"
    mark = run.mark()
    assert leshan.execute(ep, "/5/0/2")["code"] == "CHANGED"
    run.wait_log(r"^rebooting$", 10, mark)
    # The server is gone while the new version starts: it cannot register within 4 s.
    port = leshan.coap_port
    leshan.close()
    try:
        run.wait_log(r"firmware: 3\.0 did not register in time: rolling back", 20, mark)
        run.wait_log(r"update: 3\.0 rolled back", 20, mark)
    finally:
        back = LeshanServer(coap_port=port)
    try:
        back.wait_event("registered", 30, endpoint=ep)
        assert back.value(ep, "/5/0/5") == 8 and back.value(ep, "/5/0/3") == 0
        assert back.value(ep, "/3/0/3") == board.firmware_version()
    finally:
        back.close()


class FileServer:
    # aiocoap's file server (aiocoap-fileserver) serving a folder on 127.0.0.1.
    def __init__(self, folder):
        self.port = free_udp_port()
        self.proc = subprocess.Popen([python(), "-m", "aiocoap.cli.fileserver", "--bind", "127.0.0.1:%d" % self.port,
                                      str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # it binds at once; give the interpreter time to start

    def close(self):
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def files(tmp_path):
    folder = tmp_path / "files"
    folder.mkdir()
    server = FileServer(folder)
    server.folder = folder
    yield server
    server.close()


def block_requests(relay):
    # {Block2 NUM: {MIDs}} of the GETs that went through the relay to the file server.
    import aiocoap

    asked = {}
    for record in relay.seen(UP):
        msg = aiocoap.Message.decode(record.data)
        if msg.code == aiocoap.GET and msg.opt.block2 is not None:
            asked.setdefault(msg.opt.block2.block_number, set()).add(msg.mid)
    return asked


def pull(leshan, ep, uri):
    assert leshan.write(ep, "/5/0/1", uri, "TEXT")["code"] == "CHANGED"


def test_a_pull_from_aiocoap_fileserver_is_downloaded_and_verified(leshan, hosts, tmp_path, files):
    image, filler = make_bundle(files.folder, "4.0", 64 * 1024)
    run, ep = start(leshan, hosts, "pull", tmp_path / "state")
    pull(leshan, ep, "coap://127.0.0.1:%d/%s" % (files.port, image.name))
    wait_value(leshan, ep, "/5/0/3", 2, 30)
    assert leshan.value(ep, "/5/0/7") == "4.0" and leshan.value(ep, "/5/0/5") == 0
    unpacked = tmp_path / "state" / "app" / "update" / "new" / "objects" / "filler.bin"
    assert unpacked.read_bytes() == filler.read_bytes()
    # A file the server does not have: Invalid URI (7); another scheme: Unsupported protocol (9).
    pull(leshan, ep, "")
    pull(leshan, ep, "coap://127.0.0.1:%d/missing.bin" % files.port)
    wait_value(leshan, ep, "/5/0/5", 7, 20)
    pull(leshan, ep, "")
    pull(leshan, ep, "https://127.0.0.1/%s" % image.name)
    assert leshan.value(ep, "/5/0/5") == 9 and leshan.value(ep, "/5/0/3") == 0


def test_a_pull_through_30_percent_loss_completes(leshan, hosts, tmp_path, files):
    image, filler = make_bundle(files.folder, "4.1", 24 * 1024)
    relay = UdpRelay(("127.0.0.1", files.port), loss=0.3, seed=7, log=None)
    try:
        run, ep = start(leshan, hosts, "lossy", tmp_path / "state", ["--ack-timeout", "0.2"])
        pull(leshan, ep, "coap://127.0.0.1:%d/%s" % (relay.port, image.name))
        wait_value(leshan, ep, "/5/0/3", 2, 120)
        dropped = [r for r in relay.seen() if r.dropped]
        assert len(dropped) > 10 and leshan.value(ep, "/5/0/7") == "4.1"
        assert sorted(block_requests(relay)) == list(range(25))  # 24 KiB and a bit: 25 blocks
    finally:
        relay.close()


def test_a_pull_cut_by_a_restart_resumes_at_the_next_block(leshan, hosts, tmp_path, files):
    image, filler = make_bundle(files.folder, "4.2", 128 * 1024)
    state = tmp_path / "state"
    relay = UdpRelay(("127.0.0.1", files.port), log=None)
    try:
        run, ep = start(leshan, hosts, "resume", state)
        pull(leshan, ep, "coap://127.0.0.1:%d/%s" % (relay.port, image.name))
        assert wait_until(lambda: len(block_requests(relay)) >= 40, 30)
        relay.set_loss(1.0, 0)  # the file server is cut off, then the board loses power
        time.sleep(0.3)
        run.terminate(9)
        run.wait_exit(10)
        relay.set_loss(0.0, 0)
        before = block_requests(relay)
        again = hosts.start(leshan.coap_uri, ep, LIFETIME, "1.1", ["--state-dir", str(state), "--ack-timeout", "1"])
        again.wait_log(r"firmware: downloading .* from byte [1-9]", 15)
        wait_value(leshan, ep, "/5/0/3", 2, 60)
        asked = block_requests(relay)
        twice = [num for num, mids in asked.items() if len(mids) > 1]
        assert len(twice) <= 1 and sorted(asked) == list(range(129)), (twice, sorted(before))
        assert min(set(asked) - set(before)) >= max(before)  # it went on from where it was
        unpacked = state / "app" / "update" / "new" / "objects" / "filler.bin"
        assert unpacked.read_bytes() == filler.read_bytes()
    finally:
        relay.close()


def test_a_pull_over_coaps_uses_the_download_psk(leshan, hosts, tmp_path):
    image, filler = make_bundle(tmp_path / "pkg", "4.3", 20 * 1024)
    port = free_udp_port()
    server = subprocess.Popen([python(), "-u", str(ROOT / "host_tests" / "peers" / "dtls_fileserver.py"), str(port),
                               "fw-loader", "000102030405060708090a0b0c0d0e0f", str(image)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert server.stdout.readline().strip() == "listening"
        run, ep = start(leshan, hosts, "coaps", tmp_path / "state",
                        ["--download-psk-identity", "fw-loader", "--download-psk-key", "000102030405060708090a0b0c0d0e0f"])
        pull(leshan, ep, "coaps://127.0.0.1:%d/%s" % (port, image.name))
        wait_value(leshan, ep, "/5/0/3", 2, 60)
        assert leshan.value(ep, "/5/0/7") == "4.3"
        unpacked = tmp_path / "state" / "app" / "update" / "new" / "objects" / "filler.bin"
        assert unpacked.read_bytes() == filler.read_bytes()
    finally:
        server.kill()
        output = server.communicate(timeout=10)[0]
    assert output.startswith("handshake TLS-PSK-WITH-") and output.count("block ") == 21, output
