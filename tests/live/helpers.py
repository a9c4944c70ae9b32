"""Helpers for live tests: a live server fixture and ffmpeg publishers/players."""

from __future__ import annotations

from typing import Any

import imageio_ffmpeg
from gevent import subprocess

import neurtmp
from neurtmp.live import LiveApp, LiveOptions

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def live_server(make_server: Any, live_options: LiveOptions | None = None, **options: Any
                ) -> tuple[neurtmp.Server, LiveApp]:
    # (no reconnect grace unless asked for: these tests see a stream end when its publisher leaves)
    app = LiveApp(live_options or LiveOptions(reconnect_grace=0))
    server = make_server(**options)
    app.install(server)
    return server, app


def ffmpeg_publish(url: str, seconds: float, source: str = "testsrc=size=160x120:rate=25",
                   codec: list[str] | None = None) -> subprocess.Popen:
    """A real-time ffmpeg publisher of a lavfi source (video only)."""
    codec = codec or ["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "25",
                      "-pix_fmt", "yuv420p"]
    return subprocess.Popen(
        [FFMPEG, "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", source, "-t", str(seconds),
         *codec, "-f", "flv", url],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def ffmpeg_play_raw(url: str, width: int, height: int, extra: list[str] | None = None) -> subprocess.Popen:
    """An ffmpeg player writing decoded rgb24 frames to stdout until the stream ends."""
    return subprocess.Popen(
        [FFMPEG, "-hide_banner", "-loglevel", "error", *(extra or []), "-i", url,
         "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
