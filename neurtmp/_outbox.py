"""Outbox: one connection's queue of wire bytes, and how it reaches the socket.

Everything sent to a client goes through here as whole messages (control and command
bytes from the protocol object, shared media wire bytes from `Packet.wire`), so no two
messages' chunks interleave and a slow client never blocks the reader or anyone else.

Two ways out:

* urgent bytes (command replies, control) and every message in low-latency mode wake
  the connection's writer greenlet, which sends at once;
* media in merged-write mode (`flush_interval` > 0, SRS calls it "merged write") waits for
  the server's `Flusher`: one greenlet that, every interval, hands each pending queue to
  the kernel with one non-blocking `writev`. Only a queue the kernel cannot take whole
  falls back to its writer greenlet, which waits for the socket. A thousand players then
  cost one loop and a thousand syscalls per interval, not thousands of greenlet switches.

The queue is bounded in bytes, with a drop policy for media when a player falls behind
(nginx-rtmp and SRS do the same in their own ways):

* above `soft_limit`, inter-frame video is dropped, and once video was dropped every
  video frame is dropped until the next key frame that fits; audio, sequence headers,
  metadata and commands are kept;
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
from typing import BinaryIO

import gevent
import gevent.event
import gevent.socket
import gevent.ssl

log = logging.getLogger(__name__)

#: Drop priorities: lower is more precious.
CRITICAL = 0  # control, commands, sequence headers, metadata: never dropped
AUDIO = 1
VIDEO_KEY = 2
VIDEO_INTER = 3

#: Most buffers handed to one writev/sendmsg call (Linux IOV_MAX is 1024).
_MAX_IOV = 512
#: Most bytes handed to one writev/sendmsg call.
_MAX_BATCH_BYTES = 4 << 20


def kernel_unsent_bytes(sock: gevent.socket.socket) -> int:
    """Bytes in the kernel's send queue not yet acknowledged by the peer (Linux)."""
    try:
        raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\x00\x00\x00\x00")
    except (OSError, ValueError):
        return 0
    return int(struct.unpack("i", raw)[0])


class Flusher:
    """Sends every outbox with pending media once per `interval` (merged writes)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._pending: list[Outbox] = []
        self._greenlet: gevent.Greenlet | None = None

    def schedule(self, outbox: Outbox) -> None:
        self._pending.append(outbox)
        if self._greenlet is None:
            self._greenlet = gevent.spawn(self._run)

    def _run(self) -> None:
        try:
            while self._pending:
                gevent.sleep(self.interval)
                pending, self._pending = self._pending, []
                for outbox in pending:
                    outbox.flush_scheduled()
        finally:
            self._greenlet = None

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
        self._pending = []


class Outbox:
    """A bounded queue of wire bytes for one connection.

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
        # so such a connection always sends from its writer greenlet.
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
        self._scheduled = False  # in the flusher's list
        self._writing = False  # the writer greenlet owns the queue until it drains it
        self._wake = gevent.event.Event()
        self._drained = gevent.event.Event()
        self._drained.set()
        self._skipping_video = False
        self._closed = False
        self._failed: str | None = None
        self._last_progress = time.monotonic()
        self.bytes_sent = 0
        #: Media messages queued (not urgent protocol output); drops are counted apart.
        self.media_messages = 0
        self.dropped_messages = 0
        self.dropped_bytes = 0
        self._writer = gevent.spawn(self._run)

    # -- producer side ------------------------------------------------------------------

    @property
    def queued_bytes(self) -> int:
        return self._queued

    def is_full(self) -> bool:
        """True when the client is not draining: ours plus the kernel's backlog is high."""
        if self._queued > self.high_water:
            return True
        return self._queued + kernel_unsent_bytes(self._sock) > self.high_water

    def put(self, data: bytes, priority: int = CRITICAL, urgent: bool = False) -> bool:
        """Queue one message's bytes; returns False when the drop policy dropped it.

        Urgent bytes (replies, control) are sent at once; others wait for the flusher.
        """
        if self._closed:
            return False
        queued = self._queued
        if queued > self.high_water and time.monotonic() - self._last_progress > self.send_timeout:
            self._fail(f"nothing could be sent for {self.send_timeout:g} s (the client is not reading)")
            return False
        if priority >= VIDEO_KEY:
            if queued > self.soft_limit or (self._skipping_video and priority == VIDEO_INTER):
                self._skipping_video = True
                self.dropped_messages += 1
                self.dropped_bytes += len(data)
                return False
            self._skipping_video = False
        if queued + len(data) > self.hard_limit:
            self._fail(f"send queue passed {self.hard_limit} bytes (the client is not reading)")
            return False
        if not queued:
            self._last_progress = time.monotonic()
            self._drained.clear()
        self._queue.append(data)
        self._queued = queued + len(data)
        if not urgent:
            self.media_messages += 1
        if self._writing:
            return True
        if urgent or self._flusher is None or self._tls:
            self._writing = True
            self._wake.set()
        elif not self._scheduled:
            self._scheduled = True
            self._flusher.schedule(self)
        return True

    def _fail(self, reason: str) -> None:
        if self._failed is None:
            self._failed = reason
            self._closed = True
            self._queue.clear()
            self._queued = 0
            self._drained.set()
            self._wake.set()
            if self._on_overflow is not None:
                self._on_overflow(reason)

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
            self._last_progress = time.monotonic()
        if sent < size:
            rest: list[bytes | memoryview] = []
            for buf in batch:
                if sent >= len(buf):
                    sent -= len(buf)
                    continue
                rest.append(memoryview(buf)[sent:] if sent else buf)
                sent = 0
            self._queue.extendleft(reversed(rest))
        if not self._queue:
            self._drained.set()

    def flush_scheduled(self) -> None:
        """Called by the flusher: send without blocking; leave the rest to the writer."""
        self._scheduled = False
        if self._closed or self._writing:
            return
        try:
            while self._queue:
                batch, size = self._take_batch()
                try:
                    sent = os.writev(self._fd, batch)
                except BlockingIOError:
                    sent = 0
                self._account(batch, size, sent)
                if sent < size:
                    self._writing = True  # the kernel is full: the writer waits for room
                    self._wake.set()
                    return
        except OSError as exc:
            self._fail(f"send failed: {exc}")

    def _run(self) -> None:
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._closed and (self._failed or not self._queue):
                    return
                while self._queue and not self._failed:
                    batch, size = self._take_batch()
                    if self._tls:
                        sent = self._sock.send(b"".join(batch))
                    else:
                        sent = self._sock.sendmsg(batch) if len(batch) > 1 else self._sock.send(batch[0])
                    self._account(batch, size, sent)
                self._writing = False
                if self._closed:
                    return
        except OSError as exc:
            self._fail(f"send failed: {exc}")

    def _log_sent(self, batch: list[bytes | memoryview], sent: int) -> None:
        assert self._io_log is not None
        for buf in batch:
            if sent <= 0:
                break
            self._io_log.write(buf[:sent])
            sent -= len(buf)

    # -- lifecycle ----------------------------------------------------------------------

    def close(self, flush_timeout: float = 0.0) -> None:
        """Stop accepting messages; with a timeout, first let the queue drain that long."""
        if flush_timeout > 0 and not self._closed and self._queue:
            if not self._writing:
                self._writing = True
                self._wake.set()
            self._drained.wait(flush_timeout)
        self._closed = True
        self._wake.set()
        if self._writer is not gevent.getcurrent():
            self._writer.kill(block=True, timeout=1)
