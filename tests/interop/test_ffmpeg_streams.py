"""What ffmpeg players make of a neurtmp stream: exactly the tracks published, at once.

ffmpeg's FLV demuxer (ffplay, VLC and ffmpeg itself play RTMP through it) turns every data
message it does not know into a stream of its own, and waits up to ~5 s for a track that
never comes. A player must see only audio and video, and a video-only stream must show
its first picture without that wait."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from gevent import subprocess

from neurtmp.handlers import FrameEventHandler

from ..conftest import serve_streams, url
from ..helpers import wait_for
from ..live.helpers import FFMPEG, ffmpeg_publish, live_server

#: Seconds to the first picture that an ffmpeg player waiting for absent audio takes at
#: least (its 5 s analysis); a stream that says it has no audio starts well under it.
WAITING_FOR_AUDIO_S = 3.0


def first_picture_seconds(stream_url: str) -> float:
    """Wall time from starting an ffmpeg player to its first decoded frame."""
    started = time.monotonic()
    player = subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-i", stream_url, "-frames:v", "1",
                             "-f", "null", "-"], capture_output=True, timeout=30)
    assert player.returncode == 0, player.stderr
    return time.monotonic() - started


@pytest.mark.timeout(60)
def test_ffmpeg_sees_only_audio_and_video_and_copies_them(make_server: Any, tmp_path: Path) -> None:
    server, app = live_server(make_server)
    publisher = subprocess.Popen(
        [FFMPEG, "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25",
         "-f", "lavfi", "-i", "sine", "-t", "20", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
         "-c:a", "aac", "-f", "flv", url(server, "live/av")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    out = tmp_path / "copy.mp4"
    try:
        wait_for(lambda: (s := app.registry.get("live", "av")) is not None and s.audio_header is not None
                 and len(s.gop) > 5, 15)
        player = subprocess.run([FFMPEG, "-hide_banner", "-i", url(server, "live/av"), "-map", "0", "-c", "copy",
                                 "-t", "2", str(out)], capture_output=True, timeout=30)
    finally:
        publisher.kill()
        publisher.wait()
    log = player.stderr.decode(errors="replace")
    assert player.returncode == 0, log
    inputs = re.findall(r"Stream #0:\d+.*?: (\w+):", log.split("Output #0")[0])
    assert sorted(inputs) == ["Audio", "Video"], inputs  # no "Data: none"
    with av.open(str(out)) as container:
        assert sorted(s.type for s in container.streams) == ["audio", "video"]


@pytest.mark.timeout(60)
def test_a_video_only_live_stream_shows_its_first_picture_at_once(make_server: Any) -> None:
    server, app = live_server(make_server)
    publisher = ffmpeg_publish(url(server, "live/cam"), 20)  # video only (-an)
    try:
        wait_for(lambda: (s := app.registry.get("live", "cam")) is not None and len(s.gop) > 5, 15)
        seconds = first_picture_seconds(url(server, "live/cam"))
    finally:
        publisher.kill()
        publisher.wait()
    assert seconds < WAITING_FOR_AUDIO_S, f"first picture after {seconds:.2f} s"


class Grey(FrameEventHandler):
    def handle(self, stream: Any, outqueue_is_full: bool) -> Any:
        return np.full((48, 64, 3), 100, np.uint8)


@pytest.mark.timeout(60)
def test_a_rendered_stream_shows_its_first_picture_at_once(make_server: Any) -> None:
    server = serve_streams(make_server, lambda stream: stream.register_frame_event_handler(Grey()))
    seconds = first_picture_seconds(url(server, "app/x"))
    assert seconds < WAITING_FOR_AUDIO_S, f"first picture after {seconds:.2f} s"
