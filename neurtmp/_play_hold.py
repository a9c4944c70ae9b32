"""PlayHold: what a play handler sends before its play is answered.

A play handler runs before the client gets NetStream.Play.Start; what it sends (a live
player's fast start: metadata, sequence headers, the cached GOP; a rendered stream's
first frame) must reach the client after that status. The stream keeps it here while
the handler runs and releases it, as one burst, once the play is accepted.

The hold is bounded by the send queue's hard limit, in bytes, as the queue itself would
be: past it, video is cut (and counted) until a key frame that fits, so that what the
player gets still starts on a key frame.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from neurtmp.protocol.media import VIDEO_INTER, VIDEO_KEY

if TYPE_CHECKING:
    from neurtmp._wirelog import WireLog

__all__ = ["PlayHold"]


class PlayHold:
    """Messages (wire bytes, drop priority) held during one play handler call."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.messages: list[tuple[bytes, int]] = []
        self.bytes = 0
        #: Video messages cut by the limit.
        self.dropped = 0
        #: The shared log the player follows once the held messages are out.
        self.follow: WireLog | None = None
        self._skipping_video = False

    def hold(self, wire: bytes, priority: int) -> bool:
        """Keep one message; False when the limit cut it (video only)."""
        if priority >= VIDEO_KEY:
            if self.bytes + len(wire) > self.limit or (self._skipping_video and priority == VIDEO_INTER):
                self._skipping_video = True
                self.dropped += 1
                return False
            self._skipping_video = False
        self.messages.append((wire, priority))
        self.bytes += len(wire)
        return True

    def defer_follow(self, log: WireLog) -> bool:
        """Follow `log` after the release; False when another log is already deferred (a
        connection follows one log at most)."""
        if self.follow is None:
            self.follow = log
        return self.follow is log
