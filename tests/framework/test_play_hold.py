"""PlayHold: a play handler's messages, bounded in bytes, cut only at video."""

from __future__ import annotations

from neurtmp._play_hold import PlayHold
from neurtmp._wirelog import WireLog
from neurtmp.protocol.media import AUDIO, CRITICAL, VIDEO_INTER, VIDEO_KEY
from neurtmp.protocol.packet import RtmpChunks


def test_everything_within_the_limit_is_held_in_order() -> None:
    hold = PlayHold(limit=1000)
    sent = [(b"h" * 10, CRITICAL), (b"k" * 100, VIDEO_KEY), (b"a" * 10, AUDIO), (b"i" * 100, VIDEO_INTER)]
    assert all(hold.hold(wire, priority) for wire, priority in sent)
    assert hold.messages == sent and hold.bytes == 220 and hold.dropped == 0


def test_past_the_limit_video_is_cut_until_a_key_frame_that_fits() -> None:
    hold = PlayHold(limit=300)
    assert hold.hold(b"k" * 200, VIDEO_KEY)
    assert not hold.hold(b"i" * 150, VIDEO_INTER)  # would pass the limit
    assert hold.hold(b"a" * 20, AUDIO)  # audio and headers are kept
    assert not hold.hold(b"i" * 10, VIDEO_INTER)  # fits, but follows a cut: no reference frame
    assert hold.hold(b"k" * 50, VIDEO_KEY)  # a key frame that fits resumes the video
    assert hold.hold(b"i" * 10, VIDEO_INTER)
    assert hold.dropped == 2
    assert [len(wire) for wire, _ in hold.messages] == [200, 20, 50, 10]


def test_one_deferred_log_per_connection() -> None:
    hold = PlayHold(limit=10)
    first, second = WireLog(RtmpChunks(4096, 1)), WireLog(RtmpChunks(4096, 2))
    assert hold.defer_follow(first)
    assert hold.defer_follow(first)
    assert not hold.defer_follow(second)
    assert hold.follow is first
