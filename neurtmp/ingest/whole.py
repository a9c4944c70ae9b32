"""Only whole segments in what the HTTP side serves.

ffmpeg does not notice a full disk: it renames truncated or empty segments into place,
writes empty playlists and, once there is room again, playlists that list those broken
segments. So each served playlist and manifest is checked against the disk: a segment
is whole when its file is a sequence of complete ISO BMFF boxes with its media in it
(a truncated box is the mark of a short write). A media playlist or manifest lists the
newest run of whole segments only (the sequence number or startNumber moves on by the
ones left out, so the numbering stays true); one that is itself truncated, or that has
no whole segment, is not served (None).
"""

from __future__ import annotations

import os
import re
import struct
import xml.etree.ElementTree as ET

__all__ = ["segment_is_whole", "whole_manifest", "whole_playlist"]

_MPD = "urn:mpeg:dash:schema:mpd:2011"
_NS = f"{{{_MPD}}}"
for _prefix, _uri in (("", _MPD), ("xsi", "http://www.w3.org/2001/XMLSchema-instance"),
                      ("xlink", "http://www.w3.org/1999/xlink")):
    ET.register_namespace(_prefix, _uri)

#: Verdicts kept, by (path, size, mtime): a finished segment never changes.
_CACHE_SIZE = 4096
_verdicts: dict[tuple[str, int, int], bool] = {}
#: Boxes that hold media: a media segment's mdat, an initialization segment's moov.
_MEDIA_BOXES = (b"mdat", b"moov")
_TEMPLATE = re.compile(r"\$(RepresentationID|Number|Time|Bandwidth)(?:%0(\d+)d)?\$")


def _boxes_whole(path: str) -> bool:
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        position, media = 0, False
        while position < size:
            f.seek(position)
            header = f.read(16)
            if len(header) < 8:
                return False
            box_size, kind = struct.unpack(">I4s", header[:8])
            if box_size == 1:  # a 64-bit size follows
                if len(header) < 16:
                    return False
                box_size = struct.unpack(">Q", header[8:16])[0]
            if box_size < 8:  # 0 ("to the end of the file") is never written for a segment
                return False
            media = media or kind in _MEDIA_BOXES
            position += box_size
        return position == size and media


def segment_is_whole(path: str) -> bool:
    """Whether the segment at `path` exists and was written whole."""
    try:
        stat = os.stat(path)
    except OSError:
        return False
    key = (path, stat.st_size, stat.st_mtime_ns)
    verdict = _verdicts.get(key)
    if verdict is None:
        try:
            verdict = _boxes_whole(path)
        except OSError:
            return False
        if len(_verdicts) >= _CACHE_SIZE:
            _verdicts.clear()
        _verdicts[key] = verdict
    return verdict


def _whole_in(folder: str, name: str) -> bool:
    return bool(name) and os.path.basename(name) == name and segment_is_whole(os.path.join(folder, name))


def whole_playlist(text: str, folder: str) -> str | None:
    """An HLS playlist from `folder` as it may be served, or None when it may not.

    A master playlist is served as it is once whole; a media playlist lists the newest
    run of whole segments, with #EXT-X-MEDIA-SEQUENCE moved on by those left out.
    """
    if not text.startswith("#EXTM3U") or not text.endswith("\n"):
        return None  # empty or truncated
    lines = text.splitlines()
    if any(line.startswith("#EXT-X-STREAM-INF") for line in lines):
        return text
    head: list[str] = []
    blocks: list[tuple[list[str], str]] = []  # (the segment's lines, its URI)
    pending: list[str] = []
    for line in lines:
        if line and not line.startswith("#"):
            blocks.append(([*pending, line], line))
            pending = []
        elif blocks or pending or line.startswith("#EXTINF"):
            pending.append(line)
        else:
            head.append(line)
    tail = [line for line in pending if line == "#EXT-X-ENDLIST"]
    for line in head:
        init = re.match(r'#EXT-X-MAP:URI="([^"]*)"', line)
        if init and not _whole_in(folder, init.group(1)):
            return None
    broken = [i for i, (_, uri) in enumerate(blocks) if not _whole_in(folder, uri)]
    if not broken:
        return text
    kept = blocks[broken[-1] + 1:]
    if not kept:
        return None
    left_out = broken[-1] + 1
    head = [f"#EXT-X-MEDIA-SEQUENCE:{int(line.partition(':')[2]) + left_out}"
            if line.startswith("#EXT-X-MEDIA-SEQUENCE:") else line for line in head]
    return "\n".join([*head, *(line for block, _ in kept for line in block), *tail]) + "\n"


def _expand(template: str, representation: str, number: int = 0, time: int = 0, bandwidth: str = "") -> str:
    def value(match: re.Match[str]) -> str:
        name, width = match.group(1), match.group(2)
        if name == "RepresentationID":
            return representation
        if name == "Bandwidth":
            return bandwidth
        number_or_time = number if name == "Number" else time
        return f"{number_or_time:0{width}d}" if width else str(number_or_time)

    return _TEMPLATE.sub(value, template).replace("$$", "$")


def whole_manifest(data: bytes, folder: str) -> bytes | None:
    """A DASH manifest from `folder` as it may be served, or None when it may not.

    Each representation's SegmentTimeline lists the newest run of whole segments, with
    startNumber moved on by those left out.
    """
    try:
        root = ET.fromstring(data)
    except ET.ParseError:
        return None  # empty or truncated
    changed = False
    for representation in root.iter(f"{_NS}Representation"):
        template = representation.find(f"{_NS}SegmentTemplate")
        if template is None:
            continue
        rid, bandwidth = representation.get("id", ""), representation.get("bandwidth", "")
        init = template.get("initialization")
        if init and not _whole_in(folder, _expand(init, rid, bandwidth=bandwidth)):
            return None
        timeline = template.find(f"{_NS}SegmentTimeline")
        if timeline is None:
            continue
        segments: list[tuple[int, int]] = []  # (t, d)
        start_time = 0
        for entry in timeline.findall(f"{_NS}S"):
            start_time = int(entry.get("t", start_time))
            duration = int(entry.get("d", "0"))
            for _ in range(max(0, int(entry.get("r", "0"))) + 1):
                segments.append((start_time, duration))
                start_time += duration
        first = int(template.get("startNumber", "1"))
        media = template.get("media", "")
        broken = [i for i, (t, _) in enumerate(segments)
                  if not _whole_in(folder, _expand(media, rid, first + i, t, bandwidth))]
        if not broken:
            continue
        kept = segments[broken[-1] + 1:]
        if not kept:
            return None
        changed = True
        template.set("startNumber", str(first + broken[-1] + 1))
        for entry in list(timeline):
            timeline.remove(entry)
        runs: list[list[int]] = []  # [t, d, repeats]
        for t, duration in kept:
            if runs and runs[-1][1] == duration:
                runs[-1][2] += 1
            else:
                runs.append([t, duration, 0])
        for i, (t, duration, repeats) in enumerate(runs):
            attributes = {"t": str(t)} if i == 0 else {}
            attributes["d"] = str(duration)
            if repeats:
                attributes["r"] = str(repeats)
            ET.SubElement(timeline, f"{_NS}S", attributes)
    if not changed:
        return data
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))
