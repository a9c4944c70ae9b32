"""Whatever bytes arrive, in whatever splits, the server protocol either parses them or
raises a RemoteProtocolError subclass: never IndexError, struct.error, UnicodeError..."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neurtmp.errors import RemoteProtocolError
from neurtmp.protocol import ClientProtocol, ECMAArray, ServerProtocol
from neurtmp.protocol.handshake import ClientHandshake


def _client_session() -> tuple[bytes, bytes]:
    """(handshake bytes, a realistic publish session after the handshake) from a client."""
    server = ServerProtocol()
    client = ClientProtocol(handshake=ClientHandshake(digest=False))
    handshake = client.data_to_send()
    server.receive_data(handshake)
    client.receive_data(server.data_to_send())
    c2 = client.data_to_send()
    client.connect("live", "rtmp://h/live", fourCcList=["hvc1"])
    client.set_chunk_size(100)
    client.create_stream()
    client.publish(1, "cam")
    client.send_data(1, "@setDataFrame", "onMetaData", ECMAArray(width=1.0, encoder="x"))
    client.send_video(1, 0, b"\x17\x00\x00\x00\x00\x01\x64\x00\x1f" + bytes(300))
    client.send_audio(1, 0xFFFFFF, b"\xaf\x00\x12\x10")
    client.call("custom", {"a": [1, 2]}, None)
    client.send_ping(7)
    return handshake + c2, client.data_to_send()


HANDSHAKE, SESSION = _client_session()


def _feed(data: bytes, cuts: list[int]) -> None:
    server = ServerProtocol(max_message_size=64 * 1024)
    points = sorted({c % (len(data) + 1) for c in cuts}) + [len(data)]
    last = 0
    try:
        for point in points:
            server.receive_data(data[last:point])
            server.data_to_send()
            last = point
    except RemoteProtocolError:
        pass


def test_the_unmodified_session_parses() -> None:
    server = ServerProtocol()
    events = server.receive_data(HANDSHAKE + SESSION)
    assert [type(e).__name__ for e in events][:3] == ["HandshakeCompleted", "ConnectRequested", "ChunkSizeChanged"]
    assert len(events) == 10


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4000), st.lists(st.integers(0, 10_000), max_size=8))
def test_random_bytes_after_a_valid_handshake(garbage: bytes, cuts: list[int]) -> None:
    _feed(HANDSHAKE + garbage, cuts)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3200), st.lists(st.integers(0, 10_000), max_size=4))
def test_random_bytes_from_the_first_byte(garbage: bytes, cuts: list[int]) -> None:
    _feed(b"\x03" + garbage, cuts)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.integers(0, len(SESSION) - 1), st.integers(0, 255)), min_size=1, max_size=6),
    st.lists(st.integers(0, 10_000), max_size=6),
)
def test_mutated_real_sessions(mutations: list[tuple[int, int]], cuts: list[int]) -> None:
    session = bytearray(SESSION)
    for position, value in mutations:
        session[position] = value
    _feed(HANDSHAKE + bytes(session), cuts)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, len(HANDSHAKE) + len(SESSION)), max_size=20))
def test_any_split_of_the_byte_stream_gives_the_same_events(cuts: list[int]) -> None:
    data = HANDSHAKE + SESSION
    expected = ServerProtocol().receive_data(data)
    server = ServerProtocol()
    events = []
    last = 0
    for point in sorted(set(cuts)) + [len(data)]:
        events += server.receive_data(data[last:point])
        last = point
    assert events == expected
