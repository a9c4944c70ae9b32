"""Helpers for access tests: a live server behind `AccessControl`, an HTTP hook server,
and ffmpeg clients whose outcome is read from their exit status and stderr."""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

import gevent
import gevent.event
import gevent.pywsgi
from gevent import subprocess

import neurtmp
from neurtmp.access import AccessControl, AccessOptions
from neurtmp.live import LiveApp, LiveOptions

from ..live.helpers import ffmpeg_play_raw, ffmpeg_publish

#: A published test picture's size (ffmpeg_publish's default source).
WIDTH, HEIGHT = 160, 120
FRAME_BYTES = WIDTH * HEIGHT * 3


def access_server(make_server: Any, options: AccessOptions, live_options: LiveOptions | None = None,
                  relays: Callable[[neurtmp.Server], Any] | None = None) -> tuple[neurtmp.Server, LiveApp]:
    """A live server on loopback with `options`' checks installed before the live app
    (`relays(server)`: what relays the hooks' rtmp:// redirects)."""
    server = make_server()
    AccessControl(options, relays(server) if relays is not None else None).install(server)
    app = LiveApp(live_options or LiveOptions(reconnect_grace=0))  # streams end when their publisher leaves
    app.install(server)
    return server, app


def refused(process: subprocess.Popen, timeout: float = 20) -> str:
    """Wait for an ffmpeg client that should be refused; its stderr (it must fail)."""
    status = process.wait(timeout)
    err = process.stderr.read().decode(errors="replace")
    assert status != 0, f"ffmpeg was not refused: {err}"
    return err


def publish_refused(target: str, timeout: float = 20) -> str:
    return refused(ffmpeg_publish(target, 5), timeout)


def play_refused(target: str, timeout: float = 20) -> str:
    return refused(ffmpeg_play_raw(target, WIDTH, HEIGHT), timeout)


class FrameCounter:
    """Counts the raw frames an `ffmpeg_play_raw` player writes, as they come, and keeps
    the last whole one."""

    def __init__(self, target: str) -> None:
        self.process = ffmpeg_play_raw(target, WIDTH, HEIGHT)
        self.bytes = 0
        #: The last whole rgb24 frame decoded (b"" before the first).
        self.last = b""
        self._reader = gevent.spawn(self._read)

    def _read(self) -> None:
        assert self.process.stdout is not None
        pending = b""
        while chunk := self.process.stdout.read1(65536):  # type: ignore[attr-defined]
            self.bytes += len(chunk)
            pending += chunk
            whole = len(pending) // FRAME_BYTES * FRAME_BYTES
            if whole:
                self.last = pending[whole - FRAME_BYTES:whole]
                pending = pending[whole:]

    @property
    def frames(self) -> int:
        return self.bytes // FRAME_BYTES

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        self._reader.join(5)


#: What the hook server answers: (status line, headers); may block (cooperatively).
Answer = Callable[[dict[str, str]], tuple[str, list[tuple[str, str]]]]


def allow(form: dict[str, str]) -> tuple[str, list[tuple[str, str]]]:
    return "200 OK", []


class HookServer:
    """A WSGI app on gevent's server (port 0) recording each form POSTed to it."""

    def __init__(self, answer: Answer = allow) -> None:
        self.answer = answer
        self.calls: list[dict[str, str]] = []
        #: Set to free hooks held open by a hanging answer (at the end of a test).
        self.release = gevent.event.Event()
        self._server = gevent.pywsgi.WSGIServer(("127.0.0.1", 0), self._app, log=None)
        self._server.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self._server.server_port}{path}"

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        size = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(size).decode()
        form = dict(urllib.parse.parse_qsl(body, keep_blank_values=True))
        form["_content_type"] = environ.get("CONTENT_TYPE", "")
        self.calls.append(form)
        status, headers = self.answer(form)
        start_response(status, [("Content-Length", "0"), *headers])
        return [b""]

    def seen(self, call: str) -> list[dict[str, str]]:
        return [form for form in self.calls if form.get("call") == call]

    def hang(self) -> tuple[str, list[tuple[str, str]]]:
        """Hold the request open until `release` is set (a hook that does not answer)."""
        self.release.wait(30)
        return "200 OK", []

    def stop(self) -> None:
        self.release.set()
        self._server.stop(timeout=1)


def elapsed(since: float) -> float:
    return time.monotonic() - since
