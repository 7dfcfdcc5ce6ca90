# The board interface of boards/host/board.py for MicroPython boards that join Wi-Fi as a
# station (boards/esp32, boards/rp2): everything those boards share. Deployed next to
# board.py as /wifi_board.mpy and frozen by both freeze manifests. A board module takes all
# of it (`from wifi_board import *`), defines what is particular to its chip (endpoint
# name, manufacturer, temperature sensor, a watchdog limit ...) and calls use() once.
#
# Settings. The user-settable constants (LED_PIN, NTP_HOST, STATE_DIR, and where a board has
# them LED_ACTIVE_LOW and COUNTRY) stay on the board module, because that is where a user
# and the firmware set them (`board.STATE_DIR = ...`). A module's attributes are its
# globals() dict, so use(globals()) hands that dict over and the functions below read each
# setting from it when they run: a value set on `board` at any time is the one they see.
# A setting a board does not have (COUNTRY on ESP32) reads as None.
import binascii
import gc
import os
import time as _time

from micropython import const

import machine
import network

_POLL_MS = const(100)
# RTC memory, which a deep sleep keeps: ESP32's 2048 bytes (MICROPY_HW_RTC_USER_MEM_MAX),
# holding a magic, the time of sleeping and the ms asked, then the client's state.
_RTC_BYTES = const(2048)
_SLEEP_MAGIC = b"LwS1"
_SLEEP_HEAD = const(16)

# time.time() counts from 2000 on ports built with that epoch (ESP32 is one of them; rp2
# uses 1970 today).
_EPOCH = 946684800 if _time.gmtime(0)[0] == 2000 else 0
_board = {}  # the board module's globals(): its settings, see above
_give_up = ()  # network.STAT_* names that end a connection attempt before its timeout
_bundle = None  # the BOARD of the application bundles this board takes
_UPDATE = "/update"  # where an update is unpacked, and boot.py looks for one
_offset = 0  # seconds a server's Current Time write moved the clock when the RTC refused
_utc_offset = "+00:00"
_sta = None
_led = None
_led_on = False
_woken = None  # (state, slept_ms) when this boot ended a deep sleep, until taken


def use(board_globals, give_up=(), bundle=None):
    # Called once by the board module: use(globals(), ("STAT_WRONG_PASSWORD", ...)); bundle:
    # the BOARD application bundles are built for (make bundle), on boards that take them.
    global _board, _give_up, _bundle
    _board = board_globals
    _give_up = give_up
    _bundle = bundle


def _wlan():
    global _sta
    if _sta is None:
        _sta = network.WLAN(network.STA_IF)
    return _sta


def _status_name(status):
    # network.STAT_* name of a WLAN status, for the log.
    for name in dir(network):
        if name.startswith("STAT_") and getattr(network, name) == status:
            return name
    return "status %r" % (status,)


def connect(ssid, password, timeout_s, retries, log):
    # Joins ssid as a station: `retries` attempts of timeout_s seconds each, each logged.
    # True once the board has an address (the clock is then set by NTP once), False after
    # the last failed attempt: what happens next is the firmware's choice.
    wlan = _wlan()
    wlan.active(True)
    if _board.get("COUNTRY"):
        network.country(_board["COUNTRY"])
    if wlan.isconnected():
        log("wifi: connected already, address %s" % _addresses(wlan)[0])
        _sync_time(log)
        return True
    give_up = [getattr(network, name, None) for name in _give_up]
    for attempt in range(1, retries + 1):
        log("wifi: connecting to %r (attempt %d of %d)" % (ssid, attempt, retries))
        start = _time.ticks_ms()
        try:
            wlan.connect(ssid, password)
        except OSError as exc:
            log("wifi: connect: %r" % (exc,))  # e.g. a previous join still under way
        status = wlan.status()
        while not wlan.isconnected() and status not in give_up:
            if _time.ticks_diff(_time.ticks_ms(), start) >= timeout_s * 1000:
                break
            _time.sleep_ms(_POLL_MS)
            status = wlan.status()
        if wlan.isconnected():
            log("wifi: connected, address %s" % _addresses(wlan)[0])
            if woken() is None:  # a deep sleep keeps the RTC running: no NTP per wake
                _sync_time(log)
            return True
        log("wifi: attempt %d of %d failed after %d ms: %s"
            % (attempt, retries, _time.ticks_diff(_time.ticks_ms(), start), _status_name(status)))
        try:
            wlan.disconnect()  # stop the driver's own retries before the next connect()
        except OSError:
            pass
    return False


def _sync_time(log):
    global _offset
    host = _board["NTP_HOST"]
    if not host:
        return
    try:
        import ntptime

        ntptime.host = host
        ntptime.settime()  # sets the RTC to UTC
        _offset = 0
        log("time: set from %s" % host)
    except Exception as exc:  # no DNS, timeout, no ntptime module: the clock stays as it is
        log("time: NTP from %s failed: %r" % (host, exc))


def model():
    # e.g. "Generic ESP32 module with ESP32", "Raspberry Pi Pico W with RP2040"
    return os.uname().machine


def serial():
    # machine.unique_id() in hex: the station MAC on ESP32, the flash chip's id on a Pico W.
    return binascii.hexlify(machine.unique_id()).decode()


def firmware_version():
    return "MicroPython " + os.uname().release


def software_version():
    return "micropython-lwm2m 0.1"


def device_type():
    return "microcontroller"


def memory_total():
    # The MicroPython heap (it may grow on boards with PSRAM).
    return gc.mem_alloc() + gc.mem_free()


def memory_free():
    return gc.mem_free()


def time():
    # Unix seconds (time.time() is a float on some ports).
    return int(_time.time()) + _EPOCH + _offset


def set_time(seconds):
    # A server's Current Time write: sets the RTC (UTC), or keeps an offset if it refuses.
    global _offset
    seconds = int(seconds)
    try:
        t = _time.gmtime(seconds - _EPOCH)
        machine.RTC().datetime((t[0], t[1], t[2], t[6] + 1, t[3], t[4], t[5], 0))
        _offset = 0
    except (OSError, ValueError, OverflowError):
        _offset = seconds - _EPOCH - int(_time.time())


def utc_offset():
    return _utc_offset


def set_utc_offset(value):
    # lwm2m.core checked it: "+02:00"
    global _utc_offset
    _utc_offset = value


def rssi():
    wlan = _wlan()
    if not wlan.isconnected():
        return None
    try:
        return wlan.status("rssi")
    except (OSError, ValueError):
        return None


def _addresses(wlan):
    # (address, gateway) of the station. ifconfig() is in every release so far; ipconfig()
    # replaces it in newer ones and is used when ifconfig() is gone.
    try:
        conf = wlan.ifconfig()
        return conf[0], conf[2]
    except AttributeError:
        return wlan.ipconfig("addr4")[0], wlan.ipconfig("gw4")


def ip_addresses():
    wlan = _wlan()
    if not wlan.isconnected():
        return []
    return [_addresses(wlan)[0]]


def router_addresses():
    wlan = _wlan()
    if not wlan.isconnected():
        return []
    gateway = _addresses(wlan)[1]
    return [] if gateway == "0.0.0.0" else [gateway]


def led(on=None):
    # led(True) switches the LED on, led(False) off; led() tells its state. None without one.
    global _led, _led_on
    pin = _board["LED_PIN"]
    if pin is None:
        return None
    low = bool(_board.get("LED_ACTIVE_LOW"))  # True when the LED lights with the pin low
    if _led is None:
        _led = machine.Pin(pin, machine.Pin.OUT, value=1 if low else 0)
    if on is not None:
        _led_on = bool(on)
        _led.value(1 if _led_on != low else 0)
    return _led_on


def reboot():
    machine.reset()


def factory_reset():
    # Forgets what servers wrote (the files lwm2m/store.py keeps in the state folder), then
    # restarts from config.json. Only the files of that folder are removed.
    folder = state_dir()
    try:
        names = os.listdir(folder)
    except OSError:
        names = ()
    for name in names:
        try:
            os.remove(folder + "/" + name)
        except OSError:
            pass  # a folder: store.py writes none
    reboot()


def watchdog(timeout_ms):
    # Resets the board unless feed() is called within timeout_ms. It cannot be stopped.
    return machine.WDT(timeout=timeout_ms)


def state_dir():
    return _board["STATE_DIR"]


def firmware_sink(state_dir):
    # Firmware Update (object 5) takes application bundles (firmware/BUNDLE.md): unpacked into
    # /update and swapped in by boot.py at the next reset (ESP32 replaces this with its OTA
    # partitions). state_dir is not used: boot.py finds /update before config.json is read.
    return _LazySink()


class _LazySink:
    # The bundle sink, whose modules (bundle_sink, bundle_swap: 8 KB of heap as .mpy files)
    # are loaded only when an update needs them: asked at start for the outcome of an earlier
    # update, the sink is needed only when /update holds one.
    def __init__(self):
        self._sink = None

    def _loaded(self):
        if self._sink is None:
            from bundle_sink import BundleSink

            self._sink = BundleSink(_UPDATE, _bundle)
        return self._sink

    def outcome(self):
        for name in ("trial", "result"):
            try:
                os.stat(_UPDATE + "/" + name)
            except OSError:
                continue
            return self._loaded().outcome()
        return None

    def __getattr__(self, name):
        return getattr(self._loaded(), name)


def _clock_ms():
    # The RTC in ms: it goes on through a deep sleep, as ticks_ms() does not.
    return _time.time_ns() // 1000000


def deep_sleep(ms, state):
    # Sleeps ms with everything off but the RTC; the board then boots again and woken()
    # gives state back. Returns False, not sleeping, when state is None or does not fit in
    # RTC memory. On a board it does not return.
    if state is None or _SLEEP_HEAD + len(state) > _RTC_BYTES:
        return False
    head = _SLEEP_MAGIC + _clock_ms().to_bytes(8, "big") + ms.to_bytes(4, "big")
    machine.RTC().memory(head + state)
    machine.deepsleep(ms)
    return True


def light_sleep(ms):
    # Sleeps ms with RAM, the clocks and the Wi-Fi association kept; then goes on.
    machine.lightsleep(ms)


def woken():
    # (state, slept_ms) when this boot ended a deep sleep that deep_sleep() began, else None.
    # The RTC memory is emptied: a later reset of another kind does not find it. The time
    # slept is the RTC's; the time asked when the RTC was set meanwhile.
    global _woken
    if _woken is None and machine.reset_cause() == getattr(machine, "DEEPSLEEP_RESET", None):
        rtc = machine.RTC()
        data = rtc.memory()
        rtc.memory(b"")
        if data[:4] == _SLEEP_MAGIC and len(data) > _SLEEP_HEAD:
            asked = int.from_bytes(data[12:16], "big")
            slept = _clock_ms() - int.from_bytes(data[4:12], "big")
            _woken = (bytes(data[_SLEEP_HEAD:]), slept if 0 <= slept < 2 * asked + 60000 else asked)
    return _woken
