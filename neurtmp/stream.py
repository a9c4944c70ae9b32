"""Stream: one RTMP NetStream on a connection (neuray `IStream`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import gevent

from neurtmp import _outbox
from neurtmp._handler import call_handler
from neurtmp.codec import VideoData, create_video_encoder, flv
from neurtmp.errors import ConnectionClosed, EncodeError
from neurtmp.protocol import amf0
from neurtmp.protocol.message import MessageType
from neurtmp.protocol.packet import Packet

if TYPE_CHECKING:
    from neurtmp._render import StreamLoops
    from neurtmp.connection import Connection

__all__ = ["Stream", "broadcast", "packet_priority"]

log = logging.getLogger(__name__)

#: Renders per second when the `render_rate` property is not set.
DEFAULT_RENDER_RATE = 30.0

#: Properties the framework reads; any other key must start with "user_".
RESERVED_PROPERTIES = ("render_rate", "frame_rate")

#: Codec names meaning "send what the frame handler returns as it is".
_PASS_THROUGH_CODECS = ("none", "")


def packet_priority(packet: Packet) -> int:
    """How droppable a packet is for a slow player (computed once, kept on the packet)."""
    if packet.priority < 0:
        payload = packet.payload
        if packet.type_id == MessageType.VIDEO:
            if flv.is_video_sequence_header(payload):
                packet.priority = _outbox.CRITICAL
            elif flv.is_video_key_frame(payload):
                packet.priority = _outbox.VIDEO_KEY
            else:
                packet.priority = _outbox.VIDEO_INTER
        elif packet.type_id == MessageType.AUDIO:
            packet.priority = _outbox.CRITICAL if flv.is_audio_sequence_header(payload) else _outbox.AUDIO
        else:
            packet.priority = _outbox.CRITICAL
    return packet.priority


def _positive_rate(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1000:
        raise ValueError(f"{key} must be a number of calls per second in (0, 1000], not {value!r}")
    return float(value)


class Stream:
    """One NetStream: its handlers, properties, and the methods that send media to it.

    Created by the framework on createStream; handed to stream, play, pause, render,
    frame, publish and media handlers. Keeping a reference is safe; using it after it
    closed raises `ConnectionClosed`.
    """

    def __init__(self, connection: Connection, stream_id: int, command_arguments: Any = None) -> None:
        self._connection = connection
        self.stream_id = stream_id
        self.command_arguments = command_arguments
        self._name = ""
        self._properties: dict[str, Any] = {}
        self._codec = "none"
        self._encoder: Any = None
        self._closed = False
        self.playing = False
        self.paused = False
        self.publishing = False
        self.publish_type = ""
        self._play_started = 0.0
        self._play_handler: Any = None
        self._pause_handler: Any = None
        self._render_handler: Any = None
        self._frame_handler: Any = None
        self._publish_handler: Any = None
        self._media_handlers: list[Any] = []
        self._loops: StreamLoops | None = None
        #: receiveAudio / receiveVideo from the player: False turns that media off.
        self.receive_audio = True
        self.receive_video = True
        #: While a play handler runs: (wire bytes, priority) it sent, released after Play.Start.
        self._held: list[tuple[bytes, int]] | None = None

    def __repr__(self) -> str:
        return f"<Stream {self.stream_id} {self._name!r} on {self._connection.get_peer_address()}>"

    # -- identity ---------------------------------------------------------------------

    def get_stream_name(self) -> str:
        """The name given in play or publish ("" before either)."""
        return self._name

    def get_connection(self) -> Connection:
        return self._connection

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise ConnectionClosed(f"stream {self.stream_id} ({self._name or 'unnamed'}) is closed")

    # -- handlers ---------------------------------------------------------------------

    def register_play_event_handler(self, handler: Any) -> None:
        self._play_handler = handler

    def register_pause_event_handler(self, handler: Any) -> None:
        self._pause_handler = handler

    def register_render_event_handler(self, handler: Any) -> None:
        self._render_handler = handler
        self._restart_loops()

    def register_frame_event_handler(self, handler: Any) -> None:
        self._frame_handler = handler
        self._restart_loops()

    def register_publish_event_handler(self, handler: Any) -> None:
        """neurtmp extension: filter publish/unpublish (see `PublishEventHandler`)."""
        self._publish_handler = handler

    def register_media_event_handler(self, handler: Any) -> None:
        """neurtmp extension: receive published audio/video/data (see `MediaEventHandler`)."""
        self._media_handlers.append(handler)

    def remove_media_event_handler(self, handler: Any) -> None:
        if handler in self._media_handlers:
            self._media_handlers.remove(handler)

    # -- properties -------------------------------------------------------------------

    def set_property(self, key: str, value: Any) -> None:
        """Set a property: `render_rate` / `frame_rate` (calls per second), or a `user_` key.

        Raises:
            KeyError: an unknown key that does not start with "user_".
            ValueError: a bad value for a reserved key.
        """
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
        worker encodes them (in the thread pool) and sends the sequence header whenever
        the encoder is (re)initialised. "none" sends what frame handlers return unchanged.
        """
        key = name.lower()
        if key in _PASS_THROUGH_CODECS:
            encoder = None
        else:
            encoder = create_video_encoder(key)
            if encoder is None:
                return False
        if self._encoder is not None:
            self._encoder.close()
        self._encoder = encoder
        self._codec = "none" if encoder is None else key
        return True

    def get_video_codec(self) -> str:
        return self._codec

    def get_video_encoder(self) -> Any:
        """The stream's encoder (to set its parameters), or None for "none"."""
        return self._encoder

    def _encode_canvas(self, canvas: Any) -> list[VideoData]:
        """Encode a frame handler's canvas: [sequence header (on re-init)], frame."""
        encoder = self._encoder
        if encoder is None:
            raise EncodeError("the frame handler returned a canvas but the stream has no codec (use_codec)")
        shape = getattr(canvas, "shape", None)
        if shape is None or len(shape) != 3:
            raise EncodeError(f"frame handler returned {type(canvas).__name__}, not a canvas or VideoData")
        out: list[VideoData] = []
        height, width = int(shape[0]), int(shape[1])
        if (encoder.width, encoder.height) != (width, height):
            header = encoder.init(width, height)
            if header is not None:
                out.append(header)
        out.append(gevent.get_hub().threadpool.apply(encoder.encode_canvas, (canvas,)))
        return out

    def _reset_encoder(self) -> None:
        """Make the next canvas re-initialise the encoder (a new player needs a header)."""
        if self._encoder is not None:
            self._encoder.close()

    # -- sending ----------------------------------------------------------------------

    def clock(self) -> int:
        """Milliseconds since play started: the timestamp frames are sent with."""
        return int((time.monotonic() - self._play_started) * 1000) if self._play_started else 0

    def send_packet(self, packet: Packet) -> bool:
        """Send a media/data packet, sharing its wire bytes with every other player.

        Returns False when the slow-player policy dropped it.

        Raises:
            ConnectionClosed: the stream or its connection is closed.
        """
        self._check_open()
        return self._connection._send_packet(self, packet)

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
        self._connection._send_status(self.stream_id, code, description, level, **extra)

    def outqueue_is_full(self) -> bool:
        """True when the client is not draining what was sent (see FrameEventHandler)."""
        return self._connection._outqueue_is_full()

    # -- framework side -------------------------------------------------------------

    def _wants(self, type_id: int) -> bool:
        """Whether the player takes this kind of message (receiveAudio / receiveVideo)."""
        if type_id == MessageType.AUDIO:
            return self.receive_audio
        if type_id == MessageType.VIDEO:
            return self.receive_video
        return True

    def _handler_result(self, handler: Any, *args: Any, default: Any = True) -> Any:
        if handler is None:
            return default
        return call_handler(handler, *args)

    def _restart_loops(self) -> None:
        if self.playing and not self.paused and not self._closed:
            self._start_loops()

    def _start_loops(self) -> None:
        from neurtmp._render import StreamLoops

        if self._loops is not None:
            self._loops.stop()
        if self._render_handler is None and self._frame_handler is None:
            self._loops = None
            return
        self._loops = StreamLoops(self, self._render_handler, self._frame_handler)
        self._loops.start()

    def _stop_loops(self) -> None:
        if self._loops is not None:
            loops, self._loops = self._loops, None
            loops.stop()

    def _mark_closed(self) -> None:
        self._closed = True
        self.playing = False
        self.publishing = False
        self._stop_loops()


def broadcast(packet: Packet, streams: Iterable[Stream]) -> int:
    """Send one packet to many playing streams: the fan-out hot path.

    The packet's wire bytes are built once per distinct (chunk size, message stream id)
    and the same bytes object is queued for every stream; closed streams are skipped.
    Each stream's connection applies its own slow-player drop policy.

    Returns:
        how many streams dropped the packet (slow players).
    """
    priority = packet_priority(packet)
    type_id = packet.type_id
    dropped = 0
    for stream in streams:
        connection = stream._connection
        if stream._closed or connection._closed:
            continue
        if (type_id == MessageType.AUDIO and not stream.receive_audio) or (
            type_id == MessageType.VIDEO and not stream.receive_video
        ):
            continue
        wire = packet.wire(connection._protocol.out_chunk_size, stream.stream_id)
        if stream._held is not None:
            stream._held.append((wire, priority))
        elif not connection._outbox.put(wire, priority):
            dropped += 1
    return dropped
