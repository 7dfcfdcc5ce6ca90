# The Raspberry Pi Pico W board (RP2040 with the CYW43439 Wi-Fi chip): the board interface
# of boards/host/board.py on MicroPython, deployed to the board as /board.py.
import binascii
import gc
import os
import time as _time

from micropython import const

import machine
import network

# The on-board LED hangs off the Wi-Fi chip and is named "LED"; None when there is no LED.
LED_PIN = "LED"
# Wi-Fi regulatory country, e.g. "DE": without it the radio keeps to the channels allowed
# everywhere, so an access point on channel 12 or 13 is not found. None keeps the default.
COUNTRY = None
# NTP server asked once in connect(); None to leave the clock to the LwM2M server (/3/0/13).
NTP_HOST = "pool.ntp.org"
# Where lwm2m/store.py keeps what servers wrote; factory_reset() empties it.
STATE_DIR = "/state"

# Statuses that end a connection attempt before its timeout: the CYW43 driver stops joining
# after these, and its status() describes the current attempt.
_GIVE_UP = ("STAT_WRONG_PASSWORD", "STAT_NO_AP_FOUND", "STAT_CONNECT_FAIL")
_WDT_MAX_MS = const(8388)  # RP2040: 24-bit watchdog counter at 2 ticks per microsecond
_POLL_MS = const(100)

# time.time() counts from 2000 on ports built with that epoch (rp2 uses 1970 today).
_EPOCH = 946684800 if _time.gmtime(0)[0] == 2000 else 0
_offset = 0  # seconds a server's Current Time write moved the clock when the RTC refused
_utc_offset = "+00:00"
_sta = None
_led = None
_led_on = False
_adc = None


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
    if COUNTRY:
        network.country(COUNTRY)
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
    # The flash chip's 64-bit id: "picow-e6614103e7123456".
    return "picow-" + _hex_id()


def manufacturer():
    return "Raspberry Pi"


def model():
    return os.uname().machine  # e.g. "Raspberry Pi Pico W with RP2040"


def serial():
    return _hex_id()


def firmware_version():
    return "MicroPython " + os.uname().release


def software_version():
    return "micropython-lwm2m 0.1"


def device_type():
    return "microcontroller"


def memory_total():
    # The MicroPython heap.
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
    # The RP2040's own sensor on ADC channel 4 (RP2040 datasheet, temperature sensor): 0.706 V at 27 degrees
    # Celsius, falling 1.721 mV per degree; read_u16() scales 0..3.3 V to 0..65535. It
    # measures the chip, a few degrees above the air, to about a degree.
    global _adc
    if _adc is None:
        _adc = machine.ADC(getattr(machine.ADC, "CORE_TEMP", 4))
    volts = _adc.read_u16() * 3.3 / 65535
    return round(27 - (volts - 0.706) / 0.001721, 1)


def led(on=None):
    # led(True) switches the LED on, led(False) off; led() tells its state. None without one.
    global _led, _led_on
    if LED_PIN is None:
        return None
    if _led is None:
        _led = machine.Pin(LED_PIN, machine.Pin.OUT, value=0)
    if on is not None:
        _led_on = bool(on)
        _led.value(1 if _led_on else 0)
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
    # Resets the board unless feed() is called within timeout_ms. It cannot be stopped. The
    # RP2040 cannot wait longer than 8388 ms (machine.WDT raises ValueError above it), so a
    # longer timeout is shortened to that: feed it at least every 8 seconds.
    return machine.WDT(timeout=min(timeout_ms, _WDT_MAX_MS))


def state_dir():
    return STATE_DIR
