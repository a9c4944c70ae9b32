"""The client against servers that hang up early or are not RTMP servers, and URL parsing."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Iterator

import gevent
import gevent.socket
import pytest

import neurtmp
from neurtmp.client import parse_rtmp_url

HANDSHAKE_SIZE = 1536


def receive_exactly(conn: gevent.socket.socket, size: int) -> bytes:
    """`size` bytes from `conn` (fewer when the peer closes first)."""
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


@contextlib.contextmanager
def scripted_server(script: Callable[[gevent.socket.socket], None]) -> Iterator[str]:
    """A plain TCP server on 127.0.0.1 port 0 that runs `script` on its first connection,
    then closes it; yields an rtmp:// URL pointing at it."""
    listener = gevent.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            script(conn)
        except OSError:
            pass  # the client may reset the connection first
        finally:
            conn.close()

    server = gevent.spawn(serve)
    try:
        yield f"rtmp://127.0.0.1:{listener.getsockname()[1]}/live/cam"
    finally:
        server.kill()
        listener.close()


def close_at_once(conn: gevent.socket.socket) -> None:
    pass


def send_part_of_s0s1_then_close(conn: gevent.socket.socket) -> None:
    conn.sendall(b"\x03\x00\x00\x00")


def send_s0s1_then_close(conn: gevent.socket.socket) -> None:
    receive_exactly(conn, 1 + HANDSHAKE_SIZE)  # C0+C1
    conn.sendall(b"\x03" + bytes(HANDSHAKE_SIZE))  # a plain S1 (version 0), no S2


def complete_handshake_then_close(conn: gevent.socket.socket) -> None:
    c0c1 = receive_exactly(conn, 1 + HANDSHAKE_SIZE)
    conn.sendall(b"\x03" + bytes(HANDSHAKE_SIZE) + c0c1[1:])  # S0, plain S1, S2 echoing C1
    receive_exactly(conn, HANDSHAKE_SIZE)  # C2


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "script", [close_at_once, send_part_of_s0s1_then_close, send_s0s1_then_close],
    ids=["accept-and-close", "few-bytes", "s0s1-only"],
)
def test_server_closing_during_the_handshake_is_connection_closed(
        script: Callable[[gevent.socket.socket], None]) -> None:
    with scripted_server(script) as url:
        with pytest.raises(neurtmp.ConnectionClosed, match="closed the connection during the handshake"):
            neurtmp.connect(url, timeout=5)


@pytest.mark.timeout(30)
def test_server_closing_before_answering_connect_is_connection_closed() -> None:
    with scripted_server(complete_handshake_then_close) as url:
        with pytest.raises(neurtmp.ConnectionClosed, match="closed the connection before answering connect"):
            neurtmp.connect(url, timeout=5)


@pytest.mark.timeout(30)
def test_server_closing_before_answering_connect_with_open_is_connection_closed() -> None:
    """`Client.open()` (not only `connect()`) reports the early close and closes the client."""
    with scripted_server(complete_handshake_then_close) as url:
        client = neurtmp.Client(url, timeout=5)
        with pytest.raises(neurtmp.ConnectionClosed, match="before answering connect"):
            client.open()
        assert client.closed


@pytest.mark.timeout(30)
def test_a_server_that_is_not_rtmp_gives_a_handshake_error() -> None:
    def http_answer(conn: gevent.socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    with scripted_server(http_answer) as url:
        with pytest.raises(neurtmp.HandshakeError, match=r"handshake with 127\.0\.0\.1:\d+ failed: .*version 72"):
            neurtmp.connect(url, timeout=5)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("separately", [False, True], ids=["with-s2", "after-s2"])
def test_garbage_after_the_handshake_is_a_remote_protocol_error(separately: bool) -> None:
    def handshake_then_garbage(conn: gevent.socket.socket) -> None:
        c0c1 = receive_exactly(conn, 1 + HANDSHAKE_SIZE)
        handshake = b"\x03" + bytes(HANDSHAKE_SIZE) + c0c1[1:]
        garbage = b"\xc3" + bytes(64)  # a type 3 chunk header on a chunk stream never started
        if separately:
            conn.sendall(handshake)
            receive_exactly(conn, HANDSHAKE_SIZE)  # C2
            conn.sendall(garbage)
        else:
            conn.sendall(handshake + garbage)
        receive_exactly(conn, 4096)  # until the client gives up

    with scripted_server(handshake_then_garbage) as url:
        with pytest.raises(neurtmp.RemoteProtocolError):
            neurtmp.connect(url, timeout=5)


@pytest.mark.parametrize(
    ("url", "host", "port", "app", "stream"),
    [
        ("rtmp://h/live", "h", 1935, "live", ""),
        ("rtmp://h:1936/live/cam", "h", 1936, "live", "cam"),
        ("RTMP://h/live/cam?key=1", "h", 1935, "live", "cam?key=1"),
        ("rtmp://127.0.0.1/live?key=abc", "127.0.0.1", 1935, "live?key=abc", ""),
        ("rtmp://[::1]:1935/live/cam", "::1", 1935, "live", "cam"),
        ("rtmps://h/live/cam", "h", 443, "live", "cam"),
        ("rtmps://h:8443/live", "h", 8443, "live", ""),
    ],
)
def test_parse_rtmp_url_accepts(url: str, host: str, port: int, app: str, stream: str) -> None:
    parsed = parse_rtmp_url(url)
    assert (parsed.host, parsed.port, parsed.app, parsed.stream) == (host, port, app, stream)
    assert parsed.tls == url.startswith("rtmps") and parsed.tc_url.startswith(url.split("://")[0].lower() + "://")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://h/live/cam", "is not an rtmp:// URL"),
        ("rtmpe://h/live/cam", "not supported"),
        ("rtmp:/h/live/cam", "no '//' after 'rtmp:'"),
        ("rtmp//h/live/cam", "is not an rtmp:// URL"),
        ("live/cam", "is not an rtmp:// URL"),
        ("rtmp:///live/cam", "has no host"),
        ("rtmp://h:0/live", "bad port '0'"),
        ("rtmp://h:99999/live", "bad port '99999'"),
        ("rtmp://h:x/live", "bad port 'x'"),
        ("rtmp://[::1/live", "not a valid URL"),
        ("rtmp://::1/live", "IPv6 host in brackets"),
        ("rtmp://h", "no application name"),
        ("rtmp://h//cam", "no application name"),
        ("rtmp://h/live/cam ", "spaces"),
    ],
)
def test_parse_rtmp_url_rejects(url: str, message: str) -> None:
    with pytest.raises(neurtmp.ConfigError, match=message.replace("?", r"\?")) as caught:
        parse_rtmp_url(url)
    assert repr(url) in str(caught.value)
