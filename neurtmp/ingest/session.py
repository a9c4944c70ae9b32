"""Session: the files of one publish of a key, and the playlists players get from them.

Ownership: a session is a folder of its own, `<key folder>/<session name>/`, and each
ffmpeg run of the session (the first, and each restart after a crash, a stall or a
signal) writes a fresh subfolder of it, `r1/`, `r2/`, ... (`begin_run`). So no two
ffmpeg processes ever write the same folder, and nothing a running ffmpeg writes is ever
deleted: a run's folder is only removed (`begin_run` prunes those far behind the live
edge) once a later run has begun, that is once its ffmpeg is gone, and the session's
folder only once the session has finished (`IngestApp` removes it later still).

Continuity: players never read ffmpeg's playlists. The HLS media playlists and the DASH
manifest are spliced from the runs on each request (`neurtmp.ingest.splice_hls`,
`neurtmp.ingest.splice_dash`): media sequence numbers count on from run to run, an
#EXT-X-DISCONTINUITY (a new DASH Period) marks each restart, and #EXT-X-ENDLIST (a static
manifest) comes only once `finish` says the stream has ended, whatever ffmpeg wrote on its
way out. Media segments are served under names of the session's own numbering,
`<session>/chunk-<representation>-<number>.m4s` (the number is the HLS media sequence
number and the DASH $Number$), so a name never stands for two different segments: not
across runs, nor across sessions (the session name is new each time). Initialization
segments are served from their run's folder, `<session>/r<N>/init-<representation>.m4s`.
Only segments written whole are listed (`neurtmp.ingest.whole`).

A session may continue the numbering of the key's previous one (`Continuation`): a
player that was still reading the previous session's playlists then sees a discontinuity,
not numbers going back.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass

from neurtmp.ingest import splice_dash, splice_hls
from neurtmp.ingest.ladder import EXTRA_SEGMENTS, WINDOW_SEGMENTS
from neurtmp.ingest.renditions import AudioRendition, label_master
from neurtmp.ingest.whole import segment_is_whole, whole_manifest, whole_playlist

__all__ = ["Continuation", "Run", "Session"]

log = logging.getLogger(__name__)

#: The names ffmpeg gives a run's files (`neurtmp.ingest.ladder`).
MANIFEST = "manifest.mpd"
MASTER = "master.m3u8"
_MEDIA_PLAYLIST = re.compile(r"media_\d+\.m3u8")
_CHUNK = re.compile(r"chunk-([A-Za-z0-9_]+)-(\d+)\.m4s")
_INIT = re.compile(r"init-[A-Za-z0-9_]+\.m4s")
_RUN = re.compile(r"r(\d+)")


@dataclass(frozen=True)
class Continuation:
    """Where a session's numbering starts: the key's previous session's next numbers."""

    #: The media sequence number of its first segment.
    number: int = 1
    #: The discontinuity sequence number of its first segment.
    cc: int = 0
    #: The stream's availabilityStartTime (epoch seconds), None: the first run's.
    origin: float | None = None
    #: Whether players may have seen segments before it (a discontinuity comes first).
    follows: bool = False


@dataclass
class Run:
    """One ffmpeg run of a session: its folder and where its segments lie in the
    session's numbering and timeline."""

    index: int
    folder: str
    #: The session's number of ffmpeg's segment 1 of this run.
    base: int
    #: The discontinuity sequence number of its segments.
    cc: int
    #: Its ffmpeg has exited (a later run began, or the session finished): its files are final.
    closed: bool = False
    #: Its folder was removed (far behind the live edge).
    pruned: bool = False
    #: The highest segment number ffmpeg listed for it (once closed).
    span: int = 0
    #: When its folder was made, just before its ffmpeg started (epoch seconds).
    began: float = 0.0
    #: Its DASH Period's start, seconds from the stream's availabilityStartTime (once known).
    start: float | None = None
    #: The audio renditions its ffmpeg encodes (they name the master playlist's audio entries).
    audio: tuple[AudioRendition, ...] = ()

    @property
    def name(self) -> str:
        return f"r{self.index}"


class Session:
    """One publish of a key (see the module docstring).

    Args:
        folder: the session's folder (made with its first run's).
        segment_duration: seconds per segment.
        continuation: where its numbering starts.
    """

    def __init__(self, folder: str, segment_duration: float, continuation: Continuation = Continuation()) -> None:
        self.folder = folder
        self.name = os.path.basename(folder)
        self.segment_duration = segment_duration
        self.continuation_from = continuation
        self.runs: list[Run] = []
        #: The stream has ended: the publisher left and the last ffmpeg is gone.
        self.ended = False
        #: The stream's availabilityStartTime (epoch seconds), once known.
        self.origin = continuation.origin
        self._head: ET.Element | None = None
        #: What closed runs' files say, read once: (run index, playlist name) -> parsed.
        self._playlists: dict[tuple[int, str], splice_hls.Parsed | None] = {}
        #: Run index -> its Period, for closed runs.
        self._periods: dict[int, ET.Element | None] = {}

    def __repr__(self) -> str:
        return f"<Session {self.folder} runs={len(self.runs)}{' ended' if self.ended else ''}>"

    # -- runs ------------------------------------------------------------------------------

    @property
    def run_folder(self) -> str | None:
        """The folder the newest run writes (None before the first)."""
        return self.runs[-1].folder if self.runs else None

    def begin_run(self, audio: Sequence[AudioRendition] = ()) -> str:
        """A fresh folder for the next ffmpeg run, made now. The run before it is closed:
        call this only once its ffmpeg is gone.

        Args:
            audio: the audio renditions the run encodes.

        Raises:
            OSError: the folder cannot be made.
        """
        if self.runs:
            self._close(self.runs[-1])
            previous = self.runs[-1]
            base = previous.base + previous.span
            cc = previous.cc + (1 if previous.span else 0)
        else:
            base, cc = self.continuation_from.number, self.continuation_from.cc
        index = len(self.runs) + 1
        run = Run(index, os.path.join(self.folder, f"r{index}"), base, cc, began=time.time(), audio=tuple(audio))
        os.makedirs(run.folder)
        self.runs.append(run)
        self._prune(base - 1)
        return run.folder

    def finish(self) -> None:
        """The stream has ended (its last ffmpeg is gone): the playlists end."""
        if self.runs:
            self._close(self.runs[-1])
        self.ended = True

    def continuation(self) -> Continuation:
        """Where the key's next session's numbering starts: after this one's."""
        number, cc, follows = self.continuation_from.number, self.continuation_from.cc, self.continuation_from.follows
        for run in self.runs:
            highest = run.span if run.closed else self._highest(run)
            if highest:
                number, cc, follows = run.base + highest, run.cc + 1, True
        return Continuation(number, cc, self.origin, follows)

    def _close(self, run: Run) -> None:
        if not run.closed:
            run.span = self._highest(run)
            run.closed = True  # its files are read once more, final, on the next request

    def _highest(self, run: Run) -> int:
        """The highest segment number ffmpeg listed for `run`, in any playlist or the manifest."""
        highest = 0
        try:
            names = os.listdir(run.folder)
        except OSError:
            return 0
        for name in names:
            if _MEDIA_PLAYLIST.fullmatch(name):
                parsed = splice_hls.parse_media(_read(os.path.join(run.folder, name)).decode(errors="replace"))
                for entry in parsed.entries if parsed else ():
                    found = _CHUNK.fullmatch(entry.uri)
                    if found:
                        highest = max(highest, int(found.group(2)))
        root = splice_dash.parse_manifest(_read(os.path.join(run.folder, MANIFEST)))
        period = splice_dash.period_of(root) if root is not None else None
        if period is not None:
            highest = max(highest, splice_dash.highest_number(period))
        return highest

    def _prune(self, newest: int) -> None:
        """Remove the folders of closed runs whose segments are all far behind `newest`."""
        for run in self.runs[:-2]:
            if run.closed and not run.pruned and run.base + run.span - 1 < newest - WINDOW_SEGMENTS - EXTRA_SEGMENTS:
                shutil.rmtree(run.folder, ignore_errors=True)
                run.pruned = True
                log.debug("%s: %s removed (behind the live edge)", self.folder, run.name)

    def _live_runs(self) -> list[Run]:
        return [run for run in self.runs if not run.pruned]

    # -- HLS -------------------------------------------------------------------------------

    def master_playlist(self) -> bytes | None:
        """The newest run's master playlist (None: none written whole yet), its audio
        entries named after the run's audio renditions."""
        for run in reversed(self._live_runs()):
            text = whole_playlist(_read(os.path.join(run.folder, MASTER)).decode(errors="replace"), run.folder)
            if text is not None:
                return label_master(text, run.audio).encode()
        return None

    def _parsed(self, run: Run, name: str) -> splice_hls.Parsed | None:
        cached = (run.index, name)
        if run.closed and cached in self._playlists:
            return self._playlists[cached]
        parsed = splice_hls.parse_media(_read(os.path.join(run.folder, name)).decode(errors="replace"))
        if run.closed:
            self._playlists[cached] = parsed
        return parsed

    def media_playlist(self, name: str) -> bytes | None:
        """The spliced media playlist `name` ("media_0.m3u8"); None when it has no whole
        segment to list yet."""
        segments: list[splice_hls.Segment] = []
        target = 0
        for run in self._live_runs():
            parsed = self._parsed(run, name)
            if parsed is None or parsed.init is None:
                continue
            target = max(target, parsed.target)
            init = f"{self.name}/{run.name}/{parsed.init}"
            for entry in parsed.entries:
                found = _CHUNK.fullmatch(entry.uri)
                if found is None:
                    continue
                number = int(found.group(2))
                if run.closed and number > run.span:
                    continue
                served = run.base + number - 1
                segments.append(splice_hls.Segment(served, run.cc, entry.duration,
                                                   f"{self.name}/chunk-{found.group(1)}-{served:05d}.m4s", init,
                                                   entry.tags, number == 1))
        segments = splice_hls.contiguous_tail(segments[-WINDOW_SEGMENTS:], self._whole)
        if not segments:
            return None
        origin_cc = self.continuation_from.cc - (1 if self.continuation_from.follows else 0)
        return splice_hls.render_media(segments, target, origin_cc, self.ended).encode()

    def _whole(self, segment: splice_hls.Segment) -> bool:
        path = self.segment_file(segment.uri.partition("/")[2])
        init = self.segment_file(segment.init.partition("/")[2])
        return path is not None and init is not None

    # -- DASH ------------------------------------------------------------------------------

    def _run_period(self, run: Run) -> ET.Element | None:
        """The run's Period, listing its whole segments only (cached once closed)."""
        if run.closed and run.index in self._periods:
            return self._periods[run.index]
        data = whole_manifest(_read(os.path.join(run.folder, MANIFEST)), run.folder)
        root = splice_dash.parse_manifest(data) if data is not None else None
        period = None
        if root is not None:
            period = splice_dash.period_of(root)
            if run.start is None:
                self._place(run, root)
            if self._head is None:
                self._head = root
        if run.closed:
            self._periods[run.index] = period
        return period

    def _place(self, run: Run, root: ET.Element) -> None:
        """Fix the run's Period start: where its media lies on the wall clock (its
        manifest's availabilityStartTime; a static one has none: when its ffmpeg
        started), after the Period before it."""
        start = splice_dash.availability_start(root) or run.began
        earliest = 0.0
        for before in reversed(self.runs[:run.index - 1]):
            period = self._run_period(before) if not before.pruned else None
            if period is not None and before.start is not None:
                earliest = before.start + splice_dash.content_end(period)
                break
        if self.origin is None:
            self.origin = start
        run.start = max(start - self.origin, earliest)

    def manifest(self) -> bytes | None:
        """The spliced DASH manifest: a Period per run; None when none has a whole segment."""
        periods: list[tuple[Run, ET.Element]] = []
        for run in self._live_runs():
            period = self._run_period(run)
            if period is not None and run.start is not None and splice_dash.highest_number(period):
                periods.append((run, period))
        if not periods or self._head is None or self.origin is None:
            return None
        newest = max(run.base - 1 + splice_dash.highest_number(period) for run, period in periods)
        kept = [splice_dash.relocate(period, f"{self.name}-{run.name}", run.start or 0.0,
                                     f"{self.name}/{run.name}/", f"{self.name}/", run.base - 1)
                for run, period in periods
                if run.base - 1 + splice_dash.highest_number(period) > newest - WINDOW_SEGMENTS]
        return splice_dash.render_manifest(self._head, kept, self.origin, time.time(), self.segment_duration,
                                           WINDOW_SEGMENTS, self.ended)

    # -- segments --------------------------------------------------------------------------

    def segment_file(self, path: str) -> str | None:
        """The file of a segment by its served name under the session
        ("chunk-0-00012.m4s", "r2/init-0.m4s"), when it is written whole; else None."""
        found = _CHUNK.fullmatch(path)
        if found is not None:
            number = int(found.group(2))
            runs = [run for run in self.runs if run.base <= number]
            if not runs or runs[-1].pruned:
                return None
            run = runs[-1]
            full = os.path.join(run.folder, f"chunk-{found.group(1)}-{number - run.base + 1:05d}.m4s")
        else:
            folder, _, name = path.partition("/")
            run_match = _RUN.fullmatch(folder)
            if run_match is None or not _INIT.fullmatch(name):
                return None
            index = int(run_match.group(1))
            if not 1 <= index <= len(self.runs) or self.runs[index - 1].pruned:
                return None
            full = os.path.join(self.runs[index - 1].folder, name)
        return full if segment_is_whole(full) else None


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""
