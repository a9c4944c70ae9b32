"""Outbox: one connection's queue of wire bytes, and how it reaches the socket.

Everything sent to a client goes through here as whole messages (control and command
bytes from the protocol object, shared media wire bytes from `Packet.wire`), so no two
messages' chunks interleave and a slow client never blocks the reader or anyone else.

An outbox has its own queue, and may also follow one shared `neurtmp._wirelog.WireLog`
(a live stream's players): what the log holds past the outbox's cursor is sent after
the queue. Bytes put in the queue while the log holds some for this reader first move
those into the queue (references, not copies), so the order is always the order sent.
The log does the cursor arithmetic; the outbox only writes what it is handed.

Two ways out:

* urgent bytes (command replies, control) and every message in low-latency mode start
  the connection's writer greenlet, which sends at once and ends when all is sent;
* media in merged-write mode (`flush_interval` > 0, SRS calls it "merged write") waits for
  the server's `Flusher`: one greenlet that, every interval, hands each pending queue (and
  each log's readers) to the kernel with one non-blocking `writev` each. Only what the
  kernel cannot take at once falls back to a writer greenlet, which waits for the socket.
  A thousand players then cost one loop and a thousand syscalls per interval, not
  thousands of greenlet switches, and an idle connection holds no writer greenlet.
  Such a tick takes 15-30 ms on one core; so that it never holds the hub that long (an
  API request, the publisher's next message wait behind it), the flusher lets the hub
  run once whenever it has held it for `MAX_HOLD` (between items, and between a log's
  readers: `Flusher.breathe`).

The queue is bounded in bytes, with a drop policy for media when a player falls behind
(nginx-rtmp and SRS do the same in their own ways):

* above `soft_limit`, inter-frame video is dropped, and once video was dropped every
  video frame is dropped until the next key frame that fits; audio, sequence headers,
  metadata and commands are kept (a log reader skips its cursor to the newest key frame
  in the log, keeping what is not video in between);
* above `hard_limit` the connection is closed, with a log line saying why;
* when bytes wait and none could be sent for `send_timeout` seconds (a player that
  stopped reading a video-only stream stays under the hard limit by dropping), the
  connection is closed too (nginx-rtmp's `send_timeout` does the same).
"""

from __future__ import annotations

import fcntl
import logging
import os
import ssl
import struct
import termios
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, BinaryIO, Protocol

import gevent
import gevent.event
import gevent.socket
import gevent.ssl

from neurtmp.protocol.media import AUDIO, CRITICAL, VIDEO_INTER, VIDEO_KEY

__all__ = ["AUDIO", "CRITICAL", "HUB_TURN", "MAX_HOLD", "VIDEO_INTER", "VIDEO_KEY", "Flusher", "Outbox",
           "kernel_unsent_bytes"]

if TYPE_CHECKING:
    from neurtmp._wirelog import Cursor, WireLog

log = logging.getLogger(__name__)

#: Most buffers handed to one writev/sendmsg call (Linux IOV_MAX is 1024).
_MAX_IOV = 512
#: Most bytes handed to one writev/sendmsg call.
_MAX_BATCH_BYTES = 4 << 20
#: Seconds a flush tick may hold the hub before it lets the hub run once (new I/O, ready
#: greenlets): a tick of 1000 players is 15-30 ms of writev calls on one core.
MAX_HOLD = 0.002
#: How a long task gives the hub a turn: ``gevent.sleep(HUB_TURN)``, a timer already due
#: when the hub looks, so the hub polls for I/O without blocking, runs what that woke,
#: then resumes the task. (``gevent.sleep(0)`` resumes before the hub polls for I/O;
#: ``gevent.idle()`` waits for a quiet hub, which a busy neighbour may never leave.)
HUB_TURN = 1e-6


def kernel_unsent_bytes(sock: gevent.socket.socket) -> int:
    """Bytes in the kernel's send queue not yet acknowledged by the peer (Linux)."""
    try:
        raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\x00\x00\x00\x00")
    except (OSError, ValueError):
        return 0
    return int(struct.unpack("i", raw)[0])


def _writev(fd: int, buffers: list[bytes | memoryview]) -> int:
    """Bytes the kernel took of `buffers` without blocking (0 when its buffer is full)."""
    try:
        return os.writev(fd, buffers)
    except BlockingIOError:
        return 0


class Flushable(Protocol):
    def flush_scheduled(self) -> None: ...


class Flusher:
    """Sends every outbox and log with pending media once per `interval` (merged writes).

    A tick lets the hub run whenever it has held it for `max_hold` seconds (see
    `breathe`); `take_longest_hold` says the longest stretch it held it.
    """

    def __init__(self, interval: float, max_hold: float = MAX_HOLD) -> None:
        self.interval = interval
        self.max_hold = max_hold
        self._pending: list[Flushable] = []
        self._greenlet: gevent.Greenlet | None = None
        self._held_since = 0.0
        self._longest_hold = 0.0

    def breathe(self) -> bool:
        """Inside a tick (called from the flusher's greenlet): let the hub run when the tick
        has held it for `max_hold` (new I/O and the greenlets it wakes go first, then the
        tick goes on; see `HUB_TURN`). Elsewhere it does nothing. Returns
        whether the hub ran: the caller, between two steps of a flush, must then bear the
        world having moved (a reader left, an append came)."""
        if gevent.getcurrent() is not self._greenlet:
            return False
        held = time.perf_counter() - self._held_since
        if held <= self.max_hold:
            return False
        self._longest_hold = max(self._longest_hold, held)
        gevent.sleep(HUB_TURN)
        self._held_since = time.perf_counter()
        return True

    def take_longest_hold(self) -> float:
        """The longest a tick held the hub without a break since the last call (seconds)."""
        longest, self._longest_hold = self._longest_hold, 0.0
        return longest

    def schedule(self, item: Flushable) -> None:
        """Have `item.flush_scheduled()` called at the next tick (once per schedule)."""
        self._pending.append(item)
        if self._greenlet is None:
            self._greenlet = gevent.spawn(self._run)

    def _run(self) -> None:
        try:
            while self._pending:
                gevent.sleep(self.interval)
                pending, self._pending = self._pending, []
                failed = 0
                self._held_since = time.perf_counter()
                for item in pending:
                    try:
                        item.flush_scheduled()
                    except Exception:  # one bad item must not strand the others
                        if not failed:
                            log.exception("flushing %r failed", item)
                        failed += 1
                    self.breathe()
                self._longest_hold = max(self._longest_hold, time.perf_counter() - self._held_since)
                if failed > 1:
                    log.error("%d items failed to flush in one tick (the first one's error is above)", failed)
        finally:
            self._greenlet = None

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
        self._pending = []


class Outbox:
    """A bounded queue of wire bytes for one connection, and its cursor in a shared log.

    Args:
        sock: the connected socket.
        high_water: queued plus kernel-unsent bytes above which `is_full` is True.
        soft_limit: queued bytes above which video is dropped.
        hard_limit: queued bytes above which the connection is closed.
        flusher: the server's merged-write flusher, or None to send media at once.
        send_timeout: seconds queued bytes may wait with no progress before closing.
        on_overflow: called (once) with a reason when the connection must close.
        io_log: a file that receives every byte sent, or None.
    """

    def __init__(
        self,
        sock: gevent.socket.socket,
        *,
        high_water: int,
        soft_limit: int,
        hard_limit: int,
        flusher: Flusher | None = None,
        send_timeout: float = 30.0,
        on_overflow: Callable[[str], None] | None = None,
        io_log: BinaryIO | None = None,
    ) -> None:
        self._sock = sock
        self._fd = sock.fileno()
        # TLS (RTMPS) bytes must go through the socket's TLS layer: no writev on the fd,
        # so such a connection always sends from its writer greenlet, and follows no log.
        self._tls = isinstance(sock, (ssl.SSLSocket, gevent.ssl.SSLSocket))
        self.high_water = high_water
        self.soft_limit = soft_limit
        self.hard_limit = hard_limit
        self.send_timeout = send_timeout
        self._flusher = flusher
        self._on_overflow = on_overflow
        self._io_log = io_log
        self._queue: deque[bytes | memoryview] = deque()
        self._queued = 0
        # The shared log followed, and this outbox's position in it.
        self._log: WireLog | None = None
        self._cursor: Cursor | None = None
        self._scheduled = False  # in the flusher's list
        # Alive while sending what could not go at once; it owns the sending until done.
        self._writer: gevent.Greenlet | None = None
        self._drained = gevent.event.Event()
        self._drained.set()
        self._skipping_video = False
        self._closed = False
        self._failed: str | None = None
        # Since when bytes have waited with none sent (None: nothing waits).
        self._waiting_since: float | None = None
        self.bytes_sent = 0
        #: Media messages queued (not urgent protocol output); drops are counted apart.
        self.media_messages = 0
        self.dropped_messages = 0
        self.dropped_bytes = 0

    # -- producer side ------------------------------------------------------------------

    @property
    def flusher(self) -> Flusher | None:
        return self._flusher

    @property
    def queued_bytes(self) -> int:
        """Bytes waiting to be sent: the queue's and what the followed log holds for us."""
        return self._queued + self._log_backlog()

    def _log_backlog(self) -> int:
        log, cursor = self._log, self._cursor
        return 0 if log is None or cursor is None else log.backlog(cursor)

    def is_full(self) -> bool:
        """True when the client is not draining: ours plus the kernel's backlog is high."""
        queued = self.queued_bytes
        if queued > self.high_water:
            return True
        return queued + kernel_unsent_bytes(self._sock) > self.high_water

    def put(self, data: bytes, priority: int = CRITICAL, urgent: bool = False, burst: bool = False) -> bool:
        """Queue one message's bytes; returns False when the drop policy dropped it.

        Urgent bytes (replies, control) are sent at once; others wait for the flusher.
        `burst` marks a player's fast start (metadata, headers, the cached GOP): it is
        queued whole past the soft limit; only the hard limit cuts it, at video (the next
        video sent is then a key frame), counted as drops, never closing the connection.
        """
        if self._closed:
            return False
        if self._log is not None:
            self._take_from_log()  # what the log holds for us goes first
        queued = self._queued
        if queued > self.high_water and self._stalled():
            self._fail(f"nothing could be sent for {self.send_timeout:g} s (the client is not reading)")
            return False
        if priority >= VIDEO_KEY:
            over = queued + len(data) > self.hard_limit if burst else queued > self.soft_limit
            if over or (self._skipping_video and priority == VIDEO_INTER):
                self._skipping_video = True
                self.dropped_messages += 1
                self.dropped_bytes += len(data)
                return False
            self._skipping_video = False
        if queued + len(data) > self.hard_limit:
            self._fail(f"send queue passed {self.hard_limit} bytes (the client is not reading)")
            return False
        if self._waiting_since is None:
            self._waiting_since = time.monotonic()
        self._queue.append(data)
        self._queued = queued + len(data)
        if not urgent:
            self.media_messages += 1
        if self._writer is not None:
            return True  # the writer sends it after what it is sending
        if urgent or self._flusher is None or self._tls:
            self._start_writer()
        elif not self._scheduled:
            self._scheduled = True
            self._flusher.schedule(self)
        return True

    def _stalled(self) -> bool:
        """Bytes have waited longer than the send timeout with none sent."""
        since = self._waiting_since
        return since is not None and time.monotonic() - since > self.send_timeout

    def _fail(self, reason: str) -> None:
        if self._failed is None:
            self._failed = reason
            self._closed = True
            self._queue.clear()
            self._queued = 0
            self._leave_log()
            self._drained.set()
            writer = self._writer
            if writer is not None and writer is not gevent.getcurrent():
                writer.kill(block=False)
            if self._on_overflow is not None:
                self._on_overflow(reason)

    # -- following a shared log -------------------------------------------------------

    @property
    def following(self) -> WireLog | None:
        """The shared log this outbox sends from, if any."""
        return self._log

    def can_follow(self) -> bool:
        """Whether `follow` would succeed: open, not TLS, following no other log."""
        return not self._closed and not self._tls and self._log is None

    def follow(self, log: WireLog) -> bool:
        """Send `log`'s entries from its head on, after the queue; False when unable
        (see `can_follow`)."""
        if not self.can_follow():
            return False
        self._log = log
        self._cursor = log.attach(self, self._flusher)
        return True

    def unfollow(self) -> None:
        """Stop following the log; what it holds for this outbox is still sent."""
        if self._log is not None:
            self._take_from_log()
            self._leave_log()
            if self._queue and self._writer is None:
                self._start_writer()

    def _leave_log(self) -> None:
        log, self._log, self._cursor = self._log, None, None
        if log is not None:
            log.detach(self)

    def _queue_moved(self, buffers: list[bytes | memoryview], size: int) -> None:
        if not buffers:
            return
        if self._waiting_since is None:
            self._waiting_since = time.monotonic()
        self._queue.extend(buffers)
        self._queued += size
        self.media_messages += len(buffers)

    def _take_from_log(self) -> None:
        """Move what the log holds for this outbox into the queue (references)."""
        assert self._log is not None and self._cursor is not None
        buffers, size, _ = self._log.take(self._cursor)
        self._queue_moved(buffers, size)

    def flush_log(self) -> None:
        """Called by the followed log at each flush: police the backlog, send what the
        kernel takes."""
        wire_log, cursor = self._log, self._cursor
        if wire_log is None or cursor is None:  # left the log during this flush (closed)
            return
        try:
            if wire_log.pending(cursor):
                if self._waiting_since is None:
                    self._waiting_since = time.monotonic()
                backlog = self._queued + wire_log.backlog(cursor)
                if backlog > self.high_water and not self._police(backlog):
                    return
            if self._writer is None:
                self._send_or_hand_over()
        except Exception as exc:  # never strand the log's other readers
            log.exception("sending from a shared log failed")
            self._fail(f"internal error while sending: {exc!r}")

    def _police(self, backlog: int) -> bool:
        """The slow-player policy for a reader behind by `backlog` bytes; False when it
        closed the connection."""
        if self._stalled():
            self._fail(f"nothing could be sent for {self.send_timeout:g} s (the client is not reading)")
            return False
        if backlog > self.soft_limit:
            self._skip_to_key()
            backlog = self.queued_bytes
        if backlog > self.hard_limit:
            self._fail(f"send queue passed {self.hard_limit} bytes (the client is not reading)")
            return False
        return True

    def _skip_to_key(self) -> None:
        """Move the cursor to the log's newest key frame; keep what is not video before it."""
        assert self._log is not None and self._cursor is not None
        kept, kept_bytes, dropped, dropped_bytes = self._log.skip_to_key(self._cursor)
        self._queue_moved(kept, kept_bytes)
        self.dropped_messages += dropped
        self.dropped_bytes += dropped_bytes

    # -- sending ------------------------------------------------------------------------

    def _take_batch(self) -> tuple[list[bytes | memoryview], int]:
        queue = self._queue
        batch: list[bytes | memoryview] = []
        size = 0
        while queue and len(batch) < _MAX_IOV and size < _MAX_BATCH_BYTES:
            buf = queue.popleft()
            batch.append(buf)
            size += len(buf)
        return batch, size

    def _account(self, batch: list[bytes | memoryview], size: int, sent: int) -> None:
        """Record `sent` bytes of `batch` as gone; put the rest back at the front."""
        if self._io_log is not None:
            self._log_sent(batch, sent)
        self.bytes_sent += sent
        self._queued -= sent
        if sent:
            self._waiting_since = time.monotonic()
        if sent < size:
            rest: list[bytes | memoryview] = []
            for buf in batch:
                if sent >= len(buf):
                    sent -= len(buf)
                    continue
                rest.append(memoryview(buf)[sent:] if sent else buf)
                sent = 0
            self._queue.extendleft(reversed(rest))

    def _send_now(self) -> bool:
        """Send what the kernel takes without waiting: the queue, then the log from the
        cursor. True when nothing is left."""
        fd = self._fd
        while self._queue:
            batch, size = self._take_batch()
            sent = _writev(fd, batch)
            self._account(batch, size, sent)
            if sent < size:
                return False
        log, cursor = self._log, self._cursor
        while log is not None and cursor is not None and log.pending(cursor):
            buffers, size = log.buffers(cursor, _MAX_IOV)
            sent = _writev(fd, buffers)
            if self._io_log is not None:
                self._log_sent(buffers, sent)
            self.bytes_sent += sent
            self.media_messages += log.advance(cursor, sent)
            if sent < size:
                if sent:
                    self._waiting_since = time.monotonic()
                return False
        self._waiting_since = None
        self._drained.set()
        return True

    def _send_or_hand_over(self) -> None:
        """Send what goes at once; a writer greenlet waits for room for the rest."""
        try:
            if not self._send_now():
                self._start_writer()
        except OSError as exc:
            self._fail(f"send failed: {exc}")

    def flush_scheduled(self) -> None:
        """Called by the flusher: send without blocking; leave the rest to a writer."""
        self._scheduled = False
        if not self._closed and self._writer is None:
            self._send_or_hand_over()

    def _start_writer(self) -> None:
        if self._writer is None and self._failed is None:
            self._writer = gevent.spawn(self._write)

    def _write(self) -> None:
        """The writer greenlet: send everything, waiting for the socket; then end."""
        try:
            if self._tls:
                while self._queue and self._failed is None:
                    batch, size = self._take_batch()
                    self._account(batch, size, self._sock.send(b"".join(batch)))
                self._waiting_since = None
                self._drained.set()
            else:
                while self._failed is None and not self._send_now():
                    gevent.socket.wait_write(self._fd)
        except OSError as exc:
            self._fail(f"send failed: {exc}")
        finally:
            self._writer = None

    def _log_sent(self, batch: list[bytes | memoryview], sent: int) -> None:
        assert self._io_log is not None
        for buf in batch:
            if sent <= 0:
                break
            self._io_log.write(buf[:sent])
            sent -= len(buf)

    # -- lifecycle ----------------------------------------------------------------------

    def drain(self, timeout: float) -> bool:
        """Wait until everything queued (and what the followed log holds for us) is sent,
        at most `timeout` seconds; True when it was."""
        if self._closed:
            return False
        self.unfollow()
        if self._queue:
            self._drained.clear()
            self._start_writer()
            self._drained.wait(timeout)
        return not self._queue

    def close(self, flush_timeout: float = 0.0) -> None:
        """Stop accepting messages; with a timeout, first let what waits drain that long."""
        if flush_timeout > 0 and not self._closed:
            self.unfollow()
            if self._queue:
                self._drained.clear()
                self._start_writer()
                self._drained.wait(flush_timeout)
        self._closed = True
        self._leave_log()
        writer = self._writer
        if writer is not None and writer is not gevent.getcurrent():
            writer.kill(block=True, timeout=1)
