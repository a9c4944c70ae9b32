"""Recording what is published: FLV as it came and fragmented MP4, checked by decoding."""

from __future__ import annotations

import pathlib
import re
from typing import Any

import pytest

from neurtmp.codec import flv
from neurtmp.record import Recorder, RecordOptions

from ..conftest import url
from ..live.helpers import live_server
from .helpers import (
    FPS,
    FRAME_MS,
    Done,
    Published,
    decode,
    flv_tags,
    is_coded_frame,
    publish_av,
    video_tags,
    wait_recorded,
)

SECONDS = 4
#: Frames a 4 s publish has: what ffmpeg sends (the recording is compared with what came).
FRAMES = SECONDS * FPS


def test_flv_and_mp4_hold_the_published_stream(make_server: Any, tmp_path: pathlib.Path) -> None:
    server, _ = live_server(make_server)
    published = Published().install(server)
    flv_done, mp4_done = Done(), Done()
    flv_recorder = Recorder(RecordOptions(str(tmp_path / "flv")), on_done=flv_done)
    mp4_recorder = Recorder(RecordOptions(str(tmp_path / "mp4"), format="mp4"), on_done=mp4_done)
    flv_recorder.install(server)
    mp4_recorder.install(server)
    publisher = publish_av(url(server, "live/cam?token=secret"), SECONDS)
    wait_recorded([flv_recorder, mp4_recorder], publisher)
    assert publisher.returncode == 0, publisher.stderr.read()
    frames = len(published.frames)
    assert abs(frames - FRAMES) <= 2

    # FLV: the published bytes, timestamps rebased to 0
    [(path, app, name, start, end)] = flv_done.calls
    assert (app, name) == ("live", "cam")
    assert re.fullmatch(r"cam-\d{8}-\d{6}\.flv", pathlib.Path(path).name), path
    assert pathlib.Path(path).parent == tmp_path / "flv" / "live" / "cam"
    assert start <= end and end - start >= SECONDS - 1
    flags, tags = flv_tags(pathlib.Path(path))
    assert flags == 5  # audio and video
    assert [t.type_id for t in tags[:3]] == [flv.TAG_SCRIPT, flv.TAG_VIDEO, flv.TAG_AUDIO]
    assert b"onMetaData" in tags[0].payload and flv.is_video_sequence_header(tags[1].payload)
    assert all(t.timestamp == 0 for t in tags[:3])
    video = video_tags(tags)
    assert [t.payload for t in video] == [p.payload for p in published.video]
    first = published.video[0].timestamp
    assert [t.timestamp for t in video] == [p.timestamp - first for p in published.video]
    decoded = decode(path)
    assert len(decoded.video_times) == frames
    assert decoded.audio_frames >= (SECONDS - 0.5) * 44100 / 1024
    assert decoded.video_times[-1] == pytest.approx((frames - 1) * FRAME_MS / 1000, abs=0.05)

    # MP4: the same frames, contiguous timestamps
    [(path, app, name, _, _)] = mp4_done.calls
    assert re.fullmatch(r"cam-\d{8}-\d{6}\.mp4", pathlib.Path(path).name), path
    decoded = decode(path)
    assert len(decoded.video_times) == frames
    assert decoded.key_frames[0]
    steps = {round((b - a) * 1000) for a, b in zip(decoded.video_times, decoded.video_times[1:], strict=False)}
    assert steps <= {FRAME_MS - 1, FRAME_MS, FRAME_MS + 1}, steps
    assert decoded.video_times[-1] - decoded.video_times[0] == pytest.approx(SECONDS - FRAME_MS / 1000, abs=0.1)
    assert decoded.audio_frames >= (SECONDS - 0.5) * 44100 / 1024


def test_rotation_cuts_at_key_frames_and_loses_nothing(make_server: Any, tmp_path: pathlib.Path) -> None:
    server, _ = live_server(make_server)
    published = Published().install(server)
    done = {kind: Done() for kind in ("flv", "mp4", "size")}
    recorders = [
        Recorder(RecordOptions(str(tmp_path / "flv"), interval=1.0), on_done=done["flv"]),
        Recorder(RecordOptions(str(tmp_path / "mp4"), format="mp4", interval=1.5), on_done=done["mp4"]),
        Recorder(RecordOptions(str(tmp_path / "size"), max_size=20_000), on_done=done["size"]),
    ]
    for recorder in recorders:
        recorder.install(server)
    publisher = publish_av(url(server, "live/cam"), SECONDS)
    wait_recorded(recorders, publisher)
    frames = published.frames
    assert abs(len(frames) - FRAMES) <= 2

    for kind in ("flv", "size"):  # FLV pieces: together, exactly what was published
        paths = done[kind].paths
        assert len(paths) >= 3, (kind, paths)
        assert len(set(paths)) == len(paths)
        offset = 0
        seen: list[tuple[int, bytes]] = []
        for path in paths:
            _, tags = flv_tags(path)
            assert flv.is_video_sequence_header(tags[1].payload) and tags[2].type_id == flv.TAG_AUDIO
            pictures = [t for t in video_tags(tags) if is_coded_frame(t.payload)]
            assert flv.is_video_key_frame(pictures[0].payload), path
            assert pictures[0].timestamp == 0, path
            base = frames[offset].timestamp
            seen += [(t.timestamp + base, t.payload) for t in pictures]
            offset += len(pictures)
            assert len(decode(path).video_times) == len(pictures), path
        assert seen == [(p.timestamp, p.payload) for p in frames], kind
    sizes = [path.stat().st_size for path in done["size"].paths]
    assert all(20_000 <= size < 20_000 + 40_000 for size in sizes[:-1]), sizes  # cut at the key frame after the bound

    # MP4 pieces: each starts on a key frame; their frames add up to the published ones
    paths = done["mp4"].paths
    assert len(paths) >= 2, paths
    total = 0
    for path in paths:
        decoded = decode(path)
        assert decoded.key_frames[0], path
        assert decoded.video_times[0] == pytest.approx(0, abs=0.001), path
        steps = {round((b - a) * 1000) for a, b in zip(decoded.video_times, decoded.video_times[1:], strict=False)}
        assert steps <= {FRAME_MS - 1, FRAME_MS, FRAME_MS + 1}, (path, steps)
        total += len(decoded.video_times)
    assert total == len(frames)
