# The LwM2M client: one polling loop that registers with each management server found in
# the Security (0) and Server (1) objects, keeps the registrations alive, has their requests
# answered (lwm2m.serve) and sends notifications. With no management server, when a
# registration has failed for good, or when a server asks for it, it bootstraps first
# (lwm2m.bootstrap). poll() does what is due and returns how long the caller may sleep; run()
# loops over it, sleeping on the socket.
import time

from micropython import const

from lwm2m import Error, block, coap, core, dm, formats, link, release
from lwm2m.exchange import Exchange
from lwm2m.observe import Observer
from lwm2m.registration import Server, split_uri
from lwm2m.serve import Serve

_CON = const(0)
_NON = const(1)
_CONTENT = const(0x45)
_OBSERVE = const(6)
_CONTENT_FORMAT = const(12)
_SENML_JSON = const(110)

_BUF_SIZE = const(1280)  # one datagram: the 1152-byte CoAP maximum plus headroom
_HANDSHAKE_POLL_MS = const(100)  # how often a DTLS handshake is driven: its timers need it
_SLEEP_MAX_MS = const(60000)
_PARK_MS = const(0x1FFFFFFF)  # parked by stop(): about 6 days
_SERVER_ERROR = const(0xA0)

# The defaults of the caps on what servers can make the client hold (the "limits" of
# config.json): observations and Write-Attributes paths per server, instances each server
# may Create per object, the duplicate cache (see lwm2m.exchange) in requests and bytes, and
# the largest block-wise request reassembled (see lwm2m.block).
LIMITS = {"observations": 16, "attributes": 32, "instances": 8, "duplicates": 32, "duplicate_bytes": 4096,
          "block_bytes": 4096}


class Client:
    def __init__(self, model, endpoint, transport, version="1.1", log=print, rand=None,
                 con_interval_ms=86400000, limits=None, ack_timeout_ms=2000, access_control=False,
                 queue_window_ms=None):
        # limits: {name: cap} over LIMITS; ack_timeout_ms: CoAP's ACK_TIMEOUT (RFC 7252 4.8),
        # longer on links with a long round trip, shorter to notice a lost server sooner;
        # access_control: check ACLs even with one management server (they always are with
        # several); queue_window_ms: queue mode (TS Core 1.1 6.5), awake for that long after
        # the last datagram, None for always awake.
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
        self.serve = Serve(self)
        self.exchange = Exchange(transport, self.serve.handle, rand, log, caps["duplicates"], caps["duplicate_bytes"],
                                 ack_timeout_ms)
        self.observer = Observer(self._notify, self._snapshot, self._defaults, self._observation_failed,
                                 con_interval_ms, caps["observations"], caps["attributes"])
        self.blocks = block.Blocks(caps["block_bytes"])
        self.streams = {}  # path -> func(offset, data, last, size) taking its Block1 writes
        self.buf = bytearray(_BUF_SIZE)
        self.servers = []
        self.bootstrap = None  # the lwm2m.bootstrap.Bootstrap under way
        self.access_control = access_control
        self.access = None  # lwm2m.access once ACLs are checked
        self.on_bootstrapped = None  # called after a bootstrap's new servers are set up
        self.deferred = []  # actions to run once the current answers have left
        self.tasks = []  # objects whose step(now) runs each poll, returning the ms until due
        self.now = time.ticks_ms()
        self.queue_window_ms = queue_window_ms
        if queue_window_ms is not None:
            self.observer.sample_ms = 0  # hooked values are read at epmax or pmax: no wake per second
        self.started = False
        self.asleep = False  # queue mode: not listening until something is due
        self._awake_until = None  # ticks the queue window ends at
        self._traffic = -1  # exchange.traffic when last looked at
        model.watchers.append(self.observer.changed)
        model.on_tree_change = self._tree_changed

    # -- the loop -----------------------------------------------------------------------

    def start(self, woken=None):
        # Finds the management servers in /0 and /1; with none, bootstraps when it can.
        # woken: (state, slept_ms) after a deep sleep, state being what freeze() gave: the
        # registrations and observations go on from it when it fits the configuration.
        self.started = True
        self._configure()
        if woken is not None:
            from lwm2m import hibernate

            if hibernate.restore(self, woken[0], woken[1]):
                return
        if not self.servers and self._bootstrap_account():
            self.request_bootstrap("no management server account")

    def _configure(self):
        # A registration for each management account of /0 and /1, with the Server object's
        # checks and actions bound.
        for old in self.servers:
            self.exchange.cancel(old.addr)
            self.blocks.forget(old.addr)
        self.servers = []
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
            if scheme == "coaps":
                from lwm2m import dtls

                try:
                    dtls.check(inst)
                except ValueError as exc:
                    self.log("%s: not registering" % exc)
                    continue
            entry = Server(self, ssid, uri, self.transport.resolve(host, port), server)
            entry.security = inst if scheme == "coaps" else None
            entry.check = "PSK identity and key" if inst.get(2) == 0 else "certificates"
            core.check_server_writes(server)
            server.on_execute(8, lambda _args, s=entry: s.trigger_update())
            # Disable de-registers after its answer has gone (TS: respond, then de-register)
            server.on_execute(4, lambda _args, s=entry: self.defer(s.disable))
            server.on_execute(9, lambda _args, s=entry: self.defer(lambda: self.request_bootstrap("asked by " + s.uri)))
            server.on_write(1, lambda _value, s=entry: s.trigger_update(), lambda value: core.seconds(value, 1))
            self.servers.append(entry)
        if not self.servers and not self._bootstrap_account():
            self.log("no management server configured")
        if (len(self.servers) > 1 or self.access_control) and self.access is None:
            from lwm2m import access  # ACLs are needed with several servers only

            self.access = access

    def _bootstrap_account(self):
        security = self.model.object(0)
        for inst in security.instances.values() if security else ():
            if inst.has(1) and inst.get(1):
                return inst
        return None

    def request_bootstrap(self, why):
        # Starts a client-initiated bootstrap (TS Core 6.1.4); False when there is no usable
        # bootstrap account. Registrations and observations wait for its end.
        if self.bootstrap is not None:
            return True
        account = self._bootstrap_account()
        if account is None:
            return False
        from lwm2m.bootstrap import Bootstrap

        try:
            bootstrap = Bootstrap(self, account)
        except ValueError as exc:
            self.log("cannot bootstrap: %s" % exc)
            return False
        self.log("bootstrap from %s: %s" % (bootstrap.uri, why))
        for server in self.servers:
            self.exchange.cancel(server.addr)
            self.observer.cancel(server.ssid)
        self.bootstrap = bootstrap
        return True

    def bootstrapped(self):
        # After an accepted Bootstrap-Finish: registers with the servers it gave.
        self.bootstrap = None
        release("bootstrap")
        self._configure()
        if self.on_bootstrapped:
            self.on_bootstrapped()

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
        if not self.asleep:
            self.exchange.poll(self.buf, now)
        wait = self.observer.poll(now)
        if self.bootstrap is not None:
            wait = min(wait, self.bootstrap.step(now))
        else:
            for server in self.servers:
                wait = min(wait, server.step(now))
        for task in self.tasks:
            wait = min(wait, task.step(now))
        if self.deferred:
            wait = 0  # what they change (a bootstrap's end, new servers) is due at once
        while self.deferred:
            action = self.deferred.pop(0)
            try:
                action()
            except Exception as exc:  # a failed save or reboot: the loop goes on
                self.log("deferred action failed: %s: %s" % (type(exc).__name__, exc))
        # Asked last, so that what was just sent gets its retransmission in time.
        wait = min(wait, self.exchange.next_wait(now))
        if self.queue_window_ms is not None:
            wait = self._queue(now, wait)
        if self.transport.handshaking():
            wait = min(wait, _HANDSHAKE_POLL_MS)
        return max(0, min(wait, _SLEEP_MAX_MS))

    def _queue(self, now, wait):
        # Queue mode: awake for the queue window after the last datagram, then asleep (not
        # listening) until the next deadline, once nothing awaits an answer; whatever is due
        # then (an Update, a notification, a Send) goes out and wakes it.
        if self.exchange.traffic != self._traffic:
            self._traffic = self.exchange.traffic
            self._awake_until = time.ticks_add(now, self.queue_window_ms)
            if self.asleep:
                self.asleep = False
                self.log("queue mode: awake")
            return 0  # what arrives now is read at once
        if self.asleep:
            return wait
        left = time.ticks_diff(self._awake_until, now) if self._awake_until is not None else 0
        if left > 0 or self.exchange.busy() or self.transport.handshaking():
            return min(wait, max(left, 0))
        self.asleep = True
        self.log("queue mode: asleep for %d ms" % wait)
        return wait

    def freeze(self):
        # What start() needs to go on after a deep sleep (lwm2m.hibernate), as bytes; None
        # while a bootstrap runs. Asked when asleep, for RTC memory.
        from lwm2m import hibernate

        return hibernate.save(self)

    def defer(self, action):
        # Runs action() at the end of this poll, after the answer that asked for it was sent.
        self.deferred.append(action)

    def send(self, paths, cf=112):
        # Send (LwM2M 1.1): the current values of paths ("/3303/0", "/3/0/9" ...) to every
        # registered server that has not muted it, in SenML CBOR (112) or SenML JSON (110);
        # returns how many servers it went to (lwm2m.send).
        from lwm2m.send import send

        return send(self, paths, cf)

    def stream(self, path, func):
        # Block-wise writes of the resource at path ("/5/0/0") go to func(offset, data, last,
        # size) block by block instead of being reassembled: size is the Size1 the server
        # gave with the first block, else None. func raises lwm2m.Error to refuse.
        self.streams[path] = func

    def run(self, running=lambda: True, tick=None, max_sleep_ms=_SLEEP_MAX_MS, doze=None):
        # Polls while running() is true, sleeping on the socket until the next deadline, at
        # most max_sleep_ms; tick() runs every round (a watchdog's feed). Asleep in queue
        # mode, doze(ms) sleeps instead, as long as it likes up to ms (a board's light or
        # deep sleep); without it, time.sleep_ms().
        if not self.started:
            self.start()
        while running():
            wait = self.poll()
            if tick:
                tick()
            if self.asleep and doze:
                doze(wait)
            elif self.asleep:  # queue mode: a datagram now does not wake it
                time.sleep_ms(min(wait, max_sleep_ms))
            else:
                self.transport.wait(min(wait, max_sleep_ms))

    def stop(self, timeout_ms=10000):
        # De-registers from every registered server, waiting at most timeout_ms for answers;
        # a Register still under way is abandoned.
        self.now = time.ticks_ms()
        for server in self.servers:
            self.exchange.cancel(server.addr)
            if server.location:
                server.deregister()
            else:
                server.park(_PARK_MS)
        start = time.ticks_ms()
        while any(s.waiting() for s in self.servers):
            if time.ticks_diff(time.ticks_ms(), start) >= timeout_ms:
                break
            self.transport.wait(min(self.poll(), 100))

    # -- registration (lwm2m.registration does it, server by server) ----------------------

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
        return link.encode(links)

    def _tree_changed(self):
        for server in self.servers:
            server.links_changed = True
            server.update_now = server.registered()

    # -- requests from servers (lwm2m.serve answers them) ---------------------------------

    def registered(self):
        # Whether any management server is registered now (asked each poll: no allocation).
        for server in self.servers:
            if server.registered():
                return True
        return False

    def server_at(self, addr):
        # The management server at addr, None for anyone else.
        for server in self.servers:
            if server.addr == addr:
                return server
        return None

    # -- notifications ------------------------------------------------------------------

    def _snapshot(self, path):
        # What the observer compares to decide a value changed: the value of a resource, the
        # records of anything larger (a list of paths: of each); None when it cannot be read.
        if type(path) is list:
            return [self._snapshot(p) for p in path]
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

    def _notify(self, obs, con):
        server = self._server(obs.server)
        if server is None:
            return
        msg = coap.Message(_CON if con else _NON, _CONTENT, 0, obs.token)
        try:
            if obs.paths:  # Observe-Composite
                cf = obs.accept
                payload = formats.encode(cf, (), self.serve.composite(server, obs.paths))
            else:
                _code, cf, payload = dm.read(self.model, obs.path, obs.accept, self.serve.visible(server))
        except Exception as exc:
            self._observation_failed(obs, exc)
            return
        msg.add(_OBSERVE, obs.seq)
        msg.add(_CONTENT_FORMAT, cf)
        msg.payload = payload
        if not block.fits(payload):
            msg = self.blocks.first(server.addr, (dm.path_str(obs.path), obs.accept), msg)
        self.exchange.notify(msg, server.addr, lambda ok: ok or self._unacknowledged(server, obs), self.now)

    def _unacknowledged(self, server, obs):
        # A CON notification timed out or was reset: the server is no longer interested
        # (RFC 7641 4.5), or it is gone and will observe again once registered again.
        if self.observer.cancel(obs.server, obs.token):
            self.log("observation of %s by %s ended: notification reset or not acknowledged" % (dm.path_str(obs.path), server.uri))

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


