# The firmware's configuration loading and its recovery path, under the host board.
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "firmware"))

import config as firmware_config  # noqa: E402
import app as firmware  # noqa: E402
from lwm2m.transport import MemoryTransport  # noqa: E402

GOOD = {"server": "coap://192.0.2.10:5683", "wifi": {"ssid": "home", "password": "secret"}}


def test_example_config_is_valid():
    config = firmware_config.load(str(ROOT / "firmware" / "config.example.json"))
    assert config["server"].startswith("coap://")


def test_defaults_are_filled_in():
    config = firmware_config.parse(GOOD, "config.json")
    assert config["lifetime"] == 300 and config["lwm2m"] == "1.1" and config["endpoint"] is None
    assert config["wifi"]["timeout_s"] == 20 and config["wifi"]["retries"] == 3
    assert config["state_dir"] == "/state" and config["security"] == "nosec"
    assert config["limits"] == {}


def test_limits_and_the_longest_lifetime_reach_the_client():
    import board

    doc = dict(GOOD, lifetime=4294967295, state_dir=None, limits={"observations": 4, "duplicates": None})
    config = firmware_config.parse(doc, "config.json")
    client = firmware.build(config, board, MemoryTransport(), str(ROOT / "firmware" / "objects"), lambda line: None)
    assert client.limits["observations"] == 4 and client.observer.limit == 4
    assert client.limits["duplicates"] == 32  # null keeps the default
    assert client.model.instance(1, 0).get(1) == 4294967295


@pytest.mark.parametrize("change, message", [
    ({"server": None}, "config.json: server: missing, expected a coap:// or coaps:// URI"),
    ({"server": "http://x"}, "config.json: server: expected a coap:// or coaps:// URI or null (with a bootstrap_server), got 'http://x'"),
    ({"bootstrap_server": "coaps://192.0.2.10:5784"},
     "config.json: bootstrap_security: 'nosec' with coaps://192.0.2.10:5784: expected \"psk\" or \"certificate\""),
    ({"server": None, "bootstrap_server": "coaps://192.0.2.10:5784", "bootstrap_security": "psk", "bootstrap_psk_identity": "ep"},
     "config.json: bootstrap_psk_key: missing, expected the key as hex digits for 'psk'"),
    ({"bootstrap_server": "coap://192.0.2.10:5783", "bootstrap_psk_key": "0g"},
     "config.json: bootstrap_psk_key: expected the key as hex digits, got '0g'"),
    ({"lifetime": "300"}, "config.json: lifetime: expected a number of seconds from 1 to 4294967295, got '300'"),
    ({"lifetime": 0}, "config.json: lifetime: expected a number of seconds from 1 to 4294967295, got 0"),
    ({"lifetime": 1 << 32}, "config.json: lifetime: expected a number of seconds from 1 to 4294967295, got 4294967296"),
    ({"limits": []}, "config.json: limits: expected an object of caps"),
    ({"limits": {"observations": 0}}, "config.json: limits.observations: expected a positive count or null, got 0"),
    ({"limits": {"sockets": 2}}, "config.json: limits.sockets: unknown field"),
    ({"lwm2m": "1.2"}, "config.json: lwm2m: expected \"1.0\" or \"1.1\", got '1.2'"),
    ({"psk_key": "abc"}, "config.json: psk_key: expected the key as hex digits, got 'abc'"),
    ({"colour": "red"}, "config.json: colour: unknown field"),
    ({"wifi": {"ssid": 5}}, "config.json: wifi.ssid: expected a string, got 5"),
    ({"ack_timeout": 0}, "config.json: ack_timeout: expected a number of seconds from 0.1 to 60, got 0"),
    ({"ack_timeout": "2"}, "config.json: ack_timeout: expected a number of seconds from 0.1 to 60, got '2'"),
    ({"wifi": {"ssid": "a", "retries": 0}}, "config.json: wifi.retries: expected a positive count, got 0"),
    ({"security": "psk"}, "config.json: security: 'psk' with coap://192.0.2.10:5683: expected \"psk\" or \"certificate\" for a coaps:// server"),
    ({"server": "coaps://192.0.2.10:5684", "security": "certificate", "certificate": "c.der", "private_key": "k.der"},
     "config.json: server_certificate: missing, expected the server's certificate or its CA"),
    ({"server": "coaps://192.0.2.10:5684"}, "config.json: security: 'nosec' with coaps://192.0.2.10:5684: expected"),
    ({"server": "coaps://192.0.2.10:5684", "security": "psk", "psk_key": "0102"},
     "config.json: psk_identity: missing, expected the identity the server knows"),
    ({"server": "coaps://192.0.2.10:5684", "security": "psk", "psk_identity": "ep"},
     "config.json: psk_key: missing, expected the key as hex digits"),
    ({"firmware": {"confirm_s": 0}}, "config.json: firmware.confirm_s: expected a number of seconds from 1 to 86400, got 0"),
    ({"firmware": {"psk_identity": "loader"}},
     "config.json: firmware.psk_key: expected both psk_identity and psk_key, or neither"),
    ({"firmware": {"psk_key": "xyz"}}, "config.json: firmware.psk_key: expected the key as hex digits, got 'xyz'"),
    ({"firmware": {"url": "x"}}, "config.json: firmware.url: unknown field"),
    ({"send": {"paths": ["3303/0"]}}, "config.json: send.paths: expected a list of paths such as [\"/3303/0\", \"/3/0/9\"], got ['3303/0']"),
    ({"send": {"paths": ["/3303/x"]}}, "config.json: send.paths: expected a list of paths"),
    ({"send": {"paths": "/3303/0"}}, "config.json: send.paths: expected a list of paths"),
    ({"send": {"period_s": 0}}, "config.json: send.period_s: expected a number of seconds from 1 to 86400, got 0"),
    ({"queue_mode": "yes"}, "config.json: queue_mode: expected true or false, got 'yes'"),
    ({"queue_window_s": 0}, "config.json: queue_window_s: expected a number of seconds from 1 to 86400, got 0"),
    ({"send": {"format": "cbor"}}, "config.json: send.format: expected \"senml-cbor\" or \"senml-json\", got 'cbor'"),
    ({"sleep": "hibernate"}, "config.json: sleep: expected \"deep\", \"light\", \"none\" or null (the board's own:"
     " deep on an ESP32, light on a Pico W), got 'hibernate'"),
])
def test_errors_name_the_file_the_field_and_what_was_expected(change, message):
    doc = dict(GOOD, **change)
    if change.get("server", "") is None:
        del doc["server"]
    with pytest.raises(firmware_config.ConfigError) as err:
        firmware_config.parse(doc, "config.json")
    assert str(err.value).startswith(message)


def test_certificate_files_are_read_at_load_and_a_missing_one_is_named(tmp_path):
    for name in ("c.der", "k.der"):
        (tmp_path / name).write_bytes(b"\x30\x03" + name.encode())
    doc = dict(GOOD, server="coaps://192.0.2.10:5684", security="certificate", certificate=str(tmp_path / "c.der"),
               private_key=str(tmp_path / "k.der"), server_certificate=str(tmp_path / "s.der"))
    path = tmp_path / "config.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(firmware_config.ConfigError) as err:
        firmware_config.load(str(path))
    assert str(err.value) == "%s: server_certificate: cannot read %r: is the file there?" % (path, str(tmp_path / "s.der"))
    (tmp_path / "s.der").write_bytes(b"\x30\x03srv")
    config = firmware_config.load(str(path))
    assert (config["certificate"], config["server_certificate"]) == (b"\x30\x03c.der", b"\x30\x03srv")


def test_unreadable_and_malformed_files(tmp_path):
    missing = tmp_path / "config.json"
    with pytest.raises(firmware_config.ConfigError, match="cannot read it: copy config.example.json"):
        firmware_config.load(str(missing))
    missing.write_text('{"server": ')
    with pytest.raises(firmware_config.ConfigError, match="config.json: not valid JSON"):
        firmware_config.load(str(missing))


class Board:
    # The host board with a Wi-Fi that fails the first `failures` times and a watchdog.
    def __init__(self, failures):
        import board

        self.host = board
        self.failures = failures
        self.fed = 0

    def __getattr__(self, name):
        return getattr(self.host, name)

    def connect(self, ssid, password, timeout_s, retries, log):
        self.failures -= 1
        return self.failures < 0

    def watchdog(self, timeout_ms):
        board = self

        class Watchdog:
            def feed(self):
                board.fed += 1

        return Watchdog()


def test_supervisor_backs_off_after_failures_and_then_serves():
    config = firmware_config.parse(dict(GOOD, state_dir=None), "config.json")
    board = Board(failures=2)
    lines, sleeps, transports = [], [], []

    def new_transport():
        transports.append(MemoryTransport())
        return transports[-1]

    polls = []

    def running():
        polls.append(1)
        return len(transports) == 0 or len(polls) < 40

    firmware.supervise(board, config, str(ROOT / "firmware" / "objects"), new_transport,
                       lines.append, running, sleeps.append)
    failures = [line for line in lines if line.startswith("client stopped by OSError")]
    assert len(failures) == 2
    assert "starting again in 5 s" in failures[0] and "starting again in 10 s" in failures[1]
    assert sum(sleeps) == 15000 and board.fed >= 15  # fed during every pause
    assert len(transports) == 1 and transports[0].sent  # then it served: a Register went out


def test_supervisor_restarts_after_an_exception_in_the_client(tmp_path):
    objects = tmp_path / "objects"
    objects.mkdir()
    for name in ("0", "1", "3", "4"):
        (objects / (name + ".json")).write_text((ROOT / "firmware" / "objects" / (name + ".json")).read_text())
    (objects / "9.json").write_text(json.dumps({"id": 9, "resources": [[1, "x", "q", "R", False, False]]}))
    config = firmware_config.parse(dict(GOOD, state_dir=None), "config.json")
    lines, sleeps = [], []
    firmware.supervise(Board(0), config, str(objects), MemoryTransport, lines.append,
                       lambda: sum("client stopped" in line for line in lines) < 2, sleeps.append)
    assert lines[0].startswith("client stopped by DefinitionError: ")
    assert "9.json: resources[0]: expected a type letter" in lines[0]
    assert "starting again in 5 s" in lines[0] and "starting again in 10 s" in lines[1]


def test_a_corrupt_state_file_is_set_aside_and_the_factory_bootstrap_runs(tmp_path):
    import board as host_board

    state = tmp_path / "state"
    state.mkdir()
    (state / "servers.json").write_text('{"bootstrapped": {"0": {"1": {"0": "coap://x"')  # cut short
    config = firmware_config.parse({"bootstrap_server": "coap://192.0.2.10:5783", "state_dir": str(state)}, "config.json")
    lines = []
    transport = MemoryTransport()
    client = firmware.build(config, host_board, transport, str(ROOT / "firmware" / "objects"), lines.append)
    assert any(line.startswith("%s: corrupt" % (state / "servers.json")) and
               line.endswith("set aside as %s, starting from the configuration" % (state / "servers.json.bad"))
               for line in lines), lines
    assert (state / "servers.json.bad").read_text().startswith('{"bootstrapped"')
    assert not (state / "servers.json").exists()
    client.start()
    client.poll()
    ((data, addr),) = transport.sent
    assert addr == ("192.0.2.10", 5783) and b"bs" in data  # the Bootstrap-Request


def test_two_servers_with_their_rights_from_config_json(tmp_path):
    import board as host_board

    doc = {"servers": [{"server": "coap://192.0.2.10:5683", "ssid": 101},
                       {"server": "coaps://192.0.2.11:5684", "ssid": 102, "security": "psk", "psk_identity": "ep",
                        "psk_key": "00ff", "lifetime": 60}],
           "access": [{"object": 3311, "instance": 0, "rights": {"101": 3, "102": 1}, "owner": 101},
                      {"object": 3, "instance": 0, "rights": {"0": 1}}],
           "state_dir": None}
    config = firmware_config.parse(doc, "config.json")
    client = firmware.build(config, host_board, MemoryTransport(), str(ROOT / "firmware" / "objects"), [].append)
    security = {inst.get(10): inst for inst in client.model.object(0).instances.values()}
    assert security[101].get(0) == "coap://192.0.2.10:5683" and security[102].get(5) == b"\x00\xff"
    servers = {inst.get(0): inst.get(1) for inst in client.model.object(1).instances.values()}
    assert servers == {101: 300, 102: 60}
    acls = sorted((i.get(0), i.get(1), i.get(2), i.get(3) if i.has(3) else None)
                  for i in client.model.object(2).instances.values())
    assert acls == [(3, 0, {0: 1}, None), (3311, 0, {101: 3, 102: 1}, 101)]


def test_one_server_with_access_rights_has_them_checked():
    import board as host_board

    doc = {"server": "coap://192.0.2.10:5683", "access": [{"object": 3, "instance": 0, "rights": {"1": 1}}],
           "state_dir": None}
    client = firmware.build(firmware_config.parse(doc, "config.json"), host_board, MemoryTransport(),
                            str(ROOT / "firmware" / "objects"), [].append)
    client.start()
    assert client.access is not None and len(client.servers) == 1


@pytest.mark.parametrize("change, message", [
    ({"servers": {"server": "coap://x:1"}}, "config.json: servers: expected a list of servers"),
    ({"servers": [{"server": "coap://x:1"}]}, "config.json: servers[0].ssid: missing, expected a Short Server ID"),
    ({"servers": [{"server": "coap://x:1", "ssid": 1}]}, "config.json: servers[0].ssid: 1 is taken"),
    ({"servers": [{"server": "coaps://x:1", "ssid": 7}]}, "config.json: servers[0].security: 'nosec' with coaps://x:1"),
    ({"servers": [{"server": "coap://x:1", "ssid": 7, "port": 5}]}, "config.json: servers[0].port: unknown field"),
    ({"access": [{"object": 3, "instance": 0, "rights": {"101": 32}}]}, "config.json: access[0].rights: expected an object"),
    ({"access": [{"object": 0, "instance": 0}]}, "config.json: access[0].object: expected an object id from 1"),
    ({"access": [{"instance": 0}]}, "config.json: access[0].object: missing"),
])
def test_server_and_access_errors_name_the_entry_and_the_field(change, message):
    with pytest.raises(firmware_config.ConfigError) as err:
        firmware_config.parse(dict(GOOD, **change), "config.json")
    assert str(err.value).startswith(message), str(err.value)


# --- sleeping in queue mode (main.dozer) and waking from a deep sleep -------------------------

class SleepyBoard(Board):
    # The host board with a deep sleep that keeps what it is given (refused when `room` is
    # smaller), a light sleep that is counted, and what woken() answers.
    def __init__(self, woken=None, room=2032):
        super().__init__(0)
        self.room = room
        self.kept = None
        self.sleeps = []
        self.woke = woken

    def deep_sleep(self, ms, state):
        if state is None or len(state) > self.room:
            return False
        self.kept = state
        self.sleeps.append(("deep", ms))
        return True

    def light_sleep(self, ms):
        self.sleeps.append(("light", ms))

    def woken(self):
        return self.woke


def _queued_client(board, register=False):
    # A started client of config.json in queue mode on a MemoryTransport; registered at
    # /rd/q7 when asked.
    config = firmware_config.parse(dict(GOOD, state_dir=None, queue_mode=True, queue_window_s=2), "config.json")
    transport = MemoryTransport()
    client = firmware.build(config, board, transport, str(ROOT / "firmware" / "objects"), lambda line: None)
    client.start()
    if register:
        client.poll()
        _answer(transport, 0x41, "/rd/q7")
        client.poll()
    return config, client, transport


def _answer(transport, code, location=None):
    from lwm2m import coap

    ((data, addr),) = transport.sent
    transport.sent.clear()
    request = coap.decode(data)
    answer = coap.Message(2, code, request.mid, request.token)
    if location:
        answer.set_path(location, 8)
    transport.inject(coap.encode(answer), addr)
    return request


def test_a_long_wait_deep_sleeps_with_the_state_and_a_short_one_sleeps_lightly():
    board = SleepyBoard()
    _config, client, _transport = _queued_client(board, register=True)
    doze = firmware.dozer(client, board, "deep", 1000, lambda line: None)
    doze(4999)
    doze(60000)
    assert board.sleeps == [("light", 1000), ("deep", 60000)]  # the light one as long as a watchdog allows
    assert board.kept == client.freeze()


def test_a_state_that_does_not_fit_sleeps_lightly_and_says_so_once():
    board = SleepyBoard(room=10)
    _config, client, _transport = _queued_client(board)
    lines = []
    doze = firmware.dozer(client, board, "deep", 60000, lines.append)
    doze(30000)
    doze(30000)
    assert board.sleeps == [("light", 30000), ("light", 30000)]
    assert lines == ["deep sleep: no state to keep, or too large for RTC memory: sleeping lightly"]


def test_without_a_board_sleep_the_wait_is_time_sleep_ms(monkeypatch):
    board = SleepyBoard()
    _config, client, _transport = _queued_client(board)
    slept = []
    monkeypatch.setattr(firmware.time, "sleep_ms", slept.append, raising=False)
    firmware.dozer(client, board, "none", 1000, print)(30000)
    assert slept == [1000] and board.sleeps == []


def test_the_supervisor_resumes_the_registration_a_deep_sleep_kept():
    config, client, _transport = _queued_client(SleepyBoard(), register=True)
    state = client.freeze()
    woken_board = SleepyBoard(woken=(state, 30000))
    transports = []

    def new_transport():
        transports.append(MemoryTransport())
        return transports[-1]

    polls = []
    firmware.supervise(woken_board, config, str(ROOT / "firmware" / "objects"), new_transport, lambda line: None,
                       lambda: polls.append(1) or len(polls) < 5, lambda ms: None)
    from lwm2m import coap

    first = coap.decode(transports[0].sent[0][0])
    assert first.code == 0x02 and first.path() == "/rd/q7"  # an Update, no Register


def test_main_reports_a_bad_config_json_and_unloads_its_reader(tmp_path, monkeypatch, capsys):
    # What main.py runs on a board: config.py is needed once, and then let go of (its checks
    # keep more heap than any module but the client's).
    (tmp_path / "config.json").write_text("{")
    monkeypatch.chdir(tmp_path)
    firmware.main()
    assert capsys.readouterr().out.startswith("config.json")
    assert "config" not in sys.modules

