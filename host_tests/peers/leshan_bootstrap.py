# Drives host_tests/peers/leshan/LeshanBootstrapPeer.java (the bootstrap server of Eclipse
# Leshan 2.0.0-M15 in a JVM, built by `make setup` into build/leshan beside LeshanPeer) the way
# leshan_server.py drives the server: commands as JSON lines on its stdin, answers and the
# bootstrap session's events (bootstrap-request, -authorized, -send, -response, -finished,
# -failed; their fields are described in the .java file) as JSON lines on its stdout, its own
# log and the CoAP trace on stderr, kept for dump().
from peers.leshan_server import LeshanProcess, available, hex_key


def unavailable():
    # Why the bootstrap server and the server cannot start (not built, no java), or None.
    return available("LeshanPeer") or available("LeshanBootstrapPeer")


def server(ssid, uri, lifetime=86400, binding="U", identity=None, key=None, **retries):
    # One management server of a config(): NoSec, or PSK when identity and key (bytes or hex)
    # are given; retries: retry_count, retry_timer, sequence_delay, sequence_retry (/1/x/17
    # to /1/x/20).
    entry = dict(retries, ssid=ssid, uri=uri, lifetime=lifetime, binding=binding, mode="nosec")
    if identity is not None:
        entry.update(mode="psk", identity=identity, key=hex_key(key))
    return entry


class LeshanBootstrapServer(LeshanProcess):
    # Binds CoAP and CoAPS on 127.0.0.1 to ports the kernel chooses (or the ones given). It
    # bootstraps only the endpoints given a config().
    def __init__(self, coap_port=0, coaps_port=0, trace=True, start_timeout=30):
        args = ["--coap-port", str(coap_port), "--coaps-port", str(coaps_port)] + (["--trace"] if trace else [])
        super().__init__("LeshanBootstrapPeer", args, start_timeout)

    def config(self, endpoint, servers, delete=None, auto_id=False, format=None, acls=()):
        # What the endpoint gets at its next Bootstrap-Request (replacing any config before):
        # servers, a list of server(...) entries; delete, the paths deleted first (the peer's
        # default ["/0", "/1"]); auto_id, Leshan's autoIdForSecurityObject (a Bootstrap-Discover
        # first); format, a content format for the Writes instead of the client's preferred one;
        # acls, Access Control instances: (object, instance, {ssid: bits}, owner or None).
        fields = {"servers": servers, "autoIdForSecurityObject": auto_id,
                  "acls": [{"object": oid, "instance": iid, "rights": {str(k): v for k, v in rights.items()},
                            "owner": owner} for oid, iid, rights, owner in acls]}
        if delete is not None:
            fields["delete"] = delete
        if format is not None:
            fields["format"] = format
        return self.command("config", endpoint, **fields)

    def add_psk(self, endpoint, identity, key):
        # The endpoint bootstraps over CoAPS with this PSK (key: bytes or hex), and no longer
        # over CoAP.
        return self.command("add-psk", endpoint, identity=identity, key=hex_key(key))
