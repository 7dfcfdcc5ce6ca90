# make vboard: the virtual board (tools/vboard.mjs, the MicroPython VM as a board) behind a
# pseudo-terminal, so that mpremote, make deploy and serial terminals use it as they use a
# board on USB.
#
#   python3 tools/vboard.py [--link PATH] [--log FILE] [--flash DIR] [--id HEX]
#                           [--wifi SSID:PASSWORD ...] [--queue N] [--host-network] [--fast-sleep]
#                           [--romfs-bytes N]
#
# Prints "vboard: serial port /dev/pts/N" and the VM's process id first (and makes PATH a
# symlink to the terminal with --link), then the board's events ("vboard: ..." on stderr). The board runs until this process gets SIGINT/SIGTERM or its
# stdin closes, when the VM is stopped (its filesystem saved to --flash DIR if given).
#
# Only the Python standard library is used (os.openpty): no socat, no new system package.
# This process keeps its own handle on the terminal's device side, so the board stays
# reachable between two mpremote sessions (without it, the controlling side reads EIO once
# the last program closes the device). What the board prints while nobody reads is kept by
# the terminal up to its buffer size (some kB), then dropped, as a UART drops what no one
# reads; --log FILE keeps a copy of everything it printed.
import argparse
import os
import selectors
import signal
import subprocess
import sys
import termios
import tty
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VBOARD = ROOT / "tools" / "vboard.mjs"


def open_pty():
    # (controller fd, device fd, device path); the device in raw mode, without echo.
    controller, device = os.openpty()
    tty.setraw(device, termios.TCSANOW)
    attrs = termios.tcgetattr(device)
    attrs[3] &= ~(termios.ECHO | termios.ICANON | termios.ISIG | termios.IEXTEN)
    termios.tcsetattr(device, termios.TCSANOW, attrs)
    os.set_blocking(controller, False)
    return controller, device, os.ttyname(device)


def _read(stream):
    # What a pipe has now: bytes, b"" at its end, None when nothing waits.
    try:
        return os.read(stream.fileno(), 65536)
    except (BlockingIOError, InterruptedError):
        return None


def main(argv=None):
    parser = argparse.ArgumentParser(description="The MicroPython VM as a board behind a pseudo-terminal.")
    parser.add_argument("--link", help="also make this path a symlink to the terminal")
    parser.add_argument("--log", help="append everything the board prints to this file")
    parser.add_argument("--flash", help="keep the board's filesystem in this folder")
    parser.add_argument("--id", help="machine.unique_id() in hex (the endpoint name comes from it)")
    parser.add_argument("--wifi", action="append", default=[], metavar="SSID:PASSWORD",
                        help="an access point the board's network.WLAN can join (repeatable)")
    parser.add_argument("--queue", type=int, help="datagrams a socket holds before it drops (default 8)")
    parser.add_argument("--host-network", action="store_true",
                        help="let the board's sockets use every interface of the host (default: loopback only)")
    parser.add_argument("--fast-sleep", action="store_true",
                        help="light and deep sleeps take no time: the board's clocks jump ahead instead")
    parser.add_argument("--romfs-bytes", type=int, default=0,
                        help="give the board a ROMFS partition of this size (a multiple of 4096; default none)")
    args = parser.parse_args(argv)

    node_args = []
    if args.flash:
        node_args += ["--flash", args.flash]
    if args.id:
        node_args += ["--id", args.id]
    for ap in args.wifi:
        node_args += ["--wifi", ap]
    if args.queue:
        node_args += ["--queue", str(args.queue)]
    if args.host_network:
        node_args.append("--host-network")
    if args.fast_sleep:
        node_args.append("--fast-sleep")
    if args.romfs_bytes:
        node_args += ["--romfs-bytes", str(args.romfs_bytes)]

    controller, device, path = open_pty()
    link = Path(args.link) if args.link else None
    if link:
        if link.is_symlink() or link.exists():
            link.unlink()
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(path)
    log = None
    if args.log:
        Path(args.log).parent.mkdir(parents=True, exist_ok=True)
        log = open(args.log, "ab", buffering=0)

    # The VM in its own process group, so that a Ctrl-C in this terminal reaches only this
    # process, which then stops the board in order.
    proc = subprocess.Popen(["node", str(VBOARD)] + node_args, cwd=str(ROOT), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    os.set_blocking(proc.stdout.fileno(), False)
    os.set_blocking(proc.stderr.fileno(), False)
    sys.stdout.write("vboard: serial port %s%s\nvboard: the VM runs as process %d\n"
                     % (path, " (%s)" % link if link else "", proc.pid))
    sys.stdout.flush()

    stopping = []

    def stop(_signum, _frame):
        stopping.append(True)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    sel = selectors.DefaultSelector()
    sel.register(controller, selectors.EVENT_READ, "pty")
    sel.register(proc.stdout, selectors.EVENT_READ, "out")
    sel.register(proc.stderr, selectors.EVENT_READ, "err")
    to_board = proc.stdin
    try:
        while not stopping and proc.poll() is None:
            for key, _mask in sel.select(0.5):
                if key.data == "pty":
                    try:
                        data = os.read(controller, 4096)
                    except (BlockingIOError, InterruptedError):
                        continue
                    if data:
                        to_board.write(data)
                        to_board.flush()
                elif key.data == "out":
                    data = _read(proc.stdout)
                    if data is None:
                        continue
                    if not data:
                        sel.unregister(proc.stdout)
                        continue
                    if log:
                        log.write(data)
                    try:
                        os.write(controller, data)
                    except BlockingIOError:
                        pass  # the terminal's buffer is full: nobody reads the board
                else:
                    data = _read(proc.stderr)
                    if data is None:
                        continue
                    if not data:
                        sel.unregister(proc.stderr)
                        continue
                    sys.stderr.buffer.write(data)
                    sys.stderr.flush()
    except BrokenPipeError:
        pass  # the board stopped
    finally:
        try:
            to_board.close()  # end of input: the board saves its flash and stops
        except OSError:
            pass
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            # A program busy without calling into the board does not see the end of input.
            proc.kill()
            proc.wait(5)
        os.set_blocking(proc.stderr.fileno(), True)
        rest = proc.stderr.read()
        if rest:
            sys.stderr.buffer.write(rest)
            sys.stderr.flush()
        for stream in (proc.stdout, proc.stderr):
            stream.close()
        sel.close()
        os.close(controller)
        os.close(device)
        if link and link.is_symlink():
            link.unlink()
        if log:
            log.close()
    return 0 if stopping else (proc.returncode or 0)


if __name__ == "__main__":
    sys.exit(main())
