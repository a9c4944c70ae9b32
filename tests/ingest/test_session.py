"""Sessions on ffmpeg's own output, without the network: spliced playlists and manifests,
the served names, pruning, and the output folder's ownership rules."""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET

import pytest

from neurtmp.ingest import outputs as outputs_module
from neurtmp.ingest.ladder import ffmpeg_command, rungs_for
from neurtmp.ingest.outputs import Outputs
from neurtmp.ingest.renditions import MAIN_AUDIO
from neurtmp.ingest.session import Continuation, Session

from ..live.helpers import FFMPEG
from .test_continuity import Listing

MPD = "{urn:mpeg:dash:schema:mpd:2011}"


def encode(folder: str, seconds: int, pattern: str = "testsrc2") -> None:
    """What one ffmpeg run of the transcoder writes (1 s segments, a 320x240 rung and audio),
    from a lavfi source instead of the publisher's FLV, as fast as it goes."""
    command = ffmpeg_command(FFMPEG, rungs_for(320, 240), folder, "x264", "ultrafast", 1.0, MAIN_AUDIO)
    at = command.index("pipe:0")
    command[at - 3:at + 1] = ["-f", "lavfi", "-i", f"{pattern}=size=320x240:rate=30:duration={seconds}",
                              "-f", "lavfi", "-i", f"sine=duration={seconds}"]
    command[command.index("0:a:0")] = "1:a:0"
    subprocess.run(command, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[pathlib.Path]:
    """Three runs' folders: 4 s, 12 s and 3 s."""
    base = tmp_path_factory.mktemp("runs")
    made = []
    for index, seconds in enumerate((4, 12, 3), 1):
        folder = base / f"r{index}"
        folder.mkdir()
        encode(str(folder), seconds, ("testsrc2", "smptebars", "testsrc2")[index - 1])
        made.append(folder)
    return made


def replay(session: Session, runs: list[pathlib.Path], count: int) -> None:
    """The first `count` runs, as if encoded into the session's folders one after the other."""
    for folder in runs[:count]:
        target = session.begin_run()
        for path in folder.iterdir():
            shutil.copy(path, target)


def listing(session: Session, name: str = "media_0.m3u8") -> Listing:
    body = session.media_playlist(name)
    assert body is not None
    return Listing.parse(body.decode())


def test_runs_are_numbered_on_with_a_discontinuity_and_ffmpeg_endlist_dropped(tmp_path: pathlib.Path,
                                                                               runs: list[pathlib.Path]) -> None:
    session = Session(str(tmp_path / "s1"), 1.0)
    replay(session, runs, 2)
    first = listing(session)
    # ffmpeg ended both runs' playlists; the session has not ended.
    assert "#EXT-X-ENDLIST" not in first.text
    assert "#EXT-X-ENDLIST" in (runs[0] / "media_0.m3u8").read_text()
    # 4 + 12 segments, the window's last 10: run 2's 5..14 of 12, numbered 9..16 after run 1's 4.
    assert first.sequence == 7 and len(first.uris) == 10
    assert first.uris[0] == "s1/chunk-0-00007.m4s" and first.uris[-1] == "s1/chunk-0-00016.m4s"
    assert "#EXT-X-DISCONTINUITY-SEQUENCE:1\n" in first.text and "#EXT-X-DISCONTINUITY\n" not in first.text
    assert session.segment_file("chunk-0-00007.m4s") == str(tmp_path / "s1" / "r2" / "chunk-0-00003.m4s")
    # A third run: across its start, a discontinuity and its own initialization segment.
    target = session.begin_run()
    for path in runs[2].iterdir():
        shutil.copy(path, target)
    third = listing(session)
    assert third.sequence == 10 and third.uris[-1] == "s1/chunk-0-00019.m4s"
    assert third.discontinuity_before("s1/chunk-0-00017.m4s")
    assert "#EXT-X-DISCONTINUITY-SEQUENCE:1\n" in third.text
    assert third.text.count("#EXT-X-MAP:") == 2 and '#EXT-X-MAP:URI="s1/r3/init-0.m4s"' in third.text
    for name in ("media_0.m3u8", "media_1.m3u8"):
        text = listing(session, name).text
        assert "#EXT-X-TARGETDURATION:1\n" in text  # a 1.02 s audio segment rounds to 1
    assert session.continuation() == Continuation(20, 3, session.origin, True)
    session.finish()
    assert listing(session).text.endswith("#EXT-X-ENDLIST\n")


def test_a_playlist_that_lags_its_run_starts_after_the_gap(tmp_path: pathlib.Path, runs: list[pathlib.Path]) -> None:
    """Killed between writing the manifest and a media playlist, a run's audio playlist
    misses its last segment: numbers stay aligned with the video, and that playlist lists
    only what it can number one after the other."""
    session = Session(str(tmp_path / "s1"), 1.0)
    replay(session, runs, 1)
    run_folder = session.run_folder
    assert run_folder is not None
    audio = pathlib.Path(run_folder, "media_1.m3u8")
    lines = audio.read_text().splitlines()
    cut = max(i for i, line in enumerate(lines) if line.startswith("#EXTINF"))
    audio.write_text("\n".join(lines[:cut]) + "\n")  # without the last segment (nor ENDLIST)
    target = session.begin_run()
    for path in runs[2].iterdir():
        shutil.copy(path, target)
    video, sound = listing(session), listing(session, "media_1.m3u8")
    assert video.sequence == 1 and video.uris[4] == "s1/chunk-0-00005.m4s"
    assert video.discontinuity_before("s1/chunk-0-00005.m4s")
    assert sound.sequence == 5 and sound.uris[0] == "s1/chunk-1-00005.m4s"
    # Its first segment is the second run's first: a discontinuity before it (sequence 0 + 1).
    assert sound.discontinuity_before(sound.uris[0]) and "#EXT-X-DISCONTINUITY-SEQUENCE:0\n" in sound.text


def test_the_manifest_has_a_period_per_run_after_one_another(tmp_path: pathlib.Path,
                                                            runs: list[pathlib.Path]) -> None:
    session = Session(str(tmp_path / "s1"), 1.0)
    replay(session, runs, 1)
    one = session.manifest()
    assert one is not None
    target = session.begin_run()
    for path in runs[2].iterdir():
        shutil.copy(path, target)
    body = session.manifest()
    assert body is not None
    root = ET.fromstring(body)
    assert root.get("type") == "dynamic" and root.get("availabilityStartTime") == ET.fromstring(one).get(
        "availabilityStartTime")
    assert root.get("timeShiftBufferDepth") == "PT10.000S" and root.get("mediaPresentationDuration") is None
    periods = root.findall(f"{MPD}Period")
    assert [p.get("id") for p in periods] == ["s1-r1", "s1-r2"]
    starts = [float(p.get("start", "")[2:-1]) for p in periods]
    assert starts[0] == 0.0 and starts[1] >= 4.0  # after run 1's 4 s, whatever the wall clock said
    templates = [next(p.iter(f"{MPD}SegmentTemplate")) for p in periods]
    assert [t.get("startNumber") for t in templates] == ["1", "5"]
    assert templates[1].get("media") == "s1/chunk-$RepresentationID$-$Number%05d$.m4s"
    assert templates[1].get("initialization") == "s1/r2/init-$RepresentationID$.m4s"
    # The names the templates make are served, as HLS names them.
    assert session.segment_file("chunk-0-00005.m4s") == os.path.join(target, "chunk-0-00001.m4s")
    assert session.segment_file("r2/init-1.m4s") == os.path.join(target, "init-1.m4s")
    # A run whose segments all left the window leaves the manifest.
    target = session.begin_run()
    for path in runs[1].iterdir():
        shutil.copy(path, target)
    periods = ET.fromstring(session.manifest() or b"").findall(f"{MPD}Period")
    assert [p.get("id") for p in periods] == ["s1-r3"]
    third = float(periods[0].get("start", "")[2:-1])
    assert third >= starts[1] + 3
    session.finish()
    final = ET.fromstring(session.manifest() or b"")
    assert final.get("type") == "static" and final.get("minimumUpdatePeriod") is None
    assert float(final.get("mediaPresentationDuration", "")[2:-1]) == pytest.approx(third + 12, abs=0.1)


def test_served_names_resolve_only_to_whole_segments_of_the_session(tmp_path: pathlib.Path,
                                                                    runs: list[pathlib.Path]) -> None:
    session = Session(str(tmp_path / "s1"), 1.0)
    replay(session, runs, 2)
    for bad in ("chunk-0-00099.m4s", "r3/init-0.m4s", "r0/init-0.m4s", "r1/chunk-0-00001.m4s", "r1/manifest.mpd",
                "../r1/init-0.m4s", "r1/../r1/init-0.m4s", "chunk-0-1/../x.m4s", "r1/init-0.m4s/x"):
        assert session.segment_file(bad) is None, bad
    assert session.segment_file("r1/init-0.m4s") is not None
    path = session.segment_file("chunk-0-00004.m4s")
    assert path is not None and path.endswith("/r1/chunk-0-00004.m4s")
    pathlib.Path(path).write_bytes(pathlib.Path(path).read_bytes()[:1000])  # cut short: no longer served
    assert session.segment_file("chunk-0-00004.m4s") is None


def test_runs_far_behind_the_live_edge_are_removed(tmp_path: pathlib.Path, runs: list[pathlib.Path]) -> None:
    session = Session(str(tmp_path / "s1"), 1.0)
    replay(session, runs, 1)
    for _ in range(3):  # three 12-segment runs after a 4-segment one
        target = session.begin_run()
        for path in runs[1].iterdir():
            shutil.copy(path, target)
    folders = sorted(os.listdir(session.folder))
    assert folders == ["r2", "r3", "r4"], folders  # r1's 4 are 32 behind: more than the window and extra
    assert session.segment_file("chunk-0-00001.m4s") is None
    assert listing(session).sequence == 31


def test_a_session_continues_the_previous_ones_numbers_with_a_discontinuity(tmp_path: pathlib.Path,
                                                                            runs: list[pathlib.Path]) -> None:
    outputs = Outputs(str(tmp_path), 1.0)
    first = outputs.open("cam")
    replay(first, runs, 1)
    second = outputs.open("cam")
    assert outputs.served("cam") is second and first.folder != second.folder
    replay(second, runs[2:], 1)
    text = (outputs.listing("cam", "media_0.m3u8") or b"").decode()
    served = Listing.parse(text)
    assert served.sequence == 5 and served.uris[0] == f"{second.name}/chunk-0-00005.m4s"
    assert served.discontinuity_before(served.uris[0]) and "#EXT-X-DISCONTINUITY-SEQUENCE:0\n" in text
    # The first session's segments are still served by their names until it is removed.
    assert outputs.segment("cam", f"{first.name}/chunk-0-00001.m4s") is not None
    first.finish()
    outputs.remove(first)
    assert not os.path.exists(first.folder) and os.path.isdir(second.folder)
    assert outputs.segment("cam", f"{first.name}/chunk-0-00001.m4s") is None
    assert outputs.listing("cam", "master.m3u8") is not None
    with pytest.raises(LookupError):
        outputs.listing("cam", "other.m3u8")
    with pytest.raises(LookupError):
        outputs.listing("nobody", "master.m3u8")
    second.finish()
    outputs.remove(second)
    assert not os.path.exists(os.path.join(str(tmp_path), "cam"))


def test_folders_no_session_owns_are_removed_only_once_idle(tmp_path: pathlib.Path) -> None:
    outputs = Outputs(str(tmp_path), 1.0)
    stale, fresh = tmp_path / "cam" / "old-stale", tmp_path / "cam" / "old-fresh"
    for folder in (stale, fresh):
        (folder / "r1").mkdir(parents=True)
        (folder / "r1" / "chunk-0-00001.m4s").write_bytes(b"x")
    past = time.time() - outputs_module.STALE_SECONDS - 5
    for path in (stale / "r1" / "chunk-0-00001.m4s", stale / "r1", stale):
        os.utime(path, (past, past))
    session = outputs.open("cam")
    assert not stale.exists() and fresh.exists()  # fresh: someone may still be writing it
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{6}", session.name)
    assert not os.path.exists(session.folder)  # made with its first run's folder
