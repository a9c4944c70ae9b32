"""AccessControl: IP rules, tokens and hooks as links of a server's handler chains.

Installed before the application (`LiveApp.install` after it): a connect handler asks the
on_connect hook (it never claims a connection, it only refuses); an access handler
decides each publish and play before the application's handlers see it (so a publisher
that fails a check can't take over a live name); a server-wide publish handler and a play
observer send on_publish_done and on_play_done. HTTP-FLV players (not RTMP streams) get the
same through `check_http_play` and `notify_http_play_done`. In-process connections
(`Connection.local`: relays, edges) are not checked.
"""

from __future__ import annotations

import logging
from typing import Any

import gevent

from neurtmp import Connection, Server, Stream
from neurtmp.access.form import connection_fields, http_fields, stream_fields
from neurtmp.access.hooks import HookAnswer, notify, post_form, shown_url
from neurtmp.access.options import AccessOptions
from neurtmp.access.rules import IpRules, parse_peer_host
from neurtmp.access.tokens import check_token, split_name
from neurtmp.handlers import Refusal
from neurtmp.names import redact_query, split_query

__all__ = ["AccessControl"]

log = logging.getLogger(__name__)

#: The status a refused publish / play / connect gets.
_REFUSED = {"publish": "NetStream.Publish.Rejected", "play": "NetStream.Play.Failed",
            "connect": "NetConnection.Connect.Rejected"}


class AccessControl:
    """Who may connect, publish and play on a server.

    Example:
        server = neurtmp.Factory().create_server()
        access = AccessControl(AccessOptions(publish_rules=(parse_rule(True, "10.0.0.0/8"),
                                                             parse_rule(False, "all"))))
        access.install(server)          # first: its checks come before the app's
        LiveApp().install(server)
    """

    def __init__(self, options: AccessOptions) -> None:
        self.options = options
        self._rules = {"publish": IpRules(options.publish_rules), "play": IpRules(options.play_rules)}
        self._server: Server | None = None

    def reload(self, options: AccessOptions) -> None:
        """Use new rules, secrets and hooks from now on (SIGHUP): clients already
        connected stay; the next connect, publish and play are checked by these."""
        self.options = options
        self._rules = {"publish": IpRules(options.publish_rules), "play": IpRules(options.play_rules)}
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
        hooks = self.options.hooks
        if "publish_done" in hooks:
            server.register_publish_event_handler(self._on_publish)
        if "play_done" in hooks:
            server.register_play_event_observer(self._on_play)

    # -- deciding ---------------------------------------------------------------------

    def _on_connect(self, is_create: bool, connection: Connection, command: Any, user: Any) -> bool | Refusal:
        """Never claims the connection (False lets the application's handler have it)."""
        if not is_create or connection.local or "connect" not in self.options.hooks:
            return False
        answer = self._ask("connect", connection_fields("connect", connection))
        problem = self._hook_problem("connect", answer)
        return Refusal(_REFUSED["connect"], f"403 {problem}") if problem else False

    def _check(self, action: str, stream: Stream) -> bool | Refusal:
        connection = stream.get_connection()
        if connection.local or action not in self._rules:
            return True
        code = _REFUSED[action]
        address = parse_peer_host(connection.get_peer_address())
        rule = self._rules[action].decide(address)
        if rule is not None and not rule.allow:
            return Refusal(code, f"403 {action} not allowed from {address or 'this address'} ({rule})")
        secret = self.options.secret(action, connection.app_name)
        if secret:
            key, query = split_name(stream.get_stream_name())
            problem = check_token(secret, key, query, kind=action)
            if problem:
                return Refusal(code, f"403 {problem}")
        if action in self.options.hooks:
            answer = self._ask(action, stream_fields(action, stream))
            problem = self._hook_problem(action, answer)
            if problem:
                return Refusal(code, f"403 {problem}")
            if answer is not None and answer.redirect:
                return self._rename(action, stream, answer.location)
        return True

    def check_http_play(self, peer: str, client_id: str, app: str, name: str, url: str) -> tuple[str, str]:
        """The play checks for a player that is not an RTMP stream (HTTP-FLV): IP rules,
        the play token, the on_play hook. Returns (why it is refused, "" when allowed;
        the name to play: the hook's 3xx may rename it)."""
        address = parse_peer_host(peer)
        rule = self._rules["play"].decide(address)
        if rule is not None and not rule.allow:
            return f"403 play not allowed from {address or 'this address'} ({rule})", name
        secret = self.options.secret("play", app)
        if secret:
            key, query = split_name(name)
            problem = check_token(secret, key, query, kind="play")
            if problem:
                return f"403 {problem}", name
        if "play" in self.options.hooks:
            answer = self._ask("play", http_fields("play", peer, client_id, app, name, url))
            problem = self._hook_problem("play", answer)
            if problem:
                return f"403 {problem}", name
            if answer is not None and answer.redirect:
                if "://" in answer.location:
                    return "403 on_play hook redirected to a URL; only a name is supported", name
                arguments = split_query(name)[1]
                name = answer.location.lstrip("/") + (f"?{arguments}" if arguments else "")
        return "", name

    def _ask(self, call: str, fields: list[tuple[str, str]]) -> HookAnswer | None:
        url = self.options.hooks.get(call)
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

    @staticmethod
    def _rename(action: str, stream: Stream, location: str) -> bool | Refusal:
        """A 3xx hook answer: the stream goes on under the name in Location."""
        if "://" in location:
            # TODO: nginx-rtmp relays to an rtmp:// Location (push on publish, pull on play).
            return Refusal(_REFUSED[action], f"403 on_{action} hook redirected to a URL; only a name is supported")
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
        url = self.options.hooks.get(call)
        if not url or stream.get_connection().local:
            return None
        return notify(url, stream_fields(call, stream, **extra), self.options.hook_timeout)

    def notify_http_play_done(self, peer: str, client_id: str, app: str, name: str, url: str
                              ) -> gevent.Greenlet | None:
        """Send the play_done hook for a player that is not an RTMP stream (HTTP-FLV: the
        `neurtmp.live.http.LiveHttp` `play_done` callback) without waiting: the fields of
        `check_http_play` (`name` with its query string, as the player asked for it, or as
        the on_play hook renamed it); None when no such hook is set."""
        hook = self.options.hooks.get("play_done")
        if not hook:
            return None
        return notify(hook, http_fields("play_done", peer, client_id, app, name, url), self.options.hook_timeout)

    def notify_recorded(self, path: str, app: str, name: str, start: float, end: float) -> gevent.Greenlet | None:
        """Send the record_done hook for a finished recording (a `neurtmp.record.Recorder`
        `on_done` callback): call, app, name, path, recorder, start and end (UNIX
        seconds); None when no such hook is set."""
        url = self.options.hooks.get("record_done")
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
