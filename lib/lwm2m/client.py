# The LwM2M client: one polling loop that registers with each management server found in
# the Security (0) and Server (1) objects, keeps the registrations alive, answers device
# management requests and sends notifications. poll() does what is due and returns how long
# the caller may sleep; run() loops over it, sleeping on the socket.
import time

from micropython import const

from lwm2m import Error, coap, dm, link
from lwm2m.exchange import Exchange
from lwm2m.observe import Observer

_CON = const(0)
_NON = const(1)
_GET = const(0x01)
_POST = const(0x02)
_PUT = const(0x03)
_DELETE = const(0x04)
_CREATED = const(0x41)
_DELETED = const(0x42)
_CHANGED = const(0x44)
_CONTENT = const(0x45)
_BAD_REQUEST = const(0x80)
_UNAUTHORIZED = const(0x81)
_BAD_OPTION = const(0x82)
_NOT_FOUND = const(0x84)
_METHOD_NOT_ALLOWED = const(0x85)
_OBSERVE = const(6)
_LOCATION_PATH = const(8)
_CONTENT_FORMAT = const(12)
_ACCEPT = const(17)
_LINK_FORMAT = const(40)
_SENML_JSON = const(110)
# The critical options a request may carry: Uri-Host, Uri-Port, Uri-Path, Uri-Query, Accept.
# Any other (If-Match, Block1, Block2, Proxy-Uri ...) is answered 4.02 Bad Option.
_UNDERSTOOD = (3, 7, 11, 15, 17)

# Registration states of a server
_IDLE = const(0)  # register at next_at
_WAITING = const(1)  # a Register, Update or De-register is outstanding
_REGISTERED = const(2)  # update at next_at
_DISABLED = const(3)  # register again at next_at

_BUF_SIZE = const(1280)  # one datagram: the 1152-byte CoAP maximum plus headroom
_DATAGRAM_MAX = const(1152)  # what a Register must fit in (RFC 7252 4.6) until block-wise
_DTLS_OVERHEAD = const(64)  # a DTLS 1.2 record's header, nonce, tag and padding, at most
_HANDSHAKE_POLL_MS = const(100)  # how often a DTLS handshake is driven: its timers need it
_HANDSHAKE_MS = const(30000)  # a handshake not done by then is given up (a wrong PSK is silent)
_RETRY_FIRST_MS = const(10000)
_RETRY_MAX_MS = const(300000)
_MAX_TRANSMIT_WAIT_S = const(93)
_SLEEP_MAX_MS = const(60000)
_PARK_MS = const(0x1FFFFFFF)  # parked by stop(): about 6 days
# A wait is taken in steps of at most this (3.1 days): ticks_add refuses half the ticks
# period (2**29 ms on boards) and more, and lifetimes reach 2**32-1 s.
_STEP_MS = const(0x10000000)
_SERVER_ERROR = const(0xA0)

# The defaults of the caps on what servers can make the client hold (the "limits" of
# config.json): observations and Write-Attributes paths per server, instances each server
# may Create per object, and the duplicate cache (see lwm2m.exchange) in requests and bytes.
LIMITS = {"observations": 16, "attributes": 32, "instances": 8, "duplicates": 32, "duplicate_bytes": 4096}


def split_uri(uri):
    # "coap://host:port" -> (scheme, host, port); IPv6 literals in brackets.
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme not in ("coap", "coaps"):
        raise ValueError("server URI %r: expected coap://host[:port]" % uri)
    rest = rest.split("/")[0]
    if rest.startswith("["):
        host, _, port = rest[1:].partition("]")
        port = port[1:]
    else:
        host, _, port = rest.partition(":")
    if not host or (port and not port.isdigit()):
        raise ValueError("server URI %r: expected coap://host[:port]" % uri)
    return scheme, host, int(port) if port else (5684 if scheme == "coaps" else 5683)


class Server:
    # One management server and the state of our registration with it.
    def __init__(self, ssid, uri, addr, instance):
        self.ssid = ssid
        self.uri = uri
        self.addr = addr
        self.instance = instance  # its Server (1) object instance
        self.context = None  # the tls.SSLContext of a coaps:// server
        self.check = None  # what to check when its handshake times out
        self.handshake_at = None  # ticks when its current DTLS handshake began, until done
        self.state = _IDLE
        self.next_at = 0  # ticks of the end of the current step of the wait
        self.later_ms = 0  # what is left of the wait after that step
        self.retry_ms = _RETRY_FIRST_MS
        self.location = None
        self.sent_lifetime = None
        self.sent_binding = None
        self.links_changed = False
        self.update_now = False

    def schedule(self, now, ms):
        # Due ms from now, however long that is (up to 2**32-1 s), in steps of _STEP_MS.
        step = min(ms, _STEP_MS)
        self.next_at = time.ticks_add(now, step)
        self.later_ms = ms - step

    def left(self, now):
        # The ms until due, or until the current step ends; 0 or less when due.
        left = time.ticks_diff(self.next_at, now)
        if left <= 0 and self.later_ms:
            self.schedule(self.next_at, self.later_ms)
            left = time.ticks_diff(self.next_at, now)
        return left

    def lifetime(self):
        return self.instance.get(1)

    def binding(self):
        return self.instance.get(7) if self.instance.has(7) else "U"

    def defaults(self):
        inst = self.instance
        return (inst.get(2) if inst.has(2) else 0), (inst.get(3) if inst.has(3) else 0)


class Client:
    def __init__(self, model, endpoint, transport, version="1.1", log=print, rand=None,
                 con_interval_ms=86400000, limits=None):
        # limits: {name: cap} over LIMITS.
        if version not in ("1.0", "1.1"):
            raise ValueError("lwm2m version %r: expected 1.0 or 1.1" % version)
        self.model = model
        self.endpoint = endpoint
        self.transport = transport
        self.version = version
        self.log = log
        self.limits = dict(LIMITS)
        self.limits.update(limits or {})
        caps = self.limits
        self.exchange = Exchange(transport, self._handle, rand, log, caps["duplicates"], caps["duplicate_bytes"])
        self.observer = Observer(self._notify, self._snapshot, self._defaults, self._observation_failed,
                                 con_interval_ms, caps["observations"], caps["attributes"])
        self.buf = bytearray(_BUF_SIZE)
        self.servers = []
        self.deferred = []  # actions to run once the current answers have left
        self.now = time.ticks_ms()
        model.watchers.append(self.observer.changed)
        model.on_tree_change = self._tree_changed

    # -- the loop -----------------------------------------------------------------------

    def start(self):
        # Finds the management servers in /0 and /1 and binds the Server object's actions.
        security = self.model.object(0)
        for inst in security.instances.values() if security else ():
            if inst.has(1) and inst.get(1):
                continue  # a bootstrap server account
            ssid = inst.get(10)
            server = self._server_instance(ssid)
            if server is None:
                self.log("no Server instance for short server id %d: not registering" % ssid)
                continue
            uri = inst.get(0)
            scheme, host, port = split_uri(uri)
            context = None
            if scheme == "coaps":
                from lwm2m import dtls

                try:
                    context = dtls.context(inst)
                except ValueError as exc:
                    self.log("%s: not registering" % exc)
                    continue
            entry = Server(ssid, uri, self.transport.resolve(host, port), server)
            entry.context = context
            entry.check = "PSK identity and key" if inst.get(2) == 0 else "certificates"
            server.on_execute(8, lambda _args, s=entry: self._trigger_update(s))
            server.on_execute(4, lambda _args, s=entry: self._disable(s))
            server.on_write(1, lambda _value, s=entry: self._trigger_update(s))
            self.servers.append(entry)
        if not self.servers:
            self.log("no management server configured")

    def _server_instance(self, ssid):
        servers = self.model.object(1)
        for inst in servers.instances.values() if servers else ():
            if inst.get(0) == ssid:
                return inst
        return None

    def poll(self, now=None):
        # Does everything due; returns the ms the caller may sleep before calling again.
        now = time.ticks_ms() if now is None else now
        self.now = now
        self.exchange.poll(self.buf, now)
        wait = self.observer.poll(now)
        for server in self.servers:
            wait = min(wait, self._step(server, now))
        while self.deferred:
            action = self.deferred.pop(0)
            try:
                action()
            except Exception as exc:  # a failed save or reboot: the loop goes on
                self.log("deferred action failed: %s: %s" % (type(exc).__name__, exc))
        # Asked last, so that what was just sent gets its retransmission in time.
        wait = min(wait, self.exchange.next_wait(now))
        if self.transport.handshaking():
            wait = min(wait, _HANDSHAKE_POLL_MS)
        return max(0, min(wait, _SLEEP_MAX_MS))

    def defer(self, action):
        # Runs action() at the end of this poll, after the answer that asked for it was sent.
        self.deferred.append(action)

    def run(self, running=lambda: True, tick=None, max_sleep_ms=_SLEEP_MAX_MS):
        # Polls while running() is true, sleeping on the socket until the next deadline, at
        # most max_sleep_ms; tick() runs every round (a watchdog's feed).
        self.start()
        while running():
            wait = self.poll()
            if tick:
                tick()
            self.transport.wait(min(wait, max_sleep_ms))

    def stop(self, timeout_ms=10000):
        # De-registers from every registered server, waiting at most timeout_ms for answers;
        # a Register still under way is abandoned.
        self.now = time.ticks_ms()
        for server in self.servers:
            self.exchange.cancel(server.addr)
            if server.location:
                self._deregister(server)
            else:
                self._park(server, _PARK_MS)
        start = time.ticks_ms()
        while any(s.state == _WAITING for s in self.servers):
            if time.ticks_diff(time.ticks_ms(), start) >= timeout_ms:
                break
            self.transport.wait(min(self.poll(), 100))

    def _step(self, server, now):
        if server.state == _WAITING:
            if server.handshake_at is not None:
                self._handshake_deadline(server, now)
            return _SLEEP_MAX_MS
        if server.state == _REGISTERED and server.update_now:
            server.update_now = False
            self._update(server)
            return _SLEEP_MAX_MS
        left = server.left(now)
        if left > 0:
            return left
        if server.state == _REGISTERED:
            self._update(server)
        else:
            self._register(server)
        return _SLEEP_MAX_MS

    # -- registration -------------------------------------------------------------------

    def links(self):
        # The object list of Register and Update, Security excluded (TS Core 6.2.1). A 1.1
        # client states the version of the core objects (0 to 7) even when it is 1.0: without
        # ver= a server takes the version of its own TS release (TS Core 1.1.1 7.2.3).
        links = []
        core = self.version != "1.0"
        if core:
            links.append(("/", [("rt", "oma.lwm2m"), ("ct", _SENML_JSON)]))
        for oid in sorted(self.model.objects):
            if oid == 0:
                continue
            obj = self.model.objects[oid]
            if obj.version != "1.0" or (core and oid < 8):
                links.append(("/%d" % oid, [("ver", obj.version.encode())]))
            elif not obj.instances:
                links.append(("/%d" % oid, []))
            for iid in sorted(obj.instances):
                links.append(("/%d/%d" % (oid, iid), []))
        return link.encode(links).encode()

    def _register_message(self, server):
        msg = coap.Message(_CON, _POST, 0, b"\0\0\0\0")  # the token as long as the one sent
        msg.set_path("/rd")
        msg.add_query("ep", self.endpoint)
        msg.add_query("lt", server.lifetime())
        msg.add_query("lwm2m", self.version)
        msg.add_query("b", server.binding())
        msg.add(_CONTENT_FORMAT, _LINK_FORMAT)
        msg.payload = self.links()
        return msg

    def _register(self, server):
        msg = self._register_message(server)
        msg.token = b""
        if server.context:
            # A new DTLS session for every Register: after a failure the old one may be gone
            # at the server (restarted, or its NAT binding expired).
            dropped = self.exchange.cancel(server.addr)
            if dropped:
                self.log("%s: %d messages of the old DTLS session dropped" % (server.uri, dropped))
            self.transport.secure(server.addr, server.context)
            server.handshake_at = self.now
        lifetime = server.lifetime()
        server.state = _WAITING
        server.sent_lifetime = lifetime
        server.sent_binding = server.binding()
        server.links_changed = False
        self.observer.cancel(server.ssid)  # a new registration starts without observations
        self.log("register with %s as %s (lifetime %d s)" % (server.uri, self.endpoint, lifetime))
        self.exchange.request(msg, server.addr, lambda r: self._registered(server, r), self.now)

    def _registered(self, server, response):
        if response is not None and response.code == _CREATED:
            try:
                server.location = response.path(_LOCATION_PATH)
            except Error:  # a Location-Path that is not UTF-8
                self._retry(server, "register", response)
                return
            server.retry_ms = _RETRY_FIRST_MS
            suite = " over %s" % self.transport.cipher(server.addr) if server.context else ""
            self.log("registered with %s at %s%s" % (server.uri, server.location, suite))
            self._schedule_update(server)
        else:
            self._retry(server, "register", response)

    def _schedule_update(self, server):
        # Update before the lifetime runs out, leaving time for retransmissions.
        lifetime = server.sent_lifetime
        margin = min(max(lifetime // 10, _MAX_TRANSMIT_WAIT_S), lifetime // 2)
        server.state = _REGISTERED
        server.schedule(self.now, (lifetime - margin) * 1000)

    def _handshake_deadline(self, server, now):
        # The handshake has its own deadline, shorter than the Register's retransmissions; a
        # failed one (an alert, a certificate refused) is given up at once.
        if self.transport.cipher(server.addr) is not None:
            server.handshake_at = None
        elif self.transport.failure(server.addr) or time.ticks_diff(now, server.handshake_at) >= _HANDSHAKE_MS:
            server.handshake_at = None
            self.exchange.cancel(server.addr)
            self._retry(server, "register", None)

    def _retry(self, server, what, response):
        reason = "no answer" if response is None else coap.code_name(response.code)
        if server.context and self.transport.cipher(server.addr) is None:
            # A wrong PSK is not told: the server drops the handshake without a word.
            reason = self.transport.failure(server.addr) or "the DTLS handshake timed out: check the " + server.check
        self.log("%s with %s failed (%s); retrying in %d s" % (what, server.uri, reason, server.retry_ms // 1000))
        server.state = _IDLE
        server.location = None
        server.schedule(self.now, server.retry_ms)
        server.retry_ms = min(server.retry_ms * 2, _RETRY_MAX_MS)

    def _update(self, server):
        # Update carries only what changed since the last Register or Update.
        msg = coap.Message(_CON, _POST)
        msg.set_path(server.location)
        lifetime = server.lifetime()
        if lifetime != server.sent_lifetime:
            msg.add_query("lt", lifetime)
        if server.binding() != server.sent_binding:
            msg.add_query("b", server.binding())
        if server.links_changed:
            msg.add(_CONTENT_FORMAT, _LINK_FORMAT)
            msg.payload = self.links()
        server.state = _WAITING
        sent = (lifetime, server.binding(), server.links_changed)
        server.links_changed = False
        self.log("update %s at %s" % (server.uri, server.location))
        self.exchange.request(msg, server.addr, lambda r: self._updated(server, r, sent), self.now)

    def _updated(self, server, response, sent):
        if response is not None and response.code == _CHANGED:
            server.sent_lifetime, server.sent_binding = sent[0], sent[1]
            self._schedule_update(server)
        elif response is not None and response.code == _NOT_FOUND:
            self.log("%s forgot our registration: registering again" % server.uri)
            server.state = _IDLE
            server.schedule(self.now, 0)
        else:
            server.links_changed = server.links_changed or sent[2]
            self._retry(server, "update", response)

    def _deregister(self, server):
        msg = coap.Message(_CON, _DELETE)
        msg.set_path(server.location)
        server.state = _WAITING
        self.log("de-register from %s" % server.uri)
        self.exchange.request(msg, server.addr, lambda r: self._deregistered(server, r), self.now)

    def _deregistered(self, server, response):
        server.location = None
        if server.state == _WAITING:  # not disabled meanwhile: stop() asked for it
            self._park(server, _PARK_MS)

    def _park(self, server, ms):
        # No registration until ms from now.
        server.state = _DISABLED
        server.schedule(self.now, ms)

    def _trigger_update(self, server):
        server.update_now = True

    def _disable(self, server):
        # Execute /1/x/4: de-register now, register again after the Disable Timeout (/1/x/5).
        timeout = server.instance.get(5) if server.instance.has(5) else 86400
        self.log("disabled by %s for %d s" % (server.uri, timeout))
        self.observer.cancel(server.ssid)
        if server.location:
            self._deregister(server)
        self._park(server, timeout * 1000)

    def _tree_changed(self):
        for server in self.servers:
            server.links_changed = True
            server.update_now = server.state == _REGISTERED

    # -- requests from servers ----------------------------------------------------------

    def _server_at(self, addr):
        for server in self.servers:
            if server.addr == addr:
                return server
        return None

    def _handle(self, request, addr):
        # Answers one request; every request and its answer make one log line. Anything but
        # lwm2m.Error is answered 5.00 by the exchange, which logs it.
        try:
            response = self._dispatch(request, addr)
        except Error as exc:
            self.log("%s %s -> %s (%s)" % (coap.code_name(request.code), _log_path(request), coap.code_name(exc.code or _SERVER_ERROR), exc))
            raise
        self.log("%s %s -> %s" % (coap.code_name(request.code), _log_path(request), coap.code_name(response.code)))
        return response

    def _dispatch(self, request, addr):
        server = self._server_at(addr)
        if server is None:
            raise Error(_UNAUTHORIZED, "not a registered server")
        if server.state == _DISABLED:
            raise Error(_UNAUTHORIZED, "disabled: not serving this server until it registers again")
        for number, _value in request.options:
            if number & 1 and number not in _UNDERSTOOD:
                raise Error(_BAD_OPTION, "critical option %d not supported" % number)
        path = dm.parse_path(request.get_all(11))
        code = request.code
        cf = request.get(_CONTENT_FORMAT)
        accept = request.get(_ACCEPT)
        if code == _GET:
            if accept == _LINK_FORMAT:
                result = dm.discover(self.model, path, lambda p: self.observer.attributes_of(server.ssid, p))
            else:
                return self._read(server, request, path, accept)
        elif code == _PUT:
            if request.payload or cf is not None:
                result = dm.write(self.model, path, cf, request.payload, True)
            else:
                rtype = dm.target_type(self.model, path)
                self.observer.write_attributes(server.ssid, path, request.query(), rtype)
                result = _CHANGED, None, b""
        elif code == _POST:
            if len(path) == 1:
                result = dm.create(self.model, path, cf, request.payload, server.ssid, lambda obj, iid: self._admit(server, obj, iid))
            elif len(path) == 3:
                result = dm.execute(self.model, path, cf, request.payload)
            else:
                result = dm.write(self.model, path, cf, request.payload, False)
        elif code == _DELETE:
            if path == (1, server.instance.iid):
                raise Error(_METHOD_NOT_ALLOWED, "a server cannot delete the Server instance it is registered through")
            result = dm.delete(self.model, path)
        else:
            raise Error(_METHOD_NOT_ALLOWED, "method %s" % coap.code_name(code))
        return _response(*result)

    def _read(self, server, request, path, accept):
        observe = request.get(_OBSERVE)
        result = dm.read(self.model, path, accept)
        response = _response(*result)
        if observe == 0:
            obs = self.observer.add(server.ssid, request.token, path, result[1], self._sampled(path), self.now)
            if obs is None:
                self.log("%s: no more observations for %s: answered as a Read" % (dm.path_str(path), server.uri))
            else:
                response.add(_OBSERVE, obs.seq)
        elif observe == 1:
            self.observer.cancel(server.ssid, request.token)
        return response

    # -- notifications ------------------------------------------------------------------

    def _sampled(self, path):
        # Is any value under path behind a read hook (so changes must be looked for)?
        obj = self.model.object(path[0])
        for inst in obj.instances.values():
            if len(path) > 1 and inst.iid != path[1]:
                continue
            for rid in (path[2],) if len(path) > 2 else obj.resources:
                if inst.hook(rid, 0):
                    return True
        return False

    def _snapshot(self, path):
        # What the observer compares to decide a value changed: the value of a resource, the
        # records of anything larger; None when it cannot be read.
        try:
            records = dm.read_records(self.model, path)
        except Error:
            return None
        if len(path) >= 3 and len(records) == 1:
            return records[0][2]
        return records

    def _server(self, ssid):
        for server in self.servers:
            if server.ssid == ssid:
                return server
        return None

    def _defaults(self, ssid):
        server = self._server(ssid)
        return server.defaults() if server else (0, 0)

    def _admit(self, server, obj, iid):
        # A server's Create within its cap, and the Register still in one datagram with the
        # new instance's link (an upper bound: it may replace a bare </oid>).
        mine = 0
        for inst in obj.instances.values():
            if inst.creator == server.ssid:
                mine += 1
        if mine >= self.limits["instances"]:
            raise Error(_BAD_REQUEST, "%s created %d instances of /%d, the most it may" % (server.uri, mine, obj.oid))
        grows = len(",</%d/%d>" % (obj.oid, iid))
        for each in self.servers:
            room = _DATAGRAM_MAX - (_DTLS_OVERHEAD if each.context else 0)
            if len(coap.encode(self._register_message(each))) + grows > room:
                raise Error(_BAD_REQUEST, "/%d/%d would not fit the registration in one datagram" % (obj.oid, iid))

    def _notify(self, obs, con):
        server = self._server(obs.server)
        if server is None:
            return
        msg = coap.Message(_CON if con else _NON, _CONTENT, 0, obs.token)
        try:
            _code, cf, payload = dm.read(self.model, obs.path, obs.accept)
        except Exception as exc:
            self._observation_failed(obs, exc)
            return
        msg.add(_OBSERVE, obs.seq)
        msg.add(_CONTENT_FORMAT, cf)
        msg.payload = payload
        self.exchange.notify(msg, server.addr, lambda ok: ok or self.observer.cancel(obs.server, obs.token), self.now)


    def _observation_failed(self, obs, exc):
        # The value cannot be read or encoded (or its target is gone): an error notification
        # ends the observation (RFC 7641 3.2).
        server = self._server(obs.server)
        self.observer.cancel(obs.server, obs.token)
        code = exc.code if isinstance(exc, Error) and exc.code else _SERVER_ERROR
        self.log("observation of %s ended: %s (%s: %s)" % (dm.path_str(obs.path), coap.code_name(code), type(exc).__name__, exc))
        if server is not None:
            msg = coap.Message(_CON, code, 0, obs.token)
            self.exchange.notify(msg, server.addr, lambda ok: None, self.now)


def _log_path(request):
    # The request's path for a log line, even when its Uri-Path is not UTF-8.
    try:
        return request.path()
    except Error:
        return "(a path that is not UTF-8)"


def _response(code, cf, payload):
    msg = coap.Message(0, code)
    if code == _CREATED:
        msg.set_path(payload, _LOCATION_PATH)
    else:
        if cf is not None:
            msg.add(_CONTENT_FORMAT, cf)
        msg.payload = payload
    return msg
