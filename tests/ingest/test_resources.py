"""What the ingest app holds on to: file descriptors across publish cycles."""

from __future__ import annotations

import gc
import os
from typing import Any

import pytest

from ..helpers import wait_for
from .test_ingest import ffmpeg_children, ingest, publish  # noqa: F401 (the fixture)

#: Publish cycles measured, after one to warm up.
CYCLES = 5
#: Descriptors the process may gain over the cycles (a socket not yet closed, say).
MARGIN = 2


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def publish_once(app: Any, key: str) -> None:
    """A short real ffmpeg publish, until its transcoder has started and finished."""
    encoder = publish(app.rtmp(key), "320x240", 1.5)
    try:
        wait_for(lambda: key in app.app.streams and app.app.streams[key].transcoder.pid is not None, 20)
        transcoder = app.app.streams[key].transcoder
        assert encoder.wait(timeout=20) == 0
    finally:
        encoder.kill()
        encoder.wait()
        encoder.stderr.close()  # the test's own pipe is not what is measured
    wait_for(lambda: transcoder.status in ("finished", "error") and not ffmpeg_children(), 20)


@pytest.mark.timeout(120)
def test_publish_cycles_leave_no_open_descriptors(ingest: Any) -> None:  # noqa: F811
    app = ingest()
    publish_once(app, "warm")
    gc.collect()
    gc.disable()  # what only the collector would release must show as a leak
    try:
        before = open_fds()
        for i in range(CYCLES):
            publish_once(app, f"cycle{i}")
        after = open_fds()
    finally:
        gc.enable()
    # Descriptors are released when a transcoder stops, not when the collector runs.
    assert after <= before + MARGIN, f"open descriptors went from {before} to {after} over {CYCLES} publishes"
