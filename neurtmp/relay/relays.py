"""Relays: play a stream on one server and publish it on another, as RTMP clients.

A `Relay` plays its source URL and republishes what it gets to its target URL; a pull
relay's source is remote and its target the local server, a push relay the other way
round. Being a plain client of both servers, a relay needs nothing from the live app but
what any player and publisher get: a late joiner's fast start (metadata, sequence
headers, GOP), PublishNotify / UnpublishNotify while the source comes and goes. A pull
relay publishes on its own server in-process (`Server.publish_local`): the same handlers
run, without a loopback connection to chunk and parse every message again; a push relay
plays its server's stream in-process too (`Server.play_local`), as the server's own
client, which access checks (IP rules, tokens, hooks) let through.

Each side reconnects with exponential backoff, logged (URLs with their secret query values
hidden). A relay told not to retry an unreachable source (`retry_unreachable=False`) ends
when its first try fails instead, and says why (`wait_playing`). The target is published
only while the source is live: the relay opens it when the source's publisher starts
(PublishNotify, or at once when told the source is live) or on the first message, and
ends it on UnpublishNotify.
After a target reconnect it sends the cached metadata and sequence headers, then video
from the next key frame, so the far side always starts clean.

Both sides announce Enhanced RTMP v2 capsEx Reconnect and honour a server's
NetConnection.Connect.ReconnectRequest (a graceful shutdown, a replaced worker): the
relay opens a new connection at once (to the request's tcUrl, or the same URL) while
the old one goes on, and switches over at the new side's first key frame, without
ending its publish. A pull relay's (an edge's) players see no UnpublishNotify and no
gap: timestamps go on from where the old source stopped.

Which streams to relay where, server-wide: `neurtmp.relay.edge` (edges, the local proxy)
and `neurtmp.relay.redirects` (the access hooks' rtmp:// redirects), on
`neurtmp.relay.ondemand`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

import gevent
import gevent.event

import neurtmp
from neurtmp.names import DEFAULT_TIMEOUT, DRAIN_CALL, redact_query, redact_text

__all__ = ["RELAY_MARK", "Backoff", "LegacyTrack", "PullRelay", "PushRelay", "Relay", "local_url", "parse_local_name"]

#: What a relay announces when it plays a source: it takes every track of a multitrack
#: stream (and any codec), passing them on as they come, and honours reconnect requests.
_MULTITRACK_PLAYER = neurtmp.Capabilities.of(["*"], caps_ex=neurtmp.CapsEx.MULTITRACK | neurtmp.CapsEx.RECONNECT)
#: What a relay announces when it publishes to a target: it honours reconnect requests.
_RECONNECTING_PUBLISHER = neurtmp.Capabilities.of(caps_ex=neurtmp.CapsEx.RECONNECT)
#: Seconds a target has to answer `Relay.drain`.
_DRAIN_ANSWER_SECONDS = 2.0
#: Seconds between looks at a new source opened on a reconnect request while the old one plays.
_STANDBY_POLL_SECONDS = 0.05
#: Milliseconds a new source's first key frame may lie ahead of the last timestamp relayed
#: and keep its own (a source on the same clock); further, or behind, it is rebased.
_MAX_SPLICE_GAP_MS = 1000
#: Milliseconds a new source's first key frame may lie behind the last timestamp relayed
#: and be taken for the start of its fast start's cached GOP (the same stream: skipped).
_MAX_REPLAY_MS = 10_000
#: Milliseconds between the last message relayed and a rebased first key frame when no
#: frame interval is known yet.
_DEFAULT_FRAME_MS = 33

log = logging.getLogger(__name__)

#: Seconds a session must hold before the backoff starts again from its first delay.
_HELD_SECONDS = 10.0

#: Connect-object field a pull relay's local publish carries, so observers (an edge) can
#: tell it from an encoder's publish.
RELAY_MARK = "neurtmpRelay"

#: Data messages a server sends its players that are not part of the stream itself.
_NOT_STREAM_DATA = ("|RtmpSampleAccess", "onStatus")


def parse_local_name(local: str, default_app: str = "live") -> tuple[str, str]:
    """ "app/name" -> (app, name); a bare "name" goes to `default_app`."""
    app, sep, name = local.lstrip("/").rpartition("/")
    if not name:
        raise neurtmp.ConfigError(f"empty local stream name in {local!r}")
    return (app if sep else default_app), name


def local_url(server: neurtmp.Server, app: str, name: str) -> str:
    """rtmp:// URL of `app/name` on a started local server, over loopback."""
    host, _, port = server.get_local_address().rpartition(":")
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "[::]":
        host = "[::1]"
    return f"rtmp://{host}:{port}/{app}/{name}"


class Publisher(Protocol):
    """Where a relay publishes: a `neurtmp.Client` or a `neurtmp.server.LocalPublisher`."""

    def send_packet(self, packet: neurtmp.Packet) -> None: ...

    def close(self) -> None: ...


class Backoff:
    """Delays 1, 2, 4 ... `maximum` seconds; `reset()` after a connection that held."""

    def __init__(self, initial: float = 1.0, maximum: float = 30.0) -> None:
        self.initial = initial
        self.maximum = maximum
        self.delay = initial

    def next(self) -> float:
        delay = self.delay
        self.delay = min(self.delay * 2, self.maximum)
        return delay

    def reset(self) -> None:
        self.delay = self.initial

    def copy(self) -> Backoff:
        return Backoff(self.initial, self.maximum)


class _StartCache:
    """What a newly opened target needs first: metadata and sequence headers."""

    def __init__(self) -> None:
        self.metadata: neurtmp.Packet | None = None
        self.video_header: neurtmp.Packet | None = None
        self.audio_header: neurtmp.Packet | None = None

    def note(self, packet: neurtmp.Packet) -> None:
        if packet.is_sequence_header and packet.is_video:
            self.video_header = packet
        elif packet.is_sequence_header and packet.is_audio:
            self.audio_header = packet
        elif packet.type_id == neurtmp.MessageType.DATA_AMF0:
            self.metadata = packet

    def packets(self) -> list[neurtmp.Packet]:
        return [p for p in (self.metadata, self.video_header, self.audio_header) if p is not None]

    def clear(self) -> None:
        self.metadata = self.video_header = self.audio_header = None


def _is_reconnect_request(event: Any) -> bool:
    return (isinstance(event, neurtmp.events.StatusReceived) and event.message_stream_id == 0
            and event.code == neurtmp.StatusCode.CONNECT_RECONNECT_REQUEST)


def _is_key_frame(packet: neurtmp.Packet) -> bool:
    return packet.is_video and packet.is_key_frame and not packet.is_sequence_header


class _Standby:
    """A new source opened on a reconnect request: played, and read ahead until its first
    key frame, while the old source goes on (`ready` is set then, or on failure).

    A server's fast start begins with its cached GOP: when `relayed` says that GOP's key
    frame shows what the old source already relayed (the same stream, on the same clock),
    the standby reads on to the next key frame, so that nothing is shown twice.
    """

    def __init__(self, play: Callable[[str], neurtmp.Client], url: str, timeout: float,
                 relayed: Callable[[int], bool] = lambda timestamp: False) -> None:
        self.url = url
        self._relayed = relayed
        self.client: neurtmp.Client | None = None
        #: What the new source sent up to its first key frame (included).
        self.events: list[Any] = []
        self.error: BaseException | None = None
        self.ready = gevent.event.Event()
        self._greenlet = gevent.spawn(self._run, play, timeout)

    def _run(self, play: Callable[[str], neurtmp.Client], timeout: float) -> None:
        skipped = False
        try:
            self.client = play(self.url)
            while True:
                event = self.client.read(timeout=timeout)
                if event is None:
                    raise neurtmp.ConnectionClosed("the new source closed the connection")
                self.events.append(event)
                packet = _as_packet(event)
                if packet is not None and _is_key_frame(packet):
                    if skipped or not self._relayed(packet.timestamp):
                        return
                    skipped = True  # the fast start's cached GOP: wait for the live key frame
        except (OSError, neurtmp.NeurtmpError, TimeoutError) as exc:
            self.error = exc
        finally:
            self.ready.set()

    def close(self) -> None:
        self._greenlet.kill(block=False)
        if self.client is not None:
            self.client.close()


def _as_packet(event: Any) -> neurtmp.Packet | None:
    """A played media or data event as a packet to republish (None: not stream content)."""
    events = neurtmp.events
    if isinstance(event, events.VideoReceived):
        return neurtmp.Packet(neurtmp.MessageType.VIDEO, event.timestamp, event.payload)
    if isinstance(event, events.AudioReceived):
        return neurtmp.Packet(neurtmp.MessageType.AUDIO, event.timestamp, event.payload)
    if isinstance(event, events.DataReceived) and event.name not in _NOT_STREAM_DATA:
        return neurtmp.DataPacket.published(event.timestamp, event.name, event.values)
    return None


class LegacyTrack:
    """One track of a multitrack stream, unwrapped (legacy AVC/AAC, or E-RTMP v1 FourCC),
    for a target that cannot take multitrack: video track `track`, and audio track
    `track` when the stream has one, else the default audio track."""

    def __init__(self, track: int = neurtmp.DEFAULT_TRACK) -> None:
        self.track = track
        self._audio_tracks: set[int] = set()

    def pick(self, packet: neurtmp.Packet) -> neurtmp.Packet | None:
        """The packet's part for the target; None when it has none."""
        if packet.type_id != neurtmp.MessageType.AUDIO:
            return neurtmp.one_track(packet, self.track)
        parts = neurtmp.split_tracks(packet)
        if packet.is_sequence_header:
            self._audio_tracks.update(track for track, _ in parts)
        wanted = self.track if self.track in self._audio_tracks else neurtmp.DEFAULT_TRACK
        return next((part for track, part in parts if track == wanted), None)


class Relay:
    """Play `source` and publish it to `target` while it is live (see module docstring).

    Args:
        source: rtmp://HOST[:PORT]/APP/NAME to play.
        target: rtmp://HOST[:PORT]/APP/NAME to publish to.
        timeout: seconds for each network step.
        backoff: reconnect delays (one copy per side).
        source_live: the source is known to be live: publish to the target as soon as the
            source plays, before its first message (the far side sees the publish at once).
        verify: check the certificates of rtmps:// servers (False: accept self-signed).
        retry_unreachable: retry a source that could not be played even once (False: end
            after a failed first try; `error` says why).
        legacy_track: the track a target that cannot take multitrack gets of a multitrack
            stream (one that did not state Enhanced RTMP Multitrack in its connect answer:
            nginx-rtmp, SRS, older servers), unwrapped (`LegacyTrack`).
    """

    def __init__(self, source: str, target: str, timeout: float = DEFAULT_TIMEOUT, backoff: Backoff | None = None,
                 source_live: bool = False, verify: bool = True, retry_unreachable: bool = True,
                 legacy_track: int = neurtmp.DEFAULT_TRACK) -> None:
        for url in (source, target):
            if not neurtmp.parse_rtmp_url(url).stream:
                raise neurtmp.ConfigError(f"relay URL {url!r} names no stream (rtmp://HOST/APP/NAME)")
        self.source = source
        self.target = target
        self.timeout = timeout
        self.source_live = source_live
        self.verify = verify
        self.retry_unreachable = retry_unreachable
        self._source_backoff = backoff.copy() if backoff else Backoff()
        self._target_backoff = backoff.copy() if backoff else Backoff()
        #: Source sessions tried / that started playing.
        self.attempts = 0
        self.connected = 0
        #: Target sessions that started publishing.
        self.published = 0
        self.packets_sent = 0
        #: Why the last source session failed ("" while none has).
        self.error = ""
        #: Set once the source plays, or once the relay ended without it ever playing.
        self._first_outcome = gevent.event.Event()
        self._stopped = False
        self._finish_on_unpublish = False
        self._greenlet: gevent.Greenlet | None = None
        self._cache = _StartCache()
        self.legacy_track = legacy_track
        #: Targets that cannot take multitrack (by id), and what they get of each message.
        self._legacy_targets: dict[int, LegacyTrack] = {}
        self._out: Publisher | None = None
        self._out_retry_at = 0.0
        self._needs_key = True
        #: A new source played on the old one's reconnect request, until the switch.
        self._standby: _Standby | None = None
        #: A new target being opened (then open) on the old one's reconnect request.
        self._next_out: Publisher | None = None
        self._opening_next_out = False
        #: Added to source timestamps: a new source after a reconnect request continues
        #: the timeline its players had.
        self._offset = 0
        self._last_ts: int | None = None
        self._frame_ms = _DEFAULT_FRAME_MS
        #: Reconnect requests honoured: source switches and target switches done.
        self.source_switches = 0
        self.target_switches = 0
        #: Extra connect-object fields for the target connection.
        self.target_connect_args: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {redact_query(self.source)} -> {redact_query(self.target)}>"

    @property
    def running(self) -> bool:
        return self._greenlet is not None and not self._greenlet.dead

    def wait_playing(self, timeout: float) -> str:
        """Wait until the source plays (at once when it has played before): "" then, else
        why not (the first try's error for a relay that does not retry an unreachable
        source; "no answer within N s"; "stopped")."""
        if not self.connected and not self._first_outcome.wait(timeout):
            return f"no answer within {timeout:g} s"
        if self.connected:
            return ""
        return self.error or "stopped"

    def start(self) -> Relay:
        if self._greenlet is None:
            self._greenlet = gevent.spawn(self._run)
        return self

    def stop(self) -> None:
        """Stop relaying and close both connections."""
        self._stopped = True
        if self._greenlet is not None:
            self._greenlet.kill(block=True, timeout=5)
        self._close_target()

    def drain(self) -> bool:
        """Tell the target that this publish goes away soon (this relay's own server is
        being replaced, and its publisher will publish again, through another worker): a
        neurtmp target that trusts this connection (`DRAIN_CALL`) lets the name's next
        publisher succeed it at a key frame. True when the target said so."""
        out = self._out
        if not isinstance(out, neurtmp.Client):
            return False  # not publishing, or publishing in-process (a pull)
        try:
            out.call(DRAIN_CALL, timeout=_DRAIN_ANSWER_SECONDS)
        except (OSError, neurtmp.NeurtmpError, TimeoutError) as exc:
            log.debug("%r: the target did not take the drain call: %s", self, exc)
            return False
        return True

    def finish_on_unpublish(self) -> None:
        """End by itself once the source's publisher is gone (after relaying all it sent)."""
        self._finish_on_unpublish = True

    # -- source side --------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stopped:
                self.attempts += 1
                try:
                    if self._session():
                        return
                    reason: Any = "source closed the stream"
                except (OSError, neurtmp.NeurtmpError, TimeoutError) as exc:
                    reason = exc
                if self._stopped:
                    return
                self.error = redact_text(str(reason) or type(reason).__name__)
                if not self.connected and not self.retry_unreachable:
                    log.warning("%r: source: %s; not retrying", self, self.error)
                    return
                delay = self._source_backoff.next()
                log.warning("%r: source: %s; retrying in %g s", self, self.error, delay)
                gevent.sleep(delay)
        finally:
            self._close_target()
            self._first_outcome.set()

    def _play_source(self, url: str | None = None) -> neurtmp.Client:
        """Connect to the source (or `url`, a new one) and play it."""
        # every track of a multitrack source: the relay's own players choose theirs
        client = neurtmp.connect(url or self.source, timeout=self.timeout, verify=self.verify,
                                 capabilities=_MULTITRACK_PLAYER)
        try:
            client.play()
        except BaseException:
            client.close()
            raise
        return client

    def _session(self) -> bool:
        """One source session; True when the relay is finished."""
        client = self._play_source()
        try:
            self.connected += 1
            self._first_outcome.set()
            started = time.monotonic()
            log.info("%r: playing the source", self)
            if self.source_live:
                self._open_target()
            while not self._stopped:
                standby = self._standby
                if standby is not None and standby.ready.is_set():
                    client = self._switch_source(client, standby)
                    continue
                try:
                    event = client.read(timeout=_STANDBY_POLL_SECONDS if standby is not None else self.timeout)
                except TimeoutError:
                    if self._finish_on_unpublish and self._out is None:
                        return True  # told to finish and nothing is live
                    continue  # the source may simply not be live yet
                if event is None:
                    if standby is not None and standby.ready.wait(self.timeout):
                        continue  # the old source ended first: switch now
                    return False
                if time.monotonic() - started > _HELD_SECONDS:
                    self._source_backoff.reset()
                if _is_reconnect_request(event):
                    self._on_source_reconnect_request(client)
                    continue
                if standby is not None and isinstance(event, neurtmp.events.StatusReceived):
                    continue  # the old source's server going away: its end is not the stream's
                if self._on_event(event):
                    return True
            return True
        finally:
            client.close()
            if self._standby is not None:
                self._standby.close()
                self._standby = None
            self._close_target()  # no source, nothing to publish: the far side sees it end
            self._cache.clear()
            self._offset, self._last_ts = 0, None

    def _on_source_reconnect_request(self, client: neurtmp.Client) -> None:
        """The source's server asks us to reconnect: play the new source at once, beside
        the old one (switched over at its first key frame)."""
        if self._standby is not None:
            return  # one is being opened already
        try:
            url = client.reconnect_url(self.source)
        except neurtmp.ConfigError as exc:
            log.warning("%r: source: reconnect request with a bad tcUrl: %s", self, exc)
            return
        log.info("%r: source asks to reconnect; playing %s", self, redact_query(url))
        self._standby = _Standby(self._play_source, url, self.timeout, self._relayed_already)

    def _relayed_already(self, timestamp: int) -> bool:
        """Whether a new source's key frame at `timestamp` is at or behind the last message
        relayed, on the same clock (at most `_MAX_REPLAY_MS` behind)."""
        if self._last_ts is None:
            return False
        return 0 <= self._last_ts - (timestamp + self._offset) <= _MAX_REPLAY_MS

    def _switch_source(self, old: neurtmp.Client, standby: _Standby) -> neurtmp.Client:
        """Go on with the new source from its first key frame (timestamps continuing the
        old one's), and close the old; keep the old one when the new failed."""
        self._standby = None
        if standby.error is not None or standby.client is None:
            log.warning("%r: new source %s failed: %s; staying on the old one", self, redact_query(standby.url),
                        redact_text(str(standby.error) or type(standby.error).__name__))
            standby.close()
            return old
        packets = [p for p in map(_as_packet, standby.events) if p is not None]
        key = packets[-1]
        ahead = key.timestamp + self._offset - (self._last_ts if self._last_ts is not None else 0)
        if self._last_ts is not None and not 0 <= ahead <= _MAX_SPLICE_GAP_MS:
            self._offset = self._last_ts + self._frame_ms - key.timestamp
        old.close()
        self.source = standby.url
        self.source_switches += 1
        log.info("%r: switched to the new source", self)
        for packet in packets:
            if packet.is_sequence_header or packet is key or packet.type_id == neurtmp.MessageType.DATA_AMF0:
                self._relay_packet(packet.retimed(key.timestamp) if packet is not key else packet)
        return standby.client

    def _on_event(self, event: Any) -> bool:
        """Relay one event; True when the relay is finished."""
        if isinstance(event, neurtmp.events.StatusReceived):
            if event.code == neurtmp.StatusCode.PLAY_PUBLISH_NOTIFY and self._out is None:
                self._open_target()
            elif event.code == neurtmp.StatusCode.PLAY_UNPUBLISH_NOTIFY:
                log.info("%r: the source stopped publishing", self)
                self._close_target()
                self._cache.clear()
                return self._finish_on_unpublish
            return False
        packet = _as_packet(event)
        if packet is not None:
            self._relay_packet(packet)
        return False

    def _relay_packet(self, packet: neurtmp.Packet) -> None:
        """Forward one source packet on the relay's timeline (see `_switch_source`)."""
        if self._offset:
            packet = packet.retimed(max(0, packet.timestamp + self._offset))
        if packet.is_video or packet.is_audio:
            if packet.is_video and self._last_ts is not None and 0 < packet.timestamp - self._last_ts <= 1000:
                self._frame_ms = packet.timestamp - self._last_ts
            self._last_ts = packet.timestamp if self._last_ts is None else max(self._last_ts, packet.timestamp)
        self._cache.note(packet)
        self._forward(packet)

    # -- target side --------------------------------------------------------------------

    def _forward(self, packet: neurtmp.Packet) -> None:
        if self._out is None:
            if not self._open_target() or any(packet is cached for cached in self._cache.packets()):
                return  # not open, or this packet went out with the cached start
        assert self._out is not None
        if getattr(self._out, "reconnect_requested", None) is not None and self._next_out is None:
            self._on_target_reconnect_request()
        if self._next_out is not None and _is_key_frame(packet):
            self._switch_target()
        if packet.is_video and self._needs_key:
            if not packet.is_sequence_header:
                if not packet.is_key_frame:
                    return  # a far side joining mid-GOP waits for a key frame
                self._needs_key = False
        try:
            self._send(self._out, packet)
            self.packets_sent += 1
        except (OSError, neurtmp.NeurtmpError) as exc:
            self._target_failed(exc)

    def _open_target(self) -> bool:
        if time.monotonic() < self._out_retry_at:
            return False
        try:
            out = self._publish_target()
        except (OSError, neurtmp.NeurtmpError, TimeoutError) as exc:
            self._target_failed(exc)
            return False
        try:
            for cached in self._cache.packets():
                self._send(out, cached)
        except (OSError, neurtmp.NeurtmpError, TimeoutError) as exc:
            out.close()
            self._target_failed(exc)
            return False
        self._out = out
        self._needs_key = True
        self.published += 1
        log.info("%r: publishing to the target", self)
        return True

    def _on_target_reconnect_request(self) -> None:
        """The target's server asks us to reconnect: publish to the new target at once
        (in a greenlet; metadata and sequence headers first), switched to at the next
        key frame while the old one goes on."""
        if self._opening_next_out:
            return
        out = self._out
        assert isinstance(out, neurtmp.Client)
        try:
            url = out.reconnect_url(self.target)
        except neurtmp.ConfigError as exc:
            log.warning("%r: target: reconnect request with a bad tcUrl: %s", self, exc)
            return
        log.info("%r: target asks to reconnect; publishing to %s", self, redact_query(url))
        self._opening_next_out = True
        gevent.spawn(self._open_next_target, out, url)

    def _open_next_target(self, old: Publisher, url: str) -> None:
        try:
            out = self._publish_target(url)
            try:
                for cached in self._cache.packets():
                    self._send(out, cached)
            except BaseException:
                out.close()
                raise
        except (OSError, neurtmp.NeurtmpError, TimeoutError) as exc:
            log.warning("%r: new target %s: %s; staying on the old one", self, redact_query(url),
                        redact_text(str(exc) or type(exc).__name__))
            return  # the old one's end is handled as any target failure
        if self._out is not old or self._stopped:
            out.close()  # the old target ended meanwhile; the usual reconnect took over
            self._opening_next_out = False
            return
        self._next_out = out
        self.target = url

    def _switch_target(self) -> None:
        old, self._out, self._next_out = self._out, self._next_out, None
        self._opening_next_out = False
        self._needs_key = False  # the switch is at a key frame
        self.target_switches += 1
        log.info("%r: switched to the new target", self)
        if old is not None:
            self._legacy_targets.pop(id(old), None)
            old.close()

    def _publish_target(self, url: str | None = None) -> Publisher:
        """Connect to the target (or `url`, a new one) and publish there."""
        client = neurtmp.connect(url or self.target, timeout=self.timeout, verify=self.verify,
                                 capabilities=_RECONNECTING_PUBLISHER, **self.target_connect_args)
        try:
            client.publish()
        except BaseException:
            client.close()
            raise
        if not client.server_capabilities.multitrack:
            self._legacy_targets[id(client)] = LegacyTrack(self.legacy_track)
        return client

    def _send(self, out: Publisher, packet: neurtmp.Packet) -> None:
        """One message to a target: as it is, or its `legacy_track` for a target that
        cannot take multitrack."""
        legacy = self._legacy_targets.get(id(out))
        if legacy is not None:
            picked = legacy.pick(packet)
            if picked is None:
                return
            packet = picked
        out.send_packet(packet)

    def _target_failed(self, error: BaseException) -> None:
        self._close_target()
        delay = self._target_backoff.next()
        self._out_retry_at = time.monotonic() + delay
        log.warning("%r: target: %s; retrying in %g s", self, redact_text(str(error) or type(error).__name__), delay)

    def _close_target(self) -> None:
        out, self._out = self._out, None
        next_out, self._next_out = self._next_out, None
        self._opening_next_out = False
        for publisher in (out, next_out):
            if publisher is not None:
                self._legacy_targets.pop(id(publisher), None)
                publisher.close()


class PullRelay(Relay):
    """Play `url` on a remote server and publish it on `server` as `local_app/local_name`.

    The server may be started after the relay is made, but before `start()`.
    """

    def __init__(self, server: neurtmp.Server, url: str, local_app: str, local_name: str,
                 timeout: float = DEFAULT_TIMEOUT, backoff: Backoff | None = None, verify: bool = True,
                 retry_unreachable: bool = True) -> None:
        self.server = server
        self.local_app, self.local_name = local_app, local_name
        super().__init__(url, f"rtmp://127.0.0.1/{local_app}/{local_name}", timeout, backoff, verify=verify,
                         retry_unreachable=retry_unreachable)
        self.target_connect_args = {RELAY_MARK: "pull"}

    def start(self) -> Relay:
        self.target = local_url(self.server, self.local_app, self.local_name)
        return super().start()

    def _publish_target(self, url: str | None = None) -> Publisher:
        """Publish in-process: the pulled messages reach the local stream's handlers
        without a loopback connection (no second chunking and parsing)."""
        return self.server.publish_local(self.local_app, self.local_name, timeout=self.timeout,
                                         **self.target_connect_args)


class PushRelay(Relay):
    """Republish `local_app/local_name` of `server` to `url` whenever it is live.

    The server may be started after the relay is made, but before `start()`.
    """

    def __init__(self, server: neurtmp.Server, local_app: str, local_name: str, url: str,
                 timeout: float = DEFAULT_TIMEOUT, backoff: Backoff | None = None, source_live: bool = False,
                 verify: bool = True, legacy_track: int = neurtmp.DEFAULT_TRACK) -> None:
        self.server = server
        self.local_app, self.local_name = local_app, local_name
        super().__init__(f"rtmp://127.0.0.1/{local_app}/{local_name}", url, timeout, backoff, source_live, verify,
                         legacy_track=legacy_track)

    def start(self) -> Relay:
        self.source = local_url(self.server, self.local_app, self.local_name)
        return super().start()

    def _play_source(self, url: str | None = None) -> neurtmp.Client:
        """Play in-process: the server's own play, which access checks let through."""
        return self.server.play_local(self.local_app, self.local_name, timeout=self.timeout)
