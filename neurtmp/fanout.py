"""FanOut: one group of players that receive the same messages, at O(1) per message.

`neurtmp.broadcast` queues a message for every player: a Python loop over the players for
each message. A `FanOut` instead appends each message's wire bytes once to a shared,
bounded `WireLog` (one per distinct chunk size and message stream id, normally one), and
every player's connection holds a cursor into it. The server's flusher then sends each
player, once per flush interval, everything from its cursor to the head of the log in
one `writev`; players at the same position share one buffer list. A published message
costs one append however many players watch; a flush costs one step per player.

A player that falls behind is moved forward by its connection: past the soft limit its
cursor skips to the latest key frame in the log (audio, sequence headers and metadata
in between are kept, the video dropped and counted); past the hard limit, or with no
progress for the send timeout, the connection is closed, as for any other output.

Players that turned audio or video off (receiveAudio / receiveVideo), or whose
connection cannot follow a log (RTMPS, or already following another one), get each
message queued on their own, as with `broadcast`.
"""

from __future__ import annotations

import bisect
from collections import deque
from typing import TYPE_CHECKING, Protocol

from neurtmp._outbox import VIDEO_KEY, Flusher
from neurtmp.protocol.packet import Packet
from neurtmp.stream import broadcast, packet_priority

if TYPE_CHECKING:
    from neurtmp.stream import Stream

__all__ = ["FanOut", "WireLog"]


class LogReader(Protocol):
    """What a `WireLog` needs of a connection's outbox that follows it."""

    def flush_log(self) -> int:
        """Apply the slow-player policy and send what the kernel takes at once; returns
        the sequence number of the oldest entry still needed."""


class WireLog:
    """The wire bytes of one fan-out group, for one (chunk size, message stream id).

    Entries are numbered from 0 as they are appended (`head` is the next number); only
    those some reader still needs are kept. Readers are outboxes (`follow` / `unfollow`).
    """

    def __init__(self, chunk_size: int, stream_id: int) -> None:
        self.chunk_size = chunk_size
        self.stream_id = stream_id
        self.entries: list[bytes] = []
        self.priorities: list[int] = []
        #: Absolute byte offset at the end of each entry (a running total of every byte appended).
        self.ends: list[int] = []
        #: Number of entries[0], and the byte offset where it starts.
        self.base = 0
        self.base_offset = 0
        #: Number of the next entry, and the byte offset where it will start.
        self.head = 0
        self.end_offset = 0
        #: Numbers of the video key frames still in the log.
        self.keys: deque[int] = deque()
        self.readers: list[LogReader] = []
        #: Video messages skipped by readers that fell behind.
        self.dropped = 0
        self._tails: dict[int, list[bytes]] = {}
        self._flusher: Flusher | None = None
        self._scheduled = False

    def __len__(self) -> int:
        return len(self.entries)

    # -- writing --------------------------------------------------------------------

    def append(self, wire: bytes, priority: int) -> None:
        """Add one message's wire bytes; its readers get it at the next flush."""
        if not self.readers:
            return
        if priority == VIDEO_KEY:  # where a reader that fell behind may resume
            self.keys.append(self.head)
        self.entries.append(wire)
        self.priorities.append(priority)
        self.end_offset += len(wire)
        self.ends.append(self.end_offset)
        self.head += 1
        if self._tails:
            self._tails = {}
        if self._flusher is None:
            self.flush_scheduled()  # low-latency mode: every message goes out at once
        elif not self._scheduled:
            self._scheduled = True
            self._flusher.schedule(self)

    def flush_scheduled(self) -> None:
        """Called by the flusher: every reader sends what it can, then the log is trimmed."""
        self._scheduled = False
        oldest = self.head
        for reader in tuple(self.readers):  # a reader that fails leaves the list
            needed = reader.flush_log()
            if needed < oldest:
                oldest = needed
        self.trim(oldest)

    def trim(self, oldest: int) -> None:
        """Forget the entries before number `oldest` (no reader needs them)."""
        count = oldest - self.base
        if count <= 0:
            return
        if count >= len(self.entries):
            self.entries.clear()
            self.priorities.clear()
            self.ends.clear()
            self.keys.clear()
            self.base, self.base_offset = self.head, self.end_offset
            return
        self.base_offset = self.ends[count - 1]
        del self.entries[:count], self.priorities[:count], self.ends[:count]
        self.base = oldest
        keys = self.keys
        while keys and keys[0] < oldest:
            keys.popleft()

    # -- reading --------------------------------------------------------------------

    def tail(self, seq: int) -> list[bytes]:
        """The entries from number `seq` to the head; one shared list per position until
        the next append (do not modify it)."""
        tail = self._tails.get(seq)
        if tail is None:
            tail = self._tails[seq] = self.entries[seq - self.base:]
        return tail

    def start_of(self, seq: int) -> int:
        """The byte offset where entry `seq` starts."""
        index = seq - self.base
        return self.ends[index - 1] if index > 0 else self.base_offset

    def locate(self, offset: int) -> tuple[int, int]:
        """(entry number, bytes into it) of an absolute byte offset inside the log."""
        index = bisect.bisect_right(self.ends, offset)
        seq = self.base + index
        return seq, offset - self.start_of(seq)

    def latest_key_after(self, seq: int) -> int | None:
        """The number of the newest key frame after entry `seq`, if any."""
        if self.keys and self.keys[-1] > seq:
            return self.keys[-1]
        return None

    # -- readers --------------------------------------------------------------------

    def add_reader(self, reader: LogReader, flusher: Flusher | None) -> None:
        """Called by an outbox that starts following the log (at its head)."""
        if not self.readers:
            self._flusher = flusher
        self.readers.append(reader)

    def remove_reader(self, reader: LogReader) -> None:
        if reader in self.readers:
            self.readers.remove(reader)
        if not self.readers:
            self.trim(self.head)


class FanOut:
    """A group of players that receive the same messages (see the module docstring).

    Example (what the live app does for each live name):
        group = FanOut()
        group.add(stream)          # after the player's fast start was queued
        group.send(packet)         # for each published message
        group.remove(stream)       # when the player stops
    """

    def __init__(self) -> None:
        self._logs: dict[tuple[int, int], WireLog] = {}
        self._following: dict[Stream, WireLog] = {}
        self._direct: list[Stream] = []
        self._direct_dropped = 0
        self._retired_dropped = 0

    def __len__(self) -> int:
        return len(self._following) + len(self._direct)

    def __contains__(self, stream: object) -> bool:
        return stream in self._following or stream in self._direct

    @property
    def dropped(self) -> int:
        """Messages dropped for players that fell behind."""
        return self._direct_dropped + self._retired_dropped + sum(log.dropped for log in self._logs.values())

    def add(self, stream: Stream) -> None:
        """Add a player: from now on it gets what `send` sends, after what it was sent before."""
        if stream in self:
            return
        if stream.receive_audio and stream.receive_video:
            key = (stream.get_connection().out_chunk_size, stream.stream_id)
            log = self._logs.get(key)
            if log is None:
                log = WireLog(*key)
            if stream.follow(log):
                self._logs[key] = log
                self._following[stream] = log
                stream.group = self
                return
        self._direct.append(stream)
        stream.group = self

    def remove(self, stream: Stream) -> None:
        """Remove a player; what was sent to it before still reaches it."""
        if stream.group is self:
            stream.group = None
        log = self._following.pop(stream, None)
        if log is not None:
            stream.unfollow(log)
            if not log.readers:
                self._retired_dropped += log.dropped
                del self._logs[(log.chunk_size, log.stream_id)]
        elif stream in self._direct:
            self._direct.remove(stream)

    def regroup(self, stream: Stream) -> None:
        """The player turned audio or video on or off: it moves between the shared log
        and its own queue (called by the stream)."""
        if stream in self:
            self.remove(stream)
            self.add(stream)

    def send(self, packet: Packet) -> None:
        """Send one message to every player: one append per log, one queueing per player
        outside the logs."""
        priority = packet_priority(packet)
        for (chunk_size, stream_id), log in self._logs.items():
            log.append(packet.wire(chunk_size, stream_id), priority)
        if self._direct:
            self._direct_dropped += broadcast(packet, self._direct)
