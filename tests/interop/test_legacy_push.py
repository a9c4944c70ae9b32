"""A multitrack stream pushed to servers that cannot take multitrack: Debian's ffmpeg 5.1
listening as an RTMP server (`-listen 1`, no Enhanced RTMP in its connect answer) gets one
track, unwrapped, and records a file every player reads. Without the unwrapping it does
not get through at all (ffmpeg 5.1 cannot parse a Multitrack tag)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import av
import pytest
from gevent import subprocess

from neurtmp.relay import Backoff, PushRelay

from ..conftest import url
from ..helpers import wait_for
from ..ingest.test_multitrack import publish_ladder
from ..live.helpers import live_server
from .test_capability_exchange import SYSTEM_FFMPEG


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def legacy_server(port: int, out: Path) -> subprocess.Popen:
    """ffmpeg 5.1 as a one-shot RTMP server, recording what is published to it."""
    return subprocess.Popen([SYSTEM_FFMPEG, "-hide_banner", "-loglevel", "error", "-listen", "1",  # type: ignore[list-item]
                             "-i", f"rtmp://127.0.0.1:{port}/app/out", "-c", "copy", "-y", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def recorded(path: Path) -> tuple[list[tuple[str, int]], int]:
    """([(stream type, width or 0)], decoded video frames) of a recording, read with PyAV."""
    with av.open(str(path)) as container:
        streams = [(stream.type, getattr(stream.codec_context, "width", 0) or 0) for stream in container.streams]
        frames = sum(1 for _ in container.decode(video=0))
    return streams, frames


@pytest.mark.skipif(SYSTEM_FFMPEG is None, reason="no system ffmpeg (/usr/bin/ffmpeg) is installed")
@pytest.mark.timeout(90)
def test_a_legacy_target_gets_one_track_of_a_multitrack_push(make_server: Any, tmp_path: Path) -> None:
    server, app = live_server(make_server)
    ports, outs = [free_port(), free_port()], [tmp_path / "track0.flv", tmp_path / "track1.flv"]
    listeners = [legacy_server(port, out) for port, out in zip(ports, outs, strict=True)]
    encoder = publish_ladder(url(server, "live/ladder"), 5)  # 640x480 track 0, 320x240 track 1, AAC
    pushes = []
    try:
        wait_for(lambda: app.registry.get("live", "ladder") is not None, 20)
        for track, port in enumerate(ports):
            pushes.append(PushRelay(server, "live", "ladder", f"rtmp://127.0.0.1:{port}/app/out", timeout=5,
                                    backoff=Backoff(0.2, 1), source_live=True, legacy_track=track).start())
        assert encoder.wait(timeout=30) == 0
        wait_for(lambda: all(p.packets_sent > 100 for p in pushes), 10)
    finally:
        for push in pushes:
            push.stop()
        if encoder.poll() is None:
            encoder.kill()
        encoder.wait()
    for listener in listeners:
        try:
            listener.wait(timeout=15)
        except subprocess.TimeoutExpired:
            listener.kill()
            raise
    assert [p.published for p in pushes] == [1, 1]
    for out, width in zip(outs, (640, 320), strict=True):
        streams, frames = recorded(out)
        assert streams == [("video", width), ("audio", 0)], (out.name, streams)
        assert frames >= 100, (out.name, frames)  # most of 5 s at 30 fps, decoded
