"""The RTMP server example of neuray's reference (`mi::rtmp`), ported line by line.

    python examples/neuray_port/server.py            # start(""): 0.0.0.0:1935, as there
    python examples/neuray_port/server.py --listen 127.0.0.1:1936
    ffmpeg -i rtmp://127.0.0.1:1935/app/any -f null -   # or ffplay, VLC

Each C++ class becomes a Python class with the same job; out-parameters become return
values (the frame handler returns the encoded frame; the play handler returns its init
frame). The render loop and the frame loop run apart, so the canvas is shared under a
lock, as the reference's comment asks.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

import gevent
import numpy as np

import neurtmp
from neurtmp.handlers import (
    ConnectEventHandler,
    FrameEventHandler,
    PlayEventHandler,
    RenderEventHandler,
    StreamEventHandler,
)

WIDTH, HEIGHT = 320, 240


class Canvases:
    """render_a_canvas_and_save() and get_the_last_rendered_canvas() of the reference."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frame = 0
        self._last = self._draw(0)

    def _draw(self, frame: int) -> np.ndarray:
        x = np.arange(WIDTH)[None, :]
        y = np.arange(HEIGHT)[:, None]
        canvas = np.empty((HEIGHT, WIDTH, 3), np.uint8)
        canvas[:, :, 0] = (x + 3 * frame) % 256
        canvas[:, :, 1] = (y + 2 * frame) % 256
        canvas[:, :, 2] = 128
        return canvas

    def render_a_canvas_and_save(self) -> None:
        canvas = self._draw(self._frame + 1)
        with self._lock:
            self._frame += 1
            self._last = canvas

    def get_the_last_rendered_canvas(self) -> np.ndarray:
        with self._lock:
            return self._last


# The render loop
class MyRenderHandler(RenderEventHandler):
    def __init__(self, canvases: Canvases) -> None:
        self.canvases = canvases

    def handle(self, stream: Any) -> bool:
        self.canvases.render_a_canvas_and_save()
        return True


# The frame loop, the actual handler where encoded video data is collected. It runs apart
# from the render handler, which means the canvas accesses need to be synchronized.
class MyFrameHandler(FrameEventHandler):
    def __init__(self, canvases: Canvases) -> None:
        self.canvases = canvases

    def handle(self, stream: Any, outqueue_is_full: bool) -> Any:
        if outqueue_is_full:  # not an error, just no use in encoding a new frame
            return None
        canvas = self.canvases.get_the_last_rendered_canvas()
        codec = stream.get_video_encoder()
        return codec.encode_canvas(canvas)


# The play handler: the codec is opened for the canvas size, its header is the init frame.
class MyPlayHandler(PlayEventHandler):
    def handle(self, is_start: bool, stream: Any) -> Any:
        if is_start:
            codec = stream.get_video_encoder()
            return True, codec.init(WIDTH, HEIGHT)
        return True


# Stream handler
class MyStreamHandler(StreamEventHandler):
    def handle(self, is_create: bool, stream: Any, command_arguments: Any) -> bool:
        if is_create:
            canvases = Canvases()
            stream.use_codec("h264")
            stream.register_play_event_handler(MyPlayHandler())
            stream.register_render_event_handler(MyRenderHandler(canvases))
            stream.register_frame_event_handler(MyFrameHandler(canvases))
        return True


# Connect handler
class MyConnectHandler(ConnectEventHandler):
    def handle(self, is_create: bool, connection: Any, cmd_arguments: Any, user_arguments: Any) -> bool:
        if is_create:
            connection.register_stream_event_handler(MyStreamHandler())
        return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="neuray's RTMP server example, in Python")
    parser.add_argument("--listen", default="", help='HOST:PORT; "" is 0.0.0.0:1935, as start("") in neuray')
    args = parser.parse_args(argv)
    rtmp_factory = neurtmp.Factory()
    rtmp_server = rtmp_factory.create_server()
    connect_handler = MyConnectHandler()
    rtmp_server.install(connect_handler)
    try:
        rtmp_server.start(args.listen)
    except (neurtmp.ListenError, neurtmp.ConfigError) as exc:
        print(f"neuray_port: {exc}", file=sys.stderr)
        return 2
    for signum in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C or kill: stop serving, quietly
        gevent.signal_handler(signum, lambda: gevent.spawn(rtmp_server.shutdown, 0))
    print(f"listening on rtmp://{rtmp_server.get_listen_address()}", flush=True)
    rtmp_server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
