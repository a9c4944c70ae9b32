"""Segmenter: where a recording's files begin and end, and each message's time in its file.

Sans-IO: it sees the published messages in order and answers with what to do
(`Start` a file, `Write` a message, `End` the file). A file starts on a video key frame
(for audio-only streams, on any audio frame) so that each piece plays on its own; it
begins with the metadata and sequence headers at 0, and its messages' timestamps are the
publisher's rebased to start at 0. With an interval or a size bound, the next cut point
past it ends the file and starts the next one: pieces are contiguous, nothing lost or
repeated at the seams. A changed sequence header also starts a new file at the next cut
point (MP4 cannot change codec configuration mid-file).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from neurtmp import DataPacket, MessageType, Packet

__all__ = ["End", "Op", "Segmenter", "Start", "Write"]

#: An FLV tag's bytes besides its payload: 11 of header, 4 of back pointer.
TAG_OVERHEAD = 15
#: An FLV file header with its first back pointer.
FILE_HEADER_SIZE = 13


@dataclass(frozen=True)
class Start:
    """Open a new file: `headers` (metadata, video and audio sequence headers) first, at 0."""

    headers: list[Packet] = field(default_factory=list)
    has_audio: bool = False
    has_video: bool = False


@dataclass(frozen=True)
class Write:
    """Write `packet` at `timestamp` (milliseconds from the file's start)."""

    timestamp: int
    packet: Packet


@dataclass(frozen=True)
class End:
    """Close the current file."""

    #: Why: "interval", "size", "new sequence header", "unpublished" (or what stopped it).
    reason: str = "unpublished"


Op = Start | Write | End


def _since(timestamp: int, base: int) -> int:
    """Milliseconds from `base` to `timestamp` on RTMP's 32-bit clock; 0 if it is before."""
    delta = (timestamp - base) & 0xFFFFFFFF
    return 0 if delta >= 0x80000000 else delta


class Segmenter:
    """One recording's cut points (see the module docstring).

    Args:
        interval_ms: start a new file at the first cut point this long after the file's
            start (0: never on time).
        max_size: start a new file at the first cut point once this many bytes were
            written to the file (FLV bytes; 0: never on size).
    """

    def __init__(self, interval_ms: int = 0, max_size: int = 0) -> None:
        self.interval_ms = interval_ms
        self.max_size = max_size
        self.metadata: DataPacket | None = None
        self.video_header: Packet | None = None
        self.audio_header: Packet | None = None
        self._seen_video = False
        self._seen_audio = False
        self._open = False
        self._base = 0
        #: FLV bytes of the current file so far.
        self.size = 0
        self._changed = False
        #: Video messages dropped while waiting for the first key frame.
        self.skipped = 0

    @property
    def is_open(self) -> bool:
        return self._open

    def _expects_video(self) -> bool:
        if self.video_header is not None or self._seen_video:
            return True
        metadata: dict[str, Any] | None = self.metadata.metadata if self.metadata is not None else None
        codec = (metadata or {}).get("videocodecid")
        return codec not in (None, 0, "", {})  # an empty object: the stream says it has no video

    def _start(self, timestamp: int) -> list[Op]:
        headers: list[Packet] = [p for p in (self.metadata, self.video_header, self.audio_header) if p is not None]
        self._open = True
        self._base = timestamp
        self._changed = False
        self.size = FILE_HEADER_SIZE + sum(TAG_OVERHEAD + len(p.payload) for p in headers)
        has_video = self._expects_video()
        has_audio = self.audio_header is not None or self._seen_audio
        return [Start(headers, has_audio, has_video)]

    def _cut_reason(self, timestamp: int) -> str:
        if self._changed:
            return "new sequence header"
        if self.interval_ms and _since(timestamp, self._base) >= self.interval_ms:
            return "interval"
        if self.max_size and self.size >= self.max_size:
            return "size"
        return ""

    def push(self, packet: Packet) -> list[Op]:
        """What to do with the next published message."""
        if isinstance(packet, DataPacket):
            if packet.name == "onMetaData":
                self.metadata = packet
            return self._write(packet) if self._open else []
        if packet.type_id not in (MessageType.AUDIO, MessageType.VIDEO):
            return []
        if packet.is_sequence_header:
            return self._header(packet)
        if packet.is_video:
            self._seen_video = True
            can_cut = packet.is_key_frame  # (an end of sequence is none)
        else:
            self._seen_audio = True
            can_cut = not self._expects_video()
        ops: list[Op] = []
        if not self._open:
            if not can_cut:
                self.skipped += packet.is_video
                return []
            ops = self._start(packet.timestamp)
        elif can_cut:
            reason = self._cut_reason(packet.timestamp)
            if reason:
                ops = [End(reason), *self._start(packet.timestamp)]
        ops.extend(self._write(packet))
        return ops

    def _header(self, packet: Packet) -> list[Op]:
        old = self.video_header if packet.is_video else self.audio_header
        if packet.is_video:
            self.video_header = packet
        else:
            self.audio_header = packet
        if not self._open or (old is not None and old.payload == packet.payload):
            return []  # (written at the start of each file; encoders may repeat them)
        self._changed = True
        return self._write(packet)

    def _write(self, packet: Packet) -> list[Op]:
        # (metadata at 0 stays at 0: ffmpeg makes a subtitle stream of onMetaData at any other time)
        at_zero = isinstance(packet, DataPacket) and packet.timestamp == 0
        rebased = 0 if at_zero else _since(packet.timestamp, self._base)
        self.size += TAG_OVERHEAD + len(packet.payload)
        return [Write(rebased, packet)]

    def end(self) -> list[Op]:
        """The publisher stopped: close the file, if one is open."""
        if not self._open:
            return []
        self._open = False
        return [End()]
