"""AccessControl: IP rules, tokens and hooks as links of a server's handler chains.

Installed before the application (`LiveApp.install` after it): a connect handler asks the
on_connect hook (it never claims a connection, it only refuses); an access handler
decides each publish and play before the application's handlers see it (so a publisher
that fails a check can't take over a live name); a server-wide publish handler and a play
observer send on_publish_done and on_play_done. Trusted connections
(`Connection.trusted`: in-process relays and edges, the other workers of one server) are
not checked: they were checked where they came in. HTTP-FLV players (not RTMP streams) get
the same through `check_http_play` and `notify_http_play_done`.

A hook's 3xx renames the stream to the name in its Location; a Location that is an
rtmp[s]:// URL has the stream relayed instead, as nginx-rtmp does (a play is served from
a pull of that URL, a publish is pushed there too), by the `RedirectRelaying` the
control was given (`neurtmp.relay.RedirectRelays` in `neurtmp serve`); without one, such
a redirect refuses.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import gevent

from neurtmp import Connection, Server, Stream
from neurtmp.access.form import connection_fields, http_fields, stream_fields
from neurtmp.access.hooks import HookAnswer, notify, post_form, shown_url
from neurtmp.access.options import AccessOptions
from neurtmp.access.rules import IpRules, parse_peer_host
from neurtmp.access.tokens import check_token, split_name
from neurtmp.handlers import Refusal
from neurtmp.names import redact_query, split_query

__all__ = ["AccessControl", "RedirectRelaying"]

log = logging.getLogger(__name__)

#: The status a refused publish / play / connect gets.
_REFUSED = {"publish": "NetStream.Publish.Rejected", "play": "NetStream.Play.Failed",
            "connect": "NetConnection.Connect.Rejected"}


#: The schemes of a hook redirect's Location that mean "relay" rather than "rename".
_RELAY_SCHEMES = ("rtmp://", "rtmps://")


class RedirectRelaying(Protocol):
    """What relays the streams that hooks redirect to rtmp[s]:// URLs
    (`neurtmp.relay.RedirectRelays`)."""

    def pull(self, app: str, name: str, location: str, hold: bool = False) -> str:
        """Serve the plays of local `app/name` from `location`; "" once that can start,
        else why not (the player is refused with it). With `hold`, the player is counted
        until `release` (one that is not an RTMP stream: HTTP-FLV)."""
        ...

    def release(self, app: str, name: str) -> None:
        """A player that `pull` held for has left."""
        ...

    def push(self, stream: Stream, location: str) -> str:
        """Push `stream`'s publish to `location` while it lasts; "" or why not."""
        ...


class AccessControl:
    """Who may connect, publish and play on a server.

    Example:
        server = neurtmp.Factory().create_server()
        access = AccessControl(AccessOptions(publish_rules=(parse_rule(True, "10.0.0.0/8"),
                                                             parse_rule(False, "all"))))
        access.install(server)          # first: its checks come before the app's
        LiveApp().install(server)

    Args:
        options: the rules, secrets and hooks.
        relays: what relays streams that hooks redirect to rtmp[s]:// URLs (None: such a
            redirect refuses).
    """

    def __init__(self, options: AccessOptions, relays: RedirectRelaying | None = None) -> None:
        self.options = options
        self.relays = relays
        #: HTTP-FLV players served by a relay, by client id: their (app, name).
        self._relayed_http: dict[str, tuple[str, str]] = {}
        self._server: Server | None = None

    def reload(self, options: AccessOptions) -> None:
        """Use new rules, secrets and hooks from now on (SIGHUP): clients already
        connected stay; the next connect, publish and play are checked by these."""
        self.options = options
        if self._server is not None:
            self._install_hooks(self._server)

    def install(self, server: Server) -> None:
        """Put the checks on `server`; install the application after this."""
        self._server = server
        # the connect check goes first (before the application's connect handler), even
        # with no hook yet, so that a reload may set one; it claims no connection
        server.install(self._on_connect)
        server.register_access_event_handler(self._check)
        self._install_hooks(server)

    def _install_hooks(self, server: Server) -> None:
        """The handlers the set hooks need (each does nothing while its hook is unset, so
        one a reload removed stays, inert)."""
        if self.options.has_hook("publish_done"):
            server.register_publish_event_handler(self._on_publish)
        if self.options.has_hook("play_done"):
            server.register_play_event_observer(self._on_play)

    # -- deciding ---------------------------------------------------------------------

    def _on_connect(self, is_create: bool, connection: Connection, command: Any, user: Any) -> bool | Refusal:
        """Never claims the connection (False lets the application's handler have it)."""
        if not is_create or connection.trusted:
            return False
        answer = self._ask("connect", connection.app_name, connection_fields("connect", connection))
        problem = self._hook_problem("connect", answer)
        return Refusal(_REFUSED["connect"], f"403 {problem}") if problem else False

    def _check(self, action: str, stream: Stream) -> bool | Refusal:
        connection = stream.get_connection()
        if connection.trusted or action not in ("publish", "play"):
            return True
        code = _REFUSED[action]
        app = connection.app_name
        address = parse_peer_host(connection.get_peer_address())
        rule = IpRules(self.options.rules(action, app)).decide(address)
        if rule is not None and not rule.allow:
            return Refusal(code, f"403 {action} not allowed from {address or 'this address'} ({rule})")
        secret = self.options.secret(action, app)
        if secret:
            key, query = split_name(stream.get_stream_name())
            problem = check_token(secret, key, query, kind=action)
            if problem:
                return Refusal(code, f"403 {problem}")
        answer = self._ask(action, app, stream_fields(action, stream))
        if answer is not None:
            problem = self._hook_problem(action, answer)
            if problem:
                return Refusal(code, f"403 {problem}")
            if answer.redirect:
                if "://" in answer.location:
                    return self._relay(action, stream, answer.location)
                return self._rename(action, stream, answer.location)
        return True

    def check_http_play(self, peer: str, client_id: str, app: str, name: str, url: str) -> tuple[str, str]:
        """The play checks for a player that is not an RTMP stream (HTTP-FLV): IP rules,
        the play token, the on_play hook. Returns (why it is refused, "" when allowed;
        the name to play: the hook's 3xx may rename it, or have it relayed). Call
        `notify_http_play_done` when a player let in leaves."""
        address = parse_peer_host(peer)
        rule = IpRules(self.options.rules("play", app)).decide(address)
        if rule is not None and not rule.allow:
            return f"403 play not allowed from {address or 'this address'} ({rule})", name
        secret = self.options.secret("play", app)
        if secret:
            key, query = split_name(name)
            problem = check_token(secret, key, query, kind="play")
            if problem:
                return f"403 {problem}", name
        answer = self._ask("play", app, http_fields("play", peer, client_id, app, name, url))
        if answer is not None:
            problem = self._hook_problem("play", answer)
            if problem:
                return f"403 {problem}", name
            if answer.redirect:
                if "://" in answer.location:
                    return self._relay_http(client_id, app, name, answer.location), name
                arguments = split_query(name)[1]
                name = answer.location.lstrip("/") + (f"?{arguments}" if arguments else "")
        return "", name


    def _relay_http(self, client_id: str, app: str, name: str, location: str) -> str:
        """An HTTP-FLV play that the on_play hook redirected to a URL: "" once a relay
        serves it (held until `notify_http_play_done`), else why it is refused."""
        problem = self._cannot_relay("play", location)
        if problem or self.relays is None:
            return problem
        problem = self.relays.pull(app, name, location, hold=True)
        if problem:
            return f"502 on_play hook relay failed: {problem}"
        self._relayed_http[client_id] = (app, name)
        return ""

    def _ask(self, call: str, app: str, fields: list[tuple[str, str]]) -> HookAnswer | None:
        """`call`'s hook's answer for a client of `app`; None when no such hook is set."""
        url = self.options.hook(call, app)
        if not url:
            return None
        answer = post_form(url, fields, self.options.hook_timeout)
        if answer.error:
            log.warning("on_%s hook %s failed: %s", call, shown_url(url), answer.error)
        return answer

    @staticmethod
    def _hook_problem(call: str, answer: HookAnswer | None) -> str:
        """Why a hook's answer refuses ("" when it allows, or when there is no hook)."""
        if answer is None or answer.ok:
            return ""
        if answer.error:
            return f"on_{call} hook failed: {answer.error}"
        if answer.redirect and call != "connect":
            return "" if answer.location else f"on_{call} hook redirected ({answer.status}) without a Location"
        return f"on_{call} hook refused ({answer.status})"

    def _relay(self, action: str, stream: Stream, location: str) -> bool | Refusal:
        """A 3xx hook answer with a URL: the stream goes on under its own name, relayed
        (pulled from the URL for a play, pushed to it for a publish). A refused client is
        told why the relay failed, not the Location (the log has it, secrets hidden)."""
        code = _REFUSED[action]
        problem = self._cannot_relay(action, location)
        if problem or self.relays is None:
            return Refusal(code, problem)
        connection = stream.get_connection()
        if action == "play":
            problem = self.relays.pull(connection.app_name, stream.get_stream_name(), location)
            return Refusal(code, f"502 on_play hook relay failed: {problem}") if problem else True
        problem = self.relays.push(stream, location)
        return Refusal(code, f"403 on_publish hook relay: {problem}") if problem else True

    def _cannot_relay(self, action: str, location: str) -> str:
        """Why a redirect to `location` cannot be relayed ("" when it can be tried)."""
        if not location.lower().startswith(_RELAY_SCHEMES):
            return f"403 on_{action} hook redirected to a URL; only a name or an rtmp[s]:// URL is supported"
        if self.relays is None:
            return f"403 on_{action} hook redirected to an rtmp URL; relaying is not enabled here"
        return ""

    @staticmethod
    def _rename(action: str, stream: Stream, location: str) -> bool | Refusal:
        """A 3xx hook answer: the stream goes on under the name in Location."""
        old = stream.get_stream_name()
        query = split_query(old)[1]
        new = location.lstrip("/") + (f"?{query}" if query else "")
        try:
            stream.rename(new)
        except ValueError as exc:
            return Refusal(_REFUSED[action], f"403 on_{action} hook redirect: {exc}")
        log.info("%s: on_%s hook renamed %r to %r", stream.get_connection().get_peer_address(), action,
                 redact_query(old), redact_query(new))
        return True

    # -- notifying --------------------------------------------------------------------

    def notify(self, call: str, stream: Stream, **extra: str) -> gevent.Greenlet | None:
        """Send the `call` hook ("publish_done", "play_done", "record_done" ...) for
        `stream` without waiting for it (fields: `stream_fields` plus `extra`, e.g.
        ``path=...`` for record_done); None when no such hook is set."""
        url = self.options.hook(call, stream.get_connection().app_name)
        if not url or stream.get_connection().trusted:
            return None
        return notify(url, stream_fields(call, stream, **extra), self.options.hook_timeout)

    def notify_http_play_done(self, peer: str, client_id: str, app: str, name: str, url: str
                              ) -> gevent.Greenlet | None:
        """Send the play_done hook for a player that is not an RTMP stream (HTTP-FLV: the
        `neurtmp.live.http.LiveHttp` `play_done` callback) without waiting: the fields of
        `check_http_play` (`name` with its query string, as the player asked for it, or as
        the on_play hook renamed it); None when no such hook is set. A relay that served
        the player (an on_play redirect to a URL) may stop."""
        relayed = self._relayed_http.pop(client_id, None)
        if relayed is not None and self.relays is not None:
            self.relays.release(*relayed)
        hook = self.options.hook("play_done", app)
        if not hook:
            return None
        return notify(hook, http_fields("play_done", peer, client_id, app, name, url), self.options.hook_timeout)

    def notify_recorded(self, path: str, app: str, name: str, start: float, end: float) -> gevent.Greenlet | None:
        """Send the record_done hook for a finished recording (a `neurtmp.record.Recorder`
        `on_done` callback): call, app, name, path, recorder, start and end (UNIX
        seconds); None when no such hook is set."""
        url = self.options.hook("record_done", app)
        if not url:
            return None
        fields = [("call", "record_done"), ("app", app), ("name", name), ("path", path), ("recorder", ""),
                  ("start", f"{start:.3f}"), ("end", f"{end:.3f}")]
        return notify(url, fields, self.options.hook_timeout)

    def _on_publish(self, is_start: bool, stream: Stream, name: str, publish_type: str) -> bool:
        if not is_start:
            self.notify("publish_done", stream)
        return True

    def _on_play(self, is_start: bool, stream: Stream) -> None:
        if not is_start:
            self.notify("play_done", stream)
