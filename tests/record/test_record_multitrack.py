"""Recording an Enhanced RTMP v2 multitrack publish (ffmpeg 9: two H.264 tracks and
AAC): FLV and MP4 files hold track 0, unwrapped, with one header each."""

from __future__ import annotations

import pathlib
from typing import Any

import av
import pytest

from neurtmp.codec import flv
from neurtmp.record import Recorder, RecordOptions

from ..conftest import url
from ..interop.test_multitrack_players import SIZES, publish_ladder
from ..live.helpers import live_server
from .helpers import Done, flv_tags, wait_recorded


@pytest.mark.timeout(60)
def test_a_multitrack_publish_is_recorded_as_its_track_0(make_server: Any, tmp_path: pathlib.Path) -> None:
    server, _ = live_server(make_server)
    done = {"flv": Done(), "mp4": Done()}
    recorders = [Recorder(RecordOptions(str(tmp_path / "flv")), on_done=done["flv"]),
                 Recorder(RecordOptions(str(tmp_path / "mp4"), format="mp4"), on_done=done["mp4"])]
    for recorder in recorders:
        recorder.install(server)
    publisher = publish_ladder(url(server, "live/ladder"), seconds=3)
    wait_recorded(recorders, publisher)
    assert publisher.returncode == 0, publisher.stderr.read()
    for kind in ("flv", "mp4"):
        [path] = done[kind].paths  # one file: track 1's header is no "new sequence header"
        with av.open(str(path)) as container:
            assert len(container.streams.video) == 1 and len(container.streams.audio) == 1, kind
            frames = list(container.decode(video=0))
        assert {(f.width, f.height) for f in frames} == {SIZES[0]} and len(frames) >= 70, kind
    _, tags = flv_tags(done["flv"].paths[0])
    videos = [t.payload for t in tags if t.type_id == flv.TAG_VIDEO]
    assert not any(p[0] & 0x80 for p in videos)  # every tag plain AVC
