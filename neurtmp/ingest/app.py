"""IngestApp: RTMP ingest at /live/<key>, the live app for RTMP players, and one
supervised ffmpeg per stream writing the HLS/DASH ladder.

Built on the framework's public handler API. For each stream of a connection to the
ingest app, the app's publish and media handlers come first in the stream's chains
(keys, tokens, limits, the transcoder), then the live app's (`LiveApp.attach`), so RTMP
players of the same URL are served too.

Each publish is a session with a folder of its own (`neurtmp.ingest.outputs`): the
transcoder's ffmpeg runs write fresh folders in it, the HTTP side serves playlists spliced
from them (continuous across transcoder restarts), and the session ends (#EXT-X-ENDLIST,
a static MPD) only when the publisher has left and its last ffmpeg is gone. A finished
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
from neurtmp.ingest.outputs import Outputs
from neurtmp.ingest.session import Session
from neurtmp.ingest.transcoder import Transcoder
from neurtmp.live import LiveApp, LiveOptions

__all__ = ["IngestApp", "IngestStream", "choose_encoder"]

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
class IngestStream:
    """One published stream: its transcoder, input bitrate, and its session (its files)."""

    key: str
    stream: Any
    transcoder: Transcoder
    session: Session
    peer: str
    meter: BitrateMeter = field(default_factory=BitrateMeter)
    published_at: float = field(default_factory=time.monotonic)
    over_limit_since: float | None = None
    refused: bool = False
    #: When the publisher stopped (monotonic), once it has.
    ended_at: float | None = None

    def describe(self) -> dict[str, Any]:
        """The stream as `/streams` lists it."""
        size = self.transcoder.input_size
        progress = self.transcoder.progress
        return {
            "key": self.key,
            "live": not self.refused and self.ended_at is None,
            "ended": self.ended_at is not None,
            "status": self.transcoder.status,
            "uptime_s": round((self.ended_at or time.monotonic()) - self.published_at, 1),
            "bitrate_kbps": round(self.meter.bits_per_second() / 1000),
            "bytes_in": self.meter.total,
            "input_width": size[0] if size else None,
            "input_height": size[1] if size else None,
            "encoder": self.transcoder.encoder,
            "restarts": self.transcoder.restarts,
            "fps": _number(progress.get("fps")),
            "speed": _number(progress.get("speed", "").rstrip("x")),
            "dropped_frames": int(_number(progress.get("drop_frames")) or 0),
            "duplicated_frames": int(_number(progress.get("dup_frames")) or 0),
            "rungs": [{"name": r.name, "width": r.width, "height": r.height, "bitrate_kbps": r.bitrate_kbps}
                      for r in self.transcoder.rungs],
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
        # (the transcoder ends with its publisher: no reconnect grace for ingest streams yet)
        self.live = LiveApp(LiveOptions(apps=(config.app,), reconnect_grace=0))
        self.streams: dict[str, IngestStream] = {}
        #: Finished streams still listed (for `ENDED_LISTED_SECONDS`), by key.
        self.ended: dict[str, IngestStream] = {}
        #: The sessions of each key, and what the HTTP side serves of them.
        self.outputs = Outputs(self.output_dir, config.segment_duration)
        self._by_stream: dict[Any, IngestStream] = {}
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
        if not is_start:
            entry = self._by_stream.pop(stream, None)
            if entry is not None and self.streams.get(key) is entry:
                del self.streams[key]
                entry.ended_at = time.monotonic()
                self.ended[key] = entry
                self._finishing = [g for g in self._finishing if not g.dead]
                self._finishing.append(gevent.spawn(self._finish, entry))
            return True
        refusal = self._refusal(key, query)
        if refusal is not None:
            return refusal  # the framework logs it, with the description
        self.ended.pop(key, None)
        session = self.outputs.open(key)  # a folder of its own: an earlier session's ffmpeg may still be finishing
        config = self.config
        transcoder = Transcoder(key, session.begin_run, config.ffmpeg_path(), self.encoder, config.preset,
                                config.segment_duration, config.stall_timeout)
        entry = IngestStream(key, stream, transcoder, session, peer)
        transcoder.on_failure = lambda description: self._disconnect(entry, description, FAILED)
        self.streams[key] = entry
        self._by_stream[stream] = entry
        log.info("%s: ingesting %r (%d of %d streams)", peer, key, len(self.streams), config.max_streams)
        return True

    def _refusal(self, key: str, query: dict[str, str]) -> Refusal | None:
        problem = check_key(key)
        if problem is not None:
            return Refusal(REJECTED, f"400 {problem}")
        if self.config.auth_secret:
            problem = check_token(self.config.auth_secret, key, query)
            if problem is not None:
                return Refusal(REJECTED, f"403 {problem}")
        if key in self.streams:
            return Refusal("NetStream.Publish.BadName", f"403 {key} is already being published")
        if len(self.streams) >= self.config.max_streams:
            return Refusal(REJECTED, f"403 max streams reached ({self.config.max_streams})")
        return None

    def _finish(self, entry: IngestStream) -> None:
        """The publisher left: ffmpeg finishes, then the playlists end; the session's
        files go `keep_finished` seconds later."""
        entry.transcoder.stop()
        entry.session.finish()
        self._removals = [g for g in self._removals if not g.dead]
        self._removals.append(gevent.spawn_later(self.config.keep_finished, self.outputs.remove, entry.session))

    # -- media -----------------------------------------------------------------------------

    def _on_media(self, stream: neurtmp.Stream, packet: neurtmp.Packet) -> None:
        entry = self._by_stream.get(stream)
        if entry is None or entry.refused:
            return
        now = time.monotonic()
        entry.meter.add(len(packet.payload), now)
        entry.transcoder.feed(packet)
        size = entry.transcoder.input_size
        if size is not None and size[1] > self.config.max_resolution:
            self._disconnect(entry, f"403 resolution {size[1]}p is above {self.config.max_resolution}p")
            return
        limit = self.config.max_bitrate * 1_000_000
        if entry.meter.bits_per_second(now) > limit and now - entry.published_at > 1.0:
            if entry.over_limit_since is None:
                entry.over_limit_since = now
            elif now - entry.over_limit_since > self.config.bitrate_grace:
                rate = entry.meter.bits_per_second(now) / 1e6
                self._disconnect(entry, f"403 bitrate {rate:.1f} Mbit/s is above {self.config.max_bitrate:g} Mbit/s")
        else:
            entry.over_limit_since = None

    def _disconnect(self, entry: IngestStream, description: str, code: str = REJECTED) -> None:
        if entry.refused:
            return
        entry.refused = True
        log.warning("%s: %r disconnected: %s", entry.peer, entry.key, description)
        try:
            entry.stream.send_status(code, description, level="error")
        except neurtmp.ConnectionClosed:
            return
        entry.stream.get_connection().close(description, flush_timeout=DISCONNECT_FLUSH_SECONDS)

    # -- lifecycle -------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop every transcoder (ffmpeg finalises or is killed); returns when none runs."""
        entries = list(self.streams.values())
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
