"""Enhanced RTMP v2 multitrack in a LiveStream, as a unit: per-track headers and GOP
start, legacy track views, and the app's choice of track."""

from __future__ import annotations

import pytest

from neurtmp import MessageType, Packet, split_tracks
from neurtmp.live import LiveStream
from neurtmp.live.app import requested_track
from neurtmp.live.gop import GopCache
from neurtmp.protocol import ertmp

from .test_registry import AUDIO_HEADER, HEADER, FakePlayer, inter, key, video

HEADER_1 = b"\x17\x00\x00\x00\x00\x01\x42\x00\x0d"  # track 1's AVC header, legacy form


def track1(legacy: bytes) -> bytes:
    """A legacy AVC payload of track 1 as ffmpeg 9 sends it: Multitrack OneTrack avc1."""
    frame_type, avc_type = legacy[0] >> 4, legacy[1]
    packet_type = {0: ertmp.VideoPacketType.SEQUENCE_START, 1: ertmp.VideoPacketType.CODED_FRAMES_X}[avc_type]
    return ertmp.build_video(ertmp.ExVideoTag(frame_type, packet_type, (ertmp.Track(1, "avc1", legacy[5:]),),
                                              ertmp.AvMultitrackType.ONE_TRACK))


def legacy_of(legacy: bytes) -> bytes:
    """What a legacy player of track 1 gets for `legacy` sent on track 1."""
    return ertmp.split_video(track1(legacy), ertmp.TrackForm.LEGACY)[0][1]


def publish_ladder(live: LiveStream, frames: int = 6) -> None:
    """Two tracks as ffmpeg 9 sends them (track 0 legacy, track 1 OneTrack), key frames
    every 3 frames, track 0's first at each instant."""
    live.start_publishing(object(), "publisher")
    for packet in (video(0, HEADER), video(0, track1(HEADER_1)), Packet(MessageType.AUDIO, 0, AUDIO_HEADER)):
        live.on_packet(packet)
    for n in range(frames):
        frame = key(n) if n % 3 == 0 else inter(n)
        live.on_packet(video(n * 40, frame))
        live.on_packet(video(n * 40, track1(frame)))
        live.on_packet(Packet(MessageType.AUDIO, n * 40 + 1, b"\xaf\x01" + bytes([n])))


def payloads(player: FakePlayer) -> list[bytes]:
    return [payload for _, _, payload in player.received()]


def test_a_late_multitrack_player_gets_every_tracks_header_and_starts_each_on_a_key_frame() -> None:
    live = LiveStream("live", "ladder", GopCache())
    publish_ladder(live)
    player = FakePlayer()
    live.add_player(player)  # type: ignore[arg-type]
    got = payloads(player)
    assert got[:3] == [HEADER, track1(HEADER_1), AUDIO_HEADER]
    # the GOP starts at track 0's latest key frame (frame 3), not at track 1's just after it
    assert got[3:6] == [key(3), track1(key(3)), b"\xaf\x01\x03"]
    assert live.gop.packets()[0].payload == key(3)


def test_a_late_legacy_player_gets_its_track_unwrapped() -> None:
    live = LiveStream("live", "ladder", GopCache())
    publish_ladder(live)
    zero, one = FakePlayer(), FakePlayer()
    live.add_player(zero, 0)  # type: ignore[arg-type]
    live.add_player(one, 1)  # type: ignore[arg-type]
    assert payloads(zero) == [HEADER, AUDIO_HEADER, key(3), b"\xaf\x01\x03", inter(4), b"\xaf\x01\x04", inter(5),
                              b"\xaf\x01\x05"]
    assert payloads(one) == [HEADER_1, AUDIO_HEADER, key(3), b"\xaf\x01\x03", inter(4), b"\xaf\x01\x04",
                             inter(5), b"\xaf\x01\x05"]
    assert legacy_of(HEADER_1) == HEADER_1
    live.on_packet(video(240, inter(6)))
    live.on_packet(video(240, track1(inter(6))))
    assert payloads(zero)[-1] == payloads(one)[-1] == inter(6)
    assert live.player_first_key_ms(one) is not None  # type: ignore[arg-type]


def test_a_view_lives_while_it_has_players_and_a_plain_stream_is_passed_on_as_it_is() -> None:
    live = LiveStream("live", "cam", GopCache())
    live.start_publishing(object(), "publisher")
    player, other = FakePlayer(), FakePlayer()
    live.add_player(player, 0)  # type: ignore[arg-type]
    live.add_player(other, 0)  # type: ignore[arg-type]
    packet = video(0, key(0))
    assert split_tracks(packet) == [(0, packet)]  # not multitrack: the same packet, no copy
    live.on_packet(video(0, HEADER))
    live.on_packet(packet)
    assert payloads(player) == payloads(other) == [HEADER, key(0)]
    assert live.track_views == [0]
    live.remove_player(player)  # type: ignore[arg-type]
    assert live.track_views == [0]
    live.remove_player(other)  # type: ignore[arg-type]
    assert live.track_views == []


def test_a_legacy_player_waiting_for_the_publisher_starts_at_its_tracks_key_frame() -> None:
    live = LiveStream("live", "ladder", GopCache())
    player = FakePlayer()
    live.add_player(player, 1)  # type: ignore[arg-type]
    publish_ladder(live, frames=2)
    video_payloads = [p for p in payloads(player) if p[0] >> 4 != 0xA]
    assert video_payloads == [HEADER_1, key(0), inter(1)]


@pytest.mark.parametrize(("name", "track"), [("cam", 0), ("cam?track=1", 1), ("cam?key=x&track=2", 2),
                                             ("cam?track=x", 0), ("cam?track=-1", 0), ("cam?track=999", 0)])
def test_the_track_a_legacy_player_asks_for(name: str, track: int) -> None:
    assert requested_track(name) == track


def test_a_republish_starts_the_views_again() -> None:
    live = LiveStream("live", "ladder", GopCache())
    publish_ladder(live)
    player = FakePlayer()
    live.add_player(player, 1)  # type: ignore[arg-type]
    live.stop_publishing(live.publisher)
    publish_ladder(live, frames=1)
    video_payloads = [p for p in payloads(player) if p[0] >> 4 != 0xA]
    assert video_payloads[-2:] == [HEADER_1, key(0)]
