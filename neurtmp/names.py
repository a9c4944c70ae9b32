"""Addresses and names as RTMP uses them: "host:port", stream names with query strings,
and the default network timeout. One source for each, so every module formats and
splits them the same way.
"""

from __future__ import annotations

import re

__all__ = ["DEFAULT_TIMEOUT", "DRAIN_CALL", "YIELD_MARK", "host_port", "redact_query", "redact_text", "split_query"]

#: Default seconds to wait for the network or for an answer (connect, play, relays).
DEFAULT_TIMEOUT = 10.0

#: The call a relay makes to the server it publishes to when its own server is being
#: replaced (a worker of `serve --workers` draining): the name's next publisher succeeds
#: its publish at a key frame instead of being refused. Honoured on trusted connections.
DRAIN_CALL = "neurtmp.drain"

#: Connect-object field (true) of a pull relay's local publish that yields to an encoder
#: publishing the name here (an edge's pulls): the encoder succeeds it at a key frame
#: instead of being refused.
YIELD_MARK = "neurtmpYields"

#: Query keys whose values are secrets (tokens, signatures): never written to a log.
_SECRET_KEYS = re.compile(r"(?i)(^|[?&])((?:sig|signature|token|key|secret|pass(?:word)?|auth)[^=&]*)=([^&]*)")
#: The same in free text, where a query string ends at a space or a quote.
_SECRET_KEYS_IN_TEXT = re.compile(
    r"(?i)([?&])((?:sig|signature|token|key|secret|pass(?:word)?|auth)[^=&\s'\"]*)=([^&\s'\"]*)")


def host_port(host: str, port: int | str) -> str:
    """ "host:port", with an IPv6 host in brackets ("[::1]:1935")."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def split_query(name: str) -> tuple[str, str]:
    """A stream or app name and its query string: "cam?key=1" -> ("cam", "key=1")."""
    base, _, query = name.partition("?")
    return base, query


def redact_query(name: str) -> str:
    """A name fit for a log line: secret query values replaced ("cam?sig=ab12" ->
    "cam?sig=***")."""
    base, query = split_query(name)
    if not query:
        return name
    return f"{base}?{_SECRET_KEYS.sub(lambda m: f'{m.group(1)}{m.group(2)}=***', query)}"


def redact_text(text: str) -> str:
    """Free text fit for a log line or a client (an error message quoting a URL or a
    stream name): secret query values replaced ("play 'cam?sig=ab12' failed" ->
    "play 'cam?sig=***' failed")."""
    return _SECRET_KEYS_IN_TEXT.sub(lambda m: f"{m.group(1)}{m.group(2)}=***", text)
