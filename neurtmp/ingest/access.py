"""Who may publish what: stream keys, publish tokens, bitrate measurement.

Stream keys become folder names, so a key is refused (400) when it is empty, longer
than 128 bytes, or holds a path separator, "..", a leading dot or a control character.
With a secret set, a publish needs ``?expires=UNIX&sig=HEX``: HMAC-SHA256 of
``KEY:EXPIRES`` under the secret, compared in constant time, not expired.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import time
import urllib.parse

from neurtmp.names import split_query

__all__ = ["BitrateMeter", "check_key", "check_token", "sign", "split_name"]

#: Longest stream key, in UTF-8 bytes.
MAX_KEY_BYTES = 128


def split_name(name: str) -> tuple[str, dict[str, str]]:
    """ "key?a=1&b=2" -> ("key", {"a": "1", "b": "2"})."""
    key, query = split_query(name)
    return key, {k: v[-1] for k, v in urllib.parse.parse_qs(query, keep_blank_values=True).items()}


def check_key(key: str) -> str | None:
    """Why `key` cannot be a stream key, or None when it can."""
    if not key:
        return "empty stream key"
    if len(key.encode()) > MAX_KEY_BYTES:
        return f"stream key longer than {MAX_KEY_BYTES} bytes"
    if "/" in key or "\\" in key or ".." in key or key.startswith("."):
        return "stream key with a path in it"
    if any(ord(c) < 32 or ord(c) == 127 for c in key):
        return "stream key with control characters"
    return None


def sign(secret: str, key: str, expires: int) -> str:
    """The token signature for `key` until `expires` (Unix time)."""
    return hmac.new(secret.encode(), f"{key}:{expires}".encode(), hashlib.sha256).hexdigest()


def check_token(secret: str, key: str, query: dict[str, str], now: float | None = None) -> str | None:
    """Why the publish token in `query` is not valid for `key`, or None when it is."""
    expires_text, signature = query.get("expires", ""), query.get("sig", "")
    if not expires_text or not signature:
        return "publishing needs a token (?expires=...&sig=...)"
    try:
        expires = int(expires_text)
    except ValueError:
        return "bad token expiry"
    if not hmac.compare_digest(sign(secret, key, expires), signature.lower()):
        return "bad token signature"
    if expires < (time.time() if now is None else now):
        return "token expired"
    return None


class BitrateMeter:
    """Bits per second over the last `window` seconds, in one-second buckets."""

    def __init__(self, window: float = 5.0) -> None:
        self.window = window
        self._buckets: collections.deque[list[float]] = collections.deque()
        self.total = 0
        self.started = time.monotonic()

    def add(self, size: int, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        second = float(int(now))
        if self._buckets and self._buckets[-1][0] == second:
            self._buckets[-1][1] += size
        else:
            self._buckets.append([second, float(size)])
        self.total += size
        while self._buckets and self._buckets[0][0] <= now - self.window:
            self._buckets.popleft()

    def bits_per_second(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        span = min(self.window, max(1.0, now - self.started))
        return 8 * sum(size for start, size in self._buckets if start > now - self.window - 1) / span
