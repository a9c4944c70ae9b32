"""The live broadcast application: encoders publish, players play, on any app name.

Built only from the public handler API: a connect handler claims connections (to every
app, or to the configured ones); each stream gets publish, media, play and pause handlers
that talk to the `Registry`. An app that owns connections itself (the ingest app) calls
`LiveApp.attach(stream)` to give a stream the live handlers beside its own.

Of an Enhanced RTMP v2 multitrack stream, a player that announced multitrack in connect
(and an in-process relay or edge) gets every track as published; any other player gets
one video track unwrapped into plain packets: track 0, or the one its play name asks for
(``rtmp://HOST/live/cam?track=1``, and ``/live/cam.flv?track=1`` over HTTP-FLV).
"""

from __future__ import annotations

import logging
import os
import urllib.parse
from dataclasses import dataclass
from typing import Any

import neurtmp
from neurtmp import DEFAULT_TRACK, Connection, Packet, Server, Stream
from neurtmp.handlers import CallEventHandler, ConnectEventHandler, StreamEventHandler
from neurtmp.live.gop import DEFAULT_MAX_BYTES, DEFAULT_MAX_PACKETS
from neurtmp.live.registry import Registry
from neurtmp.live.slate import Slate
from neurtmp.live.stream import BACKUP, DEFAULT_FAILOVER_TIMEOUT, PRIMARY, SUCCESSOR, LivePlayer, LiveStream
from neurtmp.live.tracks import MAX_TRACK_ID
from neurtmp.names import DRAIN_CALL, YIELD_MARK, split_query

__all__ = ["LiveApp", "LiveOptions", "play_track", "requested_track"]

log = logging.getLogger(__name__)


@dataclass
class LiveOptions:
    """Live-app settings."""

    #: Application names served; empty: any.
    apps: tuple[str, ...] = ()
    #: A new publisher of a live name replaces the old one instead of getting BadName.
    takeover: bool = False
    #: GOP cache bound in packets per stream (0: no GOP cache; players wait for a key frame).
    gop_packets: int = DEFAULT_MAX_PACKETS
    #: GOP cache bound in bytes per stream.
    gop_bytes: int = DEFAULT_MAX_BYTES
    #: Seconds a stream stays live after its publisher left (clean unpublish or dropped
    #: connection): players get the slate and a publisher of the name within it is
    #: spliced in. 0: the stream ends at once (players get UnpublishNotify).
    reconnect_grace: float = 10.0
    #: What players get during the grace: None the generated card, an image file
    #: (scaled to each stream), or "none" for the last frame, frozen.
    slate: str | None = None
    #: Seconds a primary publisher may send no audio or video before players are switched
    #: to the name's backup publisher (``rtmp://HOST/APP/NAME?role=backup``).
    failover_timeout: float = DEFAULT_FAILOVER_TIMEOUT

    def __post_init__(self) -> None:
        if self.gop_packets < 0 or self.gop_bytes < 0:
            raise neurtmp.ConfigError("gop_packets and gop_bytes must be >= 0")
        if not self.failover_timeout > 0:
            raise neurtmp.ConfigError(f"failover_timeout must be > 0 s, not {self.failover_timeout}")
        if not self.reconnect_grace >= 0:
            raise neurtmp.ConfigError(f"reconnect_grace must be >= 0 s, not {self.reconnect_grace}")
        if self.slate not in (None, "none") and not os.path.isfile(self.slate):
            raise neurtmp.ConfigError(f"slate image {self.slate!r} is not a file")
        if any(not app or "/" in app for app in self.apps):
            raise neurtmp.ConfigError(f"application names must be non-empty, without '/': {list(self.apps)}")

    def make_slate(self) -> Slate | None:
        """The slate these options ask for (None: the last frame, frozen)."""
        return None if self.slate == "none" else Slate(self.slate)


def requested_track(name: str) -> int:
    """The video track a legacy player asks for in its play name (``cam?track=1``);
    track 0 when it names none (or a malformed one)."""
    values = urllib.parse.parse_qs(split_query(name)[1]).get("track", [])
    try:
        track = int(values[-1]) if values else DEFAULT_TRACK
    except ValueError:
        return DEFAULT_TRACK
    return track if 0 <= track <= MAX_TRACK_ID else DEFAULT_TRACK


def play_track(stream: Stream) -> int | None:
    """What an RTMP player gets of a multitrack stream: None (every track as
    published) for a client that announced multitrack and for in-process relays and
    edges, else the one track it asks for (`requested_track`), unwrapped. An explicit
    ``?track=N`` gives that one track to any player."""
    name = stream.get_stream_name()
    if "track" in urllib.parse.parse_qs(split_query(name)[1]):
        return requested_track(name)
    connection = stream.get_connection()
    if connection.local or connection.client_capabilities.multitrack:
        return None
    return DEFAULT_TRACK


def is_backup(name: str) -> bool:
    """Whether a publish name asks to be the backup of its name (``cam?role=backup``)."""
    return "backup" in urllib.parse.parse_qs(split_query(name)[1]).get("role", [])


class _Publisher:
    """A framework stream as a registry publisher (takeover closes its connection)."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream

    def displace(self) -> None:
        self.stream.send_status("NetStream.Publish.BadName", "another publisher took over", level="error")
        self.stream.get_connection().close("another publisher took over")

    def drop(self, reason: str) -> None:
        """End the publish with a status the encoder sees, then close its connection."""
        try:
            self.stream.send_status("NetStream.Publish.Rejected", reason, level="error")
        except neurtmp.ConnectionClosed:
            return
        self.stream.get_connection().close(reason, flush_timeout=2.0)


class _StreamHandlers:
    """The publish, media, play and pause handlers of the live app for one stream."""

    def __init__(self, app: LiveApp, connection: Connection) -> None:
        self.app = app
        self.connection = connection
        self.app_name = connection.app_name
        self.live: LiveStream | None = None
        self.publisher: _Publisher | None = None
        self.playing: Stream | None = None
        #: What the player gets (see `play_track`).
        self.track: int | None = None

    # PublishEventHandler
    def handle_publish(self, is_start: bool, stream: Stream, name: str, publish_type: str) -> bool:
        registry = self.app.registry
        if is_start:
            self.publisher = _Publisher(stream)
            peer = self.connection.get_peer_address()
            live = registry.publish(self.app_name, name, self.publisher, peer, backup=is_backup(name))
            if live is None:
                return False
            if live.publisher is self.publisher and self.connection.get_connect_arguments().get(YIELD_MARK):
                live.drain_publisher()  # a pulled copy: an encoder publishing the name here succeeds it
            self.live = live
            return True
        if self.live is not None and self.publisher is not None:
            # a publisher asked to reconnect (this server going away) publishes elsewhere
            # now: no reconnect grace here
            registry.unpublish(self.live, self.publisher, grace=not self.connection.asked_to_reconnect)
        self.live = None
        return True

    # MediaEventHandler
    def handle_media(self, stream: Stream, packet: Packet) -> None:
        live = self.live
        if live is not None and self.publisher is not None:
            if live.publisher is self.publisher:
                live.on_packet(packet, PRIMARY)
            elif live.backup is self.publisher:
                live.on_packet(packet, BACKUP)
            elif live.successor is self.publisher:
                live.on_packet(packet, SUCCESSOR)

    # PlayEventHandler
    def handle_play(self, is_start: bool, stream: Stream) -> bool:
        registry = self.app.registry
        if is_start:
            live = registry.get_or_create(self.app_name, stream.get_stream_name())
            self.live, self.playing, self.track = live, stream, play_track(stream)
            live.add_player(stream, self.track)
            log.info("%s: %s plays (%s), %s", live.path, self.connection.get_peer_address(),
                     "live" if live.is_live else "waiting for a publisher",
                     "every track" if self.track is None else f"track {self.track}")
            return True
        if self.live is not None and self.playing is not None:
            self.live.remove_player(self.playing)
            log.info("%s: %s stopped playing", self.live.path, self.connection.get_peer_address())
            registry.forget_if_idle(self.live)
        self.playing = None
        return True

    # PauseEventHandler: a paused live player leaves the fan-out and rejoins with a fast start.
    def handle_pause(self, is_pause: bool, stream: Stream) -> bool:
        if self.live is None:
            return False
        if is_pause:
            self.live.remove_player(stream)
        else:
            self.live.add_player(stream, self.track)
        return True


class _Connect(ConnectEventHandler):
    def __init__(self, app: LiveApp) -> None:
        self.app = app

    def handle(self, is_create: bool, connection: Connection, command_arguments: Any, user_arguments: Any) -> bool:
        if not is_create:
            return True
        if self.app.options.apps and connection.app_name not in self.app.options.apps:
            return False
        connection.register_stream_event_handler(_StreamCreated(self.app, connection))
        if connection.trusted:  # another worker of ours: it may announce its forwards as draining
            connection.register_remote_call_handler(_Drain(self.app), DRAIN_CALL)
        return True


class _Drain(CallEventHandler):
    """`DRAIN_CALL` from a trusted connection (a worker being replaced): the publishes it
    forwards go away soon, so their publishers' next publish succeeds them."""

    def __init__(self, app: LiveApp) -> None:
        self.app = app

    def handle(self, connection: Connection, procedure_name: str, command_arguments: Any,
               user_arguments: list[Any]) -> tuple[bool, Any]:
        def forwarded_here(publisher: Any) -> bool:
            return isinstance(publisher, _Publisher) and publisher.stream.get_connection() is connection

        return True, self.app.registry.drain(forwarded_here)


class _StreamCreated(StreamEventHandler):
    def __init__(self, app: LiveApp, connection: Connection) -> None:
        self.app = app
        self.connection = connection

    def handle(self, is_create: bool, stream: Stream, command_arguments: Any) -> bool:
        if is_create:
            self.app.attach(stream)
        return True


class LiveApp:
    """Publish/play fan-out on a server.

    Example:
        server = neurtmp.Factory().create_server()
        live = LiveApp(LiveOptions(takeover=True))
        live.install(server)
        server.start("0.0.0.0:1935")
    """

    def __init__(self, options: LiveOptions | None = None) -> None:
        self.options = options or LiveOptions()
        self.registry = Registry(self.options.takeover, self.options.gop_packets, self.options.gop_bytes,
                                 self.options.reconnect_grace, self.options.make_slate(),
                                 self.options.failover_timeout)
        self._connect = _Connect(self)

    def install(self, server: Server) -> None:
        """Serve live streams on `server` (installs the app's connect handler)."""
        server.install(self._connect)

    def attach(self, stream: Stream) -> None:
        """Give a stream the live app's handlers: its publishes go live under the
        connection's app name, its plays join the fan-out. For apps that own the
        connection and compose the live app with handlers of their own."""
        handlers = _StreamHandlers(self, stream.get_connection())
        stream.register_publish_event_handler(handlers.handle_publish)
        stream.register_media_event_handler(handlers.handle_media)
        stream.register_play_event_handler(handlers.handle_play)
        stream.register_pause_event_handler(handlers.handle_pause)

    def streams(self) -> list[LiveStream]:
        return self.registry.streams()

    def serves(self, app: str) -> bool:
        """Whether this live app serves the application name `app`."""
        return not self.options.apps or app in self.options.apps

    def add_player(self, app: str, name: str, player: LivePlayer, track: int | None = DEFAULT_TRACK) -> LiveStream:
        """Start a player that is not an RTMP stream (an HTTP-FLV `neurtmp.FlvPlayer`) on
        `app/name`, with the same fast start (it waits when the name is not live).
        `track`: the video track it gets, unwrapped (legacy players: FLV has one track
        of each kind); None for every track as published."""
        live = self.registry.get_or_create(app, name)
        live.add_player(player, track)
        return live

    def remove_player(self, live: LiveStream, player: LivePlayer) -> None:
        """Stop a player started with `add_player`."""
        live.remove_player(player)
        self.registry.forget_if_idle(live)

    def drop_publisher(self, app: str, name: str, reason: str = "dropped by the server") -> bool:
        """Disconnect the publisher of `app/name` (its players wait, as after any
        unpublish); False when the name is not live."""
        live = self.registry.get(app, name)
        if live is None or not isinstance(live.publisher, _Publisher):
            return False
        live.publisher.drop(reason)
        return True
