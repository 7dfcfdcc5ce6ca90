// The virtual board: the real MicroPython VM (npm @micropython/micropython-webassembly-pyscript)
// made to behave like a board on a serial line. stdin/stdout carry the REPL byte for byte, as
// a USB serial port does; tools/vboard.py puts them behind a pseudo-terminal for mpremote.
//
//   node tools/vboard.mjs [--flash DIR] [--id HEX] [--wifi SSID:PASSWORD ...] [--queue N]
//                         [--heapsize BYTES] [--host-network] [--fast-sleep] [--romfs-bytes N]
//
// What the board has, beside the VM's own modules:
//   a filesystem   the VM's in-memory one; it survives soft and hard resets (it is copied into
//                  the new VM), and with --flash DIR it is loaded from DIR at start and written
//                  back to DIR at each reset and at exit
//   socket         UDP over IPv4 (node:dgram on the host): the board's one interface is the
//                  host's loopback, 127.0.0.1, where it reaches programs on the host; with
//                  --host-network its sockets use every interface of the host (and names
//                  other than localhost are looked up), so it can reach other machines
//   select         poll() over those sockets, sleeping until a datagram, Ctrl-C or the timeout
//   machine        reset(), soft_reset(), unique_id(), WDT, RTC, Pin (an LED: logged), freq(),
//                  reset_cause(); deepsleep(ms): the board is off for ms, then boots with
//                  DEEPSLEEP_RESET, its RTC memory (RTC().memory(), 2048 bytes as on ESP32)
//                  kept; lightsleep(ms): it stops for ms and goes on. With --fast-sleep a
//                  sleep takes no time on the host: the board's clocks (ticks_ms, time)
//                  jump ahead instead, so that an hour of sleeping runs in seconds
//   network        WLAN(STA_IF) that joins the access points given with --wifi
//   vfs            the VM's own, with rom_ioctl() over a ROMFS partition of --romfs-bytes
//                  (none by default), which `mpremote romfs deploy` writes; a valid image there
//                  is mounted at /rom at each boot, /rom and /rom/lib in sys.path, as a port
//                  with ROMFS does. It is kept with the flash (DIR.romfs)
// These are Python modules (tools/vboard_port/) over a JavaScript module `_vboard`, installed
// at every start like a port's built-in modules; nothing of them is in the filesystem.
//
// How the VM and the event loop share the thread. A Python call into the VM does not return
// to JavaScript until Python is done, and main.py never is: it loops in select.poll(). This
// VM build has no Asyncify or JSPI, so a Python call cannot be suspended for the event loop to
// run. So the peripherals live in a worker thread (tools/vboard_io.mjs) with its own event
// loop: it reads stdin and the UDP sockets and passes what arrives through a shared ring
// buffer. The VM thread reads that ring whenever Python calls into the board (poll, recvfrom,
// time.ticks_ms, time.sleep_ms ...) and, when poll() has nothing to return, sleeps in
// Atomics.wait() until the worker writes, a timeout or a watchdog deadline: the board's CPU
// waits for an interrupt. Ctrl-C is seen the same way, when Python calls into the board: a
// loop that never does (`while True: pass`) cannot be interrupted, as this VM has no hook
// that runs during bytecode execution; and Ctrl-C during time.sleep() takes effect when the
// sleep ends (the VM's sleep is a busy loop that does not look for pending exceptions).
//
// What else differs from the bare VM, so that it behaves as a board: its output is "cooked"
// ("\n" sent as "\r\n") as a port's stdout is; its filesystem errors carry the usual errno
// numbers (ENOENT is 2, not Emscripten's 44), which mpremote needs to understand them;
// sys.stdin reads the serial line. The garbage collector of this VM runs only when a call
// from JavaScript returns, so while main.py runs nothing is collected and the heap grows
// with what the client allocates per datagram (nothing in an idle loop iteration).
//
// The REPL is the VM's own event-driven one (replInit / replProcessChar), including the raw
// REPL that mpremote uses. This harness adds what a port's main() does around it: boot.py,
// main.py (only when the REPL is in its friendly mode, as on the boards), soft reset (Ctrl-D
// at an empty prompt, in either mode), hard reset (machine.reset(), the watchdog) and the
// Ctrl-C that interrupts a running program. The VM answers mpremote's raw-paste request
// (Ctrl-E A Ctrl-A) with "R\x01" but cannot read the pasted bytes (its mp_hal_stdin_rx_chr()
// is `(0)`), which hangs it; so this harness answers "R\x00" (understood, not supported)
// itself and mpremote falls back to the plain raw REPL.
//
// stderr gets one line per board event ("vboard: ..."): resets, LED changes, the watchdog,
// deep sleeps with the time the radio was on since the last wake (the Wi-Fi station active,
// the board not sleeping), and at exit that time in all.
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
import { Worker } from "node:worker_threads";
import fs from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const PORT_DIR = join(HERE, "vboard_port"); // the Python side of the built-in modules
const PORT_MODULES = ["socket", "select", "machine", "network", "vfs"]; // import order matters

// Shared with tools/vboard_io.mjs.
const SEQ = 0, HEAD = 1, TAIL = 2;
const INPUT = 1, DATAGRAM = 2, REPLY = 3, EOF = 4, SOCKERR = 5;
const RING_SIZE = 1 << 20;

// Linux numbers, which are MicroPython's own (py/mperrno.h) and those of this VM's errno.
const ERRNO = { EPERM: 1, ENOENT: 2, EIO: 5, EBADF: 9, EAGAIN: 11, ENOMEM: 12, EACCES: 13,
  EEXIST: 17, EINVAL: 22, EMFILE: 24, EOPNOTSUPP: 95, EADDRINUSE: 98, EADDRNOTAVAIL: 99,
  ENETUNREACH: 101, ECONNRESET: 104, ENOTCONN: 107, ETIMEDOUT: 110, ECONNREFUSED: 111,
  EHOSTUNREACH: 113 };
const MAX_SOCKETS = 16; // lwIP's MEMP_NUM_NETCONN on an ESP32 is 10; a bit of room here
const FORCED_EXIT = 0x100; // pyexec's PYEXEC_FORCED_EXIT: Ctrl-D at an empty prompt
const STAT_NO_AP_FOUND = 201, STAT_WRONG_PASSWORD = 202; // network.WLAN.status() as on ESP32

// -- options

function parseArgs(argv) {
  const opt = { flash: null, id: "02005e100001", wifi: [], queue: 8, heapsize: 128 * 1024, hostNetwork: false,
                fastSleep: false, romfsBytes: 0 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i], v = argv[i + 1];
    if (a === "--flash" && v !== undefined) { opt.flash = v; i++; }
    else if (a === "--id" && /^([0-9a-fA-F]{2}){1,16}$/.test(v || "")) { opt.id = v.toLowerCase(); i++; }
    else if (a === "--wifi" && (v || "").includes(":")) { const k = v.indexOf(":"); opt.wifi.push([v.slice(0, k), v.slice(k + 1)]); i++; }
    else if (a === "--queue" && +v > 0) { opt.queue = +v; i++; }
    else if (a === "--heapsize" && +v >= 16384) { opt.heapsize = +v; i++; }
    else if (a === "--host-network") opt.hostNetwork = true;
    else if (a === "--fast-sleep") opt.fastSleep = true;
    else if (a === "--romfs-bytes" && /^\d+$/.test(v || "") && +v % 4096 === 0) { opt.romfsBytes = +v; i++; }
    else {
      process.stderr.write("usage: node tools/vboard.mjs [--flash DIR] [--id HEX] [--wifi SSID:PASSWORD ...] " +
                           "[--queue N] [--heapsize BYTES] [--host-network] [--fast-sleep] [--romfs-bytes N (4096s)]\n");
      process.exit(2);
    }
  }
  return opt;
}
const opt = parseArgs(process.argv.slice(2));

// -- output: the board's serial output, and its event log on stderr. process.stdout is left
// alone (it would make fd 1 non-blocking); writes are synchronous.

const sleeper = new Int32Array(new SharedArrayBuffer(4));

function writeAll(fd, buf) {
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(fd, buf, off, buf.length - off);
    } catch (err) {
      if (err.code === "EAGAIN") { Atomics.wait(sleeper, 0, 0, 2); continue; }
      if (fd === 1 && err.code === "EPIPE") shutdown(0); // nobody reads the board any more
      throw err;
    }
  }
}

function log(text) {
  try { writeAll(2, Buffer.from("vboard: " + text + "\n")); } catch (err) { /* stderr gone */ }
}

const out = { buf: Buffer.alloc(8192), len: 0, suppress: 0, tail: "", last: 0 };
const RAW_BANNER = "raw REPL; CTRL-B to exit\r\n";
const FRIENDLY_BANNER = "Type \"help()\" for more information.\r\n";
let rawMode = false; // the REPL's mode (pyexec_mode_kind), read from what the REPL prints

function emit(c) {
  // One byte from the VM (stdout and stderr are the same serial line on a board). A line
  // feed that comes without a carriage return gets one, as a port's "cooked" stdout does
  // (mp_hal_stdout_tx_strn_cooked); this VM prints "\n" alone, a staircase on a terminal.
  if (out.suppress) return;
  if (out.len + 2 > out.buf.length) flushOut();
  if (c === 10 && out.last !== 13) out.buf[out.len++] = 13;
  out.last = c;
  out.buf[out.len++] = c;
  out.tail = (out.tail + String.fromCharCode(c)).slice(-40);
  if (c === 10) {
    if (out.tail.endsWith(RAW_BANNER)) rawMode = true;
    else if (out.tail.endsWith(FRIENDLY_BANNER)) rawMode = false;
    flushOut();
  }
}

function emitText(text) {
  for (const c of Buffer.from(text, "latin1")) emit(c);
  flushOut();
}

function flushOut() {
  if (!out.len) return;
  const data = Buffer.from(out.buf.subarray(0, out.len));
  out.len = 0;
  writeAll(1, data);
}

// -- the worker and the ring

const ctlBuffer = new SharedArrayBuffer(16);
const ctl = new Int32Array(ctlBuffer);
const ringBuffer = new SharedArrayBuffer(RING_SIZE);
const ring = new Uint8Array(ringBuffer);
const worker = new Worker(join(HERE, "vboard_io.mjs"),
                          { workerData: { ctl: ctlBuffer, ring: ringBuffer, hostNetwork: opt.hostNetwork } });
worker.on("error", (err) => { log("peripheral thread failed: " + (err.stack || err)); shutdown(1); });

const input = new (class {
  // The bytes sent to the board and not read by the REPL yet.
  constructor() { this.chunks = []; this.pos = 0; }
  push(bytes) { if (bytes.length) this.chunks.push(bytes); }
  get length() { let n = -this.pos; for (const c of this.chunks) n += c.length; return n; }
  peek(i) {
    let at = this.pos + i;
    for (const c of this.chunks) { if (at < c.length) return c[at]; at -= c.length; }
    return -1;
  }
  shift() {
    const c = this.chunks[0][this.pos++];
    if (this.pos === this.chunks[0].length) { this.chunks.shift(); this.pos = 0; }
    return c;
  }
  clear() { this.chunks = []; this.pos = 0; }
})();

let eof = false;
const replies = new Map();
let reqCounter = 0;

function readRing(at, n) {
  const start = at % RING_SIZE;
  const first = Math.min(n, RING_SIZE - start);
  const buf = Buffer.alloc(n);
  buf.set(ring.subarray(start, start + first), 0);
  if (first < n) buf.set(ring.subarray(0, n - first), first);
  return buf;
}

function drain() {
  // Takes every record the worker wrote. Returns true if something arrived.
  let tail = Atomics.load(ctl, TAIL) >>> 0;
  const head = Atomics.load(ctl, HEAD) >>> 0;
  if (tail === head) return false;
  while (tail !== head) {
    const hdr = readRing(tail, 5);
    const len = hdr.readUInt32LE(1);
    const payload = readRing(tail + 5, len);
    tail = (tail + 5 + len) >>> 0;
    switch (hdr[0]) {
      case INPUT: received(payload); break;
      case DATAGRAM: arrived(payload); break;
      case REPLY: { const r = JSON.parse(payload.toString()); replies.set(r.req, r.value); break; }
      case SOCKERR: { const s = byKey.get(payload.readUInt32LE(0)); if (s) s.error = payload.subarray(4).toString(); break; }
      case EOF: eof = true; break;
      default: break;
    }
  }
  Atomics.store(ctl, TAIL, tail | 0);
  return true;
}

let interrupted = false; // a Ctrl-C was passed to the VM during the current call

function received(bytes) {
  // Bytes from the host. The interrupt character (Ctrl-C while Python runs; the REPL sets it,
  // and main.py runs with it set) raises KeyboardInterrupt instead of being read, as a UART's
  // receive interrupt does on a board.
  const intr = vm ? vm._module._mp_hal_get_interrupt_char() : -1;
  if (intr < 0 || !bytes.includes(intr)) { input.push(bytes); return; }
  let from = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === intr) {
      input.push(bytes.subarray(from, i));
      from = i + 1;
      vm._module._mp_sched_keyboard_interrupt();
      interrupted = true;
    }
  }
  input.push(bytes.subarray(from));
}

// -- sockets: small indexes for Python (bits of a poll mask), unique keys for the worker

const sockets = new Array(MAX_SOCKETS).fill(null);
const byKey = new Map();
let keyCounter = 0;
let dropped = 0;

function arrived(payload) {
  const s = byKey.get(payload.readUInt32LE(0));
  if (!s) return; // closed meanwhile, or a socket of the VM before a reset
  if (s.queue.length >= opt.queue) { dropped++; return; } // the stack's receive queue is full
  const alen = payload[6];
  s.queue.push({ host: payload.subarray(7, 7 + alen).toString(), port: payload.readUInt16LE(4),
                 data: payload.subarray(7 + alen) });
}

function request(msg, timeoutMs) {
  // Asks the worker and waits for its answer (bounded): the answer object, or null.
  const req = ++reqCounter;
  worker.postMessage(Object.assign({ req }, msg));
  waitUntil(() => replies.has(req), timeoutMs, false);
  const value = replies.get(req);
  replies.delete(req);
  return value === undefined ? null : value;
}

function errno(code) {
  return -(ERRNO[code] || ERRNO.EIO);
}

// -- waiting: the board's idle state

const now = () => Date.now();
let resetPending = null; // "hard", "soft" or "watchdog" once asked, until the VM has stopped
let wdt = null; // {timeout, deadline} once machine.WDT was made
let ticksSeen = 0, sameTick = 0;

function waitUntil(cond, timeoutMs, interruptible = true) {
  // Blocks the VM thread until cond() is true, timeoutMs passes (< 0: never), or (when
  // interruptible) Ctrl-C, a reset, the watchdog or the end of input. Returns cond().
  const deadline = timeoutMs < 0 ? Infinity : now() + timeoutMs;
  for (;;) {
    const seq = Atomics.load(ctl, SEQ);
    drain();
    checkWatchdog();
    if (cond()) return true;
    if (eof) shutdown(0);
    if (interruptible && (interrupted || resetPending)) return false;
    let left = deadline - now();
    if (wdt) left = Math.min(left, wdt.deadline - now());
    if (left <= 0 && deadline - now() <= 0) return cond();
    flushOut();
    Atomics.wait(ctl, SEQ, seq, Math.max(1, Math.min(left, 1000)));
  }
}

function checkWatchdog() {
  if (wdt && now() >= wdt.deadline && !resetPending) {
    log("watchdog reset: not fed for " + wdt.timeout + " ms");
    requestReset("watchdog");
  }
}

const RESET_CAUSE = { power: 1, hard: 2, watchdog: 3, deepsleep: 4, soft: 5 }; // machine.*_RESET
let resetCause = RESET_CAUSE.power;

function requestReset(kind) {
  // The VM is stopped by raising KeyboardInterrupt at every call into the board until
  // control is back here; what it prints meanwhile is not shown (a board is off by then).
  // kind: "hard", "soft", "watchdog" or "deepsleep".
  resetPending = kind;
  resetCause = RESET_CAUSE[kind];
  out.suppress++;
  if (busy) vm._module._mp_sched_keyboard_interrupt();
}

function restartKind() {
  // How the board boots after the reset asked: a watchdog reset is a hard one.
  return resetPending === "soft" || resetPending === "deepsleep" ? resetPending : "hard";
}

// -- sleeping, the RTC memory and the radio's time on

let rtcMemory = new Uint8Array(0); // kept through every reset (lost when the harness exits)
let skewMs = 0; // --fast-sleep: how far sleeps moved the board's clocks ahead of the host's
let deepSleepMs = 0; // the deep sleep asked, until the board boots from it
const radio = { on: false, since: 0, sinceWake: 0, total: 0, first: null, started: Date.now() };

function boardNow() {
  return now() + skewMs;
}

function switchRadio(on) {
  // The Wi-Fi station goes active or not (network.WLAN.active), or the board sleeps.
  const t = boardNow();
  if (radio.on && !on) { radio.sinceWake += t - radio.since; radio.total += t - radio.since; }
  if (on && !radio.on) { radio.since = t; if (radio.first === null) radio.first = t; }
  radio.on = on;
}

function sleepFor(ms) {
  // The board does nothing for ms (< 0: ever): with --fast-sleep its clocks jump ahead.
  if (opt.fastSleep && ms >= 0) skewMs += ms;
  else waitUntil(() => false, ms, false);
}

function hooked() {
  // Called from every call into the board while Python runs.
  if (Atomics.load(ctl, HEAD) !== Atomics.load(ctl, TAIL)) drain();
  checkWatchdog();
  if (eof) shutdown(0);
  if (resetPending) vm._module._mp_sched_keyboard_interrupt();
}

// Filesystem errors. This VM's C library numbers errors as Emscripten does (ENOENT is 44),
// while MicroPython's errno module and its messages use the usual numbers (ENOENT is 2): a
// missing file raised "OSError: 44", which neither `except OSError as e: e.errno ==
// errno.ENOENT` nor mpremote (it looks for "ENOENT" in the message) understands. A board's
// filesystem raises OSError(ENOENT), so the syscalls' error numbers are translated here.
// EAGAIN and EINTR are left alone: the C library itself compares them.
const EMSCRIPTEN_TO_ERRNO = new Map([
  [63, 1], [44, 2], [29, 5], [8, 9], [48, 12], [2, 13], [10, 16], [20, 17], [75, 18], [43, 19],
  [54, 20], [31, 21], [28, 22], [41, 23], [33, 24], [59, 25], [22, 27], [51, 28], [70, 29],
  [69, 30], [37, 36], [52, 38], [55, 39], [32, 40]]); // EPERM ENOENT EIO ... ELOOP

function translated(fn, sign) {
  // A syscall import answering -errno (sign -1) or a WASI one answering errno (sign 1).
  return (...args) => {
    const ret = fn(...args);
    if (typeof ret === "number" && ret * sign > 0) {
      const mapped = EMSCRIPTEN_TO_ERRNO.get(ret * sign);
      if (mapped !== undefined) return mapped * sign;
    }
    return ret;
  };
}

// The VM's clocks, wrapped before the VM is instantiated: ticks_ms() (and so sleep_ms(), a
// busy loop over it in this port) becomes a point where input is read, and a loop that asks
// the clock many times within one millisecond yields the CPU; time() follows the RTC.
let rtcOffsetMs = 0;
const instantiate = WebAssembly.instantiate;
WebAssembly.instantiate = function (binary, imports) {
  const env = imports && imports.env;
  for (const table of [env, imports && imports.wasi_snapshot_preview1]) {
    if (!table || table.vboardTranslated) continue;
    table.vboardTranslated = true;
    for (const name of Object.keys(table)) {
      if (typeof table[name] !== "function") continue;
      if (name.startsWith("__syscall_")) table[name] = translated(table[name], -1);
      else if (name.startsWith("fd_")) table[name] = translated(table[name], 1);
    }
  }
  if (env && typeof env.mp_js_ticks_ms === "function" && typeof env.mp_js_time_ms === "function") {
    const ticks = env.mp_js_ticks_ms, time = env.mp_js_time_ms;
    env.mp_js_ticks_ms = () => {
      const t = ticks() + skewMs;
      if (busy) {
        hooked();
        if (t === ticksSeen) {
          if (++sameTick > 100) {
            sameTick = 0;
            flushOut();
            Atomics.wait(ctl, SEQ, Atomics.load(ctl, SEQ), 1);
          }
        } else {
          ticksSeen = t;
          sameTick = 0;
        }
      }
      return t;
    };
    env.mp_js_time_ms = () => time() + rtcOffsetMs + skewMs;
  }
  return instantiate.call(this, binary, imports);
};

// -- the JavaScript module behind tools/vboard_port/*.py. Nothing here may throw: an exception
// thrown into the VM unwinds through it and leaves it broken. Errors are negative errnos.

function guard(fn, fallback) {
  return (...args) => {
    try {
      return fn(...args);
    } catch (err) {
      log("internal error: " + (err.stack || err));
      return fallback;
    }
  };
}

function bytesOf(data) {
  const v = vm.PyProxy.toJs(data);
  return v instanceof Uint8Array ? Buffer.from(v) : Buffer.from(String(v));
}

const board = {
  sock_open: guard(() => {
    const i = sockets.indexOf(null);
    if (i < 0) return -ERRNO.EMFILE;
    const s = { key: ++keyCounter, queue: [], error: null };
    sockets[i] = s;
    byKey.set(s.key, s);
    return i;
  }, -ERRNO.EIO),
  sock_bind: guard((i, host, port) => {
    const s = sockets[i];
    if (!s) return -ERRNO.EBADF;
    const r = request({ op: "bind", id: s.key, host, port }, 5000);
    if (!r) return -ERRNO.ETIMEDOUT;
    return r.error ? errno(r.error) : 0;
  }, -ERRNO.EIO),
  sock_send: guard((i, data, host, port) => {
    const s = sockets[i];
    if (!s) return -ERRNO.EBADF;
    hooked();
    if (resetPending) return 0; // the board is going down: nothing leaves any more
    if (s.error) { const e = s.error; s.error = null; return errno(e); }
    const buf = bytesOf(data);
    worker.postMessage({ op: "send", id: s.key, data: buf, host, port });
    return buf.length;
  }, -ERRNO.EIO),
  sock_recv: guard((i, n) => {
    // [data, host, port] of the oldest datagram (cut to n bytes), null when none waits, or a
    // negative errno for a send that failed since.
    const s = sockets[i];
    if (!s) return -ERRNO.EBADF;
    hooked();
    if (s.error) { const e = s.error; s.error = null; return errno(e); }
    const d = s.queue.shift();
    if (!d) return null;
    return [new Uint8Array(d.data.subarray(0, Math.max(0, n))), d.host, d.port];
  }, -ERRNO.EIO),
  sock_close: guard((i) => {
    const s = sockets[i];
    if (!s) return 0;
    sockets[i] = null;
    byKey.delete(s.key);
    worker.postMessage({ op: "close", id: s.key });
    return 0;
  }, 0),
  poll: guard((mask, timeoutMs) => {
    // The sockets of mask with a datagram (or an error) waiting, as a mask; 0 after timeoutMs
    // (< 0: no limit), on Ctrl-C or when the board resets.
    const ready = () => {
      let r = 0;
      for (let i = 0; i < MAX_SOCKETS; i++) {
        const s = sockets[i];
        if ((mask & (1 << i)) && s && (s.queue.length || s.error)) r |= 1 << i;
      }
      return r;
    };
    interrupted = false;
    hooked();
    if (timeoutMs === 0 || resetPending) return resetPending ? 0 : ready();
    waitUntil(() => ready() !== 0, timeoutMs);
    return resetPending ? 0 : ready();
  }, 0),
  resolve: guard((host) => {
    if (/^\d+\.\d+\.\d+\.\d+$/.test(host)) return host;
    if (!opt.hostNetwork && host !== "localhost") return -ERRNO.ENOENT; // no name service on loopback
    const r = request({ op: "resolve", host }, 5000);
    if (!r) return -ERRNO.ETIMEDOUT;
    return r.error ? -ERRNO.ENOENT : r.address;
  }, -ERRNO.EIO),
  unique_id: () => opt.id,
  join: guard((ssid, key) => {
    // The status of joining ssid with key: 0 when one of the --wifi access points matches.
    for (const [name, password] of opt.wifi) {
      if (name === ssid) return password === key ? 0 : STAT_WRONG_PASSWORD;
    }
    return STAT_NO_AP_FOUND;
  }, STAT_NO_AP_FOUND),
  set_time: guard((seconds) => { rtcOffsetMs = seconds * 1000 - Date.now(); return 0; }, 0),
  pin: guard((id, value) => { log("pin " + id + " = " + value); return 0; }, 0),
  wdt_start: guard((timeoutMs) => {
    wdt = { timeout: timeoutMs, deadline: now() + timeoutMs };
    log("watchdog armed: " + timeoutMs + " ms");
    return 0;
  }, 0),
  wdt_feed: guard(() => { if (wdt) wdt.deadline = now() + wdt.timeout; return 0; }, 0),
  reset: guard((soft) => { if (!resetPending) requestReset(soft ? "soft" : "hard"); return 0; }, 0),
  reset_cause: () => resetCause,
  rtc_memory: guard((data) => {
    if (data !== null && data !== undefined) rtcMemory = new Uint8Array(bytesOf(data));
    return new Uint8Array(rtcMemory);
  }, new Uint8Array(0)),
  radio: guard((on) => { switchRadio(!!on); return 0; }, 0),
  rom_segment: () => [rom.at, opt.romfsBytes],
  rom_written: guard(() => { keepRom(); return 0; }, 0),
  radio_time: guard(() => {
    // [ms the radio was on, ms since it was first switched on], by the board's clocks
    const t = boardNow();
    return [radio.total + (radio.on ? t - radio.since : 0), radio.first === null ? 0 : t - radio.first];
  }, [0, 0]),
  light_sleep: guard((ms) => {
    const was = radio.on;
    switchRadio(false);
    sleepFor(ms);
    switchRadio(was);
    return 0;
  }, 0),
  deep_sleep: guard((ms) => {
    if (resetPending) return 0;
    switchRadio(false);
    log("deep sleep for " + ms + " ms: radio on for " + radio.sinceWake + " ms since waking");
    radio.sinceWake = 0;
    deepSleepMs = ms;
    requestReset("deepsleep");
    return 0;
  }, 0),
  dropped: () => dropped,
  port_heap: () => portHeap,
};

function readStdin() {
  // A byte for sys.stdin (the VM's file 0): waits for one, and gives null (end of file) at
  // Ctrl-C or a reset. Without this the VM would read this process's stdin itself, from
  // under the worker. (input() does not come here: it reads mp_hal_stdin_rx_chr(), which is
  // `(0)` in this VM.)
  try {
    if (!input.length) {
      interrupted = false;
      waitUntil(() => input.length > 0, -1);
    }
    return input.length ? input.shift() : null;
  } catch (err) {
    log("internal error: " + (err.stack || err));
    return null;
  }
}

// -- the filesystem, carried from one VM to the next

function snapshot(FS) {
  const files = [];
  const walk = (dir) => {
    for (const name of FS.readdir(dir)) {
      if (name === "." || name === "..") continue;
      if (dir === "/" && (name === "dev" || name === "proc" || name === ".vboard")) continue;
      const path = (dir === "/" ? "" : dir) + "/" + name;
      const mode = FS.stat(path).mode;
      if (FS.isDir(mode)) { files.push([path, null]); walk(path); }
      else if (FS.isFile(mode)) files.push([path, FS.readFile(path)]);
    }
  };
  walk("/");
  return files;
}

function restore(FS, files) {
  for (const [path, data] of files) {
    if (data === null) { try { FS.mkdir(path); } catch (err) { /* exists */ } }
    else FS.writeFile(path, data);
  }
}

function loadFlash(dir) {
  const files = [];
  const walk = (host, board) => {
    for (const name of fs.readdirSync(host).sort()) {
      const h = join(host, name), b = board + "/" + name;
      if (fs.statSync(h).isDirectory()) { files.push([b, null]); walk(h, b); }
      else files.push([b, new Uint8Array(fs.readFileSync(h))]);
    }
  };
  if (fs.existsSync(dir)) walk(dir, "");
  return files;
}

function saveFlash(dir, files) {
  // DIR becomes a copy of the board's filesystem: what the board removed goes too.
  fs.mkdirSync(dir, { recursive: true });
  const keep = new Set(files.map(([p]) => join(dir, p)));
  const prune = (host) => {
    for (const name of fs.readdirSync(host)) {
      const h = join(host, name);
      if (fs.statSync(h).isDirectory()) { prune(h); if (!keep.has(h)) fs.rmSync(h, { recursive: true }); }
      else if (!keep.has(h)) fs.rmSync(h);
    }
  };
  prune(dir);
  for (const [p, data] of files) {
    const h = join(dir, p);
    if (data === null) fs.mkdirSync(h, { recursive: true });
    else fs.writeFileSync(h, data);
  }
}

// -- the ROMFS partition: in the VM's memory outside its heap while it runs, kept here across
// resets (and in DIR.romfs with --flash DIR)

const ROMFS_MAGIC = [0xd2, 0xcd, 0x31];
const romFile = opt.flash ? opt.flash.replace(/\/+$/, "") + ".romfs" : null;
const rom = { at: 0, image: Buffer.alloc(opt.romfsBytes, 0xff) };
if (romFile && opt.romfsBytes && fs.existsSync(romFile)) {
  const saved = fs.readFileSync(romFile);
  saved.copy(rom.image, 0, 0, Math.min(saved.length, rom.image.length));
}

function placeRom() {
  // Copies the partition into the new VM's memory and mounts a valid image at /rom.
  if (!opt.romfsBytes) return;
  rom.at = vm._module._malloc(opt.romfsBytes);
  vm._module.HEAPU8.set(rom.image, rom.at);
  if (!ROMFS_MAGIC.every((b, i) => rom.image[i] === b)) return;
  run("import sys, uctypes, vfs\n" +
      "vfs.mount(vfs.VfsRom(uctypes.bytearray_at(" + rom.at + ", " + opt.romfsBytes + ")), '/rom')\n" +
      "sys.path[sys.path.index('/lib'):sys.path.index('/lib')] = ['/rom', '/rom/lib']\n" +
      "del sys, uctypes, vfs\n");
}

function keepRom() {
  // The partition as the running VM has it, kept for the next boot.
  if (!opt.romfsBytes || !vm) return;
  rom.image = Buffer.from(vm._module.HEAPU8.subarray(rom.at, rom.at + opt.romfsBytes));
  if (romFile) fs.writeFileSync(romFile, rom.image);
}

// -- the VM's life

let vm = null;
let busy = false; // Python may be running (inside runPython or replProcessChar)
let files = opt.flash ? loadFlash(opt.flash) : [];

function run(code) {
  // Python from this harness; an exception that escapes is printed as the REPL would.
  busy = true;
  try {
    vm.runPython(code);
  } catch (err) {
    if (err.name !== "PythonError") throw err;
    if (err.type !== "SystemExit") emitText(String(err.message).replace(/\r?\n/g, "\r\n"));
  } finally {
    busy = false;
    flushOut();
  }
}

function runFile(name) {
  // boot.py or main.py, as pyexec_file_if_exists() runs them: in __main__, with Ctrl-C
  // raising KeyboardInterrupt, the traceback of an exception printed.
  if (!vm.FS.analyzePath("/" + name).exists || resetPending) return;
  run("def _vboard_run(name):\n" +
      " import micropython, sys\n" +
      " micropython.kbd_intr(3)\n" +
      " try:\n" +
      "  with open(name) as f:\n" +
      "   code = compile(f.read(), name, 'exec')\n" +
      "  exec(code, globals())\n" +
      " except SystemExit:\n" +
      "  pass\n" +
      " except BaseException as e:\n" +
      "  sys.print_exception(e)\n" +
      " finally:\n" +
      "  micropython.kbd_intr(-1)\n" +
      "_vboard_run(" + JSON.stringify(name) + ")\n" +
      "del _vboard_run\n");
}

function installPort() {
  // The built-in modules: written to a hidden folder, imported, aliased in sys.modules under
  // their names (select shadows the VM's own), and removed from the filesystem again.
  const FS = vm.FS;
  FS.mkdir("/.vboard");
  for (const name of PORT_MODULES) FS.writeFile("/.vboard/_vb_" + name + ".py", fs.readFileSync(join(PORT_DIR, name + ".py")));
  run("import sys\n" +
      "sys.path.insert(0, '/.vboard')\n" +
      "try:\n" +
      PORT_MODULES.map((n) => " import _vb_" + n + "\n sys.modules['" + n + "'] = _vb_" + n + "\n").join("") +
      "finally:\n" +
      " sys.path.pop(0)\n" +
      PORT_MODULES.map((n) => "del _vb_" + n + "\n").join("") +
      "del sys\n");
  for (const name of PORT_MODULES) FS.unlink("/.vboard/_vb_" + name + ".py");
  FS.rmdir("/.vboard");
}

let portHeap = 0; // bytes of heap the modules of tools/vboard_port take (C on a real board)

function heapInUse() {
  // gc.mem_alloc() after a collection, which this VM makes only when a call from JavaScript
  // returns: so two calls.
  run("import gc\ngc.collect()\n");
  run("_vboard_heap = gc.mem_alloc()\n");
  const value = vm.globals.get("_vboard_heap");
  run("del _vboard_heap, gc\n");
  return value;
}

async function boot(kind) {
  // Starts a new VM on the same filesystem: kind is "power" (first start), "hard" (reset,
  // watchdog) or "soft". After a soft reset the REPL stays in its mode; after any other the
  // board starts at the friendly REPL, running main.py.
  for (;;) {
    if (vm) {
      files = snapshot(vm.FS);
      if (opt.flash) saveFlash(opt.flash, files);
      keepRom();
    }
    worker.postMessage({ op: "closeall" });
    sockets.fill(null);
    byKey.clear();
    resetPending = null;
    switchRadio(false); // the radio is off until the new VM's network.WLAN goes active
    out.suppress = 0;
    interrupted = false;
    if (kind === "soft") {
      emitText("MPY: soft reboot\r\n");
    } else if (kind === "deepsleep") {
      wdt = null; // deep sleep is a reset: the watchdog stops
      input.clear();
      rawMode = false;
      sleepFor(deepSleepMs);
      log("woke from deep sleep");
    } else {
      // A watchdog is hardware: a soft reset leaves it running, any other reset stops it.
      wdt = null;
      input.clear(); // what was on its way to a board that resets is lost
      rawMode = false;
      log(kind === "power" ? "power on" : kind + " reset");
    }
    vm = null;
    vm = await loadMicroPython({ heapsize: opt.heapsize, stdin: readStdin, stdout: (b) => { for (const c of b) emit(c); },
                                 stderr: (b) => { for (const c of b) emit(c); }, linebuffer: false });
    restore(vm.FS, files);
    vm.registerJsModule("_vboard", board);
    const before = heapInUse();
    installPort();
    portHeap = heapInUse() - before;
    placeRom();
    const raw = rawMode;
    runFile("boot.py");
    if (!raw) runFile("main.py");
    if (resetPending) { kind = restartKind(); continue; }
    if (raw) {
      out.suppress++;
      vm.replInit();
      vm.replProcessChar(1);
      out.suppress--;
      emitText(RAW_BANNER + ">");
    } else {
      vm.replInit();
      flushOut();
    }
    return;
  }
}

// -- the REPL: bytes from the host, one at a time, while the board is idle

const RAW_PASTE = [5, 0x41, 1]; // Ctrl-E "A" Ctrl-A: mpremote asks for raw-paste mode

function feed() {
  // Hands waiting bytes to the REPL. Returns "soft" or "hard" when the board must restart,
  // null when everything waiting was read (or the rest of a raw-paste request is awaited).
  while (input.length) {
    if (rawMode && input.peek(0) === RAW_PASTE[0]) {
      let n = 1;
      while (n < 3 && n < input.length && input.peek(n) === RAW_PASTE[n]) n++;
      if (n === 3) {
        input.shift(); input.shift(); input.shift();
        emitText("R\x00");
        continue;
      }
      if (n === input.length) return null; // wait for the rest
    }
    const c = input.shift();
    interrupted = false;
    busy = true;
    let ret;
    try {
      ret = vm.replProcessChar(c);
    } finally {
      busy = false;
    }
    flushOut();
    if (resetPending) return restartKind();
    if (ret & FORCED_EXIT) { resetCause = RESET_CAUSE.soft; return "soft"; }
  }
  return null;
}

let stopping = false;
function shutdown(code) {
  if (stopping) process.exit(code);
  stopping = true;
  try {
    flushOut();
  } catch (err) { /* stdout gone */ }
  switchRadio(false);
  log("off after " + (boardNow() - radio.started) + " ms: radio on for " + radio.total + " ms");
  if (opt.flash && vm) {
    try { saveFlash(opt.flash, snapshot(vm.FS)); } catch (err) { log("cannot save the flash: " + err); }
  }
  process.exit(code);
}

async function main() {
  await boot("power");
  for (;;) {
    drain();
    checkWatchdog();
    if (resetPending) { await boot(restartKind()); continue; }
    const restart = feed();
    if (restart) { await boot(restart); continue; }
    if (eof) shutdown(0);
    // Idle at the REPL: sleep until the worker writes or the watchdog is due.
    const seq = Atomics.load(ctl, SEQ);
    if (Atomics.load(ctl, HEAD) !== Atomics.load(ctl, TAIL)) continue;
    const timeout = wdt ? Math.max(1, wdt.deadline - now()) : 60000;
    const w = Atomics.waitAsync(ctl, SEQ, seq, timeout);
    if (w.async) await w.value;
  }
}

main().catch((err) => {
  log("failed: " + (err.stack || err));
  shutdown(1);
});
