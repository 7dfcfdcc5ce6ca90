# The virtual board's `machine` module (tools/vboard.mjs installs it as a built-in): what the
# board modules use of machine on ESP32 and RP2. reset() restarts the VM on the same
# filesystem, as a hard reset keeps the flash; the watchdog resets it when not fed in time;
# deepsleep(ms) is a reset after ms that keeps the RTC memory, reset_cause() then saying
# DEEPSLEEP_RESET; lightsleep(ms) stops the board for ms and goes on.
import time

import _vboard

PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5

_freq = 160000000


def reset_cause():
    return _vboard.reset_cause()


def reset():
    _vboard.reset(0)
    raise SystemExit  # unwinds what runs; the board restarts when it is back in the harness


def soft_reset():
    _vboard.reset(1)
    raise SystemExit


def unique_id():
    import binascii

    return binascii.unhexlify(_vboard.unique_id())


def freq(hz=None):
    global _freq
    if hz is None:
        return _freq
    _freq = int(hz)


def idle():
    _vboard.poll(0, 1)


def lightsleep(ms=None):
    _vboard.light_sleep(-1 if ms is None else int(ms))


def deepsleep(ms=None):
    _vboard.deep_sleep(-1 if ms is None else int(ms))
    raise SystemExit  # as reset(): the board is off from here


def disable_irq():
    return 0


def enable_irq(state=0):
    pass


class WDT:
    def __init__(self, id=0, timeout=5000):
        if timeout < 1:
            raise ValueError("timeout")
        _vboard.wdt_start(int(timeout))

    def feed(self):
        _vboard.wdt_feed()


class RTC:
    # datetime((year, month, day, weekday, hours, minutes, seconds, subseconds)) sets the
    # clock (time.time() and time.localtime() follow); datetime() reads it.
    def __init__(self, id=0):
        pass

    def datetime(self, value=None):
        if value is None:
            t = time.localtime()
            return (t[0], t[1], t[2], t[6], t[3], t[4], t[5], 0)
        seconds = time.mktime((value[0], value[1], value[2], value[4], value[5], value[6], 0, 0))
        _vboard.set_time(seconds)

    def memory(self, data=None):
        # What a deep sleep keeps: at most 2048 bytes, as on ESP32.
        if data is None:
            return bytes(_vboard.rtc_memory(None))
        if len(data) > 2048:
            raise ValueError("buffer too long")
        _vboard.rtc_memory(bytes(data))

    def init(self, value):
        self.datetime(value)


class Pin:
    # An output pin is logged by the board when it changes ("vboard: pin 2 = 1"); an input
    # reads 0.
    IN = 0
    OUT = 1
    OPEN_DRAIN = 2
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_RISING = 1
    IRQ_FALLING = 2

    def __init__(self, id, mode=-1, pull=-1, value=None):
        self._id = id
        self._mode = mode
        self._value = None
        if value is not None:
            self.value(value)

    def init(self, mode=-1, pull=-1, value=None):
        self._mode = mode
        if value is not None:
            self.value(value)

    def value(self, v=None):
        if v is None:
            return self._value or 0
        v = 1 if v else 0
        if v != self._value:
            self._value = v
            _vboard.pin(str(self._id), v)

    def __call__(self, v=None):
        return self.value(v)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def toggle(self):
        self.value(0 if self._value else 1)
