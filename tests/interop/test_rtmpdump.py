"""rtmpdump (librtmp) against `neurtmp serve`'s live app: a client we did not write."""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

import av
import pytest
from gevent import subprocess

from ..conftest import url
from ..helpers import wait_for
from ..live.helpers import ffmpeg_publish, live_server

RTMPDUMP = shutil.which("rtmpdump")

needs_rtmpdump = pytest.mark.skipif(RTMPDUMP is None,
                                    reason="rtmpdump is not installed (Debian: apt-get install rtmpdump)")


@needs_rtmpdump
@pytest.mark.timeout(60)
def test_rtmpdump_stop_plays_that_many_seconds(make_server: Any, tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    """`rtmpdump --stop 2` puts the play duration on the wire in milliseconds (2000): the
    server ends the play after 2 s with Play.Stop, not after 2000 s."""
    caplog.set_level(logging.INFO, logger="neurtmp.stream")
    server, app = live_server(make_server)
    publisher = ffmpeg_publish(url(server, "live/cam"), 30)
    out = tmp_path / "out.flv"
    try:
        wait_for(lambda: (s := app.registry.get("live", "cam")) is not None and s.is_live, 15)
        started = time.monotonic()
        dump = subprocess.Popen([RTMPDUMP, "-q", "-r", url(server, "live/cam"), "--live", "--stop", "2",
                                 "-o", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for(lambda: any("duration reached" in r.getMessage() for r in caplog.records), 15,
                 "the server ended the play when its duration was reached")
        elapsed = time.monotonic() - started
        assert 1.5 <= elapsed < 8, elapsed
        dump.wait(timeout=15)
    finally:
        publisher.kill()
        publisher.wait()
    with av.open(str(out)) as container:
        frames = [frame for frame in container.decode(video=0)]
    span = (frames[-1].pts - frames[0].pts) * float(frames[0].time_base)
    assert 1.0 <= span <= 3.5 and len(frames) >= 25  # about 2 s of a 25 fps stream (plus its cached GOP)
