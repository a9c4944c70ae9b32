"""Audience: the players of a live stream that get the same messages.

Players with a key frame to start from share one `neurtmp.FanOut` (one append per
message, whatever their number). Players that joined with nothing to start from wait:
they get sequence headers, audio and data on their own, no other video, and join the
fan-out at the next key frame. A live stream has one audience for its multitrack
players (every track as published) and one per legacy track view
(`neurtmp.live.tracks.TrackView`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from neurtmp import FanOut, MessageType, Packet, broadcast
from neurtmp.fanout import Member

__all__ = ["Audience", "Viewer"]


class Viewer(Member, Protocol):
    """What an audience needs of a player (see `neurtmp.live.stream.LivePlayer`)."""

    def send_fast_start(self, packets: Iterable[Packet]) -> int: ...


class Audience:
    """Players fed the same messages (see the module docstring).

    Args:
        on_start: called with a player when it joins the fan-out at a key frame
            (the live stream times its first key frame).
    """

    def __init__(self, on_start: Callable[[Any], None]) -> None:
        self._group = FanOut()
        #: Every player, waiting or not (insertion-ordered, O(1) removal).
        self._players: dict[Any, None] = {}
        #: Players waiting for a key frame.
        self._waiting: dict[Any, None] = {}
        self._waiting_dropped = 0
        self._on_start = on_start

    def __len__(self) -> int:
        return len(self._players)

    def __contains__(self, player: object) -> bool:
        return player in self._players

    @property
    def dropped(self) -> int:
        """Messages dropped for players that fell behind."""
        return self._group.dropped + self._waiting_dropped

    def start(self, player: Viewer, start_packets: Sequence[Packet], gop: Sequence[Packet]) -> bool:
        """Fast start: `start_packets` (metadata, sequence headers) and the GOP cache in
        one burst; the player joins the fan-out when the GOP starts on a key frame, else
        waits for one. Returns whether it joined."""
        self._players[player] = None
        player.send_fast_start([*start_packets, *gop])
        if gop and gop[0].is_key_frame:
            self._group.add(player)
            return True
        self._waiting[player] = None
        return False

    def wait(self, player: Viewer) -> None:
        """The player waits for the next key frame (it joined before anything was published)."""
        self._players[player] = None
        self._waiting[player] = None

    def restart(self) -> None:
        """Every player waits again (a new publisher: its first key frame starts them)."""
        for player in self._players:
            if player not in self._waiting:
                self._group.remove(player)
                self._waiting[player] = None

    def remove(self, player: Viewer) -> None:
        if player not in self._players:
            return
        del self._players[player]
        if player in self._waiting:
            del self._waiting[player]
        else:
            self._group.remove(player)

    def send(self, packet: Packet, absent_marker: Callable[[Packet], Packet | None] | None = None) -> None:
        """One message to every player: the waiting ones first (a key frame moves them
        into the fan-out), then one append for the fan-out. `absent_marker` gives what
        to send waiting players after a sequence header when the stream lacks a track."""
        if self._waiting:
            self._serve_waiting(packet, absent_marker)
        self._group.send(packet)

    def _serve_waiting(self, packet: Packet, absent_marker: Callable[[Packet], Packet | None] | None) -> None:
        if packet.type_id != MessageType.VIDEO or packet.is_sequence_header:
            self._waiting_dropped += broadcast(packet, self._waiting)
            marker = absent_marker(packet) if packet.is_sequence_header and absent_marker is not None else None
            if marker is not None:
                broadcast(marker, self._waiting)
        elif packet.is_key_frame:
            for player in self._waiting:
                self._on_start(player)
                self._group.add(player)
            self._waiting = {}
