"""Filtering playlists and manifests against the disk, on ffmpeg's own output."""

from __future__ import annotations

import pathlib
import subprocess
import xml.etree.ElementTree as ET

import pytest

from neurtmp.ingest.ladder import ffmpeg_command, rungs_for
from neurtmp.ingest.renditions import MAIN_AUDIO
from neurtmp.ingest.whole import segment_is_whole, whole_manifest, whole_playlist

from ..live.helpers import FFMPEG
from .test_ingest import segments

MPD = "{urn:mpeg:dash:schema:mpd:2011}"


@pytest.fixture(scope="module")
def ladder(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """Five 1-second segments of a 320x240 rung (with audio), as the transcoder writes them."""
    out = tmp_path_factory.mktemp("ladder")
    command = ffmpeg_command(FFMPEG, rungs_for(320, 240), str(out), "x264", "ultrafast", 1.0, MAIN_AUDIO)
    at = command.index("pipe:0")
    command[at - 3:at + 1] = ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30:duration=5", "-f", "lavfi", "-i",
                              "sine=duration=5"]
    command[command.index("0:a:0")] = "1:a:0"
    subprocess.run(command, check=True, capture_output=True, timeout=60)
    return out


@pytest.fixture
def folder(ladder: pathlib.Path, tmp_path: pathlib.Path) -> pathlib.Path:
    copy = tmp_path / "dash"
    copy.mkdir()
    for path in ladder.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    return copy


def timeline(manifest: bytes, representation: str) -> tuple[int, list[tuple[str | None, str, str | None]]]:
    root = ET.fromstring(manifest)
    [template] = [r.find(f"{MPD}SegmentTemplate") for r in root.iter(f"{MPD}Representation")
                  if r.get("id") == representation]
    assert template is not None
    return int(template.get("startNumber", "1")), [(s.get("t"), s.get("d", ""), s.get("r"))
                                                   for s in template.iter(f"{MPD}S")]


def test_whole_output_is_served_as_written(folder: pathlib.Path) -> None:
    assert all(segment_is_whole(str(path)) for path in folder.glob("*.m4s"))
    for name in ("master.m3u8", "media_0.m3u8", "media_1.m3u8"):
        text = (folder / name).read_text()
        assert whole_playlist(text, str(folder)) == text
    manifest = (folder / "manifest.mpd").read_bytes()
    assert whole_manifest(manifest, str(folder)) == manifest


def test_only_the_newest_run_of_whole_segments_is_listed(folder: pathlib.Path) -> None:
    (folder / "chunk-0-00002.m4s").write_bytes((folder / "chunk-0-00002.m4s").read_bytes()[:4096])  # cut short
    (folder / "chunk-0-00003.m4s").write_bytes(b"")  # renamed into place empty
    assert not segment_is_whole(str(folder / "chunk-0-00002.m4s"))
    playlist = whole_playlist((folder / "media_0.m3u8").read_text(), str(folder))
    assert playlist is not None
    assert segments(playlist) == ["chunk-0-00004.m4s", "chunk-0-00005.m4s"]
    assert "#EXT-X-MEDIA-SEQUENCE:4\n" in playlist and playlist.rstrip().endswith("#EXT-X-ENDLIST")
    assert playlist.count("#EXTINF") == 2
    manifest = whole_manifest((folder / "manifest.mpd").read_bytes(), str(folder))
    assert manifest is not None
    start, entries = timeline(manifest, "0")
    original_start, original = timeline((folder / "manifest.mpd").read_bytes(), "0")
    assert (original_start, original) == (1, [("0", original[0][1], "4")])
    assert (start, entries) == (4, [(str(3 * int(original[0][1])), original[0][1], "1")])
    assert timeline(manifest, "1") == timeline((folder / "manifest.mpd").read_bytes(), "1")  # audio untouched


def test_nothing_whole_to_list_or_a_cut_listing_is_not_served(folder: pathlib.Path) -> None:
    text = (folder / "media_0.m3u8").read_text()
    manifest = (folder / "manifest.mpd").read_bytes()
    assert whole_playlist("", str(folder)) is None and whole_manifest(b"", str(folder)) is None
    assert whole_playlist(text[:-1], str(folder)) is None  # no final newline: cut short
    assert whole_manifest(manifest[:-20], str(folder)) is None
    (folder / "chunk-0-00005.m4s").write_bytes(b"")  # the newest is not whole: nothing after it is
    assert whole_playlist(text, str(folder)) is None and whole_manifest(manifest, str(folder)) is None


def test_an_initialization_segment_not_written_whole_lists_nothing(folder: pathlib.Path) -> None:
    (folder / "init-0.m4s").write_bytes((folder / "init-0.m4s").read_bytes()[:100])
    assert whole_playlist((folder / "media_0.m3u8").read_text(), str(folder)) is None
    assert whole_manifest((folder / "manifest.mpd").read_bytes(), str(folder)) is None
    text = (folder / "media_1.m3u8").read_text()
    assert whole_playlist(text, str(folder)) == text  # the audio has its own
