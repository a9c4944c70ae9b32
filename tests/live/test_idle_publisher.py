"""A stalled encoder (ffmpeg stopped with SIGSTOP: no media, no ping answers) is closed
after publisher_idle_timeout; its players are told, and the name takes a new publisher."""

from __future__ import annotations

import logging
import os
import signal
import time
from typing import Any

import pytest

import neurtmp
from neurtmp.protocol import events as ev

from ..conftest import url
from ..helpers import wait_for
from .helpers import ffmpeg_publish, live_server

#: The idle timeout of these tests (seconds).
IDLE = 2.0
#: What the close may take beyond the timeout on a loaded machine.
MARGIN = 3.0


def read_until(player: neurtmp.Client, wanted: Any, timeout: float = 15) -> list[ev.Event]:
    """The events up to the first for which `wanted(event)` holds (fails past `timeout`)."""
    seen: list[ev.Event] = []
    deadline = time.monotonic() + timeout
    while not seen or not wanted(seen[-1]):
        event = player.read(timeout=max(0.1, deadline - time.monotonic()))
        assert event is not None and time.monotonic() < deadline, f"not seen in {timeout} s; got {seen[-5:]}"
        seen.append(event)
    return seen


def status(code: str) -> Any:
    return lambda event: isinstance(event, ev.StatusReceived) and event.code == code


def videos(count: int) -> Any:
    """True on the `count`-th video message from the first call on."""
    seen = [0]

    def wanted(event: ev.Event) -> bool:
        seen[0] += isinstance(event, ev.VideoReceived)
        return seen[0] >= count
    return wanted


def publisher_connections(server: neurtmp.Server) -> list[neurtmp.Connection]:
    return [c for c in server.get_connections() if any(s.publishing for s in c.get_streams())]


@pytest.mark.timeout(60)
def test_a_stopped_ffmpeg_is_closed_and_its_name_taken_by_a_new_publisher(
        make_server: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="neurtmp.connection")
    server, app = live_server(make_server, publisher_idle_timeout=IDLE)
    stream_url = url(server, "live/cam")
    player = neurtmp.connect(url(server), timeout=5)
    player.play("cam")
    stalled = ffmpeg_publish(stream_url, 60)
    fresh = None
    try:
        read_until(player, status("NetStream.Play.PublishNotify"))
        read_until(player, videos(10))
        [connection] = publisher_connections(server)
        stalled.send_signal(signal.SIGSTOP)
        stopped = time.monotonic()
        read_until(player, status("NetStream.Play.UnpublishNotify"), IDLE + MARGIN)
        assert IDLE * 0.75 <= time.monotonic() - stopped <= IDLE + MARGIN
        wait_for(lambda: connection.closed and connection not in server.get_connections(), 2)
        live = app.registry.get("live", "cam")
        assert live is None or not live.is_live
        [line] = [r.getMessage() for r in caplog.records if "no audio or video" in r.getMessage()]
        peer = connection.get_peer_address()
        assert line == f"{peer}: publisher idle for 2 s: no audio or video on 'live/cam'; closing"

        fresh = ffmpeg_publish(stream_url, 60, "color=c=0x3366CC:size=160x120:rate=25")
        read_until(player, status("NetStream.Play.PublishNotify"))
        read_until(player, videos(10))  # the new publisher's frames reach the player
        [new] = publisher_connections(server)
        assert new is not connection and fresh.poll() is None
    finally:
        os.kill(stalled.pid, signal.SIGCONT)
        for process in (stalled, fresh):
            if process is not None:
                process.kill()
                process.wait(10)
        player.close()
