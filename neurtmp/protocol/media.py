"""What kind of media message a payload is, read from its first bytes (sans-IO).

RTMP audio and video messages carry FLV tag bodies. A server needs a few facts about
each one to fan it out: is it a decoder configuration (sequence header), a key frame,
and so how precious is it to a player that falls behind. These peeks answer from the
first byte or two, never copy the payload, and accept any input (a payload too short
to say just answers "no").

Video, legacy: one byte `frame type << 4 | codec id`, then for AVC/HEVC a packet type
(0 = sequence header). Enhanced RTMP (E-RTMP v1/v2): the top bit (IsExHeader) is set,
bits 4-6 are the frame type, bits 0-3 a packet type (0 SequenceStart, 6 Multitrack, ...).
Audio: the top four bits are the sound format (10 AAC, 9 enhanced), then for AAC a
packet type (0 = AudioSpecificConfig). Enhanced packet types are read past ModEx
entries and the Multitrack byte (`neurtmp.protocol.ertmp`'s peeks).
"""

from __future__ import annotations

from neurtmp.protocol.ertmp import peek_audio_packet_type, peek_video_packet_type

__all__ = [
    "AUDIO",
    "CRITICAL",
    "VIDEO_INTER",
    "VIDEO_KEY",
    "classify",
    "is_audio_sequence_header",
    "is_video_key_frame",
    "is_video_sequence_end",
    "is_video_sequence_header",
    "video_frame_type",
]

#: Drop priorities for a player that falls behind: lower is more precious.
CRITICAL = 0  # control, commands, sequence headers, metadata: never dropped
AUDIO = 1
VIDEO_KEY = 2
VIDEO_INTER = 3

FRAME_KEY = 1
FRAME_GENERATED_KEY = 4

VIDEO_AVC = 7
VIDEO_HEVC_LEGACY = 12
AUDIO_AAC = 10
AUDIO_EX_HEADER = 9

_MESSAGE_AUDIO = 8
_MESSAGE_VIDEO = 9
_EX_HEADER = 0x80
_EX_SEQUENCE_START = 0
_EX_SEQUENCE_END = 2
_EX_CODED_FRAMES = 1
_EX_CODED_FRAMES_X = 3
_EX_METADATA = 4
_EX_MPEG2TS_SEQUENCE_START = 5
_EX_MULTICHANNEL_CONFIG = 4  # audio
FRAME_COMMAND = 5


def video_frame_type(payload: bytes) -> int:
    """1 key, 2 inter, 3 disposable inter, 4 generated key, 5 command; 0 if empty."""
    if not payload:
        return 0
    b0 = payload[0]
    return (b0 >> 4) & (0x07 if b0 & _EX_HEADER else 0x0F)


def is_video_key_frame(payload: bytes) -> bool:
    """A key frame (sequence headers included: they carry the key frame type too)."""
    return video_frame_type(payload) in (FRAME_KEY, FRAME_GENERATED_KEY)


def _ex_video_kind(payload: bytes) -> int | None:
    """The effective packet type of an extended video body; None if it is a video
    command (no picture, no configuration) or too short to say."""
    if video_frame_type(payload) == FRAME_COMMAND and peek_video_packet_type(payload) != _EX_METADATA:
        return None
    return peek_video_packet_type(payload)


def is_video_sequence_header(payload: bytes) -> bool:
    """A decoder configuration (AVC/HEVC sequence header, or E-RTMP SequenceStart /
    MPEG2TSSequenceStart, single-track or Multitrack, behind any ModEx)."""
    if len(payload) < 2:
        return False
    b0 = payload[0]
    if b0 & _EX_HEADER:
        return _ex_video_kind(payload) in (_EX_SEQUENCE_START, _EX_MPEG2TS_SEQUENCE_START)
    return (b0 & 0x0F) in (VIDEO_AVC, VIDEO_HEVC_LEGACY) and payload[1] == 0


def is_audio_sequence_header(payload: bytes) -> bool:
    """An AAC AudioSpecificConfig, or an enhanced-audio SequenceStart (any track form)."""
    if len(payload) < 2:
        return False
    sound_format = payload[0] >> 4
    if sound_format == AUDIO_AAC:
        return payload[1] == 0
    if sound_format == AUDIO_EX_HEADER:
        return peek_audio_packet_type(payload) == _EX_SEQUENCE_START
    return False


def is_video_sequence_end(payload: bytes) -> bool:
    """An end of sequence (AVC/HEVC packet type 2, E-RTMP SequenceEnd): no picture."""
    if len(payload) < 2:
        return False
    b0 = payload[0]
    if b0 & _EX_HEADER:
        return _ex_video_kind(payload) == _EX_SEQUENCE_END
    return (b0 & 0x0F) in (VIDEO_AVC, VIDEO_HEVC_LEGACY) and payload[1] == 2


def _classify_ex_video(payload: bytes) -> tuple[bool, bool, int]:
    kind = _ex_video_kind(payload)
    if kind in (_EX_SEQUENCE_START, _EX_MPEG2TS_SEQUENCE_START):
        return True, False, CRITICAL
    if kind in (_EX_CODED_FRAMES, _EX_CODED_FRAMES_X):
        return (False, True, VIDEO_KEY) if is_video_key_frame(payload) else (False, False, VIDEO_INTER)
    if kind in (_EX_SEQUENCE_END, _EX_METADATA) or (kind is None and video_frame_type(payload) == FRAME_COMMAND):
        return False, False, CRITICAL
    return False, False, VIDEO_INTER  # cut short, or a packet type not defined yet


def classify(type_id: int, payload: bytes) -> tuple[bool, bool, int]:
    """(sequence header, key frame, drop priority) of a message: the one place a media
    message's kind is read. A key frame here is a video key frame that is not a
    sequence header: where a player can start.

    Enhanced RTMP v2 Multitrack messages (OneTrack, ManyTracks, ManyTracksManyCodecs)
    share one frame type and one packet type across all their tracks, so the answer
    holds for each track: a ManyTracks sequence start is a sequence header for every
    track in it, a ManyTracks key frame is a key frame of every track in it. Tracks
    cannot differ within one message; they differ only between messages, and a live
    layer that keeps state per track reads the track ids with `neurtmp.protocol.ertmp`.
    Video metadata (HDR colour info), video commands, audio MultichannelConfig and
    sequence ends carry no picture or sound but must reach every player: they are
    critical, and neither sequence headers nor key frames.
    """
    if type_id == _MESSAGE_VIDEO:
        if payload and payload[0] & _EX_HEADER:
            return _classify_ex_video(payload)
        if is_video_sequence_header(payload):
            return True, False, CRITICAL
        if is_video_sequence_end(payload):  # carries the key frame type, but no picture to start on
            return False, False, CRITICAL
        if is_video_key_frame(payload):
            return False, True, VIDEO_KEY
        return False, False, VIDEO_INTER
    if type_id == _MESSAGE_AUDIO:
        if is_audio_sequence_header(payload):
            return True, False, CRITICAL
        if peek_audio_packet_type(payload) in (_EX_SEQUENCE_END, _EX_MULTICHANNEL_CONFIG):
            return False, False, CRITICAL
        return False, False, AUDIO
    return False, False, CRITICAL
