# The host board: the board interface on CPython, for `make run` and the integration tests.
# Every board module (boards/esp32, boards/rp2) offers the same functions, deployed to a
# board as /board.py:
#   connect(ssid, password, timeout_s, retries, log) -> True once the network is up
#   endpoint_name(); manufacturer(); model(); serial(); firmware_version();
#   software_version(); device_type(); memory_total(); memory_free()   (bytes)
#   time(); set_time(seconds); utc_offset(); set_utc_offset("+02:00")
#   rssi() (dBm or None); ip_addresses(); router_addresses()   (lists of str)
#   temperature() (degrees Celsius, or None without a sensor); led(on) (None without an LED)
#   reboot(); factory_reset(); watchdog(timeout_ms) -> an object with feed(), or None
#   firmware_sink(state_dir) -> the Firmware Update sink (lwm2m/firmware.py), where a board
#                               can be updated over the air
#   SLEEP ("deep", "light" or None); deep_sleep(ms, state) -> False when it cannot keep
#   state; light_sleep(ms); woken() -> (state, slept_ms) after a deep sleep, else None:
#   how a queue-mode client sleeps (firmware/main.py's dozer)
import math
import socket
import sys
import time as _time_module
import uuid

_started = _time_module.monotonic()
_clock_offset = 0  # seconds a server's Current Time write moved our clock
_utc_offset = "+00:00"
reboot_requested = False


def endpoint_name():
    # Stable per host, like machine.unique_id() on a board.
    return "mpy-host-%012x" % uuid.getnode()


def manufacturer():
    return "micropython-lwm2m"


def model():
    return "host (CPython %d.%d)" % sys.version_info[:2]


def serial():
    return "%012x" % uuid.getnode()


def firmware_version():
    return "host"


def software_version():
    return "micropython-lwm2m 0.1"


def device_type():
    return "simulator"


def memory_total():
    return 512 * 1024


def memory_free():
    return 256 * 1024


def time():
    # Unix seconds, as a server may have set them (Device /3/0/13).
    return int(_time_module.time()) + _clock_offset


def set_time(seconds):
    global _clock_offset
    _clock_offset = int(seconds) - int(_time_module.time())


def utc_offset():
    return _utc_offset


def set_utc_offset(value):
    # lwm2m.core checked it: "+02:00"
    global _utc_offset
    _utc_offset = value


def rssi():
    return -50  # loopback has no radio; a plausible constant


def ip_addresses():
    try:
        return [socket.gethostbyname(socket.gethostname())]
    except OSError:
        return ["127.0.0.1"]


def router_addresses():
    return []


def temperature():
    # A simulated sensor that drifts around 21 °C with a period of two minutes, so that an
    # observation has something to report.
    elapsed = _time_module.monotonic() - _started
    return round(21.0 + 3.0 * math.sin(elapsed * 2 * math.pi / 120), 2)


_led_on = False


def led(on=None):
    # The simulated LED: led(True) switches it on; led() tells its state.
    global _led_on
    if on is not None:
        _led_on = bool(on)
    return _led_on


def connect(ssid, password, timeout_s, retries, log):
    return True  # the host's network is up already


def watchdog(timeout_ms):
    return None  # no hardware watchdog on a host


def reboot():
    global reboot_requested
    reboot_requested = True


def factory_reset():
    reboot()


def deep_sleep(ms, state):
    return False  # a host does not deep-sleep: firmware/main.py sleeps lightly instead


def light_sleep(ms):
    _time_module.sleep(ms / 1000)


def woken():
    return None


STATE_DIR = ".lwm2m-state"  # set from the configuration's state_dir


def state_dir():
    return STATE_DIR


_app_booted = False


def firmware_sink(state_dir):
    # A file-backed sink: application bundles (firmware/BUNDLE.md) go through the sink and
    # the swap of the Pico W, into state_dir/app, a folder nothing runs from (the host runs
    # the repository's code). Its swap runs once per process, as boot.py runs once per reset
    # on a board, so that a trial not confirmed before the restart is rolled back.
    global _app_booted
    import bundle_sink
    import bundle_swap

    root = state_dir + "/app"
    bundle_swap.mkdirs(root)
    if not bundle_swap.exists(root + "/main.py"):
        # The app this run is, so that a rollback has something to go back to.
        with open(root + "/main.py", "w") as f:
            f.write("# the app of %s (the repository's code)\n" % software_version())
    if not _app_booted:
        _app_booted = True
        bundle_swap.boot(root, lambda line: print("host board: " + line))
    return bundle_sink.BundleSink(root + "/update")
