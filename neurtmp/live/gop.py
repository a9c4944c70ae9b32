"""A bounded GOP cache: the packets since the last video key frame.

A late joiner gets these right after the sequence headers, so its first video frame is a
key frame and the picture appears at once (nginx-rtmp's `wait_key` + SRS's `gop_cache`).
Bounded in packets and bytes: a stream with no key frame for a long time (or none at
all) cannot make it grow without limit; past a bound the cache empties and waits for the
next key frame.
"""

from __future__ import annotations

from neurtmp import Packet

__all__ = ["GopCache"]

#: Packets kept at most: 10 s of 30 fps video plus its audio.
DEFAULT_MAX_PACKETS = 1024
#: Bytes kept at most: a 10 s GOP at 6 Mbit/s.
DEFAULT_MAX_BYTES = 8 * 1024 * 1024


class GopCache:
    """Packets from the latest video key frame on (audio and data interleaved)."""

    def __init__(self, max_packets: int = DEFAULT_MAX_PACKETS, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_packets = max_packets
        self.max_bytes = max_bytes
        self._packets: list[Packet] = []
        self._bytes = 0
        self._has_key = False

    def __len__(self) -> int:
        return len(self._packets)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def packets(self) -> list[Packet]:
        """The cached packets, oldest first (a key frame first when video is present)."""
        return list(self._packets)

    def clear(self) -> None:
        self._packets = []
        self._bytes = 0
        self._has_key = False

    def add(self, packet: Packet, restart: bool | None = None) -> None:
        """Record a packet (sequence headers and metadata are cached elsewhere).
        `restart`: whether the cache starts again at this packet (default: at every key
        frame; a multitrack stream starts it at key frames of one track only)."""
        if packet.is_key_frame if restart is None else restart:
            self._packets = [packet]
            self._bytes = len(packet.payload)
            self._has_key = True
            return
        if not self._has_key:
            return  # nothing useful to start a player with before the first key frame
        self._packets.append(packet)
        self._bytes += len(packet.payload)
        if len(self._packets) > self.max_packets or self._bytes > self.max_bytes:
            self.clear()
