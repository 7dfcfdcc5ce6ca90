# config.json: reading and checking it. Every error names the file, the field and what was
# expected, so a user at the USB REPL knows what to fix (see firmware/config.example.json).
import json

_URI = "a coap:// or coaps:// URI"
_REQUIRED = object()  # the default of a field that has none


class ConfigError(ValueError):
    pass


def _is_uri(value):
    return isinstance(value, str) and (value.startswith("coap://") or value.startswith("coaps://")) and len(value) > 8


def _is_count(value):
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _is_seconds(value):
    # a registration lifetime as the TS allows it: 1 to 2**32-1 s
    return _is_count(value) and value < 1 << 32


def _is_text(value):
    return isinstance(value, str) and value != ""


def _is_id(value):
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 65535


def _is_ssid(value):
    return _is_count(value) and value < 65535


def _is_rights(value):
    # {"101": 3, "0": 1}: Short Server IDs (0: any server) to ACL bits
    if not isinstance(value, dict):
        return False
    for key, bits in value.items():
        if not (key.isdigit() and int(key) < 65535 and _is_id(bits) and bits < 32):
            return False
    return True


# The fields of one server account's security; the bootstrap server's have "bootstrap_" before
# them. (field, default, check, what was expected)
_SECURITY_FIELDS = (
    ("security", "nosec", lambda v: v in ("nosec", "psk", "certificate"), "\"nosec\", \"psk\" or \"certificate\""),
    ("psk_identity", "", lambda v: isinstance(v, str), "a string"),
    ("psk_key", "", lambda v: isinstance(v, str) and len(v) % 2 == 0 and _is_hex(v), "the key as hex digits"),
    ("certificate", "", lambda v: isinstance(v, str), "a file name"),
    ("private_key", "", lambda v: isinstance(v, str), "a file name"),
    ("server_certificate", "", lambda v: isinstance(v, str), "a file name"),
    ("certificate_usage", 3,
     lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 3,
     "0 (CA constraint), 1 (service certificate), 2 (trust anchor) "
     "or 3 (domain-issued certificate)"),
)
_FILES = ("certificate", "private_key", "server_certificate")
_FIELDS = (
    ("server", None, lambda v: v is None or _is_uri(v), _URI + " or null (with a bootstrap_server)"),
    ("bootstrap_server", None, lambda v: v is None or _is_uri(v), _URI + " or null"),
    ("endpoint", None, lambda v: v is None or _is_text(v), "a name or null (from the board's unique id)"),
    ("lifetime", 300, _is_seconds, "a number of seconds from 1 to 4294967295"),
    ("lwm2m", "1.1", lambda v: v in ("1.0", "1.1"), "\"1.0\" or \"1.1\""),
    ("ack_timeout", 2, lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0.1 <= v <= 60,
     "a number of seconds from 0.1 to 60"),
    ("state_dir", "/state", lambda v: v is None or _is_text(v), "a folder or null"),
    ("queue_mode", False, lambda v: v is True or v is False, "true or false"),
    ("queue_window_s", 93, lambda v: _is_count(v) and v <= 86400, "a number of seconds from 1 to 86400"),
    ("sleep", None, lambda v: v in (None, "deep", "light", "none"),
     "\"deep\", \"light\", \"none\" or null (the board's own: deep on an ESP32, light on a Pico W)"),
) + _SECURITY_FIELDS + tuple(("bootstrap_" + f[0],) + f[1:] for f in _SECURITY_FIELDS)
# One entry of "servers": a management server of its own Short Server ID, with the security
# fields of the server above.
_SERVER_FIELDS = (
    ("server", _REQUIRED, _is_uri, _URI),
    ("ssid", _REQUIRED, _is_ssid, "a Short Server ID from 1 to 65534"),
    ("lifetime", None, lambda v: v is None or _is_seconds(v), "a number of seconds from 1 to 4294967295, or null"),
) + _SECURITY_FIELDS
# One entry of "access": an Access Control instance (see CONFIG.md).
_ACCESS_FIELDS = (
    ("object", _REQUIRED, lambda v: _is_id(v) and v > 0, "an object id from 1 to 65535"),
    ("instance", _REQUIRED, _is_id, "an instance id, or 65535 for the object itself (Create)"),
    ("rights", {}, _is_rights, "an object of Short Server ID (\"0\": any server) to the sum of Read 1, Write 2,"
     " Execute 4, Delete 8, Create 16"),
    ("owner", None, lambda v: v is None or _is_ssid(v), "a Short Server ID or null"),
)
# The caps on what servers can make the client hold; a field left out keeps the client's
# default (lwm2m.client.LIMITS, listed in CONFIG.md).
_LIMIT_FIELDS = tuple((name, None, lambda v: v is None or _is_count(v), "a positive count or null")
                      for name in ("observations", "attributes", "instances", "duplicates", "duplicate_bytes", "block_bytes"))
# Firmware updates over the air (object 5): how long a new image has to register before it
# is rolled back, and a PSK for coaps:// download servers that are not LwM2M servers.
_FIRMWARE_FIELDS = (
    ("confirm_s", 300, lambda v: _is_count(v) and v <= 86400, "a number of seconds from 1 to 86400"),
    ("psk_identity", "", lambda v: isinstance(v, str), "a string"),
    ("psk_key", "", lambda v: isinstance(v, str) and len(v) % 2 == 0 and _is_hex(v), "the key as hex digits"),
)
# Reports by Send (LwM2M 1.1): which paths, how often, in which format.
_SEND_FIELDS = (
    ("paths", [], lambda v: isinstance(v, list) and all(_is_path(p) for p in v),
     "a list of paths such as [\"/3303/0\", \"/3/0/9\"]"),
    ("period_s", 60, lambda v: _is_count(v) and v <= 86400, "a number of seconds from 1 to 86400"),
    ("format", "senml-cbor", lambda v: v in ("senml-cbor", "senml-json"), "\"senml-cbor\" or \"senml-json\""),
)
_WIFI_FIELDS = (
    ("ssid", "", lambda v: isinstance(v, str), "a string"),
    ("password", "", lambda v: isinstance(v, str), "a string"),
    ("timeout_s", 20, _is_count, "a positive number of seconds"),
    ("retries", 3, _is_count, "a positive count"),
)


def _is_path(value):
    # "/3303/0/5700": an object, instance, resource or resource instance
    parts = value.split("/") if isinstance(value, str) else ()
    return 2 <= len(parts) <= 5 and parts[0] == "" and all(p.isdigit() and int(p) < 65536 for p in parts[1:])


def _is_hex(text):
    for c in text:
        if c not in "0123456789abcdefABCDEF":
            return False
    return True


def _check(doc, fields, path, prefix):
    out = {}
    for name, default, ok, expected in fields:
        value = doc.get(name, default)
        if value is _REQUIRED:
            raise ConfigError("%s: %s%s: missing, expected %s" % (path, prefix, name, expected))
        if not ok(value):
            raise ConfigError("%s: %s%s: expected %s, got %r" % (path, prefix, name, expected, value))
        out[name] = value
    for name in doc:
        if name not in out and name not in _SECTIONS and name not in _LISTS:
            raise ConfigError("%s: %s%s: unknown field" % (path, prefix, name))
    return out


# What each kind of security needs: (field, what it holds)
_NEEDED = {
    "psk": (("psk_identity", "the identity the server knows"), ("psk_key", "the key as hex digits")),
    "certificate": (("certificate", "the board's certificate file (DER or PEM)"),
                    ("private_key", "its private key file (DER or PEM)"),
                    ("server_certificate", "the server's certificate or its CA, a file (DER or PEM)")),
}


# The objects inside config.json: (name, its fields, what it was expected to be)
_SECTIONS = {
    "wifi": (_WIFI_FIELDS, "an object with ssid and password"),
    "limits": (_LIMIT_FIELDS, "an object of caps such as {\"observations\": 16}"),
    "firmware": (_FIRMWARE_FIELDS, "an object such as {\"confirm_s\": 300}"),
    "send": (_SEND_FIELDS, "an object such as {\"paths\": [\"/3303/0\"], \"period_s\": 60}"),
}


# The lists inside config.json: (name, the fields of each entry, what it was expected to be)
_LISTS = {
    "servers": (_SERVER_FIELDS, "a list of servers such as [{\"server\": \"coap://host:5683\", \"ssid\": 101}]"),
    "access": (_ACCESS_FIELDS, "a list of access rights such as [{\"object\": 3311, \"instance\": 0,"
                               " \"rights\": {\"101\": 3}}]"),
}


def parse(doc, path):
    # The checked configuration with defaults filled in.
    if not isinstance(doc, dict):
        raise ConfigError("%s: expected a JSON object" % path)
    config = _check(doc, _FIELDS, path, "")
    for name, (fields, expected) in _SECTIONS.items():
        section = doc.get(name, {})
        if not isinstance(section, dict):
            raise ConfigError("%s: %s: expected %s" % (path, name, expected))
        config[name] = _check(section, fields, path, name + ".")
    for name, (fields, expected) in _LISTS.items():
        items = doc.get(name, [])
        if not isinstance(items, list) or [i for i in items if not isinstance(i, dict)]:
            raise ConfigError("%s: %s: expected %s" % (path, name, expected))
        config[name] = [_check(item, fields, path, "%s[%d]." % (name, i)) for i, item in enumerate(items)]
    config["limits"] = {k: v for k, v in config["limits"].items() if v is not None}
    firmware = config["firmware"]
    if bool(firmware["psk_identity"]) != bool(firmware["psk_key"]):
        raise ConfigError("%s: firmware.psk_key: expected both psk_identity and psk_key, or neither" % path)
    if config["server"] is None and not config["servers"] and config["bootstrap_server"] is None:
        raise ConfigError("%s: server: missing, expected %s, or servers, or a bootstrap_server" % (path, _URI))
    for uri, prefix in (("server", ""), ("bootstrap_server", "bootstrap_")):
        if config[uri] is not None:
            _check_security(config, path, uri, prefix, prefix)
    ssids = [1] if config["server"] else []
    for i, entry in enumerate(config["servers"]):
        where = "servers[%d]." % i
        _check_security(entry, path, "server", "", where)
        if entry["ssid"] in ssids:
            raise ConfigError("%s: %sssid: %d is taken (\"server\" is 1): expected a Short Server ID of its own"
                              % (path, where, entry["ssid"]))
        ssids.append(entry["ssid"])
    return config


def _check_security(config, path, uri, prefix, where):
    # Does the security of the account at config[uri] fit its scheme, with all it needs?
    # `where` starts the field names in errors ("bootstrap_", "servers[1].").
    security = config[prefix + "security"]
    if config[uri].startswith("coaps://") == (security == "nosec"):
        raise ConfigError("%s: %ssecurity: %r with %s: expected \"psk\" or \"certificate\" for a coaps:// server"
                          " and \"nosec\" for coap://" % (path, where, security, config[uri]))
    for name, expected in _NEEDED.get(security, ()):
        if not config[prefix + name]:
            raise ConfigError("%s: %s%s: missing, expected %s for %r" % (path, where, name, expected, security))


def load(path):
    try:
        with open(path) as f:
            doc = json.load(f)
    except OSError:
        raise ConfigError("%s: cannot read it: copy config.example.json there and edit it" % path)
    except ValueError:
        raise ConfigError("%s: not valid JSON" % path)
    return read_files(parse(doc, path), path)


def read_files(config, source):
    # Reads the certificate files a checked configuration names: from here on those fields
    # hold the files' contents. `source` names the configuration in errors.
    _read_files(config, _FILES + tuple("bootstrap_" + name for name in _FILES), source, "")
    for i, entry in enumerate(config["servers"]):
        _read_files(entry, _FILES, source, "servers[%d]." % i)
    return config


def _read_files(fields, names, source, where):
    for name in names:
        if fields[name]:
            try:
                with open(fields[name], "rb") as f:
                    fields[name] = f.read()
            except OSError:
                raise ConfigError("%s: %s%s: cannot read %r: is the file there?" % (source, where, name, fields[name]))
