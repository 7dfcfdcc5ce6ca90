# One management server's registration (TS Core 6.2, 8.2): Register, Update, De-register,
# their retries, Disable, and the DTLS session a coaps:// server gets anew with every
# Register. The client's poll() calls step() for each server.
#
# Retries follow TS Core 1.1 6.2.1.1, from the Server instance: a sequence of Communication
# Retry Count (/1/x/17, default 5) attempts, Communication Retry Timer (/1/x/18, default
# 60 s) times 1, 2, 4 ... apart; after a failed sequence the next one starts after the
# Communication Sequence Delay Timer (/1/x/19, default 86400 s). Once Communication Sequence
# Retry Count (/1/x/20, default 1) sequences have failed, or when the server refuses the
# Register outright (4.xx), the client bootstraps if Bootstrap on Registration Failure
# (/1/x/16, default true) allows and it has a bootstrap server; else the sequences go on.
import time

from micropython import const

from lwm2m import Error, block, coap

_CON = const(0)
_POST = const(0x02)
_DELETE = const(0x04)
_CREATED = const(0x41)
_CHANGED = const(0x44)
_NOT_FOUND = const(0x84)
_LOCATION_PATH = const(8)
_CONTENT_FORMAT = const(12)
_LINK_FORMAT = const(40)

# Registration states of a server
_IDLE = const(0)  # register at next_at
_WAITING = const(1)  # a Register, Update or De-register is outstanding
_REGISTERED = const(2)  # update at next_at
_DISABLED = const(3)  # register again at next_at

_HANDSHAKE_MS = const(30000)  # a handshake not done by then is given up (a wrong PSK is silent)
_MAX_TRANSMIT_WAIT_S = const(93)
_SLEEP_MAX_MS = const(60000)
_PARK_MS = const(0x1FFFFFFF)  # parked by stop(): about 6 days
# A wait is taken in steps of at most this (3.1 days): ticks_add refuses half the ticks
# period (2**29 ms on boards) and more, and lifetimes reach 2**32-1 s.
_STEP_MS = const(0x10000000)


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


def handshake_over(transport, addr, started, now):
    # Is the DTLS handshake with addr, begun at ticks `started`, over? True once done, False
    # while it runs, None when it failed or ran out of time: it has its own deadline, shorter
    # than the request's retransmissions, and a failed one (an alert, a refused certificate)
    # is given up at once.
    if transport.cipher(addr) is not None:
        return True
    if transport.failure(addr) or time.ticks_diff(now, started) >= _HANDSHAKE_MS:
        return None
    return False


def handshake_failure(transport, addr, check):
    # Why the handshake with addr failed, for the log; check: what to check when it timed
    # out, since a wrong PSK is not told: the server drops the handshake without a word.
    failure = transport.failure(addr)
    if failure is None:
        return "the DTLS handshake timed out: check the " + check
    if failure.endswith("X509_FATAL_ERROR"):  # lwm2m.dtls's pin refused the certificate
        return failure + ": the server's certificate is not the one of /0/x/4"
    return failure


class Server:
    # One management server and the state of our registration with it; `client` gives the
    # exchange, the transport, the log, the clock (client.now) and the object list.
    def __init__(self, client, ssid, uri, addr, instance):
        self.client = client
        self.ssid = ssid
        self.uri = uri
        self.addr = addr
        self.instance = instance  # its Server (1) object instance
        self.security = None  # the Security (0) instance of a coaps:// server
        self.check = None  # what to check when its handshake times out
        self.handshake_at = None  # ticks when its current DTLS handshake began, until done
        self.state = _IDLE
        self.next_at = None  # ticks of the end of the current step of the wait; None: due now
        self.later_ms = 0  # what is left of the wait after that step
        self.attempts = 0  # failed attempts in the current sequence
        self.sequences = 0  # failed sequences
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
        if self.next_at is None:
            return 0
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

    def waiting(self):
        # A Register, Update or De-register is outstanding.
        return self.state == _WAITING

    def registered(self):
        return self.state == _REGISTERED

    def disabled(self):
        return self.state == _DISABLED

    def step(self, now):
        if self.state == _WAITING:
            if self.handshake_at is not None:
                self._handshake_deadline(now)
            return _SLEEP_MAX_MS
        if self.state == _REGISTERED and self.update_now:
            self.update_now = False
            self._send("update")
            return _SLEEP_MAX_MS
        left = self.left(now)
        if left > 0:
            return left
        self._send("update" if self.state == _REGISTERED else "register")
        return _SLEEP_MAX_MS

    def _send(self, what):
        # A Register or an Update. When no heap can be had for it, it fails as an unanswered
        # one would, with the back-off: whatever of it got queued is dropped.
        try:
            if what == "update":
                self._update()
            else:
                self._register()
        except MemoryError:
            self.client.exchange.cancel(self.addr)
            self._retry(what, None, "out of memory")

    def register_message(self):
        msg = coap.Message(_CON, _POST, 0, b"\0\0\0\0")  # the token as long as the one sent
        msg.set_path("/rd")
        msg.add_query("ep", self.client.endpoint)
        msg.add_query("lt", self.lifetime())
        msg.add_query("lwm2m", self.client.version)
        queue = self.client.queue_window_ms is not None
        if queue and self.client.version == "1.0":
            msg.add_query("b", self.binding() + "Q")  # 1.0 binds queue mode as UQ (TS 1.0 5.3.1.1)
        else:
            msg.add_query("b", self.binding())
            if queue:
                msg.add_query("Q")  # 1.1: the Queue Mode parameter (TS Core 1.1 6.2.1)
        msg.add(_CONTENT_FORMAT, _LINK_FORMAT)
        msg.payload = self.client.links()
        return msg

    def _register(self):
        msg = self.register_message()
        msg.token = b""
        # A new registration starts without them; ended first, so that none goes out while
        # there is no session.
        ended = self.client.observer.cancel(self.ssid)
        if ended:
            self.client.log("%s: %d observations ended with the last registration" % (self.uri, ended))
        if self.security:
            # A new DTLS session for every Register: after a failure the old one may be gone
            # at the server (restarted, or its NAT binding expired).
            dropped = self.client.exchange.cancel(self.addr)
            if dropped:
                self.client.log("%s: %d messages of the old DTLS session dropped" % (self.uri, dropped))
            if not self.secure("register"):
                return
            self.handshake_at = self.client.now
        lifetime = self.lifetime()
        self.state = _WAITING
        self.sent_lifetime = lifetime
        self.sent_binding = self.binding()
        self.links_changed = False
        self.client.log("register with %s as %s (lifetime %d s)" % (self.uri, self.client.endpoint, lifetime))
        block.send(self.client.exchange, msg, self.addr, lambda r: self._registered(r), self._now)

    def _registered(self, response):
        if response is not None and response.code == _CREATED:
            try:
                self.location = response.path(_LOCATION_PATH)
            except Error:  # a Location-Path that is not UTF-8
                self._retry("register", response)
                return
            self.attempts = self.sequences = 0
            suite = " over %s" % self.client.transport.cipher(self.addr) if self.security else ""
            self.client.log("registered with %s at %s%s" % (self.uri, self.location, suite))
            self._schedule_update()
        else:
            self._retry("register", response)

    def _schedule_update(self):
        # Update before the lifetime runs out, leaving time for retransmissions.
        lifetime = self.sent_lifetime
        margin = min(max(lifetime // 10, _MAX_TRANSMIT_WAIT_S), lifetime // 2)
        self.state = _REGISTERED
        self.schedule(self.client.now, (lifetime - margin) * 1000)

    def _handshake_deadline(self, now):
        over = handshake_over(self.client.transport, self.addr, self.handshake_at, now)
        if over is not False:
            self.handshake_at = None
        if over is None:
            self.client.exchange.cancel(self.addr)
            self._retry("register", None)

    def secure(self, what):
        # A new DTLS session with the server; False when it could not be had (no heap for
        # mbedTLS, no socket), which fails `what` ("register", "update") with the back-off.
        from lwm2m import dtls

        why = dtls.secure(self.client.transport, self.addr, self.security)
        if why:
            self._retry(what, None, why)
        return not why

    def _now(self):
        return self.client.now

    def _setting(self, rid, default):
        return self.instance.get(rid) if self.instance.has(rid) else default

    def _retry(self, what, response, reason=None):
        # what failed: "register" or "update", with the answer (None: none), or the reason.
        if reason is None and self.security and self.client.transport.cipher(self.addr) is None:
            reason = handshake_failure(self.client.transport, self.addr, self.check)
        elif reason is None:
            reason = "no answer" if response is None else coap.code_name(response.code)
        self.state = _IDLE
        self.location = None
        self.attempts += 1
        count = self._setting(17, 5)
        if what == "register" and response is not None and response.code >> 5 == 4:
            self.attempts = count  # refused: no use trying again at once
        if self.attempts < count:
            wait_s = self._setting(18, 60) << min(self.attempts - 1, 16)
        else:
            self.attempts = 0
            self.sequences += 1
            why = "%s with %s failed (%s)" % (what, self.uri, reason)
            if self.sequences >= self._setting(20, 1) and self._setting(16, True) and self.client.request_bootstrap(why):
                self.sequences = 0
                self.park(_PARK_MS)  # until the bootstrap sets the servers up anew
                return
            wait_s = self._setting(19, 86400)
        wait_s = min(wait_s, 0xFFFFFFFF)
        self.client.log("%s with %s failed (%s); retrying in %d s" % (what, self.uri, reason, wait_s))
        self.schedule(self.client.now, wait_s * 1000)

    def _update(self):
        # Update carries only what changed since the last Register or Update.
        msg = coap.Message(_CON, _POST)
        msg.set_path(self.location)
        lifetime = self.lifetime()
        if lifetime != self.sent_lifetime:
            msg.add_query("lt", lifetime)
        if self.binding() != self.sent_binding:
            msg.add_query("b", self.binding())
        if self.links_changed:
            msg.add(_CONTENT_FORMAT, _LINK_FORMAT)
            msg.payload = self.client.links()
        self.state = _WAITING
        sent = (lifetime, self.binding(), self.links_changed)
        self.links_changed = False
        self.client.log("update %s at %s" % (self.uri, self.location))
        block.send(self.client.exchange, msg, self.addr, lambda r: self._updated(r, sent), self._now)

    def _updated(self, response, sent):
        if response is not None and response.code == _CHANGED:
            self.sent_lifetime, self.sent_binding = sent[0], sent[1]
            self._schedule_update()
            self.client.observer.release(self.ssid)  # held after a deep sleep until now
        elif response is not None and response.code == _NOT_FOUND:
            self.client.log("%s forgot our registration: registering again" % self.uri)
            self.state = _IDLE
            self.schedule(self.client.now, 0)
        else:
            self.links_changed = self.links_changed or sent[2]
            self._retry("update", response)

    def deregister(self):
        msg = coap.Message(_CON, _DELETE)
        msg.set_path(self.location)
        self.state = _WAITING
        self.client.log("de-register from %s" % self.uri)
        self.client.exchange.request(msg, self.addr, lambda r: self._deregistered(r), self.client.now)

    def _deregistered(self, response):
        self.location = None
        if self.state == _WAITING:  # not disabled meanwhile: stop() asked for it
            self.park(_PARK_MS)

    def park(self, ms):
        # No registration until ms from now.
        self.state = _DISABLED
        self.schedule(self.client.now, ms)

    def trigger_update(self):
        self.update_now = True

    def disable(self):
        # Execute /1/x/4: de-register now, register again after the Disable Timeout (/1/x/5).
        timeout = self.instance.get(5) if self.instance.has(5) else 86400
        self.client.log("disabled by %s for %d s" % (self.uri, timeout))
        self.client.observer.cancel(self.ssid)
        if self.location:
            self.deregister()
        self.park(timeout * 1000)
