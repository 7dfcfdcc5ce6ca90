// The virtual board's peripherals, in a worker thread of tools/vboard.mjs: the "UART" (this
// process's stdin) and the "network" (UDP sockets of node:dgram on the host). The VM runs on
// the main thread and blocks there for as long as Python runs (main.py never returns), so
// everything that arrives is handled here, on this thread's own event loop, and handed over
// through shared memory:
//
//   ring  a byte ring buffer (one writer: this thread; one reader: the VM thread) of records
//         [kind u8][length u32 LE][payload], kinds below
//   ctl   Int32Array: ctl[SEQ] counts records written (the VM thread Atomics.wait()s on it),
//         ctl[HEAD] / ctl[TAIL] are the ring's write / read counts in bytes
//
// Requests from the VM thread come as messages ({op: ...}); the ones the VM waits for
// (bind, resolve) are answered with a REPLY record, the others (send, close) need no answer.
import { parentPort, workerData } from "node:worker_threads";
import dgram from "node:dgram";
import dns from "node:dns";
import fs from "node:fs";

// Shared with tools/vboard.mjs, which keeps the same numbers.
const SEQ = 0, HEAD = 1, TAIL = 2;
const INPUT = 1, DATAGRAM = 2, REPLY = 3, EOF = 4, SOCKERR = 5;

const ctl = new Int32Array(workerData.ctl);
// The board's one network interface: the host's loopback, unless started with --host-network.
const INTERFACE = workerData.hostNetwork ? "0.0.0.0" : "127.0.0.1";
const ring = new Uint8Array(workerData.ring);
const SIZE = ring.length;
const pending = []; // records that did not fit yet, oldest first
let retry = null;

function put(kind, payload) {
  // Queues one record; written now if the ring has room, else as soon as the VM reads.
  const rec = Buffer.alloc(5 + payload.length);
  rec[0] = kind;
  rec.writeUInt32LE(payload.length, 1);
  rec.set(payload, 5);
  pending.push(rec);
  flush();
}

function flush() {
  while (pending.length) {
    const rec = pending[0];
    const head = Atomics.load(ctl, HEAD) >>> 0;
    const used = (head - (Atomics.load(ctl, TAIL) >>> 0)) >>> 0;
    if (SIZE - used < rec.length) {
      // Full: the VM thread is busy in Python without reading. Try again shortly.
      if (!retry) retry = setTimeout(() => { retry = null; flush(); }, 2);
      return;
    }
    const at = head % SIZE;
    const first = Math.min(rec.length, SIZE - at);
    ring.set(rec.subarray(0, first), at);
    if (first < rec.length) ring.set(rec.subarray(first), 0);
    Atomics.store(ctl, HEAD, (head + rec.length) | 0);
    pending.shift();
    Atomics.add(ctl, SEQ, 1);
    Atomics.notify(ctl, SEQ);
  }
}

function reply(req, value) {
  put(REPLY, Buffer.from(JSON.stringify({ req, value })));
}

// -- the UART: this process's stdin, read here so that bytes (Ctrl-C above all) arrive while
// the VM thread is busy.
const chunk = Buffer.alloc(4096);
function readInput() {
  fs.read(0, chunk, 0, chunk.length, null, (err, n) => {
    if (err) {
      if (err.code === "EAGAIN" || err.code === "EINTR") { setTimeout(readInput, 5); return; }
      put(EOF, Buffer.alloc(0));
      return;
    }
    if (n === 0) { put(EOF, Buffer.alloc(0)); return; }
    put(INPUT, Buffer.from(chunk.subarray(0, n)));
    readInput();
  });
}
readInput();

// -- the network: UDP over IPv4.
const sockets = new Map(); // id -> dgram socket

function datagram(id, msg, rinfo) {
  // [id u32][port u16][address length u8][address][data]
  const addr = Buffer.from(rinfo.address);
  const head = Buffer.alloc(7);
  head.writeUInt32LE(id, 0);
  head.writeUInt16LE(rinfo.port, 4);
  head[6] = addr.length;
  put(DATAGRAM, Buffer.concat([head, addr, msg]));
}

function socketFor(id) {
  let sock = sockets.get(id);
  if (!sock) {
    sock = dgram.createSocket({ type: "udp4" });
    sock.bound = false;
    sock.on("message", (msg, rinfo) => datagram(id, msg, rinfo));
    sock.on("error", (err) => {
      // After a failed bind; a send error arrives in its callback instead.
      if (sock.pendingBind) {
        const req = sock.pendingBind;
        sock.pendingBind = null;
        reply(req, { error: err.code || String(err) });
      }
    });
    sockets.set(id, sock);
  }
  return sock;
}

function sockError(id, err) {
  // An error of a send the VM did not wait for: reported on the socket's next call.
  const payload = Buffer.alloc(4);
  payload.writeUInt32LE(id, 0);
  put(SOCKERR, Buffer.concat([payload, Buffer.from(err.code || "EIO")]));
}

parentPort.on("message", (m) => {
  switch (m.op) {
    case "bind": {
      const sock = socketFor(m.id);
      sock.pendingBind = m.req;
      sock.bound = true;
      try {
        // "0.0.0.0", every interface of the board, is its one interface
        const address = m.host === "0.0.0.0" ? INTERFACE : m.host;
        sock.bind({ port: m.port, address, exclusive: true }, () => {
          if (sock.pendingBind === m.req) {
            sock.pendingBind = null;
            reply(m.req, { port: sock.address().port });
          }
        });
      } catch (err) {
        sock.pendingBind = null;
        reply(m.req, { error: err.code || "EINVAL" });
      }
      break;
    }
    case "send": {
      const sock = socketFor(m.id);
      try {
        if (!sock.bound) {
          // an unbound socket gets a free port on the board's interface (the send waits for it)
          sock.bound = true;
          sock.bind({ port: 0, address: INTERFACE, exclusive: true });
        }
        sock.send(m.data, m.port, m.host, (err) => { if (err) sockError(m.id, err); });
      } catch (err) {
        sockError(m.id, err);
      }
      break;
    }
    case "close": {
      const sock = sockets.get(m.id);
      if (sock) {
        sockets.delete(m.id);
        try { sock.close(); } catch (err) { /* closed already */ }
      }
      break;
    }
    case "closeall": {
      // A reset: the new VM starts without sockets.
      for (const sock of sockets.values()) {
        try { sock.close(); } catch (err) { /* closed already */ }
      }
      sockets.clear();
      break;
    }
    case "resolve":
      dns.lookup(m.host, { family: 4 }, (err, address) => {
        reply(m.req, err ? { error: err.code || "ENOENT" } : { address });
      });
      break;
    default:
      break;
  }
});
