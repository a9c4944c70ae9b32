"""The `neurtmp` command line."""

from __future__ import annotations

import argparse
import signal
import socket
import sys
from collections.abc import Sequence
from typing import Any

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


def _configure_logging(level: str) -> None:
    import logging

    logging.basicConfig(level=getattr(logging, level.upper()), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _run_until_signalled(server: Any, relays: Sequence[Any], grace: float) -> int:
    """Start the relays, announce the address, serve until SIGINT/SIGTERM, then stop cleanly."""
    import gevent

    for relay in relays:
        relay.start()
    print(f"listening on rtmp://{server.get_listen_address()}", flush=True)

    def stop() -> None:
        for relay in relays:
            relay.stop()
        server.shutdown(grace=grace)

    for signum in (signal.SIGINT, signal.SIGTERM):
        gevent.signal_handler(signum, lambda: gevent.spawn(stop))
    server.serve_forever()
    return 0


def _serve(args: argparse.Namespace) -> int:
    import neurtmp
    from neurtmp.live import LiveApp, LiveOptions
    from neurtmp.relay import PullRelay, PushRelay, parse_local_name

    _configure_logging(args.log_level)
    try:
        server = neurtmp.Factory().create_server(
            chunk_size=args.chunk_size,
            max_connections=args.max_connections,
            handshake_timeout=args.handshake_timeout,
            connect_timeout=args.connect_timeout,
            idle_timeout=args.idle_timeout,
            send_timeout=args.send_timeout,
            flush_interval=0.0 if args.low_latency else args.flush_interval / 1000,
            log_io_dir=args.log_io,
        )
        live = LiveApp(LiveOptions(apps=tuple(args.app), takeover=args.takeover, gop_packets=args.gop_packets,
                                   gop_bytes=args.gop_bytes))
        live.install(server)
        relays: list[PullRelay | PushRelay] = []
        for spec in args.pull:
            remote, sep, local = spec.rpartition("=")
            if not sep or not remote:
                raise neurtmp.ConfigError(f"--pull wants URL=LOCAL, not {spec!r}")
            app, name = parse_local_name(local)
            relays.append(PullRelay(live.registry, remote, app, name))
        for spec in args.push:
            local, sep, remote = spec.partition("=")
            if not sep or not remote:
                raise neurtmp.ConfigError(f"--push wants LOCAL=URL, not {spec!r}")
            app, name = parse_local_name(local)
            relays.append(PushRelay(live.registry, app, name, remote))
        server.start(args.listen)
    except (neurtmp.ConfigError, neurtmp.ListenError) as exc:
        print(f"neurtmp serve: {exc}", file=sys.stderr)
        return 2
    return _run_until_signalled(server, relays, args.shutdown_grace)


def _proxy(args: argparse.Namespace) -> int:
    import neurtmp
    from neurtmp.live import LiveApp
    from neurtmp.relay import Forwarder

    _configure_logging(args.log_level)
    try:
        neurtmp.parse_rtmp_url(args.to)
        server = neurtmp.Factory().create_server(log_io_dir=args.log_io)
        live = LiveApp()
        live.install(server)
        forwarder = Forwarder(live.registry, args.to)
        server.start(args.listen)
    except (neurtmp.ConfigError, neurtmp.ListenError) as exc:
        print(f"neurtmp proxy: {exc}", file=sys.stderr)
        return 2
    return _run_until_signalled(server, [forwarder], grace=2.0)


def _add_proxy(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    proxy = sub.add_parser(
        "proxy",
        help="accept publishers locally and forward each stream to a remote RTMP server",
        description="A local RTMP endpoint that forwards every published stream to a remote server, "
        "reconnecting with backoff when the remote drops (local players may watch too).",
    )
    proxy.add_argument("--listen", default="127.0.0.1:1935", help="HOST:PORT to listen on (default %(default)s)")
    proxy.add_argument("--to", required=True, metavar="URL",
                       help="rtmp://HOST[:PORT]/APP (the local stream name is appended) or rtmp://HOST/APP/NAME")
    proxy.add_argument("--log-io", metavar="DIR", help="write each connection's raw bytes to files in DIR")
    proxy.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    proxy.set_defaults(func=_proxy)


def _add_serve(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    serve = sub.add_parser(
        "serve",
        help="run a live RTMP server: encoders publish to rtmp://HOST/APP/NAME, players play it",
        description="Run a live RTMP server. Encoders (ffmpeg, OBS, GStreamer) publish to "
        "rtmp://HOST[:PORT]/APP/NAME and players (ffplay, VLC, ffmpeg) play the same URL.",
    )
    serve.add_argument("--listen", default="0.0.0.0:1935",
                       help="HOST:PORT to listen on; [::]:1935 for IPv6, port 0 for any (default %(default)s)")
    serve.add_argument("--app", action="append", default=[], metavar="NAME",
                       help="serve only this application name (repeat for several; default: any)")
    serve.add_argument("--takeover", action="store_true",
                       help="a new publisher of a live name replaces the old one (default: refused with BadName)")
    serve.add_argument("--chunk-size", type=int, default=4096, help="outgoing chunk size (default %(default)s)")
    serve.add_argument("--max-connections", type=int, default=10_000,
                       help="connections served at once (default %(default)s)")
    serve.add_argument("--handshake-timeout", type=float, default=10.0, metavar="SECONDS",
                       help="time a client has to complete the handshake (default %(default)s)")
    serve.add_argument("--connect-timeout", type=float, default=10.0, metavar="SECONDS",
                       help="time a client has to send connect (default %(default)s)")
    serve.add_argument("--idle-timeout", type=float, default=60.0, metavar="SECONDS",
                       help="drop a client silent for this long, pings unanswered (default %(default)s)")
    serve.add_argument("--send-timeout", type=float, default=30.0, metavar="SECONDS",
                       help="drop a player that takes nothing for this long (default %(default)s)")
    serve.add_argument("--flush-interval", type=float, default=50.0, metavar="MS",
                       help="merge each player's messages into one send per this many ms (default %(default)s)")
    serve.add_argument("--low-latency", action="store_true", help="send every message at once (no merging)")
    serve.add_argument("--gop-packets", type=int, default=1024,
                       help="GOP cache bound in packets per stream; 0 disables it (default %(default)s)")
    serve.add_argument("--gop-bytes", type=int, default=8 * 1024 * 1024,
                       help="GOP cache bound in bytes per stream (default %(default)s)")
    serve.add_argument("--pull", action="append", default=[], metavar="URL=LOCAL",
                       help="play rtmp://HOST[:PORT]/APP/NAME and serve it here as LOCAL (APP/NAME)")
    serve.add_argument("--push", action="append", default=[], metavar="LOCAL=URL",
                       help="republish local APP/NAME to rtmp://HOST[:PORT]/APP/NAME while it is live")
    serve.add_argument("--log-io", metavar="DIR",
                       help="write each connection's raw received and sent bytes to files in DIR")
    serve.add_argument("--shutdown-grace", type=float, default=5.0, metavar="SECONDS",
                       help="on SIGINT/SIGTERM, time given to connections to finish (default %(default)s)")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.set_defaults(func=_serve)


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
    _add_serve(sub)
    _add_proxy(sub)
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
