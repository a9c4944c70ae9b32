"""Relays that a server's players and publishers start and stop.

`Pulls` pulls a name into the server while it has players here: one `PullRelay` per name
however many players; the pull stops `grace` seconds after its last player leaves, and
when an encoder publishes the name here (the encoder is the source then): at the
encoder's first key frame, where the live app splices it in place of the pulled copy, so
that the players see no gap. Edges pull from their origin this way, and the on_play
hook's rtmp:// redirects from where the hook says.

`Pushes` pushes a name published here to a URL while its publish lasts: one `PushRelay`
per name, which reconnects to the far side with backoff while the encoder keeps
streaming, and ends after the publisher does (having relayed all it sent). The local
proxy, the edge's forwarding and the on_publish hook's rtmp:// redirects push this way.

Both are driven by their owners (`Edge`, `Forwarder`, `RedirectRelays`), which decide
what to relay where; `Pulls` counts players itself, as a server-wide play observer.
"""

from __future__ import annotations

import logging
import types
from collections.abc import Callable, Mapping

import gevent

import neurtmp
from neurtmp.names import DEFAULT_TIMEOUT, YIELD_MARK, redact_query
from neurtmp.relay.relays import RELAY_MARK, Backoff, PullRelay, PushRelay

__all__ = ["Pulls", "Pushes", "StreamKey", "stream_key"]

log = logging.getLogger(__name__)

#: (app, name) of a stream, without query strings: what relays are keyed on.
StreamKey = tuple[str, str]


def stream_key(stream: neurtmp.Stream) -> StreamKey:
    """(app, name) of a stream, without query strings."""
    return stream.get_connection().app_name, stream.get_stream_name(query=False)


def _copy(backoff: Backoff | None) -> Backoff | None:
    return backoff.copy() if backoff else None


class Pulls:
    """Pull names into `server` while they have players here (see module docstring).

    Args:
        server: the local server (started before a pull starts).
        source: the URL to pull a name from when its first player comes; None: pull
            only what `pull` is asked to.
        grace: seconds a pull outlives its last player (a player coming back meanwhile
            keeps it).
        label: what the log lines begin with ("edge", "on_play redirect").
        retry_unreachable: retry a source never reached (False: the pull ends after a
            failed first try; see `PullRelay`).
    """

    def __init__(self, server: neurtmp.Server, source: Callable[[StreamKey], str] | None = None, *,
                 grace: float = 5.0, timeout: float = DEFAULT_TIMEOUT, backoff: Backoff | None = None,
                 verify: bool = True, retry_unreachable: bool = True, label: str = "edge") -> None:
        self.server = server
        self.source = source
        self.grace = grace
        self.timeout = timeout
        self.backoff = backoff
        self.verify = verify
        self.retry_unreachable = retry_unreachable
        self.label = label
        #: The pull of each name pulled now.
        self.pulls: dict[StreamKey, PullRelay] = {}
        self._players: dict[StreamKey, int] = {}
        self._published: set[StreamKey] = set()
        self._stoppers: dict[StreamKey, gevent.Greenlet] = {}
        #: Pulled names an encoder now publishes here, and its stream: the pull feeds
        #: the players until the encoder's first key frame.
        self._yielding: dict[StreamKey, neurtmp.Stream] = {}

    @property
    def players(self) -> Mapping[StreamKey, int]:
        """Players here of each (app, name) that has any (read-only)."""
        return types.MappingProxyType(self._players)

    def start(self) -> Pulls:
        """Count players and see encoders' publishes (server-wide observers)."""
        self.server.register_play_event_observer(self._on_play)
        self.server.register_publish_event_handler(self._on_publish)
        return self

    def stop(self) -> None:
        """Stop every pull and forget the players."""
        self.server.remove_play_event_observer(self._on_play)
        self.server.remove_publish_event_handler(self._on_publish)
        if self._yielding:
            self._yielding.clear()
            self.server.remove_media_event_handler(self._on_media)
        for stopper in self._stoppers.values():
            stopper.kill(block=False)
        self._stoppers.clear()
        for relay in self.pulls.values():
            relay.stop()
        self.pulls.clear()
        self._players.clear()

    def join(self, key: StreamKey) -> None:
        """A player of `key` came: it keeps the name's pull (with a `source`, the first
        player starts it)."""
        self._players[key] = self._players.get(key, 0) + 1
        stopper = self._stoppers.pop(key, None)
        if stopper is not None:
            stopper.kill(block=False)
        if self.source is not None and key not in self.pulls:
            self.pull(key, self.source(key))

    def leave(self, key: StreamKey) -> None:
        """A player of `key` left: the last one's leaving stops the pull after the grace."""
        count = self._players.get(key, 0) - 1
        if count > 0:
            self._players[key] = count
            return
        self._players.pop(key, None)  # its last player left: forget the name
        if key in self.pulls and key not in self._stoppers:
            self._stoppers[key] = gevent.spawn_later(self.grace, self._stop_unwatched, key)

    def pull(self, key: StreamKey, url: str) -> PullRelay | None:
        """Pull `url` into `key` unless it is pulled already (that pull is returned) or
        published here by an encoder (None). A pull no player joins stops after the grace."""
        if key in self._published:
            return None
        relay = self.pulls.get(key)
        if relay is not None and relay.running:
            return relay
        log.info("%s: pulling %s/%s from %s", self.label, key[0], key[1], redact_query(url))
        relay = PullRelay(self.server, url, *key, timeout=self.timeout, backoff=_copy(self.backoff),
                          verify=self.verify, retry_unreachable=self.retry_unreachable)
        relay.target_connect_args[YIELD_MARK] = True  # an encoder publishing the name here succeeds it
        self.pulls[key] = relay
        relay.start()
        if key not in self._players and key not in self._stoppers:
            self._stoppers[key] = gevent.spawn_later(self.grace, self._stop_unwatched, key)
        return relay

    def drop(self, key: StreamKey) -> PullRelay | None:
        """Stop the pull of `key` now (whoever plays it); the pull, if there was one."""
        stopper = self._stoppers.pop(key, None)
        if stopper is not None:
            stopper.kill(block=False)
        relay = self.pulls.pop(key, None)
        if relay is not None:
            relay.stop()
        return relay

    def _stop_unwatched(self, key: StreamKey) -> None:
        self._stoppers.pop(key, None)
        if key not in self._players:
            relay = self.pulls.pop(key, None)
            if relay is not None:
                log.info("%s: no player of %s/%s left; stopping its pull from %s", self.label, key[0], key[1],
                         redact_query(relay.source))
                relay.stop()

    def _on_play(self, is_start: bool, stream: neurtmp.Stream) -> None:
        if is_start:
            self.join(stream_key(stream))
        else:
            self.leave(stream_key(stream))

    def _on_publish(self, is_start: bool, stream: neurtmp.Stream, name: str, publish_type: str) -> bool:
        if stream.get_connection().get_connect_arguments().get(RELAY_MARK) == "pull":
            return True  # a pull relay's own publish
        key = stream_key(stream)
        if is_start:
            self._published.add(key)
            if key in self.pulls:  # an encoder publishes here: it is the source from its first key frame
                if not self._yielding:
                    self.server.register_media_event_handler(self._on_media)
                self._yielding[key] = stream
        else:
            self._published.discard(key)
            if self._yielding.get(key) is stream:  # it left before its first key frame: the pull goes on
                self._forget_yielding(key)
        return True

    def _on_media(self, stream: neurtmp.Stream, packet: neurtmp.Packet) -> None:
        """While an encoder takes over a pulled name: its first key frame ends the pull."""
        for key, encoder in self._yielding.items():
            if stream is encoder:
                if packet.is_video and packet.is_key_frame:
                    self._forget_yielding(key)
                    gevent.spawn(self.drop, key)  # (not in the encoder's greenlet)
                return

    def _forget_yielding(self, key: StreamKey) -> None:
        del self._yielding[key]
        if not self._yielding:
            self.server.remove_media_event_handler(self._on_media)


class Pushes:
    """Push names published on `server` to URLs while their publishes last (see module
    docstring); `push` when a publish starts, `finish` when it ends."""

    def __init__(self, server: neurtmp.Server, *, timeout: float = DEFAULT_TIMEOUT, backoff: Backoff | None = None,
                 verify: bool = True) -> None:
        self.server = server
        self.timeout = timeout
        self.backoff = backoff
        self.verify = verify
        #: The push of each name pushed now.
        self.relays: dict[StreamKey, PushRelay] = {}

    def push(self, key: StreamKey, url: str) -> PushRelay | None:
        """Push `key` to `url` until `finish(key)`; None when a push of `key` runs already
        (it goes on)."""
        old = self.relays.get(key)
        if old is not None and old.running:
            return None
        relay = PushRelay(self.server, *key, url, self.timeout, _copy(self.backoff), source_live=True,
                          verify=self.verify)
        self.relays[key] = relay
        relay.start()
        return relay

    def finish(self, key: StreamKey) -> PushRelay | None:
        """The publish of `key` ended: its push ends once it relayed what was sent; the
        push, if there was one."""
        relay = self.relays.pop(key, None)
        if relay is not None:
            relay.finish_on_unpublish()
        return relay

    def drain(self) -> int:
        """`PushRelay.drain` each push; how many targets took it."""
        return sum(relay.drain() for relay in list(self.relays.values()))

    def stop(self) -> None:
        """Stop every push now."""
        for relay in self.relays.values():
            relay.stop()
        self.relays.clear()
