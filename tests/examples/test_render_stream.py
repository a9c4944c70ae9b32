"""The server-rendered video demo, end to end with real players."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys
import time
from typing import Any

import imageio_ffmpeg
import numpy as np
import pytest

import neurtmp
from neurtmp.codec import create_video_decoder, create_video_encoder
from neurtmp.protocol import events as ev

from ..helpers import wait_for

DEMO = pathlib.Path(__file__).resolve().parents[2] / "examples" / "render_stream"
sys.path.insert(0, str(DEMO))
import server as demo  # noqa: E402
from scene import Scene  # noqa: E402


def red_pixels(image: np.ndarray) -> int:
    r, g, b = image[:, :, 0].astype(int), image[:, :, 1].astype(int), image[:, :, 2].astype(int)
    return int(np.count_nonzero((r > 215) & (g < 60) & (b < 60)))


def test_scene_draws_frame_number_and_moves() -> None:
    scene = Scene(320, 240)
    scene.render(0)
    first = scene.canvas.copy()
    scene.render(0.5)
    assert scene.frame == 2 and scene.time == 0.5
    assert np.abs(first.astype(int) - scene.canvas).mean() > 5  # it moves
    assert (scene.canvas[8:18, 8:20] == 255).any()  # the text is drawn in white
    scene.paused = True
    scene.render(1.0)
    assert scene.time == 0.5


@pytest.mark.timeout(90)
def test_demo_plays_in_ffmpeg_and_obeys_remote_calls() -> None:
    process = subprocess.Popen([sys.executable, str(DEMO / "server.py"), "--listen", "127.0.0.1:0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()  # type: ignore[union-attr]
        address = re.match(r"listening on rtmp://(\S+)", line).group(1)  # type: ignore[union-attr]
        player = subprocess.run(
            [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-t", "3",
             "-i", f"rtmp://{address}/demo/scene?size=320x240",
             "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
            capture_output=True, timeout=60)
        assert player.returncode == 0, player.stderr
        frames = np.frombuffer(player.stdout, np.uint8).reshape(-1, 240, 320, 3)
        assert len(frames) >= 0.8 * 30 * 3, len(frames)
        assert frames[0].std() > 20  # a picture, not a blank screen

        # Steering: the ball turns red after set_color, seen in decoded frames.
        client = neurtmp.connect(f"rtmp://{address}/demo", timeout=10)
        client.play("scene?size=320x240")
        decoder = create_video_decoder("h264")
        assert decoder is not None
        decoder.init(None)

        def decoded_frames(count: int) -> list[np.ndarray]:
            images: list[np.ndarray] = []
            while len(images) < count:
                event = client.read(timeout=10)
                if isinstance(event, ev.VideoReceived):
                    image = decoder.decode_canvas(event.payload)
                    if image is not None:
                        images.append(image)
            return images

        before = decoded_frames(10)
        assert max(red_pixels(i) for i in before) < 20
        assert client.call("set_color", 255, 0, 0) == {"scenes": 1.0, "call": "set_color"}
        after = decoded_frames(15)[5:]
        assert min(red_pixels(i) for i in after) > 300  # the ball: about pi * 24^2 pixels
        with pytest.raises(neurtmp.CallError):
            client.call("set_color", "red")
        client.close()
    finally:
        process.terminate()
        process.wait(10)


@pytest.mark.timeout(60)
def test_stalled_viewer_gets_cheap_frames_and_another_is_unaffected(make_server: Any) -> None:
    frame_handlers: list[demo.SceneFrames] = []
    original = demo.SceneFrames.__init__

    def recording_init(self: demo.SceneFrames, scene: Scene) -> None:
        original(self, scene)
        frame_handlers.append(self)

    demo.SceneFrames.__init__ = recording_init  # type: ignore[method-assign]
    try:
        server = make_server(demo.Viewers(), outqueue_high_water=32 * 1024, send_buffer_size=32 * 1024)
        address = server.get_listen_address()
        stalled = neurtmp.connect(f"rtmp://{address}/demo", timeout=5, inbox_size=2, receive_buffer_size=8 * 1024)
        stalled.play("scene?size=640x360&codec=screen video")
        healthy = neurtmp.connect(f"rtmp://{address}/demo", timeout=5)
        healthy.play("scene?size=320x240")
        wait_for(lambda: len(frame_handlers) == 2)
        stalled_frames, healthy_frames = frame_handlers
        received = 0
        started = time.monotonic()
        # The healthy viewer keeps 80% of 30 fps while the stalled one's queue fills up.
        while received < 0.8 * 30 * 3 or stalled_frames.cheap_frames <= 10:
            elapsed = time.monotonic() - started
            assert elapsed < 3, (received, stalled_frames.cheap_frames, elapsed)
            if isinstance(healthy.read(timeout=2), ev.VideoReceived):
                received += 1
        assert healthy_frames.cheap_frames == 0
    finally:
        demo.SceneFrames.__init__ = original  # type: ignore[method-assign]
    healthy.close()
    stalled.close()


def test_repeating_a_picture_is_a_cheap_screen_video_frame() -> None:
    scene = Scene(640, 360)
    scene.render(0)
    encoder = create_video_encoder("screen video")
    assert encoder is not None
    encoder.init(640, 360)
    fresh = encoder.encode_canvas(scene.canvas)
    scene.render(0.1)
    changed = encoder.encode_canvas(scene.canvas)
    repeat = encoder.encode_canvas(scene.canvas)
    assert len(repeat.data) < 1000 < len(changed.data) <= len(fresh.data)
    assert len(repeat.data) == 1 + 4 + 2 * 10 * 6  # header + a zero size per 64x64 block
    encoder.close()


@pytest.mark.timeout(60)
def test_demo_streams_hevc_over_enhanced_rtmp_to_ffmpeg(make_server: Any) -> None:
    from gevent import subprocess as cooperative  # the server runs in this process

    server = make_server(demo.Viewers())
    player = cooperative.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-t", "2",
         "-i", f"rtmp://{server.get_listen_address()}/demo/scene?size=320x240&codec=hevc",
         "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True, timeout=40)
    assert player.returncode == 0, player.stderr.decode()[-2000:]
    assert "Video: hevc" in player.stderr.decode()
    frames = np.frombuffer(player.stdout, np.uint8).reshape(-1, 240, 320, 3)
    assert len(frames) >= 20 and frames[-1].std() > 20  # 60 rendered in those 2 s; HEVC costs CPU
