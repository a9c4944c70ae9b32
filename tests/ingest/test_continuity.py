"""Transcoder restarts as players see them: the same playlists carry on, numbered on, with a
discontinuity (a new DASH Period) where the encode restarted, and never an end while the
publisher publishes; and a key published again while its old ffmpeg is still finishing."""

from __future__ import annotations

import hashlib
import io
import os
import re
import signal
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import av
import gevent
import psutil
import pytest

from neurtmp.ingest import transcoder as transcoder_module

from ..helpers import wait_for
from .browser import MISSING, Browser, chromium_paths, longest_stall
from .test_ingest import Ingest, ffmpeg_children, ingest, publish, segments, wait_master  # noqa: F401 (the fixture)

MPD = "{urn:mpeg:dash:schema:mpd:2011}"
PLAYLISTS = ("media_0.m3u8", "media_1.m3u8")  # the one rung of a 320x240 input, and the audio


@dataclass
class Listing:
    """One media playlist as served: its first number, its lines, and its segments."""

    text: str
    sequence: int
    uris: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> Listing:
        found = re.search(r"^#EXT-X-MEDIA-SEQUENCE:(\d+)$", text, re.M)
        assert found, text
        return cls(text, int(found.group(1)), segments(text))

    def numbered(self) -> dict[int, str]:
        return {self.sequence + i: uri for i, uri in enumerate(self.uris)}

    def discontinuity_before(self, uri: str) -> bool:
        """Whether #EXT-X-DISCONTINUITY comes between `uri` and the segment before it."""
        lines = self.text.splitlines()
        at = lines.index(uri)
        before = next((i for i in range(at - 1, -1, -1) if lines[i] and not lines[i].startswith("#")), -1)
        return "#EXT-X-DISCONTINUITY" in lines[before + 1:at]


class Viewer:
    """Polls a key's media playlists and DASH manifest as players do, keeping every answer,
    and fetches each segment once when it is first listed."""

    def __init__(self, app: Ingest, key: str) -> None:
        self.app, self.key = app, key
        self.listings: dict[str, list[Listing]] = {name: [] for name in PLAYLISTS}
        self.manifests: list[ET.Element] = []
        #: Served URI -> (the bytes first fetched, the init segment's URI).
        self.fetched: dict[str, tuple[bytes, str]] = {}
        self.greenlet = gevent.spawn(self._poll)

    def _poll(self) -> None:
        while True:
            for name in PLAYLISTS:
                status, _, body = self.app.get(f"/streams/{self.key}/{name}")
                if status == 200:
                    listing = Listing.parse(body.decode())
                    self._fetch(listing)
                    self.listings[name].append(listing)  # once its segments are fetched
            status, _, body = self.app.get(f"/streams/{self.key}/dash/manifest.mpd")
            if status == 200:
                self.manifests.append(ET.fromstring(body))
            gevent.sleep(0.2)

    def _fetch(self, listing: Listing) -> None:
        init = None
        for line in listing.text.splitlines():
            found = re.fullmatch(r'#EXT-X-MAP:URI="([^"]+)"', line)
            if found:
                init = found.group(1)
            elif line in listing.uris and line not in self.fetched:
                assert init is not None
                status, _, data = self.app.get(f"/streams/{self.key}/{line}")
                assert status == 200, (line, status)
                self.fetched[line] = (data, init)

    def latest(self, name: str = "media_0.m3u8") -> Listing | None:
        return self.listings[name][-1] if self.listings[name] else None

    def numbers(self, name: str = "media_0.m3u8") -> dict[int, str]:
        """Every segment listed so far by its number."""
        seen: dict[int, str] = {}
        for listing in self.listings[name]:
            for number, uri in listing.numbered().items():
                assert seen.setdefault(number, uri) == uri, f"{number} was {seen[number]}, now {uri}"
        return seen

    def stop(self) -> None:
        self.greenlet.kill()


@pytest.fixture
def viewers() -> Iterator[Any]:
    made: list[Viewer] = []

    def make(app: Ingest, key: str) -> Viewer:
        made.append(Viewer(app, key))
        return made[-1]

    yield make
    for viewer in made:
        viewer.stop()


def decode(chunks: list[bytes], kind: str) -> int:
    """Frames (video) or samples (audio) decoded from an init segment and media segments."""
    with av.open(io.BytesIO(b"".join(chunks))) as container:
        if kind == "video":
            return sum(1 for _ in container.decode(video=0))
        return sum(frame.samples for frame in container.decode(audio=0))


def run_numbers(viewer: Viewer, name: str, run: str) -> list[int]:
    """The numbers of the segments of ffmpeg run `run` ("r1") seen in playlist `name`."""
    return [number for number, uri in viewer.numbers(name).items() if f"/{run}/" in viewer.fetched[uri][1]]


def check_numbering_and_bytes(viewer: Viewer) -> None:
    """Numbers only go forward and always name the same URI; a URI always serves the same bytes."""
    for name in PLAYLISTS:
        sequences = [listing.sequence for listing in viewer.listings[name]]
        assert sequences == sorted(sequences), f"{name}: MEDIA-SEQUENCE went back: {sequences}"
        for number, uri in viewer.numbers(name).items():
            assert re.fullmatch(rf"[^/]+/chunk-\d+-{number:05d}\.m4s", uri), (number, uri)
    for uri, (data, _) in viewer.fetched.items():
        status, _, again = viewer.app.get(f"/streams/{viewer.key}/{uri}")
        assert status == 200 and hashlib.sha256(again).digest() == hashlib.sha256(data).digest(), uri


def check_restart_in_hls(viewer: Viewer, last_before: int) -> None:
    """Past the restart: numbers count on, a discontinuity and a new init segment come first,
    and every segment of both runs decodes end to end."""
    for name, kind in zip(PLAYLISTS, ("video", "audio"), strict=True):
        listing = viewer.latest(name)
        assert listing is not None
        numbered = listing.numbered()
        after = [number for number in numbered if number > last_before]
        assert after and min(after) == last_before + 1, (name, last_before, numbered)
        first_after = numbered[min(after)]
        assert listing.discontinuity_before(first_after), listing.text
        assert "#EXT-X-ENDLIST" not in listing.text
        seen = viewer.numbers(name)
        assert sorted(seen) == list(range(min(seen), max(seen) + 1)), f"{name}: a number was skipped: {sorted(seen)}"
        inits = {viewer.fetched[uri][1] for uri in seen.values()}
        assert len(inits) == 2, inits  # one per run
        for init in sorted(inits):
            run = [viewer.fetched[seen[n]][0] for n in sorted(seen) if viewer.fetched[seen[n]][1] == init]
            init_data = viewer.app.get(f"/streams/{viewer.key}/{init}")[2]
            decoded = decode([init_data, *run], kind)
            # 30 fps, 1 s segments (the last before a SIGTERM may be short); 44.1 kHz audio.
            least = (len(run) - 1) * 29 + 1 if kind == "video" else (len(run) - 1) * 40_000
            assert decoded >= least, (name, init, len(run), decoded)


def check_restart_in_dash(viewer: Viewer, last_before: int) -> None:
    """A Period per run, each after the one before, numbered on, all dynamic with one
    availabilityStartTime; the segments it names are those HLS names."""
    assert all(root.get("type") == "dynamic" for root in viewer.manifests)
    assert len({root.get("availabilityStartTime") for root in viewer.manifests}) == 1
    root = viewer.manifests[-1]
    periods = root.findall(f"{MPD}Period")
    assert len(periods) == 2, ET.tostring(root)
    assert periods[0].get("id") != periods[1].get("id")
    starts = [float(p.get("start", "")[2:-1]) for p in periods]
    ends: list[float] = []
    numbers: list[range] = []
    for period in periods:
        template = next(period.iter(f"{MPD}SegmentTemplate"))  # the video representation's
        end = 0
        for entry in template.iter(f"{MPD}S"):
            end = int(entry.get("t", end)) + int(entry.get("d", "0")) * (int(entry.get("r", "0")) + 1)
        ends.append(end / int(template.get("timescale", "1")))
        first = int(template.get("startNumber", "1"))
        listed = sum(int(entry.get("r", "0")) + 1 for entry in template.iter(f"{MPD}S"))
        numbers.append(range(first, first + listed))
        media = template.get("media", "").replace("$RepresentationID$", "0")
        for number in (numbers[-1][0], numbers[-1][-1]):
            uri = media.replace("$Number%05d$", f"{number:05d}")
            status, _, data = viewer.app.get(f"/streams/{viewer.key}/{uri}")
            assert status == 200, uri
            assert uri not in viewer.fetched or data == viewer.fetched[uri][0], uri  # the very segment HLS lists
    assert numbers[0][-1] <= last_before < numbers[1][0], numbers
    assert starts[1] >= starts[0] + ends[0] - 0.001, (starts, ends)
    # The first Period stays where it was while the second one grows.
    first_ids = {(p.get("id"), p.get("start")) for m in viewer.manifests for p in m.findall(f"{MPD}Period")[:1]}
    assert len(first_ids) == 1, first_ids


@pytest.mark.timeout(90)
@pytest.mark.parametrize("signal_number", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_transcoder_killed_mid_stream_continues_the_same_playlists(ingest: Any, viewers: Any,  # noqa: F811
                                                                    signal_number: int) -> None:
    app = ingest()
    encoder = publish(app.rtmp("cont"), "320x240", 60)
    try:
        wait_master(app, "cont")
        viewer = viewers(app, "cont")
        transcoder = app.app.streams["cont"].transcoder
        wait_for(lambda: len(viewer.numbers()) >= 3 and viewer.manifests, 20)
        pid = transcoder.pid
        assert pid is not None and pid in [p.pid for p in ffmpeg_children()]
        os.kill(pid, signal_number)
        wait_for(lambda: transcoder.restarts == 1 and transcoder.pid not in (None, pid), 15)
        wait_for(lambda: all(len(run_numbers(viewer, name, "r2")) >= 3 for name in PLAYLISTS) and
                 len(viewer.manifests[-1].findall(f"{MPD}Period")) == 2, 30)
        last_before = max(run_numbers(viewer, "media_0.m3u8", "r1"))
        viewer.stop()
        check_restart_in_hls(viewer, last_before)
        check_restart_in_dash(viewer, last_before)
        check_numbering_and_bytes(viewer)
        assert not any("#EXT-X-ENDLIST" in listing.text for name in PLAYLISTS for listing in viewer.listings[name])
        # The publisher leaves: now, and only now, the playlists end.
        encoder.kill()
        encoder.wait()
        wait_for(lambda: app.text("/streams/cont/media_0.m3u8").rstrip().endswith("#EXT-X-ENDLIST"), 20)
        assert 'type="static"' in app.text("/streams/cont/dash/manifest.mpd")
        final = Listing.parse(app.text("/streams/cont/media_0.m3u8"))
        assert final.sequence >= viewer.latest().sequence  # type: ignore[union-attr]
    finally:
        encoder.kill()
        encoder.wait()


def files_in(folder: str) -> set[str]:
    """The finished files under `folder` (ffmpeg's .tmp files are renamed, not kept)."""
    return {os.path.relpath(os.path.join(root, name), folder) for root, _, names in os.walk(folder)
            for name in names if not name.endswith(".tmp")}


@pytest.mark.timeout(90)
def test_a_key_published_again_while_its_old_ffmpeg_finishes_gets_a_folder_of_its_own(
        ingest: Any, monkeypatch: Any) -> None:  # noqa: F811
    monkeypatch.setattr(transcoder_module, "FINALISE_SECONDS", 60.0)  # the old ffmpeg is not hurried
    app = ingest()
    first = publish(app.rtmp("again"), "320x240", 60)
    try:
        wait_master(app, "again")
        wait_for(lambda: len(segments(app.text("/streams/again/media_0.m3u8"))) >= 2, 20)
        old = app.app.streams["again"]
        old_folder = old.session.folder
        assert old.transcoder.pid is not None
        old_ffmpeg = psutil.Process(old.transcoder.pid)
        old_served = Listing.parse(app.text("/streams/again/media_0.m3u8"))
        old_ffmpeg.suspend()  # finishing slowly: it still has its last segment to write
    finally:
        first.kill()
        first.wait()
    second = None
    try:
        wait_for(lambda: "again" not in app.app.streams, 10)
        assert old_ffmpeg.is_running() and old_ffmpeg.status() == psutil.STATUS_STOPPED
        before = files_in(old_folder)
        assert before and any(name.endswith(".m4s") for name in before)
        second = publish(app.rtmp("again"), "320x240", 60)
        wait_for(lambda: "again" in app.app.streams and app.app.streams["again"].transcoder.pid is not None, 15)
        new = app.app.streams["again"]
        assert new.session.folder != old_folder and os.path.dirname(new.session.folder) == os.path.dirname(old_folder)
        new_ffmpeg = psutil.Process(new.transcoder.pid)
        outputs = [os.path.dirname(process.cmdline()[-1]) for process in (old_ffmpeg, new_ffmpeg)]
        assert outputs[0].startswith(old_folder + os.sep) and outputs[1].startswith(new.session.folder + os.sep)

        def new_session_served() -> bool:
            assert files_in(old_folder) >= before, before - files_in(old_folder)  # nothing of the old one deleted
            status, _, body = app.get("/streams/again/media_0.m3u8")
            return status == 200 and new.session.name in body.decode()

        wait_for(new_session_served, 30)
        served = Listing.parse(app.text("/streams/again/media_0.m3u8"))
        assert all(uri.startswith(new.session.name + "/") for uri in served.uris), served.text
        # Numbered on from the old session, a discontinuity first: a player that was
        # still reading the old playlists sees neither numbers going back nor an end.
        assert served.sequence > max(old_served.numbered()), (old_served.text, served.text)
        assert served.discontinuity_before(served.uris[0]), served.text
        assert old_ffmpeg.status() == psutil.STATUS_STOPPED  # all that while, the old one was still there
    finally:
        old_ffmpeg.resume()
    try:
        # Let go, the old ffmpeg finishes into its own folder, untouched by the new one.
        wait_for(lambda: not old_ffmpeg.is_running() or old_ffmpeg.status() == psutil.STATUS_ZOMBIE, 20)
        after = files_in(old_folder)
        assert after >= before and after != before, (before, after)  # its last segment, written in its folder
        assert "again" in app.app.streams and new.transcoder.pid is not None
        status, _, body = app.get("/streams/again/media_0.m3u8")
        assert status == 200 and "#EXT-X-ENDLIST" not in body.decode()  # the old session's end is not the new one's
        # The old session's segments stay readable by their names until its files go.
        assert app.get(f"/streams/again/{old_served.uris[0]}")[0] == 200
    finally:
        if second is not None:
            second.kill()
            second.wait()


#: The longest the page's player may stop while ffmpeg restarts, by the signal that ended
#: it (before: 5.6 s after a SIGKILL, and a SIGTERM froze it for good behind ffmpeg's
#: #EXT-X-ENDLIST). A SIGTERMed ffmpeg first finishes its segments, so its restart comes
#: later: 0-4.3 s measured on 2 busy cores.
MAX_STALL_SECONDS = {signal.SIGKILL: 4.0, signal.SIGTERM: 8.0}


@pytest.mark.timeout(150)
@pytest.mark.skipif(chromium_paths() is None, reason=MISSING)
def test_the_page_keeps_playing_across_transcoder_restarts(ingest: Any, record_property: Any) -> None:  # noqa: F811
    """hls.js on the ingest page: after ffmpeg is killed (SIGKILL), then stopped (SIGTERM),
    the same player carries on (no fatal error, no reload), its clock never goes back,
    and it stalls briefly if at all."""
    app = ingest()
    encoder = publish(app.rtmp("watch"), "320x240", 120)
    try:
        wait_master(app, "watch")
        wait_for(lambda: len(segments(app.text("/streams/watch/media_0.m3u8"))) >= 3, 20)
        with Browser() as browser:
            browser.open(f"{app.base}/?stream=watch")
            browser.wait("const v = document.getElementById('player');"
                         "return v.readyState >= 2 && v.currentTime > 2", "playback", 40)
            browser.run("window.__player = hls; return true")
            transcoder = app.app.streams["watch"].transcoder
            for restarts, signal_number in enumerate((signal.SIGKILL, signal.SIGTERM), start=1):
                wait_for(lambda: transcoder.pid is not None, 20, "ffmpeg running")
                os.kill(transcoder.pid, signal_number)  # type: ignore[arg-type]
                killed = gevent.get_hub().loop.now()
                at_kill = browser.run("return document.getElementById('player').currentTime")
                samples: list[tuple[float, float]] = []

                def played_on() -> bool:
                    samples.append((gevent.get_hub().loop.now() - killed,  # noqa: B023
                                    browser.run("return document.getElementById('player').currentTime")))
                    return samples[-1][1] > at_kill + 8  # noqa: B023

                wait_for(played_on, 45, "8 s played past the kill")
                state = browser.state()
                assert browser.run("return hls === window.__player"), state  # the same player: no restart
                assert state["hlsErrors"] == [] and state["errors"] == [], state
                times = [t for _, t in samples]
                assert times == sorted(times), "the player's clock went back"
                stall = longest_stall(samples)
                record_property(f"stall_seconds_{signal.Signals(signal_number).name}", round(stall, 2))
                assert transcoder.restarts == restarts and stall < MAX_STALL_SECONDS[signal_number], (stall, samples)
    finally:
        encoder.kill()
        encoder.wait()
