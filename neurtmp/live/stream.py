"""LiveStream: one live name: its publisher, its players, and what a late joiner needs.

Every published message passes through `on_packet` once: metadata and sequence headers
are cached, the GOP cache updated, timestamps fixed up (so a republish continues the
timeline instead of jumping back to 0), and the packet handed to the players' `FanOut`:
one append to a shared wire log, whatever the number of players. Players that joined
before there was a key frame to start from get what is not video on their own until
the next key frame, then join the fan-out.

With a reconnect grace, a publisher that leaves does not end the stream at once: the
stream stays live, its players get a slate (`neurtmp.live.slate`) looped on the stream's
clock, or the last frame when there is none, and a publisher of the name within the
grace is spliced in at its first key frame (its sequence headers first, its timestamps
going on from the stream's). Players see one stream. After the grace, it ends as without.

A name may also have a backup publisher (``?role=backup``): received and kept warm (its
latest sequence headers and metadata) but not delivered while the primary is healthy.
When the primary stalls (no audio or video for `failover_timeout`) or leaves, the stream
switches to the backup at its next key frame, by the same splice (its headers first,
timestamps going on); when the primary is back and sends a key frame, it switches back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import gevent
from gevent.event import AsyncResult

from neurtmp import DataPacket, FanOut, MessageType, Packet, StatusCode, absent_track_metadata, broadcast
from neurtmp.fanout import Member
from neurtmp.live.gop import GopCache
from neurtmp.live.slate import Slate, SlateLoop

__all__ = ["LivePlayer", "LiveStream"]

log = logging.getLogger(__name__)

#: Milliseconds between the last message of one publisher and the first of the next.
_REPUBLISH_GAP_MS = 40

#: The two feeds a name may have.
PRIMARY, BACKUP = "primary", "backup"

#: Seconds without audio or video after which a primary with a backup is failed over.
DEFAULT_FAILOVER_TIMEOUT = 2.0

#: Seconds between two looks at the primary's health while a backup waits.
_WATCH_INTERVAL = 0.25


@dataclass
class _Feed:
    """What a stream keeps of one of its publishers: its latest sequence headers and
    metadata (to splice it in at any key frame) and when its last audio or video came."""

    held: dict[str, Packet] = field(default_factory=dict)
    media_at: float = 0.0

    def note(self, packet: Packet) -> None:
        if packet.type_id in (MessageType.AUDIO, MessageType.VIDEO):
            self.media_at = time.monotonic()
        if packet.is_sequence_header:
            self.held["video" if packet.type_id == MessageType.VIDEO else "audio"] = packet
        elif isinstance(packet, DataPacket) and packet.name == "onMetaData":
            self.held["metadata"] = packet

    def healthy(self, timeout: float) -> bool:
        return time.monotonic() - self.media_at < timeout


class LivePlayer(Member, Protocol):
    """What a live stream needs of a player: an RTMP `neurtmp.Stream`, or an HTTP-FLV
    `neurtmp.FlvPlayer`."""

    @property
    def closed(self) -> bool: ...

    def send_fast_start(self, packets: Iterable[Packet]) -> int: ...

    def send_status(self, code: str, description: str = "", level: str = "status", **extra: Any) -> None: ...


@dataclass
class _Player:
    stream: LivePlayer
    play_started: float
    first_key_ms: float | None = None


class LiveStream:
    """A live name's state (see module docstring).

    Args:
        app: application name (no query string).
        name: stream name (no query string).
        gop_cache: keep packets since the last key frame for late joiners.
        reconnect_grace: seconds the stream stays live after its publisher left (0: it
            ends at once).
        slate: what players get meanwhile (None: the last frame, frozen).
        on_ended: called when the stream ends after a grace (the registry forgets it).
        failover_timeout: seconds without audio or video after which a primary with a
            backup publisher is failed over to it.
    """

    def __init__(self, app: str, name: str, gop_cache: GopCache | None = None, reconnect_grace: float = 0.0,
                 slate: Slate | None = None, on_ended: Callable[[LiveStream], None] | None = None,
                 failover_timeout: float = DEFAULT_FAILOVER_TIMEOUT) -> None:
        self.app = app
        self.name = name
        self.publisher: Any = None
        self.publisher_peer = ""
        #: The backup publisher (``?role=backup``), kept warm while the primary is healthy.
        self.backup: Any = None
        self.backup_peer = ""
        self.failover_timeout = failover_timeout
        #: Which feed players get: PRIMARY or BACKUP.
        self.active = PRIMARY
        #: Switches between the primary and the backup.
        self.switches = 0
        self._feeds = {PRIMARY: _Feed(), BACKUP: _Feed()}
        self._watchdog: gevent.Greenlet | None = None
        self._players: dict[LivePlayer, _Player] = {}
        #: Players with a key frame to start from; what is published goes to them all.
        self._group = FanOut()
        #: Players waiting for a key frame (they get audio and data meanwhile); a dict
        #: as an ordered set, so that a player leaves in O(1).
        self._waiting: dict[LivePlayer, None] = {}
        self._waiting_dropped = 0
        self.metadata: Packet | None = None
        self._seen_audio = self._seen_video = False
        self.video_header: Packet | None = None
        self.audio_header: Packet | None = None
        self.gop = gop_cache if gop_cache is not None else GopCache(0, 0)
        self._offset = 0
        self._offset_pending = False
        self._last_timestamp: int | None = None
        self.messages = 0
        self.bytes = 0
        #: Video messages published (sequence headers left out).
        self.video_frames = 0
        self.published_at = 0.0
        self.reconnect_grace = reconnect_grace
        self._slate = slate
        self._on_ended = on_ended
        #: The publisher left and the grace runs (until one is spliced in, or it ends).
        self._in_grace = False
        self._grace_timer: gevent.Greenlet | None = None
        #: A publisher came back within the grace; its first key frame splices it in.
        self._splicing = False
        #: Its sequence headers and metadata until then, by kind.
        self._pending: dict[str, Packet] = {}
        #: After a splice: the publisher's timestamp of the key frame it started at.
        self._splice_floor: int | None = None
        self._slate_clip: AsyncResult | None = None
        self._slate_loop: SlateLoop | None = None

    def __repr__(self) -> str:
        return f"<LiveStream {self.app}/{self.name} players={len(self._players)} live={self.is_live}>"

    @property
    def path(self) -> str:
        return f"{self.app}/{self.name}"

    @property
    def is_live(self) -> bool:
        """Published (by the primary or the backup), or within the reconnect grace after
        its publisher left."""
        return self.publisher is not None or self.backup is not None or self._in_grace

    @property
    def reconnecting(self) -> bool:
        """Within the reconnect grace: no publisher (or a new one not spliced in yet)."""
        return self._in_grace

    @property
    def idle(self) -> bool:
        """No publisher, no grace and no players: the registry may forget it."""
        return not self.is_live and not self._players

    @property
    def dropped(self) -> int:
        """Messages dropped for players that fell behind."""
        return self._group.dropped + self._waiting_dropped

    def players(self) -> list[LivePlayer]:
        return list(self._players)

    def player_first_key_ms(self, stream: LivePlayer) -> float | None:
        """Milliseconds from a player's play to its first key frame being queued."""
        player = self._players.get(stream)
        return player.first_key_ms if player else None

    # -- publishing -----------------------------------------------------------------

    def start_publishing(self, source: Any, peer: str = "") -> None:
        """`source` (whatever stands for the publishing client) is now the publisher.
        Within a reconnect grace its players carry on: the slate (or frozen frame) goes
        on until its first key frame (`on_packet`); while a backup carries the stream, the
        primary takes over again at its first key frame."""
        self.publisher = source
        self.publisher_peer = peer
        self._feeds[PRIMARY] = _Feed(media_at=time.monotonic())
        if self.active == BACKUP:
            log.info("%s: the primary %s is back; switching to it at its first key frame", self.path, peer)
            return
        self._slate_clip = None  # its resolution may differ: the slate is found again
        self._splice_floor = None
        if self._in_grace:
            if not self._splicing:
                self.published_at = time.monotonic()
            self._cancel_grace_timer()
            self._splicing, self._pending = True, {}
            log.info("%s: %s is back within the grace; splicing at its first key frame", self.path, peer)
            return
        self.published_at = time.monotonic()
        self.metadata = self.video_header = self.audio_header = None
        self._seen_audio = self._seen_video = False
        self.gop.clear()
        self._offset_pending = self._last_timestamp is not None
        for stream in self._players:  # the new publisher's first key frame starts them again
            if stream in self._group:
                self._group.remove(stream)
                self._waiting[stream] = None
            self._status(stream, StatusCode.PLAY_PUBLISH_NOTIFY, f"{self.name} is now published.")

    def start_backup(self, source: Any, peer: str = "") -> None:
        """`source` is now the backup publisher: kept warm, delivered when the primary
        stalls or is gone (at once, at its first key frame, when there is no primary)."""
        self.backup, self.backup_peer = source, peer
        self._feeds[BACKUP] = _Feed(media_at=time.monotonic())
        if not self.is_live or self._last_timestamp is None:
            self.published_at = time.monotonic()
        if self._watchdog is None:
            self._watchdog = gevent.spawn(self._watch_primary)
        if self.publisher is None:
            self._switch(BACKUP, "there is no primary")

    def stop_publishing(self, source: Any, grace: bool = True) -> bool:
        """`source` (the primary or the backup) stopped; returns False when it was not
        (or no longer) a publisher of the stream. With a reconnect grace (and `grace`:
        not for a takeover, whose new publisher is already there) the stream stays live
        (see the module docstring); with a backup, the other feed carries it on."""
        if source is self.backup and source is not None:
            self.backup, self.backup_peer = None, ""
            if self._watchdog is not None:
                self._watchdog.kill(block=False)
                self._watchdog = None
            if self.active != BACKUP:
                return True
            if self.publisher is not None:
                self._switch(PRIMARY, "the backup left")
                return True
            self.active = PRIMARY
        elif self.publisher is source:
            self.publisher = None
            self.publisher_peer = ""
            if self.backup is not None:
                self._switch(BACKUP, "the primary left")
                return True
        else:
            return False
        if grace and self.reconnect_grace > 0 and self._last_timestamp is not None:
            self._enter_grace()
        else:
            self._end()
        return True

    def _switch(self, feed: str, why: str) -> None:
        """Deliver `feed` from its next key frame on (its held headers first)."""
        if self.active == feed:
            return
        self.active = feed
        self.switches += 1
        log.info("%s: switching to the %s (%s)", self.path, feed, why)
        if self._last_timestamp is None:
            return  # nothing delivered yet: it simply starts the stream
        self._cancel_grace_timer()
        self._splicing, self._pending = True, dict(self._feeds[feed].held)

    def _watch_primary(self) -> None:
        """While there is a backup: fail over when the primary stalls."""
        while True:
            gevent.sleep(_WATCH_INTERVAL)
            primary, backup = self._feeds[PRIMARY], self._feeds[BACKUP]
            if (self.active == PRIMARY and self.publisher is not None and not primary.healthy(self.failover_timeout)
                    and backup.healthy(self.failover_timeout)):
                self._switch(BACKUP, f"no audio or video from the primary for {self.failover_timeout:g} s")

    def _end(self) -> None:
        self._stop_slate()
        self._in_grace = self._splicing = False
        self._pending = {}
        self.gop.clear()
        for player in self._players.values():
            self._status(player.stream, StatusCode.PLAY_UNPUBLISH_NOTIFY, f"{self.name} is now unpublished.")

    def _enter_grace(self) -> None:
        self._in_grace, self._splicing, self._pending = True, False, {}
        self._grace_timer = gevent.spawn_later(self.reconnect_grace, self._grace_over)
        log.info("%s: publisher gone; live for %g s more (%s)", self.path, self.reconnect_grace,
                 "slate" if self._slate is not None else "last frame")
        if self._slate is None or (self._slate_loop is not None and self._slate_loop.playing):
            return
        if self._slate_clip is None:
            self._slate_clip = self._slate.prepare(self.video_header, self.audio_header, self.path)
        assert self._last_timestamp is not None
        start = (self._last_timestamp + _REPUBLISH_GAP_MS) & 0xFFFFFFFF
        self._slate_loop = SlateLoop(self._slate_clip, self._feed_slate, start)

    def _grace_over(self) -> None:
        self._grace_timer = None
        if self.publisher is not None:
            return
        log.info("%s: no publisher within %g s: unpublished", self.path, self.reconnect_grace)
        self._end()
        if self._on_ended is not None:
            self._on_ended(self)

    def _cancel_grace_timer(self) -> None:
        if self._grace_timer is not None:
            self._grace_timer.kill(block=False)
            self._grace_timer = None

    def _stop_slate(self) -> None:
        if self._slate_loop is not None:
            self._slate_loop.stop()
            self._slate_loop = None

    def _feed_slate(self, packet: Packet) -> None:
        self._last_timestamp = packet.timestamp
        self._accept(packet)

    def on_packet(self, packet: Packet, feed: str = PRIMARY) -> None:
        """One message from the publisher (or, with `feed` BACKUP, the backup): cache
        what joiners need, then fan out; a feed not delivered is only kept warm."""
        self._feeds[feed].note(packet)
        if feed != self.active:
            if not (feed == PRIMARY and packet.is_key_frame and self.publisher is not None):
                return
            self._switch(PRIMARY, "the primary is back")
        self.messages += 1
        self.bytes += len(packet.payload)
        if packet.type_id == MessageType.VIDEO and not packet.is_sequence_header:
            self.video_frames += 1
        if self._splicing:
            self._splice(packet)
            return
        if (self._splice_floor is not None and not packet.is_sequence_header
                and packet.timestamp < self._splice_floor and not isinstance(packet, DataPacket)):
            return  # interleaved before the key frame the publisher was spliced in at
        packet = self._fix_timestamp(packet)
        if packet.is_key_frame and self._slate is not None and self._slate_clip is None:
            self._slate_clip = self._slate.prepare(self.video_header, self.audio_header, self.path)
        self._accept(packet)

    def _splice(self, packet: Packet) -> None:
        """A publisher back within the grace: hold its headers and metadata, skip what
        comes before its first key frame, and there take over from the slate."""
        if packet.is_sequence_header:
            self._pending["video" if packet.type_id == MessageType.VIDEO else "audio"] = packet
            return
        if isinstance(packet, DataPacket) and packet.name == "onMetaData":
            self._pending["metadata"] = packet
            return
        if not packet.is_key_frame:
            return
        self._stop_slate()
        assert self._last_timestamp is not None
        self._offset = (self._last_timestamp + _REPUBLISH_GAP_MS - packet.timestamp) & 0xFFFFFFFF
        self._offset_pending = False
        self._splicing = self._in_grace = False
        self._splice_floor = packet.timestamp
        key = self._fix_timestamp(packet)
        for kind in ("metadata", "video", "audio"):
            held = self._pending.get(kind)
            if held is not None:
                zero = isinstance(held, DataPacket) and held.timestamp == 0  # (see _fix_timestamp)
                self._accept(held if zero else held.retimed(key.timestamp))
        self._pending = {}
        log.info("%s: publisher spliced in at %d ms", self.path, key.timestamp)
        if self._slate is not None:
            self._slate_clip = self._slate.prepare(self.video_header, self.audio_header, self.path)
        self._accept(key)

    def _accept(self, packet: Packet) -> None:
        """Cache what joiners need of a packet on the stream's clock, then fan it out."""
        cached = False
        if packet.type_id == MessageType.AUDIO:
            self._seen_audio = True
        elif packet.type_id == MessageType.VIDEO:
            self._seen_video = True
        if packet.is_sequence_header:
            if packet.type_id == MessageType.VIDEO:
                self.video_header = packet
            else:
                self.audio_header = packet
            cached = True
        elif isinstance(packet, DataPacket) and packet.name == "onMetaData":
            self.metadata, cached = packet, True
        if not cached:
            self.gop.add(packet)
        self._fan_out(packet)

    def _fix_timestamp(self, packet: Packet) -> Packet:
        if self._offset_pending:
            assert self._last_timestamp is not None
            self._offset = (self._last_timestamp + _REPUBLISH_GAP_MS - packet.timestamp) & 0xFFFFFFFF
            self._offset_pending = False
        if self._offset and not (isinstance(packet, DataPacket) and packet.timestamp == 0):
            # (metadata stays at 0: ffmpeg makes a subtitle stream of onMetaData at any other time)
            packet = packet.retimed((packet.timestamp + self._offset) & 0xFFFFFFFF)
        self._last_timestamp = packet.timestamp
        return packet

    def _fan_out(self, packet: Packet) -> None:
        if self._waiting:
            self._serve_waiting(packet)
        self._group.send(packet)

    def _serve_waiting(self, packet: Packet) -> None:
        """Players waiting for a key frame: they join the fan-out at one, get sequence
        headers, audio and data on their own meanwhile, and no other video."""
        if packet.type_id != MessageType.VIDEO:
            self._waiting_dropped += broadcast(packet, self._waiting)
            if packet.is_sequence_header and self._absent_track() == "video":
                broadcast(self._absent_track_marker("video"), self._waiting)
        elif packet.is_sequence_header:
            broadcast(packet, self._waiting)
            if self._absent_track() == "audio":
                broadcast(self._absent_track_marker("audio"), self._waiting)
        elif packet.is_key_frame:
            now = time.monotonic()
            for stream in self._waiting:
                player = self._players[stream]
                player.first_key_ms = (now - player.play_started) * 1000
                self._group.add(stream)
            self._waiting = {}

    # -- players --------------------------------------------------------------------

    def add_player(self, stream: LivePlayer) -> None:
        """Start a player: cached metadata and headers, then the GOP cache (fast start)."""
        player = _Player(stream, play_started=time.monotonic())
        self._players[stream] = player
        if not self.is_live:
            self._waiting[stream] = None
            return
        gop = self.gop.packets()
        stream.send_fast_start(self._start_packets() + gop)
        if gop and gop[0].is_key_frame:
            player.first_key_ms = (time.monotonic() - player.play_started) * 1000
            self._group.add(stream)
        else:
            self._waiting[stream] = None

    def _start_packets(self) -> list[Packet]:
        """What a player needs before any frame: the metadata, the sequence headers, and
        after them, when the stream lacks a track, the metadata that says so."""
        packets: list[Packet] = [p for p in (self.metadata, self.video_header, self.audio_header) if p is not None]
        absent = self._absent_track()
        if absent is not None:
            packets.append(self._absent_track_marker(absent))
        return packets

    def _absent_track(self) -> str | None:
        """"audio" (or "video") when the publisher's metadata names no such codec and
        none of it came, while the other track's sequence header did: ffmpeg players are
        then told not to wait for it (`neurtmp.protocol.packet.absent_track_metadata`)."""
        metadata = self.metadata.metadata if isinstance(self.metadata, DataPacket) else None
        if metadata is None:
            return None  # without metadata nothing says the track will not come
        if self.video_header is not None and not self._seen_audio and "audiocodecid" not in metadata:
            return "audio"
        if self.audio_header is not None and not self._seen_video and "videocodecid" not in metadata:
            return "video"
        return None

    def _absent_track_marker(self, absent: str) -> DataPacket:
        metadata = self.metadata.metadata if isinstance(self.metadata, DataPacket) else None
        return absent_track_metadata(absent, metadata)

    def remove_player(self, stream: LivePlayer) -> None:
        if self._players.pop(stream, None) is not None:
            if stream in self._waiting:
                del self._waiting[stream]
            else:
                self._group.remove(stream)

    def _status(self, stream: LivePlayer, code: str, description: str) -> None:
        if not stream.closed:
            try:
                stream.send_status(code, description, details=self.name)
            except Exception:  # the player is going away; its own close will follow
                log.debug("%s: status to %s failed", self.path, stream)

    def statistics(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "name": self.name,
            "live": self.is_live,
            "publisher": self.publisher_peer,
            "players": len(self._players),
            "messages": self.messages,
            "video_frames": self.video_frames,
            "bytes": self.bytes,
            "dropped": self.dropped,
            "uptime": time.monotonic() - self.published_at if self.is_live else 0.0,
            "reconnecting": self.reconnecting,
            "backup": self.backup_peer,
            "active": self.active,
            "switches": self.switches,
        }
