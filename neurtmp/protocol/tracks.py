"""The tracks of an Enhanced RTMP v2 multitrack message, as packets of their own.

A multitrack publish (OBS's ladder, ffmpeg 9 with several video or audio streams)
carries several tracks in one stream; players, recordings and relays that take one track
get it unwrapped (legacy AVC/AAC, or E-RTMP v1 FourCC for other codecs) by the helpers
here. A message that is not Multitrack is track `DEFAULT_TRACK` as it is: no copy.
"""

from __future__ import annotations

from neurtmp.protocol.ertmp import TrackForm, split_audio, split_video
from neurtmp.protocol.message import MessageType
from neurtmp.protocol.packet import Packet

__all__ = ["DEFAULT_TRACK", "one_track", "split_tracks"]

#: The default track of each media type: what players that asked for none get, and what
#: a message that is not Multitrack is.
DEFAULT_TRACK = 0


def split_tracks(packet: Packet, form: TrackForm = TrackForm.LEGACY) -> list[tuple[int, Packet]]:
    """Each track's part of an audio or video message, as a packet of its own:
    [(track id, packet)]. A message that is not Multitrack (or not audio or video, or
    malformed) comes back as itself, `DEFAULT_TRACK`: no copy, no new packet."""
    if packet.type_id == MessageType.VIDEO:
        split = split_video
    elif packet.type_id == MessageType.AUDIO:
        split = split_audio
    else:
        return [(DEFAULT_TRACK, packet)]
    try:
        parts = split(packet.payload, form)
    except Exception:  # a malformed extended tag: taken as it came
        return [(DEFAULT_TRACK, packet)]
    if len(parts) == 1 and (parts[0][1] is packet.payload or parts[0][1] == packet.payload):
        return [(parts[0][0], packet)]  # (E-RTMP v1 comes back rebuilt, the same bytes)
    return [(track, Packet(packet.type_id, packet.timestamp, payload)) for track, payload in parts]


def one_track(packet: Packet, track: int = DEFAULT_TRACK) -> Packet | None:
    """`packet`'s part of `track`, unwrapped (`TrackForm.LEGACY`); None when it carries
    none. Messages other than audio and video come back as they are."""
    if packet.type_id not in (MessageType.VIDEO, MessageType.AUDIO):
        return packet
    return next((part for number, part in split_tracks(packet) if number == track), None)
