"""Server-rendered video: every viewer gets its own animated scene, encoded on the server.

    python examples/render_stream/server.py --listen 0.0.0.0:1935
    ffplay rtmp://127.0.0.1:1935/demo/scene                    # H.264 (the default)
    ffplay "rtmp://127.0.0.1:1935/demo/scene?codec=sorenson"   # or "screen video"
    python examples/render_stream/client.py rtmp://127.0.0.1:1935/demo set_color 255 0 0

Any app and stream name works. The stream name's query may set `codec`, `rate` (renders
per second, default 30) and `size` (WIDTHxHEIGHT). `codec=hevc` is sent as Enhanced RTMP:
it needs a player that reads it (ffmpeg / ffplay 6.1 or later). Remote calls steer the
scenes of the caller's connection: set_speed(x), set_color(r, g, b), pause_scene(true|false).
Built only on neurtmp's public API.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
import urllib.parse
from typing import Any

import gevent

import neurtmp
from neurtmp.handlers import (
    ConnectEventHandler,
    FrameEventHandler,
    PlayEventHandler,
    RenderEventHandler,
    StreamEventHandler,
)

try:
    from scene import Scene
except ImportError:  # imported as a package (tests)
    from .scene import Scene

log = logging.getLogger("render_stream")

DEFAULT_SIZE = (640, 360)
#: x264/x265 preset for interactive video (with their zerolatency tuning): 1280x720 at
#: 30 frames/s takes a fraction of one core.
INTERACTIVE_PRESET = "ultrafast"


class SceneRenderer(RenderEventHandler):
    """Draws the scene at the stream's render_rate (in the thread pool: NumPy work)."""

    def __init__(self, scene: Scene) -> None:
        self.scene = scene
        self._last = time.monotonic()

    def handle(self, stream: Any) -> bool:
        now = time.monotonic()
        self.scene.render(now - self._last)
        self._last = now
        return True


class SceneFrames(FrameEventHandler):
    """Hands the latest picture to the encoder. When the viewer lags (outqueue_is_full) it
    sends a cheap frame instead: with screen video, the last picture again, which encodes
    as "every block unchanged" (a few hundred bytes); with codecs that have no such cheap
    frame (H.264, Sorenson at a fixed rate), nothing at all for that tick."""

    #: Codecs whose encoder turns a repeated picture into a tiny frame.
    REPEAT_IS_CHEAP = ("screen video",)

    def __init__(self, scene: Scene) -> None:
        self.scene = scene
        self.last: Any = None
        self.cheap_frames = 0

    def handle(self, stream: Any, outqueue_is_full: bool) -> Any:
        if outqueue_is_full and self.last is not None:
            self.cheap_frames += 1
            return self.last if stream.codec_name in self.REPEAT_IS_CHEAP else None
        self.last = self.scene.canvas  # a whole picture: the scene swaps in a new array per render
        return self.last


def _options(name: str) -> tuple[str, float, tuple[int, int]]:
    query = urllib.parse.parse_qs(name.partition("?")[2])
    codec = query.get("codec", ["h264"])[0]
    rate = float(query.get("rate", ["30"])[0])
    size = DEFAULT_SIZE
    if "size" in query:
        width, _, height = query["size"][0].partition("x")
        size = (int(width), int(height))
    return codec, rate, size


class ScenePlayer(PlayEventHandler):
    def __init__(self, viewer: Viewer) -> None:
        self.viewer = viewer

    def handle(self, is_start: bool, stream: Any) -> bool:
        if not is_start:
            self.viewer.scenes.pop(stream, None)
            return True
        codec, rate, size = _options(stream.get_stream_name())
        if not stream.use_codec(codec):
            log.info("%s asked for unknown codec %r", stream.get_connection().get_peer_address(), codec)
            return False
        encoder = stream.get_video_encoder()
        if encoder is not None:  # interactive video: the fastest preset that holds the rate
            encoder.set_parameter("preset", INTERACTIVE_PRESET)
            encoder.set_parameter("frame_rate", int(rate))
            encoder.set_parameter("key_frame_interval", int(2 * rate))
        stream.set_property("render_rate", rate)
        scene = Scene(*size)
        scene.render(0)
        self.viewer.scenes[stream] = scene
        stream.register_render_event_handler(SceneRenderer(scene))
        stream.register_frame_event_handler(SceneFrames(scene))
        log.info("%s watches %s (%s, %g fps, %dx%d)", stream.get_connection().get_peer_address(),
                 stream.get_stream_name(), codec, rate, *size)
        return True


class Viewer(StreamEventHandler):
    """One connection: its scenes (one per playing stream); `call` steers them."""

    def __init__(self) -> None:
        self.scenes: dict[Any, Scene] = {}

    def handle(self, is_create: bool, stream: Any, command_arguments: Any) -> bool:
        if is_create:
            stream.register_play_event_handler(ScenePlayer(self))
        return True

    def call(self, connection: Any, name: str, command_arguments: Any, arguments: list[Any]) -> tuple[bool, Any]:
        """The call handler (a plain callable) for set_speed, set_color and pause_scene."""
        try:
            for scene in self.scenes.values():
                if name == "set_speed":
                    scene.speed = float(arguments[0])
                elif name == "set_color":
                    scene.color = tuple(max(0, min(255, int(v))) for v in arguments[:3])  # type: ignore[assignment]
                elif name == "pause_scene":
                    scene.paused = bool(arguments[0]) if arguments else True
                else:
                    return False, {"level": "error", "code": "NetConnection.Call.Failed",
                                   "description": f"unknown call {name}"}
        except (IndexError, TypeError, ValueError) as exc:
            return False, {"level": "error", "code": "NetConnection.Call.BadValue", "description": str(exc)}
        return True, {"scenes": len(self.scenes), "call": name}


class Viewers(ConnectEventHandler):
    def handle(self, is_create: bool, connection: Any, command_arguments: Any, user_arguments: Any) -> bool:
        if is_create:
            viewer = Viewer()
            connection.register_stream_event_handler(viewer)
            for name in ("set_speed", "set_color", "pause_scene"):
                connection.register_remote_call_handler(viewer.call, name)
        return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="neurtmp server-rendered video demo")
    parser.add_argument("--listen", default="0.0.0.0:1935", help="HOST:PORT (default %(default)s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    server = neurtmp.Factory().create_server(flush_interval=0)  # interactive: send each frame at once
    server.install(Viewers())
    try:
        server.start(args.listen)
    except (neurtmp.ListenError, neurtmp.ConfigError) as exc:
        print(f"render_stream: {exc}", file=sys.stderr)
        return 2
    for signum in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C or kill: stop serving, quietly
        gevent.signal_handler(signum, lambda: gevent.spawn(server.shutdown, 0))
    print(f"listening on rtmp://{server.get_listen_address()}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
