"""The ingest app end to end: ffmpeg publishes, the ladder comes out as HLS and DASH."""

from __future__ import annotations

import io
import json
import logging
import os
import pathlib
import re
import sys
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import av
import gevent
import psutil
import pytest
from gevent import subprocess

import neurtmp
from neurtmp.ingest import IngestApp, IngestConfig, IngestHttp, serve_http
from neurtmp.ingest.access import sign
from neurtmp.live.http import LiveHttp

from ..conftest import url
from ..helpers import wait_for
from ..live.helpers import FFMPEG, ffmpeg_publish
from .browser import MISSING, check_page_plays, chromium_paths

MPD = "{urn:mpeg:dash:schema:mpd:2011}"


class Ingest:
    """An ingest app on a loopback server, with its HTTP side."""

    def __init__(self, make_server: Any, tmp_path: pathlib.Path, **settings: Any) -> None:
        # (no reconnect grace unless a test asks: these tests expect a stream to end with its publisher)
        settings = {"preset": "ultrafast", "segment_duration": 1.0, "output_dir": str(tmp_path / "out"),
                    "reconnect_grace": 0.0, **settings}
        self.config = IngestConfig(**settings)
        self.config.validate()
        self.app = IngestApp(self.config, encoder="x264")
        self.server = make_server()
        self.app.install(self.server)
        self.live_http = LiveHttp(self.app.live, self.server)  # as `neurtmp ingest` mounts it
        self.http = serve_http(IngestHttp(self.app.outputs, self.app.describe, self.live_http), "127.0.0.1", 0)
        self.base = f"http://127.0.0.1:{self.http.address[1]}"

    def rtmp(self, name: str) -> str:
        return url(self.server, f"live/{name}")

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        """GET over real HTTP, from a worker thread (the server runs on this thread's hub)."""
        result: tuple[int, dict[str, str], bytes] = gevent.get_hub().threadpool.apply(self._get, (path, headers))
        return result

    def _get(self, path: str, headers: dict[str, str] | None) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(self.base + path, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    def text(self, path: str) -> str:
        status, _, body = self.get(path)
        assert status == 200, (path, status)
        return body.decode()

    def close(self) -> None:
        self.live_http.stop()
        self.http.stop(timeout=1)
        self.app.stop()


@pytest.fixture
def ingest(make_server: Any, tmp_path: pathlib.Path) -> Iterator[Any]:
    made: list[Ingest] = []

    def make(**settings: Any) -> Ingest:
        made.append(Ingest(make_server, tmp_path, **settings))
        return made[-1]

    yield make
    for instance in made:
        instance.close()


def publish(target: str, size: str, seconds: float) -> subprocess.Popen:
    """A real-time ffmpeg publisher with video and audio."""
    return subprocess.Popen(
        [FFMPEG, "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30",
         "-f", "lavfi", "-i", "sine=frequency=440", "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast",
         "-g", "30", "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "flv", target],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def segments(playlist: str) -> list[str]:
    return [line for line in playlist.splitlines() if line and not line.startswith("#")]


def decode_segment(ingest: Ingest, key: str, media: str) -> tuple[int, int, int]:
    """(width, height, frames) of a media playlist's first segment, decoded with PyAV."""
    playlist = ingest.text(f"/streams/{key}/{media}")
    init = re.search(r'#EXT-X-MAP:URI="([^"]+)"', playlist).group(1)  # type: ignore[union-attr]
    data = ingest.get(f"/streams/{key}/{init}")[2] + ingest.get(f"/streams/{key}/{segments(playlist)[0]}")[2]
    with av.open(io.BytesIO(data)) as container:
        frames = list(container.decode(video=0))
    return frames[0].width, frames[0].height, len(frames)


def wait_master(ingest: Ingest, key: str, timeout: float = 20) -> str:
    wait_for(lambda: ingest.get(f"/streams/{key}/master.m3u8")[0] == 200, timeout)
    return ingest.text(f"/streams/{key}/master.m3u8")


def ffmpeg_children() -> list[psutil.Process]:
    return [p for p in psutil.Process().children(recursive=True) if "ffmpeg" in p.name()]


@pytest.mark.timeout(90)
def test_a_480p_input_gets_480p_and_360p_as_hls_and_dash(ingest: Any) -> None:
    app = ingest()
    encoder = publish(app.rtmp("cam"), "854x480", 7)
    try:
        master = wait_master(app, "cam")
        assert re.findall(r"RESOLUTION=(\d+x\d+)", master) == ["854x480", "640x360"]
        bandwidths = [int(b) for b in re.findall(r"BANDWIDTH=(\d+)", master)]
        assert bandwidths[0] > bandwidths[1] > 800_000
        assert master.count('CODECS="avc1.') == 2
        status, headers, _ = app.get("/streams/cam/master.m3u8")
        assert headers["Content-Type"] == "application/vnd.apple.mpegurl" and "no-cache" in headers["Cache-Control"]
        assert headers["Access-Control-Allow-Origin"] == "*"
        # The media playlists advance while the stream is live.
        wait_for(lambda: len(segments(app.text("/streams/cam/media_0.m3u8"))) >= 2, 20)
        first = len(segments(app.text("/streams/cam/media_0.m3u8")))
        wait_for(lambda: len(segments(app.text("/streams/cam/media_0.m3u8"))) > first, 10)
        assert decode_segment(app, "cam", "media_0.m3u8")[:2] == (854, 480)
        assert decode_segment(app, "cam", "media_1.m3u8")[:2] == (640, 360)
        # DASH lists the same representations, from the same segments.
        status, headers, body = app.get("/streams/cam/dash/manifest.mpd")
        assert status == 200 and headers["Content-Type"].split(";")[0] == "application/dash+xml"
        root = ET.fromstring(body)
        videos = [(int(r.get("width", 0)), int(r.get("height", 0))) for r in root.iter(f"{MPD}Representation")
                  if r.get("mimeType", "").startswith("video") or r.get("width")]
        assert sorted(videos) == [(640, 360), (854, 480)]
        init = re.search(r'#EXT-X-MAP:URI="([^"]+)"', app.text("/streams/cam/media_0.m3u8")).group(1)  # type: ignore[union-attr]
        status, headers, _ = app.get(f"/streams/cam/{init}")
        assert status == 200 and headers["Content-Type"] == "video/iso.segment"
        status, headers, body = app.get(f"/streams/cam/{init}", {"Range": "bytes=0-9"})
        assert status == 206 and len(body) == 10 and headers["Content-Range"].startswith("bytes 0-9/")
        listed = app.get("/streams")[2]
        assert b'"key": "cam"' in listed and b'"480p"' in listed
    finally:
        encoder.kill()
        encoder.wait()


@pytest.mark.timeout(90)
def test_a_360p_input_gets_only_360p_and_unpublish_finalises(ingest: Any) -> None:
    app = ingest(keep_finished=2.0)
    encoder = publish(app.rtmp("small"), "640x360", 4)
    master = wait_master(app, "small")
    assert re.findall(r"RESOLUTION=(\d+x\d+)", master) == ["640x360"]
    assert encoder.wait(timeout=30) == 0
    wait_for(lambda: "small" not in app.app.streams, 10)
    wait_for(lambda: not ffmpeg_children(), 15)  # ffmpeg is gone, nothing left behind
    wait_for(lambda: app.text("/streams/small/media_0.m3u8").rstrip().endswith("#EXT-X-ENDLIST"), 10)
    assert 'type="static"' in app.text("/streams/small/dash/manifest.mpd")
    assert decode_segment(app, "small", "media_0.m3u8")[:2] == (640, 360)
    # A finished stream's files go after keep_finished seconds.
    wait_for(lambda: not os.path.exists(os.path.join(app.config.output_dir, "small")), 15)
    assert app.get("/streams/small/master.m3u8")[0] == 404


@pytest.mark.timeout(90)
def test_ffmpeg_killed_mid_stream_is_restarted_and_the_playlist_resumes(ingest: Any, caplog: Any) -> None:
    app = ingest()
    encoder = publish(app.rtmp("crash"), "640x360", 20)
    try:
        wait_master(app, "crash")
        transcoder = app.app.streams["crash"].transcoder
        wait_for(lambda: len(segments(app.text("/streams/crash/media_0.m3u8"))) >= 2, 20)
        first_pid, first_dir = transcoder.pid, transcoder.out_dir
        assert first_pid is not None
        with caplog.at_level(logging.WARNING):
            os.kill(first_pid, 9)
            wait_for(lambda: transcoder.restarts == 1 and transcoder.pid not in (None, first_pid), 15)
        assert any("ffmpeg exited" in r.message and "restarting" in r.message for r in caplog.records)
        assert transcoder.out_dir != first_dir  # a folder of its own
        before = segments(app.text("/streams/crash/media_0.m3u8"))[-1]
        wait_for(lambda: "#EXT-X-DISCONTINUITY\n" in app.text("/streams/crash/media_0.m3u8") and
                 segments(app.text("/streams/crash/media_0.m3u8"))[-1] > before, 20)
        assert len(ffmpeg_children()) == 1 + 1  # the publisher and the one transcoder
    finally:
        encoder.kill()
        encoder.wait()


def status_of_publish(target: str, name: str) -> str:
    client = neurtmp.connect(target, timeout=10)
    try:
        client.publish(name)
        return "accepted"
    except neurtmp.CallError as exc:
        return f"{exc.code} {exc.info.get('description', '') if isinstance(exc.info, dict) else ''}"
    finally:
        client.close()


@pytest.mark.timeout(60)
def test_bad_keys_and_too_many_streams_are_refused(ingest: Any, caplog: Any) -> None:
    app = ingest(max_streams=1)
    target = url(app.server, "live")
    for bad, reason in (("..", "path"), ("a\\b", "path"), (".hidden", "path"), ("x" * 129, "longer"),
                        ("bell\x07", "control")):
        refused = status_of_publish(target, bad)
        assert refused.startswith("NetStream.Publish.Rejected 400") and reason in refused, refused
    holder = neurtmp.connect(target, timeout=10)
    holder.publish("first")
    with caplog.at_level(logging.INFO):
        refused = status_of_publish(target, "second")
    assert refused == "NetStream.Publish.Rejected 403 max streams reached (1)"
    assert len([r for r in caplog.records if "max streams" in r.message]) == 1  # logged once
    holder.close()
    wait_for(lambda: not app.app.streams)
    assert status_of_publish(target, "second") == "accepted"
    # Nothing outside the output folder is served.
    for path in ("/streams/../../etc/passwd", "/streams/..%2F..%2Fetc/passwd", "/streams/first/../../x",
                 "/static/../app.py", "/streams/%2e%2e/master.m3u8"):
        assert app.get(path)[0] == 404, path


@pytest.mark.timeout(60)
def test_publish_tokens(ingest: Any) -> None:
    app = ingest(auth_secret="s3cret")
    target = url(app.server, "live")
    now = int(time.time())
    assert status_of_publish(target, "cam").startswith("NetStream.Publish.Rejected 403 publishing needs a token")
    wrong = f"cam?expires={now + 60}&sig={sign('other', 'cam', now + 60)}"
    assert status_of_publish(target, wrong) == "NetStream.Publish.Rejected 403 bad token signature"
    other_key = f"cam?expires={now + 60}&sig={sign('s3cret', 'cam2', now + 60)}"
    assert status_of_publish(target, other_key) == "NetStream.Publish.Rejected 403 bad token signature"
    expired = f"cam?expires={now - 5}&sig={sign('s3cret', 'cam', now - 5)}"
    assert status_of_publish(target, expired) == "NetStream.Publish.Rejected 403 token expired"
    valid = f"cam?expires={now + 60}&sig={sign('s3cret', 'cam', now + 60)}"
    assert status_of_publish(target, valid) == "accepted"


def read_status(client: neurtmp.Client, timeout: float = 20) -> neurtmp.events.StatusReceived:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        event = client.read(timeout=timeout)
        assert event is not None, "closed before a status"
        if isinstance(event, neurtmp.events.StatusReceived):
            return event
    raise AssertionError("no status")


def disconnection(caplog: Any, encoder: subprocess.Popen) -> str:
    """The log line of the ingest disconnecting a publisher over a limit (an ffmpeg
    publishing, which must see its connection dropped)."""
    with caplog.at_level(logging.WARNING):
        try:
            wait_for(lambda: any("disconnected" in r.message for r in caplog.records), 20)
            assert encoder.wait(timeout=15) != 0  # ffmpeg saw its connection dropped
        finally:
            encoder.kill()
            encoder.wait()
    return next(r.message for r in caplog.records if "disconnected" in r.message)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("limit", ["bitrate", "resolution"])
def test_limits_disconnect_with_403(ingest: Any, caplog: Any, limit: str) -> None:
    settings = {"max_bitrate": 0.2, "bitrate_grace": 1.0} if limit == "bitrate" else {"max_resolution": 240}
    app = ingest(**settings)
    line = disconnection(caplog, publish(app.rtmp("big"), "640x360", 15))
    assert f"403 {limit}" in line, line
    wait_for(lambda: "big" not in app.app.streams, 10)
    if limit == "resolution":
        assert not list(pathlib.Path(app.config.output_dir, "big").rglob("manifest.mpd"))


def test_the_ingest_command_rejects_bad_settings() -> None:
    env = {**os.environ, "RTMP_MAX_STREAMS": "lots"}
    result = subprocess.run([sys.executable, "-m", "neurtmp.cli", "ingest"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == "neurtmp ingest: RTMP_MAX_STREAMS must be a number, not 'lots'"
    result = subprocess.run([sys.executable, "-m", "neurtmp.cli", "ingest", "--encoder", "magic"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == "neurtmp ingest: --encoder must be one of auto, x264, nvenc_h264, not 'magic'"
    # A value out of range is named by the variable that set it, not by an internal field.
    env = {**os.environ, "RTMP_MAX_BITRATE": "0"}
    result = subprocess.run([sys.executable, "-m", "neurtmp.cli", "ingest"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == "neurtmp ingest: RTMP_MAX_BITRATE must be positive, not 0.0"


@pytest.mark.timeout(120)
@pytest.mark.skipif(chromium_paths() is None, reason=MISSING)
def test_the_page_plays_a_live_stream_in_a_real_browser(ingest: Any) -> None:
    """Headless Chromium opens the ingest app's own page, which plays the ladder with hls.js."""
    app = ingest()
    encoder = publish(app.rtmp("cam"), "854x480", 30)
    try:
        wait_master(app, "cam")
        wait_for(lambda: app.get("/streams/cam/media_1.m3u8")[0] == 200 and
                 len(segments(app.text("/streams/cam/media_1.m3u8"))) >= 2, 20)
        state = check_page_plays(app.base, "cam", select=False)  # the page picks the live stream itself
        assert state["frame"]["variance"] > 100
    finally:
        encoder.kill()
        encoder.wait()


@pytest.mark.timeout(60)
def test_a_published_key_also_plays_over_http_flv_and_shows_in_the_api(ingest: Any) -> None:
    """The ingest server mounts the live app's HTTP side: the encoder's own stream as
    HTTP-FLV (no transcode, no segment wait) and the JSON API, beside the ladder."""
    app = ingest()
    publisher = ffmpeg_publish(app.rtmp("cam"), 20, "testsrc=size=320x240:rate=25")
    try:
        wait_for(lambda: "cam" in app.text("/streams"), 20)
        player = subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-i", f"{app.base}/live/cam.flv",
                                 "-frames:v", "10", "-f", "rawvideo", "-pix_fmt", "gray", "-"],
                                capture_output=True, timeout=30)
        assert player.returncode == 0, player.stderr
        assert len(player.stdout) == 10 * 320 * 240
        wait_for(lambda: [(s["app"], s["name"], s["live"]) for s in json.loads(app.text("/api/v1/streams"))["streams"]]
                 == [("live", "cam", True)], 5, "the API lists live/cam")  # (a snapshot, about a second old at most)
    finally:
        publisher.kill()
        publisher.wait()
