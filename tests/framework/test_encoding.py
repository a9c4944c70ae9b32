"""One owner per encoder, a hub that never runs codec work, and a frame pipeline that
delivers what the machine can when asked for more."""

from __future__ import annotations

import threading
import time
from typing import Any

import gevent
import numpy as np
import pytest

import neurtmp
from neurtmp.codec import create_video_encoder, flv
from neurtmp.codec.pyav import H264Encoder
from neurtmp.handlers import PlayEventHandler

from ..conftest import url
from ..helpers import wait_for


def moving_pictures(width: int, height: int, count: int = 24) -> list[np.ndarray]:
    """`count` different pictures (a sliding gradient with a bar), cheap to make."""
    ramp = np.add.outer(np.arange(height), np.arange(width)).astype(np.uint16)
    pictures = []
    for i in range(count):
        picture = np.empty((height, width, 3), np.uint8)
        picture[:, :, 0] = (ramp + 9 * i) % 256
        picture[:, :, 1] = (ramp // 2 + 5 * i) % 256
        picture[:, :, 2] = 128
        picture[:, (i * width // count):(i * width // count) + width // 20] = 255
        pictures.append(picture)
    return pictures


class Canvases:
    """Frame handler: the next picture, its capture time recorded."""

    def __init__(self, pictures: list[np.ndarray]) -> None:
        self.pictures = pictures
        self.captured: list[float] = []

    def handle(self, stream: Any, outqueue_is_full: bool) -> Any:
        self.captured.append(time.monotonic())
        return self.pictures[len(self.captured) % len(self.pictures)]


class CanvasPlay(PlayEventHandler):
    """Plays canvases through the stream's codec; remembers its streams."""

    def __init__(self, pictures: list[np.ndarray], rate: float, preset: str | None = None) -> None:
        self.pictures, self.rate, self.preset = pictures, rate, preset
        self.streams: list[neurtmp.Stream] = []
        self.frames: list[Canvases] = []

    def handle(self, is_start: bool, stream: Any) -> bool:
        if is_start:
            assert stream.use_codec("h264")
            if self.preset:
                stream.get_video_encoder().set_parameter("preset", self.preset)
            stream.set_property("render_rate", self.rate)
            frames = Canvases(self.pictures)
            stream.register_frame_event_handler(frames)
            self.frames.append(frames)
            self.streams.append(stream)
        return True


def serve_canvases(make_server: Any, play: CanvasPlay) -> neurtmp.Server:
    def on_connect(is_create: bool, connection: Any, args: Any, user: Any) -> bool:
        if is_create:
            def on_stream(create: bool, stream: Any, arguments: Any) -> bool:
                if create:
                    stream.register_play_event_handler(play)
                return True
            connection.register_stream_event_handler(on_stream)
            connection.register_remote_call_handler(lambda c, n, o, a: (all(
                s.use_codec(str(a[0])) for s in play.streams if not s.closed), None), "switch")
        return True

    return make_server(on_connect, flush_interval=0)


class Guard:
    """Wraps an encoder class's methods: two calls overlapping on one encoder, or a call
    on the hub's thread, is recorded as a violation."""

    def __init__(self) -> None:
        self.active: dict[int, int] = {}
        self.lock = threading.Lock()
        self.violations: list[str] = []
        self.calls = {"init": 0, "encode_canvas": 0, "close": 0}
        self.hub_thread = threading.get_ident()

    def wrap(self, name: str, method: Any) -> Any:
        def guarded(encoder: Any, *args: Any) -> Any:
            with self.lock:
                self.active[id(encoder)] = self.active.get(id(encoder), 0) + 1
                self.calls[name] += 1
                if self.active[id(encoder)] > 1:
                    self.violations.append(f"{name} entered while another call was running")
                if threading.get_ident() == self.hub_thread:
                    self.violations.append(f"{name} ran on the hub's thread")
            try:
                time.sleep(0.001)  # widen the window a race would need
                return method(encoder, *args)
            finally:
                with self.lock:
                    self.active[id(encoder)] -= 1
        return guarded


@pytest.mark.timeout(60)
def test_encoder_has_one_owner_through_pause_replay_and_codec_switches(make_server: Any,
                                                                       monkeypatch: Any) -> None:
    guard = Guard()
    for name in ("init", "encode_canvas", "close"):
        monkeypatch.setattr(H264Encoder, name, guard.wrap(name, getattr(H264Encoder, name)))
    play = CanvasPlay(moving_pictures(160, 96), rate=200)
    server = serve_canvases(make_server, play)
    client = neurtmp.connect(url(server, "app"), timeout=10)
    stream_id = client.play("scene")
    wait_for(lambda: guard.calls["encode_canvas"] >= 5)
    for round_ in range(15):
        client.pause(True)
        client.pause(False)
        client.protocol.play(stream_id, "scene")  # play again on the same stream: a replay
        client.call("switch", "h264" if round_ % 2 else "screen video")
        encoded = guard.calls["encode_canvas"]
        if round_ % 2:
            wait_for(lambda n=encoded: guard.calls["encode_canvas"] > n, 10)
    client.call("switch", "h264")
    encoded = guard.calls["encode_canvas"]
    wait_for(lambda: guard.calls["encode_canvas"] > encoded + 5, 10)
    client.close()
    wait_for(lambda: all(s.closed for s in play.streams))
    # Every encoder opened (one per h264 round at least) was flushed and closed, once.
    wait_for(lambda: not any(guard.active.values()) and guard.calls["close"] == guard.calls["init"], 10,
             message=str(guard.calls))
    assert guard.calls["init"] >= 8
    assert not guard.violations, guard.violations[:5]


@pytest.mark.timeout(60)
def test_plays_starting_and_stopping_never_stall_the_hub(make_server: Any) -> None:
    play = CanvasPlay(moving_pictures(640, 360, 4), rate=30)
    server = serve_canvases(make_server, play)
    lateness: list[float] = []
    running = True

    def probe() -> None:
        while running:
            before = time.monotonic()
            gevent.sleep(0.005)
            lateness.append(time.monotonic() - before - 0.005)

    prober = gevent.spawn(probe)
    for _ in range(8):
        client = neurtmp.connect(url(server, "app"), timeout=10)
        client.play("scene")
        videos: list[bytes] = []
        while len(videos) < 6:
            event = client.read(timeout=10)
            assert event is not None
            if isinstance(event, neurtmp.events.VideoReceived):
                videos.append(event.payload)
        assert flv.is_video_sequence_header(videos[0])  # libx264 was opened for this play
        client.close()
    wait_for(lambda: all(s.closed for s in play.streams))
    running = False
    prober.join()
    assert len(play.streams) == 8 and len(lateness) > 30
    # encoder opens (3-11 ms each, eight of them) run in the thread pool: the hub stays
    # responsive; a margin for a loaded machine, where one late wake-up can happen anyway
    stalls = [late for late in lateness if late > 0.1]
    assert len(stalls) <= 2 and max(lateness) < 1.0, f"the hub stalled: {[round(s * 1000) for s in stalls]} ms"


@pytest.mark.timeout(90)
def test_asked_for_more_than_it_can_encode_it_delivers_what_it_can_and_fresh(make_server: Any) -> None:
    width, height, preset = 1280, 720, "veryfast"
    pictures = moving_pictures(width, height)
    encoder = create_video_encoder("h264")
    assert encoder is not None
    encoder.set_parameter("preset", preset)
    encoder.init(width, height)
    started = time.monotonic()
    for picture in pictures:
        encoder.encode_canvas(picture)
    capacity = len(pictures) / (time.monotonic() - started)  # frames/s this machine encodes now
    encoder.close()

    play = CanvasPlay(pictures, rate=1000, preset=preset)  # far more than it can encode
    server = serve_canvases(make_server, play)
    client = neurtmp.connect(url(server, "app"), timeout=10)
    client.play("scene")
    arrivals: list[float] = []
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        event = client.read(timeout=10)
        assert event is not None
        if isinstance(event, neurtmp.events.VideoReceived) and not flv.is_video_sequence_header(event.payload):
            arrivals.append(time.monotonic())
    client.close()
    captured = play.frames[0].captured
    delivered = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
    assert delivered >= 0.6 * capacity, f"{delivered:.1f} frames/s delivered, the encoder does {capacity:.1f}"
    # Nothing queues: the i-th frame received is the i-th captured, and each is fresh.
    ages = [arrival - captured[i] for i, arrival in enumerate(arrivals)]
    assert max(ages) < 1.0, f"a frame arrived {max(ages):.2f} s after it was drawn"
