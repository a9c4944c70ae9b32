"""Publisher continuity as players see it: the encoder is killed (SIGKILL) and comes back 5 s
later, within the reconnect grace. Headless Chromium on the ingest page (hls.js, and dash.js
with ?player=dash) plays on through the gap with no fatal error, the slate in the gap and
the new publisher after it, and the playlists never end; an RTMP player recording with
`-c copy` gets one recording with continuous timestamps that decodes end to end."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import av
import av.logging
import gevent
import pytest
from gevent import subprocess

from neurtmp.live import LiveOptions

from ..conftest import url
from ..helpers import wait_for
from ..live.helpers import FFMPEG, live_server
from ..live.test_grace import colour_name, ffmpeg_publish_colour
from .browser import MISSING, Browser, chromium_paths, longest_stall
from .test_grace import publish_colour, stop
from .test_ingest import ingest, segments, wait_master  # noqa: F401 (the fixture)

#: How long the encoder stays away (well within the 10 s grace).
GAP_SECONDS = 5.0
#: The longest the page's player may stop at any one time from the kill to the end.
MAX_STALL_SECONDS = 4.0

#: The player's current frame, scaled down into a canvas: its mean RGB, or null before one.
_RGB = """
const v = document.getElementById("player");
if (!v || !v.videoWidth || v.readyState < 2) return null;
const canvas = document.createElement("canvas");
canvas.width = 64; canvas.height = 48;
const context = canvas.getContext("2d", {willReadFrequently: true});
context.drawImage(v, 0, 0, canvas.width, canvas.height);
const d = context.getImageData(0, 0, canvas.width, canvas.height).data;
const sum = [0, 0, 0];
for (let i = 0; i < d.length; i += 4) { sum[0] += d[i]; sum[1] += d[i + 1]; sum[2] += d[i + 2]; }
const n = d.length / 4;
return [sum[0] / n, sum[1] / n, sum[2] / n];
"""

#: One sample of the page's player: its clock, its frame's colour, and the errors so far.
_SAMPLE = f"""
const rgb = (function () {{ {_RGB} }})();
const v = document.getElementById("player");
return {{currentTime: v.currentTime, rgb: rgb, errors: window.__errors, hlsErrors: window.__hlsErrors,
         dashErrors: window.__dashErrors}};
"""


class PlaylistWatch:
    """Polls a key's media playlists and DASH manifest as players do; keeps what they said."""

    def __init__(self, app: Any, key: str) -> None:
        self.app, self.key = app, key
        self.answers: list[tuple[str, int, str]] = []
        self.greenlet = gevent.spawn(self._poll)

    def _poll(self) -> None:
        while True:
            for name in ("media_0.m3u8", "media_1.m3u8", "dash/manifest.mpd"):
                status, _, body = self.app.get(f"/streams/{self.key}/{name}")
                self.answers.append((name, status, body.decode(errors="replace")))
            gevent.sleep(0.3)

    def ended(self) -> list[str]:
        """The answers that ended the stream: ENDLIST, or a static manifest."""
        return [f"{name}: {text}" for name, status, text in self.answers
                if status == 200 and ("#EXT-X-ENDLIST" in text or 'type="static"' in text)]

    def stop(self) -> None:
        self.greenlet.kill()


@pytest.mark.timeout(120)
@pytest.mark.skipif(chromium_paths() is None, reason=MISSING)
@pytest.mark.parametrize("player", ["hls", "dash"])
def test_the_page_plays_on_through_a_publisher_gap(ingest: Any, player: str,  # noqa: F811
                                                   record_property: Any) -> None:
    app = ingest(reconnect_grace=10.0)
    red = publish_colour(app.rtmp("gap"), "red")
    blue = None
    watch = None
    try:
        wait_master(app, "gap")
        wait_for(lambda: len(segments(app.text("/streams/gap/media_0.m3u8"))) >= 3, 20)
        entry = app.app.streams["gap"]
        watch = PlaylistWatch(app, "gap")
        with Browser() as browser:
            browser.open(f"{app.base}/?stream=gap" + ("&player=dash" if player == "dash" else ""))
            browser.wait("const v = document.getElementById('player');"
                         "return v.readyState >= 2 && v.currentTime > 1", "playback", 40)
            browser.wait(f"const rgb = (function () {{ {_RGB} }})();"
                         "return !!rgb && rgb[0] > 150 && rgb[2] < 80", "the red source on the page", 20)
            engine = "hls" if player == "hls" else "dash"
            assert browser.run(f"window.__player = {engine}; return !!{engine}"), browser.state()

            samples: list[dict[str, Any]] = []

            def sample() -> dict[str, Any]:
                taken = browser.run(_SAMPLE)
                taken["at"] = time.monotonic() - killed
                taken["colour"] = colour_name(taken["rgb"])
                samples.append(taken)
                return taken

            red.kill()  # SIGKILL: the connection drops, no unpublish
            red.wait(10)
            killed = time.monotonic()
            wait_for(lambda: entry.live.reconnecting, 5, "the stream is within the grace")
            while time.monotonic() - killed < GAP_SECONDS:  # paced: the encoder comes back 5 s later
                sample()
                gevent.sleep(0.25)
            assert entry.live.reconnecting, "the grace ended early"
            blue = publish_colour(app.rtmp("gap"), "blue")
            wait_for(lambda: not entry.live.reconnecting and entry.publishers, 10, "the publisher is spliced in")
            wait_for(lambda: sample()["colour"] == "blue", 30, "the new publisher's blue on the page")
            blue_at = samples[-1]["at"]
            wait_for(lambda: sample()["at"] > blue_at + 2, 10)  # it plays on after the splice
            state = browser.state()
            assert browser.run(f"return {engine} === window.__player"), state  # the same player: no restart
        watch.stop()

        last = samples[-1]
        assert last["errors"] == [] and last["hlsErrors"] == [] and last["dashErrors"] == [], (last, state)
        times = [s["currentTime"] for s in samples]
        assert times == sorted(times), f"the player's clock went back: {times}"
        in_gap = [s["currentTime"] for s in samples if s["at"] < GAP_SECONDS]
        assert in_gap[-1] - in_gap[0] > 2.0, f"the clock stood still in the gap: {samples}"
        stall = longest_stall([(s["at"], s["currentTime"]) for s in samples])
        record_property("stall_seconds", round(stall, 2))
        assert stall < MAX_STALL_SECONDS, (stall, samples)
        # red, then the dark slate, then blue; nothing else in between
        shown = [s["colour"] for s in samples]
        first_slate = shown.index("slate") if "slate" in shown else None
        assert first_slate is not None, f"no slate on the page in the gap: {shown}"
        assert samples[first_slate]["at"] < GAP_SECONDS + 4, samples[first_slate]  # shown in (or just after) the gap
        assert "red" not in shown[first_slate:] and shown.index("blue") > first_slate, shown
        assert set(shown) <= {"red", "slate", "blue"}, shown
        assert watch.answers and not watch.ended(), watch.ended()[:1]
        assert {status for _, status, _ in watch.answers} == {200}, {(n, s) for n, s, _ in watch.answers}
        assert app.app.streams["gap"] is entry and entry.transcoder.restarts == 0
        changes = [s for i, s in enumerate(samples) if i == 0 or samples[i - 1]["colour"] != s["colour"]]
        record_property("colours", " ".join(f"{s['at']:.1f}s:{s['colour']}" for s in changes))
    finally:
        if watch is not None:
            watch.stop()
        stop(red, blue)


@dataclass
class Recording:
    """What an FLV recording holds, decoded end to end."""

    video_ms: list[int] = field(default_factory=list)  # the video packets' timestamps, in order
    audio_ms: list[int] = field(default_factory=list)
    colours: list[str] = field(default_factory=list)  # each decoded video frame's
    audio_samples: int = 0
    decoder_errors: list[str] = field(default_factory=list)  # what the decoders logged at error level

    @classmethod
    def read(cls, path: str) -> Recording:
        found = cls()
        level = av.logging.get_level()
        av.logging.set_level(av.logging.ERROR)
        try:
            with av.logging.Capture() as logs, av.open(path) as container:
                video, audio = container.streams.video[0], container.streams.audio[0]
                for packet in container.demux(video, audio):
                    if packet.size == 0:  # a flush packet
                        continue
                    stamps = found.video_ms if packet.stream is video else found.audio_ms
                    stamps.append(int(packet.pts * packet.stream.time_base * 1000))
                    found._decoded(packet.decode())
                found._decoded(video.codec_context.decode(None))  # what the decoders still hold
                found._decoded(audio.codec_context.decode(None))
            found.decoder_errors = [f"{name}: {message.strip()}" for _, name, message in logs]
        finally:
            av.logging.set_level(level)
        return found

    def _decoded(self, frames: list[Any]) -> None:
        for frame in frames:
            if isinstance(frame, av.AudioFrame):
                self.audio_samples += frame.samples
            else:
                mean = frame.to_ndarray(format="rgb24").reshape(-1, 3).mean(axis=0)
                self.colours.append(colour_name(tuple(float(v) for v in mean)))


def check_continuous(stamps: list[int], what: str) -> None:
    """Timestamps never go back and never jump by more than 1 s."""
    steps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    assert steps, f"no {what}"
    assert min(steps) >= 0, f"{what} timestamps went back: {[(stamps[i], d) for i, d in enumerate(steps) if d < 0]}"
    assert max(steps) <= 1000, f"{what}: a jump of {max(steps)} ms after {stamps[steps.index(max(steps))]} ms"


@pytest.mark.timeout(90)
def test_an_rtmp_recording_is_continuous_through_a_publisher_gap(make_server: Any, tmp_path: Any,
                                                                  record_property: Any) -> None:
    server, app = live_server(make_server, LiveOptions(reconnect_grace=10), flush_interval=0.02)
    stream_url = url(server, "live/rec")
    recording = str(tmp_path / "rec.flv")
    red = ffmpeg_publish_colour(stream_url, "red")
    blue = recorder = None
    try:
        wait_for(lambda: (s := app.registry.get("live", "rec")) is not None and s.publisher is not None, 20)
        live = app.registry.get("live", "rec")
        assert live is not None
        # the RTMP player: a copy of what it gets, flushed as it comes (the test watches it grow)
        recorder = subprocess.Popen(
            [FFMPEG, "-hide_banner", "-loglevel", "error", "-i", stream_url, "-c", "copy", "-flush_packets", "1",
             "-f", "flv", "-y", recording], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for(lambda: os.path.exists(recording) and os.path.getsize(recording) > 10_000, 20, "recording red")
        red.kill()  # SIGKILL: the connection drops, no unpublish
        red.wait(10)
        killed = time.monotonic()
        wait_for(lambda: live.reconnecting, 5, "the stream is within the grace")
        gevent.sleep(max(0.0, killed + GAP_SECONDS - time.monotonic()))  # paced: back 5 s later
        assert live.reconnecting
        blue = ffmpeg_publish_colour(stream_url, "blue")
        wait_for(lambda: live.publisher is not None and not live.reconnecting, 20, "the publisher is spliced in")
        spliced = os.path.getsize(recording)
        # 160x120 at 25 fps: a few seconds of the new publisher (its frames are small and flat)
        wait_for(lambda: os.path.getsize(recording) > spliced + 20_000, 20, "recording blue")
        assert recorder.poll() is None, recorder.stderr.read()  # one recording, start to end
        recorder.communicate(b"q", timeout=10)  # ends the file cleanly
        found = Recording.read(recording)
    finally:
        stop(red, blue, recorder)

    assert found.decoder_errors == [], found.decoder_errors[:5]
    check_continuous(found.video_ms, "video")
    check_continuous(found.audio_ms, "audio")
    frames, duration = len(found.video_ms), (found.video_ms[-1] - found.video_ms[0]) / 1000
    runs = [c for i, c in enumerate(found.colours) if i == 0 or found.colours[i - 1] != c]
    record_property("recording", f"{frames} video packets over {duration:.2f} s (largest step "
                    f"{max(b - a for a, b in zip(found.video_ms, found.video_ms[1:], strict=False))} ms), "
                    f"colours {', '.join(f'{c}: {found.colours.count(c)}' for c in dict.fromkeys(found.colours))}, "
                    f"{found.audio_samples} audio samples")
    assert duration > GAP_SECONDS + 2, found.video_ms
    assert len(found.colours) == frames, (len(found.colours), frames)  # every packet decoded to a frame
    assert abs(frames - duration * 25) <= 0.05 * duration * 25 + 3, (frames, duration)  # 25 fps throughout
    audio_duration = (found.audio_ms[-1] - found.audio_ms[0]) / 1000
    assert abs(found.audio_samples / 44100 - audio_duration) < 0.5, (found.audio_samples, audio_duration)
    # red, then the slate, then blue, in that order and nothing else
    assert runs == ["red", "slate", "blue"], runs
