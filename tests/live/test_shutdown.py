"""A graceful shutdown tells clients their streams end before it closes them."""

from __future__ import annotations

from typing import Any

import gevent
import pytest
from gevent import subprocess

import neurtmp
from neurtmp.protocol import events as ev

from ..conftest import url
from ..helpers import wait_for
from .helpers import FFMPEG, ffmpeg_publish, live_server


def statuses_until_closed(client: neurtmp.Client, timeout: float = 10) -> list[str]:
    codes: list[str] = []
    with gevent.Timeout(timeout, AssertionError(f"not closed in {timeout} s; statuses: {codes}")):
        while True:
            try:
                event = client.read(timeout=timeout)
            except neurtmp.ConnectionClosed:
                return codes
            if event is None:
                return codes
            if isinstance(event, ev.StatusReceived):
                codes.append(event.code)


@pytest.mark.timeout(60)
def test_players_and_publishers_get_their_statuses_on_shutdown(make_server: Any) -> None:
    server, app = live_server(make_server)
    publisher = neurtmp.connect(url(server, "live"), timeout=5)
    publisher.publish("cam")
    player = neurtmp.connect(url(server, "live"), timeout=5)
    player.play("cam")
    ffmpeg_player = None
    source = ffmpeg_publish(url(server, "live/tv"), 30)
    try:
        wait_for(lambda: (s := app.registry.get("live", "tv")) is not None and s.is_live, 15)
        ffmpeg_player = subprocess.Popen([FFMPEG, "-hide_banner", "-loglevel", "error", "-i", url(server, "live/tv"),
                                          "-f", "null", "-"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for(lambda: len(app.registry.get("live", "tv").players()) == 1, 15, "ffmpeg plays")
        shutdown = gevent.spawn(server.shutdown, 2)
        player_codes = statuses_until_closed(player)
        publisher_codes = statuses_until_closed(publisher)
        assert "NetStream.Play.UnpublishNotify" in player_codes and player_codes[-1] == "NetStream.Play.Stop"
        assert publisher_codes[-1] == "NetStream.Unpublish.Success"
        _, err = ffmpeg_player.communicate(timeout=15)
        assert ffmpeg_player.returncode == 0, err.decode(errors="replace")  # a clean end of stream, not an error
        shutdown.get(timeout=15)
    finally:
        for process in (source, ffmpeg_player):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
