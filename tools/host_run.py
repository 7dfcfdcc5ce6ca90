# Runs the firmware's main job under CPython with the host board and real UDP sockets:
# registers with the server, serves its requests, logs each request and its answer, keeps
# retrying while no server answers, and de-registers on SIGINT or SIGTERM (exit status 0).
import argparse
import os
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "lib"), str(ROOT / "boards" / "host"), str(ROOT / "boards" / "common"), str(ROOT / "firmware")]

import cpython_shim  # noqa: E402

cpython_shim.install()

import board  # noqa: E402
import config as firmware_config  # noqa: E402
import app as firmware  # noqa: E402
from lwm2m.transport import UdpTransport  # noqa: E402


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Run the LwM2M client on this host.")
    parser.add_argument("--server", help="LwM2M server URI (default coap://127.0.0.1:5683 unless --bootstrap)")
    parser.add_argument("--bootstrap", help="bootstrap server URI: bootstrap from it first (the security flags are then its own)")
    parser.add_argument("--endpoint", default=board.endpoint_name(), help="endpoint name (default %(default)s)")
    parser.add_argument("--lifetime", type=int, default=300, help="registration lifetime in seconds (default %(default)s)")
    parser.add_argument("--lwm2m", choices=("1.0", "1.1"), default="1.1", help="LwM2M version (default %(default)s)")
    parser.add_argument("--psk-identity", help="DTLS PSK identity, for a coaps:// server")
    parser.add_argument("--psk-key", help="DTLS PSK key as hex digits, for a coaps:// server")
    parser.add_argument("--certificate", help="DTLS with certificates: this client's certificate file (DER or PEM)")
    parser.add_argument("--private-key", help="its private key file (DER or PEM)")
    parser.add_argument("--server-certificate", help="the server's certificate or its CA, a file (DER or PEM)")
    parser.add_argument("--certificate-usage", type=int, choices=(0, 1, 2, 3), default=3,
                        help="what --server-certificate is (LwM2M /0/x/15): 0 CA constraint, 1 service certificate"
                             " constraint, 2 trust anchor, 3 the server's own certificate (default %(default)s)")
    parser.add_argument("--ack-timeout", type=float, default=2, help="CoAP ACK_TIMEOUT in seconds: the first retransmission's wait (default %(default)s)")
    parser.add_argument("--state-dir", default=None, help="folder where the client keeps what servers write to /1 and /3, and firmware updates (default: nothing kept, no firmware update)")
    parser.add_argument("--confirm-s", type=int, default=300, help="after a firmware update, the seconds the new version has to register before it is rolled back (default %(default)s)")
    parser.add_argument("--download-psk-identity", default="", help="DTLS PSK identity for coaps:// firmware downloads from a server that is not an LwM2M server")
    parser.add_argument("--download-psk-key", default="", help="its key as hex digits")
    parser.add_argument("--send", action="append", default=[], metavar="PATH", help="report PATH by Send (LwM2M 1.1) every --send-period seconds (repeatable)")
    parser.add_argument("--send-period", type=int, default=60, help="seconds between Sends (default %(default)s)")
    parser.add_argument("--send-format", choices=("senml-cbor", "senml-json"), default="senml-cbor", help="the format of Sends (default %(default)s)")
    parser.add_argument("--queue-mode", action="store_true", help="queue mode (LwM2M 1.1 6.5): asleep after --queue-window seconds without traffic")
    parser.add_argument("--queue-window", type=int, default=93, help="seconds awake after the last datagram in queue mode (default %(default)s)")
    parser.add_argument("--objects", default=str(ROOT / "firmware" / "objects"), help="folder of compact object definitions")
    return parser.parse_args(argv)


def _stop(*_):
    # SIGTERM stops like Ctrl-C: the loop unwinds and de-registers on the way out.
    raise KeyboardInterrupt


def log(line):
    print("%s %s" % (time.strftime("%H:%M:%S"), line), flush=True)


def main(argv=None):
    args = parse_args(argv)
    server = args.server or (None if args.bootstrap else "coap://127.0.0.1:5683")
    settings = {"server": server, "bootstrap_server": args.bootstrap, "endpoint": args.endpoint,
                "lifetime": args.lifetime, "lwm2m": args.lwm2m, "state_dir": args.state_dir,
                "ack_timeout": args.ack_timeout, "firmware": {"confirm_s": args.confirm_s, "psk_identity": args.download_psk_identity,
                                                           "psk_key": args.download_psk_key},
                "queue_mode": args.queue_mode, "queue_window_s": args.queue_window,
                "send": {"paths": args.send, "period_s": args.send_period, "format": args.send_format}}
    prefix = "bootstrap_" if args.bootstrap else ""
    if args.psk_identity or args.psk_key:
        settings.update({prefix + "security": "psk", prefix + "psk_identity": args.psk_identity or "",
                         prefix + "psk_key": args.psk_key or ""})
    files = {"certificate": args.certificate, "private_key": args.private_key,
             "server_certificate": args.server_certificate}
    if any(files.values()):
        settings[prefix + "security"] = "certificate"
        settings.update({prefix + name: path or "" for name, path in files.items()})
        settings[prefix + "certificate_usage"] = args.certificate_usage
    try:
        config = firmware_config.read_files(firmware_config.parse(settings, "command line"), "command line")
    except firmware_config.ConfigError as exc:
        sys.exit("host_run: %s" % exc)
    signal.signal(signal.SIGTERM, _stop)
    try:
        firmware.supervise(board, config, args.objects, UdpTransport, log, lambda: not board.reboot_requested)
    except KeyboardInterrupt:
        pass  # serve() de-registered on the way out
    if board.reboot_requested:
        log("rebooting")
        os.execv(sys.executable, [sys.executable] + sys.argv)
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
