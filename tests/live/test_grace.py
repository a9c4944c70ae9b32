"""Publisher continuity: the reconnect grace, the slate, and the splice of a publisher
that comes back (real ffmpeg publishers and players, and our client as a player)."""

from __future__ import annotations

import logging
import signal
import time
from typing import Any

import gevent
import numpy as np
import pytest
from gevent import subprocess

import neurtmp
import neurtmp.codec.pyav
from neurtmp.live import LiveOptions
from neurtmp.live import slate as slate_module
from neurtmp.live.http import LiveHttp, serve_live_http
from neurtmp.protocol import events as ev

from ..conftest import url
from ..helpers import assert_stays, wait_for
from ..media import encode_h264
from .helpers import FFMPEG, ffmpeg_play_raw, live_server

WIDTH, HEIGHT = 160, 120
FRAME_BYTES = WIDTH * HEIGHT * 3


def ffmpeg_publish_colour(stream_url: str, colour: str) -> subprocess.Popen:
    """A real-time ffmpeg publisher of a plain colour with a tone, until killed."""
    return subprocess.Popen(
        [FFMPEG, "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i",
         f"color=c={colour}:size={WIDTH}x{HEIGHT}:rate=25", "-re", "-f", "lavfi", "-i",
         "sine=frequency=440:sample_rate=44100", "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
         "-g", "25", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k", "-f", "flv", stream_url],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


class RawFrames:
    """Reads an ffmpeg raw player's frames: when each came and what colour it was."""

    def __init__(self, player: subprocess.Popen) -> None:
        self.player = player
        self.frames: list[tuple[float, str]] = []
        self._reader = gevent.spawn(self._read)

    def _read(self) -> None:
        while True:
            data = self.player.stdout.read(FRAME_BYTES)
            if len(data) < FRAME_BYTES:
                return
            mean = np.frombuffer(data, np.uint8).reshape(HEIGHT, WIDTH, 3).reshape(-1, 3).mean(axis=0)
            self.frames.append((time.monotonic(), colour_name(mean)))

    def first(self, colour: str, after: float = 0.0) -> float | None:
        return next((t for t, c in self.frames if c == colour and t >= after), None)

    def last(self, colour: str) -> float | None:
        return next((t for t, c in reversed(self.frames) if c == colour), None)

    def count(self, colour: str, after: float = 0.0) -> int:
        return sum(1 for t, c in self.frames if c == colour and t >= after)


def colour_name(rgb: Any) -> str:
    """What a frame's mean colour shows: the red or blue source, the dark slate, or other."""
    if rgb is None:
        return "none"
    r, g, b = (float(v) for v in rgb)
    if max(r, g, b) < 60:
        return "slate"
    if r > 150 and g < 90 and b < 90:
        return "red"
    if b > 150 and r < 90 and g < 90:
        return "blue"
    return "other"


class EventLog:
    """Our client as a player: every event it reads, in order."""

    def __init__(self, client: neurtmp.Client) -> None:
        self.client = client
        self.events: list[ev.Event] = []
        self._reader = gevent.spawn(self._read)

    def _read(self) -> None:
        while True:
            try:
                event = self.client.read(timeout=60)
            except TimeoutError:
                return
            if event is None:
                return
            self.events.append(event)

    def codes(self) -> list[str]:
        return [e.code for e in self.events if isinstance(e, ev.StatusReceived)]

    def timestamps(self, kind: type) -> list[int]:
        return [e.timestamp for e in self.events if isinstance(e, kind)]


@pytest.mark.timeout(120)
def test_players_get_the_slate_then_the_publisher_that_came_back(make_server: Any,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    encodes: list[int] = []
    real_encode = neurtmp.codec.pyav.H264Encoder._encode
    monkeypatch.setattr(neurtmp.codec.pyav.H264Encoder, "_encode",
                        lambda self, rgb: (encodes.append(1), real_encode(self, rgb))[1])
    slate_module.clear_cache()  # (another test may have made this shape's clip)
    server, app = live_server(make_server, LiveOptions(reconnect_grace=8), flush_interval=0.02)
    stream_url = url(server, "live/grace")
    raw = RawFrames(ffmpeg_play_raw(stream_url, WIDTH, HEIGHT))
    client = neurtmp.connect(url(server), timeout=5)
    client.play("grace")
    log = EventLog(client)
    wait_for(lambda: (s := app.registry.get("live", "grace")) is not None and len(s.players()) == 2, 20)
    live = app.registry.get("live", "grace")
    assert live is not None

    http_app = LiveHttp(app, server, None)
    http = serve_live_http(http_app, "127.0.0.1", 0)
    red = ffmpeg_publish_colour(stream_url, "red")
    wait_for(lambda: raw.count("red") >= 25, 30, "the player decodes the red source")
    http_raw = RawFrames(ffmpeg_play_raw(f"http://127.0.0.1:{http.address[1]}/live/grace.flv", WIDTH, HEIGHT))
    wait_for(lambda: http_raw.count("red") >= 10, 30, "the HTTP-FLV player decodes the red source")
    clips_before = slate_module.cache_info().encodes
    red.send_signal(signal.SIGKILL)  # a dropped connection, no unpublish
    red.wait(10)
    killed = time.monotonic()
    wait_for(lambda: live.reconnecting, 5)
    assert live.is_live and live.statistics()["reconnecting"] is True
    wait_for(lambda: raw.first("slate") is not None, 5, "the player gets the slate")
    last_red, first_slate = raw.last("red"), raw.first("slate")
    assert last_red is not None and first_slate is not None
    slate_after_last_frame = first_slate - last_red
    gevent.sleep(2.5)  # more than two turns of the 1 s clip
    assert raw.count("slate") >= 45, raw.count("slate")  # 25 fps, no gap
    assert http_raw.count("slate") >= 45, http_raw.count("slate")
    assert raw.player.poll() is None and http_raw.player.poll() is None
    assert "NetStream.Play.UnpublishNotify" not in log.codes()

    blue = ffmpeg_publish_colour(stream_url, "blue")
    try:
        wait_for(lambda: live.publisher is not None, 20)
        published = time.monotonic()
        wait_for(lambda: raw.first("blue", published) is not None, 20, "the same player gets the new publisher")
        new_source_after_publish = raw.first("blue", published) - published  # type: ignore[operator]
        assert not live.reconnecting and live.statistics()["reconnecting"] is False
        wait_for(lambda: raw.count("blue") >= 25 and http_raw.count("blue") >= 25, 20)
        assert raw.player.poll() is None and http_raw.player.poll() is None  # one stream to them, start to end
        assert "NetStream.Play.UnpublishNotify" not in log.codes()
        for kind in (ev.VideoReceived, ev.AudioReceived):
            stamps = log.timestamps(kind)
            assert stamps and _non_decreasing(stamps), kind
        # encoded once: one clip (25 frames), however many turns it played
        assert len(encodes) == 25, len(encodes)
        assert slate_module.cache_info().encodes - clips_before <= 1
    finally:
        blue.kill()
        blue.wait(10)
        client.close()
        raw.player.kill()
        http_raw.player.kill()
        http_app.stop()
        http.stop(timeout=1)
    logging.getLogger(__name__).warning(
        "grace figures: kill -> first slate frame %.0f ms; last source frame -> first slate frame %.0f ms; "
        "new publish -> first new-source frame %.0f ms", (first_slate - killed) * 1000,
        slate_after_last_frame * 1000, new_source_after_publish * 1000)
    print(f"\nGRACE-FIGURES last-source->slate {slate_after_last_frame * 1000:.0f} ms, "
          f"kill->slate {(first_slate - killed) * 1000:.0f} ms, publish->new-source "
          f"{new_source_after_publish * 1000:.0f} ms")
    assert slate_after_last_frame < 1.0


def _non_decreasing(values: list[int]) -> bool:
    return all(a <= b for a, b in zip(values, values[1:], strict=False))


def _publish(client: neurtmp.Client, frames: list[neurtmp.VideoData], header: neurtmp.VideoData,
             start_ms: int = 0) -> None:
    client.send_video(header.data, start_ms)
    for i, frame in enumerate(frames):
        client.send_video(frame.data, start_ms + i * 40)
        gevent.sleep(0.005)


@pytest.mark.timeout(60)
def test_after_the_grace_the_stream_ends(make_server: Any) -> None:
    server, app = live_server(make_server, LiveOptions(reconnect_grace=1.5))
    header, frames = encode_h264(10, 176, 144, gop=10)
    client = neurtmp.connect(url(server), timeout=5)
    client.play("short")
    log = EventLog(client)
    raw = ffmpeg_play_raw(url(server, "live/short"), 176, 144)
    wait_for(lambda: (s := app.registry.get("live", "short")) is not None and len(s.players()) == 2, 20)
    publisher = neurtmp.connect(url(server), timeout=5)
    publisher.publish("short")
    _publish(publisher, frames, header)
    wait_for(lambda: len(log.timestamps(ev.VideoReceived)) >= 11, 10)
    publisher.close()
    left = time.monotonic()
    live = app.registry.get("live", "short")
    assert live is not None
    wait_for(lambda: live.reconnecting, 5)
    late = neurtmp.connect(url(server), timeout=5)  # a new player in the grace gets a fast start of the slate
    late.play("short")
    late_log = EventLog(late)
    wait_for(lambda: any(isinstance(e, ev.VideoReceived) and e.payload[0] >> 4 == 1 for e in late_log.events), 5)
    wait_for(lambda: "NetStream.Play.UnpublishNotify" in log.codes(), 6)
    ended = time.monotonic() - left
    assert 1.3 < ended < 4, ended
    out, err = raw.communicate(timeout=10)  # the ffmpeg player ends with the stream
    assert raw.returncode == 0, err
    assert len(out) // (176 * 144 * 3) >= 10 + 25  # the source's frames, then the slate's
    assert not live.is_live and not live.reconnecting
    stamps = log.timestamps(ev.VideoReceived)
    assert len(stamps) > 11 + 25  # the slate played meanwhile
    assert _non_decreasing(stamps)
    client.close()
    late.close()
    wait_for(lambda: app.registry.get("live", "short") is None, 5)  # no players, no grace: forgotten


@pytest.mark.timeout(60)
def test_no_slate_freezes_and_a_publisher_back_is_spliced_in(make_server: Any) -> None:
    server, app = live_server(make_server, LiveOptions(reconnect_grace=5, slate="none"))
    header, frames = encode_h264(10, gop=5)
    client = neurtmp.connect(url(server), timeout=5)
    client.play("frozen")
    log = EventLog(client)
    first = neurtmp.connect(url(server), timeout=5)
    first.publish("frozen")
    _publish(first, frames, header)
    wait_for(lambda: len(log.timestamps(ev.VideoReceived)) >= 11, 10)
    first.close()
    live = app.registry.get("live", "frozen")
    assert live is not None
    wait_for(lambda: live.reconnecting, 5)
    assert_stays(lambda: len(log.timestamps(ev.VideoReceived)) == 11, 0.5, "nothing while frozen")
    second = neurtmp.connect(url(server), timeout=5)
    second.publish("frozen")  # the name is taken by no one: accepted, not BadName
    _publish(second, frames[2:], header)  # starts with inter frames: skipped until its key frame
    wait_for(lambda: len(log.timestamps(ev.VideoReceived)) >= 11 + 1 + 5, 10)
    videos = [e for e in log.events if isinstance(e, ev.VideoReceived)][11:]
    assert videos[0].payload == header.data  # the new publisher's sequence header first
    assert videos[1].payload == frames[5].data  # then its first key frame
    stamps = [e.timestamp for e in log.events if isinstance(e, ev.VideoReceived)]
    assert _non_decreasing(stamps), stamps
    assert stamps[12] > stamps[10]
    codes = log.codes()
    assert "NetStream.Play.UnpublishNotify" not in codes
    assert codes.count("NetStream.Play.PublishNotify") == 1  # the first publish only: one stream to players
    assert not live.reconnecting
    first.close()
    second.close()
    client.close()


@pytest.mark.timeout(60)
def test_no_grace_ends_at_once(make_server: Any) -> None:
    server, app = live_server(make_server, LiveOptions(reconnect_grace=0))
    header, frames = encode_h264(5, gop=5)
    client = neurtmp.connect(url(server), timeout=5)
    client.play("now")
    log = EventLog(client)
    publisher = neurtmp.connect(url(server), timeout=5)
    publisher.publish("now")
    _publish(publisher, frames, header)
    wait_for(lambda: len(log.timestamps(ev.VideoReceived)) >= 6, 10)
    publisher.close()
    wait_for(lambda: "NetStream.Play.UnpublishNotify" in log.codes(), 3)
    assert not app.registry.get("live", "now").reconnecting  # type: ignore[union-attr]
    client.close()


@pytest.mark.timeout(60)
def test_without_the_codec_extra_the_grace_freezes_with_one_log_line(
        make_server: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def missing(*args: Any, **kwargs: Any) -> Any:
        raise neurtmp.MissingExtra("the slate", "codec", "av")

    monkeypatch.setattr(neurtmp.codec, "encode_slate", missing)
    monkeypatch.setattr(slate_module, "_missing_extra_logged", False)
    server, app = live_server(make_server, LiveOptions(reconnect_grace=3))
    header, frames = encode_h264(5, 208, 160, gop=5)  # a size no other test's slate has
    client = neurtmp.connect(url(server), timeout=5)
    client.play("plain")
    log = EventLog(client)
    with caplog.at_level(logging.WARNING, "neurtmp.live.slate"):
        for _ in range(2):
            publisher = neurtmp.connect(url(server), timeout=5)
            publisher.publish("plain")
            _publish(publisher, frames, header)
            gevent.sleep(0.3)
            publisher.close()
            wait_for(lambda: (s := app.registry.get("live", "plain")) is not None and s.reconnecting, 5)
            gevent.sleep(0.3)
    assert len([r for r in caplog.records if "codec" in r.getMessage()]) == 1
    videos = log.timestamps(ev.VideoReceived)
    assert len(videos) == 2 * 6  # both publishers' headers and frames (the second spliced in), no slate
    client.close()


def test_options_are_checked() -> None:
    with pytest.raises(neurtmp.ConfigError, match="reconnect_grace"):
        LiveOptions(reconnect_grace=-1)
    with pytest.raises(neurtmp.ConfigError, match="not a file"):
        LiveOptions(slate="/no/such/slate.png")
    assert LiveOptions(slate="none").make_slate() is None
    for apps in (("",), ("a/b",)):
        with pytest.raises(neurtmp.ConfigError, match="application names"):
            LiveOptions(apps=apps)
    slate = LiveOptions().make_slate()
    assert slate is not None and slate.image is None  # the generated card
