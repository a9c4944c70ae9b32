"""RtmpProxy: a local RTMP endpoint for one publishing client, forwarded to a remote server.

The shape of Tencent's TMIO proxy API, in Python::

    proxy = RtmpProxy.create()
    proxy.set_listener(listener)             # on_config, on_start, on_error
    proxy.start("tcp://127.0.0.1:0", "rtmps://live.example.com/app")
    ...                                       # on_start(addr, port): publish to rtmp://addr:port/app/name?query
    proxy.stop()                              # releases everything; a proxy cannot start again

`start` returns at once; errors it can see at once (a bad URL, a port in use) are raised.
It binds the local port and connects to the remote (TCP, TLS for rtmps://, handshake and
connect with the remote's own tcUrl); when both are done the listener's `on_start` is
called. The first client that publishes is forwarded: its stream name and query are
used on the remote unless the remote URL names a stream itself. A `txHost=HOST` field in
the publisher's query makes the remote connection use HOST in its tcUrl (for CDNs that
authenticate the tcUrl); the rest of the query (txSecret, txTime, ...) is passed on
unchanged. Media is relayed as it comes: no re-encoding, same timestamps, metadata and
sequence headers. There is no retry: a remote that times out or drops gives
`on_error(ErrorType.REMOTE, error)`, a publisher that goes away `on_error(ErrorType.LOCAL,
error)`. Built on the framework's public API; many proxies can run in one process.
"""

from __future__ import annotations

import enum
import logging
import ssl
import urllib.parse
from dataclasses import dataclass
from typing import Any

import gevent

import neurtmp
from neurtmp.handlers import Refusal
from neurtmp.names import DEFAULT_TIMEOUT, host_port, split_query

__all__ = ["ErrorType", "ProxyConfig", "ProxyListener", "RtmpProxy"]

log = logging.getLogger(__name__)


class ErrorType(enum.Enum):
    """Whose side failed: the local publisher's or the remote server's."""

    LOCAL = "local"
    REMOTE = "remote"


@dataclass
class ProxyConfig:
    """Settings `on_config` may change before the proxy connects."""

    #: Seconds for the remote's TCP/TLS connect, handshake and each answer.
    timeout: float = DEFAULT_TIMEOUT
    #: Chunk size the local endpoint announces.
    chunk_size: int = 4096
    #: Check an rtmps:// remote's certificate (False: accept self-signed test servers).
    verify: bool = True
    #: TLS settings for an rtmps:// remote (e.g. a private CA) instead of the defaults.
    ssl_context: ssl.SSLContext | None = None


class ProxyListener:
    """What a proxy tells its application. Override what you need."""

    def on_config(self, config: ProxyConfig) -> None:
        """Before connecting: change `config` in place."""

    def on_start(self, local_addr: str, local_port: int) -> None:
        """The remote is connected and the local port bound: publish to it now."""

    def on_error(self, error_type: ErrorType, error: BaseException) -> None:
        """A local (publisher) or remote (server) I/O error; the proxy forwards no more."""


def _parse_local(local_url: str) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(local_url)
    if parts.scheme != "tcp" or not parts.hostname or parts.port is None:
        raise neurtmp.ConfigError(f"local URL {local_url!r} is not tcp://IP:PORT")
    return parts.hostname, parts.port


def _split_query(name: str) -> tuple[str, list[tuple[str, str]]]:
    stream, query = split_query(name)
    return stream, urllib.parse.parse_qsl(query, keep_blank_values=True)


class RtmpProxy:
    """One local endpoint for one publisher, forwarded to one remote (module docstring)."""

    def __init__(self) -> None:
        self._listener: ProxyListener = ProxyListener()
        self._state = "new"  # new | started | stopped
        self._server: neurtmp.Server | None = None
        self._remote: neurtmp.Client | None = None
        self._remote_url = ""
        self._config = ProxyConfig()
        self._greenlets: list[gevent.Greenlet] = []
        self._publisher: Any = None
        self._client: Any = None
        self._forwarded = False
        self._failed = False
        self.local_address = ""
        self.packets_forwarded = 0

    @classmethod
    def create(cls) -> RtmpProxy:
        return cls()

    def __enter__(self) -> RtmpProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def set_listener(self, listener: ProxyListener) -> None:
        self._listener = listener

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, local_url: str, remote_url: str, config: ProxyConfig | None = None) -> None:
        """Bind `local_url` (tcp://IP:PORT, port 0 for any) and connect to `remote_url`
        (rtmp:// or rtmps://, naming the app, or the app and the stream); returns at once.

        Raises:
            ConfigError: a bad URL, or the proxy was started before.
            ListenError: the local port cannot be bound.
        """
        if self._state != "new":
            raise neurtmp.ConfigError("a proxy starts once; create another one" if self._state == "stopped"
                                      else "the proxy is already started")
        host, port = _parse_local(local_url)
        neurtmp.parse_rtmp_url(remote_url)
        self._config = config or ProxyConfig()
        self._listener.on_config(self._config)
        server = neurtmp.Factory().create_server(chunk_size=self._config.chunk_size, flush_interval=0)
        server.install(self._on_connect)
        server.start(host_port(host, port))
        self._server = server
        self._remote_url = remote_url
        self._state = "started"
        self.local_address = server.get_listen_address()
        self._greenlets.append(gevent.spawn(self._connect_remote))

    def stop(self) -> None:
        """Close both sides and release the port; the proxy cannot start again."""
        if self._state == "stopped":
            return
        self._state = "stopped"
        for greenlet in self._greenlets:
            greenlet.kill(block=False)
        self._close_remote()
        if self._server is not None:
            self._server.shutdown(grace=0)

    # -- remote side -------------------------------------------------------------------------

    def _connect(self, tc_url: str | None = None) -> neurtmp.Client:
        extra: dict[str, Any] = {"tcUrl": tc_url} if tc_url else {}
        return neurtmp.connect(self._remote_url, timeout=self._config.timeout, verify=self._config.verify,
                               ssl_context=self._config.ssl_context, **extra)

    def _connect_remote(self) -> None:
        try:
            self._remote = self._connect()
        except (OSError, TimeoutError, neurtmp.NeurtmpError) as exc:
            self._fail(ErrorType.REMOTE, exc)
            return
        self._watch(self._remote)
        host, _, port = self.local_address.rpartition(":")
        self._listener.on_start(host.strip("[]"), int(port))

    def _watch(self, remote: neurtmp.Client) -> None:
        def run() -> None:
            while self._remote is remote:
                try:
                    event = remote.read(timeout=3600)
                except TimeoutError:
                    continue
                if event is None:
                    if self._remote is remote:
                        closed = neurtmp.ConnectionClosed("the remote server closed the connection")
                        self._fail(ErrorType.REMOTE, closed)
                    return
        self._greenlets.append(gevent.spawn(run))

    def _close_remote(self) -> None:
        remote, self._remote = self._remote, None
        if remote is not None:
            remote.close()

    def _fail(self, error_type: ErrorType, error: BaseException) -> None:
        if self._failed or self._state == "stopped":
            return
        self._failed = True
        log.warning("proxy %s -> %s: %s error: %s", self.local_address, self._remote_url, error_type.value, error)
        self._close_remote()
        self._listener.on_error(error_type, error)

    # -- local side (called by the handlers) ---------------------------------------------------

    def _publish(self, is_start: bool, stream: neurtmp.Stream, name: str, publish_type: str) -> Any:
        if not is_start:
            if stream is self._publisher:
                self._publisher = None
                self._close_remote()
            return True
        if self._publisher is not None:
            return Refusal("NetStream.Publish.BadName", "this proxy already forwards a publisher")
        if self._remote is None:
            return Refusal("NetStream.Publish.Rejected", "the remote server is not connected")
        stream_name, query = _split_query(name)
        tx_host = next((value for key, value in query if key == "txHost"), None)
        passed_on = urllib.parse.urlencode([(k, v) for k, v in query if k != "txHost"])
        remote_stream = neurtmp.parse_rtmp_url(self._remote_url).stream or stream_name
        if passed_on:
            remote_stream += ("&" if "?" in remote_stream else "?") + passed_on
        try:
            if tx_host:
                parsed = neurtmp.parse_rtmp_url(self._remote_url)
                scheme = "rtmps" if parsed.tls else "rtmp"
                self._close_remote()
                self._remote = self._connect(f"{scheme}://{tx_host}/{parsed.app}")
                self._watch(self._remote)
            assert self._remote is not None
            self._remote.publish(remote_stream, publish_type or "live")
        except (OSError, TimeoutError, neurtmp.NeurtmpError) as exc:
            self._fail(ErrorType.REMOTE, exc)
            return Refusal("NetStream.Publish.Rejected", f"the remote server refused: {exc}")
        self._publisher = stream
        self._forwarded = True
        log.info("proxy %s: forwarding %r to %s as %r", self.local_address, stream_name, self._remote_url,
                 split_query(remote_stream)[0])
        return True

    def _media(self, stream: neurtmp.Stream, packet: neurtmp.Packet) -> None:
        remote = self._remote
        if stream is not self._publisher or remote is None:
            return
        try:
            if isinstance(packet, neurtmp.DataPacket):  # wrapped again, as encoders send it
                remote.send_data("@setDataFrame", packet.name, *packet.values, timestamp=packet.timestamp)
            else:
                remote.send_packet(packet)
            self.packets_forwarded += 1
        except (OSError, neurtmp.NeurtmpError) as exc:
            self._fail(ErrorType.REMOTE, exc)

    def _on_connect(self, is_create: bool, connection: neurtmp.Connection, command_arguments: Any,
                    user_arguments: Any) -> bool:
        """One client at a time; its streams get the forwarding handlers."""
        if not is_create:
            if connection is self._client:
                self._client = None
                if self._state == "started" and self._forwarded:
                    self._fail(ErrorType.LOCAL, neurtmp.ConnectionClosed("the publisher went away"))
            return True
        if self._client is not None:
            log.info("proxy %s: a second client refused", self.local_address)
            return False
        self._client = connection
        connection.register_stream_event_handler(self._on_stream)
        return True

    def _on_stream(self, is_create: bool, stream: neurtmp.Stream, command_arguments: Any) -> bool:
        if is_create:
            stream.register_publish_event_handler(self._publish)
            stream.register_media_event_handler(self._media)
        return True
