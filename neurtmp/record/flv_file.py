"""FlvFile: a recording as FLV, the published bytes as they came (no re-encoding).

Blocking file I/O: used from a worker thread (see `neurtmp.record.recording`).
"""

from __future__ import annotations

import os

from neurtmp.codec import flv
from neurtmp.record.files import create_exclusive
from neurtmp.record.segmenter import Start, Write

__all__ = ["FlvFile"]

#: Bytes buffered before a write reaches the file (also flushed after each batch).
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
        self.path, fd = create_exclusive(stem, self.extension)
        self._file = os.fdopen(fd, "wb", buffering=_BUFFER_SIZE)
        self.size = 0
        self._put(flv.file_header(start.has_audio, start.has_video))
        for packet in start.headers:
            self._put(flv.tag_bytes(packet.type_id, 0, packet.payload))

    def _put(self, data: bytes) -> None:
        self._file.write(data)
        self.size += len(data)

    def write(self, op: Write) -> None:
        self._put(flv.tag_bytes(op.packet.type_id, op.timestamp, op.packet.payload))

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def abandon(self) -> None:
        """Close after a write error: what can still be written is, errors are ignored."""
        try:
            self._file.close()
        except OSError:
            pass
