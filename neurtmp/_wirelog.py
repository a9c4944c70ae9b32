"""WireLog: the wire bytes of one fan-out group, and its readers' positions in it.

A `neurtmp.FanOut` appends each message's wire bytes once to a `WireLog`; every player's
outbox holds a `Cursor` into it. The log owns all the arithmetic of positions: what is
pending for a cursor, the buffers to send from it, moving it by what the kernel took,
skipping to the newest key frame, and forgetting what every cursor has passed. An
outbox only writes what the log hands it.

Entries are numbered from 0 as they are appended (`head` is the next number); byte
offsets count every byte ever appended, so a cursor inside an entry is (entry, bytes of
it already sent).
"""

from __future__ import annotations

import bisect
import logging
from collections import deque
from typing import TYPE_CHECKING, Protocol

from neurtmp.protocol.media import VIDEO_KEY
from neurtmp.protocol.packet import WireFormat

if TYPE_CHECKING:
    from neurtmp._outbox import Flusher

__all__ = ["Cursor", "LogReader", "WireLog"]

log = logging.getLogger(__name__)

#: Readers flushed between two looks at the clock (`Flusher.breathe`): one flush of a
#: reader is ~15 us of writev, so a look every 16 costs nothing and overshoots little.
_READERS_PER_BREATH = 16


class LogReader(Protocol):
    """What a `WireLog` needs of an outbox that follows it."""

    def flush_log(self) -> None:
        """Apply the slow-player policy and send what the kernel takes at once."""


class Cursor:
    """A reader's position in a log: the next entry, and bytes of it already sent."""

    __slots__ = ("seq", "skip")

    def __init__(self, seq: int) -> None:
        self.seq = seq
        self.skip = 0


class WireLog:
    """The wire bytes of one fan-out group in one wire format."""

    def __init__(self, wire_format: WireFormat) -> None:
        #: What the entries are (RTMP chunks of one chunk size and stream, FLV tags, ...).
        self.format = wire_format
        self._entries: list[bytes | memoryview] = []  # bytes; typed as what writev takes
        self._priorities: list[int] = []
        #: Absolute byte offset at the end of each entry.
        self._ends: list[int] = []
        #: Number of _entries[0], and the byte offset where it starts.
        self._base = 0
        self._base_offset = 0
        #: Number of the next entry, and the byte offset where it will start.
        self.head = 0
        self._end_offset = 0
        #: Numbers of the video key frames still held.
        self._keys: deque[int] = deque()
        self._cursors: dict[LogReader, Cursor] = {}
        #: Video messages skipped by readers that fell behind.
        self.dropped = 0
        self._tails: dict[int, list[bytes | memoryview]] = {}
        self._flusher: Flusher | None = None
        self._scheduled = False

    def __len__(self) -> int:
        """Entries held (those some reader still needs)."""
        return len(self._entries)

    @property
    def readers(self) -> int:
        """How many readers follow the log."""
        return len(self._cursors)

    # -- writing --------------------------------------------------------------------

    def append(self, wire: bytes, priority: int) -> None:
        """Add one message's wire bytes; its readers get it at the next flush."""
        if not self._cursors:
            return
        if priority == VIDEO_KEY:  # where a reader that fell behind may resume
            self._keys.append(self.head)
        self._entries.append(wire)
        self._priorities.append(priority)
        self._end_offset += len(wire)
        self._ends.append(self._end_offset)
        self.head += 1
        if self._tails:
            self._tails = {}
        if self._flusher is None:
            self.flush_scheduled()  # low-latency mode: every message goes out at once
        elif not self._scheduled:
            self._scheduled = True
            self._flusher.schedule(self)

    def flush_scheduled(self) -> None:
        """Called by the flusher: every reader sends what it can, then the log is trimmed.
        A reader that raises is logged and the others still flush. Every
        `_READERS_PER_BREATH` readers the flusher may let the hub run (`Flusher.breathe`):
        a reader that leaves meanwhile is skipped, one that joins waits for the next tick,
        an append is sent by the readers still to come (and the log flushes again at the
        next tick)."""
        self._scheduled = False
        flusher, cursors = self._flusher, self._cursors
        readers = tuple(cursors)
        moved = False  # the hub ran: readers may have left since `readers` was taken
        for start in range(0, len(readers), _READERS_PER_BREATH):
            if start and flusher is not None and flusher.breathe():
                moved = True
            for reader in readers[start:start + _READERS_PER_BREATH]:
                if moved and reader not in cursors:
                    continue
                try:
                    reader.flush_log()
                except Exception:  # a reader that fails leaves the log
                    log.exception("a reader of %r failed to flush; it is detached", self)
                    self.detach(reader)
        self._trim()

    def _trim(self) -> None:
        """Forget the entries every cursor has passed."""
        oldest = min((cursor.seq for cursor in self._cursors.values()), default=self.head)
        count = oldest - self._base
        if count <= 0:
            return
        if count >= len(self._entries):
            self._entries.clear()
            self._priorities.clear()
            self._ends.clear()
            self._keys.clear()
            self._base, self._base_offset = self.head, self._end_offset
            return
        self._base_offset = self._ends[count - 1]
        del self._entries[:count], self._priorities[:count], self._ends[:count]
        self._base = oldest
        keys = self._keys
        while keys and keys[0] < oldest:
            keys.popleft()

    # -- readers --------------------------------------------------------------------

    def attach(self, reader: LogReader, flusher: Flusher | None) -> Cursor:
        """A reader starts following the log at its head; returns its cursor."""
        if not self._cursors:
            self._flusher = flusher
        cursor = self._cursors[reader] = Cursor(self.head)
        return cursor

    def detach(self, reader: LogReader) -> None:
        """A reader stops following (O(1)); the log forgets what only it needed."""
        if self._cursors.pop(reader, None) is not None and not self._cursors:
            self._trim()

    # -- positions ------------------------------------------------------------------

    def _start_of(self, seq: int) -> int:
        index = seq - self._base
        return self._ends[index - 1] if index > 0 else self._base_offset

    def pending(self, cursor: Cursor) -> bool:
        """Whether the log holds bytes for this cursor."""
        return cursor.seq != self.head

    def backlog(self, cursor: Cursor) -> int:
        """Bytes from the cursor to the head."""
        if cursor.seq == self.head:
            return 0
        return self._end_offset - self._start_of(cursor.seq) - cursor.skip

    def buffers(self, cursor: Cursor, max_count: int) -> tuple[list[bytes | memoryview], int]:
        """At most `max_count` buffers from the cursor on, and their size. The list is
        shared by every cursor at the same position until the next append: send it, don't
        change it."""
        seq, skip = cursor.seq, cursor.skip
        buffers = self._tails.get(seq)
        if buffers is None:
            buffers = self._tails[seq] = self._entries[seq - self._base:]
        if skip or len(buffers) > max_count:
            buffers = buffers[:max_count]
            if skip:
                buffers[0] = memoryview(buffers[0])[skip:]
        end = self._ends[seq - self._base + len(buffers) - 1]
        return buffers, end - self._start_of(seq) - skip

    def advance(self, cursor: Cursor, sent: int) -> int:
        """Move the cursor past `sent` bytes; returns the whole messages it passed."""
        if sent <= 0:
            return 0
        seq = cursor.seq
        target = self._start_of(seq) + cursor.skip + sent
        if target >= self._end_offset:
            cursor.seq, cursor.skip = self.head, 0
        else:
            index = bisect.bisect_right(self._ends, target)
            cursor.seq = self._base + index
            cursor.skip = target - self._start_of(cursor.seq)
        return cursor.seq - seq

    def take(self, cursor: Cursor, end: int | None = None) -> tuple[list[bytes | memoryview], int, int]:
        """Hand over the entries from the cursor to number `end` (the head by default)
        and move the cursor there: (buffers, bytes, messages)."""
        seq, skip = cursor.seq, cursor.skip
        end = self.head if end is None else end
        if seq >= end:
            return [], 0, 0
        moved = self._entries[seq - self._base:end - self._base]
        if skip:
            moved[0] = memoryview(moved[0])[skip:]
        size = self._ends[end - 1 - self._base] - self._start_of(seq) - skip
        cursor.seq, cursor.skip = end, 0
        return moved, size, end - seq

    def skip_to_key(self, cursor: Cursor) -> tuple[list[bytes | memoryview], int, int, int]:
        """Move a reader that fell behind to the newest key frame: returns what it must
        still get before it (the rest of a message partly sent, audio, sequence headers,
        metadata) as (buffers, bytes, messages dropped, bytes dropped). Nothing moves
        when no key frame is past the cursor."""
        keys = self._keys
        if not keys or keys[-1] <= cursor.seq:
            return [], 0, 0, 0
        key = keys[-1]
        kept: list[bytes | memoryview] = []
        kept_bytes = 0
        if cursor.skip:  # the rest of a message partly sent must still go
            kept, kept_bytes, _ = self.take(cursor, cursor.seq + 1)
        entries, priorities = self._entries, self._priorities
        dropped = dropped_bytes = 0
        for index in range(cursor.seq - self._base, key - self._base):
            wire = entries[index]
            if priorities[index] < VIDEO_KEY:
                kept.append(wire)
                kept_bytes += len(wire)
            else:
                dropped += 1
                dropped_bytes += len(wire)
        cursor.seq, cursor.skip = key, 0
        self.dropped += dropped
        return kept, kept_bytes, dropped, dropped_bytes
