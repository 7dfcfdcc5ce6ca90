# Information reporting: observations (RFC 7641) and the notification attributes a server
# sets with Write-Attributes (pmin, pmax, gt, lt, st). The client calls poll(now) from its
# loop; notifications leave through a send(observation, con) callable.
#
# Periods: pmin and pmax take 0 to 2**32-1 s. Time since the last notification is counted in
# steps of _STEP_MS (3.1 days) plus the ticks since the current step began, since ticks
# arithmetic cannot hold longer waits (ticks_add refuses 2**29 ms on boards). Without a pmax
# (or one below pmin) a notification goes out after con_interval (a day by default), or
# after pmin when that is longer; a notification after con_interval or more since the last CON
# one is CON (RFC 7641 4.5). Evaluation (TS Core 1.1 5.1.2): a value behind a read hook is
# read every second (Observer.sample_ms; in queue mode never) to see whether it changed,
# never more often than epmin; any value is
# read at least every epmax, also one changed without the model hearing of it; a change the
# model reports waits for epmin since the last evaluation. Attribute values are parsed strictly, the same
# on every interpreter: pmin, pmax, epmin, epmax are ASCII digits; gt, lt, st an optional
# sign, ASCII digits and at most one decimal point (no exponent, no nan or inf).
import time

from micropython import const

from lwm2m import Error
from lwm2m.text import isdec

_BAD_REQUEST = const(0x80)
_NUMERIC = const("iuft")
_ATTRIBUTES = ("pmin", "pmax", "gt", "lt", "st", "epmin", "epmax")
_DAY_MS = const(86400000)
_SAMPLE_MS = const(1000)
_STEP_MS = const(0x10000000)


def parse_attributes(query, rtype):
    # Write-Attributes query {name: value or None} -> {name: number or None (remove)}; 4.00
    # for unknown names, bad numbers, gt/lt/st on a non-numeric target, or lt/gt/st that
    # contradict each other.
    out = {}
    for name, value in query.items():
        if name not in _ATTRIBUTES:
            raise Error(_BAD_REQUEST, "unknown attribute %r" % name)
        if value is None:
            out[name] = None
            continue
        number = _decimal(value) if name in ("gt", "lt", "st") else _seconds(value)
        if number is None:
            raise Error(_BAD_REQUEST, "%s=%s is not a number the attribute takes" % (name, value))
        if name == "st" and number < 0:
            raise Error(_BAD_REQUEST, "st must not be negative")
        if name in ("gt", "lt", "st") and (rtype is None or rtype not in _NUMERIC):
            raise Error(_BAD_REQUEST, "%s needs a numeric resource" % name)
        out[name] = number
    return out


def _seconds(s):
    # A period: 0 to 2**32-1 s, or None.
    if len(s) > 10 or not isdec(s):  # ASCII digits: int() also takes other scripts' digits
        return None
    n = int(s)
    return None if n >> 32 else n


def _decimal(s):
    # A threshold: [+-]digits[.digits] (".5" and "5." too) as a float, or None.
    body = s[1:] if s[:1] in ("+", "-") else s
    whole, _dot, fraction = body.partition(".")
    if len(s) > 40 or not isdec(whole + fraction):  # a second "." is not a digit
        return None
    return float(s)


def check_attributes(attrs):
    # lt < gt and lt + 2*st < gt, and epmin < epmax, when set (TS Core 5.1.2).
    epmin = attrs.get("epmin")
    epmax = attrs.get("epmax")
    if epmin is not None and epmax is not None and not epmin < epmax:
        raise Error(_BAD_REQUEST, "needs epmin < epmax")
    gt = attrs.get("gt")
    lt = attrs.get("lt")
    if gt is not None and lt is not None:
        if not lt < gt or lt + 2 * (attrs.get("st") or 0) >= gt:
            raise Error(_BAD_REQUEST, "needs lt < gt and lt + 2*st < gt")


class Observation:
    def __init__(self, server, token, path, accept, now):
        self.server = server
        self.token = token
        self.path = path  # () for an Observe-Composite, whose paths are in paths
        self.paths = None
        self.accept = accept
        self.seq = 0
        self.sent_at = now  # ticks of the last notification (or the first answer) ...
        self.steps = 0  # ... plus this many _STEP_MS: the time since it
        self.con_at = now  # ticks of the last CON notification
        self.last = None  # a snapshot of what was last reported (a number for gt/lt/st)
        self.changed = False
        self.sampled = False  # a value behind a read hook: nothing tells us it changed
        self.sampled_at = now  # ticks of the last evaluation
        self.epmin_ms = 0  # the least time between two evaluations
        self.sample_ms = 0  # how often the value is read to be evaluated, 0 for never
        # pmin and pmax as steps and ms (see _STEP_MS), so that poll() needs small ints only
        self.pmin_steps = self.pmin_ms = self.pmax_steps = self.pmax_ms = 0
        self.gt = self.lt = self.st = None
        self.held = False  # not notified until release(): its server is to hear an Update first

    def left(self, steps, ms, since):
        # The ms until `steps` steps and `ms` ms have passed since the last notification (0 or
        # less once they have), or until the current step ends when that comes first.
        if self.steps < steps:
            return _STEP_MS - since
        return ms - since if self.steps == steps else -1

    def matches(self, oid, iid, rid):
        # Does a change of /oid/iid/rid touch what this observation covers?
        for path in self.paths or (self.path,):
            n = len(path)
            if path[0] == oid and (n < 2 or path[1] == iid) and (n < 3 or path[2] == rid):
                return True
        return False

    def target(self):
        # What read_value() reads: the path, or the list of paths of an Observe-Composite.
        return self.paths or self.path


class Observer:
    # attributes: {server: {path: {name: number}}}; observations: a list.
    # Caps per server: `limit` observations and `attribute_limit` paths with attributes.
    def __init__(self, send, read_value, defaults, failed, con_interval_ms=_DAY_MS, limit=16,
                 attribute_limit=32):
        self.send = send  # send(observation, con) -> sends the current value
        self.read_value = read_value  # read_value(path) -> a comparable snapshot of the value
        self.defaults = defaults  # defaults(server) -> (pmin, pmax) of the server's /1 instance
        self.failed = failed  # failed(observation, exc): it raised; it is to end
        self.con_interval = con_interval_ms
        self.limit = limit
        self.attribute_limit = attribute_limit
        self.observations = []
        self.attributes = {}
        self.seq = 0  # Observe numbers, increasing across all observations
        # How often a value behind a read hook is read to see whether it changed; 0 for only
        # at epmax or pmax (queue mode: sampling every second would keep the board awake).
        self.sample_ms = _SAMPLE_MS

    def attributes_of(self, server, path):
        # The attributes set on exactly this path, as link attributes for Discover (no list
        # made for a path without any).
        table = self.attributes.get(server)
        attrs = table.get(path) if table else None
        if not attrs:
            return ()
        return [(name, attrs[name]) for name in _ATTRIBUTES if name in attrs]

    def write_attributes(self, server, path, query, rtype):
        new = parse_attributes(query, rtype)
        table = self.attributes.setdefault(server, {})
        merged = dict(table.get(path, {}))
        for name, value in new.items():
            if value is None:
                merged.pop(name, None)
            else:
                merged[name] = value
        check_attributes(merged)
        if merged and path not in table and len(table) >= self.attribute_limit:
            raise Error(_BAD_REQUEST, "attributes already set on %d paths, the most kept" % len(table))
        if merged:
            table[path] = merged
        else:
            table.pop(path, None)
        for obs in self.observations:
            if obs.server == server:
                self._resolve(obs)

    def _merged(self, server, path):
        # The attributes in effect on path: resource over instance over object.
        table = self.attributes.get(server, {})
        merged = {}
        for n in range(1, len(path) + 1):
            merged.update(table.get(path[:n], {}))
        return merged

    def _resolve(self, obs):
        # Effective attributes, then the server defaults. Of an Observe-Composite, each path's:
        # it is notified at the shortest pmax of its paths, a change after the shortest pmin
        # (and likewise epmin, epmax); gt, lt and st compare one number, so they apply to a
        # single observation only.
        default_pmin, default_pmax = self.defaults(obs.server)
        pmin = pmax = epmin = epmax = None
        for path in obs.paths or (obs.path,):
            merged = self._merged(obs.server, path)
            low = (merged.get("pmin", default_pmin) or 0) * 1000
            high = (merged.get("pmax", default_pmax) or 0) * 1000
            if not 0 < high or high < low:  # pmax below pmin is ignored (TS Core 5.1.2)
                high = max(self.con_interval, low)
            pmin = low if pmin is None else min(pmin, low)
            pmax = high if pmax is None else min(pmax, high)
            low = (merged.get("epmin") or 0) * 1000
            high = (merged.get("epmax") or 0) * 1000
            epmin = low if epmin is None else min(epmin, low)
            if high:
                epmax = high if epmax is None else min(epmax, high)
        obs.pmin_steps, obs.pmin_ms = divmod(pmin, _STEP_MS)
        obs.pmax_steps, obs.pmax_ms = divmod(pmax, _STEP_MS)
        single = {} if obs.paths else merged  # merged: the attributes of a single observation's one path
        obs.gt = single.get("gt")
        obs.lt = single.get("lt")
        obs.st = single.get("st")
        every = max(self.sample_ms, epmin) if obs.sampled and self.sample_ms else 0
        if epmax:
            every = min(every, epmax) if every else epmax
        obs.epmin_ms = min(epmin, _STEP_MS)
        obs.sample_ms = min(every, _STEP_MS)

    def add(self, server, token, path, accept, sampled, now, paths=None):
        # Registers (or renews, for the same token) an observation; the caller answers the
        # GET with the current value as notification 0. None when the server has as many
        # observations as it may: the GET is then answered as a plain Read (RFC 7641 4.1).
        # paths: the paths of an Observe-Composite (path is then ()), whose attributes are
        # combined as _resolve() says.
        self.cancel(server, token)
        if self.count(server) >= self.limit:
            return None
        obs = Observation(server, token, path, accept, now)
        obs.seq = self.seq
        obs.sampled = sampled
        obs.paths = paths
        obs.last = self.read_value(obs.target())
        self._resolve(obs)
        self.observations.append(obs)
        return obs

    def count(self, server):
        n = 0
        for obs in self.observations:
            if obs.server == server:
                n += 1
        return n

    def cancel(self, server, token=None):
        # Drops the observation of a server with this token, or all of the server's; returns
        # how many were dropped.
        kept = [obs for obs in self.observations if not (obs.server == server and (token is None or obs.token == token))]
        dropped = len(self.observations) - len(kept)
        self.observations = kept
        return dropped

    def release(self, server):
        # The server's held observations are notified again (its Update was answered).
        for obs in self.observations:
            if obs.server == server:
                obs.held = False

    def changed(self, oid, iid, rid):
        for obs in self.observations:
            if obs.matches(oid, iid, rid):
                obs.changed = True

    def _worth(self, obs, value):
        # Is a new value worth a notification? gt/lt/st decide when set (numbers only).
        last = obs.last
        if value == last:
            return False
        if obs.gt is None and obs.lt is None and obs.st is None:
            return True
        if not isinstance(value, (int, float)) or not isinstance(last, (int, float)):
            return True
        for bound in (obs.gt, obs.lt):
            if bound is not None and (last > bound) != (value > bound):
                return True
        return obs.st is not None and abs(value - last) >= obs.st

    def poll(self, now):
        # Sends what is due; returns ms until the next observation deadline. With nothing due
        # it only does small-int arithmetic, so an idle loop allocates nothing.
        wait = self.con_interval
        for obs in self.observations:
            if obs.held:
                continue
            since = time.ticks_diff(now, obs.sent_at)
            if since >= _STEP_MS:  # a long silence goes on in the next step
                obs.sent_at = time.ticks_add(obs.sent_at, _STEP_MS)
                obs.steps += 1
                obs.sampled_at = now
                since -= _STEP_MS
            to_pmin = obs.left(obs.pmin_steps, obs.pmin_ms, since)
            to_pmax = obs.left(obs.pmax_steps, obs.pmax_ms, since)
            try:
                notify = to_pmax <= 0
                evaluated = time.ticks_diff(now, obs.sampled_at)
                if not notify and to_pmin <= 0 and evaluated >= obs.epmin_ms:
                    if obs.changed or (obs.sample_ms and evaluated >= obs.sample_ms):
                        obs.changed = False
                        obs.sampled_at = now
                        evaluated = 0
                        notify = self._worth(obs, self.read_value(obs.target()))
                if notify:
                    self._notify(obs, now)
                    to_pmin = obs.left(obs.pmin_steps, obs.pmin_ms, 0)
                    to_pmax = obs.left(obs.pmax_steps, obs.pmax_ms, 0)
            except Exception as exc:  # a read hook or a value that cannot be encoded
                self.failed(obs, exc)
                continue
            remaining = to_pmax
            if obs.sample_ms:
                remaining = min(remaining, max(to_pmin, obs.sample_ms - evaluated))
            if obs.changed:  # changed before pmin or epmin ran out
                remaining = min(remaining, max(to_pmin, obs.epmin_ms - evaluated))
            wait = min(wait, remaining)
        return max(wait, 0)

    def _notify(self, obs, now):
        # CON after a step (3.1 days) of silence too: con_at is then too old for ticks_diff.
        con = obs.steps > 0 or time.ticks_diff(now, obs.con_at) >= self.con_interval
        if con:
            obs.con_at = now
        self.seq = obs.seq = (self.seq + 1) & 0xFFFFFF
        obs.sent_at = now
        obs.steps = 0
        obs.last = self.read_value(obs.target())
        self.send(obs, con)
