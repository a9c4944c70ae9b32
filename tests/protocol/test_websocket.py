"""WebSocket framing for WebSocket-FLV: the handshake key, server frames, client frames
(masked, any split), and bad client frames refused with RemoteProtocolError."""

from __future__ import annotations

import os
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neurtmp.errors import RemoteProtocolError
from neurtmp.protocol import websocket as ws


def client_frame(opcode: int, payload: bytes, mask: bytes = b"\x01\x82\x73\xf4", final: bool = True) -> bytes:
    """A client frame, masked as RFC 6455 requires (built here independently of the reader)."""
    length = len(payload)
    first = bytes(((0x80 if final else 0) | opcode,))
    if length < 126:
        header = first + bytes((0x80 | length,))
    elif length < 65536:
        header = first + bytes((0x80 | 126,)) + length.to_bytes(2, "big")
    else:
        header = first + bytes((0x80 | 127,)) + length.to_bytes(8, "big")
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def test_the_accept_key_of_rfc_6455s_example() -> None:
    assert ws.accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    for bad in ("", "not base64!", "c2hvcnQ="):
        with pytest.raises(ValueError):
            ws.accept_key(bad)


@pytest.mark.parametrize(("length", "header"), [
    (0, b"\x82\x00"), (125, b"\x82\x7d"), (126, b"\x82\x7e\x00\x7e"), (65535, b"\x82\x7e\xff\xff"),
    (65536, b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),
])
def test_server_frames_are_final_unmasked_with_the_shortest_length(length: int, header: bytes) -> None:
    payload = os.urandom(length)
    assert ws.binary_frame(payload) == header + payload


def test_a_close_frame_has_its_code_and_a_reason_cut_to_fit() -> None:
    frame = ws.close_frame(1001, "x" * 300)
    assert frame[:4] == b"\x88\x7d\x03\xe9" and len(frame) == 2 + 125


def test_client_frames_in_any_split() -> None:
    data = (client_frame(ws.PING, b"hi") + client_frame(ws.BINARY, os.urandom(300))
            + client_frame(ws.CLOSE, b"\x03\xe8bye"))
    for cut in (1, 3, 7, 100):
        reader = ws.FrameReader()
        frames = [f for at in range(0, len(data), cut) for f in reader.receive(data[at:at + cut])]
        assert [f.opcode for f in frames] == [ws.PING, ws.BINARY, ws.CLOSE]
        assert frames[0].payload == b"hi" and frames[2].payload == b"\x03\xe8bye"
        assert len(frames[1].payload) == 300


def test_the_mask_is_undone() -> None:
    payload = bytes(range(256)) * 3
    (frame,) = ws.FrameReader().receive(client_frame(ws.BINARY, payload, mask=b"\xde\xad\xbe\xef"))
    assert frame.payload == payload


@pytest.mark.parametrize(("data", "fragment"), [
    (ws.binary_frame(b"unmasked"), "unmasked"),
    (b"\xc2\x80" + bytes(4), "reserved bit"),
    (client_frame(ws.PING, bytes(126)), "control frame"),
    (client_frame(ws.CLOSE, b"", final=False), "control frame"),
    (b"\x82\xff" + (1 << 40).to_bytes(8, "big"), "bytes (at most"),
])
def test_bad_client_frames_are_refused(data: bytes, fragment: str) -> None:
    with pytest.raises(RemoteProtocolError, match=re.escape(fragment)):
        ws.FrameReader().receive(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.lists(st.integers(0, 200), max_size=5))
def test_any_bytes_parse_or_raise_a_protocol_error(data: bytes, cuts: list[int]) -> None:
    reader = ws.FrameReader(max_payload=1000)
    points = [0, *sorted({c % (len(data) + 1) for c in cuts}), len(data)]
    try:
        for start, end in zip(points, points[1:], strict=False):
            reader.receive(data[start:end])
    except RemoteProtocolError:
        pass
