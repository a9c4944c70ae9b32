"""HLS media playlists spliced from the playlists of several encodes (ffmpeg runs).

ffmpeg's dash muxer, which writes our HLS playlists beside the manifest (-hls_playlist),
cannot continue a playlist: in ffmpeg 9 it has no -start_number and none of the hls
muxer's append_list, discont_start or omit_endlist flags (the hls muxer has them, but it
would write a second copy of every segment beside the DASH ones). Each run starts again
at segment 1 and, when it exits at the end of its input or on SIGTERM or SIGINT, ends
its playlists with #EXT-X-ENDLIST (and its manifest turns static); only SIGKILL leaves
them open. So each run writes a folder of its own and the playlist players get is made
here: the runs' segments in order, numbered on from one run to the next (#EXT-X-MEDIA-
SEQUENCE never goes back), an #EXT-X-DISCONTINUITY (and a new #EXT-X-MAP) where an encode
restarted, #EXT-X-DISCONTINUITY-SEQUENCE moved on as those slide out of the window, and
#EXT-X-ENDLIST only when the caller says the stream has ended.

Pure functions: parsing ffmpeg's text, and writing the spliced one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["Entry", "Parsed", "Segment", "contiguous_tail", "parse_media", "render_media"]

_TAG_VALUE = re.compile(r"#([A-Z0-9-]+):?(.*)")


@dataclass(frozen=True)
class Entry:
    """One segment of an ffmpeg media playlist, as it lists it."""

    duration: float
    uri: str
    #: Other tags of the segment, in order (#EXT-X-PROGRAM-DATE-TIME).
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Parsed:
    """An ffmpeg media playlist: its target duration, first sequence number, init segment
    and segments (#EXT-X-ENDLIST is dropped: whether the stream ended is not ffmpeg's say)."""

    target: int
    first: int
    init: str | None
    entries: tuple[Entry, ...]


@dataclass(frozen=True)
class Segment:
    """One segment of a spliced playlist."""

    #: Its media sequence number, counted across runs.
    number: int
    #: Its discontinuity sequence number: one more for each restart before it.
    cc: int
    duration: float
    #: The URIs players get for it and for its initialization segment.
    uri: str
    init: str
    tags: tuple[str, ...] = ()
    #: Whether it is the first segment of its run (a restart shows before it).
    first_of_run: bool = False


def parse_media(text: str) -> Parsed | None:
    """ffmpeg's media playlist `text`; None when it is not one, or is cut short."""
    if not text.startswith("#EXTM3U") or not text.endswith("\n"):
        return None
    target, first, init = 0, 0, None
    entries: list[Entry] = []
    duration: float | None = None
    tags: list[str] = []
    for line in text.splitlines()[1:]:
        if not line:
            continue
        if not line.startswith("#"):
            if duration is None:
                return None  # a URI without #EXTINF: not ffmpeg's
            entries.append(Entry(duration, line, tuple(tags)))
            duration, tags = None, []
            continue
        match = _TAG_VALUE.fullmatch(line)
        name, value = (match.group(1), match.group(2)) if match else ("", "")
        try:
            if name == "EXT-X-STREAM-INF":
                return None  # a master playlist
            if name == "EXT-X-TARGETDURATION":
                target = int(value)
            elif name == "EXT-X-MEDIA-SEQUENCE":
                first = int(value)
            elif name == "EXT-X-MAP":
                found = re.search(r'URI="([^"]*)"', value)
                init = found.group(1) if found else None
            elif name == "EXTINF":
                duration = float(value.partition(",")[0])
            elif name not in ("EXT-X-VERSION", "EXT-X-ENDLIST") and (duration is not None or entries):
                tags.append(line)  # a segment's own tag (those before the first #EXTINF are the head's)
        except ValueError:
            return None
    return Parsed(target, first, init, tuple(entries))


def contiguous_tail(segments: Sequence[Segment], usable: Callable[[Segment], bool]) -> list[Segment]:
    """The newest run of `segments` that players can take in order: after the last one
    not `usable` (not written whole) and after the last gap in the numbering (a run
    whose playlist lags its own last segments), since a playlist numbers its segments
    one after the other and cannot skip."""
    start = 0
    for i, segment in enumerate(segments):
        if not usable(segment):
            start = i + 1
        elif i > start and segment.number != segments[i - 1].number + 1:
            start = i
    return list(segments[start:])


def render_media(segments: Sequence[Segment], target: int, origin_cc: int, ended: bool) -> str:
    """The spliced media playlist of `segments` (non-empty, numbered one after the other).

    Args:
        target: the target duration (seconds); raised to the longest segment's, rounded.
        origin_cc: the discontinuity sequence number the stream started with: a first
            segment with a higher one is preceded by #EXT-X-DISCONTINUITY when it is the
            first of its run (a restart players may have seen the other side of).
        ended: the stream has ended for good: #EXT-X-ENDLIST.
    """
    first = segments[0]
    lead = first.first_of_run and first.cc > origin_cc
    target = max(target, *(math.floor(s.duration + 0.5) for s in segments))
    lines = ["#EXTM3U", "#EXT-X-VERSION:6", f"#EXT-X-TARGETDURATION:{target}",
             f"#EXT-X-MEDIA-SEQUENCE:{first.number}", f"#EXT-X-DISCONTINUITY-SEQUENCE:{first.cc - lead}"]
    init = None
    for i, segment in enumerate(segments):
        if (i == 0 and lead) or (i > 0 and segment.cc != segments[i - 1].cc):
            lines.append("#EXT-X-DISCONTINUITY")
        if segment.init != init:
            init = segment.init
            lines.append(f'#EXT-X-MAP:URI="{init}"')
        lines.append(f"#EXTINF:{segment.duration:.6f},")
        lines.extend(segment.tags)
        lines.append(segment.uri)
    if ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"
