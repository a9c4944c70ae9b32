"""The live names of a server: (app, name) -> LiveStream, and who may publish."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from neurtmp.live.gop import DEFAULT_MAX_BYTES, DEFAULT_MAX_PACKETS, GopCache
from neurtmp.live.slate import Slate
from neurtmp.live.stream import DEFAULT_FAILOVER_TIMEOUT, LiveStream
from neurtmp.names import split_query

__all__ = ["Registry"]

log = logging.getLogger(__name__)


class Registry:
    """Live streams by (app, name).

    Args:
        takeover: a second publisher replaces the first (else it is refused).
        gop_packets / gop_bytes: GOP cache bounds per stream (0 disables the cache).
        reconnect_grace: seconds a stream stays live after its publisher left.
        slate: what its players get meanwhile (None: the last frame).
        failover_timeout: seconds a primary may send nothing before its backup is used.
    """

    def __init__(self, takeover: bool = False, gop_packets: int = DEFAULT_MAX_PACKETS,
                 gop_bytes: int = DEFAULT_MAX_BYTES, reconnect_grace: float = 0.0, slate: Slate | None = None,
                 failover_timeout: float = DEFAULT_FAILOVER_TIMEOUT) -> None:
        self.takeover = takeover
        self.gop_packets = gop_packets
        self.gop_bytes = gop_bytes
        self.reconnect_grace = reconnect_grace
        self.slate = slate
        self.failover_timeout = failover_timeout
        self._streams: dict[tuple[str, str], LiveStream] = {}

    def get(self, app: str, name: str) -> LiveStream | None:
        return self._streams.get((split_query(app)[0], split_query(name)[0]))

    def get_or_create(self, app: str, name: str) -> LiveStream:
        key = (split_query(app)[0], split_query(name)[0])
        stream = self._streams.get(key)
        if stream is None:
            gop = GopCache(self.gop_packets, self.gop_bytes) if self.gop_packets > 0 else None
            stream = LiveStream(key[0], key[1], gop, self.reconnect_grace, self.slate, on_ended=self.forget_if_idle,
                                failover_timeout=self.failover_timeout)
            self._streams[key] = stream
        return stream

    def streams(self) -> list[LiveStream]:
        return list(self._streams.values())

    def forget_if_idle(self, stream: LiveStream) -> None:
        if stream.idle and self._streams.get((stream.app, stream.name)) is stream:
            del self._streams[(stream.app, stream.name)]

    def publish(self, app: str, name: str, source: Any, peer: str = "", backup: bool = False
                ) -> LiveStream | None:
        """Make `source` the publisher of app/name (with `backup`, its backup publisher:
        see `LiveStream.start_backup`); None when refused (that place is taken).

        With takeover, the current one is displaced (`source.displace()` is not
        required: the old publisher's connection is closed by the caller's policy).
        """
        stream = self.get_or_create(app, name)
        role = "backup" if backup else "publisher"
        old, old_peer = (stream.backup, stream.backup_peer) if backup else (stream.publisher, stream.publisher_peer)
        if old is not None and not backup and stream.primary_draining and stream.successor is None:
            stream.start_successor(source, peer)
            log.info("%s: %s succeeds the draining publisher %s at its first key frame", stream.path, peer, old_peer)
            return stream
        if old is not None:
            if not self.takeover:
                log.info("%s: %s from %s refused: %s is its %s", stream.path, role, peer, old_peer, role)
                return None
            log.info("%s: %s takes over as %s from %s", stream.path, peer, role, old_peer)
            stream.stop_publishing(old, grace=False)
            displace = getattr(old, "displace", None)
            if displace is not None:
                displace()
        if backup:
            stream.start_backup(source, peer)
        else:
            stream.start_publishing(source, peer)
        log.info("%s: %spublished by %s", stream.path, "backup " if backup else "", peer)
        return stream

    def drain(self, is_draining: Callable[[Any], bool]) -> int:
        """Announce the primary publishers `is_draining` says go away soon
        (`LiveStream.drain_publisher`); how many."""
        count = 0
        for stream in self.streams():
            if stream.publisher is not None and is_draining(stream.publisher):
                stream.drain_publisher()
                log.info("%s: its publisher %s is draining; the next publisher succeeds it", stream.path,
                         stream.publisher_peer)
                count += 1
        return count

    def unpublish(self, stream: LiveStream, source: Any, grace: bool = True) -> None:
        """`source` stopped publishing `stream` (`LiveStream.stop_publishing`; without
        `grace`, no reconnect grace: the stream ends unless another feed carries it)."""
        if stream.stop_publishing(source, grace) and not stream.is_live:  # (not within a grace, nor carried on)
            log.info("%s: unpublished", stream.path)
        self.forget_if_idle(stream)
