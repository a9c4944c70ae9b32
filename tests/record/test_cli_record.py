"""`neurtmp serve --record ...`: flags checked at start (exit 2, one line), files written
by a real server process, and MP4 refused without PyAV naming the extra."""

from __future__ import annotations

import pathlib
import subprocess

import pytest

from ..helpers import wait_for
from ..live.test_relay import neurtmp_process
from ..test_cli import COMMAND_TIMEOUT, assert_refused, run_neurtmp
from ..test_packaging import lean_python
from .helpers import FPS, decode, publish_av


@pytest.mark.timeout(COMMAND_TIMEOUT + 10)
def test_serve_refuses_a_record_directory_that_cannot_be_written(tmp_path: pathlib.Path) -> None:
    file = tmp_path / "file"
    file.write_text("")
    assert_refused(run_neurtmp("serve", "--record", str(file / "recordings")), "serve", "--record",
                   str(file / "recordings"), "cannot be created or written")


@pytest.mark.timeout(COMMAND_TIMEOUT + 10)
def test_serve_refuses_record_flags_without_a_directory() -> None:
    assert_refused(run_neurtmp("serve", "--record-interval", "60"), "serve", "--record-interval needs --record DIR")


@pytest.mark.timeout(COMMAND_TIMEOUT + 10)
def test_serve_refuses_mp4_recording_without_pyav(tmp_path: pathlib.Path) -> None:
    child = lean_python("""
        import sys
        from neurtmp.cli import main
        sys.exit(main(["serve", "--listen", "127.0.0.1:0", "--record", sys.argv[1], "--record-format", "mp4"]))
    """, str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, err = child.communicate(timeout=COMMAND_TIMEOUT)
    assert child.returncode == 2 and "--record-format mp4" in err and "pip install 'neurtmp[codec]'" in err, err


@pytest.mark.timeout(COMMAND_TIMEOUT)
def test_serve_records_rotated_mp4_pieces(tmp_path: pathlib.Path) -> None:
    with neurtmp_process("serve", "--record", str(tmp_path), "--record-format", "mp4", "--record-interval", "1",
                         "--record-app", "live") as (address, log):
        other = publish_av(f"rtmp://{address}/other/cam", 1)
        publisher = publish_av(f"rtmp://{address}/live/cam", 3)
        wait_for(lambda: publisher.poll() is not None and other.poll() is not None, 20, "the publishers finished")
        assert publisher.returncode == 0 and other.returncode == 0
    pieces = sorted((tmp_path / "live" / "cam").glob("cam-*.mp4"))
    assert len(pieces) >= 2, (pieces, log)
    assert not (tmp_path / "other").exists()  # --record-app live
    decoded = [decode(piece) for piece in pieces]
    assert all(d.key_frames[0] for d in decoded)
    assert abs(sum(len(d.video_times) for d in decoded) - 3 * FPS) <= 2
    assert log[0].count("recorded ") == len(pieces), log[0]
