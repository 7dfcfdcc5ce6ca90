# The main job: builds the object model from the definitions in the objects folder, fills the
# core objects from the configuration and the board, adds the board's sensors, and runs the
# client. On a board MicroPython runs this file at boot; on a host tools/host_run.py calls
# build() and run() with the host board.
import os

from lwm2m import core
from lwm2m.client import Client
from lwm2m.model import Model, load_definition
from lwm2m.store import Persist, StoreError

_TEMPERATURE = 3303
_SENSOR_VALUE = 5700
_SENSOR_UNITS = 5701


def load_objects(model, folder):
    # Every <id>.json compact definition in the folder.
    for name in sorted(os.listdir(folder)):
        if name.endswith(".json"):
            model.define(load_definition(folder + "/" + name))


def build(config, board, transport, objects_dir, log=print):
    # The client for config: {"server": "coap://host:port", "endpoint": name,
    # "lifetime": s, "lwm2m": "1.1", "state_dir": folder or None}; it registers once run.
    model = Model()
    load_objects(model, objects_dir)
    for oid in (0, 1, 3, 4):
        if model.object(oid) is None:
            raise ValueError("%s/%d.json: missing: the core objects are needed" % (objects_dir, oid))
    client = Client(model, config["endpoint"], transport, config.get("lwm2m", "1.1"), log)
    core.add_security(model, config["server"], 1)
    core.add_server(model, 1, config.get("lifetime", 86400))
    core.add_device(model, board, client.defer)
    core.add_connectivity(model, board)
    if model.object(_TEMPERATURE) and board.temperature() is not None:
        sensor = model.add_instance(_TEMPERATURE, 0, {_SENSOR_UNITS: "Cel"})
        sensor.on_read(_SENSOR_VALUE, board.temperature)
    if config.get("state_dir"):
        _persist(model, client, config["state_dir"], log)
    return client


def _persist(model, client, folder, log):
    # What servers write to Server (1) and Device (3) survives a restart.
    try:
        os.mkdir(folder)
    except OSError:
        pass  # it exists
    persist = Persist(model, folder + "/servers.json", (1, 3), client.defer)
    try:
        log("restored %d values from %s" % (persist.restore(), persist.path))
    except StoreError as exc:
        log("%s: ignored, starting from the configuration" % exc)
    model.watchers.append(persist.changed)


def run(client, running=lambda: True):
    # Registers, serves and keeps the registration alive while running() is true, then
    # de-registers.
    try:
        client.run(running)
    finally:
        client.stop()


if __name__ == "__main__":
    import json

    import board
    from lwm2m.transport import UdpTransport

    with open("config.json") as f:
        settings = json.load(f)
    run(build(settings, board, UdpTransport(), "/objects"))
