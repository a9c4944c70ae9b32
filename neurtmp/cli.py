"""The `neurtmp` command line."""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Sequence

from neurtmp._version import __version__
from neurtmp.errors import RemoteProtocolError
from neurtmp.protocol import events as ev


def _split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def _describe(event: ev.Event) -> str:
    if isinstance(event, (ev.AudioReceived, ev.VideoReceived)):
        kind = "audio" if isinstance(event, ev.AudioReceived) else "video"
        head = event.payload[:2].hex()
        return f"{kind} stream={event.message_stream_id} ts={event.timestamp} bytes={len(event.payload)} head={head}"
    return repr(event)


def _probe(args: argparse.Namespace) -> int:
    from neurtmp.probe import probe_connection

    host, port = _split_address(args.listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(1)
        bound = listener.getsockname()
        shown = f"[{bound[0]}]" if family == socket.AF_INET6 else bound[0]
        print(f"listening on rtmp://{shown}:{bound[1]}", flush=True)
        while True:
            conn, peer = listener.accept()
            print(f"client {peer[0]}:{peer[1]} connected", flush=True)
            with conn:
                try:
                    for event in probe_connection(conn):
                        print(_describe(event), flush=True)
                except RemoteProtocolError as exc:
                    print(f"client {peer[0]}:{peer[1]} broke the protocol: {exc.reason}", flush=True)
                except OSError as exc:
                    print(f"client {peer[0]}:{peer[1]}: {exc}", flush=True)
            print(f"client {peer[0]}:{peer[1]} disconnected", flush=True)
            if args.once:
                return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neurtmp", description="RTMP server framework and live-streaming toolkit.")
    parser.add_argument("--version", action="version", version=f"neurtmp {__version__}")
    sub = parser.add_subparsers(dest="command")
    probe = sub.add_parser(
        "probe",
        help="accept RTMP clients one at a time and print every message they send",
        description="Accept RTMP clients one at a time (publishers are accepted, players refused) "
        "and print each protocol event: handy to see what an encoder sends.",
    )
    probe.add_argument("--listen", default="127.0.0.1:1935", help="HOST:PORT to listen on (default %(default)s)")
    probe.add_argument("--once", action="store_true", help="exit after the first client disconnects")
    probe.set_defaults(func=_probe)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
