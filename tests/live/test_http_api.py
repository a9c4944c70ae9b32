"""The JSON API with HTTP-FLV players as first-class clients: their bytes in a stream's
bitrate out, client ids unique across protocols (the kick takes either), integer sizes,
rounded uptimes, on_play_done when they leave; and the answers as snapshots that say
how long the server took (Server-Timing)."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import gevent
import gevent.socket
import pytest
from gevent import subprocess
from werkzeug.test import Client

from neurtmp.access import AccessControl, AccessOptions
from neurtmp.live import LiveApp
from neurtmp.live.figures import MAX_AGE
from neurtmp.live.http import LiveHttp, serve_live_http

from ..access.helpers import HookServer
from ..conftest import url
from ..helpers import wait_for
from .helpers import FFMPEG, live_server
from .test_http import api, publish_av


@pytest.fixture
def hooks() -> Iterator[HookServer]:
    server = HookServer()
    yield server
    server.stop()


class StreamingReader:
    """An HTTP-FLV player that is a plain streaming HTTP read (gevent socket), counting bytes."""

    def __init__(self, port: int, path: str) -> None:
        self.sock = gevent.socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        self.received = b""
        self.bytes = 0
        self.ended = False
        self._reader = gevent.spawn(self._read)

    def _read(self) -> None:
        try:
            while chunk := self.sock.recv(65536):
                self.bytes += len(chunk)
                if len(self.received) < 4096:
                    self.received += chunk
        except OSError:
            pass
        self.ended = True

    def close(self) -> None:
        self.sock.close()
        self._reader.kill()


def request(base: str, path: str, method: str = "GET") -> tuple[int, dict[str, str], Any]:
    """A real request in a thread (the server runs in this process): status, headers, JSON."""
    def run() -> tuple[int, dict[str, str], Any]:
        with urllib.request.urlopen(urllib.request.Request(base + path, method=method), timeout=5) as response:
            headers = {"Server-Timing": ", ".join(response.headers.get_all("Server-Timing") or [])}
            return response.status, headers, json.loads(response.read())
    return gevent.get_hub().threadpool.apply(run)


def stream_figures(base: str) -> dict[str, Any]:
    """live/cam's figures ({} while the snapshot has no such stream yet)."""
    streams = api(base, "/api/v1/streams")[1]["streams"]
    return next((s for s in streams if (s["app"], s["name"]) == ("live", "cam")), {})


@pytest.mark.timeout(120)
def test_http_flv_players_are_first_class_api_clients(make_server: Any, hooks: HookServer) -> None:
    server = make_server()
    access = AccessControl(AccessOptions(hooks={"play_done": hooks.url("/done")}))
    access.install(server)  # (before the live app, as serve does)
    app = LiveApp()
    app.install(server)
    http_app = LiveHttp(app, server, play_check=access.check_http_play, play_done=access.notify_http_play_done)
    http = serve_live_http(http_app, "127.0.0.1", 0)
    port = http.address[1]
    base = f"http://127.0.0.1:{port}"
    publisher = publish_av(url(server, "live/cam"), 60)
    processes = [publisher]
    reader = None
    try:
        wait_for(lambda: (s := app.registry.get("live", "cam")) is not None and len(s.gop) > 5, 15)
        flv_ffmpeg = subprocess.Popen([FFMPEG, "-hide_banner", "-loglevel", "error", "-i",
                                       f"{base}/live/cam.flv?viewer=v7", "-f", "null", "-"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        rtmp_ffmpeg = subprocess.Popen([FFMPEG, "-hide_banner", "-loglevel", "error", "-i", url(server, "live/cam"),
                                        "-f", "null", "-"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        processes += [flv_ffmpeg, rtmp_ffmpeg]
        reader = StreamingReader(port, "/live/cam.flv")
        wait_for(lambda: len(http_app.players) == 2, 15, "two HTTP-FLV players joined")
        wait_for(lambda: stream_figures(base).get("players_by_protocol") == {"rtmp": 1, "http-flv": 2}, 15,
                 "the API lists one RTMP and two HTTP-FLV players")

        # out counts every player's bytes: three players get about three times what comes in
        def out_is_three_fold() -> bool:
            stream = stream_figures(base)
            return stream["bitrate_in_bps"] > 0 and stream["bitrate_out_bps"] > 2.5 * stream["bitrate_in_bps"]

        wait_for(out_is_three_fold, 20, "bitrate out counts the HTTP-FLV players")
        stream = stream_figures(base)
        assert reader.received.startswith(b"HTTP/1.1 200 OK") and b"\r\n\r\nFLV" in reader.received
        assert stream["bytes_out"] > reader.bytes > 0
        assert (stream["width"], stream["height"]) == (160, 120)
        assert type(stream["width"]) is int and type(stream["height"]) is int
        assert stream["uptime"] > 0 and round(stream["uptime"], 1) == stream["uptime"]

        # one sequence of ids for every protocol
        wait_for(lambda: len(api(base, "/api/v1/clients")[1]["clients"]) == 4, 10, "four clients listed")
        clients = api(base, "/api/v1/clients")[1]["clients"]
        ids = [c["id"] for c in clients]
        assert len(set(ids)) == 4 and all(i.isdigit() for i in ids), clients
        flv_ids = sorted(c["id"] for c in clients if c["protocol"] == "http-flv")
        assert flv_ids == sorted(str(i) for i in http_app.players)
        rtmp_ids = {str(c.connection_id) for c in server.get_connections()}
        assert rtmp_ids == {c["id"] for c in clients if c["protocol"] == "rtmp"} and not rtmp_ids & set(flv_ids)

        # the kick takes an HTTP-FLV id and an RTMP id alike; leaving HTTP-FLV players send on_play_done
        [ffmpeg_id] = [i for i, player in http_app.players.items() if player.peer != _local(reader)]
        assert api(base, f"/api/v1/clients/{ffmpeg_id}", "DELETE")[0] == 200
        flv_ffmpeg.wait(timeout=15)
        wait_for(lambda: hooks.seen("play_done"), 10, "on_play_done for the kicked HTTP-FLV player")
        [done] = hooks.seen("play_done")
        assert (done["app"], done["name"], done["clientid"], done["addr"]) == ("live", "cam", str(ffmpeg_id),
                                                                              "127.0.0.1")
        assert done["viewer"] == "v7" and done["tcurl"] == "/live/cam.flv?viewer=v7"
        [player_connection] = [c for c in server.get_connections()
                               if any(s.playing for s in c.get_streams())]
        rtmp_id = str(player_connection.connection_id)
        assert api(base, f"/api/v1/clients/{rtmp_id}", "DELETE")[0] == 200
        rtmp_ffmpeg.wait(timeout=15)
        reader.close()  # the streaming reader hangs up
        wait_for(lambda: len(hooks.seen("play_done")) == 3, 10, "on_play_done for the other two players")
        by_id = {form["clientid"]: form for form in hooks.seen("play_done")}
        assert len(by_id) == 3 and rtmp_id in by_id  # RTMP players' hook ids are their API ids too
        [left] = [form for client_id, form in by_id.items() if client_id not in (str(ffmpeg_id), rtmp_id)]
        assert left["clientid"] in flv_ids and left["name"] == "cam" and left["tcurl"] == "/live/cam.flv"
        wait_for(lambda: stream_figures(base).get("players_by_protocol") == {"rtmp": 0, "http-flv": 0}, 10)
    finally:
        if reader is not None:
            reader.close()
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        http_app.stop()
        http.stop(timeout=1)


def _local(reader: StreamingReader) -> str:
    host, port = reader.sock.getsockname()[:2]
    return f"{host}:{port}"


@pytest.mark.timeout(60)
def test_api_answers_are_snapshots_and_say_what_the_server_took(make_server: Any, monkeypatch: Any) -> None:
    server, app = live_server(make_server)
    http_app = LiveHttp(app, server)
    walks = 0
    real = server.get_connections

    def counted() -> list[Any]:
        nonlocal walks
        walks += 1
        return real()

    monkeypatch.setattr(server, "get_connections", counted)
    client = Client(http_app)
    loopback = {"REMOTE_ADDR": "127.0.0.1"}
    first = client.get("/api/v1/clients", environ_base=loopback)
    assert first.status_code == 200 and first.json == {"clients": []}
    walked = walks
    for _ in range(20):  # within MAX_AGE: the same bytes, no walk over the connections
        assert client.get("/api/v1/clients", environ_base=loopback).data == first.data
    assert walks == walked
    http_app.sample()  # the sampler's tick rebuilds what was read lately
    assert walks > walked
    assert MAX_AGE <= 1.0
    timing = first.headers["Server-Timing"]
    assert timing.startswith("app;dur=") and float(timing.split("=", 1)[1]) >= 0

    http = serve_live_http(http_app, "127.0.0.1", 0)
    try:
        status, headers, body = request(f"http://127.0.0.1:{http.address[1]}", "/api/v1/streams")
        assert status == 200 and body == {"streams": []}
        entries = dict(entry.strip().split(";dur=") for entry in headers["Server-Timing"].split(","))
        assert set(entries) == {"app", "total"} and all(float(v) >= 0 for v in entries.values())
    finally:
        http_app.stop()
        http.stop(timeout=1)


class _FakeConnection:
    """What the client list reads of a `neurtmp.Connection`."""

    def __init__(self, number: int) -> None:
        self.connection_id = number
        self.closed = number % 50 == 7  # closing ones are left out
        self.app_name = "live"
        self.bytes_in, self.bytes_out = number, 2 * number
        self.started = time.monotonic() - 1

    def get_peer_address(self) -> str:
        return f"127.0.0.1:{10000 + self.connection_id}"

    def get_streams(self) -> list[Any]:
        return []


def test_the_client_list_is_built_a_chunk_at_a_time(make_server: Any, monkeypatch: Any) -> None:
    server, app = live_server(make_server)
    http_app = LiveHttp(app, server)
    connections = [_FakeConnection(n) for n in range(1, 251)]
    monkeypatch.setattr(server, "get_connections", lambda: connections)
    turns = 0

    def other() -> None:  # another greenlet, run while the list is built
        nonlocal turns
        while True:
            turns += 1
            gevent.sleep(0)

    runner = gevent.spawn(other)
    try:
        response = Client(http_app).get("/api/v1/clients", environ_base={"REMOTE_ADDR": "127.0.0.1"})
    finally:
        runner.kill()
    clients = response.json["clients"]
    assert [c["id"] for c in clients] == [str(c.connection_id) for c in connections if not c.closed]
    assert clients[0] == {"id": "1", "address": "127.0.0.1:10001", "protocol": "rtmp", "app": "live", "roles": [],
                          "streams": [], "bytes_in": 1, "bytes_out": 2, "since": 1.0}
    assert turns >= 2  # the hub ran between the chunks (100 clients each)
