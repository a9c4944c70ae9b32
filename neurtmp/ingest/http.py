"""The ingest app's HTTP side: playlists, segments, the page and the stream list.

A WSGI application (Werkzeug for routing, conditional and Range requests) served by
gevent's WSGI server in the RTMP server's process:

    /                                   the page (hls.js player, stream list; ?player=dash: dash.js)
    /static/<file>                      its files
    /streams                            JSON: the live streams, their rungs, bitrate, uptime
    /metrics                            Prometheus text exposition (when a monitor runs)
    /streams/<key>/master.m3u8          HLS master playlist (and media_N.m3u8 beside it)
    /streams/<key>/dash/manifest.mpd    DASH manifest
    /streams/<key>/<session>/<segment>  CMAF segments (chunk-N-NNNNN.m4s, rN/init-N.m4s)

Playlists and manifests are those of the key's newest session, spliced across its
transcoder restarts (`neurtmp.ingest.session`); they are not cached, segments are (a
segment's name is never reused). They list only segments written whole
(`neurtmp.ingest.whole`: a full disk leaves truncated ones behind); one with none to list
is answered 503. A segment not written whole is 404. Every answer allows any origin
(CORS), so players on other pages work.
"""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from gevent.pywsgi import WSGIServer
from werkzeug.exceptions import HTTPException, NotFound, ServiceUnavailable
from werkzeug.routing import Map, Rule
from werkzeug.security import safe_join
from werkzeug.utils import send_file
from werkzeug.wrappers import Request, Response

from neurtmp.live.http import LiveHttp, serve_wsgi
from neurtmp.names import host_port

__all__ = ["CONTENT_TYPES", "IngestHttp", "Playlists", "bound_address", "serve_http"]

STATIC_DIR = pathlib.Path(__file__).resolve().parent / "static"

#: Content types by file suffix.
CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".mpd": "application/dash+xml",
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
    ".m4a": "audio/mp4",
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
#: Files that change while a stream is live: never cached.
_LIVE_SUFFIXES = (".m3u8", ".mpd")


class Playlists(Protocol):
    """What the HTTP side serves of each key (`neurtmp.ingest.outputs.Outputs`)."""

    def listing(self, key: str, name: str) -> bytes | None:
        """A playlist or manifest by name; None: nothing to list yet. Raises LookupError."""

    def segment(self, key: str, path: str) -> str | None:
        """The file of a segment by its served path, when it is written whole."""


class IngestHttp:
    """The WSGI application.

    Args:
        outputs: the playlists and segments of each key (`IngestApp.outputs`).
        describe: the live streams, as `/streams` lists them.
    """

    def __init__(self, outputs: Playlists, describe: Callable[[], list[dict[str, Any]]],
                 live: LiveHttp | None = None) -> None:
        self.outputs = outputs
        self.describe = describe
        #: The live app's HTTP side, mounted under the ingest routes: HTTP-FLV of the
        #: published streams (/APP/KEY.flv) and the JSON API (/api/v1/...).
        self.live = live
        self.bytes_sent = 0
        #: Makes the Prometheus text for /metrics (set once the monitor runs).
        self.metrics: Callable[[], bytes] | None = None
        self.url_map = Map([
            Rule("/metrics", endpoint="metrics"),
            Rule("/", endpoint="page"),
            Rule("/static/<path:path>", endpoint="static"),
            Rule("/streams", endpoint="streams"),
            Rule("/streams/<key>/dash/<path:path>", endpoint="media"),
            Rule("/streams/<key>/<path:path>", endpoint="media"),
        ], strict_slashes=False)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        try:
            endpoint, values = self.url_map.bind_to_environ(environ).match()
            response = getattr(self, f"_{endpoint}")(request, **values)
        except NotFound as exc:
            if self.live is not None:
                return self.live(environ, start_response)  # type: ignore[no-any-return]
            response = exc.get_response(environ)
        except HTTPException as exc:
            response = exc.get_response(environ)
        response.headers["Access-Control-Allow-Origin"] = "*"
        response.headers["Access-Control-Expose-Headers"] = "Content-Length, Content-Range"
        length = response.calculate_content_length()
        if length:
            self.bytes_sent += length
        return response(environ, start_response)  # type: ignore[no-any-return]

    def _file(self, request: Request, folder: str, path: str) -> Response:
        full = safe_join(folder, path)
        if full is None or not os.path.isfile(full):
            raise NotFound()
        suffix = os.path.splitext(full)[1]
        response = send_file(full, request.environ, mimetype=CONTENT_TYPES.get(suffix), conditional=True,
                             max_age=None if suffix in _LIVE_SUFFIXES else 3600)
        if suffix in _LIVE_SUFFIXES:
            response.headers["Cache-Control"] = "no-cache, no-store"
        return response

    def _page(self, request: Request) -> Response:
        return self._file(request, str(STATIC_DIR), "index.html")

    def _static(self, request: Request, path: str) -> Response:
        return self._file(request, str(STATIC_DIR), path)

    def _streams(self, request: Request) -> Response:
        body = json.dumps({"streams": self.describe()})
        return Response(body, mimetype="application/json", headers={"Cache-Control": "no-cache"})

    def _metrics(self, request: Request) -> Response:
        if self.metrics is None:
            raise NotFound()
        return Response(self.metrics(), mimetype="text/plain; version=0.0.4")

    def _media(self, request: Request, key: str, path: str) -> Response:
        suffix = os.path.splitext(path)[1]
        if suffix in _LIVE_SUFFIXES:
            try:
                body = self.outputs.listing(key, path)
            except LookupError:
                raise NotFound() from None
            if body is None:
                raise ServiceUnavailable("no whole segments to list yet", retry_after=1)
            return Response(body, content_type=CONTENT_TYPES[suffix], headers={"Cache-Control": "no-cache, no-store"})
        full = self.outputs.segment(key, path) if suffix == ".m4s" else None
        if full is None:
            raise NotFound()
        return self._file(request, os.path.dirname(full), os.path.basename(full))


    def serve_flv(self, sock: Any, peer: str, app: str, name: str, websocket_key: str | None = None) -> str:
        """HTTP-FLV (or WebSocket-FLV) of a published stream, by the mounted live side
        (404 without one)."""
        if self.live is None:
            sock.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return "404 Not Found"
        return self.live.serve_flv(sock, peer, app, name, websocket_key=websocket_key)


def serve_http(app: IngestHttp, host: str, port: int) -> WSGIServer:
    """Start the HTTP server (returns at once; `server.address` has the bound port): the
    same server as `neurtmp serve --http` (`neurtmp.live.http.serve_wsgi`)."""
    server = serve_wsgi(app, host, port)
    if app.live is not None:
        app.live.start()
    return server


def bound_address(server: WSGIServer) -> str:
    """ "HOST:PORT" ("[V6]:PORT") the HTTP server is bound to, as the socket says."""
    host, port = server.socket.getsockname()[:2]
    return host_port(host, port)
