"""The render loop and the frame worker of a playing stream.

Two greenlets per playing stream with handlers: the render loop calls the render
handler about `render_rate` times a second; the frame worker calls the frame handler at
`frame_rate` (render_rate unless set), encodes what it returns (through the stream's
`StreamEncoder`, off the hub) and sends it. They are separate so a slow render never
stalls the frame clock, and render handlers run in gevent's thread pool unless their
class sets ``threaded = False`` (cheap work), so drawing never stalls the hub either.

When the machine cannot keep up, both loops skip ticks instead of queueing them: a tick
that ends late is followed by the next one on the schedule, never by a burst, so a
viewer gets as many frames as the machine can make and each is fresh.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import gevent

from neurtmp._encoding import run_off_hub
from neurtmp._handler import call_handler
from neurtmp.codec import VideoData
from neurtmp.errors import ConnectionClosed

if TYPE_CHECKING:
    from neurtmp.stream import Stream

__all__ = ["StreamLoops", "is_threaded"]

log = logging.getLogger(__name__)

#: Shortest pause between two ticks of a loop that is behind, so the hub breathes.
_MIN_GAP = 0.001


def is_threaded(handler: Any, default: bool) -> bool:
    """Whether a render/frame handler runs in the thread pool (its `threaded` attribute)."""
    return bool(getattr(handler, "threaded", default))


class StreamLoops:
    """The render and frame greenlets of one stream.

    Args:
        stream: the playing stream.
        render_handler / frame_handler: the stream's handlers (either may be None).
        on_stop: called with a reason when a handler ends the stream (returned False or
            raised); the loops have stopped by then.
    """

    def __init__(self, stream: Stream, render_handler: Any, frame_handler: Any,
                 on_stop: Callable[[str], None]) -> None:
        self._stream = stream
        self._render_handler = render_handler
        self._frame_handler = frame_handler
        self._on_stop = on_stop
        self._render_threaded = is_threaded(render_handler, True)
        self._frame_threaded = is_threaded(frame_handler, False)
        self._greenlets: list[gevent.Greenlet] = []
        self.renders = 0
        self.frames = 0
        #: Ticks skipped because the previous one ended too late.
        self.skipped = 0

    def start(self) -> None:
        if self._render_handler is not None:
            self._greenlets.append(gevent.spawn(self._loop, "render_rate", self._render_once))
        if self._frame_handler is not None:
            self._greenlets.append(gevent.spawn(self._loop, "frame_rate", self._frame_once))

    def stop(self) -> None:
        """Stop both loops; returns when they are gone (a job in flight finishes first)."""
        current = gevent.getcurrent()
        others = [g for g in self._greenlets if g is not current]
        gevent.killall(others, block=True, timeout=5)
        self._greenlets.clear()

    def _loop(self, rate_property: str, tick: Callable[[], bool]) -> None:
        stream = self._stream
        next_at = time.monotonic()
        try:
            while not stream.closed:
                if tick() is False:
                    self._end(f"{rate_property.split('_')[0]} handler ended the stream")
                    return
                period = 1.0 / float(stream.get_property(rate_property))
                next_at += period
                now = time.monotonic()
                if next_at < now:  # late: skip the missed ticks, keep to the schedule
                    missed = int((now - next_at) / period) + 1
                    self.skipped += missed
                    next_at += missed * period
                gevent.sleep(max(next_at - now, _MIN_GAP))
        except ConnectionClosed:
            return
        except gevent.GreenletExit:
            raise
        except Exception:
            log.exception("%s: handler raised; stopping the stream", stream)
            self._end("a handler raised")

    def _end(self, reason: str) -> None:
        log.info("%s: %s", self._stream, reason)
        gevent.spawn(self._on_stop, reason)  # it stops us: not from inside the loop

    def _invoke(self, handler: Any, threaded: bool, *args: Any) -> Any:
        if threaded:
            return run_off_hub(call_handler, handler, *args)
        return call_handler(handler, *args)

    def _render_once(self) -> bool:
        self.renders += 1
        return self._invoke(self._render_handler, self._render_threaded, self._stream) is not False

    def _frame_once(self) -> bool:
        stream = self._stream
        result = self._invoke(self._frame_handler, self._frame_threaded, stream, stream.outqueue_is_full())
        if result is False:
            return False
        if result is None or result is True:
            return True
        if isinstance(result, VideoData):
            encoder = stream.get_video_encoder()
            header = encoder.take_header() if encoder is not None else None
            frames = [result] if header is None else [header, result]
        elif isinstance(result, (bytes, bytearray, memoryview)):
            frames = [VideoData(bytes(result))]
        else:
            frames = stream.encode_canvas(result)
        timestamp = stream.clock()
        for frame in frames:
            if frame.data:
                stream.send_video(frame.data, timestamp)
        self.frames += 1
        return True
