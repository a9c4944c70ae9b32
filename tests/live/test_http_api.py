"""The JSON API's answers as snapshots that say how long the server took (Server-Timing)."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import gevent
import pytest
from werkzeug.test import Client

from neurtmp.live.figures import MAX_AGE
from neurtmp.live.http import LiveHttp, serve_live_http

from .helpers import live_server


def request(base: str, path: str, method: str = "GET") -> tuple[int, dict[str, str], Any]:
    """A real request in a thread (the server runs in this process): status, headers, JSON."""
    def run() -> tuple[int, dict[str, str], Any]:
        with urllib.request.urlopen(urllib.request.Request(base + path, method=method), timeout=5) as response:
            headers = {"Server-Timing": ", ".join(response.headers.get_all("Server-Timing") or [])}
            return response.status, headers, json.loads(response.read())
    return gevent.get_hub().threadpool.apply(run)


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
