# A DTLS PSK server for the tests of the tls stand-in's reads (python-mbedtls on the server's
# side, a process of its own as peers/dtls_server.py is, whose handshake it uses):
#   python dtls_records.py PORT IDENTITY HEXKEY [SUITE ...]
# offering only the SUITEs given (default: every PSK suite). Each record the client sends is
# answered by the next step: the records "first" and "second!" at once, then "third" and
# "fourth", then a close_notify. It prints "listening", "handshake SUITE" (or "handshake
# failed REASON", then exits), "sent N" after each step; it gives up after 60 s.
import signal
import socket
import sys

from dtls_server import PSK_SUITES, accept, say, send_pending
from mbedtls.exceptions import TLSError

STEPS = ((b"first", b"second!"), (b"third", b"fourth"))


def main(port, identity, key, suites):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # accept() binds a second one
    sock.bind(("127.0.0.1", port))
    signal.alarm(60)
    say("listening")
    try:
        conn = accept(sock, identity, key, suites)
    except TLSError as exc:
        say("handshake failed", exc.msg)
        return
    for records in STEPS:
        conn.recv(2048)
        for record in records:
            conn.send(record)
        say("sent", len(records))
    conn.recv(2048)
    conn._buffer.shutdown()
    send_pending(conn)
    say("sent", 1)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], bytes.fromhex(sys.argv[3]), sys.argv[4:] or PSK_SUITES)
