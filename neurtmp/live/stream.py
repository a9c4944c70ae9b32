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

A primary may be announced as draining (`drain_publisher`: its server is being replaced
and it will publish again through another): the name's next publisher is then its
successor rather than refused. The primary's media goes on until the successor's first
key frame, where the successor is spliced in the same way and becomes the primary.

Enhanced RTMP v2 multitrack (`neurtmp.live.tracks`): sequence headers are kept per track,
and players are of two kinds. A multitrack player (one that announced it, or an
in-process relay or edge) gets every track as published, each track's headers first and
each video track started on one of its key frames. A legacy player gets one track (0
unless it asked for another), unwrapped, from a `TrackView` with its own headers and GOP
cache, made while some legacy player watches that track.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import gevent
from gevent.event import AsyncResult

from neurtmp import (
    DEFAULT_TRACK,
    DataPacket,
    MessageType,
    Packet,
    StatusCode,
    TrackForm,
    absent_track_metadata,
    split_tracks,
)
from neurtmp.fanout import Member
from neurtmp.live.audience import Audience
from neurtmp.live.gop import GopCache
from neurtmp.live.slate import Slate, SlateLoop
from neurtmp.live.tracks import TrackHeaders, TrackView, start_on_key_frames, track_ids

__all__ = ["LivePlayer", "LiveStream"]

log = logging.getLogger(__name__)

#: Milliseconds between the last message of one publisher and the first of the next.
_REPUBLISH_GAP_MS = 40
#: Milliseconds a new publisher's first message may lie ahead of the last one and keep its
#: timestamp (the same clock: a successor, a relay back on the same source).
_MAX_CONTINUE_MS = 1000

#: The feeds a name may have: its primary and backup publishers, and the successor of a
#: draining primary (`LiveStream.drain_publisher`).
PRIMARY, BACKUP, SUCCESSOR = "primary", "backup", "successor"

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
        hold(self.held, packet)

    def healthy(self, timeout: float) -> bool:
        return time.monotonic() - self.media_at < timeout


def hold(held: dict[str, Packet], packet: Packet) -> bool:
    """Keep a sequence header (per track: "video:0", "audio:1"...) or the metadata in
    `held`; False for any other packet."""
    if packet.is_sequence_header:
        kind = "video" if packet.type_id == MessageType.VIDEO else "audio"
        for track in track_ids(packet):
            held[f"{kind}:{track}"] = packet
        return True
    if isinstance(packet, DataPacket) and packet.name == "onMetaData":
        held["metadata"] = packet
        return True
    return False


def held_in_order(held: dict[str, Packet]) -> list[Packet]:
    """What `hold` kept, each packet once: the metadata, video headers by track, then
    audio headers by track."""
    def order(key: str) -> tuple[int, int]:
        kind, _, track = key.partition(":")
        return ({"metadata": 0, "video": 1}.get(kind, 2), int(track or 0))
    packets: dict[int, Packet] = {}
    for key in sorted(held, key=order):
        packets.setdefault(id(held[key]), held[key])
    return list(packets.values())


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
    #: The video track of a legacy player; None for a multitrack player (every track).
    track: int | None = None
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
        #: The primary publisher is going away soon (`drain_publisher`).
        self.primary_draining = False
        #: The successor of a draining primary, until its first key frame.
        self.successor: Any = None
        self.successor_peer = ""
        #: Draining primaries succeeded by their successors.
        self.handovers = 0
        #: Which feed players get: PRIMARY or BACKUP.
        self.active = PRIMARY
        #: Switches between the primary and the backup.
        self.switches = 0
        self._feeds = {PRIMARY: _Feed(), BACKUP: _Feed(), SUCCESSOR: _Feed()}
        self._watchdog: gevent.Greenlet | None = None
        self._players: dict[LivePlayer, _Player] = {}
        #: Multitrack players: every track as published.
        self._main = Audience(self._started)
        #: Legacy players, by the video track they watch.
        self._views: dict[int, TrackView] = {}
        self._retired_dropped = 0
        self.metadata: Packet | None = None
        self._seen_audio = self._seen_video = False
        #: Track 0's sequence headers (those of every track: `tracks`).
        self.video_header: Packet | None = None
        self.audio_header: Packet | None = None
        self.tracks = TrackHeaders()
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
        return (self._main.dropped + self._retired_dropped
                + sum(view.audience.dropped for view in self._views.values()))

    @property
    def track_views(self) -> list[int]:
        """The video tracks legacy players watch now (each a `TrackView`)."""
        return sorted(self._views)

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
        self.primary_draining = False
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
        self.tracks.clear()
        self._seen_audio = self._seen_video = False
        self.gop.clear()
        self._offset_pending = self._last_timestamp is not None
        self._main.restart()  # the new publisher's first key frame starts them again
        for view in self._views.values():
            view.restart()
        for stream in self._players:
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

    def drain_publisher(self) -> None:
        """The primary publisher goes away soon and will publish again elsewhere: the
        name's next publisher succeeds it (`start_successor`) instead of being refused."""
        if self.publisher is not None:
            self.primary_draining = True

    def start_successor(self, source: Any, peer: str = "") -> None:
        """`source` succeeds the draining primary: kept warm until its first key frame,
        where it is spliced in and becomes the primary (the primary's media goes on till
        then)."""
        self.successor, self.successor_peer = source, peer
        self._feeds[SUCCESSOR] = _Feed(media_at=time.monotonic())

    def _promote_successor(self) -> None:
        """The successor becomes the primary, spliced in at its next key frame (held
        headers first); the old primary's media is no longer delivered."""
        log.info("%s: %s succeeds %s", self.path, self.successor_peer, self.publisher_peer or "the gone publisher")
        self.publisher, self.publisher_peer = self.successor, self.successor_peer
        self.successor, self.successor_peer = None, ""
        self.primary_draining = False
        self.handovers += 1
        self._feeds[PRIMARY], self._feeds[SUCCESSOR] = self._feeds[SUCCESSOR], _Feed()
        if self.active != PRIMARY:
            return  # the backup carries the stream: the new primary's key frame switches back
        if self._last_timestamp is None:  # nothing delivered yet: it simply starts the stream
            for held in held_in_order(self._feeds[PRIMARY].held):
                self._accept(held)
            return
        self._cancel_grace_timer()
        self._splicing, self._pending = True, dict(self._feeds[PRIMARY].held)

    def stop_publishing(self, source: Any, grace: bool = True) -> bool:
        """`source` (the primary or the backup) stopped; returns False when it was not
        (or no longer) a publisher of the stream. With a reconnect grace (and `grace`:
        not for a takeover, whose new publisher is already there) the stream stays live
        (see the module docstring); with a backup, the other feed carries it on."""
        if source is self.successor and source is not None:
            self.successor, self.successor_peer = None, ""
            return True
        if source is self.publisher and source is not None and self.successor is not None:
            self._promote_successor()  # the draining primary left first: its successor carries on
            return True
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
        for view in self._views.values():
            view.gop.clear()
        for player in self._players.values():
            self._status(player.stream, StatusCode.PLAY_UNPUBLISH_NOTIFY, f"{self.name} is now unpublished.")

    def _enter_grace(self) -> None:
        self._in_grace, self._splicing, self._pending = True, False, {}
        self._grace_timer = gevent.spawn_later(self.reconnect_grace, self._grace_over)
        clip = self._slate_clip
        no_slate = self._slate is None or (clip is not None and clip.ready() and clip.value is None)
        log.info("%s: publisher gone; live for %g s more (%s)", self.path, self.reconnect_grace,
                 "last frame" if no_slate else "slate")
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
        self._accept(packet, slate=True)

    def on_packet(self, packet: Packet, feed: str = PRIMARY) -> None:
        """One message from the publisher (or, with `feed` BACKUP, the backup): cache
        what joiners need, then fan out; a feed not delivered is only kept warm."""
        if feed == SUCCESSOR:
            self._feeds[SUCCESSOR].note(packet)
            if not packet.is_key_frame or self.successor is None:
                return
            self._promote_successor()
            feed = PRIMARY
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
        if hold(self._pending, packet):
            return
        if not packet.is_key_frame:
            return
        self._stop_slate()
        self._offset_pending = True  # (`_fix_timestamp` continues the timeline)
        self._splicing = self._in_grace = False
        self._splice_floor = packet.timestamp
        key = self._fix_timestamp(packet)
        for held in held_in_order(self._pending):
            zero = isinstance(held, DataPacket) and held.timestamp == 0  # (see _fix_timestamp)
            self._accept(held if zero else held.retimed(key.timestamp))
        self._pending = {}
        log.info("%s: publisher spliced in at %d ms", self.path, key.timestamp)
        if self._slate is not None:
            self._slate_clip = self._slate.prepare(self.video_header, self.audio_header, self.path)
        self._accept(key)

    def _accept(self, packet: Packet, slate: bool = False) -> None:
        """Cache what joiners need of a packet on the stream's clock, then fan it out:
        as published to the multitrack players, unwrapped (once) to each track view.
        The `slate`'s legacy packets go to every view as they are."""
        if packet.type_id == MessageType.AUDIO:
            self._seen_audio = True
        elif packet.type_id == MessageType.VIDEO:
            self._seen_video = True
        parts = split_tracks(packet, TrackForm.LEGACY if self._views and not slate else TrackForm.ONE_TRACK)
        if packet.is_sequence_header:
            tracks = [track for track, _ in parts]
            self.tracks.note(packet, tracks)
            if DEFAULT_TRACK in tracks:
                if packet.type_id == MessageType.VIDEO:
                    self.video_header = packet
                else:
                    self.audio_header = packet
        elif isinstance(packet, DataPacket) and packet.name == "onMetaData":
            self.metadata = packet
        elif packet.is_key_frame and len(self.tracks.video) > 1:
            self.gop.add(packet, restart=self.tracks.key_track() in [track for track, _ in parts])
        else:
            self.gop.add(packet)
        self._main.send(packet, self._absent_marker_after)
        for view in self._views.values():
            if slate:
                view.send_as_is(packet, self._absent_marker_after)
            else:
                view.send(packet, parts, self.tracks.audio_track_for(view.track), self._absent_marker_after)

    def _fix_timestamp(self, packet: Packet) -> Packet:
        if self._offset_pending:
            # A new publisher's first message: on the stream's clock already when it lies
            # just ahead of the last one (a successor, a relay back on the same source),
            # else (an encoder starting again at 0) moved to just after it.
            assert self._last_timestamp is not None
            ahead = ((packet.timestamp + self._offset - self._last_timestamp + 2**31) & 0xFFFFFFFF) - 2**31
            if not 0 < ahead <= _MAX_CONTINUE_MS:
                self._offset = (self._last_timestamp + _REPUBLISH_GAP_MS - packet.timestamp) & 0xFFFFFFFF
            self._offset_pending = False
        if self._offset and not (isinstance(packet, DataPacket) and packet.timestamp == 0):
            # (metadata stays at 0: ffmpeg makes a subtitle stream of onMetaData at any other time)
            packet = packet.retimed((packet.timestamp + self._offset) & 0xFFFFFFFF)
        self._last_timestamp = packet.timestamp
        return packet

    def _absent_marker_after(self, header: Packet) -> Packet | None:
        """What waiting players get after a sequence header when the stream lacks the
        other kind of track (see `_absent_track`)."""
        absent = self._absent_track()
        if absent == ("audio" if header.type_id == MessageType.VIDEO else "video"):
            return self._absent_track_marker(absent)
        return None

    # -- players --------------------------------------------------------------------

    def add_player(self, stream: LivePlayer, track: int | None = None) -> None:
        """Start a player: cached metadata and headers, then the GOP cache (fast start).
        `track` None: a multitrack player (every track as published); else the video
        track a legacy player gets, unwrapped."""
        player = _Player(stream, play_started=time.monotonic(), track=track)
        self._players[stream] = player
        if track is not None:
            view = self._views.get(track)
            if view is None:
                view = self._views[track] = TrackView(track, self.gop.max_packets, self.gop.max_bytes, self._started)
                if self.is_live:
                    view.seed(self.tracks, self.gop.packets())
            absent = self._absent_track()
            marker = self._absent_track_marker(absent) if absent is not None else None
            started = view.join(stream, self.metadata, marker, self.is_live)
        elif not self.is_live:
            self._main.wait(stream)
            return
        else:
            gop = self.gop.packets()
            if len(self.tracks.video) > 1:
                gop = start_on_key_frames(gop, [track_ids(p) if p.is_video else () for p in gop])
            started = self._main.start(stream, self._start_packets(), gop)
        if started:
            player.first_key_ms = (time.monotonic() - player.play_started) * 1000

    def _started(self, stream: LivePlayer) -> None:
        player = self._players.get(stream)
        if player is not None:
            player.first_key_ms = (time.monotonic() - player.play_started) * 1000

    def _start_packets(self) -> list[Packet]:
        """What a multitrack player needs before any frame: the metadata, every track's
        sequence headers, and after them, when the stream lacks a kind of track, the
        metadata that says so."""
        packets: list[Packet] = [p for p in (self.metadata, *self.tracks.packets()) if p is not None]
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
        player = self._players.pop(stream, None)
        if player is None:
            return
        if player.track is None:
            self._main.remove(stream)
            return
        view = self._views.get(player.track)
        if view is not None:
            view.audience.remove(stream)
            if not len(view.audience):  # nobody watches this track: it costs nothing more
                self._retired_dropped += view.audience.dropped
                del self._views[player.track]

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
            "handovers": self.handovers,
            "tracks": sorted(self.tracks.video) or sorted(self.tracks.audio),
            "track_views": self.track_views,
        }
