"""A full output disk, for real (a small tmpfs): logged once, health degraded, only whole
segments served, and everything back once there is room again."""

from __future__ import annotations

import errno
import io
import logging
import os
import pathlib
import re
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import av
import pytest

from ..helpers import wait_for
from .test_grpc import Served
from .test_ingest import publish, segments

#: The small disk: room for the stream, far less than `MIN_FREE_BYTES` once filled.
DISK_SIZE = "16m"
#: Frames in a whole segment (30 fps, 1 s segments), give or take one.
FRAMES_PER_SEGMENT = 30
MPD = "{urn:mpeg:dash:schema:mpd:2011}"


@pytest.fixture
def small_disk(tmp_path: pathlib.Path) -> Iterator[pathlib.Path]:
    """A tmpfs of `DISK_SIZE` (mounting needs root: CI runs as root)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE}", "tmpfs", str(mount)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill (needs root): {result.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


@pytest.fixture
def served_on_small_disk(make_server: Any, tmp_path: pathlib.Path, small_disk: pathlib.Path) -> Iterator[Served]:
    instance = Served(make_server, tmp_path, output_dir=str(small_disk / "out"))
    yield instance
    instance.close()


def fill(path: pathlib.Path) -> None:
    """Write `path` until the disk is full."""
    chunk = b"\0" * (1 << 20)
    with open(path, "wb") as f:
        try:
            while True:
                f.write(chunk)
                f.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc


def decodes_whole(init: bytes, data: bytes) -> bool:
    """Whether a segment's every frame decodes (PyAV), as a player would need."""
    try:
        with av.open(io.BytesIO(init + data)) as container:
            frames = sum(1 for _ in container.decode(video=0))
    except (av.error.FFmpegError, IndexError):
        return False
    return frames >= FRAMES_PER_SEGMENT - 1


def read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


class Checker:
    """Fetches what is served and what is on disk, and keeps count of what it saw."""

    def __init__(self, served: Served, key: str) -> None:
        self.served, self.key = served, key
        self.verdicts: dict[str, bool] = {}
        self.broken_on_disk: set[str] = set()  # listed by ffmpeg's own playlist, not whole
        self.served_listings = 0

    @property
    def folder(self) -> str:
        """The folder the key's current ffmpeg run writes."""
        folder = self.served.app.streams[self.key].session.run_folder
        assert folder is not None
        return folder

    def served_whole(self, init: str, name: str) -> bool:
        if name not in self.verdicts:
            init_data = self.served.get(f"/streams/{self.key}/{init}")[2]
            status, _, data = self.served.get(f"/streams/{self.key}/{name}")
            self.verdicts[name] = status == 200 and decodes_whole(init_data, data)
        return self.verdicts[name]

    def disk_listing_broken(self) -> bool:
        """Whether ffmpeg's own media playlist is empty or lists a segment not whole (noted)."""
        text = read(os.path.join(self.folder, "media_0.m3u8")).decode(errors="replace")
        init = read(os.path.join(self.folder, "init-0.m4s"))
        broken = [name for name in segments(text) if not decodes_whole(init, read(os.path.join(self.folder, name)))]
        self.broken_on_disk.update(broken)
        return not text or bool(broken)

    def check_served(self) -> None:
        """Every segment the served HLS playlist and DASH manifest list is whole."""
        status, _, body = self.served.get(f"/streams/{self.key}/media_0.m3u8")
        assert status in (200, 503), status
        if status == 200:
            text = body.decode()
            init = re.search(r'#EXT-X-MAP:URI="([^"]+)"', text)
            assert init, text
            listed = segments(text)
            bad = [name for name in listed if not self.served_whole(init.group(1), name)]
            assert not bad, f"the served playlist lists segments not written whole: {bad}\n{text}"
            self.served_listings += bool(listed)
        status, _, body = self.served.get(f"/streams/{self.key}/dash/manifest.mpd")
        assert status in (200, 503), status
        if status == 200:
            root = ET.fromstring(body)
            for period in root.iter(f"{MPD}Period"):
                video = next(r for r in period.iter(f"{MPD}Representation") if r.get("id") == "0")
                template = video.find(f"{MPD}SegmentTemplate")
                assert template is not None
                count = sum(int(s.get("r", "0")) + 1 for s in template.iter(f"{MPD}S"))
                first = int(template.get("startNumber", "1"))
                init = template.get("initialization", "").replace("$RepresentationID$", "0")
                media = template.get("media", "").replace("$RepresentationID$", "0")
                bad = [n for n in range(first, first + count)
                       if not self.served_whole(init, media.replace("$Number%05d$", f"{n:05d}"))]
                assert not bad, f"the served manifest lists segments not written whole: {bad}"


def empty_segments(folder: str) -> int:
    """Video segments ffmpeg renamed into place with nothing in them."""
    return sum(1 for name in os.listdir(folder)
               if name.startswith("chunk-0-") and name.endswith(".m4s") and not read(os.path.join(folder, name)))


def listed(served: Served) -> list[str]:
    status, _, body = served.get("/streams/cam/media_0.m3u8")
    return segments(body.decode()) if status == 200 else []


def health(served: Served) -> tuple[str, list[str]]:
    answer = served.rpc("HealthCheck")
    return answer.status, list(answer.errors)


@pytest.mark.timeout(120)
def test_a_full_disk_is_reported_once_only_whole_segments_are_served_and_it_recovers(
        served_on_small_disk: Served, small_disk: pathlib.Path, caplog: Any) -> None:
    served = served_on_small_disk
    checker = Checker(served, "cam")
    encoder = publish(served.rtmp("cam"), "320x240", 60)
    try:
        with caplog.at_level(logging.INFO):
            wait_for(lambda: len(listed(served)) >= 3 and served.get("/streams/cam/dash/manifest.mpd")[0] == 200, 30)
            assert health(served) == ("healthy", [])
            checker.check_served()
            fill(small_disk / "filler")
            # Full: said once, health degraded with the reason, and ffmpeg's files go bad.
            wait_for(lambda: health(served)[0] == "degraded", 10)
            status, errors = health(served)
            assert len(errors) == 1 and errors[0].startswith("output disk full"), errors
            wait_for(lambda: checker.disk_listing_broken() or checker.check_served(), 15)
            wait_for(lambda: empty_segments(checker.folder) >= 3, 20)
            checker.check_served()
            # Room again: ffmpeg's playlist lists the broken segments for a while; what is
            # served never does, and it carries on with the new whole ones.
            os.remove(small_disk / "filler")
            wait_for(lambda: health(served) == ("healthy", []), 10)

            def settled() -> bool:
                checker.check_served()
                return not checker.disk_listing_broken() and len(checker.verdicts) > 0

            wait_for(settled, 30, "ffmpeg's playlist lists only whole segments again")
            listings = checker.served_listings
            wait_for(lambda: checker.check_served() or checker.served_listings > listings + 2, 15)
    finally:
        encoder.kill()
        encoder.wait()
    assert checker.broken_on_disk, "the disk never held a listed broken segment: the test proved nothing"
    full = [r for r in caplog.records if "output disk full" in r.getMessage()]
    back = [r for r in caplog.records if "disk space is back" in r.getMessage()]
    assert len(full) == 1 and full[0].levelno == logging.ERROR, [r.getMessage() for r in full]
    assert len(back) == 1, [r.getMessage() for r in back]
