"""WebSocket-FLV: ``ws://HOST/APP/NAME.flv`` upgrades to a WebSocket and carries the live
stream as FLV in binary frames (what mpegts.js and flv.js players open). The client here
is written from RFC 6455 in the test (a raw socket), not with the server's own framing,
and the FLV it reassembles is decoded with PyAV."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import socket
import struct
import time
from typing import Any

import av
import gevent
import numpy as np
import pytest

from ..conftest import url
from ..helpers import wait_for
from .test_http import http_stack, publish_av  # noqa: F401 (the fixture)

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def websocket_flv(port: int, path: str, seconds: float) -> tuple[bytes, list[bytes], int]:
    """Open ws://127.0.0.1:PORT/PATH, read binary frames for `seconds`, then send a
    masked close frame. Returns (the response head, the frames' payloads, bytes left
    unread after the close)."""
    key = base64.b64encode(os.urandom(16)).decode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    head, data = data.split(b"\r\n\r\n", 1)
    expected = base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest())
    assert b"101" in head.split(b"\r\n")[0] and b"Sec-WebSocket-Accept: " + expected in head, head
    frames: list[bytes] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        while True:  # every whole frame in `data`
            if len(data) < 2:
                break
            assert data[0] == 0x82, f"not a final binary frame: {data[0]:#x}"
            assert not data[1] & 0x80, "a server frame must not be masked"
            length, at = data[1] & 0x7F, 2
            if length == 126:
                length, at = struct.unpack(">H", data[2:4])[0], 4
            elif length == 127:
                length, at = struct.unpack(">Q", data[2:10])[0], 10
            if len(data) < at + length:
                break
            frames.append(data[at:at + length])
            data = data[at + length:]
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        if not chunk:
            break
        data += chunk
    mask = os.urandom(4)
    payload = struct.pack(">H", 1000)
    sock.sendall(bytes((0x88, 0x80 | len(payload))) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
    sock.settimeout(5)
    rest = 0
    try:
        while chunk := sock.recv(65536):  # the server ends the connection
            rest += len(chunk)
    except OSError:
        pass
    sock.close()
    return head, frames, rest


@pytest.mark.timeout(90)
def test_a_websocket_client_gets_the_stream_as_flv_that_decodes(http_stack: Any) -> None:  # noqa: F811
    server, app, http_app, base = http_stack
    publisher = publish_av(url(server, "live/cam"))
    try:
        wait_for(lambda: (s := app.registry.get("live", "cam")) is not None and s.is_live and len(s.gop) > 10, 20)
        port = int(base.rsplit(":", 1)[1])
        head, frames, _ = gevent.get_hub().threadpool.apply(websocket_flv, (port, "/live/cam.flv", 3.0))
        # each frame holds whole FLV pieces: the file header first, then one tag per frame
        assert frames[0][:3] == b"FLV" and len(frames[0]) == 13
        for frame in frames[1:]:
            assert frame[0] in (8, 9, 18), frame[:1]
            size = int.from_bytes(frame[1:4], "big")
            assert len(frame) == 11 + size + 4 and int.from_bytes(frame[-4:], "big") == 11 + size
        with av.open(io.BytesIO(b"".join(frames)), format="flv") as container:
            pictures = list(container.decode(video=0))
        assert len(pictures) >= 50  # ~3 s at 25 fps, from the GOP on
        rgb = pictures[-1].to_ndarray(format="rgb24").reshape(-1, 3).mean(axis=0)
        assert np.allclose(rgb, (0x33, 0x66, 0xCC), atol=12), rgb  # the published colour
        # the player left with a close frame: the server forgot it
        wait_for(lambda: not http_app.players, 10, "the WebSocket player is gone")
    finally:
        publisher.kill()
        publisher.wait(10)


@pytest.mark.timeout(30)
def test_a_bad_websocket_key_is_a_400(http_stack: Any) -> None:  # noqa: F811
    server, app, http_app, base = http_stack
    port = int(base.rsplit(":", 1)[1])

    def ask() -> bytes:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(b"GET /live/cam.flv HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Key: short\r\n\r\n")
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
        sock.close()
        return answer

    answer = gevent.get_hub().threadpool.apply(ask)
    assert answer.startswith(b"HTTP/1.1 400 Bad Request") and b"not 16 bytes" in answer
