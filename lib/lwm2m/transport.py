# Datagram transports behind one small interface, used by lwm2m.exchange:
#   send(data, addr)       sends one datagram
#   recv_into(buf)         -> (nbytes, addr) of one waiting datagram copied into buf, or
#                          (0, None) when nothing waits; never blocks, and allocates nothing
#                          when nothing waits. A datagram longer than buf is truncated.
#   wait(timeout_ms)       blocks until a datagram waits or timeout_ms passes; -> bool
#   close()
#   resolve(host, port)    -> the address to send host:port
# Addresses are whatever resolve() and recv_into() give (a tuple on most ports, opaque
# bytes on some): pass them through, compare them with ==.
# socket and select are imported inside UdpTransport, so MemoryTransport also works where
# there is no socket module (the MicroPython VM of the tests).
import errno

# The answer of recv_into() when nothing waits: one shared tuple, so idle polls allocate nothing.
_NOTHING = (0, None)
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
    # A non-blocking UDP socket bound to local_port (0: any free port) on every interface.
    # `sock` is the socket itself, for callers that need it (a later DTLS layer).
    def __init__(self, local_port=0, family=None):
        import socket
        import select

        if family is None:
            family = socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.bind(resolve("0.0.0.0" if family == socket.AF_INET else "::", local_port, family))
        except Exception:
            sock.close()
            raise
        self.sock = sock
        self._family = family
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        # MicroPython's ipoll() reuses one result tuple and allocates nothing; CPython's
        # poll() builds a list. Both take milliseconds. Bound once here so waits do not
        # build a bound method each time.
        self._poll = getattr(poller, "ipoll", poller.poll)
        # CPython receives straight into the buffer; MicroPython has only recvfrom().
        self._into = getattr(sock, "recvfrom_into", None)

    def send(self, data, addr):
        self.sock.sendto(data, addr)

    def wait(self, timeout_ms):
        for _ in self._poll(timeout_ms):
            return True
        return False

    def recv_into(self, buf):
        # Asking the poller first keeps the idle path free of the OSError (an allocation)
        # that an empty non-blocking receive raises.
        if not self.wait(0):
            return _NOTHING
        try:
            if self._into:
                return self._into(buf)
            data, addr = self.sock.recvfrom(len(buf))
        except OSError as exc:
            if exc.errno in _NOTHING_ERRORS:
                return _NOTHING
            raise
        n = len(data)
        buf[:n] = data
        return n, addr

    def close(self):
        self.sock.close()

    def resolve(self, host, port):
        return resolve(host, port, self._family)


class MemoryTransport:
    # For tests: inject() queues a datagram for recv_into(); `sent` lists the (bytes, addr)
    # pairs sent, oldest first. wait() never blocks.
    def __init__(self):
        self.sent = []
        self._inbox = []

    def inject(self, data, addr):
        self._inbox.append((bytes(data), addr))

    def send(self, data, addr):
        self.sent.append((bytes(data), addr))

    def wait(self, timeout_ms):
        return len(self._inbox) > 0

    def recv_into(self, buf):
        if not self._inbox:
            return _NOTHING
        data, addr = self._inbox.pop(0)
        n = min(len(data), len(buf))
        buf[:n] = data[:n]
        return n, addr

    def close(self):
        pass

    def resolve(self, host, port):
        # No name service in memory: the address is the (host, port) pair itself.
        return (host, port)
