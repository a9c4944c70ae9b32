"""Factory and Server (neuray `IFactory` / `IServer`) on gevent.

`Factory().create_server(**options)` makes a server; `server.install(handler)` adds a
connect handler; `server.start("0.0.0.0:1935")` binds and returns at once, the server
then accepting in its own greenlet and serving each connection in another.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import logging
import os
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gevent
import gevent.event
import gevent.pool
import gevent.server
import gevent.socket
import gevent.ssl

from neurtmp._chains import HandlerChain
from neurtmp._outbox import Flusher
from neurtmp.client import Client
from neurtmp.connection import LOCAL_ADDRESS, Connection
from neurtmp.errors import ConfigError, ConnectionClosed, ListenError, NeurtmpError
from neurtmp.handlers import AccessHandler, ConnectHandler, MediaHandler, PlayHandler, PublishHandler
from neurtmp.names import DEFAULT_TIMEOUT, host_port
from neurtmp.protocol.limits import (
    DEFAULT_MAX_CHUNK_STREAMS,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_OUT_CHUNK_SIZE,
    DEFAULT_PORT,
    MAX_CHUNK_SIZE,
)
from neurtmp.protocol.packet import Packet
from neurtmp.stream import Stream

__all__ = ["Factory", "LocalPublisher", "Server", "ServerOptions", "parse_address"]

log = logging.getLogger(__name__)


#: Seconds of the shutdown grace kept to send the last statuses (at most half of it).
_SHUTDOWN_STATUS_SECONDS = 1.0


@dataclass
class ServerOptions:
    """Tunables of a server; `Factory.create_server` takes them as keyword arguments."""

    #: Chunk size announced to clients for what we send (nginx-rtmp: 4096).
    chunk_size: int = DEFAULT_OUT_CHUNK_SIZE
    #: Largest message a client may send.
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    #: Most chunk streams a client may use at once.
    max_chunk_streams: int = DEFAULT_MAX_CHUNK_STREAMS
    #: Most connections served at once; more wait in the listen backlog.
    max_connections: int = 10_000
    #: Seconds a client has to finish the handshake.
    handshake_timeout: float = DEFAULT_TIMEOUT
    #: Seconds a client has to send connect (from accept).
    connect_timeout: float = DEFAULT_TIMEOUT
    #: Seconds without a byte from the client before it is dropped (nginx-rtmp: 60 s).
    idle_timeout: float = 60.0
    #: Seconds a publisher may send no audio or video (counted from its publish, so data
    #: messages alone do not keep it) before its connection is closed and the name is free
    #: again; 0 never closes it (nginx-rtmp: drop_idle_publisher, off by default, 10 s in
    #: its examples). Independent of idle_timeout: a stalled encoder may still answer pings.
    publisher_idle_timeout: float = 10.0
    #: Seconds of silence from the client after which we ping it (nginx-rtmp: 60 s).
    ping_interval: float = 20.0
    #: Queued plus kernel-unsent bytes above which `outqueue_is_full` is True.
    outqueue_high_water: int = 256 * 1024
    #: Queued bytes above which video is dropped for that client.
    outqueue_soft_limit: int = 4 * 1024 * 1024
    #: Queued bytes above which the client is disconnected.
    outqueue_hard_limit: int = 16 * 1024 * 1024
    #: Kernel send buffer per connection (SO_SNDBUF) in bytes; None keeps the system's
    #: autotuning. A bound keeps each slow player's kernel memory small too.
    send_buffer_size: int | None = None
    #: Seconds queued bytes may wait with none sent before the client is dropped.
    send_timeout: float = 30.0
    #: Seconds a writer waits to merge messages into one send (0: send at once, "low
    #: latency"). SRS merges 350 ms by default; 50 ms costs little latency and saves most
    #: of the per-message system calls.
    flush_interval: float = 0.05
    #: Enhanced-RTMP codecs advertised to clients that send their own fourCcList.
    fourcc_list: tuple[str, ...] = ("avc1", "hvc1", "av01", "vp09")
    #: Directory for raw per-connection byte logs (received and sent), or None.
    log_io_dir: str | None = None
    #: Seconds `shutdown()` waits for connections to finish by default.
    shutdown_grace: float = 5.0
    #: Where `shutdown()` asks clients that handle Enhanced RTMP v2 reconnect requests to
    #: reconnect (rtmp[s]://HOST[:PORT]/APP, sent as the request's tcUrl); None: the same
    #: URL they connected to (another worker on the port, or this server once restarted).
    reconnect_url: str | None = None
    #: Let other processes listen on the same port (SO_REUSEPORT; `neurtmp serve --workers`).
    reuse_port: bool = False
    #: PEM certificate (chain) and private key for RTMPS listeners (`start(..., tls=True)`).
    tls_cert: str | None = None
    tls_key: str | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raises:
            ConfigError: a value is out of range.
        """
        if not 1 <= self.chunk_size <= MAX_CHUNK_SIZE:
            raise ConfigError(f"chunk_size must be in 1..{MAX_CHUNK_SIZE}, not {self.chunk_size}")
        if not 1 <= self.max_message_size <= 0xFFFFFF:
            raise ConfigError(f"max_message_size must be in 1..16777215, not {self.max_message_size}")
        for name in ("handshake_timeout", "connect_timeout", "idle_timeout", "ping_interval", "send_timeout"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, not {getattr(self, name)}")
        if self.max_connections < 1:
            raise ConfigError(f"max_connections must be at least 1, not {self.max_connections}")
        if not 0 < self.outqueue_high_water <= self.outqueue_soft_limit <= self.outqueue_hard_limit:
            raise ConfigError("need 0 < outqueue_high_water <= outqueue_soft_limit <= outqueue_hard_limit")
        if self.publisher_idle_timeout < 0:
            raise ConfigError(f"publisher_idle_timeout must be >= 0 (0: off), not {self.publisher_idle_timeout}")
        if self.shutdown_grace < 0:
            raise ConfigError(f"shutdown_grace must be >= 0, not {self.shutdown_grace}")
        if self.reconnect_url is not None and not self.reconnect_url.lower().startswith(("rtmp://", "rtmps://")):
            raise ConfigError(f"reconnect_url must be an rtmp[s]://HOST[:PORT]/APP URL, not {self.reconnect_url!r}")
        if self.flush_interval < 0:
            raise ConfigError(f"flush_interval must be >= 0, not {self.flush_interval}")
        if self.log_io_dir is not None:
            _check_writable_directory(self.log_io_dir)
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("RTMPS needs both tls_cert and tls_key")
        for name in ("tls_cert", "tls_key"):
            path = getattr(self, name)
            if path is not None and not os.access(path, os.R_OK):
                raise ConfigError(f"{name} {path!r} is not a readable file")

    def ssl_context(self) -> ssl.SSLContext | None:
        """The server's TLS settings from tls_cert / tls_key (None without them).

        Raises:
            ConfigError: the certificate or key cannot be loaded.
        """
        if self.tls_cert is None or self.tls_key is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(self.tls_cert, self.tls_key)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(f"cannot load the TLS certificate and key: {exc}") from None
        return context


def _check_writable_directory(path: str) -> None:
    """Raises ConfigError unless `path` is (or can be made) a writable directory."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise ConfigError(f"log_io_dir {path!r} is not a directory")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"log_io_dir {path!r} cannot be created: {exc.strerror or exc}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"log_io_dir {path!r} is not writable")


#: What an empty listen address means (as neuray's `start("")`).
DEFAULT_LISTEN_ADDRESS = f"0.0.0.0:{DEFAULT_PORT}"


def parse_address(address: str) -> tuple[str, int]:
    """ "HOST:PORT", "[V6]:PORT", ":PORT" or "" (0.0.0.0:1935) -> (host, port).

    Raises:
        ConfigError: not an address.
    """
    host, sep, port_text = (address or DEFAULT_LISTEN_ADDRESS).rpartition(":")
    if not sep:
        raise ConfigError(f"listen address {address!r} has no port (use HOST:PORT)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ConfigError(f"put IPv6 addresses in brackets: [{host}]:{port_text}")
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(f"bad port {port_text!r} in {address!r}") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"port {port} out of range in {address!r}")
    return host or "0.0.0.0", port


class Server:
    """An RTMP server: listens, owns its connections, asks connect handlers about them."""

    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        self._handlers: list[ConnectHandler] = []
        self._listeners: list[gevent.server.StreamServer] = []
        self._addresses: list[tuple[bool, str]] = []
        #: Plain listeners of this process alone (not shared with SO_REUSEPORT).
        self._own_addresses: list[str] = []
        self._ssl_context = options.ssl_context()
        self._pool = gevent.pool.Pool(options.max_connections)
        self._connections: set[Connection] = set()
        self._ids = itertools.count(1)
        self._stopped = gevent.event.Event()
        self._flusher = Flusher(options.flush_interval) if options.flush_interval > 0 else None
        #: Server-wide chains, shared by reference with every stream (they follow changes).
        self.publish_chain: HandlerChain[PublishHandler] = HandlerChain()
        self.media_chain: HandlerChain[MediaHandler] = HandlerChain()
        self.play_observers: HandlerChain[PlayHandler] = HandlerChain()
        self.access_chain: HandlerChain[AccessHandler] = HandlerChain()
        self._started = time.monotonic()
        #: Bytes of connections that have closed (live ones are summed when asked).
        self._closed_bytes_in = 0
        self._closed_bytes_out = 0
        self._connections_served = 0

    # -- handlers -------------------------------------------------------------------

    def install(self, handler: ConnectHandler) -> None:
        """Add a connect handler; handlers are asked in the order installed."""
        self._handlers.append(handler)

    def remove(self, handler: ConnectHandler) -> None:
        """Remove a connect handler (connections it owns keep it for their close call)."""
        if handler in self._handlers:
            self._handlers.remove(handler)

    def get_connect_handlers(self) -> list[ConnectHandler]:
        """The installed connect handlers, in the order they are asked."""
        return list(self._handlers)

    def register_publish_event_handler(self, handler: PublishHandler) -> None:
        """neurtmp extension: observe (and filter) every publish on this server.

        Server-wide publish observers follow each stream's own chain (see
        `Stream.register_publish_event_handler`), as nginx-rtmp chains its modules: a
        relay, a recorder or a transcoder sees every publish whichever app owns it.
        """
        self.publish_chain.add(handler)

    def remove_publish_event_handler(self, handler: PublishHandler) -> None:
        self.publish_chain.remove(handler)

    def get_publish_event_handlers(self) -> tuple[PublishHandler, ...]:
        """The server-wide publish observers, in order."""
        return self.publish_chain.handlers

    def register_access_event_handler(self, handler: AccessHandler) -> None:
        """neurtmp extension: ask `handler` whether each publish and play on this server
        may go ahead, before the stream's own handlers (see `AccessEventHandler`)."""
        self.access_chain.add(handler)

    def remove_access_event_handler(self, handler: AccessHandler) -> None:
        self.access_chain.remove(handler)

    def get_access_event_handlers(self) -> tuple[AccessHandler, ...]:
        """The access handlers, in the order they are asked."""
        return self.access_chain.handlers

    def register_media_event_handler(self, handler: MediaHandler) -> None:
        """neurtmp extension: receive every message published on this server (after each
        stream's own media handlers)."""
        self.media_chain.add(handler)

    def remove_media_event_handler(self, handler: MediaHandler) -> None:
        self.media_chain.remove(handler)

    def get_media_event_handlers(self) -> tuple[MediaHandler, ...]:
        """The server-wide media handlers, in order."""
        return self.media_chain.handlers

    def register_play_event_observer(self, observer: PlayHandler) -> None:
        """neurtmp extension: be told of every accepted play on this server and of its end:
        ``observer(is_start, stream)`` (the return value is ignored; the stream's own play
        handler decides). Edges pull a stream when its first player comes this way."""
        self.play_observers.add(observer)

    def remove_play_event_observer(self, observer: PlayHandler) -> None:
        self.play_observers.remove(observer)

    def get_play_event_observers(self) -> tuple[PlayHandler, ...]:
        """The server-wide play observers, in order."""
        return self.play_observers.handlers

    @property
    def flusher(self) -> Flusher | None:
        """The merged-write flusher shared by this server's connections (None: low latency)."""
        return self._flusher

    # -- lifecycle ------------------------------------------------------------------

    def start(self, listen_address: str, tls: bool = False, shared: bool | None = None,
              trusted: bool = False) -> None:
        """Bind `listen_address` ("0.0.0.0:1935", "[::]:1935", port 0 for any; "" means
        0.0.0.0:1935, as in neuray) and serve; with `tls`, RTMPS (the tls_cert and
        tls_key options). A server may listen on several addresses, plain or TLS.
        `shared` (default: the reuse_port option) lets other processes listen on the
        same port. The clients of a `trusted` listener (an internal one, e.g. where the
        other worker processes of one server connect) are `Connection.trusted`: access
        control lets them through, as they were checked where they came in.

        Returns at once; the server runs in its own greenlets.

        Raises:
            ListenError: the address could not be bound.
            ConfigError: the address is malformed, or TLS was asked without a certificate.
        """

        if tls and self._ssl_context is None:
            raise ConfigError("RTMPS needs the tls_cert and tls_key options")
        host, port = parse_address(listen_address)
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        except socket.gaierror as exc:
            raise ListenError(f"cannot listen on {listen_address}: {exc}") from None
        family, _, _, _, sockaddr = infos[0]
        listener = gevent.socket.socket(family, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            shared = self.options.reuse_port if shared is None else shared
            if shared:
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            listener.bind(sockaddr)
            listener.listen(1024)
        except OSError as exc:
            listener.close()
            raise ListenError(f"cannot listen on {listen_address}: {exc.strerror or exc}") from None
        bound = listener.getsockname()
        address = host_port(bound[0], bound[1])
        self._addresses.append((tls, address))
        if not tls and not shared:
            self._own_addresses.append(address)
        self._stopped.clear()
        handle = functools.partial(self._handle_tls if tls else self._handle, trusted=trusted)
        stream_server = gevent.server.StreamServer(listener, handle, spawn=self._pool)
        stream_server.start()
        self._listeners.append(stream_server)
        log.debug("listening on %s://%s", "rtmps" if tls else "rtmp", address)

    def get_listen_address(self, tls: bool = False) -> str:
        """The bound "HOST:PORT" ("[V6]:PORT"), with the real port when 0 was asked; with
        `tls`, the RTMPS listener's ("" when there is none)."""
        return next((address for kind, address in self._addresses if kind == tls), "")

    def get_local_address(self) -> str:
        """A plain listener that only this process serves (for loopback clients such as
        relays, which must reach this very server); the first plain one otherwise."""
        return self._own_addresses[0] if self._own_addresses else self.get_listen_address()

    def _handle_tls(self, sock: gevent.socket.socket, address: Any, trusted: bool = False) -> None:
        """The TLS handshake (bounded by handshake_timeout), then as `_handle`."""
        assert self._ssl_context is not None
        sock.settimeout(self.options.handshake_timeout)
        try:
            # gevent's SSLSocket: the handshake and every read and write are cooperative.
            tls_sock = gevent.ssl.SSLSocket(sock=sock, server_side=True, _context=self._ssl_context)
        except (ssl.SSLError, OSError) as exc:
            log.info("%s:%s: TLS handshake failed: %s", address[0], address[1], exc)
            sock.close()
            return
        self._handle(tls_sock, address, trusted)

    def _handle(self, sock: gevent.socket.socket, address: Any, trusted: bool = False) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.options.send_buffer_size:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.options.send_buffer_size)
        self._serve(Connection(self, sock, address, self.new_client_id(), trusted=trusted))

    def play_local(self, app: str, name: str, timeout: float = DEFAULT_TIMEOUT, **connect_args: Any) -> Client:
        """Play `app/name` on this server from inside its process (relays pushing it
        elsewhere): a `Client` over a socket pair, through every connect, stream and
        play handler as a network player, but `Connection.local` (trusted, no network
        peer). Returns the client once Play.Start came; read its media with `read`.

        Raises:
            CallError: the connect or the play was refused.
            TimeoutError: the server did not answer in `timeout` seconds.
        """
        client, _ = self._local_client(app, name, timeout, connect_args, lambda client: client.play(name))
        return client

    def _local_client(self, app: str, name: str, timeout: float, connect_args: dict[str, Any],
                      begin: Callable[[Client], Any]) -> tuple[Client, Connection]:
        """A client connected to this server over a socket pair (its connection
        `Connection.local`), once `begin` (publish or play) succeeded."""
        ours, theirs = gevent.socket.socketpair()
        connection = Connection(self, ours, LOCAL_ADDRESS, self.new_client_id())
        self._pool.spawn(self._serve, connection)
        client = Client(f"rtmp://local/{app}/{name}", timeout, sock=theirs)
        try:
            client.open(**connect_args)
            begin(client)
        except BaseException:
            client.close()
            raise
        return client, connection

    def publish_local(self, app: str, name: str, timeout: float = DEFAULT_TIMEOUT,
                      **connect_args: Any) -> LocalPublisher:
        """Publish `app/name` on this server from inside its process (relays pulling into
        it, worker edges).

        The commands (connect, createStream, publish) go over a socket pair through the
        ordinary path, so every connect, stream and publish handler runs as for a network
        client; the media handed to `LocalPublisher.send_packet` then reaches the
        stream's media handlers directly: no chunking, no socket, no parsing.

        Raises:
            CallError: the connect or the publish was refused.
            TimeoutError: the server did not answer in `timeout` seconds.
        """
        client, connection = self._local_client(app, name, timeout, connect_args, lambda client: client.publish(name))
        stream = next(stream for stream in connection.get_streams() if stream.publishing)
        return LocalPublisher(client, stream)

    def _serve(self, connection: Connection) -> None:
        self._connections.add(connection)
        self._connections_served += 1
        try:
            connection.serve()
        finally:
            self._connections.discard(connection)
            final = connection.get_statistics()
            self._closed_bytes_in += final["bytes_in"]
            self._closed_bytes_out += final["bytes_out"]

    def get_connections(self) -> list[Connection]:
        return list(self._connections)

    def new_client_id(self) -> int:
        """A number no client of this server had: RTMP connections (`Connection.connection_id`)
        and the players of other protocols (HTTP-FLV, `neurtmp.FlvPlayer.player_id`) draw
        from one sequence, so an id names one client whatever its protocol."""
        return next(self._ids)

    def get_statistics(self) -> dict[str, Any]:
        """Server totals: connections now and served, RTMP bytes in and out (closed
        connections included), seconds since the server was made."""
        connections = list(self._connections)
        return {
            "connections": len(connections),
            "connections_served": self._connections_served,
            "bytes_in": self._closed_bytes_in + sum(connection.bytes_in for connection in connections),
            "bytes_out": self._closed_bytes_out + sum(connection.bytes_out for connection in connections),
            "uptime": time.monotonic() - self._started,
        }

    @property
    def listening(self) -> bool:
        """Started and not shut down."""
        return bool(self._listeners)

    def shutdown(self, grace: float | None = None) -> None:
        """Stop accepting at once; let connections finish for up to `grace` seconds, then
        end the streams of the rest with the statuses their clients expect and close
        them. Returns when no connection greenlet is left."""
        if not self._listeners:
            return
        grace = self.options.shutdown_grace if grace is None else grace
        listeners, self._listeners = self._listeners, []
        for listener in listeners:
            listener.close()  # the listening sockets: new connections are refused from here on
        self._request_reconnects()
        # Streams go on while clients may finish by themselves; then every client left is
        # told its streams end (players: UnpublishNotify, Play.Stop; publishers:
        # Unpublish.Success) and closed once that is sent, all within the grace.
        drain = min(_SHUTDOWN_STATUS_SECONDS, grace / 2)
        if not self._pool.join(timeout=grace - drain):
            closing = [gevent.spawn(connection.close_gracefully, "server shut down", drain)
                       for connection in list(self._connections)]
            gevent.joinall(closing, timeout=drain + 1)
        if not self._pool.join(timeout=drain):
            for connection in list(self._connections):
                connection.close("server shut down")
            if not self._pool.join(timeout=2):
                self._pool.kill(block=True, timeout=2)
        if self._flusher is not None:
            self._flusher.stop()
        self._stopped.set()
        log.info("server on %s stopped", " and ".join(address for _, address in self._addresses))
        self._addresses.clear()
        self._own_addresses.clear()

    def _request_reconnects(self) -> None:
        """Ask every client that handles it to reconnect (to `reconnect_url`, or the same
        URL) at the start of the grace: it connects again while its old connection drains."""
        asked = 0
        for connection in list(self._connections):
            try:
                asked += connection.request_reconnect(self.options.reconnect_url, "The server is shutting down.")
            except (OSError, NeurtmpError):
                pass
        if asked:
            log.info("shutting down: asked %d client(s) to reconnect", asked)

    def serve_forever(self, listen_address: str | None = None) -> None:
        """Start (when given an address) and block until `shutdown()`."""
        if listen_address is not None:
            self.start(listen_address)
        self._stopped.wait()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown(grace=0)


class Factory:
    """Makes independent servers (neuray `IFactory`)."""

    def create_server(self, **options: Any) -> Server:
        """A new server; keyword arguments are `ServerOptions` fields.

        Raises:
            ConfigError: an unknown option or a bad value.
        """
        known = {f.name for f in dataclasses.fields(ServerOptions)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigError(f"unknown server option(s): {', '.join(unknown)}")
        return Server(ServerOptions(**options))


class LocalPublisher:
    """A publish on a server from inside its process; made by `Server.publish_local`."""

    def __init__(self, client: Client, stream: Stream) -> None:
        self._client = client
        self._stream = stream

    def __repr__(self) -> str:
        return f"<LocalPublisher {self._stream.get_stream_name()!r}>"

    @property
    def stream(self) -> Stream:
        """The server-side stream that publishes."""
        return self._stream

    @property
    def closed(self) -> bool:
        return self._client.closed or not self._stream.publishing

    def send_packet(self, packet: Packet) -> None:
        """Publish one message (as the stream's client would have).

        Raises:
            ConnectionClosed: the publish ended (closed here, or by the server).
        """
        if self.closed:
            raise ConnectionClosed(f"the local publish of {self._stream.get_stream_name()!r} has ended")
        self._stream.receive_packet(packet)

    def close(self) -> None:
        """Unpublish and close the connection."""
        self._client.close()
