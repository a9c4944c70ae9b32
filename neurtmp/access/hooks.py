"""HTTP hooks: a form POST to a URL, answered by its status (nginx-rtmp's on_* calls).

`post_form` is a small HTTP/1.1 client over gevent's sockets (cooperative without
monkey-patching: a slow hook delays only the greenlet that waits for it, i.e. its own
client). It reads the status line and the headers (for Location) and nothing more.
`notify` fires one off in its own greenlet, for the ``*_done`` calls nothing waits for.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass

import gevent
import gevent.socket
import gevent.ssl

import neurtmp
from neurtmp.names import redact_query

__all__ = ["DEFAULT_HOOK_TIMEOUT", "HookAnswer", "notify", "post_form", "shown_url"]

log = logging.getLogger(__name__)

#: Seconds a hook has to answer before the call counts as failed (nginx-rtmp's
#: notify_timeout is 30 s; a client waiting that long for its publish is a stuck client).
DEFAULT_HOOK_TIMEOUT = 5.0

#: Most bytes of a hook's status line and headers read (the body is not read).
_MAX_HEAD_BYTES = 64 * 1024

Fields = Iterable[tuple[str, str]]


@dataclass(frozen=True)
class HookAnswer:
    """What a hook answered: its HTTP status and Location, or why there is no answer."""

    status: int = 0
    location: str = ""
    #: Why the hook gave no answer ("" when it did): timed out, unreachable, bad answer.
    error: str = ""

    @property
    def ok(self) -> bool:
        """A 2xx answer."""
        return 200 <= self.status < 300

    @property
    def redirect(self) -> bool:
        """A 3xx answer."""
        return 300 <= self.status < 400


def shown_url(url: str) -> str:
    """`url` fit for a log line: secret query values replaced."""
    return redact_query(url)


def _request(url: str, body: bytes) -> tuple[str, int, bool, bytes]:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http:// or https:// URL: {shown_url(url)}")
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = parts.netloc.rpartition("@")[2]
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: neurtmp/{neurtmp.__version__}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    return parts.hostname, port, tls, head.encode("latin-1") + body


def _read_head(sock: gevent.socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
        if len(data) > _MAX_HEAD_BYTES:
            raise ValueError("headers too long")
    return data.partition(b"\r\n\r\n")[0]


def _parse_head(head: bytes) -> HookAnswer:
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code = rest.partition(" ")[0]
    if not version.startswith("HTTP/") or not code.isdigit() or len(code) != 3:
        return HookAnswer(error=f"bad answer {lines[0][:80]!r}")
    location = ""
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "location":
            location = value.strip()
    return HookAnswer(int(code), location)


def post_form(url: str, fields: Fields, timeout: float = DEFAULT_HOOK_TIMEOUT) -> HookAnswer:
    """POST `fields` as application/x-www-form-urlencoded to `url`; the answer's status
    and Location, or (status 0) why none came within `timeout` seconds. Never raises for
    network trouble: a hook that cannot be asked is an answer too."""
    try:
        host, port, tls, request = _request(url, urllib.parse.urlencode(list(fields)).encode())
    except ValueError as exc:
        return HookAnswer(error=str(exc))
    sock: gevent.socket.socket | None = None
    try:
        with gevent.Timeout(timeout):
            sock = gevent.socket.create_connection((host, port))
            if tls:
                sock = gevent.ssl.create_default_context().wrap_socket(sock, server_hostname=host)
            sock.sendall(request)
            head = _read_head(sock)
    except gevent.Timeout:
        return HookAnswer(error=f"no answer within {timeout:g} s")
    except (OSError, ValueError) as exc:
        return HookAnswer(error=f"unreachable ({getattr(exc, 'strerror', None) or exc})")
    finally:
        if sock is not None:
            sock.close()
    if not head:
        return HookAnswer(error="closed without an answer")
    return _parse_head(head)


def notify(url: str, fields: Fields, timeout: float = DEFAULT_HOOK_TIMEOUT) -> gevent.Greenlet:
    """POST `fields` to `url` in a greenlet of its own (fire and forget: an ``on_*_done``
    call); a failure is logged. Returns the greenlet (join it to wait)."""
    fields = list(fields)

    def run() -> None:
        answer = post_form(url, fields, timeout)
        call = dict(fields).get("call", "hook")
        if answer.error:
            log.warning("on_%s hook %s failed: %s", call, shown_url(url), answer.error)
        elif not answer.ok:
            log.info("on_%s hook %s answered %d", call, shown_url(url), answer.status)

    return gevent.spawn(run)
