"""Signed tokens: ``NAME?expires=UNIX&sig=HEX`` for publishing and playing.

The signature is HMAC-SHA256 under a shared secret, hex, compared in constant time, and
the token holds until `expires` (Unix time). What is signed says what the token is for:

- publish: ``NAME:EXPIRES`` (the scheme `neurtmp ingest` and `neurtmp token` have always
  used, so their tokens stay valid);
- play: ``play`` LF ``NAME`` LF ``EXPIRES`` (LF is a newline).

A token is never checked for a name with a control character in it, so no publish
message can equal a play message: a viewer's play token never lets anyone publish, nor
the other way round. NAME is the stream name without its query string.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import urllib.parse

from neurtmp.names import split_query

__all__ = ["PLAY", "PUBLISH", "check_token", "sign", "signed_message", "split_name", "token_query"]

#: What a token is for.
PUBLISH = "publish"
PLAY = "play"
_KINDS = (PUBLISH, PLAY)


def split_name(name: str) -> tuple[str, dict[str, str]]:
    """ "key?a=1&b=2" -> ("key", {"a": "1", "b": "2"}) (the last value of a repeated key)."""
    key, query = split_query(name)
    return key, {k: v[-1] for k, v in urllib.parse.parse_qs(query, keep_blank_values=True).items()}


def signed_message(key: str, expires: int, kind: str = PUBLISH) -> bytes:
    """The bytes a `kind` token for `key` until `expires` signs."""
    if kind == PUBLISH:
        return f"{key}:{expires}".encode()
    if kind == PLAY:
        return f"play\n{key}\n{expires}".encode()
    raise ValueError(f"a token is for one of {_KINDS}, not {kind!r}")


def sign(secret: str, key: str, expires: int, kind: str = PUBLISH) -> str:
    """The hex signature of a `kind` token for `key` until `expires` (Unix time)."""
    return hmac.new(secret.encode(), signed_message(key, expires, kind), hashlib.sha256).hexdigest()


def token_query(secret: str, key: str, expires: int, kind: str = PUBLISH) -> str:
    """ "expires=...&sig=..." for a stream name's query string."""
    return f"expires={expires}&sig={sign(secret, key, expires, kind)}"


def check_token(secret: str, key: str, query: dict[str, str], now: float | None = None,
                kind: str = PUBLISH) -> str | None:
    """Why the `kind` token in `query` is not valid for `key`, or None when it is."""
    expires_text, signature = query.get("expires", ""), query.get("sig", "")
    if not expires_text or not signature:
        return f"{'publishing' if kind == PUBLISH else 'playing'} needs a token (?expires=...&sig=...)"
    if any(ord(c) < 32 or ord(c) == 127 for c in key):
        return "no token is valid for a name with control characters"
    try:
        expires = int(expires_text)
    except ValueError:
        return "bad token expiry"
    if not hmac.compare_digest(sign(secret, key, expires, kind), signature.lower()):
        return "bad token signature"
    if expires < (time.time() if now is None else now):
        return "token expired"
    return None
