"""The ingest page in headless Chromium: it lists the streams and plays one with hls.js.

The page's files are served as the ingest server serves them, with a fake /streams and a
real CMAF HLS stream that ffmpeg writes beforehand (the dash muxer with HLS playlists, as
the ingest app's ladder does), so only the page is under test here. `check_page_plays`
(tests/ingest/browser.py) runs the same checks against any server.
"""

from __future__ import annotations

import json
import mimetypes
import pathlib
import re
import subprocess
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
from gevent.pywsgi import WSGIServer

from ..live.helpers import FFMPEG
from .browser import MISSING, check_page_plays, chromium_paths

STATIC = pathlib.Path(__file__).resolve().parents[2] / "neurtmp" / "ingest" / "static"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".m3u8": "application/vnd.apple.mpegurl",
    ".mpd": "application/dash+xml",
    ".mp4": "video/mp4",
    ".m4s": "video/mp4",
}

needs_chromium = pytest.mark.skipif(chromium_paths() is None, reason=MISSING)


def make_hls(out_dir: pathlib.Path, seconds: int = 6) -> None:
    """A CMAF stream, HLS and DASH, one 640x360 rung and audio, as the ingest ladder writes it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    command = [
        FFMPEG, "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", str(seconds), "-map", "0:v", "-map", "1:a",
        "-c:v", "libx264", "-preset", "ultrafast", "-profile:v", "main", "-pix_fmt", "yuv420p", "-bf", "0",
        "-b:v", "800k", "-g", "60", "-keyint_min", "60", "-sc_threshold", "0", "-c:a", "aac", "-b:a", "96k", "-ac", "2",
        "-f", "dash", "-seg_duration", "2", "-use_template", "1", "-use_timeline", "1", "-hls_playlist", "1",
        "-adaptation_sets", "id=0,streams=v id=1,streams=a",
        "-init_seg_name", "init-$RepresentationID$.m4s", "-media_seg_name", "chunk-$RepresentationID$-$Number%05d$.m4s",
        str(out_dir / "manifest.mpd"),
    ]
    subprocess.run(command, check=True, timeout=120, capture_output=True)


def describe(key: str, live: bool = True) -> dict[str, Any]:
    """One stream as /streams lists it."""
    return {"key": key, "live": live, "uptime_s": 12.3, "bitrate_kbps": 850, "input_height": 360, "encoder": "x264",
            "rungs": [{"name": "360p", "width": 640, "height": 360, "bitrate_kbps": 800}],
            "hls": f"/streams/{key}/master.m3u8", "dash": f"/streams/{key}/dash/manifest.mpd"}


class PageServer:
    """The page's files, a fixed /streams, and the stream files under /streams/KEY/ (and /dash/)."""

    def __init__(self, media: pathlib.Path, streams: list[dict[str, Any]]) -> None:
        self.media = media
        self.streams = streams
        #: (path, status) of every request, in order.
        self.requests: list[tuple[str, int]] = []
        self.server = WSGIServer(("127.0.0.1", 0), self.app, log=None)
        self.server.start()
        self.base = f"http://127.0.0.1:{self.server.address[1]}"

    def app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        status, headers, body = self.answer(path)
        self.requests.append((path, status))
        start_response(f"{status} {'OK' if status == 200 else 'Not Found'}",
                       [*headers, ("Content-Length", str(len(body)))])
        return [body]

    def answer(self, path: str) -> tuple[int, list[tuple[str, str]], bytes]:
        if path == "/streams":
            return 200, [("Content-Type", "application/json"), ("Cache-Control", "no-cache")], \
                json.dumps({"streams": self.streams}).encode()
        keys = "|".join(re.escape(stream["key"]) for stream in self.streams)
        routes = [(r"/", STATIC, "index.html"), (r"/static/([\w.-]+)", STATIC, None),
                  (rf"/streams/(?:{keys})/(?:dash/)?([\w.-]+)", self.media, None)]
        for pattern, folder, name in routes:
            found = re.fullmatch(pattern, path)
            if found and (file := folder / (name or found.group(1))).is_file():
                content_type = CONTENT_TYPES.get(file.suffix) or mimetypes.guess_type(file.name)[0]
                return 200, [("Content-Type", content_type or "application/octet-stream")], file.read_bytes()
        return 404, [("Content-Type", "text/plain")], b"not found"

    def missing(self) -> list[str]:
        return [path for path, status in self.requests if status != 200]

    def close(self) -> None:
        self.server.stop(timeout=1)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("hls")
    make_hls(out)
    return out


@pytest.fixture
def page_server(media: pathlib.Path) -> Iterator[Callable[[list[dict[str, Any]]], PageServer]]:
    made: list[PageServer] = []

    def make(streams: list[dict[str, Any]]) -> PageServer:
        made.append(PageServer(media, streams))
        return made[-1]

    yield make
    for server in made:
        server.close()


def test_the_stream_is_a_one_rung_cmaf_hls_ladder(media: pathlib.Path) -> None:
    master = (media / "master.m3u8").read_text()
    assert re.search(r'#EXT-X-STREAM-INF:.*BANDWIDTH=\d+.*RESOLUTION=640x360.*CODECS="avc1', master), master
    assert "#EXT-X-MAP:URI=\"init-0.m4s\"" in (media / "media_0.m3u8").read_text()


def test_the_page_needs_nothing_from_other_sites() -> None:
    for name in ("index.html", "app.js", "style.css"):
        text = (STATIC / name).read_text()
        assert not re.search(r"(?:https?:)?//[\w.-]+\.\w", text), name
        for url in re.findall(r"""(?:src|href)="([^"]+)\"""", text):
            assert url.startswith(("/static/", "data:")), (name, url)
    assert (STATIC / "hls.min.js").stat().st_size > 100_000


@needs_chromium
@pytest.mark.timeout(240)
def test_the_page_picks_the_first_live_stream_and_plays_it(page_server: Any) -> None:
    server = page_server([describe("gone", live=False), describe("cam")])
    state = check_page_plays(server.base, "cam", select=False)
    assert state["hlsErrors"] == [], state
    assert "gone" in state["streams"] and "360p" in state["streams"] and "850 kb/s" in state["streams"]
    assert "640×360" in state["level"] or "360p" in state["level"], state
    assert state["video"]["width"] == 640 and state["video"]["height"] == 360, state
    assert not server.missing(), server.requests
    fetched = [path for path, _ in server.requests]
    assert "/static/hls.min.js" in fetched and "/streams/cam/master.m3u8" in fetched
    assert any(re.fullmatch(r"/streams/cam/chunk-0-\d+\.m4s", path) for path in fetched), fetched


@needs_chromium
@pytest.mark.timeout(240)
def test_the_query_selects_the_stream(page_server: Any) -> None:
    server = page_server([describe("cam"), describe("other")])
    state = check_page_plays(server.base, "other")
    assert state["hlsErrors"] == [] and state["nowPlaying"] == "other", state
    assert not server.missing(), server.requests
    fetched = [path for path, _ in server.requests]
    assert "/streams/other/master.m3u8" in fetched and "/streams/cam/master.m3u8" not in fetched
