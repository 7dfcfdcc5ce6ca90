# The virtual board's `network` module (tools/vboard.mjs installs it as a built-in): a Wi-Fi
# station that joins the access points the board was started with (--wifi SSID:PASSWORD).
# Joining takes about half a second, like a real one; then the station has the address
# 127.0.0.1 (the board's sockets are the host's loopback). Status numbers are ESP32's.
import time

import _vboard

STA_IF = 0
AP_IF = 1
STAT_IDLE = 1000
STAT_CONNECTING = 1001
STAT_GOT_IP = 1010
STAT_NO_AP_FOUND = 201
STAT_WRONG_PASSWORD = 202
STAT_BEACON_TIMEOUT = 200
STAT_ASSOC_FAIL = 203
STAT_HANDSHAKE_TIMEOUT = 204
STAT_CONNECT_FAIL = 203
_JOIN_MS = 500

_interfaces = {}


def country(code=None):
    return "XX" if code is None else None


def hostname(name=None):
    return "vboard" if name is None else None


def WLAN(interface=STA_IF):
    # One object per interface, as on the boards.
    if interface not in _interfaces:
        _interfaces[interface] = _WLAN(interface)
    return _interfaces[interface]


class _WLAN:
    def __init__(self, interface):
        self._if = interface
        self._active = False
        self._ssid = None
        self._status = STAT_IDLE
        self._since = 0
        self._result = STAT_NO_AP_FOUND

    def active(self, state=None):
        if state is None:
            return self._active
        self._active = bool(state)
        _vboard.radio(1 if self._active else 0)  # the board counts the time the radio is on
        if not self._active:
            self.disconnect()

    def connect(self, ssid=None, key=None, bssid=None):
        if not self._active:
            raise OSError("Wi-Fi Internal State Error")
        self._ssid = ssid
        self._status = STAT_CONNECTING
        self._since = time.ticks_ms()
        self._result = _vboard.join(str(ssid), "" if key is None else str(key))

    def disconnect(self):
        self._status = STAT_IDLE
        self._ssid = None

    def _update(self):
        if self._status == STAT_CONNECTING and time.ticks_diff(time.ticks_ms(), self._since) >= _JOIN_MS:
            self._status = STAT_GOT_IP if self._result == 0 else self._result

    def status(self, param=None):
        self._update()
        if param is None:
            return self._status
        if param == "rssi":
            if self._status != STAT_GOT_IP:
                raise OSError("not connected")
            return -52
        raise ValueError("unknown status param")

    def isconnected(self):
        self._update()
        return self._status == STAT_GOT_IP

    def ifconfig(self, config=None):
        if config is not None:
            return
        if self.isconnected():
            return ("127.0.0.1", "255.0.0.0", "127.0.0.1", "127.0.0.1")
        return ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0")

    def config(self, *args, **kwargs):
        if args == ("mac",):
            import machine

            return machine.unique_id()[:6]
        if args == ("ssid",) or args == ("essid",):
            return self._ssid or ""
        if args:
            raise ValueError("unknown config param")

    def scan(self):
        return []
