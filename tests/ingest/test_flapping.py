"""A flapping encoder (connecting and disconnecting every couple of seconds) within the
reconnect grace: exactly one ffmpeg and one session folder for its key all along, no
orphan process or folder once it is over, and memory that does not grow with the flaps."""

from __future__ import annotations

import os
import pathlib
from typing import Any

import gevent
import psutil
import pytest

from ..helpers import wait_for
from .test_ingest import ingest, publish, wait_master  # noqa: F401 (the fixture)

#: Publish / gap per flap, seconds, and how many flaps.
_UP, _DOWN, _FLAPS = 1.0, 0.5, 5


def transcoders(output_dir: str) -> list[psutil.Process]:
    """The ffmpeg transcoders of this process writing under `output_dir`."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if output_dir in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            continue
    return found


@pytest.mark.timeout(120)
def test_a_flapping_encoder_keeps_one_ffmpeg_and_one_folder(ingest: Any) -> None:  # noqa: F811
    app = ingest(reconnect_grace=5.0)
    output_dir = app.config.output_dir
    key_folder = pathlib.Path(output_dir, "flap")
    most_transcoders, sessions, rss = 0, set(), []
    encoder = publish(app.rtmp("flap"), "320x240", 60)
    try:
        wait_master(app, "flap")
        entry = app.app.streams["flap"]
        for _ in range(_FLAPS):
            encoder.kill()
            encoder.wait(10)
            gevent.sleep(_DOWN)  # (pacing the flaps, not waiting for a result)
            encoder = publish(app.rtmp("flap"), "320x240", 60)
            wait_for(lambda: entry.publishers, 15, "the encoder is back")
            gevent.sleep(_UP)
            most_transcoders = max(most_transcoders, len(transcoders(output_dir)))
            sessions.update(os.listdir(key_folder))
            rss.append(psutil.Process().memory_info().rss)
            assert app.app.streams["flap"] is entry and len(app.app.streams) == 1
        assert most_transcoders == 1, most_transcoders  # one ffmpeg per key, all along
        assert len(sessions) == 1, sessions  # one session folder: the flaps never opened another
        # bounded memory: the last flaps cost no more than the first ones (20 MB of slack)
        assert rss[-1] - rss[1] < 20 * 1024 * 1024, [r // 1024 // 1024 for r in rss]
    finally:
        encoder.kill()
        encoder.wait(10)
    # over: the grace ends, the ladder is finalised, nothing is left running
    wait_for(lambda: "flap" not in app.app.streams, 20, "the stream ends after the grace")
    wait_for(lambda: not transcoders(output_dir), 20, "no transcoder left")
    assert os.listdir(key_folder) == list(sessions)
