# Datagram transports behind one small interface, used by lwm2m.exchange:
#   resolve(host, port)    -> the address of the peer host:port, from then on reachable
#   send(data, addr)       sends one datagram to a resolved peer
#   recv_into(buf)         -> the size of one waiting datagram copied into buf (0 for an empty
#                          one), its peer's address left in `source`; -1 when nothing waits.
#                          Never blocks. A datagram longer than buf is truncated to len(buf).
#                          MemoryError when no heap is left for it: what waited is dropped.
#   wait(timeout_ms)       blocks until a datagram waits or timeout_ms passes; -> bool
#   handshaking()          True while a DTLS handshake runs: recv_into() must then be called
#                          often (every 100 ms), since DTLS timers do not wake wait()
#   close()
#   local_port(addr)       -> the local port of the socket to addr, None when not known
#   rebind(addr, port)     the socket to addr anew on that local port (after a deep sleep);
#                          -> False when it cannot be had
# UdpTransport also has secure(addr, context, hostname) and cipher(addr), for DTLS peers.
# Addresses are whatever resolve() gives: a tuple on the lwIP ports (ESP32, Pico W) and
# CPython, bytes on the unix port, whose getaddrinfo() gives a bytearray that is made bytes
# here so that it can be a dict key. Pass them through, compare them with ==.
# socket and select are imported inside UdpTransport, so MemoryTransport also works where
# there is no socket module (the MicroPython VM of the tests).
import errno

from micropython import const

# Errors of a non-blocking receive that only mean "nothing there" (by name: numbers differ
# between ports; some ports report a timeout where others say EAGAIN).
_NOTHING_ERRORS = (errno.EAGAIN, errno.ETIMEDOUT)
_DYNAMIC_PORTS = const(49152)  # local ports are picked from 49152-65535 (RFC 6335)
_PICKS = const(8)  # ports tried before giving up
_NO_SESSION = "no DTLS session"  # a peer's failure while secure() makes its session


def resolve(host, port, family=None):
    # The socket address of host:port for UDP, from getaddrinfo (IPv4 unless told otherwise),
    # in a form that can be hashed.
    import socket

    if family is None:
        family = socket.AF_INET
    addr = socket.getaddrinfo(host, port, family, socket.SOCK_DGRAM)[0][-1]
    try:
        hash(addr)
    except TypeError:  # the unix port's bytearray
        addr = bytes(addr)
    return addr


def _why(exc):
    # What failed a DTLS session, for the log, on one line: the stand-in's message, mbedTLS's
    # reason for a certificate CERT_REQUIRED refused (a ValueError of several lines), or the
    # mbedTLS error number MicroPython's tls raises (negative, e.g. -30592 for a fatal alert).
    args = exc.args
    if len(args) > 1:
        text = str(args[1])
    elif args and isinstance(args[0], str):
        text = args[0]
    else:
        text = "DTLS error %s" % (args[0] if args else exc)
    return " ".join(text.split())


class _Peer:
    # One peer's connected socket, and its DTLS session when it has one.
    def __init__(self, sock, addr, port):
        self.sock = sock
        self.addr = addr
        self.port = port  # the local port it is bound to
        self.fd = sock.fileno() if hasattr(sock, "fileno") else None  # what CPython's poll() reports
        self.link = sock  # what datagrams go through: the socket, or its DTLS session
        self.context = None  # the tls.SSLContext of a DTLS peer
        self.shaken = False  # its handshake is done
        self.failure = None  # why its DTLS session failed (an alert, a bad certificate)
        self.waiting = None  # the datagram sent while the handshake runs


class UdpTransport:
    # One non-blocking UDP socket per peer, connected to it by resolve(): the network stack
    # drops datagrams from anyone else. A datagram is taken with recv(), which allocates it:
    # MicroPython's sockets have no recv_into, and their readinto (the DTLS socket's
    # recv_into too) is the generic stream read, which goes on reading until the buffer is
    # full, so two waiting datagrams would come back as one. recv() reads once: one datagram,
    # or one DTLS record. One poller waits on all the sockets at once. Each socket is
    # bound to a local port picked here, since MicroPython's sockets cannot tell theirs (no
    # getsockname()): a client that deep-sleeps keeps it and binds it again on waking, and
    # the server, which knows a client by address and port, still recognises it.
    #
    # secure(addr, context, hostname) puts a peer behind DTLS, with a new session each time it
    # is called (a new socket too: a DTLS socket that saw an ICMP error stays failed). The
    # handshake advances whenever recv_into() is called, which the caller does often while
    # handshaking() is true: DTLS timers do not wake select. The last datagram sent during the
    # handshake goes out once it is done (CoAP retransmits anyway). The handshake is done as
    # soon as a record goes through, either way: the reads alone may finish it, before
    # anything is sent.
    def __init__(self, family=None):
        import select
        import socket

        self._socket = socket
        self._family = socket.AF_INET if family is None else family
        self._peers = []
        self.source = None
        self._poller = poller = select.poll()
        self._pollin = select.POLLIN
        # MicroPython's ipoll() reuses one result tuple and allocates nothing; CPython's
        # poll() builds a list. Both take milliseconds.
        self._poll = getattr(poller, "ipoll", poller.poll)

    def resolve(self, host, port):
        addr = resolve(host, port, self._family)
        if self._peer(addr) is None:
            sock, port = self._connect(addr)
            self._peers.append(_Peer(sock, addr, port))
        return addr

    def _connect(self, addr, port=None):
        # A new socket connected to addr from the local port (None: one picked); -> (socket, port)
        sock = self._socket.socket(self._family, self._socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            port = self._bind(sock, port)
            sock.connect(addr)
            self._poller.register(sock, self._pollin)
        except Exception:
            sock.close()
            raise
        return sock, port

    def _bind(self, sock, port):
        # Binds sock to port, or to a free one picked at random; -> the port.
        from random import getrandbits

        host = "0.0.0.0" if self._family == self._socket.AF_INET else "::"
        tries = 1 if port else _PICKS
        while True:
            pick = port or _DYNAMIC_PORTS + getrandbits(14)
            try:
                # The unix port binds only the address getaddrinfo() gives, not a tuple.
                sock.bind(resolve(host, pick, self._family))
                return pick
            except OSError as exc:
                tries -= 1
                if exc.errno != errno.EADDRINUSE or not tries:
                    raise

    def local_port(self, addr):
        return self._peer(addr).port

    def rebind(self, addr, port):
        peer = self._peer(addr)
        try:
            sock, port = self._connect(addr, port)
        except OSError:
            return False
        self._poller.unregister(peer.sock)
        peer.sock.close()
        peer.__init__(sock, addr, port)
        return True

    def _peer(self, addr):
        for peer in self._peers:
            if peer.addr == addr:
                return peer
        return None

    def secure(self, addr, context, hostname=None):
        # hostname: the server's name, which its certificate is checked against (None: no check).
        # Until the session is made the peer counts as failed: when a step raises (no heap for
        # mbedTLS, no socket), nothing goes out to it, in the clear least of all.
        peer = self._peer(addr)
        try:
            self._poller.unregister(peer.sock)
        except (KeyError, ValueError):  # CPython: its socket went with an earlier failed secure()
            pass
        peer.sock.close()
        peer.failure = _NO_SESSION
        sock, port = self._connect(addr, peer.port)  # the same port: the server knows it
        peer.__init__(sock, addr, port)
        peer.context = context
        peer.failure = _NO_SESSION
        if hostname is None:
            peer.link = context.wrap_socket(sock, server_side=False, do_handshake_on_connect=False)
        else:
            peer.link = context.wrap_socket(sock, server_side=False, do_handshake_on_connect=False,
                                            server_hostname=hostname)
        peer.failure = None

    def socket(self, addr):
        # The socket connected to addr (for its local address).
        return self._peer(addr).sock

    def cipher(self, addr):
        # The cipher suite agreed with a DTLS peer, None before the handshake is done.
        peer = self._peer(addr)
        return peer.link.cipher()[0] if peer.shaken else None

    def failure(self, addr):
        # Why the DTLS session with addr failed, None while it has not.
        return self._peer(addr).failure

    def handshaking(self):
        for peer in self._peers:
            if peer.context and not peer.shaken and not peer.failure:
                return True
        return False

    def send(self, data, addr):
        peer = self._peer(addr)
        if peer.failure:
            return  # a failed session sends nothing, until secure() makes a new one
        try:
            if peer.link.send(data) is None:  # DTLS: the handshake runs
                peer.waiting = bytes(data)
            elif peer.context:
                peer.shaken = True  # a record went through
        except (OSError, ValueError) as exc:  # ValueError: a certificate refused
            if not peer.context:
                raise
            peer.failure = _why(exc)

    def wait(self, timeout_ms):
        for _ in self._poll(timeout_ms):
            return True
        return False

    def recv_into(self, buf):
        for peer in self._peers:
            if peer.context and not peer.shaken:
                n = self._handshake(peer, buf)
                if n >= 0:
                    return n
        for ready in self._poll(0):
            for peer in self._peers:
                if peer.sock is ready[0] or peer.fd == ready[0]:
                    n = self._receive(peer, buf)
                    if n >= 0:
                        return n
        return -1

    def _handshake(self, peer, buf):
        # Advances a DTLS handshake (a read does, and so does the write of what waits); -> the
        # size of a datagram the read gave, -1 when none. A record read or written means the
        # handshake is done.
        n = self._receive(peer, buf)
        if n >= 0:
            peer.shaken = True
        if peer.waiting is not None and not peer.failure:
            waiting = peer.waiting
            peer.waiting = None
            self.send(waiting, peer.addr)
        return n

    def _receive(self, peer, buf):
        if peer.failure:
            # A failed session takes nothing in; what arrives is read off its socket and
            # dropped, since left waiting it would wake the loop again and again.
            try:
                peer.sock.recv(len(buf))
            except (OSError, MemoryError):
                pass
            return -1
        try:
            data = peer.link.recv(len(buf))
        except MemoryError:
            # No heap for the datagram: what waits is read into buf (readinto allocates
            # nothing) and dropped, as if lost, rather than waking the loop again and again.
            # The recv() may have found nothing: then nothing is lost.
            if peer.link.readinto(buf) is None:
                return -1
            raise
        except (OSError, ValueError) as exc:
            # EAGAIN: nothing after all. ECONNREFUSED: an ICMP port unreachable from a peer
            # not (yet) listening, reported once on a plain socket, as a lost datagram, but
            # for good on a DTLS session. Anything else on a DTLS session (an alert, a
            # certificate refused: ValueError) fails it: nothing more goes through it until
            # secure() makes a new one.
            code = getattr(exc, "errno", None)
            if code in _NOTHING_ERRORS or (code == errno.ECONNREFUSED and not peer.context):
                return -1
            if not peer.context:
                raise
            peer.failure = _why(exc)
            return -1
        if data is None:  # MicroPython's DTLS socket: nothing there (or the handshake runs)
            return -1
        if not data and peer.context:  # a DTLS read gives nothing only for a close_notify
            peer.failure = "the server closed the DTLS session"
            return -1
        n = len(data)
        buf[:n] = data
        self.source = peer.addr
        return n

    def close(self):
        for peer in self._peers:
            peer.link.close()


class MemoryTransport:
    # For tests: inject() queues a datagram for recv_into(); `sent` lists the (bytes, addr)
    # pairs sent, oldest first. wait() never blocks.
    def __init__(self):
        self.sent = []
        self.source = None
        self._inbox = []

    def inject(self, data, addr):
        self._inbox.append((bytes(data), addr))

    def send(self, data, addr):
        self.sent.append((bytes(data), addr))

    def wait(self, timeout_ms):
        return len(self._inbox) > 0

    def handshaking(self):
        return False

    def recv_into(self, buf):
        if not self._inbox:
            return -1
        data, self.source = self._inbox.pop(0)
        n = min(len(data), len(buf))
        buf[:n] = data[:n]
        return n

    def close(self):
        pass

    def local_port(self, addr):
        return None

    def rebind(self, addr, port):
        return False

    def resolve(self, host, port):
        # No name service in memory: the address is the (host, port) pair itself.
        return (host, port)
