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
  one it answers loopback clients only. The GET answers are snapshots, at most about a
  second old (`neurtmp.live.figures`): built once, served as bytes to every request in
  between, so that reading the API costs the streams nothing. Client ids are numbers
  unique across protocols (RTMP connections and HTTP-FLV players draw from one
  sequence, `neurtmp.Server.new_client_id`); the kick takes either.

Every response says how long the server took in a ``Server-Timing`` header: ``total``,
milliseconds from the request line read (for a connection's first request, from the
accept) to the response head going out, and for the API ``app``, from the application's
call to the body built. A client that measures much more than ``total`` waited before
the server read its request: the hub busy (a flush of many players), or the process
waiting for a core.

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
import socket
import time
import weakref
from typing import Any, Protocol

import gevent
import gevent.socket
from gevent.pywsgi import WSGIHandler, WSGIServer
from werkzeug.exceptions import Forbidden, HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

import neurtmp
from neurtmp.live.app import LiveApp, requested_track
from neurtmp.live.figures import ApiFigures
from neurtmp.names import host_port, redact_query, split_query

__all__ = ["FlvServing", "LiveHttp", "PlayCheck", "PlayDone", "serve_live_http", "serve_wsgi"]

log = logging.getLogger(__name__)

#: GET /APP/NAME.flv (the name may carry a query string).
_FLV_PATH = re.compile(r"^/(?P<app>[^/]+)/(?P<name>[^/]+)\.flv$")
_CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Headers": "Authorization",
         "Access-Control-Allow-Methods": "GET, DELETE, OPTIONS"}
#: The stats page and what it loads (neurtmp/live/static).
_STATIC = os.path.join(os.path.dirname(__file__), "static")
#: The HTTP status of a refused HTTP-FLV play, by the code its reason begins with.
_REFUSAL_STATUS = {"502": "502 Bad Gateway"}
_STATIC_FILES = {"index.html": "text/html; charset=utf-8", "stats.js": "text/javascript; charset=utf-8",
                 "mpegts.js": "text/javascript; charset=utf-8"}


class PlayCheck(Protocol):
    """Decides an HTTP-FLV play: (why it is refused, "" to allow; the name to play)."""

    def __call__(self, peer: str, client_id: str, app: str, name: str, url: str) -> tuple[str, str]: ...


class PlayDone(Protocol):
    """Told when an HTTP-FLV player leaves (the on_play_done hook:
    `neurtmp.access.AccessControl.notify_http_play_done`)."""

    def __call__(self, peer: str, client_id: str, app: str, name: str, url: str) -> Any: ...


class LiveHttp:
    """The WSGI application and the HTTP-FLV player registry of one server's live app.

    Args:
        app: the live app whose streams are served.
        server: the RTMP server (limits, flusher, connections, statistics).
        api_token: the bearer token the API wants; None: loopback clients only.
        play_check: asked before an HTTP-FLV play, as RTMP plays are (IP rules, play
            tokens, the on_play hook: `neurtmp.access.AccessControl.check_http_play`).
        play_done: told when an HTTP-FLV player leaves, as for RTMP players (the
            on_play_done hook: `neurtmp.access.AccessControl.notify_http_play_done`).
    """

    def __init__(self, app: LiveApp, server: neurtmp.Server, api_token: str | None = None,
                 play_check: PlayCheck | None = None, play_done: PlayDone | None = None) -> None:
        self.app = app
        self.server = server
        self.api_token = api_token or None
        self.play_check = play_check
        self.play_done = play_done
        #: HTTP-FLV players by client id.
        self.players: dict[int, neurtmp.FlvPlayer] = {}
        #: Bytes sent to HTTP-FLV players that have left.
        self._closed_flv_bytes_out = 0
        self.started = time.monotonic()
        self.figures = ApiFigures(self)
        self._sampler: gevent.Greenlet | None = None
        #: Seconds the hub ran a one-second timer late, last time.
        self.loop_lag = 0.0
        #: The longest a flush held the hub without a break over the last second.
        self.flush_hold = 0.0
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

    @property
    def flv_bytes_out(self) -> int:
        """Bytes sent to HTTP-FLV players, those that left included (never goes down)."""
        return self._closed_flv_bytes_out + sum(player.bytes_out for player in list(self.players.values()))

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Start the once-a-second sampler (byte counters for rates, the API's snapshots)."""
        if self._sampler is None:
            self._sampler = gevent.spawn(self._sample_forever)

    def stop(self) -> None:
        if self._sampler is not None:
            self._sampler.kill(block=False)
            self._sampler = None
        for player in list(self.players.values()):
            player.close("server shut down")

    def _sample_forever(self) -> None:
        flusher = self.server.flusher
        while True:
            try:
                self.figures.tick()
            except Exception:  # a figure that cannot be built must not stop the sampling
                log.exception("building the API's figures failed")
            if flusher is not None:
                self.flush_hold = flusher.take_longest_hold()
            before = time.monotonic()
            gevent.sleep(1.0)
            self.loop_lag = max(0.0, time.monotonic() - before - 1.0)

    def sample(self) -> None:
        """Sample the counters and rebuild the answers now (the sampler does it each second)."""
        self.figures.tick()

    # -- HTTP-FLV -----------------------------------------------------------------------

    def serve_flv(self, sock: gevent.socket.socket, peer: str, app: str, name: str,
                  websocket_key: str | None = None) -> str:
        """Play `app/name` as FLV on a socket whose request was read; returns the HTTP
        status sent. With `websocket_key` (the request asked to upgrade to a WebSocket),
        the FLV goes in binary WebSocket frames (WebSocket-FLV). Blocks until the client
        leaves or the player is closed; then the `play_done` callback is told."""
        if not self.app.serves(app) or not split_query(name)[0]:
            sock.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return "404 Not Found"
        upgrade = b""
        if websocket_key is not None:
            try:
                upgrade = neurtmp.FlvPlayer.websocket_response(websocket_key)
            except ValueError as exc:
                body = str(exc).encode()
                sock.sendall(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n"
                             + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
                return "400 Bad Request"
        client_id = self.server.new_client_id()
        key, _, query = name.partition("?")
        url = f"/{app}/{key}.flv" + (f"?{query}" if query else "")  # as asked for
        if self.play_check is not None:
            refusal, name = self.play_check(peer, str(client_id), app, name, url)
            if refusal:
                log.info("%s: HTTP-FLV play of %s/%s refused: %s", peer, app, redact_query(name), refusal)
                status = _REFUSAL_STATUS.get(refusal[:3], "403 Forbidden")
                body = refusal.encode()
                sock.sendall(f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nConnection: close\r\n".encode()
                             + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
                return status
        try:
            return self._play_flv(sock, peer, app, name, client_id, upgrade)
        finally:
            if self.play_done is not None:
                try:
                    self.play_done(peer, str(client_id), app, name, url)
                except Exception:
                    log.exception("%s/%s: telling that %s stopped playing failed", app, name, peer)

    def _play_flv(self, sock: gevent.socket.socket, peer: str, app: str, name: str, client_id: int,
                  websocket_upgrade: bytes = b"") -> str:
        head = ["HTTP/1.1 200 OK", "Content-Type: video/x-flv", "Cache-Control: no-cache, no-store",
                "Connection: close", *(f"{k}: {v}" for k, v in _CORS.items())]
        sock.sendall(websocket_upgrade or ("\r\n".join(head) + "\r\n\r\n").encode())
        websocket_accept = bool(websocket_upgrade)
        player = neurtmp.FlvPlayer(self.server, sock, peer, app, split_query(name)[0], player_id=client_id,
                                   websocket=websocket_accept)
        self.players[client_id] = player
        live = self.app.add_player(app, player.name, player, requested_track(name))
        log.info("%s: %s plays over %s (%s)", live.path, peer, "WebSocket-FLV" if websocket_accept else "HTTP-FLV",
                 "live" if live.is_live else "waiting")
        try:
            player.serve(sock)
        finally:
            self.players.pop(client_id, None)
            self._closed_flv_bytes_out += player.bytes_out  # totals never go down
            self.app.remove_player(live, player)
            log.info("%s: %s stopped playing over HTTP-FLV (%s)", live.path, peer, player.close_reason)
        return "101 Switching Protocols" if websocket_accept else "200 OK"

    # -- the API ------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        started = time.perf_counter()
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
        response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.2f}"
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

    def _metrics(self) -> Response:
        from neurtmp.live.metrics import metrics_text

        return Response(metrics_text(self), content_type="text/plain; version=0.0.4; charset=utf-8")

    def _server(self) -> Response:
        return _json_bytes(self.figures.body("server"))

    def summary(self) -> dict[str, Any]:
        """The server's figures (``/api/v1/server``), at most about a second old."""
        return self.figures.summary()

    def _streams(self) -> Response:
        return _json_bytes(self.figures.body("streams"))

    def describe_streams(self) -> list[dict[str, Any]]:
        """Every stream's figures (``/api/v1/streams``), at most about a second old."""
        return self.figures.streams()

    def _clients(self) -> Response:
        return _json_bytes(self.figures.body("clients"))

    def _kick(self, client_id: str) -> Response:
        number = int(client_id) if client_id.isdigit() else None
        player = self.players.get(number) if number is not None else None
        if player is not None:
            player.close("kicked through the API")
        else:
            connection = next((c for c in self.server.get_connections() if c.connection_id == number), None)
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


def _json_bytes(body: bytes) -> Response:
    return Response(body, content_type="application/json")


class FlvServing(Protocol):
    """A WSGI application that also plays HTTP-FLV (`LiveHttp`, or one that mounts it)."""

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any: ...

    def serve_flv(self, sock: gevent.socket.socket, peer: str, app: str, name: str,
                  websocket_key: str | None = None) -> str: ...


class _Server(WSGIServer):  # type: ignore[misc]
    """gevent's WSGI server with TCP_NODELAY on every accepted socket (gevent writes a
    response's head and body in two sends: with Nagle's algorithm the body waited for
    the client's delayed ACK, 40 ms, on a good share of answers), noting when each
    connection was accepted (for ``Server-Timing``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._accepted: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()

    def do_read(self) -> Any:
        accepted = super().do_read()
        if accepted:
            sock = accepted[0]
            self._accepted[sock] = time.perf_counter()
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass  # not TCP (a Unix socket)
        return accepted

    def accepted_at(self, sock: Any) -> float | None:
        """When `sock` was accepted (`time.perf_counter()`), once; None when unknown."""
        return self._accepted.pop(sock, None)


class _Handler(WSGIHandler):  # type: ignore[misc]
    """gevent's WSGI handler, but ``GET /APP/NAME.flv`` takes the socket over for an
    HTTP-FLV player (the outbox writes to it directly, as for RTMP players), when the
    application plays HTTP-FLV (has `serve_flv`); every response head carries
    ``Server-Timing: total;dur=MS`` (see the module docstring)."""

    def __init__(self, sock: Any, address: Any, server: Any, rfile: Any = None) -> None:
        super().__init__(sock, address, server, rfile)
        self._accepted = server.accepted_at(sock) if isinstance(server, _Server) else None
        self._request_started: float | None = None

    def read_requestline(self) -> str:
        line: str = super().read_requestline()
        accepted, self._accepted = self._accepted, None
        self._request_started = accepted if accepted is not None else time.perf_counter()
        return line

    def finalize_headers(self) -> None:
        super().finalize_headers()
        if self._request_started is not None:
            total = (time.perf_counter() - self._request_started) * 1000
            self.response_headers.append((b"Server-Timing", b"total;dur=%.2f" % total))

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
        upgrade = (self.headers.get("Upgrade") or "").lower() == "websocket"
        key = (self.headers.get("Sec-WebSocket-Key") or "") if upgrade else None
        self.status = application.serve_flv(self.socket, peer, match["app"], name, websocket_key=key)
        self.headers_sent = True


def serve_wsgi(app: Any, host: str, port: int) -> WSGIServer:
    """Start gevent's WSGI server for `app` (returns at once; `server.address` has the
    bound port); ``GET /APP/NAME.flv`` goes to `app.serve_flv` when it has one. The one
    HTTP server of `serve` and `ingest`."""
    server = _Server((host, port), app, handler_class=_Handler, log=None, error_log=log)
    server.start()
    return server


def serve_live_http(app: LiveHttp, host: str, port: int) -> WSGIServer:
    """Start the HTTP side of `serve` (returns at once; `server.address` has the bound port)."""
    server = serve_wsgi(app, host, port)
    app.start()
    return server
