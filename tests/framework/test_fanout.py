"""FanOut and its shared WireLog, over socket pairs: players are outboxes, no server."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import gevent.socket
import pytest

from neurtmp import FanOut, MessageType, Packet
from neurtmp._outbox import CRITICAL, Flusher, Outbox
from neurtmp._wirelog import WireLog
from neurtmp.protocol import ChunkDecoder
from neurtmp.protocol.packet import RtmpChunks

from ..helpers import wait_for

CHUNK_SIZE = 4096
SEQUENCE_HEADER = b"\x17\x00\x00\x00\x00\x01\x64\x00\x1f"


class Player:
    """What a FanOut uses of a Stream, over an outbox on one end of a socket pair."""

    receive_audio = receive_video = True
    out_chunk_size = CHUNK_SIZE

    def __init__(self, outbox: Outbox, client_end: gevent.socket.socket, stream_id: int = 1) -> None:
        self.outbox = outbox
        self.client_end = client_end
        self.stream_id = stream_id
        self.group: FanOut | None = None
        self.data = bytearray()

    @property
    def wire_format(self) -> RtmpChunks:
        return RtmpChunks(self.out_chunk_size, self.stream_id)

    def follow(self, log: Any) -> bool:
        return self.outbox.follow(log)

    def unfollow(self, log: Any) -> None:
        if self.outbox.following is log:
            self.outbox.unfollow()

    def queue_packet(self, packet: Packet) -> bool:
        return self.outbox.put(packet.wire(self.out_chunk_size, self.stream_id), packet.priority)

    def read_available(self) -> None:
        self.client_end.setblocking(False)
        try:
            while chunk := self.client_end.recv(1 << 20):
                self.data += chunk
        except BlockingIOError:
            pass

    def messages(self) -> list[tuple[int, int, bytes]]:
        """(type, timestamp, payload) of every whole message read so far."""
        decoder = ChunkDecoder()
        decoder.set_chunk_size(CHUNK_SIZE)
        decoder.feed(bytes(self.data))
        out = []
        while (message := decoder.next_message()) is not None:
            out.append((message.type_id, message.timestamp, message.payload))
        return out


@pytest.fixture
def make_player() -> Iterator[Callable[..., Player]]:
    made: list[tuple[Outbox, gevent.socket.socket, gevent.socket.socket]] = []
    flushers: list[Flusher] = []

    def make(flusher: Flusher | None, small: bool = False, stream_id: int = 1, **options: Any) -> Player:
        server_end, client_end = gevent.socket.socketpair()
        if small:  # the kernel takes little: partial writes, and a reader that stops is behind at once
            server_end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            client_end.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        options = {"high_water": 64 * 1024, "soft_limit": 256 * 1024, "hard_limit": 16 << 20, **options}
        outbox = Outbox(server_end, flusher=flusher, **options)
        if flusher is not None:
            flushers.append(flusher)
        made.append((outbox, server_end, client_end))
        return Player(outbox, client_end, stream_id)

    yield make
    for flusher in flushers:
        flusher.stop()
    for outbox, server_end, client_end in made:
        outbox.close()
        server_end.close()
        client_end.close()


def audio(ts: int, size: int = 300) -> Packet:
    return Packet(MessageType.AUDIO, ts, b"\xaf\x01" + bytes([ts % 251]) * size)


def video(ts: int, key: bool, size: int = 3000) -> Packet:
    return Packet(MessageType.VIDEO, ts, (b"\x17\x01" if key else b"\x27\x01") + bytes([ts % 251]) * size)


def stream_of(count: int, gop: int = 10) -> list[Packet]:
    """Video (a key frame every `gop`) and audio, interleaved, in timestamp order."""
    packets = []
    for n in range(count):
        packets.append(video(n * 33, key=n % gop == 0, size=1000 + 37 * n % 5000))
        packets.append(audio(n * 33 + 10))
    return packets


def triples(packets: list[Packet]) -> list[tuple[int, int, bytes]]:
    return [(p.type_id, p.timestamp, p.payload) for p in packets]


def test_every_player_gets_every_message_once_in_order_from_one_shared_log(
        make_player: Callable[..., Player], monkeypatch: Any) -> None:
    flusher = Flusher(0.01)
    players = [make_player(flusher) for _ in range(3)]
    group = FanOut()
    for player in players:
        group.add(player)
    writes: dict[int, int] = {}
    real_writev = os.writev

    def counting_writev(fd: int, buffers: list[Any]) -> int:
        writes[fd] = writes.get(fd, 0) + 1
        return real_writev(fd, buffers)

    monkeypatch.setattr(os, "writev", counting_writev)
    packets = stream_of(60)
    reply = b"\x02\x00\x00\x00\x00\x00\x04\x05\x00\x00\x00\x00\x00\x00\x10\x00"  # a window ack size
    flushes = 0
    for n, packet in enumerate(packets):
        group.send(packet)
        if n == 41:  # urgent bytes for one player go out after what the log already holds for it
            players[1].outbox.put(reply, CRITICAL, urgent=True)
        if n % 8 == 7:
            flushes += 1
            wait_for(lambda: all(p.outbox.queued_bytes == 0 for p in players), 5, "a flush")
    wait_for(lambda: all(p.outbox.queued_bytes == 0 for p in players), 5, "the last flush")
    for player in players:
        player.read_available()
    assert triples(packets) == players[0].messages() == players[2].messages()
    with_reply = players[1].messages()
    assert with_reply[:42] + with_reply[43:] == triples(packets)
    assert with_reply[42] == (5, 0, b"\x00\x00\x10\x00")
    # Each player was sent with about one writev per flush, not one per message.
    assert all(count <= flushes + 3 for count in writes.values()), (writes, flushes)
    assert all(p.outbox.media_messages == len(packets) for p in players)
    [log] = [p.outbox.following for p in players[:1]]
    assert log is not None and log.head == len(packets)  # one append per message for all three
    assert len(log) == 0  # everyone caught up: nothing kept


def test_partial_writes_resume_mid_message(make_player: Callable[..., Player]) -> None:
    flusher = Flusher(0.005)
    small, large = make_player(flusher, small=True), make_player(flusher)
    group = FanOut()
    group.add(small)
    group.add(large)
    packets = stream_of(40, gop=1000)  # one key frame: nothing may be dropped
    received = bytearray()

    def read_slowly() -> None:
        small.client_end.setblocking(True)
        while chunk := small.client_end.recv(1500):
            received.extend(chunk)
            gevent.sleep(0.001)

    reader = gevent.spawn(read_slowly)
    for packet in packets:
        group.send(packet)
        gevent.sleep(0.002)
    total = sum(len(p.wire(CHUNK_SIZE, 1)) for p in packets)
    wait_for(lambda: len(received) >= total, 20, f"{total} bytes read")
    reader.kill()
    small.data = received
    assert small.messages() == triples(packets)
    assert small.outbox.dropped_messages == 0
    large.read_available()
    assert large.messages() == triples(packets)


def test_a_player_that_falls_behind_skips_to_the_newest_key_frame(make_player: Callable[..., Player]) -> None:
    flusher = Flusher(0.005)
    healthy = make_player(flusher)
    stuck = make_player(flusher, small=True, high_water=8 * 1024, soft_limit=32 * 1024)
    group = FanOut()
    group.add(healthy)
    group.add(stuck)
    header = Packet(MessageType.VIDEO, 0, SEQUENCE_HEADER)
    packets = [header, *stream_of(50, gop=10)]
    for packet in packets:
        group.send(packet)
        gevent.sleep(0.006)  # a flush between messages: the stuck one falls behind step by step
        healthy.read_available()
    wait_for(lambda: healthy.outbox.queued_bytes == 0, 5)
    healthy.read_available()
    assert healthy.messages() == triples(packets)

    stuck.client_end.setblocking(True)
    expected_left = stuck.outbox.queued_bytes
    while expected_left or stuck.outbox.queued_bytes:
        stuck.client_end.settimeout(5)
        stuck.data += stuck.client_end.recv(1 << 20)
        expected_left = stuck.outbox.queued_bytes
        gevent.sleep(0.01)
    stuck.read_available()
    got = stuck.messages()
    sent = triples(packets)
    assert stuck.outbox.dropped_messages > 0 and group.dropped == stuck.outbox.dropped_messages
    # Every audio message and the sequence header arrived, in order; video is what was
    # sent minus the drops, and after every gap the next video is a key frame.
    assert [m for m in got if m[0] == MessageType.AUDIO] == [m for m in sent if m[0] == MessageType.AUDIO]
    assert got[0] == sent[0]
    sent_video = [m for m in sent if m[0] == MessageType.VIDEO]
    got_video = [m for m in got if m[0] == MessageType.VIDEO]
    assert len(sent_video) - len(got_video) == stuck.outbox.dropped_messages
    positions = [sent_video.index(m) for m in got_video]
    assert positions == sorted(positions)
    for before, after in zip(positions, positions[1:], strict=False):
        if after != before + 1:
            assert sent_video[after][2][:1] == b"\x17", "resumed on an inter frame"
    assert got[-1] == sent[-1]  # caught up with the live edge


def test_the_hard_limit_closes_only_that_player(make_player: Callable[..., Player]) -> None:
    flusher = Flusher(0.005)
    reasons: list[str] = []
    healthy = make_player(flusher)
    stuck = make_player(flusher, small=True, high_water=4096, soft_limit=8192, hard_limit=64 * 1024,
                        on_overflow=reasons.append)
    group = FanOut()
    group.add(healthy)
    group.add(stuck)
    packets = [audio(n * 10, size=4000) for n in range(60)]  # audio is never dropped
    for packet in packets:
        group.send(packet)
        gevent.sleep(0.006)
        healthy.read_available()
    wait_for(lambda: bool(reasons), 5, "the stuck player closed")
    assert reasons == ["send queue passed 65536 bytes (the client is not reading)"]
    assert stuck.outbox.following is None  # it left the log
    wait_for(lambda: healthy.outbox.queued_bytes == 0, 5)
    healthy.read_available()
    assert healthy.messages() == triples(packets)
    assert healthy.outbox.following is not None and healthy.outbox.following.readers == 1


def test_players_that_turn_video_off_are_served_on_their_own(make_player: Callable[..., Player]) -> None:
    flusher = Flusher(0.005)
    shared, audio_only = make_player(flusher), make_player(flusher, stream_id=3)
    group = FanOut()
    group.add(shared)
    group.add(audio_only)
    assert audio_only.outbox.following is not None and audio_only.outbox.following is not shared.outbox.following
    first, second = stream_of(4), stream_of(8)[8:]
    for packet in first:
        group.send(packet)
    audio_only.receive_video = False
    group.regroup(audio_only)
    assert audio_only.outbox.following is None
    for packet in second:
        group.send(packet)
    wait_for(lambda: shared.outbox.queued_bytes == audio_only.outbox.queued_bytes == 0, 5)
    shared.read_available()
    audio_only.read_available()
    assert shared.messages() == triples(first + second)
    # queue_packet of the fake takes video too; the real Stream skips it (receive_video)
    assert audio_only.messages()[:len(first)] == triples(first)
    group.remove(audio_only)
    assert len(group) == 1 and audio_only.group is None


def test_without_a_flusher_every_message_goes_at_once(make_player: Callable[..., Player]) -> None:
    player = make_player(None)
    group = FanOut()
    group.add(player)
    packet = audio(0)
    group.send(packet)
    assert player.outbox.bytes_sent == len(packet.wire(CHUNK_SIZE, 1))  # sent inside send()
    player.read_available()
    assert player.messages() == triples([packet])


def test_removed_players_still_get_what_was_sent_before(make_player: Callable[..., Player]) -> None:
    player = make_player(Flusher(60))  # no flush will come: the bytes wait in the log
    group = FanOut()
    group.add(player)
    packets = stream_of(3)
    for packet in packets:
        group.send(packet)
    assert player.outbox.bytes_sent == 0 and player.outbox.queued_bytes > 0
    group.remove(player)  # unfollowing moves them to the player's own queue, which sends
    wait_for(lambda: player.outbox.queued_bytes == 0, 5)
    player.read_available()
    assert player.messages() == triples(packets)
    assert player.outbox.following is None and len(group) == 0


def test_a_stuck_player_of_a_video_only_stream_is_closed_after_the_send_timeout(
        make_player: Callable[..., Player]) -> None:
    flusher = Flusher(0.005)
    reasons: list[str] = []
    healthy = make_player(flusher)
    stuck = make_player(flusher, small=True, high_water=4096, soft_limit=16 * 1024, hard_limit=1 << 20,
                        send_timeout=0.3, on_overflow=reasons.append)
    group = FanOut()
    group.add(healthy)
    group.add(stuck)
    n = peak = 0
    while not reasons:  # 100 fps video with a key frame every 10: skips keep the stuck one bounded
        assert n < 1000, f"not closed after {n} frames: {stuck.outbox.queued_bytes} queued"
        group.send(video(n * 10, key=n % 10 == 0, size=2000))
        peak = max(peak, stuck.outbox.queued_bytes)
        n += 1
        gevent.sleep(0.01)
        healthy.read_available()
    assert reasons == ["nothing could be sent for 0.3 s (the client is not reading)"]
    assert stuck.outbox.dropped_messages > 0 and peak < 16 * 1024 + 10 * 2100  # bounded by the skips
    assert stuck.outbox.following is None
    group.send(video(n * 10, key=True))
    wait_for(lambda: healthy.outbox.queued_bytes == 0, 5)
    healthy.read_available()
    assert len(healthy.messages()) == n + 1  # the healthy player got every frame


def test_many_followers_dropped_in_one_flush_while_another_joins(make_player: Callable[..., Player]) -> None:
    """The group, not the log's readers, decides when a log goes: stuck players that all
    fail in one flush and leave one by one never delete a log a newcomer reads."""
    flusher = Flusher(0.005)
    reasons: list[str] = []
    stuck = [make_player(flusher, small=True, high_water=4096, soft_limit=8192, hard_limit=32 * 1024,
                         on_overflow=reasons.append) for _ in range(6)]
    group = FanOut()
    for player in stuck:
        group.add(player)
    n = 0
    while len(reasons) < len(stuck):  # audio is never skipped: they pass the hard limit together
        assert n < 500, f"only {len(reasons)} of {len(stuck)} closed"
        group.send(audio(n * 10, size=4000))
        n += 1
        gevent.sleep(0.006)
    assert all(player.outbox.following is None for player in stuck)  # every reader left the log
    group.remove(stuck[0])  # the server tears the closed players down one at a time...
    newcomer = make_player(flusher)
    group.add(newcomer)  # ...and a player joins in between
    for player in stuck[1:]:
        group.remove(player)
    assert len(group) == 1 and group.logs == 1
    packets = stream_of(5)
    for packet in packets:
        group.send(packet)
    wait_for(lambda: newcomer.outbox.queued_bytes == 0 and newcomer.outbox.bytes_sent > 0, 5)
    newcomer.read_available()
    assert newcomer.messages() == triples(packets)
    group.remove(newcomer)
    assert group.logs == 0 and len(group) == 0


def test_leaving_is_constant_time_per_player(make_player: Callable[..., Player]) -> None:
    """Membership is kept in dicts: removing players in any order leaves the others intact."""
    flusher = Flusher(0.005)
    players = [make_player(flusher) for _ in range(20)]
    group = FanOut()
    for player in players:
        group.add(player)
    for player in players[::2]:
        group.remove(player)
    assert len(group) == 10 and all(player in group for player in players[1::2])
    packets = stream_of(3)
    for packet in packets:
        group.send(packet)
    wait_for(lambda: all(p.outbox.queued_bytes == 0 for p in players[1::2]), 5)
    for player in players:
        player.read_available()
    assert all(p.messages() == triples(packets) for p in players[1::2])
    assert all(p.messages() == [] for p in players[::2])


class _Exploding:
    def __init__(self) -> None:
        self.calls = 0

    def flush_scheduled(self) -> None:
        self.calls += 1
        raise RuntimeError("boom")


def test_a_flush_item_that_raises_does_not_strand_the_others(
        make_player: Callable[..., Player], caplog: pytest.LogCaptureFixture) -> None:
    flusher = Flusher(0.005)
    bad = _Exploding()
    player = make_player(flusher)
    flusher.schedule(bad)
    player.outbox.put(audio(0).wire(CHUNK_SIZE, 1), CRITICAL)  # scheduled after the bad item
    wait_for(lambda: player.outbox.bytes_sent > 0, 5, "the good item was flushed")
    assert bad.calls == 1
    assert [r for r in caplog.records if "flushing" in r.getMessage() and r.exc_info]
    packet = audio(10)  # the flusher keeps working afterwards
    player.outbox.put(packet.wire(CHUNK_SIZE, 1), CRITICAL)
    wait_for(lambda: player.outbox.queued_bytes == 0, 5)
    player.read_available()
    assert player.messages() == triples([audio(0), packet])


class _BusyReader:
    """A log reader whose flush takes `seconds` of CPU (a writev to a slow kernel)."""

    def __init__(self, flushed: list[_BusyReader], seconds: float, on_flush: Callable[[], None] | None = None) -> None:
        self.flushed = flushed
        self.seconds = seconds
        self.on_flush = on_flush

    def flush_log(self) -> None:
        started = time.perf_counter()
        while time.perf_counter() - started < self.seconds:
            pass
        self.flushed.append(self)
        if self.on_flush is not None:
            self.on_flush()


def test_a_long_flush_lets_the_hub_serve_io_between_readers() -> None:
    """A tick over many readers lets the hub run every `max_hold`: I/O that arrives during
    it is served before the tick ends, a reader that leaves meanwhile is skipped, and
    every other reader is flushed once."""
    flusher = Flusher(0.001, max_hold=0.001)
    log = WireLog(RtmpChunks(CHUNK_SIZE, 1))
    flushed: list[_BusyReader] = []
    ours, theirs = gevent.socket.socketpair()
    readers = [_BusyReader(flushed, 0.0002) for _ in range(100)]  # 20 ms of flushing
    readers[0].on_flush = lambda: theirs.send(b"!")  # I/O that arrives during the tick
    served_after: list[int] = []

    def serve() -> None:
        ours.recv(1)
        served_after.append(len(flushed))
        log.detach(readers[-1])  # a reader leaves mid-tick

    try:
        for reader in readers:
            log.attach(reader, flusher)
        server = gevent.spawn(serve)
        log.append(b"message", CRITICAL)  # the flusher's next tick flushes the log
        wait_for(lambda: len(flushed) >= 99, 5, "the tick")
        server.join(1)
        assert served_after and 0 < served_after[0] < 99, served_after  # served mid-tick, not after
        assert readers[-1] not in flushed and sorted(map(id, flushed)) == sorted(map(id, readers[:-1]))
        assert 0 < flusher.take_longest_hold() < 1 and flusher.take_longest_hold() == 0
    finally:
        flusher.stop()
        ours.close()
        theirs.close()


def test_a_greenlet_that_never_sleeps_does_not_starve_a_long_flush() -> None:
    """The turns a tick gives the hub always come back, even beside a greenlet that
    yields with sleep(0) in a loop (one waiting for a quiet hub would wait forever)."""
    flusher = Flusher(0.001, max_hold=0.0005)
    log = WireLog(RtmpChunks(CHUNK_SIZE, 1))
    flushed: list[_BusyReader] = []
    for _ in range(50):
        log.attach(_BusyReader(flushed, 0.0002), flusher)
    turns = 0

    def busy() -> None:
        nonlocal turns
        while True:
            turns += 1
            gevent.sleep(0)

    neighbour = gevent.spawn(busy)
    try:
        log.append(b"message", CRITICAL)
        wait_for(lambda: len(flushed) == 50, 10, "the tick, beside a busy greenlet")
        assert turns > 0
    finally:
        neighbour.kill()
        flusher.stop()
