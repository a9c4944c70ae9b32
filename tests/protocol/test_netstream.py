"""The NetStream state table, alone."""

from __future__ import annotations

from neurtmp.protocol.netstream import NetStreamCommand as C
from neurtmp.protocol.netstream import NetStreamState as S
from neurtmp.protocol.netstream import next_state


def test_publish_and_play_only_from_idle_or_a_replay() -> None:
    assert next_state(S.IDLE, C.PUBLISH) is S.PUBLISHING
    assert next_state(S.IDLE, C.PLAY) is S.PLAYING
    assert next_state(S.PLAYING, C.PLAY) is S.PLAYING  # a new play replaces the first
    assert next_state(S.PLAYING, C.PUBLISH) is None
    assert next_state(S.PUBLISHING, C.PLAY) is None
    assert next_state(S.PUBLISHING, C.PUBLISH) is None


def test_media_only_while_publishing() -> None:
    assert next_state(S.PUBLISHING, C.MEDIA) is S.PUBLISHING
    for state in (S.IDLE, S.PLAYING, S.PAUSED, S.CLOSED):
        assert next_state(state, C.MEDIA) is None


def test_pause_and_resume_only_while_playing() -> None:
    assert next_state(S.PLAYING, C.PAUSE) is S.PAUSED
    assert next_state(S.PAUSED, C.RESUME) is S.PLAYING
    assert next_state(S.IDLE, C.PAUSE) is None
    assert next_state(S.PUBLISHING, C.PAUSE) is None


def test_nothing_after_delete() -> None:
    for command in C:
        assert next_state(S.CLOSED, command) is None
    for state in (S.IDLE, S.PUBLISHING, S.PLAYING, S.PAUSED):
        assert next_state(state, C.DELETE) is S.CLOSED
        assert next_state(state, C.CLOSE) is S.IDLE


def test_an_end_of_sequence_is_no_key_frame() -> None:
    from neurtmp.protocol.media import CRITICAL, VIDEO_KEY, classify

    assert classify(9, b"\x17\x02\x00\x00\x00") == (False, False, CRITICAL)  # AVC end of sequence
    assert classify(9, b"\x92hvc1") == (False, False, CRITICAL)  # E-RTMP SequenceEnd, key frame type
    assert classify(9, b"\x17\x01\x00\x00\x00\x00") == (False, True, VIDEO_KEY)
    assert classify(9, b"\x17\x00\x00\x00\x00\x01") == (True, False, CRITICAL)
