"""The track a recording keeps of an Enhanced RTMP v2 multitrack stream: track 0.

A recording is one file per cut, each with one video and one audio track, the form every
player and editor reads (FLV and MP4 alike). Of a multitrack publish (OBS's ladder,
ffmpeg 9 with two video streams) it keeps the default track 0, unwrapped into plain
packets (legacy AVC/AAC, or E-RTMP v1 FourCC for other codecs) as a legacy player gets
it; the other tracks, usually smaller renditions of the same picture, are left out. A
message that is not Multitrack is track 0 as it is (no copy).
"""

from __future__ import annotations

from neurtmp import MessageType, Packet, TrackForm, split_audio, split_video

__all__ = ["DEFAULT_TRACK", "track0"]

#: The track recorded.
DEFAULT_TRACK = 0


def track0(packet: Packet) -> Packet | None:
    """`packet`'s track 0 as a plain packet; None when it carries no track 0."""
    if packet.type_id == MessageType.VIDEO:
        split = split_video
    elif packet.type_id == MessageType.AUDIO:
        split = split_audio
    else:
        return packet
    try:
        parts = split(packet.payload, TrackForm.LEGACY)
    except Exception:  # a malformed extended tag: recorded as it came
        return packet
    for track, payload in parts:
        if track == DEFAULT_TRACK:
            return packet if payload is packet.payload else Packet(packet.type_id, packet.timestamp, payload)
    return None
