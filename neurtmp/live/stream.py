"""LiveStream: one live name: its publisher, its players, and what a late joiner needs.

Every published message passes through `on_packet` once: metadata and sequence headers
are cached, the GOP cache updated, timestamps fixed up (so a republish continues the
timeline instead of jumping back to 0), and the packet handed to the players' `FanOut`:
one append to a shared wire log, whatever the number of players. Players that joined
before there was a key frame to start from get what is not video on their own until
the next key frame, then join the fan-out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from neurtmp import DataPacket, FanOut, MessageType, Packet, StatusCode, absent_track_metadata, broadcast
from neurtmp.fanout import Member
from neurtmp.live.gop import GopCache

__all__ = ["LivePlayer", "LiveStream"]

log = logging.getLogger(__name__)

#: Milliseconds between the last message of one publisher and the first of the next.
_REPUBLISH_GAP_MS = 40


class LivePlayer(Member, Protocol):
    """What a live stream needs of a player: an RTMP `neurtmp.Stream`, or an HTTP-FLV
    `neurtmp.FlvPlayer`."""

    @property
    def closed(self) -> bool: ...

    def send_fast_start(self, packets: Iterable[Packet]) -> int: ...

    def send_status(self, code: str, description: str = "", level: str = "status", **extra: Any) -> None: ...


@dataclass
class _Player:
    stream: LivePlayer
    play_started: float
    first_key_ms: float | None = None


class LiveStream:
    """A live name's state (see module docstring).

    Args:
        app: application name (no query string).
        name: stream name (no query string).
        gop_cache: keep packets since the last key frame for late joiners.
    """

    def __init__(self, app: str, name: str, gop_cache: GopCache | None = None) -> None:
        self.app = app
        self.name = name
        self.publisher: Any = None
        self.publisher_peer = ""
        self._players: dict[LivePlayer, _Player] = {}
        #: Players with a key frame to start from; what is published goes to them all.
        self._group = FanOut()
        #: Players waiting for a key frame (they get audio and data meanwhile); a dict
        #: as an ordered set, so that a player leaves in O(1).
        self._waiting: dict[LivePlayer, None] = {}
        self._waiting_dropped = 0
        self.metadata: Packet | None = None
        self._seen_audio = self._seen_video = False
        self.video_header: Packet | None = None
        self.audio_header: Packet | None = None
        self.gop = gop_cache if gop_cache is not None else GopCache(0, 0)
        self._offset = 0
        self._offset_pending = False
        self._last_timestamp: int | None = None
        self.messages = 0
        self.bytes = 0
        #: Video messages published (sequence headers left out).
        self.video_frames = 0
        self.published_at = 0.0

    def __repr__(self) -> str:
        return f"<LiveStream {self.app}/{self.name} players={len(self._players)} live={self.is_live}>"

    @property
    def path(self) -> str:
        return f"{self.app}/{self.name}"

    @property
    def is_live(self) -> bool:
        return self.publisher is not None

    @property
    def idle(self) -> bool:
        """No publisher and no players: the registry may forget it."""
        return self.publisher is None and not self._players

    @property
    def dropped(self) -> int:
        """Messages dropped for players that fell behind."""
        return self._group.dropped + self._waiting_dropped

    def players(self) -> list[LivePlayer]:
        return list(self._players)

    def player_first_key_ms(self, stream: LivePlayer) -> float | None:
        """Milliseconds from a player's play to its first key frame being queued."""
        player = self._players.get(stream)
        return player.first_key_ms if player else None

    # -- publishing -----------------------------------------------------------------

    def start_publishing(self, source: Any, peer: str = "") -> None:
        """`source` (whatever stands for the publishing client) is now the publisher."""
        self.publisher = source
        self.publisher_peer = peer
        self.published_at = time.monotonic()
        self.metadata = self.video_header = self.audio_header = None
        self._seen_audio = self._seen_video = False
        self.gop.clear()
        self._offset_pending = self._last_timestamp is not None
        for stream in self._players:  # the new publisher's first key frame starts them again
            if stream in self._group:
                self._group.remove(stream)
                self._waiting[stream] = None
            self._status(stream, StatusCode.PLAY_PUBLISH_NOTIFY, f"{self.name} is now published.")

    def stop_publishing(self, source: Any) -> bool:
        """`source` stopped; returns False when it was not (or no longer) the publisher."""
        if self.publisher is not source:
            return False
        self.publisher = None
        self.publisher_peer = ""
        self.gop.clear()
        for player in self._players.values():
            self._status(player.stream, StatusCode.PLAY_UNPUBLISH_NOTIFY, f"{self.name} is now unpublished.")
        return True

    def on_packet(self, packet: Packet) -> None:
        """One message from the publisher: cache what joiners need, then fan out."""
        packet = self._fix_timestamp(packet)
        self.messages += 1
        self.bytes += len(packet.payload)
        if packet.type_id == MessageType.VIDEO and not packet.is_sequence_header:
            self.video_frames += 1
        cached = False
        if packet.type_id == MessageType.AUDIO:
            self._seen_audio = True
        elif packet.type_id == MessageType.VIDEO:
            self._seen_video = True
        if packet.is_sequence_header:
            if packet.type_id == MessageType.VIDEO:
                self.video_header = packet
            else:
                self.audio_header = packet
            cached = True
        elif isinstance(packet, DataPacket) and packet.name == "onMetaData":
            self.metadata, cached = packet, True
        if not cached:
            self.gop.add(packet)
        self._fan_out(packet)

    def _fix_timestamp(self, packet: Packet) -> Packet:
        if self._offset_pending:
            assert self._last_timestamp is not None
            self._offset = (self._last_timestamp + _REPUBLISH_GAP_MS - packet.timestamp) & 0xFFFFFFFF
            self._offset_pending = False
        if self._offset and not (isinstance(packet, DataPacket) and packet.timestamp == 0):
            # (metadata stays at 0: ffmpeg makes a subtitle stream of onMetaData at any other time)
            packet = packet.retimed((packet.timestamp + self._offset) & 0xFFFFFFFF)
        self._last_timestamp = packet.timestamp
        return packet

    def _fan_out(self, packet: Packet) -> None:
        if self._waiting:
            self._serve_waiting(packet)
        self._group.send(packet)

    def _serve_waiting(self, packet: Packet) -> None:
        """Players waiting for a key frame: they join the fan-out at one, get sequence
        headers, audio and data on their own meanwhile, and no other video."""
        if packet.type_id != MessageType.VIDEO:
            self._waiting_dropped += broadcast(packet, self._waiting)
            if packet.is_sequence_header and self._absent_track() == "video":
                broadcast(self._absent_track_marker("video"), self._waiting)
        elif packet.is_sequence_header:
            broadcast(packet, self._waiting)
            if self._absent_track() == "audio":
                broadcast(self._absent_track_marker("audio"), self._waiting)
        elif packet.is_key_frame:
            now = time.monotonic()
            for stream in self._waiting:
                player = self._players[stream]
                player.first_key_ms = (now - player.play_started) * 1000
                self._group.add(stream)
            self._waiting = {}

    # -- players --------------------------------------------------------------------

    def add_player(self, stream: LivePlayer) -> None:
        """Start a player: cached metadata and headers, then the GOP cache (fast start)."""
        player = _Player(stream, play_started=time.monotonic())
        self._players[stream] = player
        if self.publisher is None:
            self._waiting[stream] = None
            return
        gop = self.gop.packets()
        stream.send_fast_start(self._start_packets() + gop)
        if gop and gop[0].is_key_frame:
            player.first_key_ms = (time.monotonic() - player.play_started) * 1000
            self._group.add(stream)
        else:
            self._waiting[stream] = None

    def _start_packets(self) -> list[Packet]:
        """What a player needs before any frame: the metadata, the sequence headers, and
        after them, when the stream lacks a track, the metadata that says so."""
        packets: list[Packet] = [p for p in (self.metadata, self.video_header, self.audio_header) if p is not None]
        absent = self._absent_track()
        if absent is not None:
            packets.append(self._absent_track_marker(absent))
        return packets

    def _absent_track(self) -> str | None:
        """"audio" (or "video") when the publisher's metadata names no such codec and
        none of it came, while the other track's sequence header did: ffmpeg players are
        then told not to wait for it (`neurtmp.protocol.packet.absent_track_metadata`)."""
        metadata = self.metadata.metadata if isinstance(self.metadata, DataPacket) else None
        if metadata is None:
            return None  # without metadata nothing says the track will not come
        if self.video_header is not None and not self._seen_audio and "audiocodecid" not in metadata:
            return "audio"
        if self.audio_header is not None and not self._seen_video and "videocodecid" not in metadata:
            return "video"
        return None

    def _absent_track_marker(self, absent: str) -> DataPacket:
        metadata = self.metadata.metadata if isinstance(self.metadata, DataPacket) else None
        return absent_track_metadata(absent, metadata)

    def remove_player(self, stream: LivePlayer) -> None:
        if self._players.pop(stream, None) is not None:
            if stream in self._waiting:
                del self._waiting[stream]
            else:
                self._group.remove(stream)

    def _status(self, stream: LivePlayer, code: str, description: str) -> None:
        if not stream.closed:
            try:
                stream.send_status(code, description, details=self.name)
            except Exception:  # the player is going away; its own close will follow
                log.debug("%s: status to %s failed", self.path, stream)

    def statistics(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "name": self.name,
            "live": self.is_live,
            "publisher": self.publisher_peer,
            "players": len(self._players),
            "messages": self.messages,
            "video_frames": self.video_frames,
            "bytes": self.bytes,
            "dropped": self.dropped,
            "uptime": time.monotonic() - self.published_at if self.is_live else 0.0,
        }
