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
from .helpers import FPS, FRAME_MS, Done, Published, decode, flv_tags, publish_av, video_tags, wait_recorded

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
