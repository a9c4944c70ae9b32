"""An RTMP client on gevent, in synchronous style, built on `ClientProtocol`.

    client = neurtmp.client.connect("rtmp://127.0.0.1/live")
    client.publish("cam")
    client.send_video(payload, timestamp=0)
    ...
    client.close()

A reader greenlet pumps the socket; commands wait for their answers with timeouts.
Media, data and status messages of the client's streams arrive in an inbox read with
`read()`; pings and acknowledgements are answered automatically.
"""

from __future__ import annotations

import logging
import socket
import ssl
import urllib.parse
from dataclasses import dataclass
from typing import Any

import gevent
import gevent.event
import gevent.lock
import gevent.queue
import gevent.socket
import gevent.ssl

from neurtmp.errors import (
    CallError,
    ConfigError,
    ConnectionClosed,
    HandshakeError,
    ProtocolError,
    RemoteProtocolError,
)
from neurtmp.names import DEFAULT_TIMEOUT
from neurtmp.protocol import events as ev
from neurtmp.protocol.capabilities import Capabilities
from neurtmp.protocol.commands import StatusCode
from neurtmp.protocol.connection import ClientProtocol
from neurtmp.protocol.limits import DEFAULT_OUT_CHUNK_SIZE, DEFAULT_PORT
from neurtmp.protocol.message import Message
from neurtmp.protocol.packet import Packet

__all__ = ["Client", "RtmpUrl", "client_ssl_context", "connect", "parse_rtmp_url", "reconnect_target"]

log = logging.getLogger(__name__)

#: Messages the inbox holds before the reader stops reading (TCP back-pressure).
DEFAULT_INBOX_SIZE = 4096

#: Events that go to the inbox.
_INBOX_EVENTS = (
    ev.AudioReceived,
    ev.VideoReceived,
    ev.DataReceived,
    ev.StatusReceived,
    ev.StreamBegan,
    ev.StreamEnded,
    ev.CallReceived,
)


@dataclass(frozen=True)
class RtmpUrl:
    """The parts of an rtmp:// or rtmps:// URL: app (query string kept), stream name,
    tcUrl, and whether it is RTMP over TLS."""

    host: str
    port: int
    app: str
    stream: str
    tc_url: str
    tls: bool = False


#: What `parse_rtmp_url` accepts, for error messages.
URL_FORM = "rtmp[s]://HOST[:PORT]/APP[/NAME]"

#: The port of rtmps:// URLs that name none (what YouTube, Facebook and Twitch use).
DEFAULT_TLS_PORT = 443

#: RTMP variants this client does not speak: scheme -> what it is.
_UNSUPPORTED_SCHEMES = {
    "rtmpe": "encrypted RTMP",
    "rtmpt": "RTMP tunnelled over HTTP",
    "rtmpte": "encrypted RTMP tunnelled over HTTP",
    "rtmpts": "RTMP tunnelled over HTTPS",
}


def parse_rtmp_url(url: str) -> RtmpUrl:
    """Split ``rtmp[s]://host[:port]/app[/stream][?query]``.

    The query string stays with the last part: the stream name when there is one
    (``/live/cam?key=1`` -> stream "cam?key=1"), else the app (``/live?key=1``).
    IPv6 hosts go in brackets (``rtmp://[::1]:1935/live``); the port defaults to 1935
    (443 for rtmps://).

    Raises:
        ConfigError: not an rtmp:// URL with a host, a valid port and an app; the
            message names the URL, what is wrong with it and the expected form.
    """
    if not isinstance(url, str):
        raise ConfigError(f"{url!r} is not an rtmp:// URL (expected {URL_FORM})")
    if url != url.strip():
        raise ConfigError(f"{url!r} has leading or trailing spaces (expected {URL_FORM})")
    scheme, sep, _ = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in ("rtmp", "rtmps"):
        if scheme in _UNSUPPORTED_SCHEMES:
            raise ConfigError(f"{url!r}: {scheme}:// ({_UNSUPPORTED_SCHEMES[scheme]}) is not supported; "
                              f"use {URL_FORM}")
        if not sep and url.lower().startswith("rtmp:"):
            raise ConfigError(f"{url!r} is not an rtmp:// URL: no '//' after 'rtmp:' (expected {URL_FORM})")
        raise ConfigError(f"{url!r} is not an rtmp:// URL (expected {URL_FORM})")
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError as exc:  # e.g. an unclosed IPv6 bracket
        raise ConfigError(f"{url!r} is not a valid URL: {exc} (expected {URL_FORM})") from None
    host = parts.hostname
    host_port = parts.netloc.rpartition("@")[2]
    if not host_port.startswith("[") and ("::" in host_port or host_port.count(":") > 2):
        raise ConfigError(f"{url!r}: put an IPv6 host in brackets, as in rtmp://[::1]:1935/APP")
    if not host:
        raise ConfigError(f"{url!r} has no host (expected {URL_FORM})")
    if any(char.isspace() or not char.isprintable() for char in parts.netloc):
        raise ConfigError(f"{url!r} has spaces or control characters in its host (expected {URL_FORM})")
    port_text = host_port.rpartition("]")[2].partition(":")[2]  # after an IPv6 address's brackets
    try:
        port = parts.port
    except ValueError:  # not a number, or out of range
        port = None
    if port_text and not port:  # "host:" alone keeps the default port
        raise ConfigError(f"{url!r} has a bad port {port_text!r} (expected a number in 1..65535)")
    app, _, stream = parts.path[1:].partition("/")  # "rtmp://host//x" has an empty app
    if not app:
        raise ConfigError(f"{url!r} has no application name (expected {URL_FORM})")
    if parts.query:
        if stream:
            stream += "?" + parts.query
        else:
            app += "?" + parts.query
    tls = scheme == "rtmps"
    default_port = DEFAULT_TLS_PORT if tls else DEFAULT_PORT
    return RtmpUrl(host, port or default_port, app, stream, f"{scheme}://{parts.netloc}/{app}", tls)


class Client:
    """One RTMP client connection. Use `connect()` to make one.

    Args:
        url: rtmp[s]://host[:port]/app[/stream].
        timeout: seconds for network steps and answers.
        inbox_size: media messages buffered before reading pauses.
        verify: for rtmps://, check the server's certificate and host name (the
            default); False accepts any certificate (self-signed test servers).
        ssl_context: for rtmps://, the TLS settings to use instead (e.g. your own CA).
        chunk_size: the chunk size announced (Set Chunk Size) before connect and used
            for everything sent, as ffmpeg does; large chunks cost the server less to
            parse than the protocol's initial 128 bytes.
        sock: an already connected socket to speak RTMP over (e.g. one end of a socket
            pair, see `Server.publish_local`); the URL's host and port are then unused.
        capabilities: the Enhanced RTMP capabilities announced in connect (`fourCcList`,
            FourCC info maps, `capsEx`, e.g. `Capabilities.of(["hvc1"],
            caps_ex=CapsEx.MULTITRACK)` for a multitrack player); None announces none,
            as a legacy client. Explicit connect arguments override these fields.
    """

    def __init__(
        self,
        url: str,
        timeout: float = DEFAULT_TIMEOUT,
        inbox_size: int = DEFAULT_INBOX_SIZE,
        receive_buffer_size: int | None = None,
        verify: bool = True,
        ssl_context: ssl.SSLContext | None = None,
        chunk_size: int = DEFAULT_OUT_CHUNK_SIZE,
        sock: gevent.socket.socket | None = None,
        capabilities: Capabilities | None = None,
    ) -> None:
        self.url = parse_rtmp_url(url)
        self.capabilities = capabilities
        self.chunk_size = chunk_size
        self._given_sock = sock
        self.verify = verify
        self.ssl_context = ssl_context
        self.timeout = timeout
        self.receive_buffer_size = receive_buffer_size
        self.protocol = ClientProtocol()
        self._sock: gevent.socket.socket | None = None
        self._send_lock = gevent.lock.RLock()
        self._pending: dict[float, gevent.event.AsyncResult] = {}
        self._statuses: dict[int, gevent.queue.Queue] = {}
        self.inbox: gevent.queue.Queue = gevent.queue.Queue(inbox_size)
        self._handshake = gevent.event.Event()
        self._reader: gevent.Greenlet | None = None
        self._error: BaseException | None = None
        self._closed = False
        self._closed_locally = False
        self.connect_result: ev.ResultReceived | None = None
        self.stream_id: int | None = None
        self._publishing: str | None = None
        #: The server's Enhanced RTMP v2 reconnect request (NetConnection.Connect.ReconnectRequest,
        #: also in the inbox as a `StatusReceived` on stream 0), once one came; announce
        #: `CapsEx.RECONNECT` in `capabilities` to get them. `reconnect_url()` says where to go.
        self.reconnect_requested: ev.StatusReceived | None = None

    def __repr__(self) -> str:
        return f"<Client rtmp://{self.url.host}:{self.url.port}/{self.url.app}>"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- connection -----------------------------------------------------------------

    def open(self, **connect_args: Any) -> ev.ResultReceived:
        """TCP connect, handshake, and the `connect` command; returns its result.

        Raises:
            CallError: the server refused the connection.
            ConnectionClosed: the server closed the connection during the handshake or
                before answering connect.
            HandshakeError / RemoteProtocolError: the server sent bytes that are not RTMP.
            TimeoutError / OSError: the network failed.
        """
        self._sock = self._given_sock if self._given_sock is not None else self._open_socket()
        self._sock.settimeout(None)
        self._reader = gevent.spawn(self._read_loop)
        try:
            self._flush()
        except OSError as exc:
            raise self._failed("during the handshake", exc) from None
        if not self._handshake.wait(self.timeout):
            self.close()
            raise TimeoutError(f"handshake with {self.url.host}:{self.url.port} timed out")
        if not self.protocol.handshake_done:  # the reader stopped first
            raise self._failed("during the handshake")
        if self._closed:  # the reader stopped right after the handshake
            raise self._failed("before answering connect")
        try:
            with self._send_lock:
                if self.chunk_size != self.protocol.out_chunk_size:
                    self.protocol.set_chunk_size(self.chunk_size)
                if self.capabilities is not None:
                    connect_args = {**self.capabilities.to_object(), **connect_args}
                tid = self.protocol.connect(self.url.app, self.url.tc_url, **connect_args)
            result = self._wait_result(tid, "connect")
        except TimeoutError:
            raise
        except OSError as exc:  # ConnectionClosed too
            raise self._failed("before answering connect", exc) from None
        self.connect_result = result
        return result

    @property
    def server_capabilities(self) -> Capabilities:
        """What the server stated of Enhanced RTMP in its connect `_result` (empty,
        `announced` False, for a legacy server or before connect)."""
        result = self.connect_result
        return Capabilities.from_object(result.command_object if result is not None else None)

    @property
    def reconnect_tc_url(self) -> str | None:
        """The `tcUrl` of the server's reconnect request (rtmp[s]://HOST[:PORT]/APP); None
        when there was no request, or it named none (reconnect to the same URL)."""
        request = self.reconnect_requested
        tc_url = request.info.get("tcUrl") if request is not None else None
        return tc_url if isinstance(tc_url, str) and tc_url else None

    def reconnect_url(self, url: str | None = None) -> str:
        """Where to reconnect after a reconnect request: the request's tcUrl with the
        stream name (and query) of `url` (default: this client's URL) kept, or `url`
        itself when the request named no tcUrl."""
        url = url if url is not None else f"{self.url.tc_url}/{self.url.stream}".rstrip("/")
        return reconnect_target(url, self.reconnect_tc_url)

    def _failed(self, when: str, error: OSError | None = None) -> Exception:
        """Close, and return the error to raise for a connection that ended `when`.

        The reader's protocol error when the server sent something that is not RTMP,
        else `ConnectionClosed` saying the server closed the connection `when`.
        """
        reader_error = self._error
        closed_locally = self._closed_locally
        self.close()
        where = f"{self.url.host}:{self.url.port}"
        if isinstance(reader_error, HandshakeError):
            failure = HandshakeError(f"RTMP handshake with {where} failed: {reader_error.reason}")
            failure.__cause__ = reader_error
            return failure
        if isinstance(reader_error, RemoteProtocolError):
            return reader_error
        if closed_locally:
            return ConnectionClosed(f"{self!r} was closed {when}")
        cause = error if error is not None and not isinstance(error, ConnectionClosed) else reader_error
        detail = ""
        if isinstance(cause, OSError) and not isinstance(cause, ConnectionClosed):
            detail = f" ({cause.strerror or cause})"
        return ConnectionClosed(f"server {where} closed the connection {when}{detail}")

    def _open_socket(self) -> gevent.socket.socket:
        """TCP connect (host names resolve), with the receive buffer set before connecting."""
        infos = gevent.socket.getaddrinfo(self.url.host, self.url.port, type=socket.SOCK_STREAM)
        last_error: OSError | None = None
        for family, kind, proto, _, address in infos:
            sock = gevent.socket.socket(family, kind, proto)
            if self.receive_buffer_size:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.receive_buffer_size)
            sock.settimeout(self.timeout)
            try:
                sock.connect(address)
            except TimeoutError:
                sock.close()
                raise TimeoutError(f"connecting to {self.url.host}:{self.url.port} timed out") from None
            except OSError as exc:
                sock.close()
                last_error = exc
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.url.tls:
                return self._start_tls(sock)
            return sock
        raise last_error or OSError(f"cannot resolve {self.url.host}")

    def _start_tls(self, sock: gevent.socket.socket) -> gevent.socket.socket:
        """The TLS handshake of rtmps:// (certificate and host name checked unless told not to)."""
        context = self.ssl_context or client_ssl_context(self.verify)
        try:
            # gevent's SSLSocket over any SSLContext: the handshake and I/O are cooperative.
            wrapped: gevent.socket.socket = gevent.ssl.SSLSocket(sock=sock, server_hostname=self.url.host,
                                                                 _context=context)
        except ssl.SSLCertVerificationError as exc:
            sock.close()
            raise ConnectionClosed(f"TLS: {self.url.host}:{self.url.port}'s certificate is not trusted "
                                   f"({exc.verify_message}); pass verify=False for a self-signed test server") from None
        except (ssl.SSLError, OSError) as exc:
            sock.close()
            raise ConnectionClosed(f"TLS handshake with {self.url.host}:{self.url.port} failed: {exc}") from None
        return wrapped

    def _read_loop(self) -> None:
        assert self._sock is not None
        try:
            while True:
                data = self._sock.recv(256 * 1024)
                if not data:
                    raise ConnectionClosed("server closed the connection")
                for event in self.protocol.receive_data(data):
                    self._route(event)
                self._flush()
        except (OSError, ProtocolError, ConnectionClosed) as exc:
            self._error = exc if not self._closed else ConnectionClosed("client closed")
        finally:
            self._closed = True
            self._handshake.set()
            failure = self._error or ConnectionClosed("connection closed")
            for result in self._pending.values():
                if not result.ready():
                    result.set_exception(ConnectionClosed(str(failure)))
            for queue in self._statuses.values():
                queue.put(None)
            try:
                self.inbox.put_nowait(None)
            except gevent.queue.Full:
                pass

    def _route(self, event: ev.Event) -> None:
        if isinstance(event, ev.HandshakeCompleted):
            self._handshake.set()
        elif isinstance(event, (ev.ResultReceived, ev.ErrorReceived)):
            waiter = self._pending.pop(event.transaction_id, None)
            if waiter is not None:
                waiter.set(event)
        if isinstance(event, ev.StatusReceived) and event.message_stream_id == 0 \
                and event.code == StatusCode.CONNECT_RECONNECT_REQUEST:
            self.reconnect_requested = event
            self.inbox.put(event)
            return
        if isinstance(event, ev.StatusReceived):
            self._statuses.setdefault(event.message_stream_id, gevent.queue.Queue()).put(event)
        if isinstance(event, _INBOX_EVENTS):
            self.inbox.put(event)  # blocks when full: the server then sees back-pressure

    def _flush(self) -> None:
        with self._send_lock:
            data = self.protocol.data_to_send()
            if data and self._sock is not None:
                self._sock.sendall(data)

    def _check_open(self) -> None:
        if self._closed:
            raise ConnectionClosed(f"{self!r} is closed ({self._error or 'closed'})")

    def _wait_result(self, tid: float, what: str, timeout: float | None = None) -> ev.ResultReceived:
        waiter = self._pending.setdefault(tid, gevent.event.AsyncResult())
        if self._closed and not waiter.ready():  # the reader is gone: no answer can come
            self._pending.pop(tid, None)
            raise ConnectionClosed(f"{self!r} is closed ({self._error or 'closed'})")
        self._flush()
        try:
            answer = waiter.get(timeout=self.timeout if timeout is None else timeout)
        except gevent.Timeout:
            self._pending.pop(tid, None)
            raise TimeoutError(f"no answer to {what} in {self.timeout:g} s") from None
        if isinstance(answer, ev.ErrorReceived):
            info = answer.arguments[0] if answer.arguments else None
            description = info.get("description", "") if isinstance(info, dict) else str(info)
            raise CallError(f"{what} failed: {answer.code or 'error'} {description}".strip(), answer.code, info)
        assert isinstance(answer, ev.ResultReceived)
        return answer

    def _wait_status(self, stream_id: int, wanted: str, what: str) -> ev.StatusReceived:
        queue = self._statuses.setdefault(stream_id, gevent.queue.Queue())
        if self._closed and queue.empty():  # the reader is gone: no status can come
            raise ConnectionClosed(f"connection closed while waiting for {wanted}")
        deadline = gevent.Timeout(self.timeout)
        deadline.start()
        try:
            while True:
                status: ev.StatusReceived | None = queue.get()
                if status is None:
                    raise ConnectionClosed(f"connection closed while waiting for {wanted}")
                if status.code == wanted:
                    return status
                if status.level == "error":
                    raise CallError(f"{what} failed: {status.code} {status.description}", status.code, status.info)
        except gevent.Timeout as exc:
            if exc is not deadline:
                raise
            raise TimeoutError(f"no {wanted} in {self.timeout:g} s") from None
        finally:
            deadline.close()

    # -- commands -------------------------------------------------------------------

    def call(self, name: str, *arguments: Any, timeout: float | None = None) -> Any:
        """Call a remote procedure and return its `_result` value (None if there is none).

        Raises:
            CallError: the server answered `_error`.
            TimeoutError: no answer in time.
        """
        self._check_open()
        with self._send_lock:
            tid = self.protocol.call(name, *arguments)
        result = self._wait_result(tid, name, timeout)
        return result.arguments[0] if result.arguments else None

    def create_stream(self) -> int:
        """createStream; returns the new message stream id."""
        self._check_open()
        with self._send_lock:
            tid = self.protocol.create_stream()
        result = self._wait_result(tid, "createStream")
        value = result.arguments[0] if result.arguments else None
        if not isinstance(value, (int, float)) or value <= 0:
            raise CallError(f"createStream returned {value!r}, not a stream id")
        return int(value)

    def publish(self, name: str | None = None, publish_type: str = "live") -> int:
        """releaseStream, FCPublish, createStream, publish; waits for Publish.Start.

        Args:
            name: the stream name (default: the one in the URL).

        Returns:
            the message stream id to send media on.

        Raises:
            CallError: the server refused (e.g. NetStream.Publish.BadName).
        """
        name = self._stream_name(name)
        self._check_open()
        with self._send_lock:
            self.protocol.release_stream(name)
            self.protocol.fc_publish(name)
        stream_id = self.create_stream()
        with self._send_lock:
            self.protocol.publish(stream_id, name, publish_type)
        self._flush()
        self._wait_status(stream_id, StatusCode.PUBLISH_START, f"publish {name!r}")
        self.stream_id = stream_id
        self._publishing = name
        return stream_id

    def play(self, name: str | None = None, start: float = -2, buffer_ms: int = 1000,
             duration: float = -1) -> int:
        """createStream, set buffer length, play; waits for Play.Start.

        Args:
            start: -2 live or recorded, -1 live only, >= 0 seconds into a recording.
            duration: seconds to play (-1: until the end); the server ends the play with
                NetStream.Play.Stop after that long (rtmpdump's --stop). Both are sent
                in milliseconds, as librtmp sends them.

        Returns:
            the message stream id media arrives on.

        Raises:
            CallError: the server refused (e.g. NetStream.Play.StreamNotFound).
        """
        name = self._stream_name(name)
        stream_id = self.create_stream()
        with self._send_lock:
            self.protocol.set_buffer_length(stream_id, buffer_ms)
            # start and duration travel in milliseconds (librtmp, Flash, nginx-rtmp)
            self.protocol.play(stream_id, name, start * 1000 if start >= 0 else start,
                               duration * 1000 if duration > 0 else duration)
        self._flush()
        self._wait_status(stream_id, StatusCode.PLAY_START, f"play {name!r}")
        self.stream_id = stream_id
        return stream_id

    def pause(self, paused: bool, stream_id: int | None = None) -> None:
        self._send(lambda p: p.pause(self._stream(stream_id), paused))

    def receive_audio(self, enabled: bool, stream_id: int | None = None) -> None:
        """Ask the server to stop (False) or resume (True) sending audio."""
        sid = self._stream(stream_id)
        self._send(lambda p: p.send_command("receiveAudio", 0, None, enabled, message_stream_id=sid))

    def receive_video(self, enabled: bool, stream_id: int | None = None) -> None:
        """Ask the server to stop (False) or resume (True) sending video."""
        sid = self._stream(stream_id)
        self._send(lambda p: p.send_command("receiveVideo", 0, None, enabled, message_stream_id=sid))

    def _stream_name(self, name: str | None) -> str:
        name = name if name is not None else self.url.stream
        if not name:
            raise ConfigError("no stream name given and none in the URL")
        return name

    def _stream(self, stream_id: int | None) -> int:
        stream_id = stream_id if stream_id is not None else self.stream_id
        if stream_id is None:
            raise ConfigError("no stream: call publish() or play() first")
        return stream_id

    # -- media ----------------------------------------------------------------------

    def _send(self, build: Any) -> None:
        self._check_open()
        with self._send_lock:
            build(self.protocol)
            data = self.protocol.data_to_send()
            if data and self._sock is not None:
                self._sock.sendall(data)

    def send_video(self, payload: bytes, timestamp: int, stream_id: int | None = None) -> None:
        """Send one video message (an FLV video tag body)."""
        sid = self._stream(stream_id)
        self._send(lambda p: p.send_video(sid, timestamp, payload))

    def send_audio(self, payload: bytes, timestamp: int, stream_id: int | None = None) -> None:
        """Send one audio message (an FLV audio tag body)."""
        sid = self._stream(stream_id)
        self._send(lambda p: p.send_audio(sid, timestamp, payload))

    def send_data(self, name: str, *values: Any, timestamp: int = 0, stream_id: int | None = None) -> None:
        """Send a data message, e.g. ``send_data("@setDataFrame", "onMetaData", {...})``."""
        sid = self._stream(stream_id)
        self._send(lambda p: p.send_data(sid, name, *values, timestamp=timestamp))

    def send_packet(self, packet: Packet, stream_id: int | None = None) -> None:
        """Send a media/data `Packet` as received from somewhere else (relays)."""
        sid = self._stream(stream_id)
        message = Message(packet.type_id, packet.timestamp, sid, packet.payload)
        self._send(lambda p: p.send_message(message, packet.chunk_stream_id))

    def set_chunk_size(self, size: int) -> None:
        self._send(lambda p: p.set_chunk_size(size))

    def read(self, timeout: float | None = None) -> ev.Event | None:
        """The next media, data or status event of this client's streams.

        Returns None when the connection is closed and the inbox is empty.

        Raises:
            TimeoutError: nothing arrived in `timeout` seconds (default: the client's).
        """
        try:
            event = self.inbox.get(timeout=self.timeout if timeout is None else timeout)
        except gevent.queue.Empty:
            raise TimeoutError("no message in time") from None
        if event is None:
            self.inbox.put_nowait(None)  # keep reporting the end
            return None
        assert isinstance(event, ev.Event)
        return event

    # -- closing --------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Unpublish if publishing, then close the connection."""
        if self._sock is None:
            return
        if not self._closed:
            try:
                with self._send_lock:
                    if self._publishing and self.stream_id is not None:
                        self.protocol.fc_unpublish(self._publishing)
                        self.protocol.delete_stream(self.stream_id)
                self._flush()
            except (OSError, ProtocolError):
                pass
        self._closed = True
        self._closed_locally = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        if self._reader is not None and self._reader is not gevent.getcurrent():
            self._reader.join(timeout=2)
            self._reader.kill(block=False)
        self._sock.close()


def reconnect_target(url: str, tc_url: str | None) -> str:
    """`url` (rtmp[s]://HOST[:PORT]/APP[/NAME]) moved to a reconnect request's `tc_url`:
    the same stream name (and query) under the new tcUrl; `url` unchanged for None.

    Raises:
        ConfigError: `url` or `tc_url` is not an rtmp[s]:// URL.
    """
    if not tc_url:
        return url
    parse_rtmp_url(tc_url)
    stream = parse_rtmp_url(url).stream
    return f"{tc_url.rstrip('/')}/{stream}" if stream else tc_url


def client_ssl_context(verify: bool = True) -> ssl.SSLContext:
    """TLS settings for rtmps:// clients: the system's CAs and host name checks, or
    (verify=False) any certificate."""
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def connect(
    url: str,
    timeout: float = DEFAULT_TIMEOUT,
    *,
    inbox_size: int = DEFAULT_INBOX_SIZE,
    receive_buffer_size: int | None = None,
    verify: bool = True,
    ssl_context: ssl.SSLContext | None = None,
    chunk_size: int = DEFAULT_OUT_CHUNK_SIZE,
    capabilities: Capabilities | None = None,
    **connect_args: Any,
) -> Client:
    """Open an RTMP connection: TCP (TLS for rtmps://), handshake and `connect` (tcUrl and
    app from the URL).

    Extra keyword arguments go into the connect command object (e.g. flashVer, tcUrl).
    `verify`, `ssl_context`, `chunk_size` and `capabilities` are as for `Client`.

    Raises:
        CallError: the server refused the connection.
        TimeoutError / OSError: the network failed.
    """
    client = Client(url, timeout, inbox_size, receive_buffer_size, verify, ssl_context, chunk_size,
                    capabilities=capabilities)
    try:
        client.open(**connect_args)
    except BaseException:
        client.close()
        raise
    return client
