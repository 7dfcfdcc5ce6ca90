# What a queue-mode client keeps across a deep sleep, which on an ESP32 is a reboot: save()
# gives it as bytes (for RTC memory), restore() puts it back into a client built anew from
# the same configuration, so that it goes on without registering again. Kept: each server's
# registration (location, lifetime and binding sent, the time to its Update), every
# observation (token, path, format, sequence number, last value, its pmin/pmax and
# evaluation clocks), the Write-Attributes, the next message ID and what the client's tasks
# (a periodic Send) want kept. Times are kept as ms before or since the moment of saving,
# because ticks_ms starts again at a reboot; restore() is told how long the sleep was.
# A server knows the client by its address and port (Leshan resets a notification from
# another port), so each server's socket is bound again to the local port it had. After the
# sleep each registered server gets an Update first, and its observations are held until it
# is answered: the client's address may have changed (a new DHCP lease, a NAT binding that
# expired), and a DTLS session is new. Imported only when the client sleeps or wakes.
import binascii
import time

from micropython import const

from lwm2m import cbor

_FORMAT = const(1)  # the first item: a state of another layout is refused
_STEP_MS = const(0x10000000)  # as lwm2m.observe counts long silences
_PLAIN = (int, float, bool, str, bytes, type(None))


def save(client):
    # The bytes that restore() takes; None while the client cannot sleep (a bootstrap runs).
    if client.bootstrap is not None:
        return None
    now = client.now
    servers = [[s.ssid, s.uri, s.state, s.location, s.sent_lifetime, s.sent_binding, s.attempts, s.sequences,
                s.links_changed, s.update_now, _left(s, now), client.transport.local_port(s.addr)]
               for s in client.servers]
    observer = client.observer
    observations = [_observation(obs, now, observer.con_interval) for obs in observer.observations]
    attributes = [[ssid, [[list(path), attrs] for path, attrs in table.items()]]
                  for ssid, table in observer.attributes.items()]
    tasks = [task.freeze(now) if hasattr(task, "freeze") else None for task in client.tasks]
    state = [_FORMAT, client.endpoint, binascii.crc32(client.links()), client.exchange._mid, observer.seq,
             servers, observations, attributes, tasks]
    return bytes(cbor.encode(state))


def restore(client, data, slept_ms):
    # Puts the state save() gave back into a client whose servers were just configured;
    # slept_ms: how long ago it was saved. False (and the client left as it was) when it
    # does not match the configuration: the client then registers as after any boot.
    try:
        state = cbor.decode(data)
        fmt, endpoint, links, mid, seq, servers, observations, attributes, tasks = state
    except Exception as exc:  # lwm2m.Error (bad CBOR) or another layout
        client.log("sleep state not usable (%s): registering anew" % exc)
        return False
    if fmt != _FORMAT or endpoint != client.endpoint or len(tasks) != len(client.tasks):
        client.log("sleep state of another configuration: registering anew")
        return False
    if [[s.ssid, s.uri] for s in client.servers] != [entry[:2] for entry in servers]:
        client.log("sleep state of other servers: registering anew")
        return False
    now = client.now
    links_changed = links != binascii.crc32(client.links())  # instances made before the sleep are gone
    for server, entry in zip(client.servers, servers):
        _restore_server(client, server, entry, now, slept_ms)
        server.links_changed = server.links_changed or links_changed
    client.exchange._mid = mid
    observer = client.observer
    observer.seq = seq
    for ssid, table in attributes:
        observer.attributes[ssid] = {tuple(path): attrs for path, attrs in table}
    for entry in observations:
        _restore_observation(observer, entry, now, slept_ms)
    for task, kept in zip(client.tasks, tasks):
        if kept is not None:
            task.thaw(kept, now, slept_ms)
    client.log("woke after %d ms: %d registrations, %d observations kept" % (
        slept_ms, sum(1 for s in client.servers if s.registered()), len(observer.observations)))
    return True


def _left(server, now):
    # ms until the server's next Register or Update, however many steps away.
    if server.next_at is None:
        return 0
    return max(0, time.ticks_diff(server.next_at, now)) + server.later_ms


def _restore_server(client, server, entry, now, slept_ms):
    (_ssid, _uri, server.state, server.location, server.sent_lifetime, server.sent_binding, server.attempts,
     server.sequences, server.links_changed, server.update_now, left, port) = entry
    server.schedule(now, max(0, left - slept_ms))
    if port is not None and not client.transport.rebind(server.addr, port):
        client.log("%s: local port %d taken: the server sees a new one" % (server.uri, port))
    if server.registered():
        server.update_now = True
        if server.security:
            server.secure("update")  # the old DTLS session died with the sleep


def _observation(obs, now, con_interval):
    since = obs.steps * _STEP_MS + time.ticks_diff(now, obs.sent_at)
    con_since = min(time.ticks_diff(now, obs.con_at), con_interval, _STEP_MS)
    sampled_since = min(time.ticks_diff(now, obs.sampled_at), _STEP_MS)
    return [obs.server, obs.token, list(obs.path), [list(p) for p in obs.paths] if obs.paths else None, obs.accept,
            obs.seq, since, con_since, sampled_since, obs.changed, obs.sampled, _last(obs.last)]


def _last(value):
    # A number, string or bytes as it is (gt, lt and st need the number); records and
    # lists of values as their CBOR bytes, which restore() compares with what it reads.
    if type(value) in _PLAIN:
        return [0, value]
    return [1, bytes(cbor.encode(value))]


def _restore_observation(observer, entry, now, slept_ms):
    server, token, path, paths, accept, seq, since, con_since, sampled_since, changed, sampled, last = entry
    paths = [tuple(p) for p in paths] if paths else None
    obs = observer.add(server, token, tuple(path), accept, sampled, now, paths)
    if obs is None:
        return
    obs.seq = seq
    since += slept_ms
    obs.steps, ago = divmod(since, _STEP_MS)
    obs.sent_at = time.ticks_add(now, -ago)
    obs.con_at = time.ticks_add(now, -min(con_since + slept_ms, observer.con_interval, _STEP_MS))
    obs.sampled_at = time.ticks_add(now, -min(sampled_since + slept_ms, _STEP_MS))
    obs.changed = changed
    obs.held = True
    coded, value = last
    if not coded:
        obs.last = value
    elif bytes(cbor.encode(obs.last)) != value:
        obs.last = value  # changed while asleep: unequal to any value read, so it is reported
