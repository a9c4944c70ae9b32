"""The HTTP side of `neurtmp serve`: HTTP-FLV playback and a JSON API.

* ``GET /APP/NAME.flv`` plays the live stream as FLV (close-delimited): an
  `neurtmp.FlvPlayer` in the stream's fan-out, with the same fast start and slow-reader
  policy as RTMP players (one shared log of FLV tags). A name nobody publishes yet
  waits, as an RTMP player does.
* ``/``: a stats page (live streams and clients, refreshing; a player per stream with
  the vendored mpegts.js; kick buttons).
* ``/api/v1/server``, ``/api/v1/streams``, ``/api/v1/clients`` (GET), and
  ``DELETE /api/v1/clients/ID`` (kick), ``DELETE /api/v1/streams/APP/NAME`` (drop the
  publisher). With an API token, the API wants ``Authorization: Bearer TOKEN``; without
  one it answers loopback clients only.

CORS is on (any origin), so pages elsewhere can play and read. Werkzeug routes the
requests on gevent's WSGI server (the `http` extra).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import os
import re
import time
from collections import deque
from typing import Any, Protocol

import gevent
import gevent.socket
from gevent.pywsgi import WSGIHandler, WSGIServer
from werkzeug.exceptions import Forbidden, HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

import neurtmp
from neurtmp.codec import flv
from neurtmp.live.app import LiveApp, requested_track
from neurtmp.live.stream import LiveStream
from neurtmp.names import host_port, redact_query, split_query

__all__ = ["FlvServing", "LiveHttp", "PlayCheck", "PlayEnded", "serve_live_http", "serve_wsgi"]

log = logging.getLogger(__name__)

#: GET /APP/NAME.flv (the name may carry a query string).
_FLV_PATH = re.compile(r"^/(?P<app>[^/]+)/(?P<name>[^/]+)\.flv$")
#: Seconds over which the bandwidth and bitrate figures are averaged.
RATE_WINDOW = 10.0
_CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Headers": "Authorization",
         "Access-Control-Allow-Methods": "GET, DELETE, OPTIONS"}
_AUDIO_FORMATS = {2: "mp3", 10: "aac", 11: "speex", 9: "enhanced"}
#: The stats page and what it loads (neurtmp/live/static).
_STATIC = os.path.join(os.path.dirname(__file__), "static")
#: The HTTP status of a refused HTTP-FLV play, by the code its reason begins with.
_REFUSAL_STATUS = {"502": "502 Bad Gateway"}
_STATIC_FILES = {"index.html": "text/html; charset=utf-8", "stats.js": "text/javascript; charset=utf-8",
                 "mpegts.js": "text/javascript; charset=utf-8"}


class PlayCheck(Protocol):
    """Decides an HTTP-FLV play: (why it is refused, "" to allow; the name to play)."""

    def __call__(self, peer: str, client_id: str, app: str, name: str, url: str) -> tuple[str, str]: ...


class PlayEnded(Protocol):
    """Told when an HTTP-FLV player that `PlayCheck` let in has left."""

    def __call__(self, peer: str, client_id: str, app: str, name: str) -> None: ...


class _Rates:
    """Counters sampled once a second, rates over the last `RATE_WINDOW` seconds."""

    def __init__(self) -> None:
        self._samples: dict[Any, deque[tuple[float, int]]] = {}

    def sample(self, key: Any, total: int, now: float) -> None:
        samples = self._samples.setdefault(key, deque())
        samples.append((now, total))
        while samples and now - samples[0][0] > RATE_WINDOW:
            samples.popleft()

    def per_second(self, key: Any) -> float:
        """How fast the counter grew over the window (0 before two samples)."""
        samples = self._samples.get(key)
        if not samples or len(samples) < 2:
            return 0.0
        (t0, b0), (t1, b1) = samples[0], samples[-1]
        return (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0

    def bits_per_second(self, key: Any) -> float:
        """A byte counter's rate, in bits per second."""
        return self.per_second(key) * 8

    def forget_except(self, keys: set[Any]) -> None:
        for key in set(self._samples) - keys:
            del self._samples[key]


class LiveHttp:
    """The WSGI application and the HTTP-FLV player registry of one server's live app.

    Args:
        app: the live app whose streams are served.
        server: the RTMP server (limits, flusher, connections, statistics).
        api_token: the bearer token the API wants; None: loopback clients only.
        play_check: asked before an HTTP-FLV play, as RTMP plays are (IP rules, play
            tokens, the on_play hook: `neurtmp.access.AccessControl.check_http_play`).
        play_ended: told when a player `play_check` let in leaves
            (`neurtmp.access.AccessControl.http_play_ended`).
    """

    def __init__(self, app: LiveApp, server: neurtmp.Server, api_token: str | None = None,
                 play_check: PlayCheck | None = None, play_ended: PlayEnded | None = None) -> None:
        self.app = app
        self.server = server
        self.api_token = api_token or None
        self.play_check = play_check
        self.play_ended = play_ended
        self.players: dict[int, neurtmp.FlvPlayer] = {}
        #: Bytes sent to HTTP-FLV players that have left.
        self._closed_flv_bytes_out = 0
        self.started = time.monotonic()
        self._rates = _Rates()
        self._sampler: gevent.Greenlet | None = None
        #: Seconds the hub ran a one-second timer late, last time.
        self.loop_lag = 0.0
        self._urls = Map([
            Rule("/", endpoint="page", methods=["GET"]),
            Rule("/static/<name>", endpoint="static", methods=["GET"]),
            Rule("/metrics", endpoint="metrics", methods=["GET"]),
            Rule("/api/v1/server", endpoint="server", methods=["GET"]),
            Rule("/api/v1/streams", endpoint="streams", methods=["GET"]),
            Rule("/api/v1/streams/<app>/<name>", endpoint="drop_stream", methods=["DELETE"]),
            Rule("/api/v1/clients", endpoint="clients", methods=["GET"]),
            Rule("/api/v1/clients/<client_id>", endpoint="kick", methods=["DELETE"]),
        ])

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Start sampling byte counters (for bandwidth and bitrate figures)."""
        if self._sampler is None:
            self._sampler = gevent.spawn(self._sample_forever)

    def stop(self) -> None:
        if self._sampler is not None:
            self._sampler.kill(block=False)
            self._sampler = None
        for player in list(self.players.values()):
            player.close("server shut down")

    def _sample_forever(self) -> None:
        while True:
            self.sample()
            before = time.monotonic()
            gevent.sleep(1.0)
            self.loop_lag = max(0.0, time.monotonic() - before - 1.0)

    def sample(self) -> None:
        """Record the byte counters now (called once a second)."""
        now = time.monotonic()
        totals = self._totals()
        self._rates.sample("in", totals["bytes_in"], now)
        self._rates.sample("out", totals["bytes_out"], now)
        keys: set[Any] = {"in", "out"}
        for live in self.app.streams():
            self._rates.sample(live.path, live.bytes, now)
            self._rates.sample((live.path, "frames"), live.video_frames, now)
            keys.update((live.path, (live.path, "frames")))
        self._rates.forget_except(keys)

    # -- HTTP-FLV -----------------------------------------------------------------------

    def serve_flv(self, sock: gevent.socket.socket, peer: str, app: str, name: str) -> str:
        """Play `app/name` as FLV on a socket whose request was read; returns the HTTP
        status sent. Blocks until the client leaves or the player is closed."""
        if not self.app.serves(app) or not split_query(name)[0]:
            sock.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return "404 Not Found"
        client_id = f"flv-{peer}"
        if self.play_check is not None:
            refusal, name = self.play_check(peer, client_id, app, name, f"/{app}/{name}.flv")
            if refusal:
                log.info("%s: HTTP-FLV play of %s/%s refused: %s", peer, app, redact_query(name), refusal)
                status = _REFUSAL_STATUS.get(refusal[:3], "403 Forbidden")
                body = refusal.encode()
                sock.sendall(f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nConnection: close\r\n".encode()
                             + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
                return status
        try:
            return self._play_flv(sock, peer, app, name)
        finally:
            if self.play_check is not None and self.play_ended is not None:
                self.play_ended(peer, client_id, app, name)

    def _play_flv(self, sock: gevent.socket.socket, peer: str, app: str, name: str) -> str:
        head = ["HTTP/1.1 200 OK", "Content-Type: video/x-flv", "Cache-Control: no-cache, no-store",
                "Connection: close", *(f"{k}: {v}" for k, v in _CORS.items())]
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        player = neurtmp.FlvPlayer(self.server, sock, peer, app, split_query(name)[0])
        self.players[player.player_id] = player
        live = self.app.add_player(app, player.name, player, requested_track(name))
        log.info("%s: %s plays over HTTP-FLV (%s)", live.path, peer, "live" if live.is_live else "waiting")
        try:
            player.serve(sock)
        finally:
            self.players.pop(player.player_id, None)
            self._closed_flv_bytes_out += player.bytes_out  # totals never go down
            self.app.remove_player(live, player)
            log.info("%s: %s stopped playing over HTTP-FLV (%s)", live.path, peer, player.close_reason)
        return "200 OK"

    # -- the API ------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        try:
            if request.method == "OPTIONS":
                response = Response(status=204)
            else:
                endpoint, values = self._urls.bind_to_environ(environ).match()
                if endpoint in ("page", "static"):  # the page is public; what it shows is the API's
                    response = self._file("index.html" if endpoint == "page" else values["name"])
                else:
                    self._authorize(request)
                    response = getattr(self, f"_{endpoint}")(**values)
        except HTTPException as exc:
            response = _json({"error": exc.description or exc.name}, exc.code or 500)
        response.headers.update(_CORS)
        return response(environ, start_response)

    def _file(self, name: str) -> Response:
        if name not in _STATIC_FILES:
            raise NotFound()
        path = os.path.join(_STATIC, name)
        with open(path, "rb") as f:
            return Response(f.read(), content_type=_STATIC_FILES[name], headers={"Cache-Control": "no-cache"})

    def _authorize(self, request: Request) -> None:
        if self.api_token is not None:
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {self.api_token}".encode()):
                raise Forbidden("a valid 'Authorization: Bearer TOKEN' is needed")
        elif not ipaddress.ip_address(request.remote_addr or "0.0.0.0").is_loopback:
            raise Forbidden("the API answers loopback clients only (set an API token)")

    def _totals(self) -> dict[str, Any]:
        stats = self.server.get_statistics()
        flv_out = self._closed_flv_bytes_out + sum(player.bytes_out for player in self.players.values())
        return {**stats, "bytes_out": stats.get("bytes_out", 0) + flv_out}

    def _metrics(self) -> Response:
        from neurtmp.live.metrics import metrics_text

        return Response(metrics_text(self), content_type="text/plain; version=0.0.4; charset=utf-8")

    def _server(self) -> Response:
        return _json(self.summary())

    def summary(self) -> dict[str, Any]:
        """The server's figures (``/api/v1/server``)."""
        totals = self._totals()
        return {
            "version": neurtmp.__version__,
            "uptime": round(time.monotonic() - self.started, 3),
            "connections": len(self.server.get_connections()),
            "http_flv_players": len(self.players),
            "streams": sum(1 for live in self.app.streams() if live.is_live),
            "bytes_in": totals.get("bytes_in", 0),
            "bytes_out": totals["bytes_out"],
            "bandwidth_in_bps": round(self._rates.bits_per_second("in")),
            "bandwidth_out_bps": round(self._rates.bits_per_second("out")),
        }

    def _streams(self) -> Response:
        return _json({"streams": self.describe_streams()})

    def describe_streams(self) -> list[dict[str, Any]]:
        """Every stream's figures (``/api/v1/streams``)."""
        return [self._describe(live) for live in self.app.streams()]

    def _describe(self, live: LiveStream) -> dict[str, Any]:
        stats = live.statistics()
        metadata = live.metadata.metadata if isinstance(live.metadata, neurtmp.DataPacket) else None
        metadata = metadata or {}
        by_protocol = {"rtmp": 0, "http-flv": 0}
        for player in live.players():
            by_protocol["http-flv" if isinstance(player, neurtmp.FlvPlayer) else "rtmp"] += 1
        video = flv.video_codec(live.video_header.payload) if live.video_header is not None else None
        audio = None
        if live.audio_header is not None and live.audio_header.payload:
            sound_format = live.audio_header.payload[0] >> 4
            audio = _AUDIO_FORMATS.get(sound_format, f"format{sound_format}")
        return {
            **stats,
            "video_codec": video,
            "audio_codec": audio,
            "width": metadata.get("width"),
            "height": metadata.get("height"),
            "fps": metadata.get("framerate"),
            "fps_measured": round(self._rates.per_second((live.path, "frames")), 2),
            "bitrate_in_bps": round(self._rates.bits_per_second(live.path)),
            "players_by_protocol": by_protocol,
            "gop_packets": len(live.gop),
            "gop_bytes": live.gop.nbytes,
        }

    def _clients(self) -> Response:
        clients: list[dict[str, Any]] = []
        for connection in self.server.get_connections():
            stats = connection.get_statistics()
            streams = connection.get_streams()
            roles = sorted({"publish" if s.publishing else "play" for s in streams if s.publishing or s.playing})
            clients.append({
                "id": str(connection.connection_id), "address": connection.get_peer_address(),
                "protocol": "rtmp", "app": connection.app_name, "roles": roles,
                "streams": [redact_query(s.get_stream_name()) for s in streams if s.publishing or s.playing],
                "bytes_in": stats["bytes_in"], "bytes_out": stats["bytes_out"], "since": round(stats["uptime"], 3),
            })
        for player in self.players.values():
            stats = player.statistics()
            clients.append({
                "id": f"flv-{player.player_id}", "address": player.peer, "protocol": "http-flv", "app": player.app,
                "roles": ["play"], "streams": [player.name], "bytes_in": 0, "bytes_out": stats["bytes_out"],
                "since": round(stats["uptime"], 3),
            })
        return _json({"clients": clients})

    def _kick(self, client_id: str) -> Response:
        if client_id.startswith("flv-") and client_id[4:].isdigit():
            player = self.players.get(int(client_id[4:]))
            if player is None:
                raise NotFound(f"no client {client_id}")
            player.close("kicked through the API")
        else:
            connection = next((c for c in self.server.get_connections() if str(c.connection_id) == client_id), None)
            if connection is None:
                raise NotFound(f"no client {client_id}")
            connection.close("kicked through the API")
        log.info("client %s kicked through the API", client_id)
        return _json({"kicked": client_id})

    def _drop_stream(self, app: str, name: str) -> Response:
        if not self.app.drop_publisher(app, name, "dropped through the API"):
            raise NotFound(f"{app}/{name} is not live")
        log.info("%s/%s: publisher dropped through the API", app, name)
        return _json({"dropped": f"{app}/{name}"})


def _json(value: Any, status: int = 200) -> Response:
    return Response(json.dumps(value), status=status, content_type="application/json")


class FlvServing(Protocol):
    """A WSGI application that also plays HTTP-FLV (`LiveHttp`, or one that mounts it)."""

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any: ...

    def serve_flv(self, sock: gevent.socket.socket, peer: str, app: str, name: str) -> str: ...


class _Handler(WSGIHandler):  # type: ignore[misc]
    """gevent's WSGI handler, but ``GET /APP/NAME.flv`` takes the socket over for an
    HTTP-FLV player (the outbox writes to it directly, as for RTMP players), when the
    application plays HTTP-FLV (has `serve_flv`)."""

    def run_application(self) -> None:
        application = self.application
        match = _FLV_PATH.match(self.path.split("?", 1)[0]) if self.command == "GET" else None
        if match is None or not hasattr(application, "serve_flv"):
            super().run_application()
            return
        name = match["name"] + (f"?{self.path.split('?', 1)[1]}" if "?" in self.path else "")
        address = self.client_address
        peer = host_port(address[0], address[1]) if isinstance(address, tuple) else str(address)
        self.close_connection = True
        self.status = application.serve_flv(self.socket, peer, match["app"], name)
        self.headers_sent = True


def serve_wsgi(app: Any, host: str, port: int) -> WSGIServer:
    """Start gevent's WSGI server for `app` (returns at once; `server.address` has the
    bound port); ``GET /APP/NAME.flv`` goes to `app.serve_flv` when it has one. The one
    HTTP server of `serve` and `ingest`."""
    server = WSGIServer((host, port), app, handler_class=_Handler, log=None, error_log=log)
    server.start()
    return server


def serve_live_http(app: LiveHttp, host: str, port: int) -> WSGIServer:
    """Start the HTTP side of `serve` (returns at once; `server.address` has the bound port)."""
    server = serve_wsgi(app, host, port)
    app.start()
    return server
