"""Packet: one media message whose chunked wire form is built once and shared.

Fan-out sends the same audio/video/data message to many players. A `Packet` keeps the
payload once and memoizes its wire bytes per (chunk size, chunk stream id, message
stream id); every player with the same key (nearly all: one server-wide chunk size, fixed
media chunk streams, message stream 1) gets the very same bytes object. The wire form
starts with a fmt 0 header, so it is correct whatever the player received before.
"""

from __future__ import annotations

from neurtmp.protocol.chunk import encode_message
from neurtmp.protocol.message import MessageType

__all__ = ["AUDIO_CHUNK_STREAM", "DATA_CHUNK_STREAM", "VIDEO_CHUNK_STREAM", "Packet"]

#: Chunk stream ids for media we send (the ones ffmpeg uses for audio and video).
AUDIO_CHUNK_STREAM = 4
DATA_CHUNK_STREAM = 5
VIDEO_CHUNK_STREAM = 6

_DEFAULT_CHUNK_STREAM: dict[int, int] = {
    MessageType.AUDIO: AUDIO_CHUNK_STREAM,
    MessageType.VIDEO: VIDEO_CHUNK_STREAM,
}


class Packet:
    """A media or data message ready for fan-out.

    Attributes:
        type_id: MessageType.AUDIO, VIDEO, DATA_AMF0, ...
        timestamp: milliseconds.
        payload: the message body (FLV tag body for audio/video).
    """

    __slots__ = ("type_id", "timestamp", "payload", "priority", "_wire")

    def __init__(self, type_id: int, timestamp: int, payload: bytes, priority: int = -1) -> None:
        self.type_id = type_id
        self.timestamp = timestamp & 0xFFFFFFFF
        self.payload = payload
        #: How droppable the message is for a slow player (set by the sender; -1: not yet known).
        self.priority = priority
        self._wire: dict[tuple[int, int, int], bytes] = {}

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
