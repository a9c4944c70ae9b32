"""Enhanced RTMP v2 reconnect requests end to end: a pull relay (an edge's pull) follows
its origin's graceful shutdown to a replacement without its players seeing a gap, while
legacy clients of the origin get what they always got."""

from __future__ import annotations

import time
from itertools import pairwise
from typing import Any

import gevent
import pytest
from gevent import subprocess

import neurtmp
from neurtmp.protocol import events as ev
from neurtmp.relay import Backoff, PullRelay

from ..conftest import url
from ..helpers import wait_for
from .helpers import FFMPEG, ffmpeg_publish, live_server


class Watcher:
    """Reads a client until it closes: video timestamps (with arrival times) and statuses."""

    def __init__(self, client: neurtmp.Client) -> None:
        self.client = client
        self.videos: list[tuple[float, int]] = []
        self.statuses: list[str] = []
        self._greenlet = gevent.spawn(self._run)

    def _run(self) -> None:
        while (event := self.client.read(timeout=60)) is not None:
            if isinstance(event, ev.VideoReceived):
                self.videos.append((time.monotonic(), event.timestamp))
            elif isinstance(event, ev.StatusReceived):
                self.statuses.append(event.code)

    def close(self) -> None:
        self.client.close()
        self._greenlet.join(5)


def _live(app: Any, name: str) -> bool:
    stream = app.registry.get("live", name)
    return stream is not None and stream.is_live


@pytest.mark.timeout(120)
def test_a_pull_relay_follows_its_origin_to_a_replacement_without_a_gap(make_server: Any) -> None:
    replacement, replacement_app = live_server(make_server)
    origin, origin_app = live_server(make_server, reconnect_url=url(replacement, "live"))
    edge, _ = live_server(make_server)
    publishers = [ffmpeg_publish(url(origin, "live/src"), 40), ffmpeg_publish(url(replacement, "live/src"), 40)]
    legacy_ffmpeg = None
    try:
        wait_for(lambda: _live(origin_app, "src") and _live(replacement_app, "src"), 20)
        pull = PullRelay(edge, url(origin, "live/src"), "live", "copy", timeout=5, backoff=Backoff(0.2, 1)).start()
        player = Watcher(neurtmp.connect(url(edge, "live"), timeout=5))
        player.client.play("copy")
        # legacy players of the origin: ffmpeg and our client announcing nothing
        legacy_ffmpeg = subprocess.Popen([FFMPEG, "-hide_banner", "-loglevel", "error", "-i", url(origin, "live/src"),
                                          "-f", "null", "-"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        legacy = Watcher(neurtmp.connect(url(origin, "live"), timeout=5))
        legacy.client.play("src")
        wait_for(lambda: len(player.videos) >= 25 and len(legacy.videos) >= 25, 20)
        wait_for(lambda: len(origin.get_connections()) >= 4, 10, "the ffmpeg player connected to the origin")
        capable = [c.get_peer_address() for c in origin.get_connections() if c.client_capabilities.reconnect]
        assert len(capable) == 1  # the relay's play only

        before = len(player.videos)
        stopping = gevent.spawn(origin.shutdown, 5)
        wait_for(lambda: pull.source_switches == 1, 5, "the relay switched to the replacement")
        assert not stopping.ready()  # within the grace, while the old connections drain
        stopping.join(15)
        assert stopping.ready()
        after_shutdown = len(player.videos)
        wait_for(lambda: len(player.videos) >= after_shutdown + 25, 10, "video goes on after the origin is gone")

        assert "NetStream.Play.UnpublishNotify" not in player.statuses
        assert pull.published == 1 and pull.connected == 1 and pull.attempts == 1  # one local publish throughout
        assert pull.source == url(replacement, "live/src")
        stamps = [ts for _, ts in player.videos]
        assert all(a <= b for a, b in pairwise(stamps)), "timestamps go back"
        assert max(b - a for a, b in pairwise(stamps[before - 1:])) <= 500  # no jump
        arrivals = [t for t, _ in player.videos[before - 1:]]
        assert max(b - a for a, b in pairwise(arrivals)) < 1.5  # no stall either
        assert not player.client.closed

        # The legacy clients: no reconnect request, the end of the stream as before.
        assert neurtmp.StatusCode.CONNECT_RECONNECT_REQUEST not in legacy.statuses
        assert legacy.client.reconnect_requested is None
        wait_for(lambda: legacy.client.closed, 10)
        assert "NetStream.Play.UnpublishNotify" in legacy.statuses
        assert legacy_ffmpeg.wait(timeout=15) is not None
        pull.stop()
        player.close()
        legacy.close()
    finally:
        for process in [*publishers, *([legacy_ffmpeg] if legacy_ffmpeg else [])]:
            if process.poll() is None:
                process.kill()
            process.wait()


@pytest.mark.timeout(120)
def test_a_push_relay_moves_its_publish_to_the_replacement_at_a_key_frame(make_server: Any) -> None:
    from neurtmp.relay import PushRelay

    replacement, replacement_app = live_server(make_server)
    target, _ = live_server(make_server, reconnect_url=url(replacement, "live"))
    local, local_app = live_server(make_server)
    publisher = ffmpeg_publish(url(local, "live/cam"), 30)
    try:
        wait_for(lambda: _live(local_app, "cam"), 20)
        push = PushRelay(local, "live", "cam", url(target, "live/out"), timeout=5, backoff=Backoff(0.2, 1),
                         source_live=True).start()
        wait_for(lambda: push.published == 1 and push.packets_sent >= 25, 20)
        stopping = gevent.spawn(target.shutdown, 5)
        wait_for(lambda: push.target_switches == 1, 5, "the push moved to the replacement")
        assert _live(replacement_app, "out")  # (the old publish closed: the shutdown need not wait)
        watcher = Watcher(neurtmp.connect(url(replacement, "live"), timeout=5))
        watcher.client.play("out")
        wait_for(lambda: len(watcher.videos) >= 25, 10, "the replacement serves the pushed stream")
        stopping.join(15)
        assert push.published == 1 and push.target == url(replacement, "live/out")
        push.stop()
        watcher.close()
    finally:
        if publisher.poll() is None:
            publisher.kill()
        publisher.wait()


@pytest.mark.timeout(120)
def test_an_edge_s_players_stay_when_its_origin_is_replaced(make_server: Any) -> None:
    from neurtmp.relay import Edge

    replacement, replacement_app = live_server(make_server)
    origin, origin_app = live_server(make_server, reconnect_url=url(replacement, "live"))
    edge_server, _ = live_server(make_server)
    publishers = [ffmpeg_publish(url(origin, "live/src"), 40), ffmpeg_publish(url(replacement, "live/src"), 40)]
    try:
        wait_for(lambda: _live(origin_app, "src") and _live(replacement_app, "src"), 20)
        edge = Edge(edge_server, f"rtmp://{origin.get_listen_address()}", timeout=5, backoff=Backoff(0.2, 1)).start()
        player = Watcher(neurtmp.connect(url(edge_server, "live"), timeout=5))
        player.client.play("src")
        wait_for(lambda: len(player.videos) >= 25, 20)
        pull = edge.pulls[("live", "src")]
        stopping = gevent.spawn(origin.shutdown, 5)
        wait_for(lambda: pull.source_switches == 1, 5, "the edge's pull switched to the replacement")
        stopping.join(15)
        count = len(player.videos)
        wait_for(lambda: len(player.videos) >= count + 25, 10, "video goes on after the origin is gone")
        assert "NetStream.Play.UnpublishNotify" not in player.statuses and pull.published == 1
        stamps = [ts for _, ts in player.videos]
        assert all(a <= b for a, b in pairwise(stamps))
        player.close()
        edge.stop()
    finally:
        for process in publishers:
            if process.poll() is None:
                process.kill()
            process.wait()
