"""Primary and backup publishers of one name: the backup is kept warm, players switch to
it when the primary leaves or stalls, and back when the primary returns (real ffmpeg
publishers and players, told apart by their colours; our client checks timestamps)."""

from __future__ import annotations

import signal
from typing import Any

import pytest

import neurtmp
from neurtmp.live import LiveOptions
from neurtmp.live.app import is_backup
from neurtmp.live.http import LiveHttp
from neurtmp.live.metrics import metrics_text
from neurtmp.protocol import events as ev

from ..conftest import url
from ..helpers import wait_for
from .helpers import ffmpeg_play_raw, live_server
from .test_grace import HEIGHT, WIDTH, EventLog, RawFrames, _non_decreasing, ffmpeg_publish_colour


def test_the_backup_role_is_read_from_the_query_string() -> None:
    assert is_backup("cam?role=backup") and is_backup("cam?expires=1&role=backup&sig=x")
    assert not is_backup("cam") and not is_backup("cam?role=primary") and not is_backup("backup")


@pytest.mark.timeout(150)
def test_players_fail_over_to_the_backup_and_back(make_server: Any) -> None:
    server, app = live_server(make_server, LiveOptions(reconnect_grace=0, failover_timeout=1.0))
    stream_url = url(server, "live/cam")
    primary = ffmpeg_publish_colour(stream_url, "red")
    raw = RawFrames(ffmpeg_play_raw(stream_url, WIDTH, HEIGHT))
    client = neurtmp.connect(url(server), timeout=5)
    client.play("cam")
    log = EventLog(client)
    processes = [primary, raw.player]
    try:
        wait_for(lambda: raw.count("red") >= 10, 30, "players get the primary")
        backup = ffmpeg_publish_colour(stream_url + "?role=backup", "blue")
        processes.append(backup)
        live = app.registry.get("live", "cam")
        assert live is not None
        wait_for(lambda: live.backup is not None, 10, "the backup is connected")
        backup_joined = raw.frames[-1][0]
        wait_for(lambda: raw.count("red", backup_joined) >= 25, 20, "players keep getting the primary")
        assert raw.count("blue") == 0 and live.active == "primary"  # kept warm, not delivered

        # 1. the primary stalls (SIGSTOP): after the failover timeout, the backup
        primary.send_signal(signal.SIGSTOP)
        wait_for(lambda: raw.count("blue") >= 25, 20, "players get the backup when the primary stalls")
        assert live.active == "backup" and live.switches == 1
        # 2. the primary resumes: back to it at its next key frame
        primary.send_signal(signal.SIGCONT)
        switched = raw.frames[-1][0]
        wait_for(lambda: raw.count("red", switched) >= 25, 20, "players return to the primary")
        assert live.active == "primary" and live.switches == 2
        # 3. the primary leaves (killed): the backup at once, no unpublish
        primary.kill()
        primary.wait(10)
        left = raw.frames[-1][0]
        wait_for(lambda: raw.count("blue", left) >= 25, 20, "players get the backup when the primary leaves")
        assert live.active == "backup" and live.switches == 3 and live.is_live
        # 4. a new primary: players switch back to it
        primary = ffmpeg_publish_colour(stream_url, "red")
        processes.append(primary)
        returned = raw.frames[-1][0]
        wait_for(lambda: raw.count("red", returned) >= 25, 30, "players get the new primary")
        assert live.active == "primary" and live.switches == 4
        statistics = live.statistics()
        assert statistics["switches"] == 4 and statistics["backup"] and statistics["active"] == "primary"
        # the API and /metrics of `serve --http` say so too
        http_app = LiveHttp(app, server)
        http_app.sample()
        described = next(s for s in http_app.describe_streams() if s["name"] == "cam")
        assert described["switches"] == 4 and described["active"] == "primary" and not described["reconnecting"]
        text = metrics_text(http_app).decode()
        assert 'neurtmp_stream_feed_switches_total{app="live",name="cam"} 4.0' in text
        assert 'neurtmp_stream_backup_active{app="live",name="cam"} 0.0' in text

        assert raw.player.poll() is None  # one stream to the player throughout
        assert "NetStream.Play.UnpublishNotify" not in log.codes()
        video = log.timestamps(ev.VideoReceived)
        assert _non_decreasing(video) and _non_decreasing(log.timestamps(ev.AudioReceived))
        # no jump: the longest pause is the failover timeout plus a GOP, not a timeline jump
        assert max(b - a for a, b in zip(video, video[1:], strict=False)) < 3000
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.kill()
                process.wait(10)
        client.close()


@pytest.mark.timeout(60)
def test_a_second_backup_is_refused_and_the_backup_alone_carries_the_stream(make_server: Any) -> None:
    server, app = live_server(make_server, LiveOptions(reconnect_grace=0))
    stream_url = url(server, "live/solo") + "?role=backup"
    backup = ffmpeg_publish_colour(stream_url, "blue")
    raw = RawFrames(ffmpeg_play_raw(url(server, "live/solo"), WIDTH, HEIGHT))
    try:
        wait_for(lambda: raw.count("blue") >= 10, 30, "with no primary, the backup is the stream")
        second = ffmpeg_publish_colour(stream_url, "red")
        assert second.wait(20) != 0  # refused: the name has a backup
        live = app.registry.get("live", "solo")
        assert live is not None and live.backup is not None and live.active == "backup"
        assert raw.count("red") == 0
    finally:
        for process in (backup, raw.player):
            process.kill()
            process.wait(10)
