"""The outbox alone: a gevent socket pair stands for the client; no server, no RTMP."""

from __future__ import annotations

import fcntl
import io
import os
import random
import socket
import struct
import termios
import time
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import gevent.socket
import pytest

from neurtmp._outbox import AUDIO, CRITICAL, VIDEO_INTER, VIDEO_KEY, Flusher, Outbox, kernel_unsent_bytes

from ..helpers import assert_stays, wait_for

Pair = tuple[gevent.socket.socket, gevent.socket.socket]

#: A flush interval no test waits for: media put with it stays queued.
NEVER = 60.0


@pytest.fixture
def pair() -> Iterator[Pair]:
    """(server end the outbox writes to, client end the test reads from)."""
    server_end, client_end = gevent.socket.socketpair()
    yield server_end, client_end
    server_end.close()
    client_end.close()


class Overflows(list[str]):
    """An `on_overflow` callback that records every reason it is given."""

    def __call__(self, reason: str) -> None:
        self.append(reason)


@pytest.fixture
def make_outbox() -> Iterator[Callable[..., Outbox]]:
    """Outboxes with generous bounds unless told; all closed (and flushers stopped) afterwards."""
    made: list[Outbox] = []
    flushers: list[Flusher] = []

    def make(sock: gevent.socket.socket, **options: Any) -> Outbox:
        options = {"high_water": 64 * 1024, "soft_limit": 256 * 1024, "hard_limit": 16 << 20, **options}
        if options.get("flusher") is not None:
            flushers.append(options["flusher"])
        outbox = Outbox(sock, **options)
        made.append(outbox)
        return outbox

    yield make
    for flusher in flushers:
        flusher.stop()
    for outbox in made:
        outbox.close()


def message(name: str, size: int) -> bytes:
    """`size` bytes that start with `name`, so a misplaced message shows in a diff."""
    return (name.encode() + b"." * size)[:size]


def available(sock: gevent.socket.socket) -> int:
    """Bytes waiting to be read on `sock` (FIONREAD), without reading them."""
    raw = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\x00\x00\x00\x00")
    return int(struct.unpack("i", raw)[0])


def read_exactly(sock: gevent.socket.socket, size: int, timeout: float = 5.0) -> bytes:
    """Read `size` bytes from `sock`, failing if they do not all arrive within `timeout`."""
    data = bytearray()
    deadline = time.monotonic() + timeout
    while len(data) < size:
        sock.settimeout(max(0.001, deadline - time.monotonic()))
        try:
            chunk = sock.recv(size - len(data))
        except TimeoutError:
            raise AssertionError(f"only {len(data)} of {size} bytes arrived within {timeout:g} s") from None
        assert chunk, f"the socket closed after {len(data)} of {size} bytes"
        data += chunk
    return bytes(data)


def small_buffers(pair: Pair, size: int = 4096) -> None:
    """Make the kernel's buffers between the two ends small, so they fill fast."""
    server_end, client_end = pair
    server_end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
    client_end.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)


@pytest.mark.parametrize("interval", [None, 0.005], ids=["at-once", "merged-writes"])
def test_bytes_arrive_in_order_and_complete(pair: Pair, make_outbox: Callable[..., Outbox],
                                            interval: float | None) -> None:
    small_buffers(pair)  # partial writes: the rest of a message must follow, in order
    server_end, client_end = pair
    sent_log = io.BytesIO()
    outbox = make_outbox(server_end, flusher=Flusher(interval) if interval else None, io_log=sent_log)
    rng = random.Random(7)
    messages = [rng.randbytes(rng.randint(1, 20_000)) for _ in range(200)]
    urgent = [i % 7 == 0 for i in range(len(messages))]
    expected = b"".join(messages)
    received = bytearray()

    def read() -> None:
        while len(received) < len(expected) and (chunk := client_end.recv(65536)):
            received.extend(chunk)

    reader = gevent.spawn(read)
    for i, (data, is_urgent) in enumerate(zip(messages, urgent, strict=True)):
        assert outbox.put(data, AUDIO if i % 2 else CRITICAL, urgent=is_urgent)
        if i % 10 == 9:
            gevent.sleep(0)  # let the writer, flusher and reader interleave with the producer
    wait_for(lambda: len(received) >= len(expected), 10, f"{len(expected)} bytes read back")
    reader.join(timeout=1)
    assert bytes(received) == expected
    assert sent_log.getvalue() == expected  # the io log saw exactly what was sent
    assert outbox.bytes_sent == len(expected) and outbox.queued_bytes == 0
    assert outbox.media_messages == urgent.count(False)
    assert outbox.dropped_messages == 0 and outbox.dropped_bytes == 0


def test_drop_policy_above_the_soft_limit(pair: Pair, make_outbox: Callable[..., Outbox]) -> None:
    server_end, client_end = pair
    overflows = Overflows()
    # With a flush interval, puts without a yield in between all queue up: the queue's
    # size at each put is exactly the sum of the messages kept before it.
    outbox = make_outbox(server_end, soft_limit=1000, flusher=Flusher(0.01), on_overflow=overflows)
    key1, inter1, inter2 = message("key1", 600), message("inter1", 300), message("inter2", 200)
    inter3, audio1, header = message("inter3", 100), message("audio1", 400), message("header", 50)
    inter4, key2, audio2 = message("inter4", 100), message("key2", 700), message("audio2", 400)
    puts = [
        (key1, VIDEO_KEY, True),  # queued 0 -> 600
        (inter1, VIDEO_INTER, True),  # 600 -> 900
        (inter2, VIDEO_INTER, True),  # 900 is not above 1000: kept -> 1100
        (inter3, VIDEO_INTER, False),  # above the soft limit: dropped, video skipped from now on
        (audio1, AUDIO, True),  # audio is kept -> 1500
        (header, CRITICAL, True),  # so are sequence headers, metadata, commands -> 1550
        (inter4, VIDEO_INTER, False),  # still skipping
        (key2, VIDEO_KEY, False),  # a key frame that does not fit is dropped too
        (audio2, AUDIO, True),  # -> 1950
    ]
    assert [outbox.put(data, priority) for data, priority, _ in puts] == [kept for _, _, kept in puts]
    kept = [data for data, _, is_kept in puts if is_kept]
    assert outbox.queued_bytes == sum(map(len, kept)) == 1950
    assert read_exactly(client_end, 1950) == b"".join(kept)
    assert (outbox.dropped_messages, outbox.dropped_bytes) == (3, 100 + 100 + 700)
    assert outbox.media_messages == 6

    # The queue is empty now, but inter frames are still dropped until a key frame fits.
    wait_for(lambda: outbox.queued_bytes == 0)
    inter5, audio3, key3, inter6 = message("inter5", 100), message("audio3", 80), message("key3", 300), message(
        "inter6", 120)
    assert not outbox.put(inter5, VIDEO_INTER)
    assert outbox.put(audio3, AUDIO)
    assert outbox.put(key3, VIDEO_KEY)  # fits: video flows again
    assert outbox.put(inter6, VIDEO_INTER)
    assert read_exactly(client_end, 80 + 300 + 120) == audio3 + key3 + inter6
    assert (outbox.dropped_messages, outbox.dropped_bytes) == (4, 1000)
    assert outbox.media_messages == 9
    assert outbox.bytes_sent == 1950 + 500
    assert overflows == []


def test_hard_limit_closes_once(pair: Pair, make_outbox: Callable[..., Outbox]) -> None:
    server_end, _ = pair
    overflows = Overflows()
    outbox = make_outbox(server_end, high_water=500, soft_limit=1000, hard_limit=2000, flusher=Flusher(NEVER),
                         on_overflow=overflows)
    assert outbox.put(message("header", 1500), CRITICAL)
    assert outbox.put(message("audio1", 400), AUDIO)  # 1900: still under the hard limit
    assert not outbox.put(message("video", 5000), VIDEO_INTER)  # video is dropped, not a reason to close
    assert overflows == [] and outbox.dropped_messages == 1
    assert not outbox.put(message("audio2", 200), AUDIO)  # 2100 would pass 2000
    assert overflows == ["send queue passed 2000 bytes (the client is not reading)"]
    assert outbox.queued_bytes == 0  # the queue was let go
    assert not outbox.put(b"reply", CRITICAL, urgent=True)
    assert not outbox.put(message("audio3", 10), AUDIO)
    assert len(overflows) == 1 and outbox.bytes_sent == 0


def test_send_timeout_closes_when_the_peer_never_reads(pair: Pair, make_outbox: Callable[..., Outbox]) -> None:
    small_buffers(pair)
    server_end, _ = pair
    overflows = Overflows()
    # Video only: drops keep the queue under the hard limit, so only the timeout ends it.
    outbox = make_outbox(server_end, high_water=4 * 1024, soft_limit=16 * 1024, hard_limit=1 << 20,
                         send_timeout=0.3, on_overflow=overflows)
    frame = bytes(2000)
    started = time.monotonic()
    frames = peak = 0
    while not overflows:  # a 100 fps publisher, until the outbox gives up
        assert time.monotonic() - started < 10, f"no overflow after {frames} frames: {outbox.queued_bytes} queued"
        outbox.put(frame, VIDEO_KEY if frames % 50 == 0 else VIDEO_INTER)
        peak = max(peak, outbox.queued_bytes)
        frames += 1
        gevent.sleep(0.01)
    assert overflows == ["nothing could be sent for 0.3 s (the client is not reading)"]
    assert time.monotonic() - started >= 0.3
    assert outbox.dropped_messages > 0 and peak <= 16 * 1024 + 2000  # video was dropped: the queue stayed bounded
    assert 0 < outbox.bytes_sent < 64 * 1024  # the kernel took a little, then nothing
    assert not outbox.put(frame, VIDEO_KEY)
    assert len(overflows) == 1


def test_is_full_counts_our_queue_and_the_kernels(pair: Pair, make_outbox: Callable[..., Outbox]) -> None:
    server_end, client_end = pair
    queued = make_outbox(server_end, high_water=1000, flusher=Flusher(NEVER))
    assert queued.put(bytes(1000), AUDIO)
    assert queued.queued_bytes == 1000 and not queued.is_full()  # at the high water mark, not above
    assert queued.put(b"x", AUDIO)
    assert queued.is_full()
    queued.close()

    # Our queue empty, the kernel's holding what the client did not read yet.
    other_end, other_client = gevent.socket.socketpair()
    try:
        sent = make_outbox(other_end, high_water=10_000)
        assert sent.put(bytes(30_000), CRITICAL, urgent=True)
        wait_for(lambda: sent.queued_bytes == 0)
        assert kernel_unsent_bytes(other_end) >= 30_000 and sent.is_full()
        assert read_exactly(other_client, 30_000) == bytes(30_000)
        wait_for(lambda: not sent.is_full())
    finally:
        other_end.close()
        other_client.close()


def test_urgent_bytes_go_at_once_and_take_queued_media_along(pair: Pair, make_outbox: Callable[..., Outbox]) -> None:
    server_end, client_end = pair
    outbox = make_outbox(server_end, flusher=Flusher(NEVER))
    assert outbox.put(message("media1", 100), AUDIO)
    assert outbox.bytes_sent == 0 and outbox.queued_bytes == 100  # waits for a flush
    assert outbox.put(message("reply", 50), CRITICAL, urgent=True)
    assert read_exactly(client_end, 150) == message("media1", 100) + message("reply", 50)  # in order
    assert outbox.media_messages == 1

    # Once the writer is done, media waits for the flusher again.
    wait_for(lambda: outbox.queued_bytes == 0)
    assert outbox.put(message("media2", 100), AUDIO)
    assert_stays(lambda: outbox.bytes_sent == 150 and available(client_end) == 0, 0.2, "media2 stays queued")
    assert outbox.put(b"ping", CRITICAL, urgent=True)
    assert read_exactly(client_end, 104) == message("media2", 100) + b"ping"


def test_flusher_sends_several_puts_in_one_writev(pair: Pair, make_outbox: Callable[..., Outbox],
                                                  monkeypatch: Any) -> None:
    server_end, client_end = pair
    writes: list[tuple[int, int]] = []  # (fd, buffers) per writev call
    real_writev = os.writev

    def counting_writev(fd: int, buffers: list[Any]) -> int:
        writes.append((fd, len(buffers)))
        return real_writev(fd, buffers)

    monkeypatch.setattr(os, "writev", counting_writev)
    flusher = Flusher(0.2)
    outbox = make_outbox(server_end, flusher=flusher)
    other_end, other_client = gevent.socket.socketpair()
    try:
        other = make_outbox(other_end, flusher=flusher)  # one flusher serves every outbox
        messages = [message(f"frame{i}", 1000 + i) for i in range(5)]
        started = time.monotonic()
        for data in messages:
            assert outbox.put(data, VIDEO_INTER)
        assert other.put(message("audio", 10), AUDIO) and other.put(message("video", 20), VIDEO_KEY)
        gevent.sleep(0)  # let every other greenlet run once: still nothing is sent
        assert outbox.bytes_sent == 0 and available(client_end) == 0
        wait_for(lambda: available(client_end) == sum(map(len, messages)), 5, "the flush")
        assert time.monotonic() - started >= 0.15  # it waited for the flush interval
        assert read_exactly(client_end, sum(map(len, messages))) == b"".join(messages)
        assert read_exactly(other_client, 30) == message("audio", 10) + message("video", 20)
        assert sorted(writes) == sorted([(server_end.fileno(), 5), (other_end.fileno(), 2)])
    finally:
        other_end.close()
        other_client.close()


def test_close_with_flush_timeout_drains_the_queue(pair: Pair, make_outbox: Callable[..., Outbox]) -> None:
    small_buffers(pair)  # the kernel takes only a little at a time: close must wait for the reader
    server_end, client_end = pair
    outbox = make_outbox(server_end, flusher=Flusher(NEVER))
    messages = [message(f"tail{i}", 10_000) for i in range(20)]
    for data in messages:
        assert outbox.put(data, AUDIO)
    expected = b"".join(messages)
    reader = gevent.spawn(read_exactly, client_end, len(expected), 10)
    outbox.close(flush_timeout=10)
    assert outbox.queued_bytes == 0 and outbox.bytes_sent == len(expected)
    assert reader.get(timeout=10) == expected
    assert not outbox.put(b"late", CRITICAL, urgent=True)


def test_close_without_flush_timeout_abandons_the_queue(pair: Pair, make_outbox: Callable[..., Outbox]) -> None:
    server_end, client_end = pair
    outbox = make_outbox(server_end, flusher=Flusher(NEVER))
    assert outbox.put(message("media", 500), AUDIO)
    outbox.close()
    assert outbox.bytes_sent == 0 and available(client_end) == 0
    assert not outbox.put(b"late", CRITICAL, urgent=True)
