"""Stream: one RTMP NetStream on a connection (neuray `IStream`).

A Stream owns its NetStream state (publishing, playing, paused, closed), its handlers
and its encoder. Its connection hands it the stream's commands (`start_publish`,
`start_play`, `set_paused`, `end`, ...) and published messages (`deliver`); the stream
answers through the connection's narrow output interface (`enqueue`, `out_chunk_size`,
`protocol`, `flush`) and never touches the connection's internals.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import gevent

from neurtmp._chains import HandlerChain
from neurtmp._encoding import StreamEncoder
from neurtmp._handler import call_handler
from neurtmp._play_hold import PlayHold
from neurtmp._render import StreamLoops
from neurtmp.codec import VideoData, create_video_encoder
from neurtmp.errors import ConnectionClosed, EncodeError
from neurtmp.handlers import (
    FrameHandler,
    MediaHandler,
    PauseHandler,
    PlayHandler,
    PublishHandler,
    Refusal,
    RenderHandler,
)
from neurtmp.names import redact_query, split_query
from neurtmp.protocol import amf0
from neurtmp.protocol import events as ev
from neurtmp.protocol.commands import StatusCode
from neurtmp.protocol.control import UserControl
from neurtmp.protocol.message import MessageType
from neurtmp.protocol.netstream import NetStreamCommand, NetStreamState, next_state
from neurtmp.protocol.packet import DataPacket, Packet, RtmpChunks, absent_track_metadata

if TYPE_CHECKING:
    from neurtmp.connection import Connection
    from neurtmp.fanout import FanOut, WireLog

__all__ = ["DEFAULT_VIDEO_CODEC", "Stream"]

log = logging.getLogger(__name__)

#: Renders per second when the `render_rate` property is not set.
DEFAULT_RENDER_RATE = 30.0

#: Properties the framework reads; any other key must start with "user_".
RESERVED_PROPERTIES = ("render_rate", "frame_rate")

#: Codec names meaning "send what the frame handler returns as it is".
_PASS_THROUGH_CODECS = ("none", "")

#: The codec a stream encodes with when its handlers never chose one (neuray's
#: `get_video_codec()` hands out a working encoder); another known one if it is missing.
DEFAULT_VIDEO_CODEC = "h264"

_VIDEO = int(MessageType.VIDEO)
_AUDIO = int(MessageType.AUDIO)
_MEDIA_TYPES = {ev.VideoReceived: MessageType.VIDEO, ev.AudioReceived: MessageType.AUDIO}
#: Message types that count as a publisher's media (what keeps it from being idle).
_MEDIA_TYPE_IDS = frozenset((_VIDEO, _AUDIO))


def _positive_rate(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1000:
        raise ValueError(f"{key} must be a number of calls per second in (0, 1000], not {value!r}")
    return float(value)


class Stream:
    """One NetStream: its handlers, properties, and the methods that send media to it.

    Created by the framework on createStream; handed to stream, play, pause, render,
    frame, publish and media handlers. Keeping a reference is safe. Once it is closed
    (deleteStream or disconnect), what would change it (`register_*`, `set_property`,
    `use_codec`, `send_*`) raises `ConnectionClosed`; reading (`get_*`) still works.
    """

    def __init__(self, connection: Connection, stream_id: int, command_arguments: Any = None) -> None:
        self._connection = connection
        # The connection's output, held for the fan-out path (the chunk size is set at
        # connect, before any stream exists).
        self._enqueue = connection.enqueue
        self._chunk_size = connection.out_chunk_size
        self.stream_id = stream_id
        self.command_arguments = command_arguments
        self._name = ""
        self._properties: dict[str, Any] = {}
        #: The codec chosen with `use_codec`; None: not chosen (the default is made on demand).
        self._codec: str | None = None
        self._encoder: StreamEncoder | None = None
        #: The NetStream state; every change goes through `_move` and the protocol's table.
        self._state = NetStreamState.IDLE
        self.publish_type = ""
        #: When the publish started or its last audio or video came (monotonic).
        self._media_at = 0.0
        self._play_started = 0.0
        self._play_handler: PlayHandler | None = None
        self._pause_handler: PauseHandler | None = None
        self._render_handler: RenderHandler | None = None
        self._frame_handler: FrameHandler | None = None
        server = connection.get_server()
        #: This stream's chains, then the server's (held by reference: they follow changes).
        self._publish_chain: HandlerChain[PublishHandler] = HandlerChain()
        self._media_chain: HandlerChain[MediaHandler] = HandlerChain()
        self._server_publish_chain = server.publish_chain
        self._server_media_chain = server.media_chain
        self._play_observers = server.play_observers
        self._access_chain = server.access_chain
        self._accepted_publish: list[PublishHandler] = []
        self._loops: StreamLoops | None = None
        self._play_timer: gevent.Greenlet | None = None
        #: Audio sent during this play; a rendered stream without it says it has none.
        self._audio_sent = False
        self._told_no_audio = False
        #: receiveAudio / receiveVideo from the player: False turns that media off.
        self.receive_audio = True
        self.receive_video = True
        #: While a play handler runs: what it sends, released after Play.Start.
        self._hold: PlayHold | None = None
        self._hold_limit = server.options.outqueue_hard_limit
        #: Video messages of a fast start (or a play handler's output) cut by the send
        #: queue's hard limit.
        self.fast_start_dropped = 0
        #: The `neurtmp.FanOut` this player is in, if any (told when receiveAudio/Video change).
        self.group: FanOut | None = None

    def __repr__(self) -> str:
        return f"<Stream {self.stream_id} {redact_query(self._name)!r} on {self._connection.get_peer_address()}>"

    # -- identity and state -------------------------------------------------------------

    def get_stream_name(self, query: bool = True) -> str:
        """The name given in play or publish ("" before either); without its query string
        ("cam?key=1" -> "cam") when `query` is False."""
        return self._name if query else split_query(self._name)[0]

    def get_connection(self) -> Connection:
        return self._connection

    def rename(self, name: str) -> None:
        """Give the stream another name while its publish or play is being decided (from an
        access handler, or a publish handler for the ones after it): the handlers asked
        next, and the stream from then on, see `name` (an access hook's redirect).

        Raises:
            ValueError: an empty name, or the stream already publishes or plays.
            ConnectionClosed: the stream is closed.
        """
        self._check_open()
        if not split_query(name)[0].strip():
            raise ValueError("a stream cannot be renamed to an empty name")
        if self._state is not NetStreamState.IDLE:
            raise ValueError(f"stream {self.stream_id} is {self._state.value}: it can be renamed only while "
                             "its publish or play is being decided")
        self._name = name

    @property
    def out_chunk_size(self) -> int:
        """The chunk size of what this stream's client receives (for `Packet.wire`)."""
        return self._chunk_size

    @property
    def wire_format(self) -> RtmpChunks:
        """What this player reads: RTMP chunks of its chunk size on its message stream."""
        return RtmpChunks(self._chunk_size, self.stream_id)

    @property
    def state(self) -> NetStreamState:
        """The NetStream state (see `neurtmp.protocol.netstream`)."""
        return self._state

    @property
    def closed(self) -> bool:
        return self._state is NetStreamState.CLOSED

    @property
    def playing(self) -> bool:
        """A play was accepted and has not stopped (paused or not)."""
        return self._state in (NetStreamState.PLAYING, NetStreamState.PAUSED)

    @property
    def paused(self) -> bool:
        return self._state is NetStreamState.PAUSED

    @property
    def publishing(self) -> bool:
        """A publish was accepted and has not stopped."""
        return self._state is NetStreamState.PUBLISHING

    @property
    def media_received_at(self) -> float:
        """When (`time.monotonic()`) the last audio or video message was published on this
        stream, or the publish started if none came since; data messages (metadata) do not
        count. 0.0 if it never published. Stale publishers are judged by it (see
        `ServerOptions.publisher_idle_timeout`)."""
        return self._media_at

    def _move(self, command: NetStreamCommand) -> bool:
        """Apply `command` through the state table; False (nothing changes) when the
        table does not allow it in the current state."""
        state = next_state(self._state, command)
        if state is None:
            return False
        self._state = state
        return True

    def _check_open(self) -> None:
        if self.closed:
            raise ConnectionClosed(f"stream {self.stream_id} ({self._name or 'unnamed'}) is closed")

    # -- handlers ---------------------------------------------------------------------

    def register_play_event_handler(self, handler: PlayHandler) -> None:
        self._check_open()
        self._play_handler = handler

    def register_pause_event_handler(self, handler: PauseHandler) -> None:
        self._check_open()
        self._pause_handler = handler

    def register_render_event_handler(self, handler: RenderHandler) -> None:
        self._check_open()
        self._render_handler = handler
        self._restart_loops()

    def register_frame_event_handler(self, handler: FrameHandler) -> None:
        self._check_open()
        self._frame_handler = handler
        self._restart_loops()

    def register_publish_event_handler(self, handler: PublishHandler) -> None:
        """neurtmp extension: add a publish observer to this stream's chain.

        Observers are asked in the order added (then the server's, see
        `Server.register_publish_event_handler`); every one must accept a publish. See
        `PublishEventHandler`.
        """
        self._check_open()
        self._publish_chain.add(handler)

    def remove_publish_event_handler(self, handler: PublishHandler) -> None:
        self._publish_chain.remove(handler)

    def register_media_event_handler(self, handler: MediaHandler) -> None:
        """neurtmp extension: add a receiver of published audio/video/data to the chain."""
        self._check_open()
        self._media_chain.add(handler)

    def remove_media_event_handler(self, handler: MediaHandler) -> None:
        self._media_chain.remove(handler)

    # -- properties -------------------------------------------------------------------

    def set_property(self, key: str, value: Any) -> None:
        """Set a property: `render_rate` / `frame_rate` (calls per second), or a `user_` key.

        Raises:
            KeyError: an unknown key that does not start with "user_".
            ValueError: a bad value for a reserved key.
            ConnectionClosed: the stream is closed.
        """
        self._check_open()
        if key in RESERVED_PROPERTIES:
            self._properties[key] = _positive_rate(key, value)
            self._restart_loops()
        elif key.startswith("user_"):
            self._properties[key] = value
        else:
            raise KeyError(f"unknown stream property {key!r} (user keys start with 'user_')")

    def get_property(self, key: str) -> Any:
        """A property's value; `render_rate` has a default, `frame_rate` follows it.

        Raises:
            KeyError: the property is not set and has no default.
        """
        if key == "render_rate":
            return self._properties.get(key, DEFAULT_RENDER_RATE)
        if key == "frame_rate":
            return self._properties.get(key, self.get_property("render_rate"))
        return self._properties[key]

    # -- codec ------------------------------------------------------------------------

    def use_codec(self, name: str) -> bool:
        """Choose the video encoder for this stream's frames; False when unknown.

        With an encoder, frame handlers may return canvases (NumPy arrays); the frame
        worker encodes them off the hub and sends the sequence header whenever the
        encoder is (re)initialised. "none" sends what frame handlers return unchanged.
        The previous encoder is closed once the frame it may be encoding is done.
        """
        self._check_open()
        key = name.lower()
        if key in _PASS_THROUGH_CODECS:
            encoder = None
        else:
            encoder = create_video_encoder(key)
            if encoder is None:
                return False
        if self._encoder is not None:
            self._encoder.release()
        self._encoder = StreamEncoder(encoder) if encoder is not None else None
        self._codec = "none" if encoder is None else key
        return True

    @property
    def codec_name(self) -> str:
        """The chosen codec's name: "none" for pass-through, "" when none was chosen yet
        (the default is made by `get_video_codec`)."""
        return self._codec or ""

    def get_video_codec(self) -> StreamEncoder | None:
        """The stream's encoder (neuray `IStream::get_video_codec`), or None for "none".

        When no handler chose a codec, the default (`DEFAULT_VIDEO_CODEC`, h264) is made
        on first use, so a frame handler ported from neuray's example
        (``return stream.get_video_codec().encode_canvas(canvas)``) streams as it is.
        Its name: ``get_video_codec().get_identifier()``.

        It has the encoder interface (`init`, `encode_canvas`, `set_parameter`, ...) and
        is safe to use from any handler: calls run one at a time, off the hub. As in
        neuray, a play handler may `init(width, height)` it (returning the sequence
        header as its init frame) and a frame handler may return
        `encode_canvas(canvas)`; a frame handler may also just return the canvas.
        """
        if self._codec is None and self._encoder is None and not self.closed:
            self.use_codec(DEFAULT_VIDEO_CODEC)
        return self._encoder

    #: The same as `get_video_codec`.
    get_video_encoder = get_video_codec

    def encode_canvas(self, canvas: Any) -> list[VideoData]:
        """Encode a canvas with the stream's codec: [sequence header (on re-init)], frame.

        Runs in the thread pool through the stream's one encoder owner.

        Raises:
            EncodeError: no codec chosen, not a canvas, or the encoder failed.
        """
        encoder = self.get_video_codec()
        if encoder is None:
            raise EncodeError("the frame handler returned a canvas but the stream's codec is \"none\" (use_codec)")
        return encoder.encode(canvas)

    # -- sending ----------------------------------------------------------------------

    def clock(self) -> int:
        """Milliseconds since play started: the timestamp frames are sent with."""
        return int((time.monotonic() - self._play_started) * 1000) if self._play_started else 0

    def queue_wire(self, wire: bytes, priority: int, burst: bool = False) -> bool:
        """Queue a message's wire bytes (built for this stream); False when dropped.

        `burst`: part of a player's fast start (see `send_fast_start`)."""
        if self._hold is not None:  # sent by a play handler: goes out after Play.Start
            return self._hold.hold(wire, priority)
        return self._enqueue(wire, priority, burst=burst)

    def _takes(self, packet: Packet) -> bool:
        type_id = packet.type_id
        return not (self.closed or (type_id == _VIDEO and not self.receive_video) or (
            type_id == _AUDIO and not self.receive_audio))

    def queue_packet(self, packet: Packet) -> bool | None:
        """The fan-out step for one player: queue the packet's shared wire bytes.

        Returns None when this player does not take it (closed, or that kind of media
        turned off), else whether it was queued (False: the slow-player policy dropped it).
        """
        if not self._takes(packet):
            return None
        wire = packet.wire(self._chunk_size, self.stream_id)
        if self._hold is not None:
            return self._hold.hold(wire, packet.priority)
        return self._enqueue(wire, packet.priority)

    def send_fast_start(self, packets: Iterable[Packet]) -> int:
        """Queue what a player needs to start (metadata, sequence headers, a cached GOP)
        as one burst: whole, past the soft limit where slow players lose video. Only the
        send queue's hard limit cuts it, at video, so that the next video the player
        gets is a key frame. From a play handler it goes out right after Play.Start.

        Returns:
            how many video messages were cut (0 when the whole burst was queued).

        Raises:
            ConnectionClosed: the stream or its connection is closed.
        """
        self._check_open()
        self._connection.check_open()
        dropped = 0
        for packet in packets:
            if self._takes(packet):
                wire = packet.wire(self._chunk_size, self.stream_id)
                if not self.queue_wire(wire, packet.priority, burst=True):
                    dropped += 1
        if dropped:
            log.info("%s: fast start cut by %d video messages (send queue hard limit %d bytes)",
                     self, dropped, self._hold_limit)
            if self._hold is None:  # (a hold counts its own cuts, added at the release)
                self.fast_start_dropped += dropped
        return dropped

    def send_packet(self, packet: Packet) -> bool:
        """Send a media/data packet, sharing its wire bytes with every other player.

        Returns False when the slow-player policy dropped it, or the player turned that
        kind of media off.

        Raises:
            ConnectionClosed: the stream or its connection is closed.
        """
        self._check_open()
        self._connection.check_open()
        queued = self.queue_packet(packet) is True
        if packet.is_audio:
            self._audio_sent = True
        elif packet.is_sequence_header and packet.is_video and self._frame_handler is not None \
                and not self._audio_sent and not self._told_no_audio:
            # A rendered stream is video alone unless its handlers sent audio first: say
            # so, or ffmpeg players wait ~5 s for audio before the first picture.
            self._told_no_audio = True
            self.queue_packet(absent_track_metadata("audio"))
        return queued

    def send_video(self, payload: bytes | VideoData, timestamp: int | None = None) -> bool:
        """Send one video message (FLV video tag body); the stream clock by default."""
        data = payload.data if isinstance(payload, VideoData) else payload
        return self.send_packet(Packet(MessageType.VIDEO, self.clock() if timestamp is None else timestamp, data))

    def send_audio(self, payload: bytes, timestamp: int | None = None) -> bool:
        """Send one audio message (FLV audio tag body); the stream clock by default."""
        return self.send_packet(Packet(MessageType.AUDIO, self.clock() if timestamp is None else timestamp, payload))

    def send_data(self, name: str, *values: Any, timestamp: int = 0) -> bool:
        """Send a data message, e.g. ``send_data("onMetaData", {...})``."""
        payload = amf0.encode_all((name, *values))
        return self.send_packet(Packet(MessageType.DATA_AMF0, timestamp, payload))

    def send_status(self, code: str, description: str = "", level: str = "status", **extra: Any) -> None:
        """Send onStatus on this stream (e.g. NetStream.Play.UnpublishNotify)."""
        self._check_open()
        self._connection.check_open()
        self._connection.protocol.send_status(self.stream_id, code, description, level, **extra)
        self._connection.flush()

    def outqueue_is_full(self) -> bool:
        """True when the client is not draining what was sent (see FrameEventHandler)."""
        return self._connection.outqueue_is_full()

    def follow(self, log: WireLog) -> bool:
        """Have the player's connection send `log` (a `FanOut`'s shared wire bytes) from
        now on, after what was sent before; False when it cannot (closed, RTMPS, or it
        follows another log). From a play handler, it starts after Play.Start; should it
        fail then, the stream's group serves it message by message instead."""
        if self.closed or not self._connection.can_follow():
            return False
        if self._hold is not None:
            return self._hold.defer_follow(log)
        return self._connection.follow(log)

    def unfollow(self, log: WireLog) -> None:
        """Stop following `log`; what it holds for this player still goes out."""
        if self._hold is not None and self._hold.follow is log:
            self._hold.follow = None
        else:
            self._connection.unfollow(log)

    # -- the NetStream state machine (called by the connection) -----------------------

    def start_publish(self, event: ev.PublishRequested) -> None:
        """`publish`: ask the publish chain (this stream's, then the server's); every
        observer must accept. One that refuses undoes the ones before it."""
        protocol = self._connection.protocol
        if next_state(self._state, NetStreamCommand.PUBLISH) is None:
            protocol.reject_publish(event, StatusCode.PUBLISH_BAD_NAME,
                                    f"stream is already in use ({self._state.value})")
            return
        if not split_query(event.name)[0].strip():
            log.info("%s: publish with an empty stream name refused", self._connection.get_peer_address())
            protocol.reject_publish(event, StatusCode.PUBLISH_BAD_NAME, "400 empty stream name")
            return
        self._name = event.name
        self.publish_type = event.publish_type
        refusal = self._ask_access("publish", StatusCode.PUBLISH_REJECTED)
        if refusal is not None:
            log.info("%s: publish %r refused: %s", self._connection.get_peer_address(), redact_query(event.name),
                     refusal.description)
            protocol.reject_publish(event, refusal.code, refusal.description)
            return
        accepted: list[PublishHandler] = []
        for handler in (*self._publish_chain, *self._server_publish_chain):
            result = call_handler(handler, True, self, self._name, event.publish_type)
            if not result:
                log.info("%s: publish %r refused%s", self._connection.get_peer_address(), redact_query(event.name),
                         f": {result.description}" if isinstance(result, Refusal) else "")
                self._tell_unpublished(accepted)
                if isinstance(result, Refusal):
                    protocol.reject_publish(event, result.code, result.description)
                else:
                    protocol.reject_publish(event)
                return
            accepted.append(handler)
        self._move(NetStreamCommand.PUBLISH)
        self._media_at = time.monotonic()
        self._accepted_publish = accepted
        protocol.accept_publish(event)
        log.debug("%s publishes %r", self._connection.get_peer_address(), redact_query(event.name))

    def _ask_access(self, action: str, code: str) -> Refusal | None:
        """The server's access handlers on a publish or play: None when all let it go
        on, else the refusal (`code` for a plain False; an exception refuses too)."""
        for handler in self._access_chain.handlers:
            try:
                result = call_handler(handler, action, self)
            except Exception:
                log.exception("%s: access handler raised; %s refused", self, action)
                return Refusal(code, "500 access check failed")
            if isinstance(result, Refusal):
                return result
            if not result:
                return Refusal(code, "403 access refused")
        return None

    def _tell_unpublished(self, handlers: list[PublishHandler]) -> None:
        for handler in handlers:
            try:
                call_handler(handler, False, self, self._name, self.publish_type)
            except Exception:
                log.exception("%s: publish handler raised on unpublish", self)

    def stop_publish(self) -> None:
        """Unpublish (FCUnpublish, closeStream, deleteStream or disconnect)."""
        if self._move(NetStreamCommand.UNPUBLISH):
            accepted, self._accepted_publish = self._accepted_publish, []
            self._tell_unpublished(accepted)

    def deliver(self, event: ev.VideoReceived | ev.AudioReceived | ev.DataReceived) -> None:
        """A message the client published: to the media chain (this stream's, then the
        server's). Data messages arrive decoded, as a `DataPacket`."""
        if self._state is not NetStreamState.PUBLISHING:  # the table: media only while publishing
            return
        if isinstance(event, ev.DataReceived):
            packet: Packet = DataPacket.published(event.timestamp, event.name, event.values, event.payload)
        else:
            packet = Packet(_MEDIA_TYPES[type(event)], event.timestamp, event.payload)
        self.receive_packet(packet)

    def receive_packet(self, packet: Packet) -> None:
        """Hand the media chain a message as if this stream's client had published it
        (in-process publishers: see `Server.publish_local`); ignored unless publishing."""
        if self._state is not NetStreamState.PUBLISHING:
            return
        if packet.type_id in _MEDIA_TYPE_IDS:
            self._media_at = time.monotonic()
        for handler in self._media_chain.handlers:
            call_handler(handler, self, packet)
        for handler in self._server_media_chain.handlers:
            call_handler(handler, self, packet)

    def start_play(self, event: ev.PlayRequested) -> None:
        """`play`: the play handler decides; what it sends goes out after Play.Start."""
        connection = self._connection
        protocol = connection.protocol
        if next_state(self._state, NetStreamCommand.PLAY) is None:
            protocol.reject_play(event, StatusCode.PLAY_FAILED, f"stream is {self._state.value}")
            return
        if self.playing:  # play again on the same stream: stop the first
            self.stop_play()
        self._name = event.name
        refusal = self._ask_access("play", StatusCode.PLAY_FAILED)
        if refusal is not None:
            log.info("%s: play %r refused: %s", connection.get_peer_address(), redact_query(event.name),
                     refusal.description)
            protocol.reject_play(event, refusal.code, refusal.description)
            return
        if self._encoder is not None:
            self._encoder.restart()  # a new player needs a sequence header (unless the handler inits)
        self._hold = PlayHold(self._hold_limit)
        self._audio_sent = self._told_no_audio = False
        try:
            result = True if self._play_handler is None else call_handler(self._play_handler, True, self)
        finally:
            hold, self._hold = self._hold, None
        accepted, init = result if isinstance(result, tuple) else (result, None)
        if not accepted:
            log.info("%s: play %r refused%s", connection.get_peer_address(), redact_query(event.name),
                     f": {accepted.description}" if isinstance(accepted, Refusal) else "")
            if isinstance(accepted, Refusal):
                protocol.reject_play(event, accepted.code, accepted.description)
            else:
                protocol.reject_play(event)
            return
        protocol.accept_play(event)
        connection.flush()
        for wire, priority in hold.messages:
            connection.enqueue(wire, priority, burst=True)
        self.fast_start_dropped += hold.dropped
        if hold.follow is not None and not connection.follow(hold.follow) and self.group is not None:
            log.info("%s: cannot follow its group's shared log; served message by message", self)
            self.group.regroup(self)
        self._move(NetStreamCommand.PLAY)
        self._play_started = time.monotonic()
        if init is not None:
            self.send_video(init)
        self._start_loops()
        if event.duration > 0:  # rtmpdump --stop N: play that long (ms on the wire), then Play.Stop
            self._play_timer = gevent.spawn_later(event.duration / 1000, self.finish_play, "duration reached")
        log.debug("%s plays %r", connection.get_peer_address(), redact_query(event.name))
        self._tell_play_observers(True)

    def _tell_play_observers(self, is_start: bool) -> None:
        for observer in self._play_observers.handlers:
            try:
                call_handler(observer, is_start, self)
            except Exception:
                log.exception("%s: play observer raised", self)

    def stop_play(self) -> None:
        """Stop playing (closeStream, a new play, deleteStream or disconnect): the play
        handler is told; no status is sent."""
        if self._play_timer is not None:
            timer, self._play_timer = self._play_timer, None
            if timer is not gevent.getcurrent():
                timer.kill(block=False)
        self._stop_loops()
        if self._move(NetStreamCommand.STOP):
            try:
                if self._play_handler is not None:
                    call_handler(self._play_handler, False, self)
            finally:
                self._tell_play_observers(False)

    def finish_play(self, reason: str = "") -> None:
        """End the play from the server side (duration reached, a render or frame handler
        ended it): the play handler is told, the player gets StreamEOF and Play.Stop."""
        if not self.playing:
            return
        try:
            self.stop_play()
        except Exception:
            log.exception("%s: play handler raised on stop", self)
        connection = self._connection
        if not connection.closed:
            protocol = connection.protocol
            protocol.send_user_control(UserControl.STREAM_EOF, self.stream_id)
            protocol.send_status(self.stream_id, StatusCode.PLAY_STOP, f"Stopped playing {self._name}.",
                                 details=self._name)
            connection.flush()
        log.info("%s: stopped playing %r (%s)", connection.get_peer_address(), redact_query(self._name),
                 reason or "ended")

    def end_for_shutdown(self) -> None:
        """The server is shutting down: a player gets UnpublishNotify, StreamEOF and
        Play.Stop, a publisher Unpublish.Success; their handlers are told as usual."""
        if self.closed or self._connection.closed:
            return
        protocol = self._connection.protocol
        if self.playing:
            protocol.send_status(self.stream_id, StatusCode.PLAY_UNPUBLISH_NOTIFY,
                                 f"{self._name} is now unpublished (server shutting down).", details=self._name)
            self.finish_play("server shutting down")
        elif self.publishing:
            self.stop_publish()
            protocol.send_status(self.stream_id, StatusCode.UNPUBLISH_SUCCESS,
                                 f"{self._name} is now unpublished (server shutting down).", details=self._name)
            self._connection.flush()

    def set_paused(self, event: ev.PauseRequested) -> None:
        """`pause` / resume: the pause handler decides; render and frame calls stop or restart."""
        command = NetStreamCommand.PAUSE if event.paused else NetStreamCommand.RESUME
        after = next_state(self._state, command)
        if after is None or after is self._state:  # not playing, or no change
            return
        if self._pause_handler is not None and not call_handler(self._pause_handler, event.paused, self):
            return
        self._move(command)
        protocol = self._connection.protocol
        if event.paused:
            self._stop_loops()
            protocol.send_status(self.stream_id, StatusCode.PAUSE_NOTIFY, f"Paused {self._name}.")
        else:
            self._start_loops()
            protocol.send_status(self.stream_id, StatusCode.UNPAUSE_NOTIFY, f"Unpaused {self._name}.")

    def set_receive(self, event: ev.ReceiveAudioRequested | ev.ReceiveVideoRequested) -> None:
        """receiveAudio / receiveVideo: the player turns one kind of media off or on."""
        if isinstance(event, ev.ReceiveAudioRequested):
            self.receive_audio = event.enabled
        else:
            self.receive_video = event.enabled
        if self.group is not None:
            self.group.regroup(self)

    def end(self, delete: bool) -> None:
        """Stop playing and publishing; with `delete` (deleteStream, disconnect) also
        close the stream and its encoder. Handler errors are logged, not raised."""
        try:
            self.stop_play()
        except Exception:
            log.exception("%s: play handler raised on stop", self)
        self.stop_publish()
        if delete and self._move(NetStreamCommand.DELETE):
            self._stop_loops()
            if self._encoder is not None:
                self._encoder.release()

    # -- render and frame loops ---------------------------------------------------------

    def _restart_loops(self) -> None:
        if self._state is NetStreamState.PLAYING:
            self._start_loops()

    def _start_loops(self) -> None:
        self._stop_loops()
        if self._render_handler is None and self._frame_handler is None:
            return
        self._loops = StreamLoops(self, self._render_handler, self._frame_handler, self.finish_play)
        self._loops.start()

    def _stop_loops(self) -> None:
        if self._loops is not None:
            loops, self._loops = self._loops, None
            loops.stop()

