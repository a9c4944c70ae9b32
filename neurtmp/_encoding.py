"""StreamEncoder: the one owner of a stream's video encoder.

A PyAV encoder is not thread-safe, and opening or flushing one takes milliseconds
(libx264: 3-11 ms; the first NVML probe behind "hardware=auto" ~60 ms). So every call on
a stream's encoder goes through its `StreamEncoder`: init, encode, flush and close run
one after another, each in gevent's thread pool, never on the hub. A caller that is
killed while its job runs (the frame worker stopped by pause, replay or `use_codec`)
keeps the encoder to itself until the job ends, so the next job never overlaps it.
"""

from __future__ import annotations

import logging
from typing import Any

import gevent
import gevent.lock

from neurtmp.codec import VideoData
from neurtmp.errors import ConnectionClosed, EncodeError

__all__ = ["StreamEncoder", "run_off_hub"]

log = logging.getLogger(__name__)


def run_off_hub(function: Any, *args: Any) -> Any:
    """Run `function(*args)` in gevent's thread pool and return its result.

    If the calling greenlet is killed meanwhile, it still waits for the job to end
    before the kill goes on, so whatever the job uses is free once the caller is gone.
    """
    job = gevent.get_hub().threadpool.spawn(function, *args)
    try:
        return job.get()
    except BaseException:
        while not job.ready():
            try:
                job.wait()
            except BaseException:  # a second kill: the job still owns its objects
                continue
        raise


class StreamEncoder:
    """Owns a video encoder (neurtmp.codec) for one stream; see the module docstring."""

    def __init__(self, encoder: Any) -> None:
        self.encoder = encoder
        self._lock = gevent.lock.Semaphore()
        self._restart = True
        self._closed = False
        #: Frames encoded (sequence headers not counted).
        self.frames = 0

    def restart(self) -> None:
        """Re-initialise before the next frame (a new play needs a sequence header first)."""
        self._restart = True

    def encode(self, canvas: Any) -> list[VideoData]:
        """Encode one canvas: [sequence header (after a restart or a new size)], frame.

        Raises:
            EncodeError: not a canvas, or the encoder failed.
            ConnectionClosed: the encoder was closed.
        """
        shape = getattr(canvas, "shape", None)
        if shape is None or len(shape) != 3:
            raise EncodeError(f"frame handler returned {type(canvas).__name__}, not a canvas or VideoData")
        with self._lock:
            if self._closed:
                raise ConnectionClosed("the stream's encoder is closed")
            restart, self._restart = self._restart, False
            frames: list[VideoData] = run_off_hub(self._encode_job, canvas, restart)
            self.frames += 1
            return frames

    def _encode_job(self, canvas: Any, restart: bool) -> list[VideoData]:
        """Runs in a worker thread, the only code touching the encoder at that time."""
        encoder = self.encoder
        height, width = int(canvas.shape[0]), int(canvas.shape[1])
        out: list[VideoData] = []
        if restart or (encoder.width, encoder.height) != (width, height):
            if encoder.width:
                encoder.close()
            header = encoder.init(width, height)
            if header is not None:
                out.append(header)
        out.append(encoder.encode_canvas(canvas))
        return out

    def close(self) -> None:
        """Wait for the job in flight, then flush and close the encoder (off the hub)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self.encoder.width:
                try:
                    run_off_hub(self.encoder.close)
                except Exception:
                    log.exception("closing the %s encoder failed", self.encoder.get_identifier())

    def close_later(self) -> None:
        """Close without waiting here (for teardown paths)."""
        if not self._closed:
            gevent.spawn(self.close)
