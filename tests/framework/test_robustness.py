"""Bad clients never disturb good ones: garbage, stalls, vanishing publishers, idle
crowds, and players that stop reading. Memory and greenlets stay bounded."""

from __future__ import annotations

import gc
import logging
import os
import resource
import socket
import struct
import time
from typing import Any

import gevent
import gevent.socket
import greenlet
import pytest

import neurtmp
from neurtmp.handlers import FrameEventHandler
from neurtmp.protocol import events as ev

from ..conftest import url
from ..helpers import assert_stays, wait_for


def alive_greenlets() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, greenlet.greenlet) and not o.dead)


class Ticker(FrameEventHandler):
    """Sends a small frame per tick, or a big one; records outqueue_is_full."""

    def __init__(self, size: int = 100, respect_full: bool = True) -> None:
        self.size = size
        self.respect_full = respect_full
        self.full: list[tuple[float, bool]] = []
        self.sent = 0

    def handle(self, stream: Any, outqueue_is_full: bool) -> Any:
        self.full.append((time.monotonic(), outqueue_is_full))
        if outqueue_is_full and self.respect_full:
            return None
        self.sent += 1
        return bytes((0x17 if self.sent == 1 else 0x27, 1, 0, 0, 0)) + os.urandom(self.size)


def ticker_server(make_server: Any, ticker: Ticker, rate: float = 30, **options: Any) -> neurtmp.Server:
    def on_stream(is_create: bool, stream: Any, args: Any) -> bool:
        if is_create:
            stream.set_property("render_rate", rate)
            stream.register_frame_event_handler(ticker)
        return True

    def on_connect(is_create: bool, connection: Any, args: Any, user: Any) -> bool:
        if is_create:
            connection.register_stream_event_handler(on_stream)
        return True

    return make_server(on_connect, **options)


class Watcher:
    """A healthy player counting frames and the longest gap between them."""

    def __init__(self, server: neurtmp.Server) -> None:
        self.client = neurtmp.connect(url(server), timeout=5)
        self.client.play("healthy")
        self.frames = 0
        self.longest_gap = 0.0
        self._greenlet = gevent.spawn(self._run)

    def _run(self) -> None:
        last = time.monotonic()
        while True:
            event = self.client.read(timeout=5)
            if event is None:
                return
            if isinstance(event, ev.VideoReceived):
                now = time.monotonic()
                self.frames += 1
                self.longest_gap = max(self.longest_gap, now - last)
                last = now

    def stop(self) -> None:
        self.client.close()
        self._greenlet.join(timeout=3)


@pytest.mark.timeout(90)
def test_bad_clients_do_not_disturb_a_healthy_stream(make_server: Any, caplog: Any) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    caplog.set_level(logging.INFO, logger="neurtmp")
    server = ticker_server(make_server, Ticker(), handshake_timeout=1.0, connect_timeout=1.5)
    host, port = server.get_listen_address().rsplit(":", 1)
    address = (host, int(port))
    watcher = Watcher(server)
    wait_for(lambda: watcher.frames > 5)
    baseline = alive_greenlets()
    started_frames = watcher.frames
    started = time.monotonic()

    # Garbage: an HTTP request, and random bytes after a valid C0.
    http = gevent.socket.create_connection(address)
    http.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    noise = gevent.socket.create_connection(address)
    noise.sendall(b"\x03" + os.urandom(1536 * 2 + 5000))
    # Stalled mid-handshake.
    stalled = gevent.socket.create_connection(address)
    stalled.sendall(b"\x03" + bytes(700))
    # A publisher that vanishes mid-publish (RST, no unpublish).
    publisher = neurtmp.connect(url(server), timeout=5)
    publisher.publish("doomed")
    for i in range(20):
        publisher.send_video(b"\x27\x01\x00\x00\x00" + bytes(3000), i * 33)
    publisher._sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    publisher._reader.kill()
    publisher._sock.close()
    # 500 idle TCP connections.
    crowd = [gevent.socket.create_connection(address) for _ in range(500)]
    wait_for(lambda: len(server.get_connections()) >= 400, timeout=10)

    for sock in (http, noise):
        sock.settimeout(5)
        assert sock.recv(65536) is not None  # answered or closed, never hung
    # The server drops all of them within its timeouts.
    wait_for(lambda: len(server.get_connections()) == 1, timeout=15)
    for sock in crowd + [http, noise, stalled]:
        sock.close()
    elapsed = time.monotonic() - started
    frames = watcher.frames - started_frames
    assert frames >= 0.8 * 30 * elapsed, (frames, elapsed)
    assert watcher.longest_gap < 0.5, watcher.longest_gap
    messages = caplog.text
    assert "protocol error" in messages and "handshake not completed" in messages
    watcher.stop()
    wait_for(lambda: not server.get_connections())
    wait_for(lambda: alive_greenlets() <= baseline, timeout=5)


@pytest.mark.timeout(60)
def test_outqueue_is_full_when_the_player_stops_reading(make_server: Any) -> None:
    ticker = Ticker(size=20_000)
    server = ticker_server(make_server, ticker, rate=50, outqueue_high_water=64 * 1024,
                           outqueue_soft_limit=512 * 1024, outqueue_hard_limit=2 * 1024 * 1024)
    player = neurtmp.connect(url(server), timeout=5, inbox_size=4, receive_buffer_size=32 * 1024)
    player.play("fast")
    reading = True

    def consume() -> None:
        while True:
            if reading:
                if player.read(timeout=5) is None:
                    return
            else:
                gevent.sleep(0.01)

    consumer = gevent.spawn(consume)
    wait_for(lambda: len(ticker.full) >= 30, 5, "30 frame calls (0.6 s at 50/s)")
    assert not any(full for _, full in ticker.full[3:])  # a reading player never looks full
    [connection] = server.get_connections()

    def held_back() -> bool:
        """The handler held back: memory stays bounded (checked at every look)."""
        queued = connection.get_statistics()["bytes_queued"]
        assert queued <= 64 * 1024 + 2 * 20_100, f"{queued} bytes queued"
        return True

    reading = False
    stopped = time.monotonic()
    # Full once the buffers on the way have filled (it may flicker while they do).
    wait_for(lambda: held_back() and all(full for _, full in ticker.full[-5:]), 5, "five full frame calls in a row")
    calls = len(ticker.full)
    assert_stays(lambda: held_back() and ticker.full[-1][1], 1.0, "still full while the player is stalled")
    assert len(ticker.full) >= calls + 25  # the frame handler kept being asked (50/s) all along
    reading = True
    resumed = time.monotonic()
    wait_for(lambda: not ticker.full[-1][1], timeout=5)
    assert time.monotonic() - resumed < 5 and resumed - stopped < 5
    player.close()
    consumer.join(timeout=3)


def peak_queue_until_dropped(connection: neurtmp.Connection, timeout: float = 15) -> int:
    """Watch a player's send queue until the server drops it; returns the largest seen."""
    peak = 0
    with gevent.Timeout(timeout, AssertionError(f"{connection} was never dropped")):
        while not connection.closed:
            peak = max(peak, connection.get_statistics()["bytes_queued"])
            gevent.sleep(0.01)
    return peak


class AudioAndVideo(Ticker):
    """Audio is never dropped for a slow player, so it fills the queue to the hard bound."""

    def handle(self, stream: Any, outqueue_is_full: bool) -> Any:
        stream.send_audio(b"\xaf\x01" + bytes(20_000))
        return super().handle(stream, outqueue_is_full)


@pytest.mark.timeout(60)
def test_a_player_that_never_reads_is_dropped_past_the_hard_bound(make_server: Any, caplog: Any) -> None:
    caplog.set_level(logging.WARNING, logger="neurtmp")
    greedy = AudioAndVideo(size=50_000, respect_full=False)
    server = ticker_server(make_server, greedy, rate=60, outqueue_high_water=64 * 1024,
                           outqueue_soft_limit=256 * 1024, outqueue_hard_limit=1024 * 1024)
    stuck = neurtmp.connect(url(server), timeout=5, inbox_size=2, receive_buffer_size=16 * 1024)
    stuck.play("flood")
    [connection] = server.get_connections()
    peak = peak_queue_until_dropped(connection)
    assert peak <= 1024 * 1024
    assert connection.get_statistics()["dropped_messages"] > 0  # video was dropped before giving up
    assert "send queue passed 1048576 bytes" in caplog.text
    stuck.close()


@pytest.mark.timeout(60)
def test_a_stalled_video_only_player_is_dropped_after_send_timeout(make_server: Any, caplog: Any) -> None:
    caplog.set_level(logging.WARNING, logger="neurtmp")
    greedy = Ticker(size=50_000, respect_full=False)
    server = ticker_server(make_server, greedy, rate=60, outqueue_high_water=64 * 1024,
                           outqueue_soft_limit=256 * 1024, send_timeout=1.0)
    stuck = neurtmp.connect(url(server), timeout=5, inbox_size=2, receive_buffer_size=16 * 1024)
    stuck.play("video-only")
    [connection] = server.get_connections()
    peak = peak_queue_until_dropped(connection)
    assert peak <= 256 * 1024 + 50_100  # video dropped at the soft bound
    assert "nothing could be sent for 1 s" in caplog.text
    stuck.close()
