"""Enhanced RTMP v2 tracks in a live stream: what is kept per track, and legacy views.

A multitrack publisher (OBS's ladder, ffmpeg 9 with two video streams) sends several
video (or audio) tracks in one RTMP stream; each message names its track (a message that
is not E-RTMP Multitrack is track 0). A live stream keeps, per track id, the latest
sequence header as published (`TrackHeaders`), so that a late-joining multitrack player
gets every track's decoder configuration before any frame.

A legacy player (one that did not announce multitrack: ffplay, VLC, older ffmpeg,
rtmpdump, every HTTP-FLV player) gets one track, unwrapped into plain packets (legacy
AVC/AAC, or E-RTMP v1 FourCC for HEVC/AV1/VP9): a `TrackView`. A view exists only while
some legacy player watches its track; each message is unwrapped once for all views
(`split_tracks`), and a message that is not multitrack is passed on as it is, so a
plain single-track stream costs its legacy players nothing extra.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from neurtmp import DEFAULT_TRACK, DataPacket, MessageType, Packet, TrackForm, split_tracks
from neurtmp.live.audience import Audience, Viewer
from neurtmp.live.gop import GopCache

__all__ = ["MAX_TRACK_ID", "TrackHeaders", "TrackView", "start_on_key_frames", "track_ids"]

#: The highest track id (a UI8 in the Multitrack header).
MAX_TRACK_ID = 255


def track_ids(packet: Packet) -> tuple[int, ...]:
    """The tracks an audio or video message carries ((0,) for one that is not Multitrack)."""
    return tuple(track for track, _ in split_tracks(packet, TrackForm.ONE_TRACK))


class TrackHeaders:
    """The latest video and audio sequence header of each track, as published."""

    def __init__(self) -> None:
        self.video: dict[int, Packet] = {}
        self.audio: dict[int, Packet] = {}

    def clear(self) -> None:
        self.video.clear()
        self.audio.clear()

    def note(self, packet: Packet, tracks: Iterable[int]) -> None:
        """Keep a sequence header for each of the tracks it configures."""
        headers = self.video if packet.type_id == MessageType.VIDEO else self.audio
        for track in tracks:
            headers[track] = packet

    @property
    def multitrack(self) -> bool:
        """More than one track of a kind, or a track other than 0."""
        return any(len(h) > 1 or (h and DEFAULT_TRACK not in h) for h in (self.video, self.audio))

    def packets(self) -> list[Packet]:
        """Every header once (a ManyTracks header configures several tracks): video by
        track, then audio by track."""
        seen: dict[int, Packet] = {}
        for headers in (self.video, self.audio):
            for track in sorted(headers):
                seen.setdefault(id(headers[track]), headers[track])
        return list(seen.values())

    def audio_track_for(self, video_track: int) -> int:
        """The audio track a legacy player of `video_track` hears: the same id when
        there is such an audio track, else track 0."""
        return video_track if video_track in self.audio else DEFAULT_TRACK

    def key_track(self) -> int:
        """The video track whose key frames start the GOP cache: the lowest one."""
        return min(self.video, default=DEFAULT_TRACK)


def start_on_key_frames(gop: Sequence[Packet], tracks: Sequence[tuple[int, ...]]) -> list[Packet]:
    """A GOP cache of a multitrack stream made fit for a late joiner: each video track's
    frames before its own first key frame are left out (audio and data kept).
    `tracks[i]` is the track ids of `gop[i]`."""
    started: set[int] = set()
    out = []
    for packet, ids in zip(gop, tracks, strict=True):
        if packet.type_id == MessageType.VIDEO:
            if packet.is_key_frame:
                started.update(ids)
            if not started.issuperset(ids):
                continue
        out.append(packet)
    return out


class TrackView:
    """One video track (and its audio) of a live stream, unwrapped for legacy players:
    its own sequence headers, GOP cache and audience.

    Args:
        track: the video track id.
        gop_packets, gop_bytes: the bounds of its GOP cache.
        on_start: see `Audience`.
    """

    def __init__(self, track: int, gop_packets: int, gop_bytes: int, on_start: Callable[[Any], None]) -> None:
        self.track = track
        self.audience = Audience(on_start)
        self.gop = GopCache(gop_packets, gop_bytes)
        self.video_header: Packet | None = None
        self.audio_header: Packet | None = None

    def __repr__(self) -> str:
        return f"<TrackView track={self.track} players={len(self.audience)}>"

    def seed(self, headers: TrackHeaders, gop: Sequence[Packet]) -> None:
        """Start from what the stream has (a view made while the stream is live): its
        track's headers and the stream's GOP cache, unwrapped once."""
        self.video_header = self.audio_header = None
        self.gop.clear()
        audio_track = headers.audio_track_for(self.track)
        for kind, track in ((headers.video, self.track), (headers.audio, audio_track)):
            header = kind.get(track)
            if header is not None:
                for part in self._mine(header, split_tracks(header), audio_track):
                    self._keep(part)
        for packet in gop:
            for part in self._mine(packet, split_tracks(packet), audio_track):
                self._keep(part)

    def start_packets(self, metadata: Packet | None, absent: Packet | None) -> list[Packet]:
        packets = [p for p in (metadata, self.video_header, self.audio_header) if p is not None]
        if absent is not None:
            packets.append(absent)
        return packets

    def send(self, packet: Packet, parts: list[tuple[int, Packet]], audio_track: int,
             absent_marker: Callable[[Packet], Packet | None] | None = None) -> None:
        """One message of the stream (`parts`: its tracks, from `split_tracks`): this
        view's track of it, if any, kept and sent to the view's players."""
        for part in self._mine(packet, parts, audio_track):
            self._keep(part)
            self.audience.send(part, absent_marker)

    def send_as_is(self, packet: Packet, absent_marker: Callable[[Packet], Packet | None] | None = None) -> None:
        """A legacy packet every view shows (the slate during a reconnect grace)."""
        self._keep(packet)
        self.audience.send(packet, absent_marker)

    def _mine(self, packet: Packet, parts: list[tuple[int, Packet]], audio_track: int) -> list[Packet]:
        if packet.type_id == MessageType.VIDEO:
            return [part for track, part in parts if track == self.track]
        if packet.type_id == MessageType.AUDIO:
            return [part for track, part in parts if track == audio_track]
        return [packet]

    def _keep(self, packet: Packet) -> None:
        if packet.is_sequence_header:
            if packet.type_id == MessageType.VIDEO:
                self.video_header = packet
            else:
                self.audio_header = packet
        elif not (isinstance(packet, DataPacket) and packet.name == "onMetaData"):
            self.gop.add(packet)

    def restart(self) -> None:
        """A new publisher: forget its predecessor's state; players wait for a key frame."""
        self.video_header = self.audio_header = None
        self.gop.clear()
        self.audience.restart()

    def join(self, player: Viewer, metadata: Packet | None, absent: Packet | None, live: bool) -> bool:
        """Fast start for a legacy player (it waits when the stream is not live)."""
        if not live:
            self.audience.wait(player)
            return False
        return self.audience.start(player, self.start_packets(metadata, absent), self.gop.packets())
