"""FlvFile: a recording as FLV, the published bytes as they came (no re-encoding).

Blocking file I/O: used from a worker thread (see `neurtmp.record.recording`). Tags are
gathered whole in a buffer and written with os.write, so the file's good length is
known: after a failed write (a full disk) the file is cut back to its last whole tag,
and it still plays to that point.
"""

from __future__ import annotations

import os

from neurtmp.codec import flv
from neurtmp.record.files import create_exclusive
from neurtmp.record.segmenter import Start, Write

__all__ = ["FlvFile"]

#: Bytes gathered before they are written (each batch of messages is written at its end).
_BUFFER_SIZE = 256 * 1024


class FlvFile:
    """An FLV file: header (audio/video flags from what the stream has), then onMetaData
    and the sequence headers at 0, then every message written.

    Args:
        stem: DIR/APP/NAME/NAME-STAMP (`create_exclusive` adds [-N].flv).
        start: what the file begins with.
    """

    extension = "flv"

    def __init__(self, stem: str, start: Start) -> None:
        self.path, self._fd = create_exclusive(stem, self.extension)
        self._buffer = bytearray(flv.file_header(start.has_audio, start.has_video))
        #: Bytes in the file, all whole tags.
        self._written = 0
        for packet in start.headers:
            self._buffer += flv.tag_bytes(packet.type_id, 0, packet.payload)

    @property
    def size(self) -> int:
        """The file's length once what is buffered is written."""
        return self._written + len(self._buffer)

    def write(self, op: Write) -> None:
        self._buffer += flv.tag_bytes(op.packet.type_id, op.timestamp, op.packet.payload)
        if len(self._buffer) >= _BUFFER_SIZE:
            self.flush()

    def flush(self) -> None:
        """Write what is buffered. Raises OSError (the file may then hold part of it)."""
        data = memoryview(self._buffer)
        done = 0
        try:
            while done < len(data):
                done += os.write(self._fd, data[done:])
        finally:
            data.release()
        self._written += done
        self._buffer.clear()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            os.close(self._fd)

    def abandon(self) -> None:
        """Close after a write error: the file is cut back to its last whole tag."""
        self._buffer.clear()
        try:
            os.ftruncate(self._fd, self._written)
        except OSError:
            pass
        os.close(self._fd)
