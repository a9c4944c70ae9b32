"""IngestApp: RTMP ingest at /live/<key>, the live app for RTMP players, and one
supervised ffmpeg per stream writing the HLS/DASH ladder.

Built on the framework's public handler API. For each stream of a connection to the
ingest app, the app's publish and media handlers come first in the stream's chains
(keys, tokens, limits, the transcoder), then the live app's (`LiveApp.attach`), so RTMP
players of the same URL are served too.

The transcoder plays the key's live stream (`neurtmp.ingest.tap`): its input is what
players get, so an entry (`IngestStream`) lives as long as the live stream, not as one
publisher. It begins with the key's first publish; a publisher that leaves leaves the
stream live for the reconnect grace (the transcoder gets the slate, the playlists grow
on), a publisher of the key within the grace is spliced in, and a backup publisher
(``KEY?role=backup``) takes over when the primary stalls or leaves; the entry ends when
the live stream does. The per-publisher checks (key, token, bitrate, resolution) stay
per publisher (`Publisher`); max streams counts keys.

Each entry is a session with a folder of its own (`neurtmp.ingest.outputs`): the
transcoder's ffmpeg runs write fresh folders in it, the HTTP side serves playlists spliced
from them (continuous across transcoder restarts), and the session ends (#EXT-X-ENDLIST,
a static MPD) only when the stream has ended and its last ffmpeg is gone. A finished
session's folder is removed `keep_finished` seconds later, whether or not the key is
published again meanwhile (the new publish writes its own folder).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

import gevent

import neurtmp
from neurtmp.codec import gpu
from neurtmp.handlers import ConnectEventHandler, Refusal, StreamEventHandler
from neurtmp.ingest import _process
from neurtmp.ingest.access import BitrateMeter, check_key, check_token, split_name
from neurtmp.ingest.config import IngestConfig
from neurtmp.ingest.ladder import COPY
from neurtmp.ingest.multitrack import legacy_tracks
from neurtmp.ingest.outputs import Outputs
from neurtmp.ingest.renditions import language_list
from neurtmp.ingest.session import Session
from neurtmp.ingest.tap import TranscoderTap
from neurtmp.ingest.transcoder import Transcoder, header_size, metadata_size
from neurtmp.live import LiveApp, LiveStream

__all__ = ["IngestApp", "IngestStream", "Publisher", "choose_encoder"]

log = logging.getLogger(__name__)

#: The status a refused or disconnected publisher gets (with "400 ..." / "403 ...").
REJECTED = "NetStream.Publish.Rejected"
#: The status a publisher gets when its stream cannot be transcoded ("400 undecodable
#: video", "500 transcoder cannot start: ...").
FAILED = "NetStream.Publish.Failed"
#: Seconds a disconnected publisher's error status may take to reach it before the close.
DISCONNECT_FLUSH_SECONDS = 2.0
#: Seconds a finished stream stays in `/streams`, marked ended (the page shows "(ended)").
ENDED_LISTED_SECONDS = 30.0


def choose_encoder(config: IngestConfig) -> str:
    """"x264" or "nvenc_h264": for "auto", NVENC when NVML sees a GPU and ffmpeg can open
    h264_nvenc (tried once, with a tiny encode), else x264."""
    if config.encoder != "auto":
        return config.encoder
    if not gpu.gpu_count():
        return "x264"
    probe = [config.ffmpeg_path(), "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
             "color=size=256x144:rate=30", "-frames:v", "3", "-c:v", "h264_nvenc", "-f", "null", "-"]
    try:
        returncode, _, _ = _process.run(probe, timeout=30)
    except (OSError, TimeoutError):
        return "x264"
    return "nvenc_h264" if returncode == 0 else "x264"


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "", "N/A") else None
    except ValueError:
        return None


@dataclass
class Publisher:
    """One publisher of a key (the primary or its backup): what is checked of it."""

    stream: Any
    peer: str
    backup: bool = False
    meter: BitrateMeter = field(default_factory=BitrateMeter)
    published_at: float = field(default_factory=time.monotonic)
    over_limit_since: float | None = None
    #: Its own input size, from its sequence header (else its metadata): with several
    #: video tracks (Enhanced RTMP v2 multitrack), the tallest track's.
    input_size: tuple[int, int] | None = None
    #: Each video track's size, from its sequence header.
    track_sizes: dict[int, tuple[int, int]] = field(default_factory=dict)
    refused: bool = False

    def note_size(self, packet: neurtmp.Packet) -> None:
        if packet.type_id == neurtmp.MessageType.VIDEO and packet.is_sequence_header:
            for track, part in legacy_tracks(packet.payload):
                size = header_size(part)
                if size is not None:
                    self.track_sizes[track] = size
            if self.track_sizes:
                self.input_size = max(self.track_sizes.values(), key=lambda size: size[1])
        elif isinstance(packet, neurtmp.DataPacket) and packet.name == "onMetaData" and self.input_size is None:
            self.input_size = metadata_size(packet.metadata or {})


@dataclass
class IngestStream:
    """One ingested key: its transcoder (a player of the key's live stream), its session
    (its files), and its publishers now."""

    key: str
    transcoder: Transcoder
    session: Session
    live: LiveStream
    tap: TranscoderTap
    #: The publishers now (framework stream -> publisher): none within the grace.
    publishers: dict[Any, Publisher] = field(default_factory=dict)
    published_at: float = field(default_factory=time.monotonic)
    #: Bytes received from all its publishers.
    bytes_in: int = 0
    #: When the stream ended (monotonic), once it has.
    ended_at: float | None = None

    def publisher(self, backup: bool = False) -> Publisher | None:
        """The primary (or, with `backup`, the backup) publisher now."""
        return next((p for p in self.publishers.values() if p.backup == backup), None)

    def describe(self) -> dict[str, Any]:
        """The stream as `/streams` lists it."""
        size = self.transcoder.input_size
        progress = self.transcoder.progress
        live = self.live
        active = self.publisher(backup=live.active == "backup")
        return {
            "key": self.key,
            "live": self.ended_at is None,
            "ended": self.ended_at is not None,
            "status": self.transcoder.status,
            "reconnecting": self.ended_at is None and live.reconnecting,
            "active": live.active,
            "switches": live.switches,
            "publisher": live.publisher_peer,
            "backup": live.backup_peer,
            "uptime_s": round((self.ended_at or time.monotonic()) - self.published_at, 1),
            "bitrate_kbps": round(active.meter.bits_per_second() / 1000) if active is not None else 0,
            "bytes_in": self.bytes_in,
            "input_width": size[0] if size else None,
            "input_height": size[1] if size else None,
            "encoder": self.transcoder.encoder,
            "restarts": self.transcoder.restarts,
            "fps": _number(progress.get("fps")),
            "speed": _number(progress.get("speed", "").rstrip("x")),
            "dropped_frames": int(_number(progress.get("drop_frames")) or 0),
            "duplicated_frames": int(_number(progress.get("dup_frames")) or 0),
            "rungs": [{"name": r.name, "width": r.width, "height": r.height, "bitrate_kbps": r.bitrate_kbps,
                       "encoder": COPY if r.copy_of is not None else self.transcoder.encoder}
                      for r in self.transcoder.rungs],
            # a multitrack input: whether its key frames were aligned (False: every rung transcoded)
            "keyframes_aligned": self.transcoder.keyframes_aligned,
            # the audio renditions: the default one, then the alternates
            "audio": [{"track": a.track, "name": a.name, "language": a.language, "default": a.default}
                      for a in self.transcoder.audio],
            "hls": f"/streams/{self.key}/master.m3u8",
            "dash": f"/streams/{self.key}/dash/manifest.mpd",
        }


class IngestApp:
    """The ingest app on a server (see the module docstring).

    Args:
        config: the settings.
        encoder: "x264" or "nvenc_h264" (default: `choose_encoder(config)`).
    """

    def __init__(self, config: IngestConfig, encoder: str | None = None) -> None:
        self.config = config
        self.encoder = encoder or choose_encoder(config)
        self.output_dir = os.path.realpath(config.output_dir)
        self.live = LiveApp(config.live_options())
        self.streams: dict[str, IngestStream] = {}
        #: Finished streams still listed (for `ENDED_LISTED_SECONDS`), by key.
        self.ended: dict[str, IngestStream] = {}
        #: The sessions of each key, and what the HTTP side serves of them.
        self.outputs = Outputs(self.output_dir, config.segment_duration)
        self._by_stream: dict[Any, tuple[IngestStream, Publisher]] = {}
        self._removals: list[gevent.Greenlet] = []
        self._finishing: list[gevent.Greenlet] = []
        os.makedirs(self.output_dir, exist_ok=True)

    def install(self, server: neurtmp.Server) -> None:
        """Claim connections to the ingest app name on `server`."""
        server.install(_Connect(self))

    def attach(self, stream: neurtmp.Stream) -> None:
        """The ingest handlers, then the live app's, on a new stream."""
        stream.register_publish_event_handler(self._on_publish)
        stream.register_media_event_handler(self._on_media)
        self.live.attach(stream)

    def describe(self, include_ended: bool = True) -> list[dict[str, Any]]:
        """The streams as `/streams` lists them: the published ones, then (with
        `include_ended`) those that ended in the last `ENDED_LISTED_SECONDS`."""
        listed = [entry.describe() for entry in self.streams.values()]
        if include_ended:
            now = time.monotonic()
            for key, entry in list(self.ended.items()):
                if entry.ended_at is None or now - entry.ended_at > ENDED_LISTED_SECONDS:
                    del self.ended[key]
                elif key not in self.streams:
                    listed.append(entry.describe())
        return listed

    # -- publish ---------------------------------------------------------------------------

    def _on_publish(self, is_start: bool, stream: neurtmp.Stream, name: str, publish_type: str) -> Any:
        key, query = split_name(name)
        peer = stream.get_connection().get_peer_address()
        backup = query.get("role") == "backup"
        if not is_start:
            found = self._by_stream.pop(stream, None)
            if found is not None:  # the stream goes on (the grace, the backup) or ends: the tap hears
                found[0].publishers.pop(stream, None)
                log.info("%s: %s of %r left", peer, "backup" if found[1].backup else "publisher", key)
                if not found[0].publishers and self.config.reconnect_grace > 0:
                    found[0].transcoder.publisher_gone()  # the slate comes, track 0 alone
            return True
        refusal = self._refusal(key, query, backup)
        if refusal is not None:
            return refusal  # the framework logs it, with the description
        entry = self.streams.get(key)
        if entry is None:
            entry = self._open(key)
            log.info("%s: ingesting %r (%d of %d streams)", peer, key, len(self.streams), self.config.max_streams)
        else:
            log.info("%s: %s %r (the same stream: %s)", peer, "backup of" if backup else "publishes", key,
                     "reconnecting" if entry.live.reconnecting else "live")
        publisher = Publisher(stream, peer, backup)
        entry.publishers[stream] = publisher
        self._by_stream[stream] = (entry, publisher)
        return True

    def _open(self, key: str) -> IngestStream:
        """A key's first publish: a session, a transcoder, and the transcoder playing the
        key's live stream."""
        self.ended.pop(key, None)
        session = self.outputs.open(key)  # a folder of its own: an earlier session's ffmpeg may still be finishing
        config = self.config
        transcoder = Transcoder(key, session.begin_run, config.ffmpeg_path(), self.encoder, config.preset,
                                config.segment_duration, config.stall_timeout,
                                passthrough_heights=config.passthrough_height_list(),
                                audio_languages=language_list(config.audio_languages))
        tap = TranscoderTap(transcoder.feed, lambda: self._ended(entry))
        live = self.live.add_player(config.app, key, tap, track=None)  # every track as published
        entry = IngestStream(key, transcoder, session, live, tap)
        transcoder.on_failure = lambda description: self._failed(entry, description)
        self.streams[key] = entry
        return entry

    def _refusal(self, key: str, query: dict[str, str], backup: bool) -> Refusal | None:
        problem = check_key(key)
        if problem is not None:
            return Refusal(REJECTED, f"400 {problem}")
        if self.config.auth_secret:
            problem = check_token(self.config.auth_secret, key, query)
            if problem is not None:
                return Refusal(REJECTED, f"403 {problem}")
        entry = self.streams.get(key)
        if entry is not None:  # a publisher back within the grace, or a backup: the same stream
            if entry.publisher(backup) is not None:
                what = "has a backup publisher" if backup else "is already being published"
                return Refusal("NetStream.Publish.BadName", f"403 {key} {what}")
            return None
        if len(self.streams) >= self.config.max_streams:
            return Refusal(REJECTED, f"403 max streams reached ({self.config.max_streams})")
        return None

    def _ended(self, entry: IngestStream) -> None:
        """The key's live stream ended (no publisher, the grace over): so does the entry.
        (Called while the live stream tells its players: the rest happens after.)"""
        if self.streams.get(entry.key) is entry:
            del self.streams[entry.key]
        if entry.ended_at is None:
            entry.ended_at = time.monotonic()
            self.ended[entry.key] = entry
        log.info("%r: the stream ended; finishing its ladder", entry.key)
        self._finishing = [g for g in self._finishing if not g.dead]
        self._finishing.append(gevent.spawn(self._finish, entry))

    def _failed(self, entry: IngestStream, description: str) -> None:
        """The transcoder gave up: its publishers are told and disconnected, the entry ends."""
        for publisher in list(entry.publishers.values()):
            self._disconnect(publisher, entry.key, description, FAILED)
        entry.tap.close()
        self._ended(entry)

    def _finish(self, entry: IngestStream) -> None:
        """The stream ended: ffmpeg finishes, then the playlists end; the session's
        files go `keep_finished` seconds later."""
        entry.tap.close()
        self.live.remove_player(entry.live, entry.tap)
        entry.transcoder.stop()
        entry.session.finish()
        self._removals = [g for g in self._removals if not g.dead]
        self._removals.append(gevent.spawn_later(self.config.keep_finished, self.outputs.remove, entry.session))

    # -- media -----------------------------------------------------------------------------

    def _on_media(self, stream: neurtmp.Stream, packet: neurtmp.Packet) -> None:
        """Per-publisher checks; the transcoder gets the stream through its tap."""
        found = self._by_stream.get(stream)
        if found is None or found[1].refused:
            return
        entry, publisher = found
        now = time.monotonic()
        publisher.meter.add(len(packet.payload), now)
        entry.bytes_in += len(packet.payload)
        publisher.note_size(packet)
        size = publisher.input_size
        if size is not None and size[1] > self.config.max_resolution:
            self._disconnect(publisher, entry.key, f"403 resolution {size[1]}p is above {self.config.max_resolution}p")
            return
        limit = self.config.max_bitrate * 1_000_000
        if publisher.meter.bits_per_second(now) > limit and now - publisher.published_at > 1.0:
            if publisher.over_limit_since is None:
                publisher.over_limit_since = now
            elif now - publisher.over_limit_since > self.config.bitrate_grace:
                rate = publisher.meter.bits_per_second(now) / 1e6
                self._disconnect(publisher, entry.key,
                                 f"403 bitrate {rate:.1f} Mbit/s is above {self.config.max_bitrate:g} Mbit/s")
        else:
            publisher.over_limit_since = None

    def _disconnect(self, publisher: Publisher, key: str, description: str, code: str = REJECTED) -> None:
        if publisher.refused:
            return
        publisher.refused = True
        log.warning("%s: %r disconnected: %s", publisher.peer, key, description)
        try:
            publisher.stream.send_status(code, description, level="error")
        except neurtmp.ConnectionClosed:
            return
        publisher.stream.get_connection().close(description, flush_timeout=DISCONNECT_FLUSH_SECONDS)

    # -- lifecycle -------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop every transcoder (ffmpeg finalises or is killed); returns when none runs."""
        entries = list(self.streams.values())
        for entry in entries:
            entry.tap.close()
        self.streams.clear()
        self._by_stream.clear()
        stoppers = [gevent.spawn(self._stop_entry, entry) for entry in entries]
        gevent.joinall(stoppers + self._finishing, timeout=30)
        for removal in self._removals:
            removal.kill(block=False)

    @staticmethod
    def _stop_entry(entry: IngestStream) -> None:
        entry.transcoder.stop()
        entry.session.finish()


class _Connect(ConnectEventHandler):
    def __init__(self, app: IngestApp) -> None:
        self.app = app

    def handle(self, is_create: bool, connection: Any, command_arguments: Any, user_arguments: Any) -> bool:
        if not is_create:
            return True
        if connection.app_name != self.app.config.app:
            return False
        connection.register_stream_event_handler(_Streams(self.app))
        return True


class _Streams(StreamEventHandler):
    def __init__(self, app: IngestApp) -> None:
        self.app = app

    def handle(self, is_create: bool, stream: Any, command_arguments: Any) -> bool:
        if is_create:
            self.app.attach(stream)
        return True
