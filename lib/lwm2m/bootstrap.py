# The Bootstrap interface, client side (TS Core 1.1 5.2, 6.1): the Bootstrap-Request to the
# bootstrap server of the Security instance whose /0/x/1 is true, then that server's
# Bootstrap-Write, -Read, -Discover and -Delete until its Bootstrap-Finish, which is checked
# before it is accepted. The instances and values held before the Request are kept aside and
# put back when the bootstrap fails or never finishes. client.py imports this module only
# when a bootstrap is due.
#
# Decisions beyond the TS:
# - Bootstrap-Delete removes the instances of Security (but the bootstrap server's own
#   account), Server and Access Control, and the instances a server or a bootstrap created.
#   Device and the application's own instances (its sensors, Connectivity Monitoring) stay:
#   they carry the application's hooks, which only the application can make again. Deleting
#   one of them by name is 4.00.
# - A Bootstrap-Write to an existing instance updates the resources it names (a multiple
#   resource is replaced whole); to a missing one it creates the instance.
# - A failed bootstrap is tried again after 10 s, then 20 s, 40 s ... up to 5 min.
import time

from micropython import const

from lwm2m import Error, clip, coap, core, dm, formats, link
from lwm2m.registration import handshake_failure, handshake_over, split_uri

_CON = const(0)
_GET = const(0x01)
_POST = const(0x02)
_PUT = const(0x03)
_DELETE = const(0x04)
_DELETED = const(0x42)
_CHANGED = const(0x44)
_BAD_REQUEST = const(0x80)
_UNAUTHORIZED = const(0x81)
_NOT_FOUND = const(0x84)
_METHOD_NOT_ALLOWED = const(0x85)
_NOT_ACCEPTABLE = const(0x86)
_ACCEPT = const(17)
_CONTENT_FORMAT = const(12)
_LINK_FORMAT = const(40)
_TLV = const(11542)

_SECURITY = const(0)
_SERVER = const(1)
_ACCESS = const(2)
_DEVICE = const(3)
_RESERVED_IID = const(65535)
_PSK = const(0)
_RPK = const(1)
_CERTIFICATE = const(2)
_NO_SEC = const(3)
BOOTSTRAP = const(0)  # the `creator` of an instance a bootstrap server wrote into being

# States
_HOLD_OFF = const(0)  # the Request goes at next_at
_REQUESTED = const(1)  # the Request is outstanding (the server may already write)
_SERVING = const(2)  # serving the bootstrap server until its Finish

_EXCHANGE_LIFETIME_MS = const(247000)  # a bootstrap with no operation for that long is given up
_RETRY_FIRST_MS = const(10000)
_RETRY_MAX_MS = const(300000)
_SLEEP_MAX_MS = const(60000)


def is_bootstrap_account(security):
    return security.has(1) and bool(security.get(1))


class Bootstrap:
    # One client-initiated bootstrap with the bootstrap server of Security instance `account`,
    # for `client` (its model, exchange, transport, log and clock); done() is called on the
    # client once a Finish is accepted and answered.
    def __init__(self, client, account):
        self.client = client
        self.account = account
        self.uri = account.get(0)
        scheme, host, port = split_uri(self.uri)
        self.security = None  # the bootstrap account, for a coaps:// server
        if scheme == "coaps":
            from lwm2m import dtls

            dtls.check(account)
            self.security = account
        self.addr = client.transport.resolve(host, port)
        self.handshake_at = None
        self.retry_ms = _RETRY_FIRST_MS
        self.saved = None  # the model as it was before the Request
        hold_off = account.get(11) if account.has(11) else 0
        self._wait(core.seconds(hold_off) * 1000)

    def _wait(self, ms, now=None):
        # The Request goes ms after now, or after the first step() (the clock of the caller's
        # poll() is not known before it).
        self.state = _HOLD_OFF
        self.wait_ms = ms
        self.next_at = None if now is None else time.ticks_add(now, ms)

    def step(self, now):
        # Does what is due; returns the ms until it next needs to be called.
        if self.state == _HOLD_OFF:
            if self.next_at is None:
                self.next_at = time.ticks_add(now, self.wait_ms)
            left = time.ticks_diff(self.next_at, now)
            if left > 0:
                return left
            self._request()
        elif self.handshake_at is not None:
            over = handshake_over(self.client.transport, self.addr, self.handshake_at, now)
            if over is not False:
                self.handshake_at = None
            if over is None:
                self.client.exchange.cancel(self.addr)
                self._failed(handshake_failure(self.client.transport, self.addr, "bootstrap account's security"))
        elif self.state == _SERVING and time.ticks_diff(now, self.next_at) >= 0:
            self._failed("no Bootstrap-Finish within %d s of the last operation" % (_EXCHANGE_LIFETIME_MS // 1000))
        return _SLEEP_MAX_MS

    def _request(self):
        client = self.client
        if self.saved is None:
            self.saved = _snapshot(client.model)
        msg = coap.Message(_CON, _POST)
        msg.set_path("/bs")
        msg.add_query("ep", client.endpoint)
        if client.version != "1.0":
            msg.add_query("pct", _TLV)
        if self.security:
            from lwm2m import dtls

            client.exchange.cancel(self.addr)
            why = dtls.secure(client.transport, self.addr, self.security)  # a new session for every Request
            if why:
                self._failed(why)
                return
            self.handshake_at = client.now
        self.state = _REQUESTED
        client.log("bootstrap request to %s as %s" % (self.uri, client.endpoint))
        client.exchange.request(msg, self.addr, self._answered, client.now)

    def _answered(self, response):
        if self.state != _REQUESTED:
            return  # the server wrote, and so was heard, before this answer came
        if response is not None and response.code == _CHANGED:
            self._serving()
        else:
            self._failed("Bootstrap-Request: %s" % ("no answer" if response is None else coap.code_name(response.code)))

    def _serving(self):
        self.state = _SERVING
        self.next_at = time.ticks_add(self.client.now, _EXCHANGE_LIFETIME_MS)

    def _failed(self, why):
        # Puts the model back as it was, and tries again after the back-off.
        if self.saved is not None:
            _restore(self.client.model, self.saved)
            self.saved = None
        self.client.log("bootstrap from %s failed (%s); retrying in %d s" % (self.uri, why, self.retry_ms // 1000))
        self._wait(self.retry_ms, self.client.now)
        self.retry_ms = min(self.retry_ms * 2, _RETRY_MAX_MS)

    # -- the bootstrap server's operations

    def serve(self, request):
        # The answer to one request of the bootstrap server: (code, content format, payload).
        if self.state == _HOLD_OFF:
            raise Error(_UNAUTHORIZED, "no bootstrap under way")
        if self.state == _REQUESTED:
            self._serving()  # its first operation tells the Request was heard
        self.next_at = time.ticks_add(self.client.now, _EXCHANGE_LIFETIME_MS)
        code = request.code
        if code == _POST and request.get_all(11) == ["bs"]:
            return self._finish()
        path = dm.parse_path(request.get_all(11))
        model = self.client.model
        if code == _PUT:
            return write(model, path, request.get(_CONTENT_FORMAT), request.payload, self.client.limits["instances"])
        if code == _GET and request.get(_ACCEPT) == _LINK_FORMAT:
            return discover(model, path)
        if code == _GET:
            if not path or path[0] not in (_SERVER, _ACCESS):
                raise Error(_UNAUTHORIZED, "Bootstrap-Read is for the Server and Access Control objects only")
            return dm.read(model, path, request.get(_ACCEPT))
        if code == _DELETE:
            return delete(model, path, self.account)
        raise Error(_METHOD_NOT_ALLOWED, "%s is not a bootstrap operation" % coap.code_name(code))

    def _finish(self):
        missing = check(self.client.model)
        if missing:
            text = "; ".join(missing)
            self.client.log("Bootstrap-Finish refused: %s" % clip(text))
            self.client.defer(lambda: self._failed("the configuration was not usable"))
            raise Error(_NOT_ACCEPTABLE, text)
        self.saved = None
        self.client.log("bootstrap from %s finished" % self.uri)
        self.client.defer(self.client.bootstrapped)
        return _CHANGED, None, b""


def _snapshot(model):
    # {oid: {iid: (instance, a copy of its values)}}: what _restore() puts back.
    saved = {}
    for oid, obj in model.objects.items():
        saved[oid] = {iid: (inst, _copy(inst.values)) for iid, inst in obj.instances.items()}
    return saved


def _copy(values):
    return {rid: dict(v) if isinstance(v, dict) else v for rid, v in values.items()}


def _restore(model, saved):
    for oid, instances in saved.items():
        obj = model.objects[oid]
        obj.instances = {}
        for iid, (inst, values) in instances.items():
            inst.values = values
            obj.instances[iid] = inst
    if model.on_tree_change:
        model.on_tree_change()


def write(model, path, cf, payload, most):
    # Bootstrap-Write of an object, an instance or a resource: any resource but executables,
    # read-only ones and Security's included; missing instances are created, at most `most`
    # in each object (the "instances" limit, as for a server's Create). Every value and
    # every application check is seen before anything changes.
    if not path or len(path) == 4:
        raise Error(_BAD_REQUEST, "Bootstrap-Write needs an object, an instance or a resource")
    obj = model.object(path[0])
    if obj is None:
        raise Error(_NOT_FOUND, "no object %s" % dm.path_str(path[:1]))
    if cf is None:
        raise Error(_BAD_REQUEST, "Bootstrap-Write without a Content-Format")
    by_iid = {}
    for record in formats.decode(cf, path, payload, dm.rtype_of(model, path)):
        by_iid.setdefault(record[0][1], []).append(record)
    changes = []
    created = 0
    for inst in obj.instances.values():
        created += inst.creator == BOOTSTRAP
    for iid, records in by_iid.items():
        if iid == _RESERVED_IID:
            raise Error(_BAD_REQUEST, "instance id 65535 is reserved")
        inst = obj.instances.get(iid)
        updates = dm.values_of(obj, records, False)
        if inst is None:
            created += 1
            if created > most:
                raise Error(_BAD_REQUEST, "more than %d instances of /%d" % (most, obj.oid))
            if not obj.multiple and len(obj.instances) + len(changes) > 0:
                raise Error(_BAD_REQUEST, "object %d is single-instance" % obj.oid)
        else:
            dm.check(inst, updates)
        changes.append((iid, inst, updates))
    for iid, inst, updates in changes:
        if inst is None:
            model.add_instance(obj.oid, iid, updates).creator = BOOTSTRAP
        else:
            dm.apply(inst, updates)
    return _CHANGED, None, b""


def _deletable(inst, account):
    oid = inst.obj.oid
    if inst is account or oid == _DEVICE:
        return False
    return oid <= _ACCESS or inst.creator is not None


def delete(model, path, account):
    # Bootstrap-Delete of "/", an object or an instance (see the decisions above).
    if len(path) > 2:
        raise Error(_BAD_REQUEST, "Bootstrap-Delete needs /, an object or an instance")
    if len(path) == 2:
        inst = model.instance(path[0], path[1])
        if inst is None:
            raise Error(_NOT_FOUND, "no instance %s" % dm.path_str(path))
        if not _deletable(inst, account):
            raise Error(_BAD_REQUEST, "%s is kept: %s" % (dm.path_str(path), "the bootstrap server's own account" if inst is account else "the device's own"))
        model.delete_instance(path[0], path[1])
        return _DELETED, None, b""
    if path and model.object(path[0]) is None:
        raise Error(_NOT_FOUND, "no object %s" % dm.path_str(path))
    for oid in path or list(model.objects):
        obj = model.objects[oid]
        for iid in [iid for iid, inst in obj.instances.items() if _deletable(inst, account)]:
            model.delete_instance(oid, iid)
    return _DELETED, None, b""


def discover(model, path):
    # Bootstrap-Discover of "/" or an object (TS Core 1.1 5.2.7.3): the LwM2M version, then
    # each object with its instances; a Security instance names its server (uri) and, when a
    # management server's, its Short Server ID (ssid), a Server instance its ssid.
    if len(path) > 1:
        raise Error(_BAD_REQUEST, "Bootstrap-Discover needs / or an object")
    if path and model.object(path[0]) is None:
        raise Error(_NOT_FOUND, "no object %s" % dm.path_str(path))
    links = [("/", [("lwm2m", b"1.1")])]
    for oid in path or sorted(model.objects):
        obj = model.objects[oid]
        if obj.version != "1.0":
            links.append(("/%d" % oid, [("ver", obj.version.encode())]))
        elif not obj.instances:
            links.append(("/%d" % oid, []))
        for iid in sorted(obj.instances):
            inst = obj.instances[iid]
            attrs = []
            if oid == _SECURITY:
                if not is_bootstrap_account(inst) and inst.has(10):
                    attrs.append(("ssid", inst.get(10)))
                if inst.has(0):
                    attrs.append(("uri", inst.get(0)))
            elif oid == _SERVER and inst.has(0):
                attrs.append(("ssid", inst.get(0)))
            links.append(("/%d/%d" % (oid, iid), attrs))
    return 0x45, _LINK_FORMAT, link.encode(links)


def check(model):
    # What keeps the configuration from being used, as short phrases (none when it can be):
    # every Server instance needs a management Security instance with its Short Server ID,
    # whose URI parses and whose Security Mode has what it needs.
    missing = []
    accounts = {}
    security = model.object(_SECURITY)
    for inst in security.instances.values():
        if not is_bootstrap_account(inst) and inst.has(10):
            accounts[inst.get(10)] = inst
    servers = model.object(_SERVER).instances.values()
    if not servers:
        missing.append("no Server instance")
    for server in servers:
        where = "/1/%d" % server.iid
        ssid = server.get(0) if server.has(0) else None
        account = accounts.get(ssid)
        if account is None:
            missing.append("%s: no Security instance with Short Server ID %s" % (where, ssid))
            continue
        _check_account(account, missing)
        try:
            core.seconds(server.get(1) if server.has(1) else 0, 1)
            core.check_binding(server.get(7) if server.has(7) else "U")
        except ValueError as exc:
            missing.append("%s: %s" % (where, exc))
    return missing


def _check_account(account, missing):
    where = "/0/%d" % account.iid
    try:
        scheme = split_uri(account.get(0) if account.has(0) else "")[0]
    except ValueError as exc:
        missing.append("%s: %s" % (where, exc))
        return
    mode = account.get(2) if account.has(2) else None
    needs = {_PSK: (3, 5), _CERTIFICATE: (3, 4, 5), _NO_SEC: ()}.get(mode)
    if mode == _RPK or needs is None:
        missing.append("%s: Security Mode %s not supported (PSK 0, Certificate 2 or NoSec 3)" % (where, mode))
    elif (mode == _NO_SEC) != (scheme == "coap"):
        missing.append("%s: Security Mode %d does not go with %s://" % (where, mode, scheme))
    else:
        for rid in needs:
            if not (account.has(rid) and account.get(rid)):
                missing.append("%s/%d: empty, Security Mode %d needs it" % (where, rid, mode))
