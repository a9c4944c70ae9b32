"""Publisher continuity in the ingest app: the transcoder plays the key's live stream, so a
publisher that drops and comes back within the reconnect grace (or a backup taking over)
continues the same ladder: no end, no new session, segments all along (the slate in the
gap), the new publisher spliced in; after the grace, the ladder is finalised."""

from __future__ import annotations

import io
import os
import time
from typing import Any

import av
import pytest
from gevent import subprocess

from ..helpers import wait_for
from ..live.helpers import FFMPEG
from .test_continuity import PLAYLISTS, Viewer, check_numbering_and_bytes, decode, viewers  # noqa: F401 (fixture)
from .test_ingest import ingest, publish, segments, wait_master  # noqa: F401 (the fixture)


def publish_colour(target: str, colour: str) -> subprocess.Popen:
    """A real-time ffmpeg publisher of a plain 320x240 colour with a tone, until killed."""
    return subprocess.Popen(
        [FFMPEG, "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i",
         f"color=c={colour}:size=320x240:rate=30", "-re", "-f", "lavfi", "-i", "sine=frequency=440",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "flv",
         target],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def stop(*processes: subprocess.Popen | None) -> None:
    for process in processes:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(10)


def ended(app: Any, key: str) -> bool:
    status, _, body = app.get(f"/streams/{key}/media_0.m3u8")
    return status == 200 and body.decode().rstrip().endswith("#EXT-X-ENDLIST")


def listed(app: Any, key: str) -> dict[str, Any]:
    return next(entry for entry in app.app.describe() if entry["key"] == key)


@pytest.mark.timeout(90)
def test_a_publisher_back_within_the_grace_continues_the_same_ladder(ingest: Any, viewers: Any) -> None:  # noqa: F811
    app = ingest(reconnect_grace=10.0)
    encoder = publish(app.rtmp("gr"), "320x240", 60)
    again = None
    try:
        wait_master(app, "gr")
        viewer = viewers(app, "gr")
        entry = app.app.streams["gr"]
        wait_for(lambda: len(viewer.numbers()) >= 3, 20)
        encoder.kill()  # SIGKILL: no unpublish, the connection drops
        encoder.wait()
        killed = time.monotonic()
        wait_for(lambda: entry.live.reconnecting, 5, "the stream is within the grace")
        assert listed(app, "gr")["reconnecting"] and listed(app, "gr")["live"]
        at_kill = max(viewer.numbers())
        # the gap: the ladder goes on with the slate (new segments), never an end
        wait_for(lambda: max(viewer.numbers()) >= at_kill + 2, 9, "segments during the gap")
        wait_for(lambda: time.monotonic() - killed >= 4, 5)
        assert entry.live.reconnecting and app.app.streams["gr"] is entry
        gap_numbers = max(viewer.numbers())
        again = publish(app.rtmp("gr"), "320x240", 60)
        wait_for(lambda: not entry.live.reconnecting and entry.publishers, 10, "the publisher is spliced in")
        spliced = max(viewer.numbers())
        assert app.app.streams["gr"] is entry  # the same stream: no new session
        wait_for(lambda: max(viewer.numbers()) >= spliced + 3, 20, "segments after the republish")
        viewer.stop()
        assert time.monotonic() - killed < 10 + 20
        assert gap_numbers > at_kill
        key_folder = os.path.dirname(entry.session.folder)
        assert os.listdir(key_folder) == [entry.session.name]  # one session folder, the same one
        assert not any("#EXT-X-ENDLIST" in listing.text for name in PLAYLISTS for listing in viewer.listings[name])
        check_numbering_and_bytes(viewer)
        # every segment (the publisher's, the slate's, the new publisher's) decodes
        for name, kind in zip(PLAYLISTS, ("video", "audio"), strict=True):
            seen = viewer.numbers(name)
            assert sorted(seen) == list(range(min(seen), max(seen) + 1)), sorted(seen)
            by_init: dict[str, list[bytes]] = {}
            for number in sorted(seen):
                data, init = viewer.fetched[seen[number]]
                by_init.setdefault(init, []).append(data)
            for init, chunks in by_init.items():
                init_data = app.get(f"/streams/gr/{init}")[2]
                assert decode([init_data, *chunks], kind) > 0, (name, init)
        # the gap carried the slate (a dark card), the republish the publisher's picture again
        video = viewer.numbers("media_0.m3u8")
        levels = {number: last_frame_level(app, "gr", *viewer.fetched[video[number]])
                  for number in (at_kill - 1, gap_numbers, max(video))}
        assert levels[gap_numbers] < 40 < levels[at_kill - 1] and levels[max(video)] > 40, levels
        assert entry.transcoder.restarts == 0  # one ffmpeg run throughout
        assert listed(app, "gr")["live"] and not listed(app, "gr")["reconnecting"]
    finally:
        stop(encoder, again)


def last_frame_level(app: Any, key: str, data: bytes, init: str) -> float:
    """The mean level (0..255) of the last frame of a fetched video segment."""
    with av.open(io.BytesIO(app.get(f"/streams/{key}/{init}")[2] + data)) as container:
        frame = list(container.decode(video=0))[-1]
    return float(frame.to_ndarray(format="rgb24").mean())


@pytest.mark.timeout(60)
def test_after_the_grace_with_no_publisher_the_ladder_is_finalised(ingest: Any) -> None:  # noqa: F811
    app = ingest(reconnect_grace=2.0)
    encoder = publish(app.rtmp("fin"), "320x240", 60)
    try:
        wait_master(app, "fin")
        wait_for(lambda: len(segments(app.text("/streams/fin/media_0.m3u8"))) >= 2, 20)
        entry = app.app.streams["fin"]
        encoder.kill()
        encoder.wait()
        wait_for(lambda: entry.live.reconnecting, 5)
        assert not ended(app, "fin") and "fin" in app.app.streams
        wait_for(lambda: ended(app, "fin"), 25, "ENDLIST after the grace")
        assert 'type="static"' in app.text("/streams/fin/dash/manifest.mpd")
        assert "fin" not in app.app.streams and listed(app, "fin")["ended"]
        assert entry.ended_at is not None
    finally:
        stop(encoder)


def segment_colour(app: Any, key: str) -> tuple[float, float, float]:
    """The mean RGB of the last frame of the newest segment of the video playlist."""
    playlist = app.text(f"/streams/{key}/media_0.m3u8")
    init = next(line.split('"')[1] for line in reversed(playlist.splitlines()) if line.startswith("#EXT-X-MAP"))
    data = app.get(f"/streams/{key}/{init}")[2] + app.get(f"/streams/{key}/{segments(playlist)[-1]}")[2]
    with av.open(io.BytesIO(data)) as container:
        frame = list(container.decode(video=0))[-1]
    mean = frame.to_ndarray(format="rgb24").reshape(-1, 3).mean(axis=0)
    return float(mean[0]), float(mean[1]), float(mean[2])


def is_red(rgb: tuple[float, float, float]) -> bool:
    return rgb[0] > 150 and rgb[2] < 80


def is_blue(rgb: tuple[float, float, float]) -> bool:
    return rgb[2] > 150 and rgb[0] < 80


@pytest.mark.timeout(90)
def test_the_ladder_fails_over_to_the_backup_when_the_primary_leaves(ingest: Any) -> None:  # noqa: F811
    app = ingest(reconnect_grace=0.0, failover_timeout=1.0)
    primary = publish_colour(app.rtmp("fo"), "red")
    backup = None
    try:
        wait_master(app, "fo")
        wait_for(lambda: len(segments(app.text("/streams/fo/media_0.m3u8"))) >= 2, 20)
        assert is_red(segment_colour(app, "fo"))
        entry = app.app.streams["fo"]
        backup = publish_colour(app.rtmp("fo") + "?role=backup", "blue")
        wait_for(lambda: entry.live.backup is not None and entry.publisher(backup=True), 10, "the backup is there")
        assert listed(app, "fo")["backup"] and listed(app, "fo")["active"] == "primary"
        primary.kill()
        primary.wait()
        wait_for(lambda: entry.live.active == "backup", 10, "the backup carries the stream")
        wait_for(lambda: is_blue(segment_colour(app, "fo")), 20, "blue segments (the backup's)")
        assert app.app.streams["fo"] is entry and not ended(app, "fo")
        described = listed(app, "fo")
        assert described["switches"] == 1 and described["active"] == "backup" and described["live"]
        assert entry.transcoder.restarts == 0
        check_reported(app, "fo", switches=1, active="backup")
    finally:
        stop(primary, backup)


def check_reported(app: Any, key: str, switches: int, active: str) -> None:
    """gRPC GetRoutes and Prometheus say what /streams says."""
    from prometheus_client.parser import text_string_to_metric_families

    from neurtmp.ingest.monitor import Monitor
    from neurtmp.ingest.service import ModuleService, metrics_text, module_pb2

    monitor = Monitor(app.app, app.server, app.http.application, "rtmp://127.0.0.1/live", interval=60)
    monitor.start()
    try:
        [route] = ModuleService(monitor).GetRoutes(module_pb2.Empty(), None).routes
        assert (route.stream_key, route.switches, route.active_feed, route.reconnecting) == (key, switches, active,
                                                                                             False)
        assert route.backup_source
        samples = {(sample.name, sample.labels.get("stream_key")): sample.value
                   for family in text_string_to_metric_families(metrics_text(monitor).decode())
                   for sample in family.samples}
        assert samples[("neurtmp_stream_feed_switches_total", key)] == switches
        assert samples[("neurtmp_stream_backup_active", key)] == (active == "backup")
        assert samples[("neurtmp_stream_reconnecting", key)] == 0
    finally:
        monitor.stop()
