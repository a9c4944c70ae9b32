"""The little of WebSocket (RFC 6455) a WebSocket-FLV server needs, sans-IO.

The server answers the opening handshake (`accept_key`), then sends FLV as binary frames
(`binary_frame`: server frames are never masked) and reads the client's frames only to
answer a close or notice a broken client (`FrameReader`): a WebSocket-FLV player sends
nothing else that matters.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from neurtmp.errors import RemoteProtocolError

__all__ = ["BINARY", "CLOSE", "PING", "PONG", "Frame", "FrameReader", "accept_key", "binary_frame", "close_frame",
           "frame"]

#: Opcodes (RFC 6455 section 5.2).
CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

#: The GUID the accept key is made with (RFC 6455 section 1.3).
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

#: Largest client frame payload read: a player sends only control frames (125 bytes at most)
#: or, at most, short text; anything bigger is not a WebSocket-FLV player.
MAX_CLIENT_PAYLOAD = 64 * 1024


def accept_key(client_key: str) -> str:
    """The Sec-WebSocket-Accept value for a client's Sec-WebSocket-Key.

    Raises:
        ValueError: the key is not 16 bytes in base64.
    """
    try:
        raw = base64.b64decode(client_key.strip(), validate=True)
    except ValueError:
        raw = b""
    if len(raw) != 16:
        raise ValueError(f"Sec-WebSocket-Key {client_key!r} is not 16 bytes in base64")
    return base64.b64encode(hashlib.sha1(client_key.strip().encode() + _GUID).digest()).decode()


def frame(opcode: int, payload: bytes) -> bytes:
    """One final, unmasked frame (what a server sends)."""
    length = len(payload)
    if length < 126:
        header = bytes((0x80 | opcode, length))
    elif length < 1 << 16:
        header = bytes((0x80 | opcode, 126)) + length.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 127)) + length.to_bytes(8, "big")
    return header + payload


def binary_frame(payload: bytes) -> bytes:
    """`payload` as one binary frame."""
    return frame(BINARY, payload)


def close_frame(code: int = 1000, reason: str = "") -> bytes:
    """A close frame with a status code and a reason (cut to fit a control frame)."""
    return frame(CLOSE, code.to_bytes(2, "big") + reason.encode()[:123])


@dataclass(frozen=True)
class Frame:
    """A client frame, unmasked."""

    opcode: int
    payload: bytes
    final: bool = True


class FrameReader:
    """Client frames from the bytes a client sends (masked, as RFC 6455 requires).

    Raises `RemoteProtocolError` for an unmasked frame, a reserved bit set, a control
    frame over 125 bytes or fragmented, or a payload over `MAX_CLIENT_PAYLOAD`.
    """

    def __init__(self, max_payload: int = MAX_CLIENT_PAYLOAD) -> None:
        self._buffer = bytearray()
        self._max_payload = max_payload

    def receive(self, data: bytes) -> list[Frame]:
        """The frames that `data` completes."""
        self._buffer += data
        frames = []
        while (parsed := self._next()) is not None:
            frames.append(parsed)
        return frames

    def _next(self) -> Frame | None:
        buffer = self._buffer
        if len(buffer) < 2:
            return None
        first, second = buffer[0], buffer[1]
        final, opcode = bool(first & 0x80), first & 0x0F
        if first & 0x70:
            raise RemoteProtocolError("WebSocket frame with a reserved bit set")
        if not second & 0x80:
            raise RemoteProtocolError("unmasked WebSocket frame from a client")
        length, at = second & 0x7F, 2
        if length == 126:
            if len(buffer) < 4:
                return None
            length, at = int.from_bytes(buffer[2:4], "big"), 4
        elif length == 127:
            if len(buffer) < 10:
                return None
            length, at = int.from_bytes(buffer[2:10], "big"), 10
        if opcode >= CLOSE and (length > 125 or not final):
            raise RemoteProtocolError("WebSocket control frame too long or fragmented")
        if length > self._max_payload:
            raise RemoteProtocolError(f"WebSocket frame of {length} bytes (at most {self._max_payload} taken)")
        if len(buffer) < at + 4 + length:
            return None
        mask = buffer[at:at + 4]
        start = at + 4
        masked = bytes(buffer[start:start + length])
        del buffer[:start + length]
        # XOR with the 4-byte mask repeated: one big-integer operation, not a loop per byte
        key = (bytes(mask) * (length // 4 + 1))[:length]
        payload = (int.from_bytes(masked, "big") ^ int.from_bytes(key, "big")).to_bytes(length, "big")
        return Frame(opcode, payload, final)
