"""RTMP messages: the unit the chunk layer carries (spec 5.3 / 6.1).

A message is a type id, a 32-bit timestamp in milliseconds, a message stream id and a
payload. This module also splits aggregate messages (type 22), whose payload is a run
of FLV tags: each sub-message keeps its own type and payload, and its timestamp is
moved so the first sub-message lands on the aggregate's timestamp, as FMS does it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from neurtmp.errors import ChunkError
from neurtmp.protocol._buffer import ByteReader

__all__ = ["Message", "MessageType", "split_aggregate"]


class MessageType(IntEnum):
    """RTMP message type ids."""

    SET_CHUNK_SIZE = 1
    ABORT = 2
    ACKNOWLEDGEMENT = 3
    USER_CONTROL = 4
    WINDOW_ACK_SIZE = 5
    SET_PEER_BANDWIDTH = 6
    AUDIO = 8
    VIDEO = 9
    DATA_AMF3 = 15
    SHARED_OBJECT_AMF3 = 16
    COMMAND_AMF3 = 17
    DATA_AMF0 = 18
    SHARED_OBJECT_AMF0 = 19
    COMMAND_AMF0 = 20
    AGGREGATE = 22


@dataclass(frozen=True, slots=True)
class Message:
    """One complete RTMP message.

    Attributes:
        type_id: the message type (see `MessageType`; unknown ids are kept as ints).
        timestamp: milliseconds, 0 .. 2**32 - 1.
        message_stream_id: 0 for the connection, else the NetStream id.
        payload: the message body.
        chunk_stream_id: the chunk stream it arrived on (0 when built locally).
    """

    type_id: int
    timestamp: int
    message_stream_id: int
    payload: bytes
    chunk_stream_id: int = 0


#: Size of an FLV tag header inside an aggregate message.
_TAG_HEADER_SIZE = 11


def split_aggregate(message: Message) -> list[Message]:
    """The sub-messages of an aggregate message, with corrected timestamps.

    Each sub-message is an FLV tag: type (1), size (3), timestamp (3 + 1 extension),
    stream id (3), body, then the 4-byte back pointer.

    Raises:
        ChunkError: the aggregate is malformed.
    """
    reader = ByteReader(message.payload, ChunkError)
    out: list[Message] = []
    offset: int | None = None
    while not reader.at_end():
        type_id = reader.u8()
        size = reader.u24()
        timestamp = reader.u24() | (reader.u8() << 24)
        reader.u24()  # the tag's stream id: always 0, the message's id applies
        body = reader.read(size)
        if reader.remaining() >= 4:
            reader.u32()  # back pointer (previous tag size)
        if type_id not in (MessageType.AUDIO, MessageType.VIDEO, MessageType.DATA_AMF0, MessageType.DATA_AMF3):
            raise ChunkError(f"aggregate message holds an unsupported sub-message type {type_id}")
        if offset is None:
            offset = message.timestamp - timestamp
        out.append(
            Message(
                type_id,
                (timestamp + offset) & 0xFFFFFFFF,
                message.message_stream_id,
                body,
                message.chunk_stream_id,
            )
        )
    return out


def build_aggregate(messages: list[Message], message_stream_id: int = 1) -> Message:
    """Pack audio/video/data messages into one aggregate message (for tests and relays)."""
    out = bytearray()
    for m in messages:
        out.append(m.type_id)
        out += len(m.payload).to_bytes(3, "big")
        out += (m.timestamp & 0xFFFFFF).to_bytes(3, "big")
        out.append((m.timestamp >> 24) & 0xFF)
        out += b"\x00\x00\x00"
        out += m.payload
        out += (len(m.payload) + _TAG_HEADER_SIZE).to_bytes(4, "big")
    first = messages[0].timestamp if messages else 0
    return Message(MessageType.AGGREGATE, first, message_stream_id, bytes(out))
