# The ESP32 and Pico W board modules on CPython: each is loaded, with its own copy of the
# wifi_board module they share (boards/common/wifi_board.py), under fake `machine`,
# `network`, `esp32`, `ntptime` and `rp2` modules and a fake clock that moves only when the
# module sleeps, so Wi-Fi timeouts are exact and take no real time.
import importlib.util
import inspect
import sys
import time as real_time
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BOARDS = ("esp32", "rp2")
SHARED = ROOT / "boards" / "common" / "wifi_board.py"
INTERFACE = (
    "connect", "endpoint_name", "manufacturer", "model", "serial", "firmware_version",
    "software_version", "device_type", "memory_total", "memory_free", "time", "set_time",
    "utc_offset", "set_utc_offset", "rssi", "ip_addresses", "router_addresses", "temperature",
    "led", "reboot", "factory_reset", "watchdog", "state_dir", "deep_sleep", "light_sleep", "woken",
)
ESP32_MAC = b"\xa1\xb2\xc3\xd4\xe5\xf6"
PICO_FLASH_ID = b"\xe6\x61\x41\x03\xe7\x12\x34\x56"
EPOCH_2000 = 946684800  # 1970-01-01 to 2000-01-01: 10957 days * 86400 s


# --- fakes -------------------------------------------------------------------------------

class FakeClock:
    # time as the board module sees it: ticks move only in sleep_ms().
    def __init__(self, epoch_2000=False):
        self.now_ms = 0
        self.slept_ms = 0
        self.shift = EPOCH_2000 if epoch_2000 else 0

    def ticks_ms(self):
        return self.now_ms & ((1 << 30) - 1)

    def ticks_diff(self, end, start):
        half = 1 << 29
        return ((end - start + half) & ((1 << 30) - 1)) - half

    def sleep_ms(self, ms):
        self.now_ms += ms
        self.slept_ms += ms

    def time(self):
        return real_time.time() - self.shift  # a float, as on some ports

    def time_ns(self):
        return self.now_ms * 1000000  # the RTC: sleeps move it

    def gmtime(self, secs=None):
        if secs is None:
            secs = self.time()
        return real_time.gmtime(int(secs) + self.shift)[:8]


class FakeWLAN:
    # Connects `polls` isconnected() calls after connect(), or never with polls=None;
    # status() then reports `failure` (a network.STAT_* name) instead of connecting.
    def __init__(self, network, polls=None, failure=None, rssi=-61,
                 ifconfig=("192.168.1.23", "255.255.255.0", "192.168.1.1", "192.168.1.1")):
        self.network = network
        self.polls = polls
        self.failure = failure
        self._rssi = rssi
        self._ifconfig = ifconfig
        self.active_state = False
        self.connects = []
        self.disconnects = 0
        self.connected = False
        self.left = None

    def active(self, on=None):
        if on is not None:
            self.active_state = on
        return self.active_state

    def connect(self, ssid, password):
        assert self.active_state, "connect() before active(True)"
        self.connects.append((ssid, password))
        self.left = self.polls

    def disconnect(self):
        self.disconnects += 1
        self.connected = False

    def isconnected(self):
        if not self.connected and self.left is not None:
            if self.left <= 0:
                self.connected = True
            self.left -= 1
        return self.connected

    def status(self, param=None):
        if param == "rssi":
            if not self.connected:
                raise OSError(-1)
            return self._rssi
        if self.connected:
            return self.network.STAT_GOT_IP
        if self.failure and self.connects:
            return getattr(self.network, self.failure)
        return self.network.STAT_CONNECTING if self.connects else self.network.STAT_IDLE

    def ifconfig(self):
        return self._ifconfig if self.connected else ("0.0.0.0",) * 4


class FakePin:
    OUT = 1

    def __init__(self, pin_id, mode=None, value=None):
        self.id = pin_id
        self.mode = mode
        self.level = value
        self.writes = []

    def value(self, level=None):
        if level is None:
            return self.level
        self.level = level
        self.writes.append(level)


class FakeADC:
    CORE_TEMP = 4
    raw = 0

    def __init__(self, channel):
        self.channel = channel

    def read_u16(self):
        return FakeADC.raw


class FakeWDT:
    def __init__(self, id=0, timeout=5000):
        self.timeout = timeout
        self.fed = 0

    def feed(self):
        self.fed += 1


class FakeRTC:
    refuse = False
    set_to = None
    kept = b""  # its memory (ESP32), kept through a deep sleep

    def datetime(self, value=None):
        if FakeRTC.refuse:
            raise OSError(22)
        FakeRTC.set_to = value

    def memory(self, data=None):
        if data is None:
            return FakeRTC.kept
        assert len(data) <= 2048  # MICROPY_HW_RTC_USER_MEM_MAX: more raises on the board
        FakeRTC.kept = bytes(data)


def fake_modules(port):
    machine = types.ModuleType("machine")
    machine.uid = ESP32_MAC if port == "esp32" else PICO_FLASH_ID
    machine.unique_id = lambda: machine.uid
    machine.resets = 0

    def reset():
        machine.resets += 1

    machine.reset = reset
    machine.pins = []

    def pin(*args, **kwargs):
        p = FakePin(*args, **kwargs)
        machine.pins.append(p)
        return p

    machine.Pin = pin
    machine.Pin.OUT = FakePin.OUT
    machine.ADC = FakeADC
    machine.WDT = FakeWDT
    machine.RTC = FakeRTC
    FakeRTC.refuse = False
    FakeRTC.set_to = None
    FakeRTC.kept = b""
    machine.PWRON_RESET, machine.WDT_RESET = 1, 3
    if port == "esp32":
        machine.DEEPSLEEP_RESET = 4  # rp2 has no deep sleep, and no such constant
    machine.cause = 1
    machine.reset_cause = lambda: machine.cause
    machine.sleeps = []
    machine.deepsleep = lambda ms: machine.sleeps.append(("deep", ms))
    machine.lightsleep = lambda ms: machine.sleeps.append(("light", ms))

    network = types.ModuleType("network")
    network.STA_IF = 0
    if port == "esp32":  # the values of ports/esp32/modnetwork_globals.h
        stats = dict(STAT_IDLE=1000, STAT_CONNECTING=1001, STAT_GOT_IP=1010, STAT_NO_AP_FOUND=201,
                     STAT_WRONG_PASSWORD=202, STAT_BEACON_TIMEOUT=200, STAT_ASSOC_FAIL=203,
                     STAT_CONNECT_FAIL=203, STAT_HANDSHAKE_TIMEOUT=204)
    else:  # CYW43_LINK_* of the cyw43 driver
        stats = dict(STAT_IDLE=0, STAT_CONNECTING=1, STAT_GOT_IP=3, STAT_CONNECT_FAIL=-1,
                     STAT_NO_AP_FOUND=-2, STAT_WRONG_PASSWORD=-3)
    for name, value in stats.items():
        setattr(network, name, value)
    network.wlan = FakeWLAN(network)
    network.WLAN = lambda interface: network.wlan
    network.countries = []
    network.country = network.countries.append

    esp32 = types.ModuleType("esp32")
    esp32.raw_temperature = lambda: 128  # classic ESP32: uncalibrated, must not be used
    rp2 = types.ModuleType("rp2")

    ntptime = types.ModuleType("ntptime")
    ntptime.host = "pool.ntp.org"
    ntptime.calls = []
    ntptime.error = None

    def settime():
        ntptime.calls.append(ntptime.host)
        if ntptime.error:
            raise ntptime.error

    ntptime.settime = settime
    return {"machine": machine, "network": network, "esp32": esp32, "rp2": rp2, "ntptime": ntptime}


class FakeGc:
    def mem_alloc(self):
        return 40000

    def mem_free(self):
        return 120000


def load(path, name, monkeypatch, fakes, clock=None):
    for mod_name, mod in fakes.items():
        monkeypatch.setitem(sys.modules, mod_name, mod)
    if clock is not None:
        monkeypatch.setitem(sys.modules, "time", clock)  # only while the module loads
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    finally:
        if clock is not None:
            monkeypatch.setitem(sys.modules, "time", real_time)
    return module


class Board:
    # A loaded board module (mod) with its own wifi_board module (shared), fakes and fake
    # clock. A board module imports wifi_board by name, so that name points at this board's
    # copy while the board module loads: two boards in one test share no state.
    def __init__(self, port, monkeypatch, epoch_2000=False):
        self.port = port
        self.fakes = fake_modules(port)
        self.clock = FakeClock(epoch_2000)
        self.shared = load(SHARED, "wifi_board_" + port, monkeypatch, self.fakes, self.clock)
        self.mod = load(ROOT / "boards" / port / "board.py", "board_" + port, monkeypatch,
                        dict(self.fakes, wifi_board=self.shared), self.clock)
        self.shared.gc = FakeGc()
        self.machine = self.fakes["machine"]
        self.network = self.fakes["network"]
        self.ntptime = self.fakes["ntptime"]
        self.log = []

    def wlan(self, **kwargs):
        self.network.wlan = FakeWLAN(self.network, **kwargs)
        return self.network.wlan

    def connect(self, timeout_s=10, retries=3):
        return self.mod.connect("home", "secret", timeout_s, retries, self.log.append)


@pytest.fixture(params=BOARDS)
def board(request, monkeypatch):
    return Board(request.param, monkeypatch)


@pytest.fixture
def esp(monkeypatch):
    return Board("esp32", monkeypatch)


@pytest.fixture
def pico(monkeypatch):
    return Board("rp2", monkeypatch)


# --- the interface -------------------------------------------------------------------------

@pytest.mark.parametrize("port", BOARDS)
def test_interface_matches_the_host_board(port, monkeypatch):
    host = load(ROOT / "boards" / "host" / "board.py", "board_host_reference", monkeypatch, {})
    mod = Board(port, monkeypatch).mod
    for name in INTERFACE:
        assert callable(getattr(mod, name, None)), "%s: %s missing" % (port, name)
        assert inspect.signature(getattr(mod, name)) == inspect.signature(getattr(host, name)), name


@pytest.mark.parametrize("port", BOARDS)
def test_board_module_needs_no_docstrings(port):
    # Bytecode keeps docstrings; comments cost nothing on the board.
    for path in (ROOT / "boards" / port / "board.py", SHARED):
        src = path.read_text()
        assert '"""' not in src and "'''" not in src, path


# --- Wi-Fi -------------------------------------------------------------------------------

def test_connect_succeeds_after_polls(board):
    wlan = board.wlan(polls=5)
    assert board.connect(timeout_s=10, retries=3) is True
    assert wlan.connects == [("home", "secret")]
    assert wlan.active_state is True
    assert board.clock.slept_ms == 5 * 100  # five polls 100 ms apart
    assert any("attempt 1 of 3" in line for line in board.log)
    assert any("192.168.1.23" in line for line in board.log)


def test_connect_gives_up_after_retries(board):
    wlan = board.wlan(polls=None)
    assert board.connect(timeout_s=2, retries=3) is False
    assert len(wlan.connects) == 3
    assert wlan.disconnects == 3  # each failed attempt stops the driver's own retries
    # each attempt waits its 2 s timeout, polled every 100 ms: 3 * 2000 ms exactly
    assert board.clock.slept_ms == 3 * 2000
    failed = [line for line in board.log if "failed" in line]
    assert len(failed) == 3 and "attempt 3 of 3" in failed[-1]
    assert "STAT_CONNECTING" in failed[-1]
    assert board.ntptime.calls == []  # no NTP without a network


def test_connect_succeeds_on_a_later_attempt(board):
    # The first attempt times out, the second joins: True, two connect() calls.
    wlan = board.wlan(polls=None)
    original = wlan.connect

    def connect(ssid, password):
        original(ssid, password)
        if len(wlan.connects) == 2:
            wlan.left = 3

    wlan.connect = connect
    assert board.connect(timeout_s=1, retries=3) is True
    assert len(wlan.connects) == 2
    assert board.clock.slept_ms == 1000 + 300


def test_pico_gives_up_an_attempt_on_a_failure_status(pico):
    # The CYW43 link status is about the current attempt: a wrong password ends it at once.
    wlan = pico.wlan(polls=None, failure="STAT_WRONG_PASSWORD")
    assert pico.connect(timeout_s=10, retries=2) is False
    assert len(wlan.connects) == 2
    assert pico.clock.slept_ms == 0
    assert sum("STAT_WRONG_PASSWORD" in line for line in pico.log) == 2


def test_esp32_waits_out_a_failure_status(esp):
    # ESP32's status() keeps the last disconnect reason across connect(), so an attempt
    # waits for its timeout while the driver retries; the log names the status.
    wlan = esp.wlan(polls=None, failure="STAT_NO_AP_FOUND")
    assert esp.connect(timeout_s=1, retries=2) is False
    assert len(wlan.connects) == 2
    assert esp.clock.slept_ms == 2 * 1000
    assert sum("STAT_NO_AP_FOUND" in line for line in esp.log) == 2


def test_connect_logs_an_oserror_from_connect_and_keeps_waiting(board):
    wlan = board.wlan(polls=2)
    original = wlan.connect

    def connect(ssid, password):
        original(ssid, password)
        raise OSError("Wifi Internal Error")

    wlan.connect = connect
    assert board.connect(timeout_s=5, retries=1) is True
    assert any("Wifi Internal Error" in line for line in board.log)


def test_connect_when_connected_already(board):
    wlan = board.wlan(polls=0)
    wlan.connected = True
    assert board.connect(timeout_s=5, retries=1) is True
    assert wlan.connects == []
    assert board.ntptime.calls == ["pool.ntp.org"]


def test_ntp_once_after_connecting(board):
    board.wlan(polls=1)
    board.mod.NTP_HOST = "ntp.example"
    assert board.connect() is True
    assert board.ntptime.calls == ["ntp.example"]
    assert any("time: set from ntp.example" in line for line in board.log)


def test_ntp_failure_is_logged_not_raised(board):
    board.wlan(polls=1)
    board.ntptime.error = OSError(110)  # ETIMEDOUT on most ports
    assert board.connect() is True
    assert any("NTP" in line and "failed" in line for line in board.log)


def test_ntp_can_be_switched_off(board):
    board.wlan(polls=1)
    board.mod.NTP_HOST = None
    assert board.connect() is True
    assert board.ntptime.calls == []


def test_pico_country(pico):
    pico.wlan(polls=0)
    pico.mod.COUNTRY = "DE"
    assert pico.connect() is True
    assert pico.network.countries == ["DE"]


def test_network_facts(board):
    wlan = board.wlan(polls=0)
    assert board.mod.rssi() is None  # not connected
    assert board.mod.ip_addresses() == [] and board.mod.router_addresses() == []
    assert board.connect() is True
    assert board.mod.rssi() == -61
    assert board.mod.ip_addresses() == ["192.168.1.23"]
    assert board.mod.router_addresses() == ["192.168.1.1"]
    wlan._ifconfig = ("10.0.0.5", "255.0.0.0", "0.0.0.0", "0.0.0.0")
    assert board.mod.router_addresses() == []


class NewWLAN(FakeWLAN):
    # A WLAN of a release where ipconfig() has replaced ifconfig().
    def __getattribute__(self, name):
        if name == "ifconfig":
            raise AttributeError(name)
        return super().__getattribute__(name)

    def ipconfig(self, key):
        return {"addr4": ("10.1.2.3", "255.255.0.0"), "gw4": "10.1.0.1"}[key]


def test_addresses_from_ipconfig_when_ifconfig_is_gone(board):
    board.network.wlan = NewWLAN(board.network, polls=0)
    assert board.connect() is True
    assert board.mod.ip_addresses() == ["10.1.2.3"]
    assert board.mod.router_addresses() == ["10.1.0.1"]


# --- identity, memory, time ----------------------------------------------------------------

def test_endpoint_names_from_unique_id(esp, pico):
    assert esp.mod.endpoint_name() == "esp32-a1b2c3d4e5f6"
    assert esp.mod.serial() == "a1b2c3d4e5f6"
    assert pico.mod.endpoint_name() == "picow-e6614103e7123456"
    assert pico.mod.serial() == "e6614103e7123456"


def test_identity_strings(board):
    uname = types.SimpleNamespace(machine="Some board with CHIP", release="1.29.0")
    board.shared.os = types.SimpleNamespace(uname=lambda: uname)
    assert board.mod.model() == "Some board with CHIP"
    assert board.mod.firmware_version() == "MicroPython 1.29.0"
    assert board.mod.manufacturer() == ("Espressif" if board.port == "esp32" else "Raspberry Pi")
    for name in ("software_version", "device_type"):
        assert isinstance(getattr(board.mod, name)(), str)


def test_memory_from_gc(board):
    assert board.mod.memory_total() == 160000
    assert board.mod.memory_free() == 120000


@pytest.mark.parametrize("port", BOARDS)
@pytest.mark.parametrize("epoch_2000", (False, True))
def test_time_is_unix_seconds_whatever_the_epoch(port, epoch_2000, monkeypatch):
    b = Board(port, monkeypatch, epoch_2000=epoch_2000)
    assert b.shared._EPOCH == (EPOCH_2000 if epoch_2000 else 0)
    assert isinstance(b.mod.time(), int)
    assert abs(b.mod.time() - real_time.time()) < 5


@pytest.mark.parametrize("epoch_2000", (False, True))
def test_set_time_sets_the_rtc(epoch_2000, monkeypatch):
    b = Board("esp32", monkeypatch, epoch_2000=epoch_2000)
    b.mod.set_time(1767225600)  # 2026-01-01 00:00:00 UTC, a Thursday (gmtime weekday 3)
    assert FakeRTC.set_to == (2026, 1, 1, 4, 0, 0, 0, 0)
    assert b.shared._offset == 0


def test_set_time_keeps_an_offset_when_the_rtc_refuses(board):
    FakeRTC.refuse = True
    board.mod.set_time(2000000000)
    assert isinstance(board.mod.time(), int)
    assert abs(board.mod.time() - 2000000000) < 5
    board.ntptime.error = None
    board.wlan(polls=0)
    board.connect()  # NTP succeeds: its time replaces the server's
    assert board.shared._offset == 0


def test_utc_offset(board):
    assert board.mod.utc_offset() == "+00:00"
    board.mod.set_utc_offset("-05:30")
    assert board.mod.utc_offset() == "-05:30"


# --- sensors and hardware ------------------------------------------------------------------

def test_pico_temperature_formula(pico):
    # V = raw * 3.3 / 65535; T = 27 - (V - 0.706) / 0.001721
    FakeADC.raw = 14021  # 14021 * 3.3 / 65535 = 0.70603 V -> 26.98 -> 27.0
    assert pico.mod.temperature() == 27.0
    FakeADC.raw = 13500  # 0.67979 V -> 27 + 0.02621 / 0.001721 = 42.23 -> 42.2
    assert pico.mod.temperature() == 42.2
    FakeADC.raw = 0  # 0 V: the formula's limit, 437.2 (a broken reading, not clamped)
    assert pico.mod.temperature() == pytest.approx(27 + 0.706 / 0.001721, abs=0.05)
    assert pico.mod._adc.channel == 4


def test_esp32_temperature(esp):
    assert esp.mod.temperature() is None  # classic ESP32: raw_temperature() is not trusted
    esp.fakes["esp32"].mcu_temperature = lambda: 41
    assert esp.mod.temperature() == 41


def test_led(board):
    assert board.mod.led() is False
    pin = board.machine.pins[0]
    assert pin.id == ("LED" if board.port == "rp2" else 2) and pin.mode == FakePin.OUT
    assert pin.level == 0  # created off
    assert board.mod.led(True) is True and pin.level == 1
    assert board.mod.led() is True
    assert board.mod.led(False) is False and pin.level == 0
    assert len(board.machine.pins) == 1  # one Pin object, made on first use


def test_esp32_led_active_low_and_none(esp):
    esp.mod.LED_ACTIVE_LOW = True
    esp.mod.led(True)
    assert esp.machine.pins[0].level == 0
    esp.mod.led(False)
    assert esp.machine.pins[0].level == 1


@pytest.mark.parametrize("port", BOARDS)
def test_no_led(port, monkeypatch):
    b = Board(port, monkeypatch)
    b.mod.LED_PIN = None
    assert b.mod.led(True) is None and b.mod.led() is None
    assert b.machine.pins == []


def test_watchdog(esp, pico):
    assert esp.mod.watchdog(20000).timeout == 20000
    assert pico.mod.watchdog(20000).timeout == 8388  # RP2040 maximum
    assert pico.mod.watchdog(8388).timeout == 8388
    dog = pico.mod.watchdog(1000)
    assert dog.timeout == 1000
    dog.feed()
    assert dog.fed == 1


def test_reboot(board):
    board.mod.reboot()
    assert board.machine.resets == 1


def test_factory_reset_removes_only_the_state_files(board, tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "servers.json").write_text("{}")
    (state / "servers.json.tmp").write_text("{")
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "main.py").write_text("")
    board.mod.STATE_DIR = str(state)
    assert board.mod.state_dir() == str(state)
    board.mod.factory_reset()
    assert list(state.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "main.py", "state"]
    assert board.machine.resets == 1


def test_factory_reset_without_a_state_folder(board, tmp_path):
    board.mod.STATE_DIR = str(tmp_path / "missing")
    board.mod.factory_reset()
    assert board.machine.resets == 1


def test_state_dir_default(board):
    assert board.mod.state_dir() == "/state"


# --- sleeping (queue mode) -------------------------------------------------------------------

def test_each_board_says_how_it_sleeps(esp, pico):
    assert esp.mod.SLEEP == "deep" and pico.mod.SLEEP == "light"


def _reboot_from_deep_sleep(esp, monkeypatch, after_ms):
    # The same board booting again after_ms later: RTC memory and clock kept, RAM not.
    esp.clock.now_ms += after_ms
    kept, clock = FakeRTC.kept, esp.clock
    again = Board("esp32", monkeypatch)
    again.clock.now_ms = clock.now_ms
    FakeRTC.kept = kept
    again.machine.cause = 4
    return again


def test_esp32_deep_sleep_keeps_the_state_in_rtc_memory_and_gives_it_back(esp, monkeypatch):
    esp.clock.now_ms = 5000
    assert esp.mod.woken() is None  # a power-on
    assert esp.mod.deep_sleep(30000, b"state") is True
    assert esp.machine.sleeps == [("deep", 30000)] and FakeRTC.kept.endswith(b"state")
    again = _reboot_from_deep_sleep(esp, monkeypatch, 30250)
    assert again.mod.woken() == (b"state", 30250)
    assert FakeRTC.kept == b""  # emptied: a later reset does not find it
    assert again.mod.woken() == (b"state", 30250)  # the same answer all through this boot
    again.wlan(polls=1)
    assert again.connect() is True and again.ntptime.calls == []  # the RTC ran on: no NTP per wake


def test_esp32_deep_sleep_refuses_what_rtc_memory_cannot_hold(esp):
    assert esp.mod.deep_sleep(30000, b"x" * 2033) is False
    assert esp.mod.deep_sleep(30000, None) is False
    assert esp.machine.sleeps == [] and FakeRTC.kept == b""
    assert esp.mod.deep_sleep(30000, b"x" * 2032) is True  # 16 bytes of header: 2048 in all


def test_a_clock_set_during_the_sleep_gives_the_time_asked(esp, monkeypatch):
    esp.mod.deep_sleep(30000, b"state")
    again = _reboot_from_deep_sleep(esp, monkeypatch, -3600000)  # a server moved the clock back
    assert again.mod.woken() == (b"state", 30000)


def test_other_resets_and_other_contents_are_no_wake(esp, monkeypatch):
    esp.mod.deep_sleep(30000, b"state")
    again = _reboot_from_deep_sleep(esp, monkeypatch, 30000)
    again.machine.cause = 2  # a hard reset after the sleep
    assert again.mod.woken() is None
    FakeRTC.kept = b"something else"
    again.machine.cause = 4
    assert again.mod.woken() is None


def test_pico_sleeps_lightly_and_never_wakes_from_a_deep_sleep(pico):
    pico.mod.light_sleep(1000)
    assert pico.machine.sleeps == [("light", 1000)]
    assert pico.mod.woken() is None


def test_the_pico_loads_its_bundle_sink_only_when_an_update_needs_it(pico, monkeypatch):
    # bundle_sink and bundle_swap keep 8 KB of heap as .mpy files: a start with no update to
    # report (nothing in /update) does without them.
    loaded = []

    class Sink:
        def __init__(self, folder, bundle):
            loaded.append(folder)

        def outcome(self):
            return (1, "2.0.1")

        def begin(self, size):
            return size

    monkeypatch.setitem(sys.modules, "bundle_sink", types.SimpleNamespace(BundleSink=Sink))
    present = set()

    def stat(path):
        if path not in present:
            raise OSError(2, "no such file")
        return (0,) * 10

    monkeypatch.setattr(pico.shared, "os", types.SimpleNamespace(stat=stat))
    sink = pico.mod.firmware_sink("/state")
    assert sink.outcome() is None and loaded == []
    present.add("/update/trial")  # an update on trial since the last boot
    assert sink.outcome() == (1, "2.0.1") and loaded == ["/update"]
    assert sink.begin(10) == 10 and loaded == ["/update"]  # loaded once
