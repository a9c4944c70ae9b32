"""LiveStream and Registry as units, with fake players (no sockets)."""

from __future__ import annotations

from typing import Any

import pytest

import neurtmp
from neurtmp import DataPacket, MessageType, Packet
from neurtmp.live import LiveStream, Registry
from neurtmp.live.gop import GopCache
from neurtmp.protocol.packet import RtmpChunks

HEADER = b"\x17\x00\x00\x00\x00\x01\x64\x00\x1f"
AUDIO_HEADER = b"\xaf\x00\x12\x10"


def key(n: int) -> bytes:
    return b"\x17\x01\x00\x00\x00" + bytes([n])


def inter(n: int) -> bytes:
    return b"\x27\x01\x00\x00\x00" + bytes([n])


class FakePlayer:
    """What LiveStream uses of a framework Stream: queue_packet, send_status, closed, and
    what a FanOut asks (a fake cannot follow a shared log, so it gets every message queued)."""

    receive_audio = receive_video = True
    out_chunk_size = 4096
    wire_format = RtmpChunks(4096, 1)

    def __init__(self, stream_id: int = 1, full: bool = False) -> None:
        self.group: Any = None
        self.stream_id = stream_id
        self.full = full
        self.closed = False
        self.wires: list[bytes] = []
        self.statuses: list[str] = []

    def follow(self, log: Any) -> bool:
        return False

    def unfollow(self, log: Any) -> None:
        pass

    def queue_packet(self, packet: Packet) -> bool | None:
        if self.closed:
            return None
        if self.full:
            return False
        self.wires.append(packet.wire(self.out_chunk_size, self.stream_id))
        return True

    def send_fast_start(self, packets: list[Packet]) -> int:
        for packet in packets:  # a fast start is queued whole, slow player or not
            if not self.closed:
                self.wires.append(packet.wire(self.out_chunk_size, self.stream_id))
        return 0

    def send_status(self, code: str, description: str = "", level: str = "status", **extra: Any) -> None:
        self.statuses.append(code)

    def received(self) -> list[tuple[int, int, bytes]]:
        """(type, timestamp, payload) of every message queued, decoded from its wire bytes."""
        from neurtmp.protocol import ChunkDecoder

        decoder = ChunkDecoder()
        decoder.set_chunk_size(FakePlayer.out_chunk_size)
        decoder.feed(b"".join(self.wires))
        out = []
        while (message := decoder.next_message()) is not None:
            out.append((message.type_id, message.timestamp, message.payload))
        return out


def video(ts: int, payload: bytes) -> Packet:
    return Packet(MessageType.VIDEO, ts, payload)


def test_late_joiner_gets_metadata_headers_then_the_gop_from_its_key_frame() -> None:
    live = LiveStream("live", "cam", GopCache())
    live.start_publishing(object(), "publisher")
    metadata = DataPacket(0, "onMetaData", [{"width": 320.0}])
    for packet in (metadata, video(0, HEADER), Packet(MessageType.AUDIO, 0, AUDIO_HEADER), video(0, key(0)),
                   video(33, inter(1)), video(66, key(2)), Packet(MessageType.AUDIO, 70, b"\xaf\x01a"),
                   video(99, inter(3))):
        live.on_packet(packet)
    player = FakePlayer()
    live.add_player(player)  # type: ignore[arg-type]
    got = player.received()
    assert [payload for _, _, payload in got] == [
        metadata.payload, HEADER, AUDIO_HEADER, key(2), b"\xaf\x01a", inter(3)]
    assert [ts for _, ts, _ in got][3:] == [66, 70, 99]
    assert live.player_first_key_ms(player) is not None  # type: ignore[arg-type]
    live.on_packet(video(132, inter(4)))
    assert player.received()[-1][2] == inter(4)


def test_a_player_waiting_for_a_publisher_starts_at_the_first_key_frame() -> None:
    live = LiveStream("live", "cam", GopCache())
    player = FakePlayer()
    live.add_player(player)  # type: ignore[arg-type]
    live.start_publishing(object(), "publisher")
    assert player.statuses == [neurtmp.StatusCode.PLAY_PUBLISH_NOTIFY]
    for packet in (video(0, HEADER), video(10, inter(9)), video(20, key(1)), video(30, inter(2))):
        live.on_packet(packet)
    assert [payload for _, _, payload in player.received()] == [HEADER, key(1), inter(2)]


def test_republish_continues_the_timeline_and_players_are_told() -> None:
    live = LiveStream("live", "cam", GopCache())
    player = FakePlayer()
    first, second = object(), object()
    live.add_player(player)  # type: ignore[arg-type]
    live.start_publishing(first, "a")
    live.on_packet(video(0, key(0)))
    live.on_packet(video(5000, inter(1)))
    assert not live.stop_publishing(second)  # not the publisher: nothing happens
    assert live.stop_publishing(first)
    live.start_publishing(second, "b")
    live.on_packet(video(0, key(2)))  # the new encoder starts again at 0
    live.on_packet(video(40, inter(3)))
    assert [ts for _, ts, _ in player.received()] == [0, 5000, 5040, 5080]
    assert player.statuses == [neurtmp.StatusCode.PLAY_PUBLISH_NOTIFY, neurtmp.StatusCode.PLAY_UNPUBLISH_NOTIFY,
                               neurtmp.StatusCode.PLAY_PUBLISH_NOTIFY]


def test_slow_players_drops_are_counted_and_others_get_everything() -> None:
    live = LiveStream("live", "cam", GopCache())
    healthy, slow = FakePlayer(), FakePlayer(full=True)
    live.start_publishing(object(), "a")
    live.on_packet(video(0, key(0)))
    live.add_player(healthy)  # type: ignore[arg-type]
    live.add_player(slow)  # type: ignore[arg-type]
    for n in range(1, 6):
        live.on_packet(video(n * 33, inter(n)))
    assert live.dropped == 5
    assert len(healthy.received()) == 6
    live.remove_player(slow)  # type: ignore[arg-type]
    assert live.players() == [healthy]


class Displaced:
    def __init__(self) -> None:
        self.displaced = 0

    def displace(self) -> None:
        self.displaced += 1


def test_registry_refuses_a_second_publisher_unless_takeover() -> None:
    registry = Registry(takeover=False)
    first, second = Displaced(), Displaced()
    live = registry.publish("live", "cam?key=1", first, "a")
    assert live is not None and live.publisher is first
    assert registry.publish("live", "cam", second, "b") is None
    assert registry.get("live?x=1", "cam") is live  # query strings are not part of the name

    takeover = Registry(takeover=True)
    live = takeover.publish("live", "cam", first, "a")
    assert takeover.publish("live", "cam", second, "b") is live
    assert live is not None and live.publisher is second and first.displaced == 1


def test_registry_forgets_a_name_nobody_uses() -> None:
    registry = Registry()
    source = Displaced()
    live = registry.publish("live", "cam", source)
    assert live is not None
    player = FakePlayer()
    live.add_player(player)  # type: ignore[arg-type]
    registry.unpublish(live, source)
    assert registry.get("live", "cam") is live  # a player still waits on it
    live.remove_player(player)  # type: ignore[arg-type]
    registry.forget_if_idle(live)
    assert registry.get("live", "cam") is None and registry.streams() == []


def test_a_draining_publisher_is_succeeded_at_the_successors_first_key_frame() -> None:
    registry = Registry()
    old, new, third = object(), object(), object()
    live = registry.publish("live", "cam", old, "old")
    assert live is not None
    player = FakePlayer()
    live.add_player(player)  # type: ignore[arg-type]
    for packet in (video(0, HEADER), video(0, key(0)), video(33, inter(1))):
        live.on_packet(packet)
    assert registry.publish("live", "cam", new, "new") is None  # not draining: refused
    assert registry.drain(lambda publisher: publisher is old) == 1 and live.primary_draining
    assert registry.publish("live", "cam", new, "new") is live and live.successor is new
    assert registry.publish("live", "cam", third, "third") is None  # one successor at a time
    # The old publisher goes on until the successor's first key frame; the successor's
    # frames before it are not delivered.
    live.on_packet(video(66, inter(2)), "primary")
    live.on_packet(video(60, HEADER), "successor")
    live.on_packet(video(70, inter(7)), "successor")
    live.on_packet(video(99, key(8)), "successor")
    assert live.publisher is new and live.successor is None and live.handovers == 1
    live.on_packet(video(132, inter(3)), "primary")  # (the app no longer routes the old one's media here)
    live.on_packet(video(132, inter(9)), "primary")
    got = player.received()
    assert [payload for _, _, payload in got] == [HEADER, key(0), inter(1), inter(2), HEADER, key(8), inter(3),
                                                  inter(9)]
    stamps = [ts for _, ts, _ in got]
    assert stamps == sorted(stamps) and stamps[5] - stamps[3] <= 100  # the timeline goes on
    assert neurtmp.StatusCode.PLAY_UNPUBLISH_NOTIFY not in player.statuses
    registry.unpublish(live, old)  # the old one's end is not the stream's
    assert live.is_live and live.publisher is new


def test_a_draining_publisher_that_leaves_first_hands_over_to_its_waiting_successor() -> None:
    live = LiveStream("live", "cam", GopCache())
    old, new = object(), object()
    player = FakePlayer()
    live.add_player(player)  # type: ignore[arg-type]
    live.start_publishing(old, "old")
    live.on_packet(video(0, HEADER))
    live.on_packet(video(0, key(0)))
    live.drain_publisher()
    live.start_successor(new, "new")
    live.on_packet(video(480, HEADER), "successor")
    assert live.stop_publishing(old)
    assert live.publisher is new and live.is_live
    live.on_packet(video(500, inter(5)))  # before its first key frame: held back
    live.on_packet(video(533, key(6)))
    assert [payload for _, _, payload in player.received()] == [HEADER, key(0), HEADER, key(6)]
    assert player.statuses == [neurtmp.StatusCode.PLAY_PUBLISH_NOTIFY]


def test_only_a_trusted_connection_may_announce_its_publish_as_draining() -> None:
    """`neurtmp.drain` (from a worker being replaced) lets the next publisher of a name
    succeed the draining one; from anyone else it would let a stream be taken over, so an
    ordinary listener refuses it."""
    from neurtmp.live import LiveApp, LiveOptions
    from neurtmp.names import DRAIN_CALL

    from ..conftest import url
    from ..helpers import wait_for

    for trusted in (False, True):
        app = LiveApp(LiveOptions(reconnect_grace=0))
        server = neurtmp.Factory().create_server()
        app.install(server)
        server.start("127.0.0.1:0", trusted=trusted)
        try:
            owner = neurtmp.connect(url(server, "live"), timeout=5)
            owner.publish("cam")
            wait_for(lambda app=app: app.registry.get("live", "cam") is not None, 5)
            live = app.registry.get("live", "cam")
            assert live is not None
            newcomer = neurtmp.connect(url(server, "live"), timeout=5)
            if trusted:
                assert owner.call(DRAIN_CALL, timeout=5) == 1  # one publish announced as draining
                newcomer.publish("cam")  # accepted: it succeeds the draining one at its first key frame
                assert live.successor is not None
            else:
                with pytest.raises(neurtmp.CallError):
                    owner.call(DRAIN_CALL, timeout=5)
                assert not live.primary_draining
                with pytest.raises(neurtmp.NeurtmpError):
                    newcomer.publish("cam")  # still refused: the name is taken
            newcomer.close()
            owner.close()
        finally:
            server.shutdown(grace=0)
