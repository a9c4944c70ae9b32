"""The `neurtmp` command line."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import logging
import os
import re
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from neurtmp._version import __version__
from neurtmp.errors import ConfigError, RemoteProtocolError
from neurtmp.names import host_port
from neurtmp.protocol import events as ev
from neurtmp.workers import START_TIMEOUT, socket_address

#: The form --pull and --push want for remote URLs.
_RELAY_URL_FORM = "rtmp://HOST[:PORT]/APP/NAME"

#: Seconds `neurtmp proxy` gives connections to finish on SIGINT/SIGTERM.
_PROXY_SHUTDOWN_GRACE = 2.0

#: ServerOptions field -> the `serve` option that sets it (for ServerOptions' error messages).
_SERVE_OPTION_OF_FIELD = {
    "chunk_size": "--chunk-size",
    "max_connections": "--max-connections",
    "handshake_timeout": "--handshake-timeout",
    "connect_timeout": "--connect-timeout",
    "idle_timeout": "--idle-timeout",
    "publisher_idle_timeout": "--publisher-idle-timeout",
    "send_timeout": "--send-timeout",
    "log_io_dir": "--log-io",
    "shutdown_grace": "--shutdown-grace",
    "reconnect_url": "--reconnect-url",
    "tls_cert": "--tls-cert",
    "tls_key": "--tls-key",
}


def _default(options: type[Any], name: str) -> Any:
    """The default of field `name` of the dataclass `options` (ServerOptions, LiveOptions):
    the one source of the command line's defaults.

    Raises:
        LookupError: no such field, or it has no default.
    """
    for field in dataclasses.fields(options):
        if field.name == name:
            if field.default is not dataclasses.MISSING:
                return field.default
            if field.default_factory is not dataclasses.MISSING:
                return field.default_factory()
            raise LookupError(f"{options.__name__}.{name} has no default")
    raise LookupError(f"{options.__name__} has no field {name!r}")


def _with_option_names(error: ConfigError, option_of_field: dict[str, str]) -> str:
    """`error`'s message with a leading ServerOptions field name put as its option ("--log-io ...")."""
    message = str(error)
    for field, option in option_of_field.items():
        if message.startswith(field + " "):
            return option + message[len(field):]
    return message


def _looks_like_url(text: str) -> bool:
    """Whether `text` looks like a URL (or a mistyped one) rather than a local APP/NAME."""
    return "://" in text or "//" in text or re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", text) is not None


def _remote_url(option: str, url: str, need_stream: bool = True) -> str:
    """Check a remote URL given to `option`; returns it.

    Raises:
        ConfigError: not rtmp://HOST[:PORT]/APP/NAME (or .../APP when not `need_stream`).
    """
    from neurtmp.client import URL_FORM, parse_rtmp_url

    try:
        parsed = parse_rtmp_url(url)
    except ConfigError as exc:
        message = str(exc).replace(URL_FORM, _RELAY_URL_FORM) if need_stream else str(exc)
        raise ConfigError(f"{option}: {message}") from None
    if need_stream and not parsed.stream:
        raise ConfigError(f"{option}: {url!r} names no stream (expected {_RELAY_URL_FORM})")
    return url


def _local_name(option: str, local: str) -> tuple[str, str]:
    """Check the local APP/NAME given to `option`; returns (app, name)."""
    from neurtmp.relay import parse_local_name

    try:
        return parse_local_name(local)
    except ConfigError as exc:
        raise ConfigError(f"{option}: {exc} (expected APP/NAME or NAME)") from None


def parse_pull(spec: str) -> tuple[str, str, str]:
    """``--pull URL=LOCAL`` -> (url, local app, local name).

    Raises:
        ConfigError: not URL=LOCAL, the parts reversed, or a bad URL.
    """
    head, sep, _ = spec.partition("=")
    if sep and not _looks_like_url(head) and _looks_like_url(spec[len(head) + 1:]):
        raise ConfigError(f"--pull wants URL=LOCAL (e.g. rtmp://host/app/cam=live/cam), not {spec!r}: "
                          "the URL comes first")
    remote, sep, local = spec.rpartition("=")
    if not sep or not remote or not local:
        raise ConfigError(f"--pull wants URL=LOCAL (e.g. rtmp://host/app/cam=live/cam), not {spec!r}")
    if _looks_like_url(local):
        raise ConfigError(f"--pull wants URL=LOCAL, not {spec!r}: LOCAL {local!r} looks like a URL")
    url = _remote_url("--pull", remote)
    return (url, *_local_name("--pull", local))


def parse_push(spec: str) -> tuple[str, str, str]:
    """``--push LOCAL=URL`` -> (local app, local name, url).

    Raises:
        ConfigError: not LOCAL=URL, the parts reversed, or a bad URL.
    """
    local, sep, remote = spec.partition("=")
    if not sep or not local or not remote:
        raise ConfigError(f"--push wants LOCAL=URL (e.g. live/cam=rtmp://host/app/cam), not {spec!r}")
    if _looks_like_url(local):
        raise ConfigError(f"--push wants LOCAL=URL (e.g. live/cam=rtmp://host/app/cam), not {spec!r}: "
                          "the URL comes after '='")
    app, name = _local_name("--push", local)
    return app, name, _remote_url("--push", remote)


def _describe(event: ev.Event) -> str:
    if isinstance(event, (ev.AudioReceived, ev.VideoReceived)):
        kind = "audio" if isinstance(event, ev.AudioReceived) else "video"
        head = event.payload[:2].hex()
        return f"{kind} stream={event.message_stream_id} ts={event.timestamp} bytes={len(event.payload)} head={head}"
    return repr(event)


def _bind(listen: str, reuse_port: bool = False) -> socket.socket:
    """A blocking socket bound to `listen` ("HOST:PORT"), not yet listening.

    Raises:
        ConfigError: a bad address, or one that cannot be bound (one clear line).
    """
    from neurtmp.server import parse_address

    host, port = parse_address(listen)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {listen}: {exc.strerror or exc}") from None
    return sock


def _probe(args: argparse.Namespace) -> int:
    from neurtmp.probe import probe_connection

    try:
        listener = _bind(args.listen)
    except ConfigError as exc:
        print(f"neurtmp probe: {exc}", file=sys.stderr)
        return 2
    with listener:
        listener.listen(1)
        print(f"listening on rtmp://{socket_address(listener)}", flush=True)
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


def _configure_logging(level: str, prefix: str = "") -> None:

    logging.basicConfig(level=getattr(logging, level.upper()), stream=sys.stderr,
                        format=f"%(asctime)s %(levelname)s {prefix}%(name)s: %(message)s")


def _run_until_signalled(server: Any, relays: Sequence[Any], grace: float,
                         reload: Callable[[], None] | None = None, draining: Sequence[Any] = ()) -> int:
    """Start the relays, announce the address, serve until SIGINT/SIGTERM, then stop
    cleanly (first announcing the publishes the `draining` edges forward as draining:
    `Edge.drain`); on SIGHUP call `reload`."""
    import gevent

    for relay in relays:
        relay.start()
    for tls in (False, True):
        if server.get_listen_address(tls):
            print(f"listening on {'rtmps' if tls else 'rtmp'}://{server.get_listen_address(tls)}", flush=True)

    def stop() -> None:
        # Forwarded publishes are announced as draining (their publishers' next publish
        # succeeds them upstream); then the server stops accepting and asks the clients that
        # can to reconnect, while the relays (an edge's pulls) still feed its players.
        for edge in draining:
            edge.drain()
        server.shutdown(grace=grace)
        for relay in relays:
            relay.stop()

    for signum in (signal.SIGINT, signal.SIGTERM):
        gevent.signal_handler(signum, lambda: gevent.spawn(stop))
    if reload is not None:
        gevent.signal_handler(signal.SIGHUP, lambda: gevent.spawn(reload))
    server.serve_forever()
    return 0


def server_options(args: argparse.Namespace) -> dict[str, Any]:
    """The `ServerOptions` keywords that parsed `serve` arguments ask for.

    Raises:
        ConfigError: a value out of range that ServerOptions would misreport.
    """
    if args.flush_interval < 0:
        raise ConfigError(f"--flush-interval must be >= 0 ms, not {args.flush_interval:g}")
    return {
        "chunk_size": args.chunk_size,
        "max_connections": args.max_connections,
        "handshake_timeout": args.handshake_timeout,
        "connect_timeout": args.connect_timeout,
        "idle_timeout": args.idle_timeout,
        "publisher_idle_timeout": args.publisher_idle_timeout,
        "send_timeout": args.send_timeout,
        "flush_interval": 0.0 if args.low_latency else args.flush_interval / 1000,
        "log_io_dir": args.log_io,
        "shutdown_grace": args.shutdown_grace,
        "reconnect_url": args.reconnect_url,
        "tls_cert": args.tls_cert,
        "tls_key": args.tls_key,
    }


def _serve(args: argparse.Namespace) -> int:
    import neurtmp
    from neurtmp.live import LiveApp, LiveOptions
    from neurtmp.relay import Edge, PullRelay, PushRelay, RedirectRelays

    try:
        workers = _worker_count(args.workers)
        if args.worker_start_timeout <= 0:
            raise ConfigError(f"--worker-start-timeout must be > 0 s, not {args.worker_start_timeout:g}")
    except ConfigError as exc:
        print(f"neurtmp serve: {exc}", file=sys.stderr)
        return 2
    if workers > 1 and args.worker is None:
        return _supervise_workers(args, workers)
    worker = args.worker
    _configure_logging(args.log_level, "" if worker is None else f"[worker {worker}] ")
    try:
        pulls = [parse_pull(spec) for spec in args.pull] if not worker else []
        pushes = [parse_push(spec) for spec in args.push] if not worker else []
        try:
            server = neurtmp.Factory().create_server(**server_options(args), reuse_port=worker is not None)
        except ConfigError as exc:
            raise ConfigError(_with_option_names(exc, _SERVE_OPTION_OF_FIELD)) from None
        verify = not args.tls_no_verify
        # what the on_play / on_publish hooks' rtmp:// redirects relay (pull for the player, push)
        redirects = RedirectRelays(server, verify=verify)
        access = _access_control(args, redirects)
        access.install(server)  # before the live app: its checks come first
        live = LiveApp(LiveOptions(apps=tuple(args.app), takeover=args.takeover, gop_packets=args.gop_packets,
                                   gop_bytes=args.gop_bytes, reconnect_grace=args.reconnect_grace,
                                   slate=args.slate, failover_timeout=args.failover_timeout))
        live.install(server)
        recording = _recording(args, server, worker, on_done=access.notify_recorded)
        relays: list[Any] = [redirects]
        for remote, app, name in pulls:
            relays.append(PullRelay(server, remote, app, name, verify=verify))
        for app, name, remote in pushes:
            relays.append(PushRelay(server, app, name, remote, verify=verify))
        draining = []
        if worker:  # workers 1..N-1 are edges of worker 0, which holds every stream
            draining.append(Edge(server, f"rtmp://{args.worker_origin}", verify=verify))
            relays.append(draining[-1])
        elif args.origin:
            relays.append(Edge(server, args.origin, verify=verify))
        if args.tls_listen and not args.tls_cert:
            raise ConfigError("--tls-listen needs --tls-cert and --tls-key")
        # With a certificate: RTMPS beside plain RTMP (--tls-listen), or instead of it.
        server.start(args.listen, tls=bool(args.tls_cert) and not args.tls_listen)
        if args.tls_listen:
            server.start(args.tls_listen, tls=True)
        if worker is not None:
            server.start("127.0.0.1:0", shared=False)  # this worker's own port, for its relays
        if worker == 0:  # where the other workers pull and push (the supervisor holds the port)
            server.start(args.worker_origin, shared=True, trusted=True)  # the workers checked their clients
        if args.http and not worker:  # (with --workers, worker 0 holds the streams and serves HTTP)
            relays.append(_http_side(args, live, server, access.check_http_play, access.notify_http_play_done))
    except (neurtmp.ConfigError, neurtmp.ListenError) as exc:
        print(f"neurtmp serve: {exc}", file=sys.stderr)
        return 2
    return _run_until_signalled(server, [*relays, *recording], args.shutdown_grace,
                                lambda: _reload_access(args, access), draining)


def _add_config_flag(command: argparse.ArgumentParser) -> None:
    command.add_argument("--config", metavar="FILE",
                         help=f"read options from this TOML file's [{command.prog.split()[-1]}] table (options "
                         "typed here win; see neurtmp.example.toml)")


def _add_http_flags(serve: argparse.ArgumentParser) -> None:
    serve.add_argument("--http", metavar="HOST:PORT",
                       help="serve HTTP-FLV (/APP/NAME.flv) and the JSON API (/api/v1/...) there (default: off)")
    serve.add_argument("--api-token", default=os.environ.get("NEURTMP_API_TOKEN"),
                       help="bearer token the API wants ($NEURTMP_API_TOKEN; default: none, loopback clients only)")


def _http_side(args: argparse.Namespace, live: Any, server: Any, play_check: Any = None,
               play_done: Any = None) -> _Service:
    """The HTTP side of `serve` as a service started with the relays."""
    import neurtmp
    from neurtmp.server import parse_address

    try:
        from neurtmp.live.http import LiveHttp, serve_live_http
    except ModuleNotFoundError as exc:
        raise ConfigError(str(neurtmp.MissingExtra("--http", "http", exc.name))) from None
    host, port = parse_address(args.http)
    http_app = LiveHttp(live, server, args.api_token, play_check, play_done)
    started: list[Any] = []

    def start() -> None:
        try:
            started.append(serve_live_http(http_app, host, port))
        except OSError as exc:
            print(f"neurtmp serve: cannot listen on HTTP {args.http}: {exc.strerror or exc}", file=sys.stderr)
            raise SystemExit(2) from None
        print(f"listening on http://{socket_address(started[0].socket)}", flush=True)

    def stop() -> None:
        http_app.stop()
        for http in started:
            http.stop(timeout=1)

    return _Service(start, stop)


def _reload_access(args: argparse.Namespace, access: Any) -> None:
    """SIGHUP: read the command line and the config file again and use their access
    rules, secrets and hooks; other options need a restart (said when they changed)."""
    log = logging.getLogger("neurtmp.cli")
    try:
        fresh = parse_arguments(args.argv)
        access.reload(_access_control(fresh).options)
    except (ConfigError, SystemExit) as exc:
        log.error("reload refused, the old access rules stay: %s", exc)
        return
    changed = sorted("--" + name.replace("_", "-") for name, value in vars(fresh).items()
                     if name not in _RELOADED and name != "func" and getattr(args, name, None) != value)
    how = " (SIGUSR2 to the supervisor replaces the workers)" if args.worker is not None else ""
    log.info("reloaded access rules, secrets and hooks%s", f"; a restart{how} is needed for: {', '.join(changed)}"
             if changed else "")


def _worker_count(text: str) -> int:
    if text == "auto":
        return os.cpu_count() or 1
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise ConfigError(f"--workers must be a number >= 1 or auto, not {text!r}")
    return count


def _supervise_workers(args: argparse.Namespace, count: int) -> int:
    """Run `count` worker processes sharing the port (`neurtmp.workers`)."""
    from neurtmp.workers import Supervisor

    try:
        holder = _bind(args.listen, reuse_port=True)  # keeps the port ours (not listening)
    except ConfigError as exc:
        print(f"neurtmp serve: {exc}", file=sys.stderr)
        return 2
    with holder:
        supervisor = Supervisor([sys.executable, "-m", "neurtmp.cli", *args.argv], count, args.worker_start_timeout,
                                args.shutdown_grace)
        return supervisor.run(holder)


def _proxy(args: argparse.Namespace) -> int:
    import neurtmp
    from neurtmp.live import LiveApp, LiveOptions
    from neurtmp.relay import Forwarder

    _configure_logging(args.log_level)
    try:
        remote = _remote_url("--to", args.to, need_stream=False)
        try:
            server = neurtmp.Factory().create_server(log_io_dir=args.log_io)
        except ConfigError as exc:
            raise ConfigError(_with_option_names(exc, {"log_io_dir": "--log-io"})) from None
        live = LiveApp(LiveOptions(reconnect_grace=0))  # the forwarder follows its publisher: no grace
        live.install(server)
        forwarder = Forwarder(server, remote, verify=not args.tls_no_verify)
        server.start(args.listen)
    except (neurtmp.ConfigError, neurtmp.ListenError) as exc:
        print(f"neurtmp proxy: {exc}", file=sys.stderr)
        return 2
    return _run_until_signalled(server, [forwarder], grace=_PROXY_SHUTDOWN_GRACE)


def _add_log_level(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                        help="least severe log messages shown (default %(default)s)")


def _add_proxy(add_parser: Callable[..., argparse.ArgumentParser]) -> None:
    proxy = add_parser(
        "proxy",
        help="accept publishers locally and forward each stream to a remote RTMP server",
        description="A local RTMP endpoint that forwards every published stream to a remote server, "
        "reconnecting with backoff when the remote drops (local players may watch too).",
    )
    proxy.add_argument("--listen", default="127.0.0.1:1935", help="HOST:PORT to listen on (default %(default)s)")
    proxy.add_argument("--to", required=True, metavar="URL",
                       help="rtmp://HOST[:PORT]/APP (the local stream name is appended) or rtmp://HOST/APP/NAME")
    proxy.add_argument("--log-io", metavar="DIR", help="write each connection's raw bytes to files in DIR")
    proxy.add_argument("--tls-no-verify", action="store_true",
                       help="accept any certificate from an rtmps:// remote (self-signed test servers)")
    _add_log_level(proxy)
    proxy.set_defaults(func=_proxy)


def _add_serve(add_parser: Callable[..., argparse.ArgumentParser]) -> None:
    from neurtmp.live import LiveOptions
    from neurtmp.server import ServerOptions

    def server(name: str) -> Any:
        return _default(ServerOptions, name)

    def live(name: str) -> Any:
        return _default(LiveOptions, name)

    serve = add_parser(
        "serve",
        help="run a live RTMP server: encoders publish to rtmp://HOST/APP/NAME, players play it",
        description="Run a live RTMP server. Encoders (ffmpeg, OBS, GStreamer) publish to "
        "rtmp://HOST[:PORT]/APP/NAME and players (ffplay, VLC, ffmpeg) play the same URL.",
    )
    serve.add_argument("--listen", default="0.0.0.0:1935",
                       help="HOST:PORT to listen on; [::]:1935 for IPv6, port 0 for any (default %(default)s)")
    serve.add_argument("--app", action="append", default=[], metavar="NAME",
                       help="serve only this application name (repeat for several; default: any)")
    serve.add_argument("--takeover", action="store_true", default=live("takeover"),
                       help="a new publisher of a live name replaces the old one (default: refused with BadName)")
    serve.add_argument("--chunk-size", type=int, default=server("chunk_size"),
                       help="outgoing chunk size (default %(default)s)")
    serve.add_argument("--max-connections", type=int, default=server("max_connections"),
                       help="connections served at once (default %(default)s)")
    serve.add_argument("--handshake-timeout", type=float, default=server("handshake_timeout"), metavar="SECONDS",
                       help="time a client has to complete the handshake (default %(default)s)")
    serve.add_argument("--connect-timeout", type=float, default=server("connect_timeout"), metavar="SECONDS",
                       help="time a client has to send connect (default %(default)s)")
    serve.add_argument("--idle-timeout", type=float, default=server("idle_timeout"), metavar="SECONDS",
                       help="drop a client silent for this long, pings unanswered (default %(default)s)")
    serve.add_argument("--publisher-idle-timeout", type=float, default=server("publisher_idle_timeout"),
                       metavar="SECONDS", help="close a publisher that sends no audio or video for this long, "
                       "freeing its name; 0: never (default %(default)s)")
    serve.add_argument("--send-timeout", type=float, default=server("send_timeout"), metavar="SECONDS",
                       help="drop a player that takes nothing for this long (default %(default)s)")
    serve.add_argument("--flush-interval", type=float, default=round(server("flush_interval") * 1000, 6), metavar="MS",
                       help="merge each player's messages into one send per this many ms (default %(default)s)")
    serve.add_argument("--low-latency", action="store_true", help="send every message at once (no merging)")
    serve.add_argument("--gop-packets", type=int, default=live("gop_packets"),
                       help="GOP cache bound in packets per stream; 0 disables it (default %(default)s)")
    serve.add_argument("--gop-bytes", type=int, default=live("gop_bytes"),
                       help="GOP cache bound in bytes per stream (default %(default)s)")
    serve.add_argument("--reconnect-grace", type=float, metavar="SECONDS",
                       default=os.environ.get("RTMP_RECONNECT_GRACE", live("reconnect_grace")),
                       help="a stream stays live this long after its publisher left: players get the slate, a "
                       "publisher of the name within it is spliced in; 0: it ends at once "
                       "($RTMP_RECONNECT_GRACE; default %(default)s)")
    serve.add_argument("--slate", metavar="IMAGE", default=live("slate"),
                       help="picture players get during the reconnect grace, scaled to each stream (needs the codec "
                       "extra), or none for the last frame, frozen (default: a generated dark card)")
    serve.add_argument("--failover-timeout", type=float, default=live("failover_timeout"), metavar="SECONDS",
                       help="a name's backup publisher (rtmp://HOST/APP/NAME?role=backup) takes over when the "
                       "primary sends no audio or video this long, or leaves (default %(default)s)")
    serve.add_argument("--workers", default="1", metavar="N",
                       help="worker processes sharing the port, for all cores: a number or auto (default %(default)s); "
                       "SIGUSR2 to the supervisor replaces them one at a time, SIGHUP reloads their access rules")
    serve.add_argument("--worker-start-timeout", type=float, default=START_TIMEOUT, metavar="SECONDS",
                       help="with --workers: time a worker has to start serving before it is killed and "
                       "restarted (default %(default)s)")
    serve.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    serve.add_argument("--worker-origin", help=argparse.SUPPRESS)
    serve.add_argument("--origin", metavar="URL",
                       help="be an edge of rtmp[s]://HOST[:PORT]: pull what players ask for from it, forward "
                       "what encoders publish to it")
    serve.add_argument("--tls-cert", metavar="FILE", help="PEM certificate (chain): serve RTMPS")
    serve.add_argument("--tls-key", metavar="FILE", help="PEM private key of --tls-cert")
    serve.add_argument("--tls-listen", metavar="HOST:PORT",
                       help="RTMPS on this address beside plain RTMP on --listen (default: --listen is RTMPS "
                       "when a certificate is given)")
    serve.add_argument("--tls-no-verify", action="store_true",
                       help="accept any certificate from rtmps:// relay remotes (self-signed test servers)")
    serve.add_argument("--pull", action="append", default=[], metavar="URL=LOCAL",
                       help="play rtmp://HOST[:PORT]/APP/NAME and serve it here as LOCAL (APP/NAME)")
    serve.add_argument("--push", action="append", default=[], metavar="LOCAL=URL",
                       help="republish local APP/NAME to rtmp://HOST[:PORT]/APP/NAME while it is live")
    serve.add_argument("--log-io", metavar="DIR",
                       help="write each connection's raw received and sent bytes to files in DIR")
    serve.add_argument("--shutdown-grace", type=float, default=server("shutdown_grace"), metavar="SECONDS",
                       help="on SIGINT/SIGTERM, time given to connections to finish (default %(default)s)")
    serve.add_argument("--reconnect-url", metavar="URL", default=server("reconnect_url"),
                       help="on shutdown, ask clients that handle Enhanced RTMP reconnect requests to reconnect "
                       "to rtmp[s]://HOST[:PORT]/APP (default: the URL they connected to)")
    _add_record_flags(serve)
    _add_log_level(serve)
    _add_config_flag(serve)
    _add_http_flags(serve)
    serve.set_defaults(func=_serve)


def _add_access_flags(serve: argparse.ArgumentParser) -> None:
    """`serve`'s access-control flags: tokens, IP rules, hooks (see `neurtmp.access`)."""
    from neurtmp.access import DEFAULT_HOOK_TIMEOUT, HOOK_CALLS

    group = serve.add_argument_group("access control", "IP rules, then tokens, then hooks; the first refusal wins")
    for kind in ("publish", "play"):
        token = "`neurtmp token --play`" if kind == "play" else "`neurtmp token`"
        group.add_argument(f"--{kind}-secret", metavar="SECRET",
                           help=f"{kind}ing in any app needs a token (?expires=...&sig=..., see {token}) signed "
                           f"with SECRET (default ${_SECRET_ENVIRONMENT[kind]}, else no token needed)")
        group.add_argument(f"--app-{kind}-secret", action="append", default=[], nargs=2, metavar=("APP", "SECRET"),
                           help="the same for application APP alone, with its own secret (repeatable)")
    for kind in ("publish", "play"):
        for verb in ("allow", "deny"):
            group.add_argument(f"--{verb}-{kind}", dest=f"{kind}_rules", action="append", default=[],
                               metavar="CIDR|all", type=functools.partial(_rule_flag, verb),
                               help=f"{verb} {kind}ing from these addresses; rules in the order given, the first "
                               "match decides, none matching allows (repeatable)")
    for call in HOOK_CALLS:
        answer = {"connect": "; a 2xx answer allows, anything else or no answer refuses",
                  "publish_done": ", not waiting for the answer", "play_done": ", not waiting for the answer",
                  "record_done": " when a recorded file is finished (with path), not waiting for the answer"}
        group.add_argument(f"--on-{call.replace('_', '-')}", dest=f"on_{call}", metavar="URL",
                           help=f"POST the {call} form (nginx-rtmp's fields) to URL" + answer.get(
                               call, "; a 2xx answer allows, a 3xx renames the stream to its Location (or, when "
                               "that is an rtmp:// URL, pulls it from there for a play, pushes it there for a "
                               "publish), anything else or no answer refuses"))
    group.add_argument("--app-rule", action="append", default=[], nargs=3, metavar=("APP", "RULE", "CIDR|all"),
                       help="an IP rule for application APP alone, RULE one of " + ", ".join(_APP_RULES) +
                       "; an app with its own publish (play) rules ignores the server-wide ones (repeatable)")
    group.add_argument("--app-hook", action="append", default=[], nargs=3, metavar=("APP", "CALL", "URL"),
                       help="the CALL hook (" + ", ".join(HOOK_CALLS) + ") for application APP alone, in place "
                       "of the server-wide one (repeatable)")
    group.add_argument("--hook-timeout", type=float, default=DEFAULT_HOOK_TIMEOUT, metavar="SECONDS",
                       help="time a connect, publish or play hook has to answer before the client is refused "
                       "(default %(default)s)")


def _rule_flag(verb: str, text: str) -> tuple[str, str]:
    """An IP-rule flag's value, kept in order with its verb (parsed in `_access_control`)."""
    return verb, text


#: The RULE words of `--app-rule`.
_APP_RULES = ("allow-publish", "deny-publish", "allow-play", "deny-play")

#: What a SIGHUP reloads (the access flags); any other option needs a restart.
_RELOADED = frozenset({"publish_secret", "play_secret", "app_publish_secret", "app_play_secret", "publish_rules",
                       "play_rules", "on_connect", "on_publish", "on_play", "on_publish_done", "on_play_done",
                       "on_record_done", "hook_timeout", "app_rule", "app_hook", "argv", "config"})

#: Environment variables that give a token secret for every app when no flag does.
_SECRET_ENVIRONMENT = {"publish": "RTMP_PUBLISH_SECRET", "play": "RTMP_PLAY_SECRET"}


def _access_control(args: argparse.Namespace, relays: Any = None) -> Any:
    """The `AccessControl` that `serve`'s access flags ask for (`relays`: what relays the
    hooks' rtmp:// redirects).

    Raises:
        ConfigError: a bad rule, secret, hook URL or timeout (named by its flag).
    """
    from neurtmp.access import ANY_APP, HOOK_CALLS, AccessControl, AccessOptions, parse_rule

    secrets: dict[str, dict[str, str]] = {}
    for kind in ("publish", "play"):
        every = getattr(args, f"{kind}_secret")
        if every == "":
            raise ConfigError(f"--{kind}-secret: an empty secret")
        every = every or os.environ.get(_SECRET_ENVIRONMENT[kind], "")
        secrets[kind] = {ANY_APP: every} if every else {}
        for app, secret in getattr(args, f"app_{kind}_secret"):
            if not app or not secret:
                raise ConfigError(f"--app-{kind}-secret wants APP SECRET, both non-empty")
            secrets[kind][app] = secret
    rules = {}
    for kind in ("publish", "play"):
        try:
            rules[kind] = tuple(parse_rule(verb == "allow", text) for verb, text in getattr(args, f"{kind}_rules"))
        except ConfigError as exc:
            raise ConfigError(f"--allow-{kind}/--deny-{kind}: {exc}") from None
    app_rules: dict[str, dict[str, list[Any]]] = {"publish": {}, "play": {}}
    for app, rule, text in args.app_rule:
        verb, _, kind = rule.partition("-")
        if rule not in _APP_RULES:
            raise ConfigError(f"--app-rule {app}: RULE must be one of {', '.join(_APP_RULES)}, not {rule!r}")
        try:
            app_rules[kind].setdefault(app, []).append(parse_rule(verb == "allow", text))
        except ConfigError as exc:
            raise ConfigError(f"--app-rule {app} {rule}: {exc}") from None
    hooks = {call: getattr(args, f"on_{call}") for call in HOOK_CALLS if getattr(args, f"on_{call}")}
    app_hooks: dict[str, dict[str, str]] = {}
    for app, call, url in args.app_hook:
        app_hooks.setdefault(app, {})[call.removeprefix("on_").removeprefix("on-").replace("-", "_")] = url
    try:
        options = AccessOptions(publish_secrets=secrets["publish"], play_secrets=secrets["play"],
                                publish_rules=rules["publish"], play_rules=rules["play"], hooks=hooks,
                                hook_timeout=args.hook_timeout,
                                app_publish_rules={app: tuple(r) for app, r in app_rules["publish"].items()},
                                app_play_rules={app: tuple(r) for app, r in app_rules["play"].items()},
                                app_hooks=app_hooks)
    except ConfigError as exc:
        message = str(exc).replace("hook_timeout", "--hook-timeout")
        raise ConfigError(re.sub(r"^on_(\w+) hook", lambda m: "--on-" + m.group(1).replace("_", "-"), message)) \
            from None
    return AccessControl(options, relays)


#: RecordOptions' error messages begin with these; the `serve` option that sets each.
_RECORD_OPTION_OF_FIELD = {
    "recording directory": "--record",
    "recording format": "--record-format",
    "recording interval": "--record-interval",
    "recording max_size": "--record-max-size",
    "recorded apps": "--record-app",
}


def _add_record_flags(serve: argparse.ArgumentParser) -> None:
    """`serve --record DIR ...`: write what is published to files (neurtmp.record)."""
    from neurtmp.record import FORMATS, RecordOptions

    group = serve.add_argument_group("recording")
    group.add_argument("--record", metavar="DIR",
                       help="record every published stream to DIR/APP/NAME/NAME-YYYYmmdd-HHMMSS[-N].flv|.mp4 (UTC)")
    group.add_argument("--record-format", choices=FORMATS, default=_default(RecordOptions, "format"),
                       help="flv: the published bytes as they came; mp4: fragmented MP4 of H.264 and AAC, playable "
                       "even if cut short (needs the codec extra) (default %(default)s)")
    group.add_argument("--record-interval", type=float, default=_default(RecordOptions, "interval"),
                       metavar="SECONDS", help="start a new file at the first key frame this long into a file "
                       "(default %(default)s: never)")
    group.add_argument("--record-max-size", type=int, default=_default(RecordOptions, "max_size"), metavar="BYTES",
                       help="start a new file at the first key frame once a file has this many bytes "
                       "(default %(default)s: never)")
    group.add_argument("--record-app", action="append", default=[], metavar="APP",
                       help="record only this application (repeat for several; default: every app)")


def _recording(args: argparse.Namespace, server: Any, worker: int | None,
               on_done: Callable[..., Any] | None = None) -> list[_Service]:
    """The recorder `serve --record` asks for, installed on `server` (the directory checked
    now); on worker 0 alone with --workers, as the other workers forward publishes to it.

    Raises:
        ConfigError: a bad --record* value, or a directory that cannot be written.
    """
    from neurtmp.errors import MissingExtra
    from neurtmp.record import Recorder, RecordOptions

    if not args.record:
        given = [flag for flag, value in (("--record-interval", args.record_interval),
                                          ("--record-max-size", args.record_max_size),
                                          ("--record-app", args.record_app)) if value]
        if given or args.record_format != _default(RecordOptions, "format"):
            raise ConfigError(f"{(given or ['--record-format'])[0]} needs --record DIR")
        return []
    if worker:
        return []
    try:
        recorder = Recorder(RecordOptions(args.record, args.record_format, args.record_interval,
                                          args.record_max_size, tuple(args.record_app)), on_done=on_done)
    except ConfigError as exc:
        raise ConfigError(_with_option_names(exc, _RECORD_OPTION_OF_FIELD)) from None
    except MissingExtra as exc:
        raise ConfigError(f"--record-format mp4: {exc}") from None
    recorder.install(server)
    return [_Service(lambda: None, recorder.close)]


class _Service:
    """Something `_run_until_signalled` starts before announcing and stops on a signal."""

    def __init__(self, start: Callable[[], Any], stop: Callable[[], Any]) -> None:
        self.start, self.stop = start, stop


#: `neurtmp ingest` flags: (field, type, help, default as shown; None: IngestConfig's).
#: Each also reads RTMP_<FIELD>.
_INGEST_FLAGS: tuple[tuple[str, type, str, str | None], ...] = (
    ("host", str, "address to listen on", None),
    ("port", int, "RTMP port", None),
    ("max_streams", int, "streams published at once", None),
    ("max_bitrate", float, "highest input bitrate, Mbit/s", None),
    ("max_resolution", int, "highest input height, lines", None),
    ("http_port", int, "HTTP port (playlists, segments, page, /metrics)", None),
    ("grpc_port", int, "gRPC ModuleService port", None),
    ("grpc_host", str, "address the gRPC ModuleService listens on (127.0.0.1 or a private one keeps it internal)",
     "the --host address"),
    ("output_dir", str, "where segments and playlists are written", "a per-user cache folder"),
    ("segment_duration", float, "segment length, seconds", None),
    ("encoder", str, "auto | x264 | nvenc_h264", None),
    ("preset", str, "x264 preset", None),
    ("ffmpeg", str, "ffmpeg binary", "the one imageio-ffmpeg installs"),
    ("auth_secret", str, "HMAC secret for publish tokens", "no secret, no auth"),
    ("keep_finished", float, "seconds a finished stream's files are kept", None),
    ("stall_timeout", float, "seconds without ffmpeg progress before it is restarted", None),
    ("publisher_idle_timeout", float, "seconds a publisher may send no audio or video before it is closed "
     "(its transcoder stops, the key is free); 0: never", None),
    ("reconnect_grace", float, "seconds a stream stays live after its publisher left: the ladder goes on with the "
     "slate, a publisher of the key within it is spliced in; 0: it ends at once", None),
    ("slate", str, "picture the stream carries during the reconnect grace (scaled to it), or none for the last "
     "frame, frozen", "a generated dark card"),
    ("failover_timeout", float, "a key's backup publisher (rtmp://HOST/live/KEY?role=backup) takes over when the "
     "primary sends no audio or video this long, or leaves", None),
    ("passthrough_heights", str, "heights (comma-separated) of a multitrack encoder's tracks to pass through as "
     "rungs of their own; a track of a ladder rung's height always is, when key frames align", "none"),
    ("audio_languages", str, "languages (comma-separated, e.g. en,fr) of an encoder's audio tracks in track order: "
     "the first is the default audio, the others alternate HLS/DASH renditions", "what the encoder's metadata says"),
)


def _add_ingest(add_parser: Callable[..., argparse.ArgumentParser]) -> None:
    from neurtmp.ingest import ENVIRONMENT, IngestConfig

    ingest = add_parser(
        "ingest",
        help="RTMP ingest at /live/KEY, transcoded to an HLS + DASH ladder served over HTTP",
        description="Encoders publish to rtmp://HOST:PORT/live/KEY; each stream is transcoded by ffmpeg to a "
        "1080/720/480/360 ladder (never above the input), served as HLS (/streams/KEY/master.m3u8) and DASH "
        "(/streams/KEY/dash/manifest.mpd), with a page at / . Every option also reads the environment "
        "variable shown; a flag wins.",
    )
    for name, kind, text, shown in _INGEST_FLAGS:
        default = _default(IngestConfig, name) if shown is None else shown
        ingest.add_argument(f"--{name.replace('_', '-')}", type=kind, default=None,
                            help=f"{text} (${ENVIRONMENT[name]}; default {default})")
    _add_log_level(ingest)
    _add_config_flag(ingest)
    ingest.set_defaults(func=_ingest)


def _ingest(args: argparse.Namespace) -> int:
    import neurtmp
    from neurtmp.ingest import IngestConfig

    try:
        from neurtmp.ingest import IngestApp, IngestHttp, serve_http
        from neurtmp.ingest.http import bound_address
        from neurtmp.ingest.monitor import Monitor
        from neurtmp.ingest.service import metrics_text, start_grpc
    except ModuleNotFoundError as exc:
        print(f"neurtmp ingest: {neurtmp.MissingExtra('the ingest app', 'ingest', exc.name)}", file=sys.stderr)
        return 2

    _configure_logging(args.log_level)
    try:
        config = IngestConfig.from_sources(os.environ, {name: getattr(args, name) for name, *_ in _INGEST_FLAGS})
        server = neurtmp.Factory().create_server(**config.server_options())
        app = IngestApp(config)
        app.install(server)
        server.start(host_port(config.host, config.port))
    except (neurtmp.ConfigError, neurtmp.ListenError) as exc:
        print(f"neurtmp ingest: {exc}", file=sys.stderr)
        return 2
    from neurtmp.live.http import LiveHttp

    # the live app's HTTP side rides along: HTTP-FLV of the published key (/live/KEY.flv)
    # and the JSON API (/api/v1/..., loopback clients or $NEURTMP_API_TOKEN)
    live_http = LiveHttp(app.live, server, os.environ.get("NEURTMP_API_TOKEN"))
    http_app = IngestHttp(app.outputs, app.describe, live_http)
    try:
        http = serve_http(http_app, config.host, config.http_port)
    except OSError as exc:
        server.shutdown(grace=0)
        print(f"neurtmp ingest: cannot listen on HTTP port {config.http_port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    host = http.address[0]
    shown = "127.0.0.1" if host == "0.0.0.0" else host  # for the routes' source URLs: a reachable address
    rtmp_port = server.get_listen_address().rpartition(":")[2]
    monitor = Monitor(app, server, http_app, f"rtmp://{shown}:{rtmp_port}/{config.app}")
    http_app.metrics = lambda: metrics_text(monitor)
    monitor.start()
    try:
        grpc_endpoint = start_grpc(monitor, config.grpc_host or config.host, config.grpc_port)
    except neurtmp.ListenError as exc:
        http.stop(timeout=1)
        server.shutdown(grace=0)
        print(f"neurtmp ingest: {exc}", file=sys.stderr)
        return 2
    monitor.on_sample = grpc_endpoint.follow
    print(f"serving HLS and DASH on http://{bound_address(http)}/ (encoder {app.encoder}, files in "
          f"{app.output_dir}); gRPC ModuleService on {grpc_endpoint.address}", flush=True)

    def stop() -> None:
        monitor.stop()
        grpc_endpoint.stop()
        live_http.stop()
        http.stop(timeout=2)
        app.stop()

    return _run_until_signalled(server, [_Service(lambda: None, stop)], grace=2.0)


def _add_token(add_parser: Callable[..., argparse.ArgumentParser]) -> None:
    token = add_parser(
        "token",
        help="print a publish (or play) URL with a token for `neurtmp ingest` / `neurtmp serve` run with a secret",
        description="Sign a publish token (HMAC-SHA256 of KEY:EXPIRES) with the secret of $RTMP_AUTH_SECRET "
        "(or --secret) and print the URL to publish to; with --play, a play token (HMAC-SHA256 of "
        "'play' LF KEY LF EXPIRES) for `neurtmp serve --play-secret`.",
    )
    token.add_argument("key", help="the stream key")
    token.add_argument("--ttl", type=int, default=3600, help="seconds the token is valid (default %(default)s)")
    token.add_argument("--secret", help="the secret (default: $RTMP_AUTH_SECRET, else $RTMP_PUBLISH_SECRET; "
                       "with --play $RTMP_PLAY_SECRET)")
    token.add_argument("--play", action="store_true",
                       help="a play token (for `neurtmp serve --play-secret`) instead of a publish token")
    token.add_argument("--server", default="rtmp://127.0.0.1:1935/live",
                       help="the ingest URL to publish to (default %(default)s)")
    token.set_defaults(func=_token)


def _token(args: argparse.Namespace) -> int:
    from neurtmp.access import PLAY, PUBLISH, token_query
    from neurtmp.ingest.access import check_key

    names = ["RTMP_PLAY_SECRET"] if args.play else ["RTMP_AUTH_SECRET", "RTMP_PUBLISH_SECRET"]
    secret = args.secret or next((os.environ[name] for name in names if os.environ.get(name)), "")
    problem = f"no secret: set {' or '.join(names)} or --secret" if not secret else check_key(args.key)
    if problem is not None or args.ttl <= 0:
        print(f"neurtmp token: {problem or '--ttl must be positive'}", file=sys.stderr)
        return 2
    expires = int(time.time()) + args.ttl
    query = token_query(secret, args.key, expires, PLAY if args.play else PUBLISH)
    print(f"{args.server.rstrip('/')}/{args.key}?{query}")
    return 0


class _CheckingParser(argparse.ArgumentParser):
    """An argument parser that raises ConfigError instead of printing its usage and
    exiting: it checks the options a config file stands for."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(message)


def build_parser(parser_class: type[argparse.ArgumentParser] = argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The `neurtmp` argument parser (`serve` defaults come from ServerOptions and LiveOptions)."""
    parser = parser_class(prog="neurtmp", description="RTMP server framework and live-streaming toolkit.")
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
    _add_serve(sub.add_parser)
    _add_access_flags(sub.choices["serve"])
    _add_proxy(sub.add_parser)
    _add_ingest(sub.add_parser)
    _add_token(sub.add_parser)
    return parser


def parse_arguments(words: list[str]) -> argparse.Namespace:
    """Parse a command line, with the options of its `--config` file before the typed
    ones (those win); `argv` on the result is `words`.

    Raises:
        ConfigError: the config file cannot be read, or holds a value no option takes.
    """
    parser = build_parser()
    args = parser.parse_args(words)
    if getattr(args, "config", None):
        from_file = _config_file_options(args.config, args.command)
        at = words.index(args.command) + 1
        args = parser.parse_args([*words[:at], *from_file, *words[at:]])
    args.argv = words
    return args


def _config_file_options(path: str, command: str) -> list[str]:
    """The options `path`'s `[command]` table stands for, each key checked by the
    command's parser on its own.

    Raises:
        ConfigError: the file cannot be read, or a key is unknown or has a bad value
            (one line naming the key).
    """
    from neurtmp.configfile import settings_from_file

    checker = build_parser(_CheckingParser)
    options: list[str] = []
    for place, words in settings_from_file(path, command):
        try:
            checker.parse_args([command, *words])
        except ConfigError as exc:
            problem = str(exc)
            if problem.startswith("unrecognized arguments"):
                problem = f"unknown key (see `neurtmp {command} --help` for the options a key may name)"
            raise ConfigError(f"config file {path}: [{command}] {place}: "
                              f"{re.sub(r'^argument [^:]+: ', '', problem)}") from None
        options.extend(words)
    return options


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `neurtmp` command; returns the exit status (2 for a configuration error)."""
    words = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parse_arguments(words)
    except ConfigError as exc:
        print(f"neurtmp: {exc}", file=sys.stderr)
        return 2
    parser = build_parser()
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
