"""Packet: one media message whose chunked wire form is built once and shared.

Fan-out sends the same audio/video/data message to many players. A `Packet` keeps the
payload once and memoizes its wire bytes per (chunk size, chunk stream id, message
stream id); every player with the same key (nearly all: one server-wide chunk size, fixed
media chunk streams, message stream 1) gets the very same bytes object. The wire form
starts with a fmt 0 header, so it is correct whatever the player received before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from neurtmp.protocol import amf0
from neurtmp.protocol.amf_types import ECMAArray
from neurtmp.protocol.chunk import encode_message
from neurtmp.protocol.media import classify
from neurtmp.protocol.message import MessageType
from neurtmp.protocol.websocket import binary_frame

__all__ = ["AUDIO_CHUNK_STREAM", "DATA_CHUNK_STREAM", "FLV_TAGS", "VIDEO_CHUNK_STREAM", "WEBSOCKET_FLV_TAGS",
           "DataPacket", "FlvTags", "Packet", "RtmpChunks", "WebSocketFlvTags", "WireFormat", "absent_track_metadata",
           "flv_tag_bytes"]

#: Chunk stream ids for media we send (the ones ffmpeg uses for audio and video).
AUDIO_CHUNK_STREAM = 4
DATA_CHUNK_STREAM = 5
VIDEO_CHUNK_STREAM = 6

#: The AMF0 type marker a data message's name starts with.
_AMF0_STRING = b"\x02"

_DEFAULT_CHUNK_STREAM: dict[int, int] = {
    MessageType.AUDIO: AUDIO_CHUNK_STREAM,
    MessageType.VIDEO: VIDEO_CHUNK_STREAM,
}


class Packet:
    """A media or data message ready for fan-out.

    What every later stage needs to know of the message is read once, here: whether it
    is a sequence header, a key frame (where a player can start), and its drop priority
    (`neurtmp.protocol.media`).

    Attributes:
        type_id: MessageType.AUDIO, VIDEO, DATA_AMF0, ...
        timestamp: milliseconds.
        payload: the message body (FLV tag body for audio/video).
        is_sequence_header: an audio or video decoder configuration.
        is_key_frame: a video key frame that is not a sequence header.
        priority: how droppable it is for a slow player (`media.CRITICAL` ... `VIDEO_INTER`).
    """

    __slots__ = ("type_id", "timestamp", "payload", "is_sequence_header", "is_key_frame", "priority", "_wire", "_flv")

    def __init__(self, type_id: int, timestamp: int, payload: bytes) -> None:
        self.type_id = type_id
        self.timestamp = timestamp & 0xFFFFFFFF
        self.payload = payload
        self.is_sequence_header, self.is_key_frame, self.priority = classify(type_id, payload)
        self._wire: dict[tuple[int, int, int], bytes] = {}
        self._flv: bytes | None = None

    @property
    def is_video(self) -> bool:
        return self.type_id == MessageType.VIDEO

    @property
    def is_audio(self) -> bool:
        return self.type_id == MessageType.AUDIO

    def retimed(self, timestamp: int) -> Packet:
        """The same message at another timestamp (its classification is kept)."""
        return Packet(self.type_id, timestamp, self.payload)

    def __repr__(self) -> str:
        return f"Packet(type_id={self.type_id}, timestamp={self.timestamp}, {len(self.payload)} bytes)"

    @property
    def chunk_stream_id(self) -> int:
        """The chunk stream this kind of message is sent on."""
        return _DEFAULT_CHUNK_STREAM.get(self.type_id, DATA_CHUNK_STREAM)

    def wire(self, chunk_size: int, message_stream_id: int, chunk_stream_id: int | None = None) -> bytes:
        """The chunked bytes of this message; built on first use for a key, then shared."""
        csid = self.chunk_stream_id if chunk_stream_id is None else chunk_stream_id
        key = (chunk_size, csid, message_stream_id)
        data = self._wire.get(key)
        if data is None:
            data = encode_message(self.type_id, self.timestamp, message_stream_id, self.payload, csid, chunk_size)
            self._wire[key] = data
        return data


    def flv_tag(self) -> bytes:
        """This message as one FLV tag with its back pointer (HTTP-FLV, recording);
        built on first use, then shared."""
        if self._flv is None:
            self._flv = flv_tag_bytes(self.type_id, self.timestamp, self.payload)
        return self._flv


def flv_tag_bytes(type_id: int, timestamp: int, payload: bytes) -> bytes:
    """One FLV tag (audio 8, video 9, script data 18) with its back pointer."""
    timestamp &= 0xFFFFFFFF
    header = (
        bytes((type_id,)) + len(payload).to_bytes(3, "big") + (timestamp & 0xFFFFFF).to_bytes(3, "big")
        + bytes((timestamp >> 24,)) + b"\x00\x00\x00"
    )
    return header + payload + (11 + len(payload)).to_bytes(4, "big")


class WireFormat(Protocol):
    """How players of one kind receive a message: a fan-out group keeps one shared log
    per format in use (equal formats share it)."""

    def encode(self, packet: Packet) -> bytes:
        """The bytes of `packet` in this format (memoized by the packet)."""


@dataclass(frozen=True, slots=True)
class RtmpChunks:
    """RTMP chunks of one chunk size on one message stream (RTMP players)."""

    chunk_size: int
    stream_id: int

    def encode(self, packet: Packet) -> bytes:
        return packet.wire(self.chunk_size, self.stream_id)


@dataclass(frozen=True, slots=True)
class FlvTags:
    """FLV tags (HTTP-FLV players, recording)."""

    def encode(self, packet: Packet) -> bytes:
        return packet.flv_tag()


FLV_TAGS = FlvTags()


@dataclass(frozen=True, slots=True)
class WebSocketFlvTags:
    """FLV tags, each in one WebSocket binary frame (WebSocket-FLV players)."""

    def encode(self, packet: Packet) -> bytes:
        return binary_frame(packet.flv_tag())


WEBSOCKET_FLV_TAGS = WebSocketFlvTags()


class DataPacket(Packet):
    """A data message (onMetaData, onCuePoint, ...) with its AMF values decoded.

    Publishers wrap metadata as ``@setDataFrame("onMetaData", {...})``; `decode` unwraps
    that, as players expect ``onMetaData`` itself. The payload is always AMF0, so any
    player can read it.

    Attributes:
        name: the handler name the message calls ("onMetaData"), "" when it has none.
        values: the values after the name (for onMetaData, one dict).
    """

    __slots__ = ("name", "values")

    def __init__(self, timestamp: int, name: str, values: list[Any], payload: bytes | None = None) -> None:
        if payload is None:
            payload = amf0.encode_all((name, *values))
        super().__init__(MessageType.DATA_AMF0, timestamp, payload)
        self.name = name
        self.values = values

    def __repr__(self) -> str:
        return f"DataPacket({self.name!r}, timestamp={self.timestamp}, {len(self.values)} values)"

    def retimed(self, timestamp: int) -> DataPacket:
        return DataPacket(timestamp, self.name, self.values, self.payload)

    @property
    def metadata(self) -> dict[str, Any] | None:
        """onMetaData's properties as a dict (None for other messages)."""
        if self.name != "onMetaData" or not self.values or not isinstance(self.values[0], dict):
            return None
        return dict(self.values[0])

    @classmethod
    def published(cls, timestamp: int, name: str, values: list[Any], payload: bytes | None = None) -> DataPacket:
        """A publisher's data message: ``@setDataFrame`` is unwrapped; `payload` (the AMF0
        body as received) is reused when it still says the same thing."""
        if name == "@setDataFrame" and values and isinstance(values[0], str):
            return cls(timestamp, values[0], list(values[1:]))
        if payload is not None and payload[:1] != _AMF0_STRING:  # AMF3-framed or nameless: re-encode
            payload = None
        return cls(timestamp, name, list(values), payload)


def absent_track_metadata(missing: str, metadata: dict[str, Any] | None = None) -> DataPacket:
    """An onMetaData that says the stream has no `missing` track ("audio" or "video"),
    to send at timestamp 0 right after the present track's sequence header.

    ffmpeg's FLV demuxer (ffplay, VLC, ffmpeg players) cannot know from RTMP that a
    track will never come, and waits ~5 s for it before showing anything. An empty
    object as `audiocodecid` (or `videocodecid`), read while it knows exactly one
    stream, tells it the header is complete; at timestamp 0 it makes no stream of its
    own. flv.js and mpegts.js read `hasAudio` / `hasVideo`. Send it only when the track
    is really absent.
    """
    if missing not in ("audio", "video"):
        raise ValueError(f"missing must be 'audio' or 'video', not {missing!r}")
    values = ECMAArray(metadata or {})
    values[f"{missing}codecid"] = {}
    values[f"has{missing.capitalize()}"] = False
    return DataPacket(0, "onMetaData", [values])
