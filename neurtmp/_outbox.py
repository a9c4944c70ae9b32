"""Outbox: one connection's queue of wire bytes and the writer greenlet that drains it.

Everything sent to a client goes through here as whole messages (control and command
bytes from the protocol object, shared media wire bytes from `Packet.wire`), so no two
messages' chunks interleave and a slow client never blocks the reader or anyone else.

The queue is bounded in bytes, with a drop policy for media when a player falls behind
(nginx-rtmp and SRS do the same in their own ways):

* above `soft_limit`, inter-frame video is dropped, and once video was dropped every
  video frame is dropped until the next key frame that fits; audio, sequence headers,
  metadata and commands are kept;
* above `hard_limit` the connection is closed, with a log line saying why;
* when bytes wait and none could be sent for `send_timeout` seconds (a player that
  stopped reading a video-only stream stays under the hard limit by dropping), the
  connection is closed too (nginx-rtmp's `send_timeout` does the same).

The writer takes queued buffers in batches and hands them to the kernel with one
`sendmsg` (a merged write); with `flush_interval` > 0 it first waits that long so
messages coalesce into fewer, larger sends.
"""

from __future__ import annotations

import fcntl
import logging
import struct
import termios
import time
from collections import deque
from collections.abc import Callable
from typing import BinaryIO

import gevent
import gevent.event
import gevent.socket

log = logging.getLogger(__name__)

#: Drop priorities: lower is more precious.
CRITICAL = 0  # control, commands, sequence headers, metadata: never dropped
AUDIO = 1
VIDEO_KEY = 2
VIDEO_INTER = 3

#: Most buffers handed to one sendmsg call (Linux IOV_MAX is 1024).
_MAX_IOV = 512
#: Most bytes handed to one sendmsg call.
_MAX_BATCH_BYTES = 1 << 20


def kernel_unsent_bytes(sock: gevent.socket.socket) -> int:
    """Bytes in the kernel's send queue not yet acknowledged by the peer (Linux)."""
    try:
        raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\x00\x00\x00\x00")
    except (OSError, ValueError):
        return 0
    return int(struct.unpack("i", raw)[0])


class Outbox:
    """A bounded queue of wire bytes with its writer greenlet.

    Args:
        sock: the connected socket.
        high_water: queued plus kernel-unsent bytes above which `is_full` is True.
        soft_limit: queued bytes above which video is dropped.
        hard_limit: queued bytes above which the connection is closed.
        flush_interval: seconds the writer waits to coalesce messages (0: at once).
        send_timeout: seconds queued bytes may wait with no progress before closing.
        on_overflow: called (once) with a reason when the hard limit is passed.
        io_log: a file that receives every byte sent, or None.
    """

    def __init__(
        self,
        sock: gevent.socket.socket,
        *,
        high_water: int,
        soft_limit: int,
        hard_limit: int,
        flush_interval: float = 0.0,
        send_timeout: float = 30.0,
        on_overflow: Callable[[str], None] | None = None,
        io_log: BinaryIO | None = None,
    ) -> None:
        self._sock = sock
        self.high_water = high_water
        self.soft_limit = soft_limit
        self.hard_limit = hard_limit
        self.flush_interval = flush_interval
        self.send_timeout = send_timeout
        self._last_progress = time.monotonic()
        self._on_overflow = on_overflow
        self._io_log = io_log
        self._queue: deque[bytes | memoryview] = deque()
        self._queued = 0
        self._wake = gevent.event.Event()
        self._drained = gevent.event.Event()
        self._drained.set()
        self._skipping_video = False
        self._closed = False
        self._failed: str | None = None
        self.bytes_sent = 0
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

    def put(self, data: bytes, priority: int = CRITICAL) -> bool:
        """Queue one message's bytes; returns False when the drop policy dropped it."""
        if self._closed:
            return False
        queued = self._queued
        if queued:
            if time.monotonic() - self._last_progress > self.send_timeout:
                self._overflow(f"nothing could be sent for {self.send_timeout:g} s (the client is not reading)")
                return False
        else:
            self._last_progress = time.monotonic()
        if priority >= VIDEO_KEY:
            if queued > self.soft_limit or (self._skipping_video and priority == VIDEO_INTER):
                self._skipping_video = True
                self.dropped_messages += 1
                self.dropped_bytes += len(data)
                return False
            self._skipping_video = False
        if queued + len(data) > self.hard_limit:
            self._overflow(f"send queue passed {self.hard_limit} bytes (the client is not reading)")
            return False
        self._queue.append(data)
        self._queued = queued + len(data)
        self._drained.clear()
        self._wake.set()
        return True

    def _overflow(self, reason: str) -> None:
        if self._failed is None:
            self._failed = reason
            self._closed = True
            self._queue.clear()
            self._queued = 0
            self._drained.set()
            if self._on_overflow is not None:
                self._on_overflow(reason)

    # -- writer side --------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                self._wake.wait()
                if self.flush_interval and not self._closed:
                    gevent.sleep(self.flush_interval)
                self._wake.clear()
                if not self._queue:
                    self._drained.set()
                    if self._closed:
                        return
                    continue
                self._send_batch()
        except OSError as exc:
            self._overflow(f"send failed: {exc}")

    def _send_batch(self) -> None:
        queue = self._queue
        batch: list[bytes | memoryview] = []
        size = 0
        while queue and len(batch) < _MAX_IOV and size < _MAX_BATCH_BYTES:
            buf = queue.popleft()
            batch.append(buf)
            size += len(buf)
        sent = self._sock.sendmsg(batch) if len(batch) > 1 else self._sock.send(batch[0])
        if self._io_log is not None:
            self._log_sent(batch, sent)
        self.bytes_sent += sent
        self._queued -= sent
        if sent:
            self._last_progress = time.monotonic()
        if sent < size:
            # Put back what the kernel did not take, a memoryview tail first.
            rest: list[bytes | memoryview] = []
            for buf in batch:
                if sent >= len(buf):
                    sent -= len(buf)
                    continue
                rest.append(memoryview(buf)[sent:] if sent else buf)
                sent = 0
            queue.extendleft(reversed(rest))
        self._wake.set()

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
        if flush_timeout > 0 and not self._closed:
            self._drained.wait(flush_timeout)
        self._closed = True
        self._wake.set()
        if self._writer is not gevent.getcurrent():
            self._writer.kill(block=True, timeout=1)
