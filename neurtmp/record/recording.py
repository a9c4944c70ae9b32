"""Recording: one published stream on its way to files, off the hub.

The connection's greenlet hands each message to `Recording.push`: the `Segmenter` says
what to do with it and the operations are queued (an append, no I/O). A writer greenlet
takes what has queued up and runs it in gevent's thread pool, one batch at a time, so
file I/O (and MP4 muxing) never blocks the hub, and a recording's writes stay in order.
The queue is bounded in bytes: a disk too slow for the stream stops that recording with
one log line instead of growing memory. A write error (a full disk, a directory that
became read-only) stops that recording alone, with one log line; the stream and its
players go on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import gevent
import gevent.event

from neurtmp import Packet
from neurtmp.names import redact_query
from neurtmp.record.naming import file_stem
from neurtmp.record.segmenter import End, Op, Segmenter, Start, Write

__all__ = ["DoneCallback", "FileDone", "Recording", "Sink"]

log = logging.getLogger(__name__)

#: on_done(path, app, name, start, end): a file is finished (start and end in epoch seconds).
DoneCallback = Callable[[str, str, str, float, float], Any]


class Sink(Protocol):
    """One open recording file (`FlvFile`, `Mp4File`); its methods block."""

    @property
    def path(self) -> str: ...
    @property
    def size(self) -> int: ...

    def write(self, op: Write) -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...
    def abandon(self) -> None: ...


SinkFactory = Callable[[str, Start], Sink]


@dataclass(frozen=True)
class FileDone:
    """A finished file."""

    path: str
    size: int
    start: float
    end: float
    #: Seconds of media in it (its last timestamp).
    duration: float
    #: What ended it: "interval", "size", "new sequence header", "unpublished", or the error.
    reason: str


@dataclass(frozen=True)
class _Item:
    op: Op
    wall: float


@dataclass
class _Outcome:
    """What a batch did: files opened and finished, and the error that stopped it, if
    any, with the file it was writing (closed as far as it got). Returned, not raised:
    gevent's thread pool reports exceptions raised in a task as errors of its own."""

    opened: list[str]
    done: list[FileDone]
    error: BaseException | None = None
    partial: FileDone | None = None


def _describe(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return f"{error.strerror}" + (f": {error.filename}" if error.filename else "")
    return str(error) or type(error).__name__


class Recording:
    """A published stream being recorded (see the module docstring).

    Args:
        directory: the recording directory (files go to DIRECTORY/APP/NAME/).
        app, name: the stream's application and name, both safe path components.
        open_file: makes the `Sink` of a new file.
        segmenter: where files start and end.
        max_pending: queued bytes past which the recording stops (the disk cannot keep up).
        on_done: called on the hub with each finished file.
        label: how log lines name the stream (its name redacted).
    """

    def __init__(self, directory: str, app: str, name: str, open_file: SinkFactory, segmenter: Segmenter,
                 max_pending: int, on_done: Callable[[FileDone], Any], label: str) -> None:
        self.directory, self.app, self.name = directory, app, name
        self._open_file = open_file
        self.segmenter = segmenter
        self.max_pending = max_pending
        self._on_done = on_done
        self.label = redact_query(label)
        self._queue: list[_Item] = []
        self.pending = 0
        self._wake = gevent.event.Event()
        self._ending = False
        #: Why the recording stopped early (None while it goes on, or once it ended well).
        self.failure: str | None = None
        #: Files finished so far.
        self.files: list[FileDone] = []
        # (thread side: touched only by batches, which run one at a time)
        self._sink: Sink | None = None
        self._sink_start = 0.0
        self._sink_last = 0
        self._writer = gevent.spawn(self._run)

    def __repr__(self) -> str:
        return f"<Recording {self.label} files={len(self.files)} pending={self.pending}>"

    @property
    def finished(self) -> bool:
        """The writer is done: every file closed (or the recording stopped)."""
        return bool(self._writer.dead)

    # -- the hub side -----------------------------------------------------------------

    def push(self, packet: Packet) -> None:
        """One published message (called in the connection's greenlet; never blocks)."""
        if self.failure is None and not self._ending:
            self._submit(self.segmenter.push(packet))

    def end(self) -> None:
        """The publisher stopped: close the file once what is queued is written."""
        if not self._ending:
            self._submit(self.segmenter.end())
            self._ending = True
            self._wake.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the writer to finish; returns whether it did."""
        self._writer.join(timeout)
        return bool(self._writer.dead)

    def _submit(self, ops: list[Op]) -> None:
        if not ops:
            return
        now = time.time()
        for op in ops:
            self._queue.append(_Item(op, now))
            if isinstance(op, Write):
                self.pending += len(op.packet.payload)
        if self.pending > self.max_pending:
            self._stop(f"the disk is not keeping up: {self.pending / 2**20:.2f} MiB waiting to be written "
                       f"(bound {self.max_pending / 2**20:.2f} MiB)")
            return
        self._wake.set()

    def _stop(self, reason: str) -> None:
        """Stop recording (the one log line); the writer closes the file as far as it got."""
        if self.failure is not None:
            return
        self.failure = reason
        log.error("%s: recording stopped: %s; the stream goes on", self.label, reason)
        self._queue = [_Item(End(reason), time.time())]
        self.pending = 0
        self._ending = True
        self._wake.set()

    # -- the writer greenlet ------------------------------------------------------------

    def _run(self) -> None:
        pool = gevent.get_hub().threadpool
        while True:
            self._wake.wait()
            self._wake.clear()
            batch, self._queue = self._queue, []
            if batch:
                written = sum(len(i.op.packet.payload) for i in batch if isinstance(i.op, Write))
                outcome: _Outcome = pool.spawn(self._apply, batch).get()
                self._report(outcome.opened, outcome.done)
                if outcome.error is not None:
                    where = f" ({outcome.partial.path})" if outcome.partial else ""
                    self._stop(f"{_describe(outcome.error)}{where}")
                    if outcome.partial:
                        self._report([], [outcome.partial], quiet=True)
                    return
                if self.failure is None:
                    self.pending = max(0, self.pending - written)
            if self._ending and not self._queue:
                return

    def _report(self, opened: list[str], done: list[FileDone], quiet: bool = False) -> None:
        for path in opened:
            log.info("%s: recording to %s", self.label, path)
        for file in done:
            self.files.append(file)
            if not quiet:
                log.info("%s: recorded %s (%.1f s, %d bytes; %s)", self.label, file.path, file.duration, file.size,
                         file.reason)
            try:
                self._on_done(file)
            except Exception:
                log.exception("%s: the recording's on_done callback raised", self.label)

    # -- in a worker thread -------------------------------------------------------------

    def _apply(self, batch: list[_Item]) -> _Outcome:
        """Run a batch of operations (blocking I/O); an error ends the batch and the file."""
        opened: list[str] = []
        done: list[FileDone] = []
        try:
            for item in batch:
                op = item.op
                if isinstance(op, Write):
                    if self._sink is not None:
                        self._sink.write(op)
                        self._sink_last = max(self._sink_last, op.timestamp)
                elif isinstance(op, Start):
                    stem = file_stem(self.directory, self.app, self.name, item.wall)
                    self._sink, self._sink_start, self._sink_last = self._open_file(stem, op), item.wall, 0
                    opened.append(self._sink.path)
                elif self._sink is not None:  # End
                    sink, self._sink = self._sink, None
                    sink.close()
                    done.append(FileDone(sink.path, sink.size, self._sink_start, item.wall, self._sink_last / 1000,
                                         op.reason))
            if self._sink is not None:
                self._sink.flush()
        except Exception as exc:  # a write error (OSError) or a muxer error: this recording stops
            partial = None
            if self._sink is not None:
                sink, self._sink = self._sink, None
                sink.abandon()
                partial = FileDone(sink.path, sink.size, self._sink_start, time.time(), self._sink_last / 1000,
                                   _describe(exc))
            return _Outcome(opened, done, exc, partial)
        return _Outcome(opened, done)
