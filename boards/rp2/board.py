# The Raspberry Pi Pico W board (RP2040 with the CYW43439 Wi-Fi chip): the board interface
# of boards/host/board.py on MicroPython, deployed to the board as /board.py. What every
# Wi-Fi board does is in wifi_board (boards/common/wifi_board.py); this module adds what is
# particular to the Pico W and holds the settings, which wifi_board reads from here.
from micropython import const

import machine

import wifi_board
from wifi_board import *  # the shared interface functions; the ones below add to or replace them

# The on-board LED hangs off the Wi-Fi chip and is named "LED"; None when there is no LED.
LED_PIN = "LED"
# Wi-Fi regulatory country, e.g. "DE": without it the radio keeps to the channels allowed
# everywhere, so an access point on channel 12 or 13 is not found. None keeps the default.
COUNTRY = None
# NTP server asked once in connect(); None to leave the clock to the LwM2M server (/3/0/13).
NTP_HOST = "pool.ntp.org"
# Where lwm2m/store.py keeps what servers wrote; factory_reset() empties it.
STATE_DIR = "/state"
# How it sleeps in queue mode (config.json's sleep overrides it): light
# (machine.lightsleep): the RP2040 has no RTC memory for a deep sleep to keep.
SLEEP = "light"

_WDT_MAX_MS = const(8388)  # RP2040: 24-bit watchdog counter at 2 ticks per microsecond
_adc = None

# Statuses that end a connection attempt before its timeout: the CYW43 driver stops joining
# after these, and its status() describes the current attempt.
wifi_board.use(globals(), bundle="rp2",
               give_up=("STAT_WRONG_PASSWORD", "STAT_NO_AP_FOUND", "STAT_CONNECT_FAIL"))


def endpoint_name():
    # The flash chip's 64-bit id: "picow-e6614103e7123456".
    return "picow-" + serial()


def manufacturer():
    return "Raspberry Pi"


def temperature():
    # The RP2040's own sensor on ADC channel 4 (RP2040 datasheet, temperature sensor): 0.706 V at 27 degrees
    # Celsius, falling 1.721 mV per degree; read_u16() scales 0..3.3 V to 0..65535. It
    # measures the chip, a few degrees above the air, to about a degree.
    global _adc
    if _adc is None:
        _adc = machine.ADC(getattr(machine.ADC, "CORE_TEMP", 4))
    volts = _adc.read_u16() * 3.3 / 65535
    return round(27 - (volts - 0.706) / 0.001721, 1)


def watchdog(timeout_ms):
    # Resets the board unless feed() is called within timeout_ms. It cannot be stopped. The
    # RP2040 cannot wait longer than 8388 ms (machine.WDT raises ValueError above it), so a
    # longer timeout is shortened to that: feed it at least every 8 seconds.
    return machine.WDT(timeout=min(timeout_ms, _WDT_MAX_MS))

