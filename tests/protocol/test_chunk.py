"""The chunk layer: byte vectors per header format, extended timestamps, chunk stream id
boundaries, abort, limits, and the chunk -> de-chunk round trip for any chunk size."""

from __future__ import annotations

import struct
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neurtmp.errors import ChunkError, LimitExceeded
from neurtmp.protocol.chunk import ChunkDecoder, ChunkEncoder, basic_header, encode_message
from neurtmp.protocol.message import Message


def decode_all(data: bytes, chunk_size: int = 128, **limits: int) -> list[Message]:
    decoder = ChunkDecoder(**limits)
    decoder.chunk_size = chunk_size
    decoder.feed(data)
    out = []
    while (message := decoder.next_message()) is not None:
        out.append(message)
    return out


def test_fmt0_single_chunk_vector() -> None:
    data = bytes.fromhex("03" "0003e8" "000005" "14" "01000000") + b"hello"
    [message] = decode_all(data)
    assert message == Message(20, 1000, 1, b"hello", 3)


def test_spec_example_fmt0_fmt2_fmt3_fmt3_audio_timestamps() -> None:
    # Spec 5.3.2.1: four 32-byte audio messages 20 ms apart on one chunk stream.
    payload = bytes(range(32))
    data = (
        bytes.fromhex("04" "0003e8" "000020" "08" "39300000") + payload
        + bytes.fromhex("84" "000014") + payload
        + b"\xc4" + payload
        + b"\xc4" + payload
    )
    messages = decode_all(data)
    assert [m.timestamp for m in messages] == [1000, 1020, 1040, 1060]
    assert all(m.message_stream_id == 12345 and m.type_id == 8 and m.payload == payload for m in messages)


def test_spec_example_message_split_across_continuation_chunks() -> None:
    # Spec 5.3.2.2: a 307-byte video message at chunk size 128 -> fmt 0 + two fmt 3 chunks.
    payload = bytes(i % 251 for i in range(307))
    data = (
        bytes.fromhex("04" "0003e8" "000133" "09" "39300000") + payload[:128]
        + b"\xc4" + payload[128:256]
        + b"\xc4" + payload[256:]
    )
    [message] = decode_all(data)
    assert message.timestamp == 1000 and message.payload == payload


def test_fmt1_changes_length_and_type_keeps_stream_id() -> None:
    data = (
        bytes.fromhex("05" "000064" "000002" "12" "07000000") + b"ab"
        + bytes.fromhex("45" "00000a" "000003" "09") + b"xyz"
    )
    first, second = decode_all(data)
    assert (second.timestamp, second.type_id, second.message_stream_id, second.payload) == (110, 9, 7, b"xyz")


def test_extended_timestamp_repeated_on_fmt3_continuations() -> None:
    timestamp = 0x01020304
    payload = bytes(300)
    ext = struct.pack(">I", timestamp)
    data = (
        bytes.fromhex("06" "ffffff" "00012c" "09" "01000000") + ext + payload[:128]
        + b"\xc6" + ext + payload[128:256]
        + b"\xc6" + ext + payload[256:]
    )
    assert encode_message(9, timestamp, 1, payload, 6, 128) == data
    [message] = decode_all(data)
    assert message.timestamp == timestamp and message.payload == payload


def test_extended_timestamp_omitted_on_continuations_is_tolerated() -> None:
    timestamp = 0xFFFFFF
    payload = bytes(range(200))
    data = (
        bytes.fromhex("06" "ffffff" "0000c8" "09" "01000000") + struct.pack(">I", timestamp) + payload[:128]
        + b"\xc6" + payload[128:]
    )
    [message] = decode_all(data)
    assert message.timestamp == timestamp and message.payload == payload


def test_extended_delta_on_fmt1_and_fmt3_new_message() -> None:
    delta = 0x01000000
    data = (
        bytes.fromhex("07" "000010" "000001" "09" "01000000") + b"a"
        + bytes.fromhex("47" "ffffff" "000001" "09") + struct.pack(">I", delta) + b"b"
        + b"\xc7" + struct.pack(">I", delta) + b"c"
    )
    messages = decode_all(data)
    assert [m.timestamp for m in messages] == [0x10, 0x10 + delta, 0x10 + 2 * delta]


def test_timestamps_wrap_at_32_bits() -> None:
    encoder = ChunkEncoder()
    data = b"".join(encoder.encode(Message(9, ts, 1, b"x"), 6) for ts in (0xFFFFFFF0, 0x10, 0x30))
    assert [m.timestamp for m in decode_all(data)] == [0xFFFFFFF0, 0x10, 0x30]


@pytest.mark.parametrize(
    ("csid", "header"),
    [
        (2, b"\x02"),
        (63, b"\x3f"),
        (64, b"\x00\x00"),
        (319, b"\x00\xff"),
        (320, b"\x01\x00\x01"),
        (65599, b"\x01\xff\xff"),
    ],
)
def test_chunk_stream_id_boundaries(csid: int, header: bytes) -> None:
    assert basic_header(0, csid) == header
    data = encode_message(18, 5, 1, b"data", csid, 128)
    assert data.startswith(header)
    [message] = decode_all(data)
    assert message.chunk_stream_id == csid and message.payload == b"data"


def test_messages_interleaved_across_chunk_streams() -> None:
    video = bytes(200)
    audio = b"\xaf\x01" + bytes(8)
    v = encode_message(9, 40, 1, video, 6, 128)
    a = encode_message(8, 41, 1, audio, 4, 128)
    first_chunk = 1 + 11 + 128
    data = v[:first_chunk] + a + v[first_chunk:]
    messages = decode_all(data)
    assert [(m.type_id, m.payload) for m in messages] == [(8, audio), (9, video)]


def test_abort_drops_the_partial_message() -> None:
    decoder = ChunkDecoder()
    v = encode_message(9, 0, 1, bytes(300), 6, 128)
    decoder.feed(v[: 12 + 128])
    assert decoder.next_message() is None
    decoder.abort(6)
    assert decoder.pending_bytes == 0
    decoder.feed(encode_message(9, 33, 1, b"new", 6, 128))
    message = decoder.next_message()
    assert message is not None and message.payload == b"new" and message.timestamp == 33


def test_fmt2_on_a_new_chunk_stream_is_refused() -> None:
    with pytest.raises(ChunkError, match="chunk stream 5 starts with a fmt 2"):
        decode_all(bytes.fromhex("85" "000001"))


def test_new_header_before_message_complete_is_refused() -> None:
    v = encode_message(9, 0, 1, bytes(300), 6, 128)
    with pytest.raises(ChunkError, match="before its message was complete"):
        decode_all(v[: 12 + 128] + v[:12])


def test_too_many_chunk_streams_is_refused() -> None:
    data = b"".join(encode_message(9, 0, 1, b"x", csid, 128) for csid in range(2, 20))
    with pytest.raises(LimitExceeded) as info:
        decode_all(data, max_chunk_streams=8)
    assert info.value.limit == "max_chunk_streams"


def test_giant_declared_message_is_refused_before_allocating() -> None:
    """A peer sets a 64 MiB chunk size and declares the largest length the 24-bit field
    allows (16 MiB - 1), then streams the body: refused at the header, nothing allocated."""
    decoder = ChunkDecoder(max_message_size=4 * 1024 * 1024)
    decoder.set_chunk_size(64 * 1024 * 1024)
    tracemalloc.start()
    try:
        decoder.feed(bytes.fromhex("06" "000000" "ffffff" "09" "01000000") + bytes(1024))
        with pytest.raises(LimitExceeded) as info:
            decoder.next_message()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.limit == "max_message_size"
    assert "16777215-byte message" in info.value.reason
    assert peak < 256 * 1024


def test_giant_chunk_size_streams_body_without_buffering_the_chunk() -> None:
    decoder = ChunkDecoder()
    decoder.set_chunk_size(64 * 1024 * 1024)
    payload = bytes(range(256)) * 4096  # 1 MiB in one chunk
    data = encode_message(9, 0, 1, payload, 6, 64 * 1024 * 1024)
    pieces = [data[i : i + 4096] for i in range(0, len(data), 4096)]
    for piece in pieces[:-1]:
        decoder.feed(piece)
        assert decoder.next_message() is None
        assert decoder.pending_bytes <= len(payload)
    decoder.feed(pieces[-1])
    message = decoder.next_message()
    assert message is not None and message.payload == payload


def test_pending_bytes_across_chunk_streams_are_bounded() -> None:
    data = b"".join(encode_message(9, 0, 1, bytes(1000), csid, 128)[: 12 + 128] for csid in range(3, 10))
    with pytest.raises(LimitExceeded) as info:
        decode_all(data, max_pending_bytes=500)
    assert info.value.limit == "max_pending_bytes"


def test_set_chunk_size_zero_is_refused() -> None:
    with pytest.raises(ChunkError):
        ChunkDecoder().set_chunk_size(0)


def test_encoder_uses_fmt1_fmt2_fmt3_when_it_can() -> None:
    encoder = ChunkEncoder()
    first = encoder.encode(Message(8, 0, 1, b"aa"), 4)
    second = encoder.encode(Message(8, 20, 1, b"bb"), 4)  # same shape -> fmt 2
    third = encoder.encode(Message(8, 40, 1, b"cc"), 4)  # same delta -> fmt 3
    fourth = encoder.encode(Message(8, 60, 1, b"ddd"), 4)  # new length -> fmt 1
    assert [d[0] >> 6 for d in (first, second, third, fourth)] == [0, 2, 3, 1]
    assert len(third) == 1 + 2
    assert [m.timestamp for m in decode_all(first + second + third + fourth)] == [0, 20, 40, 60]


# -- round trip ---------------------------------------------------------------------------

_timestamps = st.one_of(
    st.integers(0, 0xFFFFFFFF),
    st.integers(0xFFFFF0, 0x1000010),
    st.integers(0, 1000),
    st.just(0xFFFFFFFF),
)
_messages = st.builds(
    lambda csid, type_id, ts, msid, payload: (csid, Message(type_id, ts, msid, payload)),
    st.sampled_from([2, 3, 4, 5, 6, 63, 64, 319, 320, 65599]),
    st.sampled_from([8, 9, 18, 20]),
    _timestamps,
    st.sampled_from([0, 1, 2, 0xFFFFFFFF]),
    st.binary(max_size=700),
)


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, last = [], 0
    for point in points + [len(data)]:
        pieces.append(data[last:point])
        last = point
    return pieces


@settings(max_examples=250, deadline=None)
@given(
    messages=st.lists(_messages, min_size=1, max_size=12),
    chunk_size=st.one_of(st.integers(1, 300), st.integers(1, 65536)),
    compress=st.booleans(),
    cuts=st.lists(st.integers(0, 1 << 20), max_size=12),
)
def test_chunking_then_dechunking_returns_the_messages(
    messages: list[tuple[int, Message]], chunk_size: int, compress: bool, cuts: list[int]
) -> None:
    encoder = ChunkEncoder(compress=compress)
    encoder.set_chunk_size(chunk_size)
    data = b"".join(encoder.encode(message, csid) for csid, message in messages)
    decoder = ChunkDecoder()
    decoder.set_chunk_size(chunk_size)
    received = []
    for piece in _split(data, cuts):
        decoder.feed(piece)
        while (message := decoder.next_message()) is not None:
            received.append(message)
    assert [(m.chunk_stream_id, m.type_id, m.timestamp, m.message_stream_id, m.payload) for m in received] == [
        (csid, m.type_id, m.timestamp, m.message_stream_id, m.payload) for csid, m in messages
    ]
    assert decoder.pending_bytes == 0
