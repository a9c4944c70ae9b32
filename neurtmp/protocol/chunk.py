"""The RTMP chunk stream layer (spec 5.3): messages <-> chunks.

Each chunk has a basic header (format and chunk stream id, 1 to 3 bytes, ids 2..65599),
a message header whose size depends on the format (fmt 0: 11 bytes, absolute timestamp;
fmt 1: 7, timestamp delta, length and type; fmt 2: 3, delta only; fmt 3: none), an
optional 4-byte extended timestamp when the 24-bit field reads 0xFFFFFF, and at most
`chunk_size` bytes of payload.

Rules chosen where the spec is vague, after what real peers do:

* fmt 3 chunks repeat the extended timestamp when the chunk stream's last header used
  one (ffmpeg, librtmp and Flash all do). On a continuation chunk we accept it only when
  those 4 bytes equal the last extended value; otherwise they are payload (a few old
  encoders omit it; SRS accepts both the same way).
* A fmt 3 chunk that starts a new message adds the last delta again; after a fmt 0
  header that delta is 0 (nginx-rtmp's reading). Our encoder never relies on it.
* A message longer than `max_message_size` is refused when its header arrives, before
  anything is allocated; chunk bodies are consumed as they arrive, so a huge chunk size
  costs nothing either.
"""

from __future__ import annotations

import struct

from neurtmp.errors import ChunkError, LimitExceeded, LocalProtocolError
from neurtmp.protocol._buffer import ReceiveBuffer
from neurtmp.protocol.limits import (
    DEFAULT_MAX_CHUNK_STREAMS,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_MAX_PENDING_BYTES,
    INITIAL_CHUNK_SIZE,
    MAX_CHUNK_SIZE,
)
from neurtmp.protocol.message import Message

__all__ = ["ChunkDecoder", "ChunkEncoder", "basic_header", "encode_message"]

MIN_CHUNK_STREAM_ID = 2
MAX_CHUNK_STREAM_ID = 65599
_EXTENDED = 0xFFFFFF
_MESSAGE_HEADER_SIZE = (11, 7, 3, 0)
_U32 = struct.Struct(">I")
_U32_LE = struct.Struct("<I")


def basic_header(fmt: int, chunk_stream_id: int) -> bytes:
    """The 1-3 byte basic header for a chunk of format `fmt` on `chunk_stream_id`."""
    if chunk_stream_id < 64:
        if chunk_stream_id < MIN_CHUNK_STREAM_ID:
            raise LocalProtocolError(f"chunk stream id {chunk_stream_id} is reserved")
        return bytes(((fmt << 6) | chunk_stream_id,))
    if chunk_stream_id < 320:
        return bytes((fmt << 6, chunk_stream_id - 64))
    if chunk_stream_id <= MAX_CHUNK_STREAM_ID:
        n = chunk_stream_id - 64
        return bytes(((fmt << 6) | 1, n & 0xFF, n >> 8))
    raise LocalProtocolError(f"chunk stream id {chunk_stream_id} is above {MAX_CHUNK_STREAM_ID}")


def _u24(value: int) -> bytes:
    return value.to_bytes(3, "big")


def _chunk_body(
    first_header: bytes, payload: bytes | memoryview, chunk_size: int, continuation: bytes
) -> bytes:
    """Join a first header, the payload cut at `chunk_size`, and continuation headers."""
    if len(payload) <= chunk_size:
        return first_header + payload
    view = memoryview(payload)
    parts: list[bytes | memoryview] = [first_header, view[:chunk_size]]
    for start in range(chunk_size, len(payload), chunk_size):
        parts.append(continuation)
        parts.append(view[start : start + chunk_size])
    return b"".join(parts)


def encode_message(
    type_id: int,
    timestamp: int,
    message_stream_id: int,
    payload: bytes | memoryview,
    chunk_stream_id: int,
    chunk_size: int,
) -> bytes:
    """One message as self-contained chunks: a fmt 0 header, then fmt 3 continuations.

    The result does not depend on what the receiver got before, so the same bytes can go
    to every player of a stream (see `Packet`).
    """
    timestamp &= 0xFFFFFFFF
    extended = timestamp >= _EXTENDED
    header = bytearray(basic_header(0, chunk_stream_id))
    header += _u24(_EXTENDED if extended else timestamp)
    header += _u24(len(payload))
    header.append(type_id)
    header += _U32_LE.pack(message_stream_id)
    continuation = basic_header(3, chunk_stream_id)
    if extended:
        ext = _U32.pack(timestamp)
        header += ext
        continuation += ext
    return _chunk_body(bytes(header), payload, chunk_size, continuation)


class _OutState:
    __slots__ = ("timestamp", "delta", "length", "type_id", "message_stream_id", "delta_known", "extended")

    def __init__(self, timestamp: int, length: int, type_id: int, message_stream_id: int) -> None:
        self.timestamp = timestamp
        self.length = length
        self.type_id = type_id
        self.message_stream_id = message_stream_id
        self.delta = 0
        self.delta_known = False
        self.extended = False


class ChunkEncoder:
    """Turns messages into chunks, compressing headers per chunk stream (fmt 0-3).

    Args:
        compress: when False every message gets a fmt 0 header, so chunk streams can be
            shared with `encode_message` output.
    """

    def __init__(self, compress: bool = True) -> None:
        self.chunk_size = INITIAL_CHUNK_SIZE
        self.compress = compress
        self._last: dict[int, _OutState] = {}

    def set_chunk_size(self, size: int) -> None:
        """Use `size` for the chunks that follow (after sending Set Chunk Size)."""
        if not 1 <= size <= MAX_CHUNK_SIZE:
            raise LocalProtocolError(f"chunk size {size} outside 1..{MAX_CHUNK_SIZE}")
        self.chunk_size = size

    def encode(self, message: Message, chunk_stream_id: int) -> bytes:
        """The chunks carrying `message` on `chunk_stream_id`."""
        timestamp = message.timestamp & 0xFFFFFFFF
        length = len(message.payload)
        if length > 0xFFFFFF:
            raise LocalProtocolError(f"message of {length} bytes exceeds RTMP's 16 MiB limit")
        prev = self._last.get(chunk_stream_id)
        delta = (timestamp - prev.timestamp) & 0xFFFFFFFF if prev else 0
        if (
            not self.compress
            or prev is None
            or prev.message_stream_id != message.message_stream_id
            or delta >= 0x80000000  # going backwards: send the absolute time
        ):
            return self._fmt0(message, chunk_stream_id, timestamp, length)
        same_shape = prev.length == length and prev.type_id == message.type_id
        if same_shape and prev.delta_known and prev.delta == delta:
            fmt, header_fields = 3, b""
            extended = prev.extended
        else:
            extended = delta >= _EXTENDED
            fmt = 2 if same_shape else 1
            header_fields = _u24(_EXTENDED if extended else delta)
            if fmt == 1:
                header_fields += _u24(length) + bytes((message.type_id,))
        prev.timestamp = timestamp
        prev.length = length
        prev.type_id = message.type_id
        prev.delta = delta
        prev.delta_known = True
        prev.extended = extended
        ext = _U32.pack(delta) if extended else b""
        first = basic_header(fmt, chunk_stream_id) + header_fields + ext
        return _chunk_body(first, message.payload, self.chunk_size, basic_header(3, chunk_stream_id) + ext)

    def _fmt0(self, message: Message, chunk_stream_id: int, timestamp: int, length: int) -> bytes:
        state = _OutState(timestamp, length, message.type_id, message.message_stream_id)
        state.extended = timestamp >= _EXTENDED
        self._last[chunk_stream_id] = state
        return encode_message(
            message.type_id, timestamp, message.message_stream_id, message.payload, chunk_stream_id, self.chunk_size
        )

    def forget(self, chunk_stream_id: int) -> None:
        """Make the next message on `chunk_stream_id` start with a full header."""
        self._last.pop(chunk_stream_id, None)


class _InState:
    __slots__ = ("timestamp", "delta", "length", "type_id", "message_stream_id", "extended", "ext_value",
                 "pieces", "received")

    def __init__(self) -> None:
        self.timestamp = 0
        self.delta = 0
        self.length = 0
        self.type_id = 0
        self.message_stream_id = 0
        self.extended = False
        self.ext_value = 0
        self.pieces: list[bytes] = []
        self.received = 0


class ChunkDecoder:
    """Reassembles messages from chunks.

    Feed bytes with `feed`, then call `next_message` until it returns None. Apply a
    peer's Set Chunk Size with `set_chunk_size` before asking for the next message.

    Args:
        max_message_size: longest message accepted (LimitExceeded beyond).
        max_chunk_streams: most chunk streams a peer may use.
        max_pending_bytes: most bytes of unfinished messages held at once.
    """

    def __init__(
        self,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        max_chunk_streams: int = DEFAULT_MAX_CHUNK_STREAMS,
        max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES,
    ) -> None:
        self.chunk_size = INITIAL_CHUNK_SIZE
        self.max_message_size = max_message_size
        self.max_chunk_streams = max_chunk_streams
        self.max_pending_bytes = max_pending_bytes
        self._buffer = ReceiveBuffer()
        self._streams: dict[int, _InState] = {}
        self._body_stream: _InState | None = None  # chunk body in progress
        self._body_csid = 0
        self._body_left = 0
        self._pending = 0

    @property
    def pending_bytes(self) -> int:
        """Bytes held for unfinished messages plus unparsed input."""
        return self._pending + len(self._buffer)

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Add received bytes."""
        self._buffer.feed(data)

    def set_chunk_size(self, size: int) -> None:
        """Apply the peer's Set Chunk Size.

        Raises:
            ChunkError: the size is 0 or has the top bit set.
        """
        if not 1 <= size <= MAX_CHUNK_SIZE:
            raise ChunkError(f"peer set an invalid chunk size {size}")
        self.chunk_size = size

    def abort(self, chunk_stream_id: int) -> None:
        """Drop the partly received message on `chunk_stream_id` (Abort message)."""
        state = self._streams.get(chunk_stream_id)
        if state is None:
            return
        self._pending -= state.received
        state.pieces = []
        state.received = 0
        if self._body_stream is state:
            # The rest of the interrupted chunk never comes; the next byte is a header.
            self._body_stream = None
            self._body_left = 0

    def next_message(self) -> Message | None:
        """The next complete message, or None when more bytes are needed.

        Raises:
            ChunkError, LimitExceeded: the peer broke the chunk protocol.
        """
        while True:
            if self._body_stream is not None:
                message = self._read_body()
                if message is not None:
                    return message
                if self._body_stream is not None:
                    return None  # body incomplete: wait for more bytes
                continue
            state = self._read_header()
            if state is None:
                return None
            if state.length == 0:
                return Message(state.type_id, state.timestamp, state.message_stream_id, b"", self._body_csid)

    def _read_body(self) -> Message | None:
        state = self._body_stream
        assert state is not None
        buf = self._buffer
        take = min(len(buf), self._body_left)
        if take == 0:
            return None
        state.pieces.append(buf.take(take))
        state.received += take
        self._body_left -= take
        self._pending += take
        if self._pending > self.max_pending_bytes:
            raise LimitExceeded(
                f"{self._pending} bytes of unfinished messages exceed the limit of {self.max_pending_bytes}",
                "max_pending_bytes",
            )
        if self._body_left:
            return None
        self._body_stream = None
        if state.received < state.length:
            return None
        pieces = state.pieces
        payload = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        state.pieces = []
        state.received = 0
        self._pending -= len(payload)
        return Message(state.type_id, state.timestamp, state.message_stream_id, payload, self._body_csid)

    def _read_header(self) -> _InState | None:
        buf = self._buffer
        avail = len(buf)
        if avail < 1:
            return None
        b0 = buf.byte_at(0)
        fmt = b0 >> 6
        csid = b0 & 0x3F
        size = 1
        if csid == 0:
            if avail < 2:
                return None
            csid = 64 + buf.byte_at(1)
            size = 2
        elif csid == 1:
            if avail < 3:
                return None
            csid = 64 + buf.byte_at(1) + (buf.byte_at(2) << 8)
            size = 3
        header_size = size + _MESSAGE_HEADER_SIZE[fmt]
        if avail < header_size:
            return None
        state = self._streams.get(csid)
        if state is None:
            if fmt >= 2:
                raise ChunkError(f"chunk stream {csid} starts with a fmt {fmt} header; it needs fmt 0 or 1")
            if len(self._streams) >= self.max_chunk_streams:
                raise LimitExceeded(
                    f"peer opened more than {self.max_chunk_streams} chunk streams", "max_chunk_streams"
                )
        starting = state is None or state.received == 0
        if not starting and fmt != 3:
            raise ChunkError(f"fmt {fmt} header on chunk stream {csid} before its message was complete")
        data = buf.data
        pos = buf.offset + size
        field = 0
        if fmt <= 2:
            field = (data[pos] << 16) | (data[pos + 1] << 8) | data[pos + 2]
            extended = field == _EXTENDED
        else:
            assert state is not None
            extended = state.extended
        ext_size = 0
        if extended:
            if avail < header_size + 4:
                return None
            ext_value = _U32.unpack_from(data, buf.offset + header_size)[0]
            if fmt == 3 and not starting and ext_value != state.ext_value:  # type: ignore[union-attr]
                ext_size = 0  # a peer that omits it on continuations: these are payload bytes
            else:
                ext_size = 4
                field = ext_value
        # The header is complete: commit it.
        if state is None:
            state = _InState()
            self._streams[csid] = state
        if fmt <= 1:
            length = (data[pos + 3] << 16) | (data[pos + 4] << 8) | data[pos + 5]
            if length > self.max_message_size:
                raise LimitExceeded(
                    f"peer declared a {length}-byte message on chunk stream {csid}; "
                    f"the limit is {self.max_message_size}",
                    "max_message_size",
                )
            state.length = length
            state.type_id = data[pos + 6]
            if fmt == 0:
                state.message_stream_id = _U32_LE.unpack_from(data, pos + 7)[0]
        if fmt <= 2:
            state.extended = extended
            if extended:
                state.ext_value = field
        if starting:
            if fmt == 0:
                state.timestamp = field
                state.delta = 0
            else:
                if fmt != 3:
                    state.delta = field
                state.timestamp = (state.timestamp + state.delta) & 0xFFFFFFFF
        buf.skip(header_size + ext_size)
        self._body_csid = csid
        remaining = state.length - state.received
        if remaining:
            self._body_stream = state
            self._body_left = min(self.chunk_size, remaining)
        return state
