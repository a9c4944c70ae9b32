"""The ingest app's one way to start processes: stdlib spawn, cooperative pipes and waits."""

from __future__ import annotations

import os
import pathlib
import re

import gevent
import psutil
import pytest

from neurtmp.ingest import _process

from ..live.helpers import FFMPEG

INGEST = pathlib.Path(__file__).resolve().parents[2] / "neurtmp" / "ingest"


def test_processes_are_started_only_by_the_process_helper() -> None:
    """gevent's subprocess forks (running grpcio's fork handlers in the child); the helper
    spawns with the standard library's vfork/exec, and is the only place that spawns."""
    spawning = re.compile(r"^\s*(import subprocess|from gevent import subprocess|import gevent\.subprocess"
                          r"|from subprocess import|from gevent\.subprocess import)", re.MULTILINE)
    users = sorted(path.name for path in INGEST.rglob("*.py") if spawning.search(path.read_text()))
    assert users == ["_process.py"], users


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_run_returns_the_output_without_blocking_the_hub() -> None:
    ticks = []
    ticker = gevent.spawn(lambda: [ticks.append(gevent.sleep(0.01)) for _ in range(1000)])
    before = open_fds()
    try:
        # About a second of real-time work (after a half-second burst): the hub keeps running.
        status, out, err = _process.run([FFMPEG, "-hide_banner", "-re", "-f", "lavfi", "-i",
                                         "color=size=64x64:rate=30", "-t", "1.5", "-f", "null", "-"], timeout=30)
    finally:
        ticker.kill()
    assert status == 0 and out == b"", err
    assert len(ticks) >= 20, f"the hub was blocked: {len(ticks)} ticks"
    assert open_fds() == before


def test_run_kills_what_runs_too_long_and_reports_what_cannot_start(tmp_path: pathlib.Path) -> None:
    with pytest.raises(TimeoutError):
        _process.run([FFMPEG, "-hide_banner", "-re", "-f", "lavfi", "-i", "color=size=64x64:rate=30", "-f", "null",
                      "-"], timeout=0.5)
    assert not [p for p in psutil.Process().children() if p.status() != psutil.STATUS_ZOMBIE]
    with pytest.raises(FileNotFoundError):
        _process.run([str(tmp_path / "no-such-ffmpeg")], timeout=5)
