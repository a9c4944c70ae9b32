"""TranscoderTap: a key's transcoder as a player of the key's live stream.

The transcoder does not read its publisher: it plays the live stream, like any RTMP or
HTTP-FLV player. So it gets what players get: the publisher's media, the slate while a
publisher is away within the reconnect grace, a publisher back within the grace (or a
backup taking over) spliced in at its first key frame with the stream's timestamps going
on. One stream to the transcoder, one ladder of playlists. The stream's real end (its
players get NetStream.Play.UnpublishNotify: the grace ran out, or there was none) is
what ends the transcoder.

The tap is a multitrack player: it gets every Enhanced RTMP v2 track as published (a
single-track stream's messages are its own, unchanged), so that the transcoder can pass
an encoder's own ladder through (`neurtmp.ingest.multitrack`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import neurtmp
from neurtmp.fanout import FanOut, WireLog

__all__ = ["TranscoderTap"]

log = logging.getLogger(__name__)


class _FlvTags:
    """The wire format a `FanOut` asks a player for; never used, as a tap follows no
    shared log (each message is handed over as a packet)."""

    def encode(self, packet: neurtmp.Packet) -> bytes:
        return packet.flv_tag()


class TranscoderTap:
    """A live player (`neurtmp.live.stream.LivePlayer`) that feeds `feed` each message.

    Args:
        feed: takes one message; never blocks (`Transcoder.feed`).
        on_ended: called once when the stream ends (not for the UnpublishNotify that
            comes with each publisher's own end while the stream stays live: a live
            stream sends it only when it ends).
    """

    stream_id = 0
    receive_audio = True
    receive_video = True

    def __init__(self, feed: Callable[[neurtmp.Packet], None], on_ended: Callable[[], None]) -> None:
        self._feed = feed
        self._on_ended = on_ended
        self._closed = False
        self.group: FanOut | None = None
        #: Messages handed to the transcoder.
        self.packets = 0

    def __repr__(self) -> str:
        return f"<TranscoderTap packets={self.packets} closed={self._closed}>"

    @property
    def wire_format(self) -> _FlvTags:
        return _FlvTags()

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Take nothing more."""
        self._closed = True

    def follow(self, log: WireLog) -> bool:
        return False  # each message comes through queue_packet

    def unfollow(self, log: WireLog) -> None:
        pass

    def queue_packet(self, packet: neurtmp.Packet) -> bool | None:
        if self._closed:
            return None
        self.packets += 1
        self._feed(packet)
        return True

    def send_fast_start(self, packets: Iterable[neurtmp.Packet]) -> int:
        count = 0
        for packet in packets:
            if self.queue_packet(packet):
                count += 1
        return count

    def send_status(self, code: str, description: str = "", level: str = "status", **extra: Any) -> None:
        if code == neurtmp.StatusCode.PLAY_UNPUBLISH_NOTIFY and not self._closed:
            self._closed = True
            self._on_ended()
