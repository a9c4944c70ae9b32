"""StreamEncoder: the one owner of a stream's video encoder.

A PyAV encoder is not thread-safe, and opening or flushing one takes milliseconds
(libx264: 3-11 ms; the first NVML probe behind "hardware=auto" ~60 ms). So every call on
a stream's encoder goes through its `StreamEncoder`: init, encode, flush and close run
one after another under one lock, and a call made on the hub runs in gevent's thread
pool, never on the hub itself. A caller killed while its job runs (the frame worker
stopped by pause, replay or `use_codec`) waits for the job to end before it goes, so
stopping a stream never leaves an encode behind it.

`StreamEncoder` has the encoder interface (neuray `IVideo_encoder`), so handler code
ported from neuray uses `stream.get_video_encoder()` as it would there: `init` in the
play handler, `encode_canvas` in the frame handler (on the hub or in a worker thread).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import gevent

from neurtmp.codec import VideoData
from neurtmp.errors import ConnectionClosed, EncodeError

__all__ = ["StreamEncoder", "run_off_hub"]

log = logging.getLogger(__name__)

T = TypeVar("T")


def run_off_hub(function: Callable[..., T], *args: Any) -> T:
    """Run `function(*args)` in gevent's thread pool and return its result.

    If the calling greenlet is killed meanwhile, it still waits for the job to end
    before the kill goes on, so whatever the job uses is free once the caller is gone.
    """
    job = gevent.get_hub().threadpool.spawn(function, *args)
    try:
        return job.get()  # type: ignore[no-any-return]
    except BaseException:
        while not job.ready():
            try:
                job.wait()
            except BaseException:  # a second kill: the job still owns its objects
                continue
        raise


def _canvas_size(canvas: Any) -> tuple[int, int]:
    shape = getattr(canvas, "shape", None)
    if shape is None or len(shape) != 3:
        raise EncodeError(f"expected a canvas (H x W x 3 or 4), not {type(canvas).__name__}")
    return int(shape[1]), int(shape[0])


class StreamEncoder:
    """Owns a video encoder (neurtmp.codec) for one stream; see the module docstring.

    Made by `Stream.use_codec` on the hub; its methods may be called from the hub (they
    then run in the thread pool) or from a worker thread (they run there).
    """

    def __init__(self, encoder: Any) -> None:
        self.encoder = encoder
        self._lock = threading.Lock()
        self._hub_thread = threading.get_ident()
        self._restart = True
        self._released = False
        self._pending_header: VideoData | None = None
        #: Frames encoded (sequence headers not counted).
        self.frames = 0

    def __repr__(self) -> str:
        return f"<StreamEncoder {self.get_identifier()} {self.width}x{self.height}>"

    def _call(self, function: Callable[..., T], *args: Any) -> T:
        """Run a job under the lock, off the hub."""
        if threading.get_ident() == self._hub_thread:
            result: T = run_off_hub(self._locked, function, *args)
            return result
        return self._locked(function, *args)

    def _locked(self, function: Callable[..., T], *args: Any) -> T:
        with self._lock:
            if self._released:
                raise ConnectionClosed("the stream's encoder is closed")
            return function(*args)

    # -- the encoder interface ------------------------------------------------------------

    @property
    def width(self) -> int:
        return int(self.encoder.width)

    @property
    def height(self) -> int:
        return int(self.encoder.height)

    def get_identifier(self) -> str:
        return str(self.encoder.get_identifier())

    def set_parameter(self, name: str, value: Any) -> bool:
        """Set an encoder parameter (bitrate, frame_rate, key_frame_interval, preset, ...);
        it applies from the next `init`. False for a name the encoder does not have."""
        return bool(self.encoder.set_parameter(name, value))

    def get_parameter(self, name: str) -> Any:
        return self.encoder.get_parameter(name)

    def get_supported_type(self, index: int) -> str | None:
        return self.encoder.get_supported_type(index)  # type: ignore[no-any-return]

    def init(self, width: int, height: int) -> VideoData | None:
        """(Re)open the encoder for `width` x `height`; returns the sequence header."""
        return self._call(self._init_job, width, height)

    def encode_canvas(self, canvas: Any) -> VideoData:
        """Encode one canvas. When the encoder needs opening first (a new play, a new
        size, never initialised) it is opened here and its sequence header goes out
        before this frame."""
        frames = self._call(self._encode_job, canvas)
        if len(frames) > 1:
            self._pending_header = frames[0]
        return frames[-1]

    def close(self) -> VideoData | None:
        """Flush and close the codec (a later `init` or `encode_canvas` opens it again)."""
        return self._call(self._close_job)

    # -- the framework side -----------------------------------------------------------------

    def restart(self) -> None:
        """Re-open before the next frame (a new play needs a sequence header first),
        unless `init` is called before it."""
        self._restart = True

    def encode(self, canvas: Any) -> list[VideoData]:
        """[sequence header (when (re)opened)], frame: what the frame worker sends."""
        return self._call(self._encode_job, canvas)

    def take_header(self) -> VideoData | None:
        """The sequence header of an open that `encode_canvas` did by itself, once."""
        header, self._pending_header = self._pending_header, None
        return header

    def release(self) -> None:
        """Close for good once the job in flight is done, without waiting here."""
        if not self._released:
            gevent.spawn(self._release)

    def _release(self) -> None:
        try:
            self._call(self._close_job)
        except ConnectionClosed:
            return
        except Exception:
            log.exception("closing the %s encoder failed", self.get_identifier())
        self._released = True

    # -- jobs (run under the lock, in a worker thread) -----------------------------------

    def _init_job(self, width: int, height: int) -> VideoData | None:
        if self.encoder.width:
            self.encoder.close()
        self._restart = False
        header: VideoData | None = self.encoder.init(width, height)
        return header

    def _encode_job(self, canvas: Any) -> list[VideoData]:
        width, height = _canvas_size(canvas)
        out: list[VideoData] = []
        if self._restart or (self.encoder.width, self.encoder.height) != (width, height):
            header = self._init_job(width, height)
            if header is not None:
                out.append(header)
        out.append(self.encoder.encode_canvas(canvas))
        self.frames += 1
        return out

    def _close_job(self) -> VideoData | None:
        if not self.encoder.width:
            return None
        last: VideoData | None = self.encoder.close()
        return last
