# A file server behind DTLS PSK, for the coaps:// firmware pull: aiocoap's file server
# (aiocoap-fileserver) can only do DTLS through tinydtls (the DTLSSocket package), which is not
# installed here, so this one serves a single file with python-mbedtls on the server's side
# and aiocoap's codec: every GET is answered with the Block2 block it asks for, an ETag and
# Size2. Run as a process of its own (see dtls_server.py):
#   python dtls_fileserver.py PORT IDENTITY HEXKEY FILE
# It prints "listening", "handshake SUITE" and one "block NUM" per block served; it gives up
# after 120 s.
import signal
import socket
import sys

import aiocoap
from aiocoap.numbers.codes import Code
from aiocoap.optiontypes import BlockOption

from dtls_server import accept, say


def main(port, identity, key, path):
    with open(path, "rb") as f:
        data = f.read()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    signal.alarm(120)
    say("listening")
    conn = accept(sock, identity, key)
    while True:
        msg = aiocoap.Message.decode(conn.recv(2048))
        if msg.code != Code.GET:
            continue
        asked = msg.opt.block2 or BlockOption.BlockwiseTuple(0, False, 6)
        size = 16 << asked.size_exponent
        start = asked.block_number * size
        answer = aiocoap.Message(mtype=aiocoap.ACK, mid=msg.mid, token=msg.token, code=Code.CONTENT,
                                 payload=data[start:start + size])
        answer.opt.block2 = BlockOption.BlockwiseTuple(asked.block_number, start + size < len(data),
                                                       asked.size_exponent)
        answer.opt.etag = b"\x42"
        answer.opt.size2 = len(data)
        conn.send(answer.encode())
        say("block", asked.block_number)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], bytes.fromhex(sys.argv[3]), sys.argv[4])
