"""The HTTP side of `neurtmp serve`: HTTP-FLV played by ffmpeg, and the JSON API."""

from __future__ import annotations

import json
import re
import sys
import time
import urllib.request
from typing import Any

import gevent
import numpy as np
import pytest
from gevent import subprocess
from werkzeug.test import Client

from neurtmp.live.http import LiveHttp, serve_live_http

from ..conftest import url
from ..helpers import wait_for
from ..ingest.browser import MISSING, Browser, chromium_paths
from .helpers import FFMPEG, live_server


def start_http(server: Any, app: Any, token: str | None = None) -> tuple[LiveHttp, Any, str]:
    http_app = LiveHttp(app, server, token)
    http = serve_live_http(http_app, "127.0.0.1", 0)
    return http_app, http, f"http://127.0.0.1:{http.address[1]}"


def api(base: str, path: str, method: str = "GET", token: str | None = None) -> tuple[int, Any]:
    """A real HTTP request, made in a thread so the server in this process keeps running."""
    return gevent.get_hub().threadpool.apply(_request, (base, path, method, token))


def _request(base: str, path: str, method: str, token: str | None) -> tuple[int, Any]:
    request = urllib.request.Request(base + path, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def publish_av(stream_url: str, seconds: float = 30) -> subprocess.Popen:
    return subprocess.Popen(
        [FFMPEG, "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i",
         "color=c=0x3366CC:size=160x120:rate=25", "-f", "lavfi", "-i", "sine", "-t", str(seconds),
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p", "-c:a", "aac",
         "-f", "flv", stream_url], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.fixture
def http_stack(make_server: Any) -> Any:
    server, app = live_server(make_server)
    http_app, http, base = start_http(server, app)
    yield server, app, http_app, base
    http_app.stop()
    http.stop(timeout=1)


@pytest.mark.timeout(90)
def test_ffmpeg_plays_http_flv_and_the_api_sees_it(http_stack: Any) -> None:
    server, app, http_app, base = http_stack
    publisher = publish_av(url(server, "live/cam"))
    player = None
    try:
        wait_for(lambda: (s := app.registry.get("live", "cam")) is not None and len(s.gop) > 5, 15)
        player = subprocess.Popen([FFMPEG, "-hide_banner", "-i", f"{base}/live/cam.flv", "-frames:v", "50",
                                   "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_for(lambda: len(http_app.players) == 1, 15, "the HTTP-FLV player joined")
        # the answers are snapshots, at most about a second old
        wait_for(lambda: [s["players_by_protocol"] for s in api(base, "/api/v1/streams")[1]["streams"]]
                 == [{"rtmp": 0, "http-flv": 1}], 5, "the API lists the HTTP-FLV player")
        status, body = api(base, "/api/v1/streams")
        assert status == 200
        [stream] = body["streams"]
        assert (stream["app"], stream["name"], stream["live"]) == ("live", "cam", True)
        assert (stream["video_codec"], stream["audio_codec"], stream["width"], stream["height"]) == \
            ("avc", "aac", 160, 120)
        assert stream["players_by_protocol"] == {"rtmp": 0, "http-flv": 1} and stream["gop_packets"] > 0
        status, body = api(base, "/api/v1/clients")
        roles = sorted((c["protocol"], tuple(c["roles"])) for c in body["clients"])
        assert roles == [("http-flv", ("play",)), ("rtmp", ("publish",))]
        out, err = player.communicate(timeout=30)
        log = err.decode(errors="replace")
        assert player.returncode == 0, log
        assert sorted(re.findall(r"Stream #0:\d+.*?: (\w+):", log.split("Output #0")[0])) == ["Audio", "Video"]
        frames = np.frombuffer(out, np.uint8).reshape(-1, 120, 160, 3)
        assert len(frames) == 50
        assert np.allclose(frames.reshape(-1, 3).mean(axis=0), (0x33, 0x66, 0xCC), atol=8)
        sent_while_playing = api(base, "/api/v1/server")[1]["bytes_out"]
        wait_for(lambda: not http_app.players, 10, "the player left")
        http_app.sample()
        assert api(base, "/api/v1/server")[1]["bytes_out"] >= sent_while_playing  # a total never goes down
        [stream] = api(base, "/api/v1/streams")[1]["streams"]
        assert 15 <= stream["fps_measured"] <= 35, stream  # a 25 fps publisher, sampled over seconds
        status, body = api(base, "/api/v1/server")
        assert status == 200 and body["connections"] == 1 and body["streams"] == 1 and body["bytes_in"] > 0
    finally:
        for process in (publisher, player):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()


@pytest.mark.timeout(60)
def test_the_api_kicks_players_and_drops_publishers(http_stack: Any) -> None:
    server, app, http_app, base = http_stack
    publisher = publish_av(url(server, "live/cam"))
    player = None
    try:
        wait_for(lambda: (s := app.registry.get("live", "cam")) is not None and s.is_live, 15)
        player = subprocess.Popen([FFMPEG, "-hide_banner", "-loglevel", "error", "-i", f"{base}/live/cam.flv",
                                   "-f", "null", "-"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for(lambda: len(http_app.players) == 1, 15)
        [player_id] = [str(i) for i in http_app.players]
        assert api(base, f"/api/v1/clients/{player_id}", "DELETE")[0] == 200
        player.wait(timeout=15)  # the server ended its response
        assert api(base, "/api/v1/clients/999999", "DELETE")[0] == 404
        assert api(base, "/api/v1/clients/flv-1", "DELETE")[0] == 404
        assert api(base, "/api/v1/streams/live/cam", "DELETE")[0] == 200
        publisher.wait(timeout=15)
        _, err = publisher.communicate()
        assert b"dropped through the API" in err or publisher.returncode != 0
        wait_for(lambda: not app.registry.get("live", "cam") or not app.registry.get("live", "cam").is_live, 10)
        assert api(base, "/api/v1/streams/live/cam", "DELETE")[0] == 404
    finally:
        for process in (publisher, player):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()


def test_the_api_wants_its_token_or_a_loopback_client(make_server: Any) -> None:
    server, app = live_server(make_server)
    open_api = Client(LiveHttp(app, server))
    assert open_api.get("/api/v1/server", environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 200
    assert open_api.get("/api/v1/server", environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code == 403
    guarded = Client(LiveHttp(app, server, "s3cret"))
    remote = {"REMOTE_ADDR": "203.0.113.9"}
    assert guarded.get("/api/v1/server", environ_base=remote).status_code == 403
    assert guarded.get("/api/v1/server", environ_base=remote,
                       headers={"Authorization": "Bearer wrong"}).status_code == 403
    response = guarded.get("/api/v1/server", environ_base=remote, headers={"Authorization": "Bearer s3cret"})
    assert response.status_code == 200 and response.headers["Access-Control-Allow-Origin"] == "*"
    assert guarded.get("/api/v1/nothing", environ_base=remote,
                       headers={"Authorization": "Bearer s3cret"}).status_code == 404


@pytest.mark.timeout(30)
def test_serve_http_flag_prints_where_it_listens() -> None:
    serve = subprocess.Popen([sys.executable, "-m", "neurtmp.cli", "serve", "--listen", "127.0.0.1:0",
                              "--http", "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = [serve.stdout.readline().strip() for _ in range(2)]
        http = next(line for line in lines if line.startswith("listening on http://"))
        status, body = api(http.split("listening on ", 1)[1], "/api/v1/server")
        assert status == 200 and body["streams"] == 0
    finally:
        serve.terminate()
        serve.wait(timeout=10)


@pytest.mark.timeout(120)
@pytest.mark.skipif(chromium_paths() is None, reason=MISSING)
def test_the_stats_page_plays_a_stream_over_http_flv_in_chromium(http_stack: Any, tmp_path: Any) -> None:
    server, app, http_app, base = http_stack
    publisher = publish_av(url(server, "live/cam"), 60)
    try:
        wait_for(lambda: (s := app.registry.get("live", "cam")) is not None and len(s.gop) > 5, 15)
        with Browser() as browser:
            browser.open(base + "/")
            browser.wait("return document.querySelector('tr[data-stream=\"live/cam\"]') !== null",
                         "the page lists live/cam")
            codecs = browser.run("return document.querySelector('tr[data-stream=\"live/cam\"]').children[2]"
                                 ".textContent")
            assert codecs == "avc + aac"
            browser.run("document.querySelector('tr[data-stream=\"live/cam\"] button').click()")
            browser.wait("return document.getElementById('video').currentTime > 1.5",
                         "the video plays past 1.5 s", timeout=60)
            assert browser.run("return window.pageErrors") == []
            wait_for(lambda: len(http_app.players) == 1, 5, "the page's player is an HTTP-FLV client")
            browser.screenshot(tmp_path / "stats.png")
            # mpegts.js over WebSocket-FLV (ws://HOST/live/cam.flv): the same stream, decoded
            browser.open(base + "/?transport=ws")
            browser.wait("return document.querySelector('tr[data-stream=\"live/cam\"] button') !== null",
                         "the page lists live/cam again")
            browser.run("document.querySelector('tr[data-stream=\"live/cam\"] button').click()")
            browser.wait("const v = document.getElementById('video');"
                         "return v.currentTime > 1.5 && v.videoWidth > 0", "the video plays over ws://", timeout=60)
            assert browser.run("return window.pageErrors") == []
            wait_for(lambda: any(p.websocket for p in http_app.players.values()), 5,
                     "the page's player is a WebSocket client")
    finally:
        publisher.kill()
        publisher.wait()


@pytest.mark.timeout(60)
def test_metrics_carry_the_streams_figures(http_stack: Any) -> None:
    server, app, http_app, base = http_stack
    publisher = publish_av(url(server, "live/cam"))
    texts: list[str] = []

    def scraped() -> str:
        texts.append(gevent.get_hub().threadpool.apply(
            lambda: urllib.request.urlopen(base + "/metrics", timeout=5).read().decode()))
        return texts[-1]

    try:
        wait_for(lambda: (s := app.registry.get("live", "cam")) is not None and s.bytes > 10_000, 15)
        # the figures are a snapshot, at most about a second old
        wait_for(lambda: 'neurtmp_stream_live{app="live",name="cam"} 1.0' in scraped(), 5, "metrics of live/cam")
        text = texts[-1]
    finally:
        publisher.kill()
        publisher.wait()
    assert 'neurtmp_stream_live{app="live",name="cam"} 1.0' in text
    received = re.search(r'neurtmp_stream_bytes_in_total\{app="live",name="cam"\} (\S+)', text)
    assert received is not None and float(received.group(1)) > 10_000
    assert "neurtmp_connections 1.0" in text and "process_resident_memory_bytes" in text
    assert "neurtmp_event_loop_lag_seconds" in text and "neurtmp_flush_hold_seconds" in text


@pytest.mark.timeout(60)
def test_http_flv_plays_pass_the_play_checks(make_server: Any) -> None:
    from neurtmp.access import AccessControl, AccessOptions, parse_rule
    from neurtmp.access.tokens import PLAY, sign

    server, app = live_server(make_server)
    checks = AccessControl(AccessOptions(play_secrets={"live": "s3cret"}))
    http_app = LiveHttp(app, server, play_check=checks.check_http_play)
    http = serve_live_http(http_app, "127.0.0.1", 0)
    base = f"http://127.0.0.1:{http.address[1]}"
    publisher = publish_av(url(server, "live/cam"))
    try:
        wait_for(lambda: (s := app.registry.get("live", "cam")) is not None and s.is_live, 15)

        def frames(path: str) -> tuple[int, str]:
            run = subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-i", base + path, "-frames:v", "5",
                                  "-f", "null", "-"], capture_output=True, timeout=30)
            return run.returncode, run.stderr.decode(errors="replace")

        code, err = frames("/live/cam.flv")
        assert code != 0 and "403" in err  # no play token
        expires = int(time.time()) + 60
        assert frames(f"/live/cam.flv?expires={expires}&sig={sign('s3cret', 'cam', expires, PLAY)}")[0] == 0
        checks.reload(AccessOptions(play_rules=(parse_rule(False, "all"),)))
        code, err = frames("/live/cam.flv")
        assert code != 0 and "403" in err  # denied by an IP rule
    finally:
        publisher.kill()
        publisher.wait()
        http_app.stop()
        http.stop(timeout=1)
