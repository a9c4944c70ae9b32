"""Fast start on long GOPs: a late joiner gets the whole cached GOP, frame by frame.

A GOP of 401 frames (one key frame, 400 inter frames) is published and held; players
that join then must get every one of them, in order, before anything live, whatever the
send queue's soft limit (the cut that slow players get must not cut a fast start)."""

from __future__ import annotations

from typing import Any

import gevent
import numpy as np
import pytest

import neurtmp
from neurtmp.protocol import events as ev

from ..conftest import url
from ..helpers import wait_for
from ..media import encode_h264, level_for
from .helpers import ffmpeg_play_raw, live_server

GOP_FRAMES = 401
WIDTH, HEIGHT = 160, 120


#: Frames published after the player joined (live for it): they also push the last
#: frames of the GOP out of a decoder's delay.
LIVE_FRAMES = 40


def publish_one_long_gop(server: neurtmp.Server, app: Any
                         ) -> tuple[bytes, list[bytes], list[bytes], neurtmp.Client]:
    """Publish the sequence header and a 401-frame GOP; return them, the frames still to
    publish (the same GOP goes on), and the publisher."""
    header, frames = encode_h264(GOP_FRAMES + LIVE_FRAMES, WIDTH, HEIGHT, fps=25, gop=1000)
    assert frames[0].is_key_frame and not any(f.is_key_frame for f in frames[1:])
    publisher = neurtmp.connect(url(server, "live"), timeout=10)
    publisher.publish("cam")
    publisher.send_video(header.data, 0)
    for index, frame in enumerate(frames[:GOP_FRAMES]):
        publisher.send_video(frame.data, index * 40)
    wait_for(lambda: (s := app.registry.get("live", "cam")) is not None and len(s.gop) == GOP_FRAMES, 15,
             "the whole GOP is cached")
    return header.data, [f.data for f in frames[:GOP_FRAMES]], [f.data for f in frames[GOP_FRAMES:]], publisher


def publish_the_rest(publisher: neurtmp.Client, rest: list[bytes]) -> None:
    for index, frame in enumerate(rest, GOP_FRAMES):
        publisher.send_video(frame, index * 40)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("limits", [{}, {"outqueue_high_water": 16 * 1024, "outqueue_soft_limit": 64 * 1024}],
                         ids=["default-limits", "gop-over-the-soft-limit"])
def test_a_late_joiner_gets_the_whole_long_gop_in_order(make_server: Any, limits: dict[str, int]) -> None:
    server, app = live_server(make_server, **limits)
    header, frames, rest, publisher = publish_one_long_gop(server, app)
    if limits:
        assert sum(map(len, frames)) > limits["outqueue_soft_limit"]
    player = neurtmp.connect(url(server, "live"), timeout=10)
    player.play("cam")
    publish_the_rest(publisher, rest)
    videos: list[bytes] = []
    while len(videos) < 1 + GOP_FRAMES + LIVE_FRAMES:
        event = player.read(timeout=10)
        assert event is not None, f"only {len(videos)} video messages arrived"
        if isinstance(event, ev.VideoReceived):
            videos.append(event.payload)
    assert videos[0] == header
    assert videos[1:] == frames + rest  # every frame of the GOP, in order, then live
    live = app.registry.get("live", "cam")
    assert live is not None and live.dropped == 0
    player.close()
    publisher.close()


@pytest.mark.timeout(90)
def test_ffmpeg_joining_late_decodes_every_frame_of_a_long_gop(make_server: Any) -> None:
    server, app = live_server(make_server, outqueue_high_water=16 * 1024, outqueue_soft_limit=64 * 1024)
    _, _, rest, publisher = publish_one_long_gop(server, app)
    player = ffmpeg_play_raw(url(server, "live/cam"), WIDTH, HEIGHT)
    size = WIDTH * HEIGHT * 3
    data = bytearray()
    try:
        wait_for(lambda: len(app.registry.get("live", "cam").players()) == 1, 15, "ffmpeg plays")
        publish_the_rest(publisher, rest)
        with gevent.Timeout(60, AssertionError("ffmpeg did not decode the GOP")):
            while len(data) < GOP_FRAMES * size:
                chunk = player.stdout.read1(1 << 20)
                assert chunk, f"ffmpeg ended after {len(data) // size} frames: {player.stderr.read()!r}"
                data += chunk
    finally:
        player.kill()
        player.wait()
        publisher.close()
    images = np.frombuffer(bytes(data[:GOP_FRAMES * size]), np.uint8).reshape(GOP_FRAMES, HEIGHT, WIDTH, 3)
    levels = [float(image.mean()) for image in images]
    assert all(abs(level - level_for(index)) < 4 for index, level in enumerate(levels)), levels
