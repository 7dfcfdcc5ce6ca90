# A scripted LwM2M server behind DTLS PSK, for the DTLS tests: python-mbedtls on the server's
# side, aiocoap's codec for the CoAP messages (neither is the client's own code). Run as a
# process of its own (python-mbedtls server and client in one interpreter can deadlock):
#   python dtls_server.py PORT IDENTITY HEXKEY
# It prints one line per event: "listening", "handshake SUITE", "register QUERY...",
# "read PAYLOAD", "deregister", then exits; it gives up after 60 s.
import signal
import socket
import sys

import aiocoap
from aiocoap.numbers.codes import Code
from mbedtls import tls
from mbedtls.exceptions import TLSError

PSK_SUITES = [c for c in tls.ciphers_available() if c.startswith("TLS-PSK-WITH-")]


def say(*words):
    print(*words, flush=True)


def accept(sock, identity, key, suites=PSK_SUITES):
    conf = tls.DTLSConfiguration(pre_shared_key_store={identity: key}, ciphers=suites,
                                 validate_certificates=False)
    conn, addr = tls.ServerContext(conf).wrap_socket(sock).accept()
    conn.setcookieparam(addr[0].encode())
    try:
        _handshake(conn)
    except tls.HelloVerifyRequest:  # the client proves its address, then comes again
        pass
    conn, addr = conn.accept()
    conn.setcookieparam(addr[0].encode())
    _handshake(conn)
    say("handshake", conn.cipher())
    return conn


def _handshake(conn):
    try:
        conn.do_handshake()
    except tls.HelloVerifyRequest:
        raise
    except TLSError:
        send_pending(conn)  # the fatal alert that says why
        raise


def send_pending(conn):
    # What python-mbedtls queued and did not send itself: an alert made by a failed handshake,
    # a close_notify made by shutdown().
    buffers = conn._buffer
    data = buffers.peek_outgoing(4096)
    buffers.consume_outgoing(len(data))
    conn._socket.send(data)


def main(port, identity, key):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # accept() binds a second one
    sock.bind(("127.0.0.1", port))
    signal.alarm(60)  # a test that went wrong leaves no server behind
    say("listening")
    conn = accept(sock, identity, key)
    mid = 0x3000
    while True:
        msg = aiocoap.Message.decode(conn.recv(2048))
        if msg.mtype == aiocoap.ACK:  # the answer to our Read
            say("read", msg.payload.decode())
            continue
        if msg.code == Code.POST and msg.opt.uri_path == ("rd",):
            say("register", " ".join(msg.opt.uri_query))
            answer = aiocoap.Message(mtype=aiocoap.ACK, mid=msg.mid, token=msg.token, code=Code.CREATED)
            answer.opt.location_path = ("rd", "x")
            conn.send(answer.encode())
            read = aiocoap.Message(mtype=aiocoap.CON, mid=mid, token=b"rd", code=Code.GET)
            read.opt.uri_path = ("3", "0", "0")
            conn.send(read.encode())
        elif msg.code == Code.DELETE:
            say("deregister")
            conn.send(aiocoap.Message(mtype=aiocoap.ACK, mid=msg.mid, token=msg.token, code=Code.DELETED).encode())
            return


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], bytes.fromhex(sys.argv[3]))
