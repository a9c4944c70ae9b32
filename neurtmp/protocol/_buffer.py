"""Two small byte containers the parsers share.

`ReceiveBuffer` accumulates bytes from the network and lets a parser consume them in
pieces; `ByteReader` walks a complete message body. Both raise the caller's
`RemoteProtocolError` subclass on truncation, never IndexError or struct.error.
"""

from __future__ import annotations

import struct

from neurtmp.errors import RemoteProtocolError

_U16 = struct.Struct(">H")
_U24_PAD = struct.Struct(">I")
_U32 = struct.Struct(">I")
_U32_LE = struct.Struct("<I")
_F64 = struct.Struct(">d")
_S16 = struct.Struct(">h")

#: Compact the receive buffer once this many consumed bytes sit at its front.
_COMPACT_THRESHOLD = 64 * 1024


class ReceiveBuffer:
    """Bytes received and not yet parsed: a bytearray plus a read offset."""

    __slots__ = ("_data", "_pos")

    def __init__(self) -> None:
        self._data = bytearray()
        self._pos = 0

    def __len__(self) -> int:
        return len(self._data) - self._pos

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append received bytes."""
        if self._pos and self._pos == len(self._data):
            self._data.clear()
            self._pos = 0
        elif self._pos > _COMPACT_THRESHOLD:
            del self._data[: self._pos]
            self._pos = 0
        self._data += data

    def peek(self, n: int) -> memoryview:
        """The next `n` bytes without consuming them (caller checks `len` first)."""
        return memoryview(self._data)[self._pos : self._pos + n]

    def byte_at(self, offset: int) -> int:
        """The byte `offset` positions ahead (caller checks `len` first)."""
        return self._data[self._pos + offset]

    @property
    def data(self) -> bytearray:
        """The underlying array; valid bytes start at `offset`."""
        return self._data

    @property
    def offset(self) -> int:
        """Position of the first unconsumed byte in `data`."""
        return self._pos

    def take(self, n: int) -> bytes:
        """Consume and return exactly `n` bytes (caller checks `len` first)."""
        start = self._pos
        self._pos = start + n
        return bytes(self._data[start : start + n])

    def skip(self, n: int) -> None:
        """Consume `n` bytes without copying them."""
        self._pos += n

    def take_all(self) -> bytes:
        """Consume and return everything buffered."""
        return self.take(len(self))


class ByteReader:
    """A cursor over one complete message body.

    Args:
        data: the bytes to read.
        error: the exception class raised when the data runs out.
    """

    __slots__ = ("data", "pos", "error")

    def __init__(self, data: bytes | memoryview, error: type[RemoteProtocolError]) -> None:
        self.data = data
        self.pos = 0
        self.error = error

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def _need(self, n: int) -> int:
        start = self.pos
        if n < 0 or start + n > len(self.data):
            raise self.error(f"truncated: needed {n} bytes at offset {start}, have {len(self.data) - start}")
        self.pos = start + n
        return start

    def read(self, n: int) -> bytes:
        start = self._need(n)
        return bytes(self.data[start : start + n])

    def u8(self) -> int:
        start = self._need(1)
        return self.data[start]

    def u16(self) -> int:
        return int(_U16.unpack_from(self.data, self._need(2))[0])

    def s16(self) -> int:
        return int(_S16.unpack_from(self.data, self._need(2))[0])

    def u24(self) -> int:
        start = self._need(3)
        d = self.data
        return (d[start] << 16) | (d[start + 1] << 8) | d[start + 2]

    def u32(self) -> int:
        return int(_U32.unpack_from(self.data, self._need(4))[0])

    def u32_le(self) -> int:
        return int(_U32_LE.unpack_from(self.data, self._need(4))[0])

    def f64(self) -> float:
        return float(_F64.unpack_from(self.data, self._need(8))[0])

    def utf8(self, n: int) -> str:
        raw = self.read(n)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.error(f"invalid UTF-8 in string at offset {self.pos - n}: {exc.reason}") from None
