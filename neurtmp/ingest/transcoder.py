"""Transcoder: one supervised ffmpeg per published stream, fed FLV over a pipe.

The publisher's greenlet only hands packets to `feed`, which never blocks: FLV tags go
into a bounded queue that a writer greenlet drains into ffmpeg's stdin. If ffmpeg falls
behind and the queue fills, video is dropped until the next key frame (counted). ffmpeg
starts at the first video key frame (the ladder needs the input size, from the sequence
header's SPS or onMetaData); its `-progress` output (fps, speed, dropped and duplicated
frames) is kept for status and metrics. When it dies, makes no progress for
`stall_timeout` seconds while input flows, or cannot be started at all (no ffmpeg, no
descriptors left, an output folder that cannot be made), it is restarted with backoff,
fed the cached metadata and sequence headers, then video from the next key frame. After
`MAX_FAILURES` such failures in a row without a frame encoded, it gives up and tells
`on_failure` why, as a status description for the publisher. `stop()` ends the input,
so ffmpeg finishes its last segments, then TERM, then KILL.

Every ffmpeg run writes a fresh folder, asked of `new_folder` only once the run before
is gone (killed and waited for): one ffmpeg per folder, ever. The playlists players get
are spliced from those folders (`neurtmp.ingest.session`), so a restart continues them.
The ladder's rungs are chosen at the first start and kept for the stream, so every run
encodes the same renditions and each HLS media playlist carries on across restarts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import gevent
import gevent.queue

import neurtmp
from neurtmp.codec import avc, flv
from neurtmp.ingest import _process
from neurtmp.ingest.ladder import Rung, ffmpeg_command, plan_rungs, rungs_for
from neurtmp.ingest.multitrack import (
    MAX_PROBE_TAGS,
    RECOVERY_GOPS,
    AlignmentWatch,
    TrackProbe,
    legacy_tracks,
    video_kind,
)
from neurtmp.ingest.renditions import AudioRendition, audio_renditions

__all__ = ["Transcoder", "header_size", "metadata_size"]

log = logging.getLogger(__name__)

#: FLV tags queued for ffmpeg at most (about 30 s of 30 fps video with audio).
MAX_QUEUED_TAGS = 2048
#: Seconds ffmpeg gets to finalise its playlists after its input ends, before TERM.
FINALISE_SECONDS = 10.0
#: Restart delays: 1, 2, 4 ... this many seconds.
MAX_BACKOFF = 30.0
#: Seconds of healthy encoding after which the backoff starts again from 1 s.
HEALTHY_SECONDS = 30.0
#: ffmpeg runs in a row that end without one frame encoded (or cannot start) before the
#: publisher is given up on: input ffmpeg cannot decode would otherwise restart it forever.
MAX_FAILURES = 3
#: The publisher's status description when ffmpeg never encodes a frame of its input.
UNDECODABLE = "400 undecodable video"
#: ffmpeg error lines logged per run; the rest are counted (undecodable input makes
#: several a frame).
MAX_LOGGED_ERRORS = 20
_TAG_AUDIO, _TAG_VIDEO, _TAG_SCRIPT = 8, 9, 18


def metadata_size(metadata: dict[str, Any]) -> tuple[int, int] | None:
    """(width, height) as onMetaData says, if it does."""
    width, height = metadata.get("width"), metadata.get("height")
    if isinstance(width, (int, float)) and isinstance(height, (int, float)) and width > 0 and height > 0:
        return int(width), int(height)
    return None


def header_size(payload: bytes) -> tuple[int, int] | None:
    """(width, height) from an AVC video sequence header's first SPS; None when it is
    not AVC or cannot be read."""
    try:
        config = avc.parse_decoder_configuration(payload[5:])
        return avc.sps_dimensions(config.sps[0])
    except Exception:
        return None


class Transcoder:
    """Encodes one stream's ladder, a fresh folder per ffmpeg run (see the module docstring).

    Args:
        key: the stream key (for logs).
        new_folder: makes the folder for the next ffmpeg run, given the audio renditions
            it encodes, and returns its path
            (`Session.begin_run`); raises OSError when it cannot.
        ffmpeg: the ffmpeg binary.
        encoder: "x264" or "nvenc_h264".
        preset: x264 preset.
        segment_duration: seconds per segment.
        stall_timeout: seconds without progress (while input flows) before a restart.
        on_failure: called with a status description ("400 undecodable video",
            "500 transcoder cannot start: ...") when the transcoder gives up.
        passthrough_heights: heights of a multitrack input's tracks to pass through
            though the ladder has no such rung.
        audio_languages: the languages of the input's audio tracks, in track id order
            (`neurtmp.ingest.renditions`).

    A multitrack input (Enhanced RTMP v2: the tap plays every track as published) is fed
    to ffmpeg whole: the tracks whose height is a rung's are packaged as they are, the
    other rungs transcoded from the highest track, once `neurtmp.ingest.multitrack` has
    seen the tracks' key frames aligned; else every rung is transcoded from the highest.
    """

    def __init__(self, key: str, new_folder: Callable[[tuple[AudioRendition, ...]], str], ffmpeg: str, encoder: str,
                 preset: str, segment_duration: float, stall_timeout: float,
                 on_failure: Callable[[str], None] | None = None, passthrough_heights: tuple[int, ...] = (),
                 audio_languages: tuple[str, ...] = ()) -> None:
        self.key = key
        self.new_folder = new_folder
        #: The folder the current (or last) ffmpeg run writes.
        self.out_dir: str | None = None
        self.ffmpeg = ffmpeg
        self.encoder = encoder
        self.preset = preset
        self.segment_duration = segment_duration
        self.stall_timeout = stall_timeout
        self.on_failure = on_failure
        #: waiting (for a key frame) | encoding | restarting | finished | error | failed (gave up)
        self.status = "waiting"
        self.rungs: list[Rung] = []
        self.input_size: tuple[int, int] | None = None
        #: The latest `-progress` block (frame, fps, speed, drop_frames, dup_frames, ...).
        self.progress: dict[str, str] = {}
        self.restarts = 0
        self.dropped_tags = 0
        self.last_error = ""
        #: Why the transcoder gave up (a status description), once it has.
        self.failure: str | None = None
        self._failures = 0
        self._encoded = False
        self._metadata: bytes | None = None
        self._metadata_values: dict[str, Any] = {}
        self._video_header: bytes | None = None
        #: Each audio track's sequence header as published (a ManyTracks one under each of its tracks).
        self._audio_headers: dict[int, bytes] = {}
        self._audio_tracks: set[int] = set()
        self.audio_languages = audio_languages
        #: The audio renditions, decided at ffmpeg's first start and kept for the stream.
        self.audio: tuple[AudioRendition, ...] = ()
        self._base: int | None = None
        self._queue: gevent.queue.Queue = gevent.queue.Queue(MAX_QUEUED_TAGS)
        self._skipping_video = False
        self._process: _process.Child | None = None
        self._greenlets: list[gevent.Greenlet] = []
        self._watchdog: gevent.Greenlet | None = None
        self._stopping = False
        self._last_progress = 0.0
        self._last_input = 0.0
        self._started_at = 0.0
        self._backoff = 1.0
        self.passthrough_heights = passthrough_heights
        #: Multitrack: each video track's sequence header as published, and its size.
        self._track_headers: dict[int, bytes] = {}
        self._track_sizes: dict[int, tuple[int, int]] = {}
        #: Multitrack: whether the tracks' key frames were aligned (None: single-track,
        #: or not known yet).
        self.keyframes_aligned: bool | None = None
        #: Multitrack: the input video stream the transcoded rungs are scaled from.
        self._source = 0
        self._reference: int | None = None
        self._probe: TrackProbe | None = None
        #: The ladder passing the encoder's tracks through, once the probe chose it.
        self._plan: list[Rung] | None = None
        #: While tracks are passed through: their key frames checked on.
        self._alignment: AlignmentWatch | None = None
        #: While the plan's tracks are transcoded for a while (the slate): watched to come back.
        self._recovery: AlignmentWatch | None = None
        #: The track whose key frame starts a run, and that transcoded rungs are scaled from.
        self._start_track = neurtmp.DEFAULT_TRACK
        self._held: list[tuple[int, int, bytes]] = []
        #: Multitrack: the tracks ffmpeg has had a key frame of in this run.
        self._keyed: set[int] = set()

    def __repr__(self) -> str:
        return f"<Transcoder {self.key} {self.status}>"

    # -- input (the publisher's greenlet) -------------------------------------------------

    def feed(self, packet: neurtmp.Packet) -> None:
        """One published message; never blocks."""
        if self._stopping:
            return
        self._last_input = time.monotonic()
        payload = packet.payload
        type_id = packet.type_id
        if isinstance(packet, neurtmp.DataPacket):
            if packet.name != "onMetaData":
                return
            self._metadata = payload
            self._metadata_values = dict(packet.metadata or {})
            self._size_from_metadata(self._metadata_values)
            self._queue_tag(_TAG_SCRIPT, packet.timestamp, payload)
            return
        if type_id == neurtmp.MessageType.AUDIO:
            tracks = self._audio_tracks_of(payload)
            self._audio_tracks.update(tracks)
            if packet.is_sequence_header:
                for track in tracks:
                    self._audio_headers[track] = payload
            self._queue_tag(_TAG_AUDIO, packet.timestamp, payload)
            return
        if type_id != neurtmp.MessageType.VIDEO:
            return
        parts = legacy_tracks(payload)
        if self._track_headers or any(track != 0 for track, _ in parts):
            if not self._track_headers and self._video_header is not None:  # track 0 came first, as legacy
                self._track_headers[0] = self._video_header
                size = header_size(self._video_header)
                if size is not None:
                    self._track_sizes[0] = size
            self._feed_multitrack(packet.timestamp, payload, parts)
            return
        if packet.is_sequence_header:
            self._video_header = payload
            self._size_from_header(payload)
            self._queue_tag(_TAG_VIDEO, packet.timestamp, payload)
            return
        key = packet.is_key_frame
        if self._process is None and not self._stopping and self.status == "waiting":
            if not key or self.input_size is None:
                return
            try:
                self._start(packet.timestamp)
            except OSError as exc:
                self._process = None
                self.status = "restarting"
                gevent.spawn(self._after_failure, f"could not start ({exc})",
                             f"500 transcoder cannot start: {exc.strerror or exc}")
                return
        if self._skipping_video and not key:
            self.dropped_tags += 1
            return
        self._skipping_video = False
        self._queue_tag(_TAG_VIDEO, packet.timestamp, payload, video=True)

    # -- multitrack input ------------------------------------------------------------------

    @staticmethod
    def _audio_tracks_of(payload: bytes) -> list[int]:
        try:
            return [track for track, _ in neurtmp.split_audio(payload)]
        except Exception:  # malformed: taken as the default track's (ffmpeg judges it)
            return [0]

    def _feed_multitrack(self, timestamp: int, payload: bytes, parts: list[tuple[int, bytes]]) -> None:
        kinds = [(track, *video_kind(legacy), len(legacy)) for track, legacy in parts]
        if all(header for _, _, header, _ in kinds):
            for track, legacy in parts:
                self._track_headers[track] = payload if len(parts) == 1 else legacy
                size = header_size(legacy)
                if size is not None:
                    self._track_sizes[track] = size
            self._queue_tag(_TAG_VIDEO, timestamp, payload)
            return
        if self._process is None and not self._stopping and self.status == "waiting":
            if not self._probe_or_start(timestamp, payload, kinds):
                return
        if self._process is not None and self._watch_alignment(timestamp, kinds):
            return  # a new run starts at the next key frame
        # a track joins ffmpeg's input at its first key frame of the run
        for track, key, _, _ in kinds:
            if key:
                self._keyed.add(track)
        if not any(track in self._keyed for track, *_ in kinds):
            self.dropped_tags += 1
            return
        if self._skipping_video and not any(key for _, key, _, _ in kinds):
            self.dropped_tags += 1
            return
        self._skipping_video = False
        self._queue_tag(_TAG_VIDEO, timestamp, payload, video=True)

    def _probe_or_start(self, timestamp: int, payload: bytes, kinds: list[tuple[int, bool, bool, int]]) -> bool:
        """Before ffmpeg runs: hold the input while probing the first GOPs, then start
        it. True: ffmpeg runs and this message is to be queued."""
        if self._reference is None:
            if not self._track_sizes:
                return False
            self._reference = max(self._track_sizes, key=lambda t: self._track_sizes[t][1])
            self.input_size = self._track_sizes[self._reference]
        reference = self._reference
        if self.rungs:  # a restart: the decision stands; start at the source track's key frame
            if not any(track == self._start_track and key for track, key, _, _ in kinds):
                return False
            self._start_logged(timestamp)
            return self._process is not None
        if self._probe is None:
            self._probe = TrackProbe(reference)
        probe = self._probe
        for track, key, _, size in kinds:
            probe.note(track, timestamp, size, key)
        if probe.start is None:
            return False
        if not probe.ready and len(self._held) < MAX_PROBE_TAGS:
            self._held.append((_TAG_VIDEO, timestamp, payload))
            return False
        self._decide()
        held, self._held = self._held, []
        self._start_logged(probe.start)
        if self._process is None:
            return False
        for tag_type, held_time, held_payload in held:
            if tag_type == _TAG_VIDEO:
                self._feed_multitrack(held_time, held_payload, legacy_tracks(held_payload))
            else:
                self._queue_tag(tag_type, held_time, held_payload)
        return True

    def _decide(self) -> None:
        """Pass through the tracks the ladder has rungs for, or transcode them all."""
        assert self._probe is not None and self._reference is not None
        tracks = sorted(self._track_sizes)
        self._source = tracks.index(self._reference)
        self._start_track = self._reference
        self.keyframes_aligned = self._probe.aligned()
        if self.keyframes_aligned:
            self.rungs = plan_rungs([(*self._track_sizes[t], self._probe.kbps(t)) for t in tracks],
                                    self.passthrough_heights)
            if any(rung.copy_of is not None for rung in self.rungs):
                self._plan = list(self.rungs)
                self._alignment = self._watch_plan()
        else:
            log.warning("%s: the encoder's key frames are not aligned across its %d video tracks: transcoding "
                        "every rung from track %d", self.key, len(tracks), self._reference)
            self.rungs = rungs_for(*self._track_sizes[self._reference])

    # -- passing tracks through, or not, as the input goes ---------------------------------

    def publisher_gone(self) -> None:
        """The stream's publisher left, and the stream goes on with the slate of the
        reconnect grace, which has track 0 alone: a run passing the encoder's tracks
        through gives way to one transcoding every rung from track 0, until the encoder's
        tracks are back with their key frames aligned (`RECOVERY_GOPS`)."""
        self._audio_headers.clear()  # the next publisher's (or the slate's) are what comes
        if self._alignment is not None and not self._stopping:  # (running, or about to start again)
            log.info("%s: the publisher left: every rung transcoded from track %d (the slate) until the encoder's "
                     "tracks are back", self.key, neurtmp.DEFAULT_TRACK)
            self._leave_passthrough(neurtmp.DEFAULT_TRACK, recoverable=True)

    def _watch_plan(self) -> AlignmentWatch:
        assert self._plan is not None and self._reference is not None
        tracks = sorted(self._track_sizes)
        return AlignmentWatch(self._reference, [tracks[rung.copy_of] for rung in self._plan
                                                if rung.copy_of is not None])

    def _watch_alignment(self, timestamp: int, kinds: list[tuple[int, bool, bool, int]]) -> bool:
        """Note a message's key frames; True when the run is to be replaced (its tracks'
        key frames drifted apart, or came back aligned after a while transcoded)."""
        if self._alignment is not None:
            assert self._reference is not None  # (set with the plan)
            for track, key, _, _ in kinds:
                if not self._alignment.note(track, timestamp, key):
                    log.warning("%s: the encoder's key frames are no longer aligned across its video tracks (%s): "
                                "transcoding every rung from track %s from now on", self.key,
                                self._alignment.misaligned, self._reference)
                    self.keyframes_aligned = False
                    self._leave_passthrough(self._reference, recoverable=False)
                    return True
        elif self._recovery is not None:
            for track, key, _, _ in kinds:
                self._recovery.note(track, timestamp, key)
            if self._recovery.aligned_gops >= RECOVERY_GOPS:
                log.info("%s: the encoder's tracks are back, key frames aligned: passing them through again",
                         self.key)
                self._recovery = None
                assert self._plan is not None and self._reference is not None
                self.rungs = list(self._plan)
                self._start_track = self._reference
                self._source = sorted(self._track_sizes).index(self._reference)
                self._alignment = self._watch_plan()
                self._replace_run()
                return True
        return False

    def _leave_passthrough(self, source_track: int, recoverable: bool) -> None:
        """The same ladder, every rung transcoded from `source_track`, in a new run (the
        playlists go on after a discontinuity); with `recoverable`, the tracks are
        watched to be passed through again."""
        self._alignment = None
        self._recovery = self._watch_plan() if recoverable else None
        self.rungs = [Rung(rung.name, rung.width, rung.height, rung.bitrate_kbps) for rung in self.rungs]
        tracks = sorted(self._track_sizes)
        self._start_track = source_track if source_track in tracks else tracks[0]
        self._source = tracks.index(self._start_track)
        self._replace_run()

    def _replace_run(self) -> None:
        """End the running ffmpeg; the next run starts at the source track's next key
        frame once it is gone."""
        process, self._process = self._process, None
        if process is None:  # between runs: the next one starts with the new choice
            return
        self.status = "restarting"
        gevent.spawn(self._end_run, process)

    def _end_run(self, process: _process.Child) -> None:
        """Kill a run's ffmpeg (out of the publisher's greenlet); the next starts at the
        next key frame once it is gone."""
        self._kill(process)
        self.restarts += 1
        if not self._stopping:
            self.status = "waiting"
            self._skipping_video = False

    def _start_logged(self, timestamp: int) -> None:
        try:
            self._start(timestamp)
        except OSError as exc:
            self._process = None
            self.status = "restarting"
            gevent.spawn(self._after_failure, f"could not start ({exc})",
                         f"500 transcoder cannot start: {exc.strerror or exc}")

    def _queue_tag(self, tag_type: int, timestamp: int, payload: bytes, video: bool = False) -> None:
        if self._process is None:
            if self._probe is not None and self._probe.start is not None and not self.rungs \
                    and tag_type != _TAG_VIDEO and len(self._held) < MAX_PROBE_TAGS:
                self._held.append((tag_type, timestamp, payload))  # audio while probing
            return  # not started (or restarting): the cached headers go first at the start
        if self._base is None:
            self._base = timestamp
        try:
            self._queue.put_nowait(flv.tag_bytes(tag_type, max(0, timestamp - self._base), payload))
        except gevent.queue.Full:
            self.dropped_tags += 1
            if video:
                self._skipping_video = True  # until the next key frame

    def _size_from_metadata(self, metadata: dict[str, Any]) -> None:
        if self.input_size is None:
            self.input_size = metadata_size(metadata)

    def _size_from_header(self, payload: bytes) -> None:
        size = header_size(payload)
        if size is not None:
            self.input_size = size
        else:  # not AVC, or an SPS we cannot read: metadata may still say
            log.debug("%s: no size in the video sequence header", self.key)

    # -- the ffmpeg process ---------------------------------------------------------------

    def _start(self, timestamp: int) -> None:
        assert self.input_size is not None
        if not self.rungs:
            self.rungs = rungs_for(*self.input_size)
        if not self.audio and self._audio_tracks:
            self.audio = audio_renditions(sorted(self._audio_tracks), self.audio_languages, self._metadata_values)
        out_dir = self.out_dir = self.new_folder(self.audio)
        # a rendition whose track the input lacks now (the slate has one; an encoder may
        # come back with fewer) carries the default track's audio
        present = sorted(self._audio_headers)
        inputs = [present.index(rendition.track) if rendition.track in present else 0 for rendition in self.audio]
        command = ffmpeg_command(self.ffmpeg, self.rungs, out_dir, self.encoder, self.preset,
                                 self.segment_duration, self.audio, self._source, audio_inputs=inputs)
        child = self._process = _process.spawn(command)
        self._encoded = False
        self._queue = gevent.queue.Queue(MAX_QUEUED_TAGS)
        self._queue.put(flv.file_header(bool(self.audio), True))
        self._base = timestamp  # the key frame ffmpeg starts at is its time 0
        self._keyed = set()
        video_headers: list[bytes | None] = [self._track_headers[t] for t in sorted(self._track_headers)]
        video_headers = list(dict.fromkeys(video_headers)) or [self._video_header]
        audio_headers = dict.fromkeys(self._audio_headers[t] for t in sorted(self._audio_headers))
        for tag_type, cached in ((_TAG_SCRIPT, self._metadata), *((_TAG_VIDEO, h) for h in video_headers),
                                 *((_TAG_AUDIO, h) for h in audio_headers)):
            if cached is not None:
                self._queue_tag(tag_type, timestamp, cached)
        self.status = "encoding"
        self._started_at = self._last_progress = time.monotonic()
        self._greenlets = [gevent.spawn(self._write, child.stdin, self._queue),
                           gevent.spawn(self._read_progress, child.stdout),
                           gevent.spawn(self._read_errors, child.stderr)]
        if self._watchdog is None:
            self._watchdog = gevent.spawn(self._watch)
        log.info("%s: ffmpeg started: %s, %dx%d in -> %s (%s)", self.key, self.encoder, *self.input_size,
                 ", ".join(r.name for r in self.rungs), out_dir)

    def _write(self, stdin: Any, queue: gevent.queue.Queue) -> None:
        try:
            while True:
                data = queue.get()
                if data is None:
                    break
                stdin.write(data)  # buffered: written whole, however the pipe takes it
                if queue.empty():
                    stdin.flush()
        except (OSError, ValueError):
            pass  # ffmpeg went away: the watchdog restarts it
        finally:
            try:
                stdin.close()
            except (OSError, ValueError):
                pass

    def _read_progress(self, stdout: Any) -> None:
        block: dict[str, str] = {}
        for raw in stdout:
            key, _, value = raw.decode(errors="replace").strip().partition("=")
            block[key] = value
            if key == "progress":
                self.progress = block
                if not self._encoded and block.get("frame", "0").strip() not in ("", "0"):
                    self._encoded = True
                block = {}
                self._last_progress = time.monotonic()

    def _read_errors(self, stderr: Any) -> None:
        count = 0
        try:
            for raw in stderr:
                line = raw.decode(errors="replace").strip()
                if line:
                    self.last_error = line
                    count += 1
                    if count <= MAX_LOGGED_ERRORS:
                        log.warning("%s: ffmpeg: %s", self.key, line)
        finally:
            if count > MAX_LOGGED_ERRORS:
                log.warning("%s: ffmpeg: %d more error lines not logged (the last: %s)", self.key,
                            count - MAX_LOGGED_ERRORS, self.last_error)

    def _watch(self) -> None:
        """Restart ffmpeg when it dies or stalls while input flows."""
        while not self._stopping and self.failure is None:
            gevent.sleep(0.5)
            process = self._process
            if process is None or self._stopping:
                continue
            now = time.monotonic()
            exited = process.poll() is not None
            stalled = (now - self._last_progress > self.stall_timeout and now - self._last_input < 2.0)
            if not exited and not stalled:
                if now - self._started_at > HEALTHY_SECONDS:
                    self._backoff = 1.0
                continue
            if exited:
                reason = f"exited unexpectedly (status {process.returncode})"
            else:
                reason = f"made no progress for {self.stall_timeout:g} s"
            reason = f"{reason} ({self.last_error or 'no error'})"
            self._kill(process)
            self.status = "restarting"
            self._process = None
            self._after_failure(reason, UNDECODABLE)

    def _after_failure(self, reason: str, description: str) -> None:
        """ffmpeg died, stalled or could not start: restart it after the backoff, or give
        up after `MAX_FAILURES` in a row without a frame encoded."""
        self._failures = 0 if self._encoded else self._failures + 1
        self._encoded = False
        if self._failures >= MAX_FAILURES:
            self.status = "failed"
            self.failure = description
            log.error("%s: ffmpeg %s; giving up after %d failures in a row: %s", self.key, reason, self._failures,
                      description)
            if self.on_failure is not None:
                self.on_failure(description)
            return
        self.restarts += 1
        delay, self._backoff = self._backoff, min(self._backoff * 2, MAX_BACKOFF)
        log.warning("%s: ffmpeg %s; restarting in %g s", self.key, reason, delay)
        gevent.sleep(delay)
        if not self._stopping:
            self.status = "waiting"  # starts again at the next key frame
            self._skipping_video = False

    def _kill(self, process: _process.Child) -> None:
        gevent.killall(self._greenlets)  # they hold the pipes, closed below
        process.kill()
        if not process.wait(5):
            log.error("%s: ffmpeg %d did not die", self.key, process.pid)
        process.close()

    def stop(self) -> None:
        """End the input; ffmpeg finalises the playlists, else TERM, then KILL. Blocks
        the calling greenlet until ffmpeg is gone."""
        if self._stopping:
            return
        self._stopping = True
        if self._watchdog is not None:
            self._watchdog.kill(block=False)
        process = self._process
        if process is None:
            if self.failure is None:
                self.status = "finished"
            return
        try:
            self._queue.put_nowait(None)
        except gevent.queue.Full:
            process.stdin.close()
        if not process.wait(FINALISE_SECONDS):
            log.warning("%s: ffmpeg did not finish in %g s; terminating", self.key, FINALISE_SECONDS)
            process.terminate()
            if not process.wait(3):
                process.kill()
                process.wait(5)
        gevent.joinall(self._greenlets, timeout=2)
        gevent.killall(self._greenlets)
        process.close()
        self.status = "finished" if process.returncode == 0 else "error"
        log.info("%s: ffmpeg finished (exit %s)", self.key, process.returncode)

    @property
    def pid(self) -> int | None:
        """The running ffmpeg's process id."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None
