# CoAP messaging over a transport (RFC 7252 section 4): message IDs and tokens, CON
# retransmission with exponential back-off, duplicate detection with cached answers, NSTART 1
# per destination, empty ACK and RST. One Exchange per socket, driven by poll(). Every time
# is a `now` in ms ticks (time.ticks_ms), compared with ticks_diff only, so the wrap of the
# ticks is harmless.
#
# Decisions beyond RFC 7252:
# - NSTART 1 holds a CON request from when it is sent until it is acknowledged (RFC 7252
#   4.7): a separate response is then awaited without holding up the next request. NON
#   requests are not queued.
# - Notifications never wait behind requests. A CON notification for a token and address
#   whose previous CON notification is still unacknowledged replaces it (RFC 7641 4.5.2): the
#   old one is no longer retransmitted and its callback is never called; the new one goes out
#   at once under a new MID and carries on with the old retransmission count and timeout.
# - A NON request is answered within MAX_TRANSMIT_WAIT (93 s) or given up; a separate
#   response after an empty ACK is awaited for EXCHANGE_LIFETIME (247 s).
# - The last 8 NON notifications are remembered (each for NON_LIFETIME, 145 s) to match an
#   RST.
# - Duplicates: incoming requests and CON responses are remembered with their answers for
#   EXCHANGE_LIFETIME, at most `seen_max` of them holding at most `seen_bytes` of answers.
#   When the count is reached the oldest GET (or CON response) is forgotten first: a GET
#   repeated after that is served again, which RFC 7252 4.5 allows for idempotent requests.
#   Only when no GET is left is the oldest other request forgotten. When the bytes are
#   reached, the oldest answers go first, but another request keeps its entry: its answer is
#   cut to the code alone (header and token), which answers a duplicate of it. So every
#   Write, Execute, Create and Delete runs exactly once, whatever the size of the answers in
#   between, as long as its retransmissions arrive within 247 s and fewer than `seen_max`
#   other such requests came in between.
# - A failed send (OSError from the transport) counts as a lost datagram, and an exception
#   raised by a handler or a callback is contained: each gives one log line and the loop
#   goes on (a handler's failure is answered 5.00).
from micropython import const
from time import ticks_add, ticks_diff
from lwm2m import Error, coap

# Message types
_CON = const(0)
_NON = const(1)
_ACK = const(2)
_RST = const(3)

_TOO_LARGE = const(0x8D)  # 4.13
_SERVER_ERROR = const(0xA0)  # 5.00
_SIZE1 = const(60)

# Transmission parameters (RFC 7252 4.8), in ms. ACK_TIMEOUT is the Exchange's ack_timeout
# (2000 by default); the others are those of the default ACK_TIMEOUT, which a shorter one
# only makes safer (duplicates are remembered longer than needed).
_MAX_RETRANSMIT = const(4)
_MAX_TRANSMIT_WAIT = const(93000)
_NON_LIFETIME = const(145000)
_EXCHANGE_LIFETIME = const(247000)
_IDLE = const(3600000)  # what poll() returns when nothing is due
_GET = const(0x01)

_NON_NOTES = const(8)

# An outgoing message is a record: a list indexed by these fields.
_STATE = const(0)
_ADDR = const(1)
_MID = const(2)
_TOKEN = const(3)
_DATA = const(4)  # the datagram, kept for retransmission
_DEADLINE = const(5)  # ticks of the next retransmission or of giving up
_TIMEOUT = const(6)
_TRIES = const(7)
_CALLBACK = const(8)

# Record states; requests are the states up to _QUEUED.
_SENT = const(0)  # CON request not yet acknowledged: holds its address's NSTART slot
_WAIT = const(1)  # request awaiting its response: NON, or CON after an empty ACK
_QUEUED = const(2)  # CON request waiting for the slot; not sent yet, no deadline
_NOTE = const(3)  # CON notification not yet acknowledged
_NOTE_NON = const(4)  # NON notification, remembered to match an RST


def _empty(mtype, mid):
    # An empty ACK or RST: 4 bytes, no token.
    return bytes((0x40 | mtype << 4, 0, mid >> 8, mid & 0xFF))


# A remembered incoming message: a tuple indexed by these fields.
_SEEN_MID = const(0)
_SEEN_ADDR = const(1)
_SEEN_EXPIRY = const(2)
_SEEN_ANSWER = const(3)  # the answer datagram, or None when it had none
_SEEN_REPLAYABLE = const(4)  # a GET or a response: may be forgotten first


class Exchange:
    def __init__(self, transport, handler, rand=None, log=print, seen_max=32, seen_bytes=4096, ack_timeout=2000):
        if rand is None:
            from random import random as rand
        self._t = transport
        self._handler = handler
        self._rand = rand
        self._log = log
        self._mid = int(rand() * 0x10000)
        self._out = []  # records, oldest first
        self._seen = []  # recent incoming messages, oldest first (see _SEEN_*)
        self._seen_max = seen_max
        self._seen_cap = seen_bytes
        self._seen_bytes = 0  # the size of the answers in _seen
        self._ack_timeout = ack_timeout  # ms
        self.traffic = 0  # datagrams sent and received so far: what queue mode watches

    # --- the caller's side

    def request(self, msg, addr, callback, now):
        # Sends msg (CON or NON) to addr with a new MID, and a new token unless msg has one;
        # callback(response) follows once, or callback(None) on timeout or RST.
        msg.mid = self._new_mid()
        if not msg.token:
            msg.token = self._token(msg.mid)
        rec = [_WAIT, addr, msg.mid, msg.token, coap.encode(msg), 0, 0, 0, callback]
        if msg.type != _CON:
            rec[_DEADLINE] = ticks_add(now, _MAX_TRANSMIT_WAIT)
            self._send(rec[_DATA], addr)
        else:
            # NSTART 1: wait while a CON request to addr is unacknowledged or queued.
            for other in self._out:
                if other[_ADDR] == addr and (other[_STATE] == _SENT or other[_STATE] == _QUEUED):
                    rec[_STATE] = _QUEUED
                    break
            else:
                self._start(rec, _SENT, now)
        self._out.append(rec)

    def notify(self, msg, addr, callback, now):
        # Sends a notification (a response with the observation's token) with a new MID.
        # CON: callback(True) on ACK, callback(False) on timeout or RST. NON: callback(False)
        # if an RST answers it within NON_LIFETIME.
        mid = msg.mid = self._new_mid()
        data = coap.encode(msg)
        if msg.type == _CON:
            for rec in self._out:
                if rec[_STATE] == _NOTE and rec[_ADDR] == addr and rec[_TOKEN] == msg.token:
                    rec[_MID] = mid
                    rec[_DATA] = data
                    rec[_CALLBACK] = callback
                    self._send(data, addr)
                    return
            rec = [_NOTE, addr, mid, msg.token, data, 0, 0, 0, callback]
            self._start(rec, _NOTE, now)
        else:
            self._forget_non_note()
            rec = [_NOTE_NON, addr, mid, msg.token, None, ticks_add(now, _NON_LIFETIME), 0, 0, callback]
            self._send(data, addr)
        self._out.append(rec)

    def busy(self):
        # Whether anything still awaits an answer or an acknowledgement (NON notifications
        # kept only to match an RST do not count).
        for rec in self._out:
            if rec[_STATE] != _NOTE_NON:
                return True
        return False

    def pending(self, addr):
        # Whether a request to addr still awaits its callback (sent or queued).
        for rec in self._out:
            if rec[_STATE] <= _QUEUED and rec[_ADDR] == addr:
                return True
        return False

    def cancel(self, addr):
        # Forgets every request and notification to addr; no callback is called. Returns how
        # many were still to be sent or acknowledged (NON notifications kept to match an RST
        # are not counted).
        out = self._out
        i = len(out)
        dropped = 0
        while i:
            i -= 1
            if out[i][_ADDR] == addr:
                dropped += out[i][_STATE] != _NOTE_NON
                del out[i]
        return dropped

    def poll(self, buf, now):
        # Receives and answers every waiting datagram (through buf, a preallocated
        # bytearray), retransmits and gives up what is due; returns the ms until the next
        # deadline. Allocates nothing when nothing arrives and nothing is due.
        seen = self._seen
        while seen and ticks_diff(now, seen[0][_SEEN_EXPIRY]) >= 0:
            self._forget(0)
        transport = self._t
        while True:
            try:
                n = transport.recv_into(buf)
                if n < 0:
                    break
                addr = transport.source
                self.traffic += 1
                if n == len(buf):
                    self._too_large(memoryview(buf)[:4 + (buf[0] & 15)], n, addr)
                else:
                    self._receive(memoryview(buf)[:n], addr, now)
            except MemoryError:
                # No heap for the datagram, or not even for a 5.00 (the handler's own failures
                # are answered 5.00 in _serve): it is dropped, as if lost, and the loop goes on.
                self._log("coap: out of memory: a datagram dropped")
        self._timers(now)
        return self.next_wait(now)

    def next_wait(self, now):
        # The ms until the next retransmission or give-up (also of what was sent since the
        # last poll).
        wait = _IDLE
        for rec in self._out:
            if rec[_STATE] != _QUEUED and rec[_STATE] != _NOTE_NON:
                left = ticks_diff(rec[_DEADLINE], now)
                if left < wait:
                    wait = left
        return wait if wait > 0 else 0

    # --- outgoing

    def _new_mid(self):
        mid = self._mid
        self._mid = (mid + 1) & 0xFFFF
        return mid

    def _token(self, mid):
        # 4 bytes: 32 random bits, with the MID mixed into the low half so that tokens stay
        # distinct even from a poor random source.
        rand = self._rand
        high = int(rand() * 0x10000)
        low = int(rand() * 0x10000) ^ mid
        return bytes((high >> 8, high & 0xFF, low >> 8, low & 0xFF))

    def _send(self, data, addr):
        self.traffic += 1
        try:
            self._t.send(data, addr)
        except OSError as exc:
            self._log("coap: send failed: %r" % exc)

    def _call(self, callback, arg):
        # A callback's failure must not stop the loop: a hostile response can reach it.
        try:
            callback(arg)
        except Exception as exc:
            self._log("coap: callback failed: %s: %s" % (type(exc).__name__, exc))

    def _start(self, rec, state, now):
        # First transmission of a CON: the timeout is random in [ACK_TIMEOUT, 1.5 x that).
        timeout = self._ack_timeout + int(self._rand() * (self._ack_timeout >> 1))
        rec[_STATE] = state
        rec[_TIMEOUT] = timeout
        rec[_DEADLINE] = ticks_add(now, timeout)
        self._send(rec[_DATA], rec[_ADDR])

    def _forget_non_note(self):
        # Keeps at most _NON_NOTES - 1 NON notifications, so the next one fits.
        out = self._out
        first = -1
        count = 0
        for i in range(len(out)):
            if out[i][_STATE] == _NOTE_NON:
                count += 1
                if first < 0:
                    first = i
        if count >= _NON_NOTES:
            del out[first]

    def _drop(self, rec, now):
        # Removes rec; a CON request leaving the slot hands it to the next queued one.
        self._out.remove(rec)  # equal records would have the same MID and address
        if rec[_STATE] == _SENT:
            self._advance(rec[_ADDR], now)

    def _advance(self, addr, now):
        for rec in self._out:
            if rec[_STATE] == _QUEUED and rec[_ADDR] == addr:
                self._start(rec, _SENT, now)
                return

    def _timers(self, now):
        out = self._out
        i = 0
        while i < len(out):
            rec = out[i]
            i += 1
            state = rec[_STATE]
            if state == _QUEUED or ticks_diff(now, rec[_DEADLINE]) < 0:
                continue
            if (state == _SENT or state == _NOTE) and rec[_TRIES] < _MAX_RETRANSMIT:
                rec[_TRIES] += 1
                rec[_TIMEOUT] *= 2
                rec[_DEADLINE] = ticks_add(now, rec[_TIMEOUT])
                self._send(rec[_DATA], rec[_ADDR])
                continue
            self._drop(rec, now)
            if state != _NOTE_NON:
                self._call(rec[_CALLBACK], False if state == _NOTE else None)
            i = 0  # the callback may have changed the list

    # --- incoming

    def _receive(self, data, addr, now):
        try:
            msg = coap.decode(data)
        except coap.MessageError as exc:
            if exc.code is not None:
                self._send(coap.encode(coap.Message(_ACK, exc.code, exc.mid, exc.token, str(exc).encode())), addr)
            elif exc.mid is not None and exc.type == _CON:
                self._send(_empty(_RST, exc.mid), addr)
            return
        mtype = msg.type
        code = msg.code
        cls = code >> 5
        if code == 0:
            if mtype == _CON:  # a ping
                self._send(_empty(_RST, msg.mid), addr)
            elif mtype != _NON:
                self._acked(msg, addr, now)
        elif cls == 1 or cls == 3 or cls > 5:  # reserved classes
            if mtype == _CON:
                self._send(_empty(_RST, msg.mid), addr)
        elif mtype == _ACK:
            if cls:
                self._acked(msg, addr, now)
        elif mtype != _RST:
            for entry in self._seen:
                if entry[_SEEN_MID] == msg.mid and entry[_SEEN_ADDR] == addr:
                    if entry[_SEEN_ANSWER] is not None:
                        self._send(entry[_SEEN_ANSWER], addr)
                    return
            if cls:
                self._response(msg, addr, now)
            else:
                self._serve(msg, addr, now)

    def _too_large(self, head, size, addr):
        # A datagram that filled the whole buffer may have been cut short, so it is not acted
        # on; a CON request gets 4.13 with Size1, the most this client takes.
        try:
            req = coap.decode(head)
        except coap.MessageError:
            return
        if req.type == _CON and 0 < req.code < 32:
            res = coap.Message(0, _TOO_LARGE)
            res.add(_SIZE1, size)
            self._send(self._answer(res, req, True), addr)

    def _remember(self, mid, addr, now, answer, replayable):
        seen = self._seen
        seen.append((mid, addr, ticks_add(now, _EXCHANGE_LIFETIME), answer, replayable))
        if answer is not None:
            self._seen_bytes += len(answer)
        while len(seen) > self._seen_max:
            # the oldest replayable entry, else the oldest of all
            i = 0
            while i < len(seen) and not seen[i][_SEEN_REPLAYABLE]:
                i += 1
            self._forget(i if i < len(seen) else 0)
        i = 0
        while self._seen_bytes > self._seen_cap and i < len(seen):
            # the oldest answer beyond the code alone: a replayable entry goes, another's
            # answer is cut to its header and token
            entry = seen[i]
            answer = entry[_SEEN_ANSWER]
            head = 4 + (answer[0] & 15) if answer is not None else 0
            if answer is None or len(answer) <= head:
                i += 1
            elif entry[_SEEN_REPLAYABLE]:
                self._forget(i)
            else:
                seen[i] = (entry[_SEEN_MID], entry[_SEEN_ADDR], entry[_SEEN_EXPIRY], answer[:head], False)
                self._seen_bytes -= len(answer) - head

    def _forget(self, i):
        answer = self._seen.pop(i)[_SEEN_ANSWER]
        if answer is not None:
            self._seen_bytes -= len(answer)

    def _acked(self, msg, addr, now):
        # An ACK (empty or piggybacked response) or an RST, matched by MID.
        mid = msg.mid
        for rec in self._out:
            if rec[_MID] == mid and rec[_ADDR] == addr and rec[_STATE] != _QUEUED:
                break
        else:
            return
        state = rec[_STATE]
        if msg.type == _RST:
            self._drop(rec, now)
            self._call(rec[_CALLBACK], None if state <= _QUEUED else False)
        elif state == _NOTE:
            self._drop(rec, now)
            self._call(rec[_CALLBACK], True)
        elif state == _SENT:
            if msg.code == 0:
                # The response will come separately; the slot is free meanwhile.
                rec[_STATE] = _WAIT
                rec[_DATA] = None
                rec[_DEADLINE] = ticks_add(now, _EXCHANGE_LIFETIME)
                self._advance(addr, now)
            elif msg.token == rec[_TOKEN]:
                self._drop(rec, now)
                self._call(rec[_CALLBACK], msg)

    def _response(self, msg, addr, now):
        # A separate response (CON or NON), or the response to a NON request: by token.
        for rec in self._out:
            if rec[_STATE] <= _WAIT and rec[_TOKEN] == msg.token and rec[_ADDR] == addr:
                if msg.type == _CON:
                    ack = _empty(_ACK, msg.mid)
                    self._remember(msg.mid, addr, now, ack, True)
                    self._send(ack, addr)
                self._drop(rec, now)  # also acknowledges a CON request whose ACK was lost
                self._call(rec[_CALLBACK], msg)
                return
        if msg.type == _CON:
            self._send(_empty(_RST, msg.mid), addr)

    def _serve(self, req, addr, now):
        # The handler's answer: piggybacked in the ACK of a CON, a NON with a new MID for a
        # NON; remembered for duplicates.
        con = req.type == _CON
        try:
            answer = self._answer(self._handler(req, addr), req, con)
        except Error as exc:
            if exc.code is None:
                answer = _empty(_RST, req.mid) if con else None
            else:
                answer = self._answer(coap.Message(0, exc.code, 0, b"", str(exc).encode()), req, con)
        except Exception as exc:
            self._log("coap: handler failed: %s: %s" % (type(exc).__name__, exc))
            answer = self._answer(coap.Message(0, _SERVER_ERROR), req, con)
        self._remember(req.mid, addr, now, answer, req.code == _GET)
        if answer is not None:
            self._send(answer, addr)

    def _answer(self, res, req, con):
        res.type = _ACK if con else _NON
        res.mid = req.mid if con else self._new_mid()
        res.token = req.token
        return coap.encode(res)
