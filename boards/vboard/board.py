# The virtual board of `make vboard` (tools/vboard.mjs: the MicroPython VM from npm run as a
# board, with UDP over the host's loopback and a Wi-Fi station that joins the access points
# it was started with): the board interface of boards/host/board.py, deployed as /board.py
# like the others (make deploy BOARD=vboard). It is a Wi-Fi board, so the shared code of
# boards/common/wifi_board.py runs here on MicroPython against the virtual board's machine
# and network modules; this module adds what this board has in particular.
import math
import sys
import time as _time

import wifi_board
from wifi_board import *  # the shared interface functions; those defined below add to them

# The LED the board logs on its stderr ("vboard: pin 2 = 1"); None for no LED.
LED_PIN = 2
LED_ACTIVE_LOW = False
# The virtual board reaches only the host: no NTP; the clock is the host's, and a server's
# Current Time write sets it (machine.RTC).
NTP_HOST = None
# Where lwm2m/store.py keeps what servers wrote; factory_reset() empties it.
STATE_DIR = "/state"
# How it sleeps in queue mode (config.json's sleep overrides it): deep, as an ESP32; the
# virtual board's deep sleep is a reset that keeps its RTC memory.
SLEEP = "deep"

# network.WLAN reports these as ESP32 does when the access point is unknown or the password
# wrong, and then stops trying, so an attempt ends early.
wifi_board.use(globals(), bundle="vboard", give_up=("STAT_NO_AP_FOUND", "STAT_WRONG_PASSWORD"))

_started = _time.ticks_ms()


def endpoint_name():
    # machine.unique_id() (make vboard ID=...): "vboard-02005e100001".
    return "vboard-" + serial()


def manufacturer():
    return "micropython-lwm2m"


def model():
    # The VM has no os.uname(), which wifi_board's model() asks.
    return "vboard (MicroPython VM, %s)" % sys.implementation._machine


def firmware_version():
    return "MicroPython %d.%d.%d" % sys.implementation.version[:3]


def device_type():
    return "virtual board"


def temperature():
    # A simulated sensor: 21 degrees Celsius plus 3 degrees of sine with a period of two
    # minutes, so that an observation has something to report.
    elapsed = _time.ticks_diff(_time.ticks_ms(), _started) / 1000
    return round(21.0 + 3.0 * math.sin(elapsed * 2 * math.pi / 120), 2)

