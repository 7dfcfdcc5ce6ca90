# Datagram transports behind one small interface, used by lwm2m.exchange:
#   resolve(host, port)    -> the address of the peer host:port, from then on reachable
#   send(data, addr)       sends one datagram to a resolved peer
#   recv_into(buf)         -> the size of one waiting datagram copied into buf (0 for an empty
#                          one), its peer's address left in `source`; -1 when nothing waits.
#                          Never blocks, allocates nothing. A datagram longer than buf is
#                          truncated to len(buf).
#   wait(timeout_ms)       blocks until a datagram waits or timeout_ms passes; -> bool
#   close()
# Addresses are whatever resolve() gives (a tuple on most ports, opaque bytes on some): pass
# them through, compare them with ==.
# socket and select are imported inside UdpTransport, so MemoryTransport also works where
# there is no socket module (the MicroPython VM of the tests).
import errno

# Errors of a non-blocking receive that only mean "nothing there" (by name: numbers differ
# between ports; some ports report a timeout where others say EAGAIN).
_NOTHING_ERRORS = (errno.EAGAIN, errno.ETIMEDOUT)


def resolve(host, port, family=None):
    # The socket address of host:port for UDP, from getaddrinfo (IPv4 unless told otherwise).
    import socket

    if family is None:
        family = socket.AF_INET
    return socket.getaddrinfo(host, port, family, socket.SOCK_DGRAM)[0][-1]


class UdpTransport:
    # One non-blocking UDP socket per peer, connected to it by resolve(): the network stack
    # drops datagrams from anyone else, and a datagram goes straight into the caller's buffer
    # (recv_into on CPython, readinto on MicroPython, which has no recvfrom_into), so
    # receiving allocates nothing. One poller waits on all the sockets at once.
    def __init__(self, family=None):
        import select
        import socket

        self._socket = socket
        self._family = socket.AF_INET if family is None else family
        self._socks = []  # the connected sockets, one per peer ...
        self._peers = []  # ... the address each is connected to ...
        self._fds = []  # ... its file number (what CPython's poll() reports) ...
        self._into = []  # ... and its bound receive-into method
        self.source = None
        poller = select.poll()
        self._register = lambda sock: poller.register(sock, select.POLLIN)
        # MicroPython's ipoll() reuses one result tuple and allocates nothing; CPython's
        # poll() builds a list. Both take milliseconds.
        self._poll = getattr(poller, "ipoll", poller.poll)

    def resolve(self, host, port):
        addr = resolve(host, port, self._family)
        if addr not in self._peers:
            sock = self._socket.socket(self._family, self._socket.SOCK_DGRAM)
            try:
                sock.setblocking(False)
                sock.connect(addr)
                self._register(sock)
            except Exception:
                sock.close()
                raise
            self._socks.append(sock)
            self._peers.append(addr)
            self._fds.append(sock.fileno() if hasattr(sock, "fileno") else None)
            self._into.append(getattr(sock, "recv_into", None) or sock.readinto)
        return addr

    def socket(self, addr):
        # The socket connected to addr (for its local address, or a DTLS layer).
        return self._socks[self._peers.index(addr)]

    def send(self, data, addr):
        self._socks[self._peers.index(addr)].send(data)

    def wait(self, timeout_ms):
        for _ in self._poll(timeout_ms):
            return True
        return False

    def recv_into(self, buf):
        for ready in self._poll(0):
            i = 0
            while self._socks[i] is not ready[0] and self._fds[i] != ready[0]:
                i += 1
            try:
                n = self._into[i](buf)
            except OSError as exc:
                # ECONNREFUSED: an ICMP port unreachable from a peer not (yet) listening. The
                # error is reported once and the socket stays usable, as with a lost datagram.
                if exc.errno not in _NOTHING_ERRORS and exc.errno != errno.ECONNREFUSED:
                    raise
                continue
            if n is not None:  # MicroPython's readinto gives None when nothing is there
                self.source = self._peers[i]
                return n
        return -1

    def close(self):
        for sock in self._socks:
            sock.close()


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

    def recv_into(self, buf):
        if not self._inbox:
            return -1
        data, self.source = self._inbox.pop(0)
        n = min(len(data), len(buf))
        buf[:n] = data[:n]
        return n

    def close(self):
        pass

    def resolve(self, host, port):
        # No name service in memory: the address is the (host, port) pair itself.
        return (host, port)
