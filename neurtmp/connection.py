"""Connection: one client of a server (neuray `IConnection`), served by one greenlet.

The connection's greenlet reads the socket, feeds the sans-IO `ServerProtocol`, and
dispatches each event: connection commands here, stream commands to their `Stream`,
which owns the NetStream state. What the protocol queues, and the media streams send,
goes to the connection's `Outbox`, drained by its writer greenlet (or the server's
flusher).

Streams use a narrow output interface: `enqueue(wire, priority)`, `out_chunk_size`,
`protocol` (to answer their commands), `flush()`, `outqueue_is_full()`, `check_open()`,
and `follow(log)` / `unfollow(log)` for a `FanOut`'s shared wire log.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, BinaryIO

import gevent
import gevent.socket

from neurtmp import _outbox
from neurtmp._handler import call_handler
from neurtmp.errors import ConnectionClosed, ProtocolError, RemoteProtocolError
from neurtmp.handlers import CallHandler, ConnectHandler, Refusal, StreamHandler
from neurtmp.names import host_port, redact_query, split_query
from neurtmp.protocol import events as ev
from neurtmp.protocol.capabilities import Capabilities, CapsEx, FourCcInfo
from neurtmp.protocol.commands import StatusCode, status_info
from neurtmp.protocol.connection import ServerProtocol
from neurtmp.stream import Stream

if TYPE_CHECKING:
    from neurtmp.fanout import WireLog
    from neurtmp.server import Server

__all__ = ["Connection"]

log = logging.getLogger(__name__)

#: The peer address of in-process connections (`Server.publish_local`, `Server.play_local`).
LOCAL_ADDRESS = ("local", 0)

#: Bytes read from the socket at once.
_RECV_SIZE = 64 * 1024
#: Seconds a refused or closing connection gets to flush its last messages.
_CLOSE_FLUSH_SECONDS = 2.0
#: The extended capabilities a server states: it parses and passes on Multitrack
#: messages and ModEx signals (nanosecond timestamp offsets included), and it sends
#: NetConnection.Connect.ReconnectRequest (`Connection.request_reconnect`, on a graceful
#: shutdown) to clients that handle it.
SERVER_CAPS_EX = CapsEx.RECONNECT | CapsEx.MULTITRACK | CapsEx.MOD_EX | CapsEx.TIMESTAMP_NANO_OFFSET


def server_capabilities(fourcc_list: tuple[str, ...] | list[str]) -> Capabilities:
    """A forwarding server's E-RTMP statement: `fourcc_list` for v1 clients, and any
    audio or video codec forwarded ("*": CanForward) for v2 clients."""
    return Capabilities.of(fourcc_list, video={"*": FourCcInfo.CAN_FORWARD}, audio={"*": FourCcInfo.CAN_FORWARD},
                           caps_ex=SERVER_CAPS_EX)


class Connection:
    """One client connection: handlers, properties, statistics, peer address.

    Handed to connect and call handlers. Keeping a reference is safe; using a closed
    connection raises `ConnectionClosed`.
    """

    def __init__(self, server: Server, sock: gevent.socket.socket, address: Any, connection_id: int,
                 trusted: bool = False) -> None:
        options = server.options
        self._server = server
        self._sock = sock
        self.connection_id = connection_id
        host, port = address[0], address[1]
        self._local = (host, port) == LOCAL_ADDRESS
        self._trusted = trusted or self._local
        #: Being closed once what is queued is sent (`close(flush_timeout=)`): its media
        #: is not handed to handlers any more (a refused publisher's next frames).
        self._closing = False
        self._peer = host_port(host, port)
        self._protocol = ServerProtocol(
            max_message_size=options.max_message_size,
            max_chunk_streams=options.max_chunk_streams,
            out_chunk_size=options.chunk_size,
        )
        self._io_in, io_out = self._open_io_logs(options.log_io_dir)
        self._outbox = _outbox.Outbox(
            sock,
            high_water=options.outqueue_high_water,
            soft_limit=options.outqueue_soft_limit,
            hard_limit=options.outqueue_hard_limit,
            flusher=server.flusher,
            send_timeout=options.send_timeout,
            on_overflow=self._on_outbox_failure,
            io_log=io_out,
        )
        self._io_out = io_out
        #: Queue one message's wire bytes: ``enqueue(wire, priority, burst=False)`` (see
        #: `neurtmp._outbox.Outbox.put`); False when the slow-player policy dropped it or
        #: the connection is closed.
        self.enqueue: Callable[..., bool] = self._outbox.put
        self._properties: dict[str, Any] = {}
        self._call_handlers: dict[str | None, CallHandler] = {}
        self._stream_handler: StreamHandler | None = None
        self._owner: ConnectHandler | None = None
        self._connect_event: ev.ConnectRequested | None = None
        self._streams: dict[int, Stream] = {}
        self._closed = False
        self._asked_to_reconnect = False
        self._close_reason = ""
        self._started = time.monotonic()
        self._last_received = self._started
        self._last_ping_sent = 0.0
        self._ping_sent_at: dict[int, float] = {}
        self.rtt_ms: float | None = None

    def __repr__(self) -> str:
        return f"<Connection {self.connection_id} {self._peer}>"

    # -- public API -------------------------------------------------------------------

    def get_peer_address(self) -> str:
        """The client's address as "ip:port" ("[ip]:port" for IPv6)."""
        return self._peer

    def get_server(self) -> Server:
        return self._server

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def local(self) -> bool:
        """True for the in-process connections of `Server.publish_local` and
        `Server.play_local` (relays, edges), which have no network peer."""
        return self._local

    @property
    def asked_to_reconnect(self) -> bool:
        """Whether `request_reconnect` was sent: the client is moving to another
        connection (another server, or another worker of this one)."""
        return self._asked_to_reconnect

    @property
    def trusted(self) -> bool:
        """True for connections that access control lets through: in-process ones
        (`local`) and those of a trusted listener (`Server.start(..., trusted=True)`),
        already checked where they came in."""
        return self._trusted

    @property
    def started(self) -> float:
        """When the connection was accepted (`time.monotonic()`; cheap, for listings)."""
        return self._started

    @property
    def app(self) -> str:
        """The application name from connect (query string included)."""
        return self._connect_event.app if self._connect_event else ""

    @property
    def app_name(self) -> str:
        """The application name without its query string and slashes ("live?k=1/" -> "live")."""
        return split_query(self.app)[0].strip("/")

    @property
    def client_capabilities(self) -> Capabilities:
        """What the client announced of Enhanced RTMP in connect: the codecs it takes
        (`fourCcList`, `videoFourCcInfoMap`, `audioFourCcInfoMap`) and its `capsEx`
        (multitrack, ModEx, reconnect...). Empty, with `announced` False, for a legacy
        client and before connect: such a client gets legacy media only."""
        return self._connect_event.capabilities if self._connect_event else Capabilities()

    @property
    def server_capabilities(self) -> Capabilities:
        """What this server states of Enhanced RTMP in the connect `_result` to a client
        that announced E-RTMP: the configured `fourcc_list`, any codec forwarded, and the
        multitrack, ModEx and nanosecond-offset signals understood."""
        return server_capabilities(self._server.options.fourcc_list)

    def get_connect_arguments(self) -> dict[str, Any]:
        """The connect command object the client sent (app, tcUrl, flashVer, ...); {} before connect."""
        command = self._connect_event.command_object if self._connect_event else None
        return dict(command) if isinstance(command, dict) else {}

    def register_remote_call_handler(self, handler: CallHandler, procedure_name: str | None = None) -> None:
        """Handle the client's calls to `procedure_name` (None: the default handler)."""
        self.check_open()
        self._call_handlers[procedure_name] = handler

    def register_stream_event_handler(self, handler: StreamHandler) -> None:
        """Handle createStream / deleteStream on this connection."""
        self.check_open()
        self._stream_handler = handler

    def set_property(self, key: str, value: Any) -> None:
        """Set a user property (keys start with "user_").

        Raises:
            KeyError: a key that does not start with "user_".
            ConnectionClosed: the connection is closed.
        """
        self.check_open()
        if not key.startswith("user_"):
            raise KeyError(f"unknown connection property {key!r} (user keys start with 'user_')")
        self._properties[key] = value

    def get_property(self, key: str) -> Any:
        """Raises:
            KeyError: the property is not set.
        """
        return self._properties[key]

    @property
    def bytes_in(self) -> int:
        """Bytes received from the client (cheap: for totals over many connections)."""
        return self._protocol.bytes_received

    @property
    def bytes_out(self) -> int:
        """Bytes sent to the client."""
        return self._outbox.bytes_sent

    def get_statistics(self) -> dict[str, Any]:
        """Bytes and messages in and out, uptime, last RTT, queue and drop counts."""
        protocol = self._protocol
        return {
            "bytes_in": protocol.bytes_received,
            "bytes_out": self._outbox.bytes_sent,
            "bytes_queued": self._outbox.queued_bytes,
            "messages_in": protocol.messages_received,
            "messages_out": protocol.messages_sent + self._outbox.media_messages,
            "dropped_messages": self._outbox.dropped_messages,
            "dropped_bytes": self._outbox.dropped_bytes,
            "uptime": time.monotonic() - self._started,
            "rtt_ms": self.rtt_ms,
            "streams": len(self._streams),
        }

    def get_streams(self) -> list[Stream]:
        return list(self._streams.values())

    def close(self, reason: str = "closed by the server", flush_timeout: float = 0.0) -> None:
        """Close the connection; handlers see stream and connection close events.

        With `flush_timeout`, what is queued (a last status sent just before) goes out
        first, for at most that many seconds; the call returns at once either way.
        """
        if self._closed:
            return
        if flush_timeout > 0:
            self._closing = True  # what it sends from now on is no longer handed to handlers
            self.flush()
            gevent.spawn(self._close_after_flush, reason, flush_timeout)
            return
        self._close_reason = self._close_reason or reason
        self._closed = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _close_after_flush(self, reason: str, timeout: float) -> None:
        self._outbox.drain(timeout)
        self.close(reason)

    def close_gracefully(self, reason: str, timeout: float) -> None:
        """End every stream with the statuses its client expects (see
        `Stream.end_for_shutdown`), let them reach the client (at most `timeout`
        seconds), then close."""
        if self._closed:
            return
        for stream in list(self._streams.values()):
            try:
                stream.end_for_shutdown()
            except Exception:
                log.exception("%s: ending %s for shutdown failed", self._peer, stream)
        self.flush()
        self._outbox.drain(timeout)
        self.close(reason)

    def request_reconnect(self, tc_url: str | None = None, description: str = "") -> bool:
        """Ask the client to connect again (Enhanced RTMP v2
        NetConnection.Connect.ReconnectRequest), to `tc_url` (rtmp[s]://HOST[:PORT]/APP)
        or, when None, to the same URL. The client reconnects while this connection
        goes on, so its players or publish see no gap.

        Returns:
            True when sent; False, sending nothing, when the client did not announce
            capsEx Reconnect in connect (a legacy client) or the connection is closed.
        """
        if self._closed or self._connect_event is None or not self.client_capabilities.reconnect:
            return False
        self._protocol.send_reconnect_request(tc_url, description)
        self._asked_to_reconnect = True
        self.flush()
        log.info("%s: asked to reconnect%s", self._peer, f" to {redact_query(tc_url)}" if tc_url else "")
        return True

    def call(self, procedure_name: str, *arguments: Any) -> None:
        """Call a method on the client (no answer is waited for)."""
        self.check_open()
        self._protocol.send_command(procedure_name, 0, None, *arguments)
        self.flush()

    # -- the output interface streams use ----------------------------------------------

    def check_open(self) -> None:
        """Raises:
            ConnectionClosed: the connection is closed.
        """
        if self._closed:
            raise ConnectionClosed(f"connection {self._peer} is closed")

    @property
    def protocol(self) -> ServerProtocol:
        """The sans-IO protocol object (framework side: streams answer their commands with it)."""
        return self._protocol

    @property
    def out_chunk_size(self) -> int:
        """The chunk size of what is sent to this client (for `Packet.wire`)."""
        return self._protocol.out_chunk_size

    def flush(self) -> None:
        """Queue what the protocol object has to send, ahead of any drop policy."""
        data = self._protocol.data_to_send()
        if data:
            self._outbox.put(data, _outbox.CRITICAL, urgent=True)

    def can_follow(self) -> bool:
        """Whether this connection can send from a shared `WireLog` (not RTMPS, open,
        following no other)."""
        return self._outbox.can_follow()

    def follow(self, log: WireLog) -> bool:
        """Send `log`'s entries (a `FanOut`'s shared wire bytes) from now on, after what
        was queued before; False when the connection cannot (see `can_follow`)."""
        return self._outbox.follow(log)

    def unfollow(self, log: WireLog) -> None:
        """Stop sending from `log`; what it holds for this connection still goes out."""
        if self._outbox.following is log:
            self._outbox.unfollow()

    def outqueue_is_full(self) -> bool:
        """True when the client is not draining what was sent."""
        return self._outbox.is_full()

    # -- the connection greenlet ------------------------------------------------------

    def serve(self) -> None:
        """Run the connection until the client leaves or it is closed."""
        log.debug("%s connected", self._peer)
        try:
            while not self._closed:
                timeout = self._read_timeout()
                if timeout <= 0:  # a deadline passed while data kept coming (a publisher of metadata only)
                    self._on_read_timeout()
                    continue
                self._sock.settimeout(timeout)
                try:
                    data = self._sock.recv(_RECV_SIZE)
                except TimeoutError:
                    self._on_read_timeout()
                    continue
                if not data:
                    self._close_reason = self._close_reason or "client closed the connection"
                    break
                self._last_received = time.monotonic()
                if self._io_in is not None:
                    self._io_in.write(data)
                for event in self._protocol.receive_data(data):
                    handler = self._DISPATCH.get(type(event))
                    if handler is not None:
                        handler(self, event)
                    if self._closed:
                        break
                self.flush()
        except RemoteProtocolError as exc:
            self._close_reason = f"protocol error: {exc.reason}"
            log.warning("%s: %s; dropping the connection", self._peer, self._close_reason)
        except ProtocolError as exc:
            self._close_reason = f"protocol error: {exc}"
            log.warning("%s: %s", self._peer, self._close_reason)
        except ConnectionClosed:
            pass
        except (ConnectionResetError, BrokenPipeError):
            self._close_reason = self._close_reason or "client closed the connection (reset)"
        except OSError as exc:
            if not self._closed:
                self._close_reason = f"socket error: {exc}"
        except gevent.GreenletExit:
            self._close_reason = self._close_reason or "server shut down"
        except Exception:
            self._close_reason = "handler raised"
            log.exception("%s: a handler raised; dropping the connection", self._peer)
        finally:
            self._teardown()

    def _read_timeout(self) -> float:
        """Seconds to the next deadline (handshake, connect, idle publisher, idle client,
        ping); 0 or less when one has passed."""
        options = self._server.options
        now = time.monotonic()
        if not self._protocol.handshake_done:
            return self._started + options.handshake_timeout - now
        if self._owner is None:
            return self._started + options.connect_timeout - now
        idle_deadline = self._last_received + options.idle_timeout
        ping_due = max(self._last_received, self._last_ping_sent) + options.ping_interval
        publisher_deadline = self._publisher_idle_deadline()
        if publisher_deadline is not None:
            idle_deadline = min(idle_deadline, publisher_deadline)
        return min(idle_deadline, ping_due) - now

    def _on_read_timeout(self) -> None:
        """Act on the deadline that passed (the same sums as `_read_timeout`, so one it
        found passed is found passed here)."""
        options = self._server.options
        now = time.monotonic()
        publisher_deadline = self._publisher_idle_deadline()
        if not self._protocol.handshake_done:
            if now >= self._started + options.handshake_timeout:
                self._timeout(f"handshake not completed in {options.handshake_timeout:g} s")
        elif self._owner is None:
            if now >= self._started + options.connect_timeout:
                self._timeout(f"no connect command in {options.connect_timeout:g} s")
        elif publisher_deadline is not None and now >= publisher_deadline:
            self._drop_idle_publisher()
        elif now >= self._last_received + options.idle_timeout:
            self._timeout(f"idle for {options.idle_timeout:g} s")
        elif now >= max(self._last_received, self._last_ping_sent) + options.ping_interval:
            self._ping()

    def _publisher_idle_deadline(self) -> float | None:
        """When this connection's publish goes stale: the last audio or video on any of its
        publishing streams (or their publish start) plus publisher_idle_timeout; None when
        it publishes nothing or the rule is off."""
        limit = self._server.options.publisher_idle_timeout
        if limit <= 0:
            return None
        latest = max((stream.media_received_at for stream in self._streams.values() if stream.publishing),
                     default=None)
        return None if latest is None else latest + limit

    def _drop_idle_publisher(self) -> None:
        """Close a publisher that sent no media for publisher_idle_timeout, as if it had
        dropped: its streams end through the disconnect path and its names are free."""
        limit = self._server.options.publisher_idle_timeout
        names = ", ".join(repr(f"{self.app_name}/{stream.get_stream_name(query=False)}")
                          for stream in self._streams.values() if stream.publishing)
        log.warning("%s: publisher idle for %g s: no audio or video on %s; closing", self._peer, limit, names)
        self.close(f"timeout: publisher idle for {limit:g} s, no media")

    def _timeout(self, reason: str) -> None:
        log.info("%s: timeout: %s; closing", self._peer, reason)
        self.close(f"timeout: {reason}")

    def _ping(self) -> None:
        now = time.monotonic()
        stamp = int(now * 1000) & 0xFFFFFFFF
        self._last_ping_sent = now
        self._ping_sent_at = {stamp: now}
        self._protocol.send_ping(stamp)
        self.flush()

    def _on_outbox_failure(self, reason: str) -> None:
        if not self._closed:
            log.warning("%s: %s; dropping the connection", self._peer, reason)
            self.close(reason)

    def _teardown(self) -> None:
        self._closed = True
        for stream in list(self._streams.values()):
            self._end_stream(stream, delete=True)
        self._streams.clear()
        if self._owner is not None and self._connect_event is not None:
            try:
                call_handler(self._owner, False, self, self._connect_event.command_object,
                             self._connect_event.arguments)
            except Exception:
                log.exception("%s: connect handler raised on close", self._peer)
        self._outbox.close(flush_timeout=_CLOSE_FLUSH_SECONDS if self._close_reason.startswith("refused") else 0)
        try:
            self._sock.close()
        except OSError:
            pass
        for f in (self._io_in, self._io_out):
            if f is not None:
                f.close()
        log.info("%s disconnected (%s)", self._peer, self._close_reason or "closed")

    def _open_io_logs(self, directory: str | None) -> tuple[BinaryIO | None, BinaryIO | None]:
        if not directory:
            return None, None
        os.makedirs(directory, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        peer = self._peer.replace(":", "_").replace("[", "").replace("]", "")
        base = os.path.join(directory, f"{stamp}-conn{self.connection_id:05d}-{peer}")
        return open(base + "-in.bin", "wb"), open(base + "-out.bin", "wb")

    # -- event handlers ---------------------------------------------------------------

    def _on_out_of_state(self, event: ev.CommandOutOfState) -> None:
        """A command the protocol's state table refused: drop a client that skips
        connect; answer a publish or play on a stream it does not have (so it does not
        wait for its own timeout); ignore (and log) any other."""
        if event.before_connect:
            log.warning("%s: %s; dropping the connection", self._peer, event.reason)
            self.close(event.reason)
        else:
            self._refuse_out_of_state(event.command, event.reason)

    def _refuse_out_of_state(self, command: ev.Event, reason: str) -> None:
        """The peer sent a stream command out of sequence: its fault, answered with a
        failure status where the command expects one."""
        if isinstance(command, ev.PublishRequested):
            log.info("%s: %s; refused", self._peer, reason)
            self._protocol.reject_publish(command, StatusCode.PUBLISH_FAILED, f"400 {reason}")
        elif isinstance(command, ev.PlayRequested):
            log.info("%s: %s; refused", self._peer, reason)
            self._protocol.reject_play(command, StatusCode.PLAY_FAILED, f"400 {reason}")
        else:
            log.info("%s: %s ignored", self._peer, reason)

    def _stream_for(self, event: ev.PublishRequested | ev.PlayRequested | ev.PauseRequested
                    | ev.ReceiveAudioRequested | ev.ReceiveVideoRequested, name: str) -> Stream | None:
        """The stream a command is for; None (answered) when there is none: a command
        pipelined behind a createStream the server refused."""
        stream = self._streams.get(event.message_stream_id)
        if stream is None:
            self._refuse_out_of_state(event, f"{name} on stream {event.message_stream_id}, which is not open")
        return stream

    def _on_connect(self, event: ev.ConnectRequested) -> None:
        if self._connect_event is not None:
            log.warning("%s: second connect command ignored", self._peer)
            return
        self._connect_event = event
        refusal: Refusal | None = None
        for handler in self._server.get_connect_handlers():
            result = call_handler(handler, True, self, event.command_object, event.arguments)
            if isinstance(result, Refusal):
                refusal = result
                break
            if result:
                self._owner = handler
                break
        if self._owner is None:
            if refusal is not None:
                log.info("%s: connect to %r refused: %s", self._peer, redact_query(event.app), refusal.description)
                self._protocol.reject_connect(event, refusal.description or "Connection rejected.")
                self._close_reason = f"refused: {refusal.description}"
            else:
                log.info("%s: connect to %r refused by every connect handler", self._peer, event.app)
                self._protocol.reject_connect(event)
                self._close_reason = "refused: no connect handler accepted it"
            self.flush()
            self._closed = True
            return
        self._protocol.accept_connect(event, fourcc_list=list(self._server.options.fourcc_list),
                                      capabilities=self.server_capabilities)
        log.info("%s connected to app %r", self._peer, event.app)
        self._ping()

    def _on_create_stream(self, event: ev.CreateStreamRequested) -> None:
        stream = Stream(self, self._protocol.stream_id_for(event), event.command_object)
        if self._stream_handler is not None and not call_handler(self._stream_handler, True, stream,
                                                                 event.command_object):
            self._protocol.reject_create_stream(event)
            return
        self._streams[stream.stream_id] = stream
        self._protocol.accept_create_stream(event, stream.stream_id)

    def _on_delete_stream(self, event: ev.DeleteStreamRequested) -> None:
        stream = self._streams.pop(event.stream_id, None)
        if stream is not None:
            self._end_stream(stream, delete=True)

    def _on_close_stream(self, event: ev.CloseStreamRequested) -> None:
        stream = self._streams.get(event.message_stream_id)
        if stream is not None:
            self._end_stream(stream, delete=False)

    def _end_stream(self, stream: Stream, delete: bool) -> None:
        """Stop playing/publishing on a stream; on delete (or disconnect) close it and
        tell the stream handler."""
        was_open = not stream.closed
        stream.end(delete)
        if delete and was_open and self._stream_handler is not None:
            try:
                call_handler(self._stream_handler, False, stream, None)
            except Exception:
                log.exception("%s: stream handler raised while closing %s", self._peer, stream)

    def _on_publish(self, event: ev.PublishRequested) -> None:
        stream = self._stream_for(event, "publish")
        if stream is not None:
            stream.start_publish(event)

    def _on_fc_unpublish(self, event: ev.FCUnpublishRequested) -> None:
        for stream in self._streams.values():
            if stream.publishing and stream.get_stream_name() == event.name:
                stream.stop_publish()
        if event.transaction_id:
            self._protocol.send_result(event.transaction_id, None)

    def _on_published(self, event: ev.VideoReceived | ev.AudioReceived | ev.DataReceived) -> None:
        stream = self._streams.get(event.message_stream_id)
        if stream is not None and not self._closing:
            stream.deliver(event)

    def _on_play(self, event: ev.PlayRequested) -> None:
        stream = self._stream_for(event, "play")
        if stream is not None:
            stream.start_play(event)

    def _on_pause(self, event: ev.PauseRequested) -> None:
        stream = self._stream_for(event, "pause")
        if stream is not None:
            stream.set_paused(event)

    def _on_receive_media(self, event: ev.ReceiveAudioRequested | ev.ReceiveVideoRequested) -> None:
        stream = self._stream_for(event, "receiveAudio/receiveVideo")
        if stream is not None:
            stream.set_receive(event)

    def _call_handler_for(self, name: str) -> CallHandler | None:
        return self._call_handlers.get(name, self._call_handlers.get(None))

    def _on_call(self, event: ev.CallReceived) -> None:
        handler = self._call_handler_for(event.name)
        if handler is None:
            if event.transaction_id:
                self._protocol.send_error(event.transaction_id, None, status_info(
                    "error", StatusCode.CALL_FAILED, f"Method not found ({event.name})."),
                    message_stream_id=event.message_stream_id)
            return
        try:
            result = call_handler(handler, self, event.name, event.command_object, event.arguments)
            ok, response = result if isinstance(result, tuple) else (bool(result), None)
        except Exception:
            log.exception("%s: call handler for %r raised", self._peer, event.name)
            ok, response = False, status_info("error", StatusCode.CALL_FAILED, f"{event.name} failed.")
        if not event.transaction_id:
            return
        if ok:
            self._protocol.send_result(event.transaction_id, None, response,
                                       message_stream_id=event.message_stream_id)
        else:
            if response is None:
                response = status_info("error", StatusCode.CALL_FAILED, f"{event.name} failed.")
            self._protocol.send_error(event.transaction_id, None, response,
                                      message_stream_id=event.message_stream_id)

    def _on_fmle_command(self, event: Any) -> None:
        """releaseStream, FCPublish, FCSubscribe, _checkbw: answered as FMS does."""
        if isinstance(event, ev.FCPublishRequested):
            self._protocol.send_command("onFCPublish", 0, None, status_info(
                "status", StatusCode.PUBLISH_START, f"FCPublish to stream {event.name}."))
        elif isinstance(event, ev.FCSubscribeRequested):
            self._protocol.send_command("onFCSubscribe", 0, None, status_info(
                "status", StatusCode.PLAY_START, f"FCSubscribe to stream {event.name}."))
        if event.transaction_id:
            self._protocol.send_result(event.transaction_id, None)

    def _on_get_stream_length(self, event: ev.GetStreamLengthRequested) -> None:
        if event.transaction_id:
            self._protocol.send_result(event.transaction_id, None, 0.0, message_stream_id=event.message_stream_id)

    def _on_ping_response(self, event: ev.PingResponseReceived) -> None:
        sent = self._ping_sent_at.pop(event.timestamp, None)
        if sent is not None:
            self.rtt_ms = (time.monotonic() - sent) * 1000

    #: Which method handles each protocol event (one table for every connection).
    _DISPATCH: dict[type, Callable[[Connection, Any], None]] = {
        ev.ConnectRequested: _on_connect,
        ev.CommandOutOfState: _on_out_of_state,
        ev.CreateStreamRequested: _on_create_stream,
        ev.DeleteStreamRequested: _on_delete_stream,
        ev.CloseStreamRequested: _on_close_stream,
        ev.PublishRequested: _on_publish,
        ev.FCUnpublishRequested: _on_fc_unpublish,
        ev.PlayRequested: _on_play,
        ev.PauseRequested: _on_pause,
        ev.CallReceived: _on_call,
        ev.ReleaseStreamRequested: _on_fmle_command,
        ev.FCPublishRequested: _on_fmle_command,
        ev.FCSubscribeRequested: _on_fmle_command,
        ev.CheckBandwidthRequested: _on_fmle_command,
        ev.GetStreamLengthRequested: _on_get_stream_length,
        ev.VideoReceived: _on_published,
        ev.AudioReceived: _on_published,
        ev.DataReceived: _on_published,
        ev.PingResponseReceived: _on_ping_response,
        ev.ReceiveAudioRequested: _on_receive_media,
        ev.ReceiveVideoRequested: _on_receive_media,
    }
