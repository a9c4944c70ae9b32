"""The GOP cache alone, fed packets built from FLV payloads."""

from __future__ import annotations

import neurtmp
from neurtmp.live.gop import GopCache

MessageType = neurtmp.MessageType


def key(timestamp: int, size: int = 100) -> neurtmp.Packet:
    """An AVC key frame (frame type 1, AVC packet type 1: a NALU)."""
    return neurtmp.Packet(MessageType.VIDEO, timestamp, bytes((0x17, 0x01, 0, 0, 0)) + bytes(size - 5))


def inter(timestamp: int, size: int = 50) -> neurtmp.Packet:
    """An AVC inter frame (frame type 2)."""
    return neurtmp.Packet(MessageType.VIDEO, timestamp, bytes((0x27, 0x01, 0, 0, 0)) + bytes(size - 5))


def audio(timestamp: int, size: int = 20) -> neurtmp.Packet:
    """An AAC raw frame (0xAF 0x01)."""
    return neurtmp.Packet(MessageType.AUDIO, timestamp, b"\xaf\x01" + bytes(size - 2))


def test_nothing_is_cached_before_the_first_key_frame() -> None:
    gop = GopCache()
    for packet in (inter(0), audio(10), inter(33), audio(33)):
        gop.add(packet)
    assert len(gop) == 0 and gop.nbytes == 0 and gop.packets() == []
    first = key(66)
    gop.add(first)
    assert gop.packets() == [first] and gop.nbytes == 100


def test_audio_and_video_after_the_key_frame_are_kept_in_order() -> None:
    gop = GopCache()
    gop.add(audio(0))  # before any key frame: not kept
    packets = [key(0), audio(10), inter(33), audio(33), audio(56), inter(66)]
    for packet in packets:
        gop.add(packet)
    assert gop.packets() == packets
    assert len(gop) == 6 and gop.nbytes == 100 + 3 * 20 + 2 * 50
    assert gop.packets() is not gop.packets()  # a copy: callers cannot change the cache


def test_a_key_frame_restarts_the_cache() -> None:
    gop = GopCache()
    for packet in (key(0), inter(33), audio(40), inter(66)):
        gop.add(packet)
    second, after = key(100, size=300), audio(110)
    gop.add(second)
    assert gop.packets() == [second] and gop.nbytes == 300
    gop.add(after)
    assert gop.packets() == [second, after] and gop.nbytes == 320


def test_packet_bound_empties_the_cache_until_the_next_key_frame() -> None:
    gop = GopCache(max_packets=4, max_bytes=1 << 20)
    packets = [key(0), inter(33), inter(66), inter(100)]
    for packet in packets:
        gop.add(packet)
    assert gop.packets() == packets  # exactly at the bound: kept
    gop.add(inter(133))  # a fifth packet: past the bound
    assert len(gop) == 0 and gop.nbytes == 0
    gop.add(inter(166))
    gop.add(audio(170))
    assert len(gop) == 0  # waits for a key frame again
    restart = key(200)
    gop.add(restart)
    gop.add(audio(210))
    assert [p.timestamp for p in gop.packets()] == [200, 210] and gop.packets()[0] is restart


def test_byte_bound_empties_the_cache_until_the_next_key_frame() -> None:
    gop = GopCache(max_packets=1000, max_bytes=1000)
    gop.add(key(0, size=600))
    gop.add(inter(33, size=400))
    assert len(gop) == 2 and gop.nbytes == 1000  # exactly at the bound: kept
    gop.add(audio(40, size=2))  # 1002 bytes: past the bound
    assert len(gop) == 0 and gop.nbytes == 0
    gop.add(inter(66))
    assert len(gop) == 0
    restart = key(100, size=200)
    gop.add(restart)
    assert gop.packets() == [restart] and gop.nbytes == 200


def test_clear_forgets_the_key_frame() -> None:
    gop = GopCache()
    for packet in (key(0), audio(10), inter(33)):
        gop.add(packet)
    gop.clear()
    assert len(gop) == 0 and gop.nbytes == 0 and gop.packets() == []
    gop.add(inter(66))
    gop.add(audio(70))
    assert len(gop) == 0  # nothing is kept until the next key frame
    restart = key(100)
    gop.add(restart)
    assert gop.packets() == [restart]
