"""Who may publish what: stream keys, publish tokens, bitrate measurement.

Stream keys become folder names, so a key is refused (400) when it is empty, longer
than 128 bytes, or holds a path separator, "..", a leading dot or a control character.
With a secret set, a publish needs ``?expires=UNIX&sig=HEX``: HMAC-SHA256 of
``KEY:EXPIRES`` under the secret, compared in constant time, not expired (the publish
tokens of `neurtmp.access.tokens`, shared with `neurtmp serve`).
"""

from __future__ import annotations

import collections
import time

from neurtmp.access.tokens import check_token, sign, split_name

__all__ = ["BitrateMeter", "check_key", "check_token", "sign", "split_name"]

#: Longest stream key, in UTF-8 bytes.
MAX_KEY_BYTES = 128


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
