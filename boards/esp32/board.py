# The ESP32 board (ESP32, -S2, -S3, -C3, -C6 with Wi-Fi): the board interface of
# boards/host/board.py on MicroPython, deployed to the board as /board.py. What every Wi-Fi
# board does is in wifi_board (boards/common/wifi_board.py); this module adds what is
# particular to the ESP32 and holds the settings, which wifi_board reads from here.
import esp32

import wifi_board
from wifi_board import *  # the shared interface functions; those defined below add to them

# The on-board LED: GPIO 2 on the usual ESP32 DevKit boards (other boards differ, e.g. 8 on
# many ESP32-C3 boards, 48 or none on -S3 DevKits); None when there is no LED.
LED_PIN = 2
LED_ACTIVE_LOW = False  # True when the LED lights with the pin low
# NTP server asked once in connect(); None to leave the clock to the LwM2M server (/3/0/13).
NTP_HOST = "pool.ntp.org"
# Where lwm2m/store.py keeps what servers wrote; factory_reset() empties it.
STATE_DIR = "/state"
# How it sleeps in queue mode (config.json's sleep overrides it): deep, a reboot that
# keeps the client's state in RTC memory (wifi_board.deep_sleep).
SLEEP = "deep"

# Statuses that end a connection attempt before its timeout: none on ESP32. Its driver keeps
# retrying by itself within an attempt, and status() keeps reporting the previous attempt's
# failure (network_wlan.c does not clear the last disconnect reason in connect()), so an
# early status would be stale. An attempt therefore waits for isconnected() or its timeout.
wifi_board.use(globals(), give_up=())


def endpoint_name():
    # The station MAC on ESP32: "esp32-a1b2c3d4e5f6".
    return "esp32-" + serial()


def manufacturer():
    return "Espressif"


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


def firmware_sink(state_dir):
    # Where Firmware Update (object 5) writes an image: the next OTA partition (ota.py,
    # imported here so that a firmware that never updates does not load it).
    import ota

    return ota.OtaSink(state_dir)
