"""Server-wide relaying to and from one remote server: `Forwarder` (the local proxy)
pushes every local publish to it; `Edge` pulls from its origin what players ask for and
forwards local publishes there (both on `neurtmp.relay.ondemand`)."""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Mapping

import neurtmp
from neurtmp.names import DEFAULT_TIMEOUT, redact_query
from neurtmp.relay.ondemand import Pulls, Pushes, StreamKey, stream_key
from neurtmp.relay.relays import RELAY_MARK, Backoff, PullRelay, PushRelay

__all__ = ["Edge", "Forwarder"]

log = logging.getLogger(__name__)


class Forwarder:
    """Forward every stream published on `server` to a remote server (the local proxy).

    A publish of local APP/NAME (any app) is republished to `remote` + "/NAME" (or to
    `remote` itself when it names a stream), by one `PushRelay` per publish, which
    reconnects to the remote with backoff while the encoder keeps streaming and ends
    after the publisher does. Installed as a server-wide publish observer.

    Args:
        server: the local server (started before `start()`).
        remote: rtmp[s]://HOST[:PORT]/APP, or .../APP/NAME for one fixed name.
        verify: check an rtmps:// remote's certificate (False: accept self-signed).
    """

    def __init__(self, server: neurtmp.Server, remote: str, timeout: float = DEFAULT_TIMEOUT,
                 backoff: Backoff | None = None, verify: bool = True) -> None:
        self.server = server
        self.remote = remote.rstrip("/")
        self.fixed_name = bool(neurtmp.parse_rtmp_url(self.remote).stream)
        self.timeout = timeout
        self.backoff = backoff
        self.verify = verify
        self._pushes = Pushes(server, timeout=timeout, backoff=backoff, verify=verify)
        #: The push of each (app, name) published now.
        self.relays: dict[StreamKey, PushRelay] = self._pushes.relays

    def start(self) -> Forwarder:
        self.server.register_publish_event_handler(self._on_publish)
        return self

    def stop(self) -> None:
        self.server.remove_publish_event_handler(self._on_publish)
        self._pushes.stop()

    def _on_publish(self, is_start: bool, stream: neurtmp.Stream, name: str, publish_type: str) -> bool:
        key = stream_key(stream)
        if not is_start:
            self._pushes.finish(key)
            return True
        url = self.remote if self.fixed_name else f"{self.remote}/{key[1]}"
        if self._pushes.push(key, url) is not None:
            log.info("forwarding %s/%s to %s", key[0], key[1], redact_query(url))
        return True


class Edge:
    """Make `server` an edge of `origin` (rtmp[s]://HOST[:PORT]), as SRS and nginx-rtmp
    clusters do.

    The first player of a name that is not published here makes the edge pull it from the
    origin (one `PullRelay` per name, however many players); when its last player leaves,
    the pull stops after `grace` seconds. A publish to the edge is forwarded to the origin
    (a `PushRelay` per publish). Edges chain: an edge's pull is a play on its upstream,
    which may be an edge itself. Installed as server-wide play and publish observers.
    """

    def __init__(self, server: neurtmp.Server, origin: str, grace: float = 5.0, timeout: float = DEFAULT_TIMEOUT,
                 backoff: Backoff | None = None, verify: bool = True) -> None:
        parsed = urllib.parse.urlsplit(origin)
        if parsed.scheme not in ("rtmp", "rtmps") or not parsed.hostname or parsed.path.strip("/"):
            raise neurtmp.ConfigError(f"origin {origin!r} must be rtmp[s]://HOST[:PORT], without an app")
        self.server = server
        self.origin = origin.rstrip("/")
        self.grace = grace
        self.timeout = timeout
        self.backoff = backoff
        self.verify = verify
        self._pulls = Pulls(server, self._origin_url, grace=grace, timeout=timeout, backoff=backoff, verify=verify)
        self._pushes = Pushes(server, timeout=timeout, backoff=backoff, verify=verify)
        #: The pull of each (app, name) pulled from the origin now.
        self.pulls: dict[StreamKey, PullRelay] = self._pulls.pulls
        #: The push of each (app, name) published here now.
        self.pushes: dict[StreamKey, PushRelay] = self._pushes.relays

    def start(self) -> Edge:
        self._pulls.start()
        self.server.register_publish_event_handler(self._on_publish)
        return self

    def stop(self) -> None:
        self.server.remove_publish_event_handler(self._on_publish)
        self._pulls.stop()
        self._pushes.stop()

    def drain(self) -> int:
        """This server is being replaced: tell the origin that its forwarded publishes go
        away soon (`Relay.drain`), so that each publisher's next publish there succeeds
        them; how many the origin took."""
        return self._pushes.drain()

    @property
    def players(self) -> Mapping[StreamKey, int]:
        """Players here of each (app, name) that has any (read-only)."""
        return self._pulls.players

    def _origin_url(self, key: StreamKey) -> str:
        return f"{self.origin}/{key[0]}/{key[1]}"

    def _on_publish(self, is_start: bool, stream: neurtmp.Stream, name: str, publish_type: str) -> bool:
        if stream.get_connection().get_connect_arguments().get(RELAY_MARK) == "pull":
            return True  # a pull relay's publish: nothing to forward
        key = stream_key(stream)
        if not is_start:
            self._pushes.finish(key)
            return True
        url = self._origin_url(key)
        if self._pushes.push(key, url) is not None:
            log.info("edge: forwarding the publish of %s/%s to %s", key[0], key[1], redact_query(url))
        return True
