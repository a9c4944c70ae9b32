"""LiveStream: one live name: its publisher, its players, and what a late joiner needs.

Every published message passes through `on_packet` once: metadata and sequence headers
are cached, the GOP cache updated, timestamps fixed up (so a republish continues the
timeline instead of jumping back to 0), and the packet handed to every player with
`neurtmp.broadcast`, which shares one wire form among them all.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from neurtmp import DataPacket, MessageType, Packet, StatusCode, Stream, broadcast
from neurtmp.codec import flv
from neurtmp.live.gop import GopCache

__all__ = ["LiveStream"]

log = logging.getLogger(__name__)

#: Milliseconds between the last message of one publisher and the first of the next.
_REPUBLISH_GAP_MS = 40


@dataclass
class _Player:
    stream: Stream
    needs_key: bool
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
        self._players: dict[Stream, _Player] = {}
        self._player_streams: list[Stream] = []
        self._waiting_for_key = 0
        self.metadata: Packet | None = None
        self.video_header: Packet | None = None
        self.audio_header: Packet | None = None
        self.gop = gop_cache if gop_cache is not None else GopCache(0, 0)
        self._offset = 0
        self._offset_pending = False
        self._last_timestamp: int | None = None
        self.messages = 0
        self.bytes = 0
        self.dropped = 0
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

    def players(self) -> list[Stream]:
        return list(self._player_streams)

    def player_first_key_ms(self, stream: Stream) -> float | None:
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
        self.gop.clear()
        self._offset_pending = self._last_timestamp is not None
        self._waiting_for_key = len(self._players)
        for player in self._players.values():
            player.needs_key = True
            self._status(player.stream, StatusCode.PLAY_PUBLISH_NOTIFY, f"{self.name} is now published.")

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
        payload = packet.payload
        cached = False
        if packet.type_id == MessageType.VIDEO:
            if flv.is_video_sequence_header(payload):
                self.video_header, cached = packet, True
        elif packet.type_id == MessageType.AUDIO:
            if flv.is_audio_sequence_header(payload):
                self.audio_header, cached = packet, True
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
        if self._offset:
            timestamp = (packet.timestamp + self._offset) & 0xFFFFFFFF
            if isinstance(packet, DataPacket):
                packet = DataPacket(timestamp, packet.name, packet.values, packet.payload)
            else:
                packet = Packet(packet.type_id, timestamp, packet.payload)
        self._last_timestamp = packet.timestamp
        return packet

    def _fan_out(self, packet: Packet) -> None:
        players = self._player_streams
        if not players:
            return
        if self._waiting_for_key and packet.type_id == MessageType.VIDEO:
            self._fan_out_gated(packet)
            return
        self.dropped += broadcast(packet, players)

    def _fan_out_gated(self, packet: Packet) -> None:
        """Video while some players still wait for a key frame (rare: after joins)."""
        is_key = flv.is_video_key_frame(packet.payload) or flv.is_video_sequence_header(packet.payload)
        ready = []
        for player in self._players.values():
            if player.needs_key:
                if not is_key:
                    continue
                if not flv.is_video_sequence_header(packet.payload):
                    player.needs_key = False
                    self._waiting_for_key -= 1
                    player.first_key_ms = (time.monotonic() - player.play_started) * 1000
            ready.append(player.stream)
        self.dropped += broadcast(packet, ready)

    # -- players --------------------------------------------------------------------

    def add_player(self, stream: Stream) -> None:
        """Start a player: cached metadata and headers, then the GOP cache (fast start)."""
        player = _Player(stream, needs_key=True, play_started=time.monotonic())
        self._players[stream] = player
        self._player_streams.append(stream)
        if self.publisher is None:
            self._waiting_for_key += 1
            return
        for cached in (self.metadata, self.video_header, self.audio_header):
            if cached is not None:
                broadcast(cached, (stream,))
        gop = self.gop.packets()
        if gop and gop[0].type_id == MessageType.VIDEO:
            player.needs_key = False
            player.first_key_ms = (time.monotonic() - player.play_started) * 1000
        else:
            self._waiting_for_key += 1
        for packet in gop:
            broadcast(packet, (stream,))

    def remove_player(self, stream: Stream) -> None:
        player = self._players.pop(stream, None)
        if player is not None:
            self._player_streams.remove(stream)
            if player.needs_key:
                self._waiting_for_key -= 1

    def _status(self, stream: Stream, code: str, description: str) -> None:
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
            "bytes": self.bytes,
            "dropped": self.dropped,
            "uptime": time.monotonic() - self.published_at if self.is_live else 0.0,
        }
