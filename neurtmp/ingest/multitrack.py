"""A multitrack input's first GOPs: are its tracks' key frames aligned, and at what bitrates.

An encoder that sends its own ladder (Enhanced RTMP v2 Multitrack: OBS, ffmpeg 9 with
several video streams) lets the ingest package its tracks as they are instead of
transcoding them, but only if every track has its key frames at the same instants:
segments are cut at key frames, and players switch rungs at segment boundaries. ffmpeg
cannot be asked that before it starts, so the transcoder holds the input from the
highest track's first key frame until that track has had `PROBE_KEY_FRAMES` key frames
(`MAX_PROBE_TAGS` at most), notes each track's key frames and bytes here, decides,
starts ffmpeg and hands it what it held. While the tracks are passed through, their key
frames are checked on (`AlignmentWatch`); an encoder whose tracks drift apart later has
its ladder transcoded from then on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import neurtmp

__all__ = ["MAX_PROBE_TAGS", "PROBE_KEY_FRAMES", "RECOVERY_GOPS", "AlignmentWatch", "TrackProbe", "legacy_tracks",
           "video_kind"]

#: Key frames of the highest track seen before deciding: two whole GOPs.
PROBE_KEY_FRAMES = 3
#: Messages held while probing (about 15 s of a 3-track 30 fps stream with audio); past
#: it the decision is taken on what was seen.
MAX_PROBE_TAGS = 2048
#: Aligned GOPs in a row after which tracks transcoded for a while (the slate of a reconnect
#: grace, which has one track) are passed through again.
RECOVERY_GOPS = 2
#: Key frames this many milliseconds apart are at the same instant (FLV's clock is ms).
ALIGN_TOLERANCE_MS = 1


def legacy_tracks(payload: bytes) -> list[tuple[int, bytes]]:
    """Each track of a video message, unwrapped to its legacy (or E-RTMP v1) form:
    [(track id, payload)]; a malformed message is taken as track 0 whole (ffmpeg judges it)."""
    try:
        return neurtmp.split_video(payload, neurtmp.TrackForm.LEGACY)
    except Exception:
        return [(0, payload)]


def video_kind(payload: bytes) -> tuple[bool, bool]:
    """(key frame, sequence header) of a legacy or E-RTMP v1 video payload."""
    if not payload:
        return False, False
    first = payload[0]
    key = (first >> 4) & 7 == 1
    if first & 0x80:  # E-RTMP v1: the low nibble is the packet type, 0 = SequenceStart
        return key, first & 0x0F == 0
    return key, len(payload) > 1 and payload[1] == 0 and first & 0x0F in (7, 12)


@dataclass
class _Track:
    key_times: list[int] = field(default_factory=list)
    bytes: int = 0
    last_time: int = 0


class TrackProbe:
    """What the first GOPs of each track showed (see the module docstring).

    Args:
        reference: the track the others are measured against (the highest).
    """

    def __init__(self, reference: int) -> None:
        self.reference = reference
        self._tracks: dict[int, _Track] = {}
        self.start: int | None = None

    def note(self, track: int, timestamp: int, size: int, key: bool) -> None:
        """One frame of `track` (after the reference's first key frame)."""
        if self.start is None:
            if track != self.reference or not key:
                return
            self.start = timestamp
        entry = self._tracks.setdefault(track, _Track())
        entry.bytes += size
        entry.last_time = max(entry.last_time, timestamp)
        if key:
            entry.key_times.append(timestamp)

    @property
    def ready(self) -> bool:
        """The reference track has had its `PROBE_KEY_FRAMES` key frames."""
        entry = self._tracks.get(self.reference)
        return entry is not None and len(entry.key_times) >= PROBE_KEY_FRAMES

    def aligned(self) -> bool:
        """Every track's key frames are the reference's, within the probe."""
        reference = self._tracks.get(self.reference)
        if reference is None:
            return False
        # up to the reference's last key frame, not including it: the other tracks'
        # frames of that instant may come after it
        end = reference.key_times[-1] - ALIGN_TOLERANCE_MS
        expected = [t for t in reference.key_times if t < end]
        for entry in self._tracks.values():
            times = [t for t in entry.key_times if t < end]
            if len(times) != len(expected):
                return False
            if any(abs(a - b) > ALIGN_TOLERANCE_MS for a, b in zip(times, expected, strict=True)):
                return False
        return True

    def kbps(self, track: int) -> int:
        """`track`'s bitrate over the probe, kbit/s (0: not seen)."""
        entry = self._tracks.get(track)
        if entry is None or self.start is None:
            return 0
        reference = self._tracks[self.reference].key_times
        end = reference[-1] if len(reference) > 1 else entry.last_time
        span = max(1, end - self.start)
        return entry.bytes * 8 // span  # bits per ms = kbit/s


class AlignmentWatch:
    """Tracks' key frames checked against the reference track's as the stream goes on:
    each GOP of the reference must start, in every other track, with one key frame at its
    instant and have no other. A GOP is judged once the reference's next-but-one key frame
    has come (a track's key frame of an instant may come a little after the reference's).
    Watches a run that passes tracks through (it ends at the first misaligned GOP), or a
    run that transcodes them for a while (it may pass them through again after
    `RECOVERY_GOPS` aligned ones).

    Args:
        reference: the track the others are measured against.
        tracks: the other tracks passed through.
    """

    def __init__(self, reference: int, tracks: Iterable[int]) -> None:
        self.reference = reference
        self._keys: dict[int, list[int]] = {track: [] for track in tracks if track != reference}
        self._reference_keys: list[int] = []
        #: What the last misaligned GOP showed (None: none was).
        self.misaligned: str | None = None
        #: Aligned GOPs judged in a row.
        self.aligned_gops = 0

    def note(self, track: int, timestamp: int, key: bool) -> bool:
        """One frame of `track`; False when it made a GOP be judged misaligned."""
        if not key:
            return True
        if track in self._keys:
            self._keys[track].append(timestamp)
            return True
        if track != self.reference:
            return True
        self._reference_keys.append(timestamp)
        if len(self._reference_keys) < 3:
            return True
        start, end = self._reference_keys[-3], self._reference_keys[-2]
        self._reference_keys = self._reference_keys[-2:]
        problem = None
        for other, times in self._keys.items():
            within = [t for t in times if t < end - ALIGN_TOLERANCE_MS]
            self._keys[other] = times[len(within):]
            if problem is None and (len(within) != 1 or abs(within[0] - start) > ALIGN_TOLERANCE_MS):
                problem = (f"track {other} had key frames at {within} ms in track {self.reference}'s "
                           f"GOP from {start} to {end} ms")
        if problem is not None:
            self.misaligned, self.aligned_gops = problem, 0
            return False
        self.aligned_gops += 1
        return True
