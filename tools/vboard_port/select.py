# The virtual board's `select` module (tools/vboard.mjs installs it in place of the VM's own):
# poll() over the board's sockets. Waiting sleeps in the board until a datagram arrives, the
# timeout passes or Ctrl-C is pressed. ipoll() allocates nothing when nothing is ready (what
# lwm2m.transport counts on for its idle loop): it returns the empty tuple, or a tuple of
# (object, event) pairs made once per registration.
import socket

import _vboard

POLLIN = 1
POLLOUT = 4
POLLERR = 8
POLLHUP = 16

_wait = _vboard.poll


class _Poll:
    def __init__(self):
        self._entries = []  # [object, eventmask, (object, POLLIN), (object, POLLOUT)]
        self._mask = 0
        self._one = None  # ((object, POLLIN),) when exactly one object waits for POLLIN
        self._writing = False  # some object waits for POLLOUT

    def register(self, obj, eventmask=POLLIN | POLLOUT):
        if not isinstance(obj, socket.socket):
            raise TypeError("the virtual board polls its sockets only")
        for entry in self._entries:
            if entry[0] is obj:
                entry[1] = eventmask
                break
        else:
            self._entries.append([obj, eventmask, (obj, POLLIN), (obj, POLLOUT)])
        self._update()

    modify = register

    def unregister(self, obj):
        self._entries = [e for e in self._entries if e[0] is not obj]
        self._update()

    def _update(self):
        mask = 0
        readers = []
        self._writing = False
        for entry in self._entries:
            if entry[1] & POLLIN:
                mask |= entry[0]._mask
                readers.append(entry)
            if entry[1] & POLLOUT:
                self._writing = True
        self._mask = mask
        self._one = (readers[0][2],) if len(readers) == 1 else None

    def ipoll(self, timeout=-1, flags=0):
        # (No comprehension over a local here: it would make the local a cell, allocated at
        # every call.)
        if timeout is None:
            timeout = -1
        if self._writing:
            # A UDP socket can always send: answer at once, with what can be read too.
            return self._ready(_wait(self._mask, 0), True)
        ready = _wait(self._mask, timeout)  # with no socket registered: sleeps the timeout
        if not ready:
            return ()
        if self._one is not None:
            return self._one
        return self._ready(ready, False)

    def _ready(self, ready, writing):
        out = [e[2] for e in self._entries if e[0]._mask & ready]
        if writing:
            out += [e[3] for e in self._entries if e[1] & POLLOUT]
        return tuple(out)

    def poll(self, timeout=-1):
        return list(self.ipoll(timeout))


def poll():
    return _Poll()


def select(rlist, wlist, xlist, timeout=None):
    p = _Poll()
    for s in rlist:
        p.register(s, POLLIN)
    ready = p.ipoll(-1 if timeout is None else int(timeout * 1000))
    return [s for s, _ev in ready], list(wlist), []
