"""DASH manifests spliced from the manifests of several encodes (ffmpeg runs): a Period each.

ffmpeg's dash muxer writes one Period and cannot continue a manifest: a restarted ffmpeg
begins a new timeline at 0 and $Number$ at 1 with new initialization segments, and on its
way out writes a static manifest. (Its -availability_start_time_ms and -output_ts_offset
could keep one timeline going, but not one set of segment names nor one initialization
segment, which a single Period needs.) An encode restart is what DASH Periods are for, so
the manifest players get has a Period per run (new initialization segments, numbers and timeline of its own).
Each Period starts where its run's media really lies on the wall clock: its run's
availabilityStartTime less the stream's (the first run's), never before the end of the
Period before it, so players at the live edge find its segments when the clock says they
exist; the restart itself is a gap between Periods, which players skip. The manifest
stays dynamic, with the stream's availabilityStartTime, until the caller says the stream
has ended; then it is static, with mediaPresentationDuration.

Pure functions on `xml.etree.ElementTree` elements.
"""

from __future__ import annotations

import copy
import datetime
import xml.etree.ElementTree as ET
from collections.abc import Sequence

__all__ = ["availability_start", "content_end", "highest_number", "parse_manifest", "period_of", "relocate",
           "render_manifest"]

_MPD = "urn:mpeg:dash:schema:mpd:2011"
_NS = f"{{{_MPD}}}"
for _prefix, _uri in (("", _MPD), ("xsi", "http://www.w3.org/2001/XMLSchema-instance"),
                      ("xlink", "http://www.w3.org/1999/xlink")):
    ET.register_namespace(_prefix, _uri)
#: MPD attributes of a live manifest that a static one does not have, and the reverse.
_DYNAMIC_ONLY = ("minimumUpdatePeriod", "timeShiftBufferDepth", "suggestedPresentationDelay")
_STATIC_ONLY = ("mediaPresentationDuration",)


def parse_manifest(data: bytes) -> ET.Element | None:
    """An MPD's root element; None when `data` is not one (empty, cut short)."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError:
        return None
    return root if root.tag == f"{_NS}MPD" and root.find(f"{_NS}Period") is not None else None


def period_of(root: ET.Element) -> ET.Element | None:
    """The manifest's (first) Period."""
    return root.find(f"{_NS}Period")


def _seconds(duration: str) -> float:
    """An xs:duration as ffmpeg writes it ("PT1.5S", "PT1M2.0S", "PT1H0M0.0S") in seconds."""
    total, number = 0.0, ""
    for char in duration.removeprefix("PT"):
        if char in "HMS":
            total += float(number or 0) * {"H": 3600, "M": 60, "S": 1}[char]
            number = ""
        else:
            number += char
    return total


def _duration(seconds: float) -> str:
    return f"PT{seconds:.3f}S"


def availability_start(root: ET.Element) -> float | None:
    """The manifest's availabilityStartTime (seconds since the epoch), if it has one."""
    text = root.get("availabilityStartTime")
    if not text:
        return None
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _format_time(epoch: float) -> str:
    moment = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _templates(period: ET.Element) -> list[ET.Element]:
    return [template for template in period.iter(f"{_NS}SegmentTemplate")]


def _timeline(template: ET.Element) -> list[tuple[int, int]]:
    """(t, d) of each segment a SegmentTemplate's SegmentTimeline lists."""
    segments: list[tuple[int, int]] = []
    timeline = template.find(f"{_NS}SegmentTimeline")
    start = 0
    for entry in timeline.findall(f"{_NS}S") if timeline is not None else ():
        start = int(entry.get("t", start))
        duration = int(entry.get("d", "0"))
        for _ in range(max(0, int(entry.get("r", "0"))) + 1):
            segments.append((start, duration))
            start += duration
    return segments


def content_end(period: ET.Element) -> float:
    """Seconds from the Period's start to the end of its last segment (its longest
    representation's)."""
    end = 0.0
    for template in _templates(period):
        segments = _timeline(template)
        if segments:
            t, d = segments[-1]
            scale = int(template.get("timescale", "1")) or 1
            end = max(end, (t + d - int(template.get("presentationTimeOffset", "0"))) / scale)
    return end


def highest_number(period: ET.Element) -> int:
    """The highest $Number$ the Period lists (0: none)."""
    highest = 0
    for template in _templates(period):
        count = len(_timeline(template))
        if count:
            highest = max(highest, int(template.get("startNumber", "1")) + count - 1)
    return highest


def relocate(period: ET.Element, period_id: str, start: float, init_prefix: str, media_prefix: str,
             number_offset: int) -> ET.Element:
    """A copy of a run's Period as the spliced manifest lists it: its id and start, the
    initialization and media templates under their served prefixes, and its $Number$s
    moved on by `number_offset` (the numbers before its run)."""
    period = copy.deepcopy(period)
    period.set("id", period_id)
    period.set("start", _duration(start))
    period.attrib.pop("duration", None)
    for template in _templates(period):
        if template.get("initialization"):
            template.set("initialization", init_prefix + template.get("initialization", ""))
        template.set("media", media_prefix + template.get("media", ""))
        template.set("startNumber", str(int(template.get("startNumber", "1")) + number_offset))
    return period


def render_manifest(head: ET.Element, periods: Sequence[ET.Element], origin: float, now: float,
                    segment_duration: float, window: int, ended: bool) -> bytes:
    """The spliced manifest: `head`'s attributes and elements other than its Periods,
    then `periods` (relocated, in order).

    Args:
        origin: the stream's availabilityStartTime (seconds since the epoch).
        now: the publishTime.
        segment_duration: seconds per segment: the update period and presentation delay.
        window: segments listed: the time shift buffer's depth.
        ended: the stream has ended for good: a static manifest of the whole duration.
    """
    root = ET.Element(head.tag, {name: value for name, value in head.attrib.items()
                                 if name not in _DYNAMIC_ONLY + _STATIC_ONLY})
    root.set("availabilityStartTime", _format_time(origin))
    root.set("publishTime", _format_time(now))
    if ended:
        root.set("type", "static")
        last = periods[-1]
        end = _seconds(last.get("start", "PT0S")) + content_end(last)
        root.set("mediaPresentationDuration", _duration(end))
    else:
        root.set("type", "dynamic")
        root.set("minimumUpdatePeriod", _duration(segment_duration))
        root.set("suggestedPresentationDelay", _duration(segment_duration))
        root.set("timeShiftBufferDepth", _duration(segment_duration * window))
    for child in head:
        if child.tag != f"{_NS}Period":
            root.append(copy.deepcopy(child))
    root.extend(periods)
    ET.indent(root, "\t")
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))
