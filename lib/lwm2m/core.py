# The core objects every client carries: Security (0), Server (1), Device (3) and
# Connectivity Monitoring (4), filled from the configuration and from the board. The board is
# any object with the methods of boards/host/board.py (see the README's board interface).
from micropython import const

from lwm2m.text import isdec

_NO_SEC = const(3)
_WLAN = const(21)  # Network Bearer: 21 WLAN (TS Core E.5)


def add_security(model, uri, ssid, bootstrap=False, mode=_NO_SEC, identity=b"", secret=b"", server_key=b"",
                 usage=None):
    # identity /0/x/3: the PSK identity or the client's certificate; secret /0/x/5: the PSK or
    # the private key; server_key /0/x/4: the server's certificate or its CA; usage /0/x/15:
    # the Certificate Usage (None: left out, 3 by default; see lwm2m.dtls). A bootstrap
    # server's account has no Short Server ID (ssid None).
    values = {0: uri, 1: bootstrap, 2: mode, 3: identity, 4: server_key, 5: secret, 11: 0}
    if ssid is not None:
        values[10] = ssid
    if usage is not None:
        values[15] = usage
    return model.add_instance(0, values=values)


def add_server(model, ssid, lifetime=86400, pmin=0, pmax=0, binding="U", disable_timeout=86400):
    # The factory Server instance. Its registration retries (TS Core 6.2.1.1) suit a board
    # on Wi-Fi: 5 attempts 10, 20, 40 and 80 s apart, then a new sequence after 5 min (or a
    # bootstrap, when there is a bootstrap server); the TS defaults (60 s, one day) apply to
    # a Server instance a bootstrap server writes without them.
    return model.add_instance(1, values={
        0: ssid, 1: lifetime, 2: pmin, 3: pmax, 5: disable_timeout, 6: False, 7: binding,
        16: True, 17: 5, 18: 10, 19: 300, 20: 1,
    })


def check_server_writes(server):
    # What a server writes to a Server instance is checked before anything changes (the
    # client binds the actions, and the Lifetime's check with them).
    for rid in (2, 3, 5):
        server.on_write(rid, None, seconds)
    server.on_write(7, None, check_binding)


def seconds(value, least=0):
    # A period in seconds as the TS allows it: least to 2**32-1; ValueError (4.00) else.
    if not least <= value or value >> 32:
        raise ValueError("expected %d to 4294967295 seconds, got %d" % (least, value))
    return value


def check_binding(value):
    # Binding /1/x/7: TS Core 1.1 letters U M H T S N, each at most once, and Q (queue mode,
    # as 1.0 writes it) after one of them. This client binds over UDP only.
    well_formed = value != ""
    for i, c in enumerate(value):
        if c not in "UMHTSNQ" or c in value[:i] or (c == "Q" and i == 0):
            well_formed = False
    if not well_formed:
        raise ValueError("binding %r: expected the letters U, M, H, T, S or N, each once, and Q after one" % value)
    if value != "U":
        raise ValueError("binding %r: this client binds over UDP only (\"U\")" % value)


def add_device(model, board, defer):
    # defer(func) runs func after the answer to the Execute has left: a reboot must not eat
    # its own ACK.
    dev = model.add_instance(3, 0, values={
        0: board.manufacturer(), 1: board.model(), 2: board.serial(), 3: board.firmware_version(),
        11: {0: 0}, 14: board.utc_offset(), 16: "U", 17: board.device_type(),
        19: board.software_version(), 21: board.memory_total() // 1024,
    })
    dev.on_execute(4, lambda _args: defer(board.reboot))
    dev.on_execute(5, lambda _args: defer(board.factory_reset))
    dev.on_execute(12, lambda _args: dev.set(11, {0: 0}))
    dev.on_read(10, lambda: board.memory_free() // 1024)
    dev.on_read(13, board.time)
    dev.on_write(13, board.set_time, seconds)
    dev.on_write(14, board.set_utc_offset, utc_offset)
    return dev


def utc_offset(value):
    # A UTC offset as Device /3/0/14 holds it, "+02:00" or "-05:30"; ValueError (4.00) else.
    if len(value) != 6 or value[0] not in "+-" or value[3] != ":" or not (isdec(value[1:3]) and isdec(value[4:])):
        raise ValueError("UTC offset like +02:00 expected, got %r" % value)
    return value


def add_connectivity(model, board):
    conn = model.add_instance(4, 0, values={0: _WLAN, 1: {0: _WLAN}})
    conn.on_read(2, board.rssi)
    conn.on_read(4, lambda: _numbered(board.ip_addresses()))
    conn.on_read(5, lambda: _numbered(board.router_addresses()))
    return conn


def _numbered(items):
    # A multiple resource value from a list: {0: first, 1: second, ...}
    return {i: item for i, item in enumerate(items)}
