# The main job: builds the object model from the definitions in the objects folder, fills the
# core objects from the configuration and the board, adds the board's sensors, and runs the
# client under a supervisor that logs a failure, backs off and starts again. On a board
# main.py calls main() after boot.py (this module is deployed compiled: compiling it on the
# board would take heap); on a host tools/host_run.py calls supervise() with the host board.
import os
import time

from lwm2m import core
from lwm2m.client import Client
from lwm2m.model import Model, load_definition
from lwm2m.store import Persist, StoreError

_TEMPERATURE = 3303
_SENSOR_VALUE = 5700
_SENSOR_UNITS = 5701
_LIGHT = 3311
_PSK = 0  # Security Modes /0/x/2
_CERTIFICATE = 2
_ON_OFF = 5850
_ACCESS_CONTROL = 2
_FIRMWARE_UPDATE = 5
_SEND_FORMATS = {"senml-json": 110, "senml-cbor": 112}
_RESTART_FIRST_MS = 5000
_RESTART_MAX_MS = 300000
_WATCHDOG_MS = 8000  # the longest the RP2040 watchdog allows (8.3 s)
_FEED_MS = 1000  # with a watchdog, the loop wakes at least this often to feed it
_DEEP_SLEEP_MIN_MS = 5000  # a shorter wait costs less awake than a boot and a Wi-Fi join


def load_objects(model, folder):
    # Every <id>.json compact definition in the folder.
    for name in sorted(os.listdir(folder)):
        if name.endswith(".json"):
            model.define(load_definition(folder + "/" + name))


def build(config, board, transport, objects_dir, log=print):
    # The client for a checked configuration (firmware/config.py); it registers once run.
    model = Model()
    load_objects(model, objects_dir)
    for oid in (0, 1, 3, 4):
        if model.object(oid) is None:
            raise ValueError("%s/%d.json: missing: the core objects are needed" % (objects_dir, oid))
    endpoint = config["endpoint"] or board.endpoint_name()
    client = Client(model, endpoint, transport, config["lwm2m"], log, limits=config["limits"],
                    ack_timeout_ms=int(config["ack_timeout"] * 1000), access_control=bool(config["access"]),
                    queue_window_ms=config["queue_window_s"] * 1000 if config["queue_mode"] else None)
    if config["bootstrap_server"]:
        _add_account(model, config, "bootstrap_", None)
    if config["server"]:
        _add_account(model, config, "", 1)
        core.add_server(model, 1, config["lifetime"])
    for entry in config["servers"]:
        _add_account(model, entry, "", entry["ssid"])
        core.add_server(model, entry["ssid"], entry["lifetime"] or config["lifetime"])
    for entry in config["access"]:
        _add_access(model, entry, objects_dir)
    device = core.add_device(model, board, client.defer)
    if config["queue_mode"]:
        device.set(16, "UQ")  # Supported Binding and Modes: UDP, and queue mode
    core.add_connectivity(model, board)
    if model.object(_TEMPERATURE) and board.temperature() is not None:
        sensor = model.add_instance(_TEMPERATURE, 0, {_SENSOR_UNITS: "Cel"})
        sensor.on_read(_SENSOR_VALUE, board.temperature)
    if model.object(_LIGHT) and board.led() is not None:
        light = model.add_instance(_LIGHT, 0, {_ON_OFF: bool(board.led())})
        light.on_write(_ON_OFF, board.led)
    send = config["send"]
    if send["paths"]:
        from lwm2m.send import Every

        client.tasks.append(Every(client, send["paths"], send["period_s"] * 1000, _SEND_FORMATS[send["format"]]))
    if config["state_dir"]:
        _persist(model, client, config["state_dir"], log)
        if model.object(_FIRMWARE_UPDATE) and hasattr(board, "firmware_sink"):
            _firmware(client, board, config)
    return client


def _firmware(client, board, config):
    # Object 5 on the board's sink; its state (and a pull's progress) is kept in the state
    # folder, which an update needs.
    from lwm2m.firmware import Firmware

    settings = config["firmware"]
    psk = None
    if settings["psk_identity"]:
        psk = (settings["psk_identity"].encode(), bytes.fromhex(settings["psk_key"]))
    folder = config["state_dir"]
    Firmware(client, board.firmware_sink(folder), board.reboot, folder + "/firmware.json", settings["confirm_s"], psk)


def _add_account(model, config, prefix, ssid):
    # The factory Security instance of config's server (prefix "") or bootstrap server
    # ("bootstrap_", ssid None): config.load() has read the certificate files.
    uri = config[prefix + "server"]
    security = config[prefix + "security"]
    bootstrap = ssid is None
    if security == "psk":
        core.add_security(model, uri, ssid, bootstrap, _PSK, config[prefix + "psk_identity"].encode(),
                          bytes.fromhex(config[prefix + "psk_key"]))
    elif security == "certificate":
        core.add_security(model, uri, ssid, bootstrap, _CERTIFICATE, config[prefix + "certificate"],
                          config[prefix + "private_key"], config[prefix + "server_certificate"],
                          config[prefix + "certificate_usage"])
    else:
        core.add_security(model, uri, ssid, bootstrap)


def _add_access(model, entry, objects_dir):
    # An Access Control instance of config.json's "access" (firmware/config.py checked it).
    if model.object(_ACCESS_CONTROL) is None:
        raise ValueError("%s/2.json: missing: \"access\" in config.json needs the Access Control object" % objects_dir)
    values = {0: entry["object"], 1: entry["instance"], 2: {int(k): v for k, v in entry["rights"].items()}}
    if entry["owner"] is not None:
        values[3] = entry["owner"]
    model.add_instance(_ACCESS_CONTROL, None, values)


def _persist(model, client, folder, log):
    # What servers write to Server (1) and Device (3), and what a bootstrap gave (Security,
    # Server, Access Control), survives a restart; a corrupt file is set aside as .bad.
    try:
        os.mkdir(folder)
    except OSError:
        pass  # it exists
    whole = tuple(oid for oid in (0, 1, _ACCESS_CONTROL) if model.object(oid))
    persist = Persist(model, folder + "/servers.json", (1, 3), client.defer, whole,
                      lambda: client.bootstrap is not None)
    try:
        restored, refused = persist.restore()
        log("restored %d values from %s%s" % (restored, persist.path, " (bootstrapped)" if persist.whole_saved else ""))
        if refused:
            log("%s: ignored %s: not valid for those resources" % (persist.path, ", ".join(refused)))
    except StoreError as exc:
        bad = persist.path + ".bad"
        try:
            os.remove(bad)  # FAT renames over nothing
        except OSError:
            pass
        os.rename(persist.path, bad)
        log("%s: set aside as %s, starting from the configuration" % (exc, bad))
    model.watchers.append(persist.changed)
    client.on_bootstrapped = persist.bootstrapped


def dozer(client, board, mode, max_ms, log=print):
    # How the client sleeps while queue mode has it asleep, by config.json's "sleep" (else
    # the board's SLEEP): "deep" saves its state and deep-sleeps, the board booting again
    # into it (waits under _DEEP_SLEEP_MIN_MS, or a state too large for RTC memory, sleep
    # lightly instead); "light" light-sleeps; "none" waits in time.sleep_ms(). A light sleep
    # lasts at most max_ms, so that a watchdog is fed.
    said = []

    def doze(ms):
        if mode == "deep" and ms >= _DEEP_SLEEP_MIN_MS:
            if board.deep_sleep(ms, client.freeze()):
                return
            if not said:
                said.append(True)
                log("deep sleep: no state to keep, or too large for RTC memory: sleeping lightly")
        if mode != "none":
            board.light_sleep(min(ms, max_ms))
        else:
            time.sleep_ms(min(ms, max_ms))

    return doze


def serve(client, running, watchdog=None, doze=None):
    # The client's loop while running() is true (waking at least every second to feed the
    # watchdog when there is one), then de-registers.
    try:
        if watchdog:
            client.run(running, watchdog.feed, _FEED_MS, doze)
        else:
            client.run(running, doze=doze)
    finally:
        # De-register, waiting for the answer no longer than the watchdog allows.
        client.stop(_WATCHDOG_MS // 2 if watchdog else 10000)


def supervise(board, config, objects_dir, new_transport, log=print, running=lambda: True,
              sleep_ms=time.sleep_ms):
    # Connects, builds and serves; any exception is logged and everything starts again after
    # a growing pause. Ctrl-C (KeyboardInterrupt) is not caught: the USB REPL stays usable.
    watchdog = board.watchdog(_WATCHDOG_MS)
    if config["state_dir"]:
        board.STATE_DIR = config["state_dir"]  # what factory_reset() empties
    woken = board.woken() if hasattr(board, "woken") else None  # the state a deep sleep kept
    mode = config["sleep"] or getattr(board, "SLEEP", None) or "none"
    pause = _RESTART_FIRST_MS
    while running():
        try:
            wifi = config["wifi"]
            if wifi["ssid"] and not board.connect(wifi["ssid"], wifi["password"], wifi["timeout_s"], wifi["retries"], log):
                raise OSError("Wi-Fi %r not reachable" % wifi["ssid"])
            client = build(config, board, new_transport(), objects_dir, log)
            client.start(woken)
            woken = None  # a restart after a failure registers anew
            doze = dozer(client, board, mode, _FEED_MS if watchdog else 60000, log) if config["queue_mode"] else None
            serve(client, running, watchdog, doze)
            return
        except Exception as exc:
            log("client stopped by %s: %s; starting again in %d s" % (type(exc).__name__, exc, pause // 1000))
        slept = 0
        while slept < pause and running():
            if watchdog:
                watchdog.feed()
            sleep_ms(_FEED_MS)
            slept += _FEED_MS
        pause = min(pause * 2, _RESTART_MAX_MS)


def main():
    # What a board runs: config.json checked by config.py, which is then unloaded (its checks
    # are needed once and keep more heap than anything but the client itself).
    import sys

    import board
    from config import ConfigError, load
    from lwm2m.transport import UdpTransport

    if "safe" in os.listdir():
        return  # safe mode (see boot.py): the REPL is left free
    try:
        settings = load("config.json")
    except ConfigError as exc:
        print(exc)  # nothing runs: the REPL is free to fix config.json
        return
    finally:
        del ConfigError, load
        sys.modules.pop("config", None)
    supervise(board, settings, "/objects", UdpTransport)
