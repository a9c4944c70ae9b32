"""FanOut: one group of players that receive the same messages, at O(1) per message.

`neurtmp.broadcast` queues a message for every player: a Python loop over the players for
each message. A `FanOut` instead appends each message's wire bytes once to a shared,
bounded `WireLog` (one per wire format in use: RTMP chunks of a chunk size and message
stream id, normally one, and FLV tags for HTTP-FLV players), and
every player's connection holds a cursor into it. The server's flusher then sends each
player, once per flush interval, everything from its cursor to the head of the log in
one `writev`; players at the same position share one buffer list. A published message
costs one append however many players watch; a flush costs one step per player.

The group alone decides which logs exist: a log lives while the group has members
reading it, whatever happens to their connections (a connection that closes during a
flush leaves the log's readers, not the group).

A player that falls behind is moved forward by its connection: past the soft limit its
cursor skips to the latest key frame in the log (audio, sequence headers and metadata
in between are kept, the video dropped and counted); past the hard limit, or with no
progress for the send timeout, the connection is closed, as for any other output.

Players that turned audio or video off (receiveAudio / receiveVideo), or whose
connection cannot follow a log (RTMPS, or already following another one), get each
message queued on their own, as with `broadcast`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from neurtmp._wirelog import WireLog
from neurtmp.protocol.packet import Packet, WireFormat

__all__ = ["FanOut", "Member", "WireLog", "broadcast"]


class Member(Protocol):
    """What a `FanOut` needs of a player (a `neurtmp.Stream` is one)."""

    stream_id: int
    receive_audio: bool
    receive_video: bool
    group: FanOut | None

    @property
    def wire_format(self) -> WireFormat:
        """The bytes this player reads (`RtmpChunks` for an RTMP player, `FLV_TAGS`...)."""

    def follow(self, log: WireLog) -> bool: ...

    def unfollow(self, log: WireLog) -> None: ...

    def queue_packet(self, packet: Packet) -> bool | None: ...


def broadcast(packet: Packet, players: Iterable[Member]) -> int:
    """Send one packet to many players, queued on each: one step per player.

    The packet's wire bytes are built once per distinct wire format
    and the same bytes object is queued for every player; closed players and those that
    turned this kind of media off are skipped. Each connection applies its own
    slow-player policy. (A `FanOut` costs one step per message instead.)

    Returns:
        how many players dropped the packet (slow players).
    """
    dropped = 0
    for player in players:
        if player.queue_packet(packet) is False:
            dropped += 1
    return dropped


class FanOut:
    """A group of players that receive the same messages (see the module docstring).

    Example (what the live app does for each live name):
        group = FanOut()
        group.add(stream)          # after the player's fast start was queued
        group.send(packet)         # for each published message
        group.remove(stream)       # when the player stops
    """

    def __init__(self) -> None:
        #: The group's logs, and who reads each: a log lives exactly while it has members.
        self._logs: dict[WireFormat, WireLog] = {}
        self._members: dict[WireLog, set[Member]] = {}
        self._following: dict[Member, WireLog] = {}
        #: Players served one queueing per message (insertion-ordered, O(1) removal).
        self._direct: dict[Member, None] = {}
        self._direct_dropped = 0
        self._retired_dropped = 0

    def __len__(self) -> int:
        return len(self._following) + len(self._direct)

    def __contains__(self, player: object) -> bool:
        return player in self._following or player in self._direct

    @property
    def logs(self) -> int:
        """Shared logs in use (one per wire format)."""
        return len(self._logs)

    @property
    def dropped(self) -> int:
        """Messages dropped for players that fell behind."""
        return self._direct_dropped + self._retired_dropped + sum(log.dropped for log in self._logs.values())

    def add(self, player: Member) -> None:
        """Add a player: from now on it gets what `send` sends, after what it was sent before."""
        if player in self:
            return
        player.group = self
        if player.receive_audio and player.receive_video:
            key = player.wire_format
            log = self._logs.get(key)
            if log is None:
                log = WireLog(key)
            if player.follow(log):
                if key not in self._logs:
                    self._logs[key] = log
                    self._members[log] = set()
                self._members[log].add(player)
                self._following[player] = log
                return
        self._direct[player] = None

    def remove(self, player: Member) -> None:
        """Remove a player; what was sent to it before still reaches it."""
        if player.group is self:
            player.group = None
        log = self._following.pop(player, None)
        if log is None:
            self._direct.pop(player, None)
            return
        player.unfollow(log)
        members = self._members[log]
        members.discard(player)
        if not members:
            del self._members[log]
            del self._logs[log.format]
            self._retired_dropped += log.dropped

    def regroup(self, player: Member) -> None:
        """The player turned audio or video on or off, or could not follow the log it was
        given: it moves between the shared log and its own queue."""
        if player in self:
            self.remove(player)
            self.add(player)

    def send(self, packet: Packet) -> None:
        """Send one message to every player: one append per log, one queueing per player
        outside the logs."""
        priority = packet.priority
        for wire_format, log in self._logs.items():
            log.append(wire_format.encode(packet), priority)
        if self._direct:
            self._direct_dropped += broadcast(packet, self._direct)
