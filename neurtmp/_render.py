"""The render loop and the frame worker of a playing stream.

Two greenlets per playing stream with handlers: the render loop calls the render
handler about `render_rate` times a second; the frame worker calls the frame handler at
`frame_rate` (render_rate unless set) and sends what it returns. They are separate so a
slow render never stalls the frame clock. A handler whose class sets ``threaded = True``
runs in gevent's thread pool, so GIL-releasing work (NumPy, PyAV, torch) does not stall
other connections. Both loops keep to their schedule without bursting to catch up.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import gevent

from neurtmp._handler import call_handler, is_threaded
from neurtmp.codec import VideoData
from neurtmp.errors import ConnectionClosed

if TYPE_CHECKING:
    from neurtmp.stream import Stream

log = logging.getLogger(__name__)


def _invoke(handler: Any, *args: Any) -> Any:
    if is_threaded(handler):
        return gevent.get_hub().threadpool.apply(call_handler, (handler, *args))
    return call_handler(handler, *args)


class StreamLoops:
    """The render and frame greenlets of one stream."""

    def __init__(self, stream: Stream, render_handler: Any, frame_handler: Any) -> None:
        self._stream = stream
        self._render_handler = render_handler
        self._frame_handler = frame_handler
        self._greenlets: list[gevent.Greenlet] = []
        self.renders = 0
        self.frames = 0

    def start(self) -> None:
        if self._render_handler is not None:
            self._greenlets.append(gevent.spawn(self._loop, "render_rate", self._render_once))
        if self._frame_handler is not None:
            self._greenlets.append(gevent.spawn(self._loop, "frame_rate", self._frame_once))

    def stop(self) -> None:
        current = gevent.getcurrent()
        others = [g for g in self._greenlets if g is not current]
        gevent.killall(others, block=True, timeout=2)
        self._greenlets.clear()

    def _loop(self, rate_property: str, tick: Any) -> None:
        stream = self._stream
        next_at = time.monotonic()
        try:
            while not stream.closed:
                if tick() is False:
                    log.info("%s: %s handler ended the stream", stream, rate_property.split("_")[0])
                    stream.get_connection()._stop_stream_from_handler(stream)
                    return
                period = 1.0 / float(stream.get_property(rate_property))
                next_at += period
                delay = next_at - time.monotonic()
                if delay < -period:  # far behind: skip ahead rather than burst
                    next_at = time.monotonic()
                    delay = 0
                gevent.sleep(max(delay, 0))
        except ConnectionClosed:
            return
        except gevent.GreenletExit:
            raise
        except Exception:
            log.exception("%s: handler raised; stopping the stream", stream)
            stream.get_connection()._stop_stream_from_handler(stream)

    def _render_once(self) -> bool:
        self.renders += 1
        return _invoke(self._render_handler, self._stream) is not False

    def _frame_once(self) -> bool:
        stream = self._stream
        result = _invoke(self._frame_handler, stream, stream.outqueue_is_full())
        if result is False:
            return False
        if result is None or result is True:
            return True
        if isinstance(result, VideoData):
            frames = [result]
        elif isinstance(result, (bytes, bytearray, memoryview)):
            frames = [VideoData(bytes(result))]
        else:
            frames = stream._encode_canvas(result)
        timestamp = stream.clock()
        for frame in frames:
            if frame.data:
                stream.send_video(frame.data, timestamp)
        self.frames += 1
        return True
