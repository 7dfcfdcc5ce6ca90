# The ESP32 board (ESP32, -S2, -S3, -C3, -C6 with Wi-Fi): the board interface of
# boards/host/board.py on MicroPython, deployed to the board as /board.py.
import binascii
import gc
import os
import time as _time

from micropython import const

import esp32
import machine
import network

# The on-board LED: GPIO 2 on the usual ESP32 DevKit boards (other boards differ, e.g. 8 on
# many ESP32-C3 boards, 48 or none on -S3 DevKits); None when there is no LED.
LED_PIN = 2
LED_ACTIVE_LOW = False  # True when the LED lights with the pin low
# NTP server asked once in connect(); None to leave the clock to the LwM2M server (/3/0/13).
NTP_HOST = "pool.ntp.org"
# Where lwm2m/store.py keeps what servers wrote; factory_reset() empties it.
STATE_DIR = "/state"

# Statuses that end a connection attempt before its timeout: none on ESP32. Its driver keeps
# retrying by itself within an attempt, and status() keeps reporting the previous attempt's
# failure (network_wlan.c does not clear the last disconnect reason in connect()), so an
# early status would be stale. An attempt therefore waits for isconnected() or its timeout.
_GIVE_UP = ()
_POLL_MS = const(100)

# time.time() counts from 2000 on ports built with that epoch (ESP32 is one of them).
_EPOCH = 946684800 if _time.gmtime(0)[0] == 2000 else 0
_offset = 0  # seconds a server's Current Time write moved the clock when the RTC refused
_utc_offset = "+00:00"
_sta = None
_led = None
_led_on = False


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
    if wlan.isconnected():
        log("wifi: connected already, address %s" % _addresses(wlan)[0])
        _sync_time(log)
        return True
    give_up = [getattr(network, name, None) for name in _GIVE_UP]
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
    if not NTP_HOST:
        return
    try:
        import ntptime

        ntptime.host = NTP_HOST
        ntptime.settime()  # sets the RTC to UTC
        _offset = 0
        log("time: set from %s" % NTP_HOST)
    except Exception as exc:  # no DNS, timeout, no ntptime module: the clock stays as it is
        log("time: NTP from %s failed: %r" % (NTP_HOST, exc))


def _hex_id():
    return binascii.hexlify(machine.unique_id()).decode()


def endpoint_name():
    # The station MAC on ESP32: "esp32-a1b2c3d4e5f6".
    return "esp32-" + _hex_id()


def manufacturer():
    return "Espressif"


def model():
    return os.uname().machine  # e.g. "Generic ESP32 module with ESP32"


def serial():
    return _hex_id()


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
    global _utc_offset
    if len(value) != 6 or value[0] not in "+-" or value[3] != ":":
        raise ValueError("UTC offset like +02:00 expected")
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


def temperature():
    # The chip's own sensor, degrees Celsius: esp32.mcu_temperature() on -S2, -S3, -C3, -C6...
    # The classic ESP32 has only esp32.raw_temperature(), an uncalibrated reading that
    # varies from chip to chip by tens of degrees (and is absent on newer chips), so it
    # reports None rather than a wrong value.
    read = getattr(esp32, "mcu_temperature", None)
    if read is None:
        return None
    try:
        return read()
    except Exception:
        return None


def led(on=None):
    # led(True) switches the LED on, led(False) off; led() tells its state. None without one.
    global _led, _led_on
    if LED_PIN is None:
        return None
    if _led is None:
        _led = machine.Pin(LED_PIN, machine.Pin.OUT, value=1 if LED_ACTIVE_LOW else 0)
    if on is not None:
        _led_on = bool(on)
        _led.value(1 if _led_on != LED_ACTIVE_LOW else 0)
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
    return STATE_DIR
