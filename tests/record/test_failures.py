"""A recording that cannot be written stops alone, with one log line; the stream goes on:
a read-only directory, a full disk (small tmpfs mounts: the tests need root, as CI has),
and a publisher killed mid-stream (the MP4 so far still plays)."""

from __future__ import annotations

import logging
import pathlib
import signal
import subprocess
from collections.abc import Iterator
from typing import Any

import av
import gevent
import pytest

from neurtmp.errors import ConfigError
from neurtmp.record import Recorder, RecordOptions

from ..conftest import url
from ..helpers import wait_for
from ..live.helpers import ffmpeg_play_raw, live_server
from .helpers import FPS, Done, Published, decode, flv_tags, is_coded_frame, publish_av, video_tags, wait_recorded

WIDTH, HEIGHT = 160, 120


@pytest.fixture
def tmpfs(tmp_path: pathlib.Path) -> Iterator[Any]:
    """mount(size) -> a new tmpfs of that size; all unmounted afterwards."""
    mounts: list[pathlib.Path] = []

    def mount(size: str) -> pathlib.Path:
        path = tmp_path / f"disk{len(mounts)}"
        path.mkdir()
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs (needs root): {result.stderr.strip()}")
        mounts.append(path)
        return path

    yield mount
    for path in mounts:
        subprocess.run(["umount", "-l", str(path)], check=True)


class Player:
    """An ffmpeg player counting the frames it decodes."""

    def __init__(self, stream_url: str) -> None:
        self.process = ffmpeg_play_raw(stream_url, WIDTH, HEIGHT)
        self.frames = 0
        self._reader = gevent.spawn(self._read)

    def _read(self) -> None:
        size = WIDTH * HEIGHT * 3
        pending = 0
        assert self.process.stdout is not None
        while chunk := self.process.stdout.read(65536):
            pending += len(chunk)
            self.frames += pending // size
            pending %= size

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()
        self._reader.kill()


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name.startswith("neurtmp.record") and r.levelno >= logging.ERROR]


def test_a_directory_that_cannot_be_written_is_refused_at_start(tmp_path: pathlib.Path) -> None:
    file = tmp_path / "file"
    file.write_text("")
    with pytest.raises(ConfigError, match="recording directory .* cannot be created or written: Not a directory"):
        Recorder(RecordOptions(str(file / "recordings")))
    with pytest.raises(ConfigError, match="recording directory .* is not a directory"):
        Recorder(RecordOptions(str(file)))


def _stream_goes_on(make_server: Any, directory: pathlib.Path, caplog: pytest.LogCaptureFixture,
                    break_disk: Any, expected: str) -> tuple[Done, Published]:
    """Record while a player plays; `break_disk()` once the recorder is installed. The
    recording must stop with one error line containing `expected`, the player keep getting
    frames after it, and the publisher finish."""
    caplog.set_level(logging.INFO, logger="neurtmp.record")
    server, _ = live_server(make_server)
    published = Published().install(server)
    done = Done()
    recorder = Recorder(RecordOptions(str(directory)), on_done=done)
    recorder.install(server)
    break_disk()
    player = Player(url(server, "live/cam"))
    publisher = publish_av(url(server, "live/cam"), 4)
    try:
        wait_for(lambda: errors(caplog), 10, "the recording stopped with an error line")
        frames_at_error = player.frames
        wait_for(lambda: player.frames >= frames_at_error + FPS, 10, "the player kept getting frames")
        wait_recorded([recorder], publisher)
        assert publisher.returncode == 0, publisher.stderr.read()
    finally:
        player.stop()
        publisher.kill()
    [line] = errors(caplog)
    assert line.startswith("live/cam: recording stopped: ") and expected in line, line
    assert len(published.frames) >= 4 * FPS - 2
    return done, published


def test_a_read_only_directory_stops_the_recording_not_the_stream(
        make_server: Any, tmpfs: Any, caplog: pytest.LogCaptureFixture) -> None:
    disk = tmpfs("4m")

    def read_only() -> None:
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)

    done, _ = _stream_goes_on(make_server, disk / "recordings", caplog, read_only, "Read-only file system")
    assert not done.calls  # no file could be made
    assert not list((disk / "recordings").iterdir())


def test_a_full_disk_stops_the_recording_not_the_stream(
        make_server: Any, tmpfs: Any, caplog: pytest.LogCaptureFixture) -> None:
    disk = tmpfs("48k")  # some 2 s of the test stream
    done, published = _stream_goes_on(make_server, disk, caplog, lambda: None, "No space left on device")
    [path] = done.paths  # the file so far is still reported, cut back to its last whole tag
    _, tags = flv_tags(path)
    assert done.calls[0][4] >= done.calls[0][3]
    frames = [t for t in video_tags(tags) if is_coded_frame(t.payload)]
    assert FPS // 2 <= len(frames) < len(published.frames)
    assert len(decode(path).video_times) == len(frames)


def test_mp4_plays_while_written_and_after_the_publisher_is_killed(make_server: Any, tmp_path: pathlib.Path) -> None:
    server, _ = live_server(make_server)
    published = Published().install(server)
    done = Done()
    recorder = Recorder(RecordOptions(str(tmp_path), format="mp4"), on_done=done)
    recorder.install(server)
    publisher = publish_av(url(server, "live/cam"), 30)
    try:
        wait_for(lambda: len(published.frames) >= 2 * FPS + 5, 10, "over two seconds published")
        [recording] = recorder.recordings()
        [path] = list(tmp_path.rglob("*.mp4"))
        wait_for(lambda: path.stat().st_size > 0 and recording.pending == 0, 5, "the writes caught up")
        snapshot = tmp_path / "snapshot.mp4"  # what a crash of the server now would leave
        snapshot.write_bytes(path.read_bytes())
        publisher.send_signal(signal.SIGKILL)
        wait_recorded([recorder], publisher)
    finally:
        publisher.kill()
    assert len(decode(snapshot).video_times) >= FPS  # whole fragments (one per second: each key frame)
    [finished] = done.paths
    assert finished == path
    decoded = decode(path)
    assert len(decoded.video_times) == len(published.frames)
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.width == WIDTH
