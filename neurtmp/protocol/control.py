"""Protocol control messages (spec 5.4) and user control messages (spec 6.2 / 7.1.7).

Builders return `Message` objects for chunk stream 2 / message stream 0; parsers take a
payload and return plain values. The connection layer answers acknowledgements and
pings itself, so most of these never reach an application.
"""

from __future__ import annotations

import struct
from enum import IntEnum

from neurtmp.errors import ChunkError
from neurtmp.protocol._buffer import ByteReader
from neurtmp.protocol.message import Message, MessageType

__all__ = ["BandwidthLimit", "UserControl"]

#: Chunk stream for protocol control and user control messages (spec 5.4).
CONTROL_CHUNK_STREAM = 2

_U32 = struct.Struct(">I")


class UserControl(IntEnum):
    """User control event types (spec 7.1.7)."""

    STREAM_BEGIN = 0
    STREAM_EOF = 1
    STREAM_DRY = 2
    SET_BUFFER_LENGTH = 3
    STREAM_IS_RECORDED = 4
    PING_REQUEST = 6
    PING_RESPONSE = 7


class BandwidthLimit(IntEnum):
    """Set Peer Bandwidth limit types (spec 5.4.5)."""

    HARD = 0
    SOFT = 1
    DYNAMIC = 2


def _control(type_id: int, payload: bytes) -> Message:
    return Message(type_id, 0, 0, payload)


def set_chunk_size(size: int) -> Message:
    return _control(MessageType.SET_CHUNK_SIZE, _U32.pack(size & 0x7FFFFFFF))


def abort(chunk_stream_id: int) -> Message:
    return _control(MessageType.ABORT, _U32.pack(chunk_stream_id))


def acknowledgement(sequence_number: int) -> Message:
    return _control(MessageType.ACKNOWLEDGEMENT, _U32.pack(sequence_number & 0xFFFFFFFF))


def window_ack_size(size: int) -> Message:
    return _control(MessageType.WINDOW_ACK_SIZE, _U32.pack(size))


def set_peer_bandwidth(size: int, limit: BandwidthLimit = BandwidthLimit.DYNAMIC) -> Message:
    return _control(MessageType.SET_PEER_BANDWIDTH, _U32.pack(size) + bytes((int(limit),)))


def user_control(event: UserControl, *values: int) -> Message:
    """A user control message: the event type and its 32-bit values."""
    payload = struct.pack(">H", int(event)) + b"".join(_U32.pack(v & 0xFFFFFFFF) for v in values)
    return _control(MessageType.USER_CONTROL, payload)


def parse_u32(payload: bytes, what: str) -> int:
    """The single 32-bit value of a Set Chunk Size / Abort / Ack / Window message."""
    if len(payload) < 4:
        raise ChunkError(f"{what} message of {len(payload)} bytes; it needs 4")
    return int(_U32.unpack_from(payload)[0])


def parse_peer_bandwidth(payload: bytes) -> tuple[int, int]:
    """(window size, limit type) of a Set Peer Bandwidth message."""
    reader = ByteReader(payload, ChunkError)
    size = reader.u32()
    limit = reader.u8() if reader.remaining() else int(BandwidthLimit.DYNAMIC)
    return size, limit


def parse_user_control(payload: bytes) -> tuple[int, list[int]]:
    """(event type, 32-bit values) of a user control message."""
    reader = ByteReader(payload, ChunkError)
    event = reader.u16()
    values = []
    while reader.remaining() >= 4:
        values.append(reader.u32())
    return event, values
