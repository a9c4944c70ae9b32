"""The relays that access hooks' rtmp:// redirects ask for, as nginx-rtmp starts them.

An on_play hook that answers 3xx with ``Location: rtmp://HOST[:PORT]/APP/NAME`` has the
server pull that stream and serve it to the player under the name it asked for: the
player plays a live stream here like any other, the players of one name share one pull,
and the pull stops once the last of them has left (after a grace period, as an edge's
does). An on_publish hook's rtmp:// redirect accepts the publish under its own name and
pushes it to the URL while it lasts. A URL without a stream name gets the local name.

`neurtmp.access.AccessControl` decides (it asks the hooks); `RedirectRelays`, given to it
by whoever assembles the server (`neurtmp serve`), starts and stops the relays.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Mapping

import neurtmp
from neurtmp.names import DEFAULT_TIMEOUT, redact_query, split_query
from neurtmp.relay.ondemand import Pulls, Pushes, StreamKey, stream_key
from neurtmp.relay.relays import Backoff, PullRelay, PushRelay

__all__ = ["RedirectRelays", "relay_url"]

log = logging.getLogger(__name__)

#: How a URL a hook redirected to must look.
_URL_FORM = "rtmp[s]://HOST[:PORT]/APP[/NAME]"


def relay_url(location: str, name: str) -> str:
    """The rtmp[s]:// URL a hook's `location` names for the local stream `name` (the local
    name without its query string is added when `location` names no stream).

    Raises:
        ValueError: `location` is not an rtmp[s]:// URL with a host and an app (the
            message does not show it: it may go to a client).
    """
    try:
        parsed = neurtmp.parse_rtmp_url(location)
    except neurtmp.ConfigError:
        raise ValueError(f"the Location is not {_URL_FORM}") from None
    if parsed.stream:
        return location
    base, query = split_query(location)
    return f"{base.rstrip('/')}/{split_query(name)[0]}" + (f"?{query}" if query else "")


class RedirectRelays:
    """Start and stop the relays of hooks' rtmp:// redirects on `server` (see module
    docstring); `start()` before serving, `stop()` on shutdown.

    Args:
        server: the local server.
        grace: seconds a pull outlives its last player.
        timeout: seconds for each network step; a player whose pull has not reached its
            source by then is refused.
        verify: check rtmps:// servers' certificates (False: accept self-signed).
    """

    def __init__(self, server: neurtmp.Server, grace: float = 5.0, timeout: float = DEFAULT_TIMEOUT,
                 backoff: Backoff | None = None, verify: bool = True) -> None:
        self.server = server
        self.timeout = timeout
        self._pulls = Pulls(server, grace=grace, timeout=timeout, backoff=backoff, verify=verify,
                            retry_unreachable=False, label="on_play redirect")
        self._pushes = Pushes(server, timeout=timeout, backoff=backoff, verify=verify)
        #: Publishes a hook redirected, not started yet: (the name redirected, the URL).
        #: One a later handler refused stays until its stream goes (held weakly) or
        #: publishes again (used only under the same name).
        self._pending: weakref.WeakKeyDictionary[neurtmp.Stream, tuple[str, str]] = weakref.WeakKeyDictionary()

    def start(self) -> RedirectRelays:
        self._pulls.start()
        self.server.register_publish_event_handler(self._on_publish)
        return self

    def stop(self) -> None:
        """Stop every relay now."""
        self.server.remove_publish_event_handler(self._on_publish)
        self._pulls.stop()
        self._pushes.stop()
        self._pending.clear()

    @property
    def pulls(self) -> Mapping[StreamKey, PullRelay]:
        """The pull of each (app, name) pulled now (read-only)."""
        return dict(self._pulls.pulls)

    @property
    def pushes(self) -> Mapping[StreamKey, PushRelay]:
        """The push of each (app, name) pushed now (read-only)."""
        return dict(self._pushes.relays)

    @property
    def players(self) -> Mapping[StreamKey, int]:
        """Players here of each (app, name) that has any (read-only)."""
        return self._pulls.players

    def pull(self, app: str, name: str, location: str, hold: bool = False) -> str:
        """Serve the plays of local `app/name` from `location` (an on_play hook's redirect):
        start its pull unless one runs (or an encoder publishes the name here) and wait
        until the pull plays its source. Returns "" then, else why the player cannot have
        the stream (the remote unreachable, or no answer within the timeout).

        An RTMP player keeps the pull by playing (a play observer counts it); one that no
        play observer sees (HTTP-FLV) is counted with `hold`: on success it keeps the pull
        until `release(app, name)`.
        """
        key = (app, split_query(name)[0])
        try:
            url = relay_url(location, name)
        except ValueError as exc:
            log.warning("on_play redirect of %s/%s to %s: %s", key[0], key[1], redact_query(location), exc)
            return str(exc)
        self._pulls.join(key)  # held while its source is tried; an RTMP player joins once its play is accepted
        problem = "not tried"
        try:
            relay = self._pulls.pull(key, url)
            problem = relay.wait_playing(self.timeout) if relay is not None else ""
        finally:
            if problem or not hold:
                self._pulls.leave(key)
        if problem:
            if relay is not None and self._pulls.pulls.get(key) is relay:
                self._pulls.drop(key)
            log.warning("on_play redirect: cannot pull %s/%s from %s: %s", key[0], key[1], redact_query(url), problem)
        return problem

    def release(self, app: str, name: str) -> None:
        """A player that `pull` held the pull of `app/name` for has left."""
        self._pulls.leave((app, split_query(name)[0]))

    def push(self, stream: neurtmp.Stream, location: str) -> str:
        """Push `stream`'s publish to `location` (an on_publish hook's redirect) from when
        it is accepted until it ends. Returns "" or what is wrong with `location`. The
        publish goes on here whether or not the far side can be reached."""
        try:
            url = relay_url(location, stream.get_stream_name())
        except ValueError as exc:
            log.warning("on_publish redirect of %s/%s to %s: %s", *stream_key(stream), redact_query(location), exc)
            return str(exc)
        self._pending[stream] = (stream.get_stream_name(), url)
        return ""

    def _on_publish(self, is_start: bool, stream: neurtmp.Stream, name: str, publish_type: str) -> bool:
        key = stream_key(stream)
        if is_start:
            redirected, url = self._pending.pop(stream, ("", ""))
            if url and redirected == stream.get_stream_name() and self._pushes.push(key, url) is not None:
                log.info("on_publish redirect: pushing %s/%s to %s", key[0], key[1], redact_query(url))
        else:
            relay = self._pushes.finish(key)
            if relay is not None:
                log.info("on_publish redirect: %s/%s unpublished; ending its push to %s", key[0], key[1],
                         redact_query(relay.target))
        return True
