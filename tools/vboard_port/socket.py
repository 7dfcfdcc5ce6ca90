# The virtual board's `socket` module (tools/vboard.mjs installs it as a built-in): UDP over
# IPv4 as MicroPython's lwIP ports offer it. Addresses are (host, port) tuples, as
# getaddrinfo() gives them on ESP32 and RP2. A non-blocking recvfrom() with nothing waiting
# raises OSError(EAGAIN); with a timeout set, OSError(ETIMEDOUT) once it has passed.
import errno

import _vboard

AF_INET = 2
AF_INET6 = 10
SOCK_STREAM = 1
SOCK_DGRAM = 2
SOCK_RAW = 3
IPPROTO_IP = 0
IPPROTO_UDP = 17
IPPROTO_TCP = 6
SOL_SOCKET = 1
SO_REUSEADDR = 4
SO_BROADCAST = 32

_open = _vboard.sock_open
_bind = _vboard.sock_bind
_send = _vboard.sock_send
_recv = _vboard.sock_recv
_close = _vboard.sock_close
_poll = _vboard.poll


def _check(ret):
    # The JavaScript side answers errors as negative errno numbers.
    if isinstance(ret, int) and ret < 0:
        raise OSError(-ret)
    return ret


def getaddrinfo(host, port, af=0, type=0, proto=0, flags=0):
    if af not in (0, AF_INET):
        raise OSError(errno.EINVAL)  # IPv4 only
    address = _check(_vboard.resolve(str(host)))
    return [(AF_INET, type or SOCK_DGRAM, proto, "", (address, port))]


def _address(addr):
    # (host, port) -> (dotted quad, port), resolving a name as lwIP ports do.
    try:
        host, port = addr
    except (TypeError, ValueError):
        raise OSError(errno.EINVAL)
    return _check(_vboard.resolve(str(host))), int(port)


class socket:
    def __init__(self, af=AF_INET, type=SOCK_STREAM, proto=0):
        if af != AF_INET:
            raise OSError(errno.EINVAL)  # IPv4 only
        if type != SOCK_DGRAM:
            raise OSError(errno.EOPNOTSUPP)  # this board has UDP only
        self._i = _check(_open())
        self._mask = 1 << self._i
        self._timeout = None  # None: blocking; 0: non-blocking; else seconds
        self._peer = None

    def _fd(self):
        if self._i < 0:
            raise OSError(errno.EBADF)
        return self._i

    def setblocking(self, flag):
        self._timeout = None if flag else 0

    def settimeout(self, value):
        self._timeout = value

    def setsockopt(self, level, option, value):
        self._fd()

    def bind(self, addr):
        host, port = _address(addr)
        _check(_bind(self._fd(), host, port))

    def connect(self, addr):
        self._fd()
        self._peer = _address(addr)

    def sendto(self, data, addr):
        host, port = _address(addr)
        return _check(_send(self._fd(), data, host, port))

    def send(self, data):
        if self._peer is None:
            raise OSError(errno.ENOTCONN)
        return _check(_send(self._fd(), data, self._peer[0], self._peer[1]))

    write = send

    def _wait(self):
        # Blocks as the socket's timeout says; False when a non-blocking socket has nothing.
        if self._timeout is None:
            while not _poll(self._mask, -1):
                pass  # woken by Ctrl-C: KeyboardInterrupt is raised here
        elif self._timeout and not _poll(self._mask, int(self._timeout * 1000)):
            raise OSError(errno.ETIMEDOUT)

    def recvfrom(self, bufsize):
        i = self._fd()
        self._wait()
        got = _recv(i, bufsize)
        if got is None:
            raise OSError(errno.EAGAIN)
        _check(got)
        return bytes(got[0]), (got[1], got[2])

    def recv(self, bufsize):
        # One datagram, cut to bufsize. A connected socket drops datagrams from anyone but its
        # peer, as lwIP does.
        i = self._fd()
        self._wait()
        while True:
            got = _recv(i, bufsize)
            if got is None:
                raise OSError(errno.EAGAIN)
            _check(got)
            if self._peer is None or (got[1], got[2]) == self._peer:
                return bytes(got[0])  # from JavaScript: a copy (this module is C on a board)

    def readinto(self, buf):
        # The generic stream read of py/stream.c, as lwIP's socket has it: datagram after
        # datagram until buf is full or none is left, so waiting datagrams come back joined;
        # None when a non-blocking socket has nothing.
        done = 0
        while done < len(buf):
            try:
                data = self.recv(len(buf) - done)
            except OSError as exc:
                if exc.errno != errno.EAGAIN:
                    raise
                break
            buf[done:done + len(data)] = data
            done += len(data)
        return done or None


    def close(self):
        if self._i >= 0:
            _close(self._i)
            self._i = -1
            self._mask = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
