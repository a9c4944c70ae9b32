"""FLV audio/video tag bodies as carried by RTMP messages, legacy and enhanced RTMP.

Video tag body, legacy: one byte `frame type << 4 | codec id` (codec 7 = AVC, 12 = HEVC
as some servers use it), then for AVC/HEVC an AVC packet type (0 sequence header,
1 NAL units, 2 end of sequence) and a signed 24-bit composition time offset.

Enhanced RTMP (veovera E-RTMP v1/v2): the top bit of the first byte (IsExHeader) is set;
bits 4-6 are the frame type, bits 0-3 a packet type (0 SequenceStart, 1 CodedFrames,
2 SequenceEnd, 3 CodedFramesX, 4 Metadata, 5 MPEG2TSSequenceStart, 6 Multitrack,
7 ModEx), followed by a FourCC ("hvc1", "av01", "vp09", "avc1"...).

These peeks read a byte or five, never copy the payload, and accept any input (a
too-short payload just answers "not a key frame / not a header").
"""

from __future__ import annotations

__all__ = [
    "AUDIO_AAC",
    "FRAME_DISPOSABLE",
    "FRAME_INTER",
    "FRAME_KEY",
    "VIDEO_AVC",
    "VIDEO_HEVC_LEGACY",
    "avc_sequence_header_tag",
    "avc_video_tag",
    "is_audio_sequence_header",
    "is_video_key_frame",
    "is_video_sequence_header",
    "video_codec",
    "video_frame_type",
]

FRAME_KEY = 1
FRAME_INTER = 2
FRAME_DISPOSABLE = 3
FRAME_GENERATED_KEY = 4
FRAME_COMMAND = 5

VIDEO_SORENSON = 2
VIDEO_SCREEN = 3
VIDEO_VP6 = 4
VIDEO_AVC = 7
VIDEO_HEVC_LEGACY = 12

AUDIO_AAC = 10
AUDIO_EX_HEADER = 9

_EX_HEADER = 0x80
_EX_SEQUENCE_START = 0
_EX_MULTITRACK = 6


def video_frame_type(payload: bytes) -> int:
    """1 key, 2 inter, 3 disposable inter, 4 generated key, 5 command; 0 if empty."""
    if not payload:
        return 0
    b0 = payload[0]
    return (b0 >> 4) & (0x07 if b0 & _EX_HEADER else 0x0F)


def video_codec(payload: bytes) -> str:
    """The codec: a FourCC for enhanced RTMP ("hvc1", "av01"...), else "avc", "flv1",
    "screen", "vp6", "hevc" or "codec<N>"."""
    if not payload:
        return ""
    b0 = payload[0]
    if b0 & _EX_HEADER:
        return payload[1:5].decode("latin-1") if len(payload) >= 5 else ""
    codec = b0 & 0x0F
    return _LEGACY_NAMES.get(codec, f"codec{codec}")


_LEGACY_NAMES = {VIDEO_SORENSON: "flv1", VIDEO_SCREEN: "screen", VIDEO_VP6: "vp6", VIDEO_AVC: "avc",
                 VIDEO_HEVC_LEGACY: "hevc"}


def is_video_key_frame(payload: bytes) -> bool:
    """A key frame (sequence headers included: they carry the key frame type too)."""
    return video_frame_type(payload) in (FRAME_KEY, FRAME_GENERATED_KEY)


def is_video_sequence_header(payload: bytes) -> bool:
    """A decoder configuration (AVC/HEVC sequence header, or E-RTMP SequenceStart)."""
    if len(payload) < 2:
        return False
    b0 = payload[0]
    if b0 & _EX_HEADER:
        packet_type = b0 & 0x0F
        if packet_type == _EX_MULTITRACK:
            return len(payload) >= 2 and (payload[1] & 0x0F) == _EX_SEQUENCE_START
        return packet_type == _EX_SEQUENCE_START
    return (b0 & 0x0F) in (VIDEO_AVC, VIDEO_HEVC_LEGACY) and payload[1] == 0


def is_audio_sequence_header(payload: bytes) -> bool:
    """An AAC AudioSpecificConfig, or an enhanced-audio SequenceStart."""
    if len(payload) < 2:
        return False
    sound_format = payload[0] >> 4
    if sound_format == AUDIO_AAC:
        return payload[1] == 0
    if sound_format == AUDIO_EX_HEADER:
        return (payload[0] & 0x0F) == _EX_SEQUENCE_START
    return False


def _cts(composition_time: int) -> bytes:
    return (composition_time & 0xFFFFFF).to_bytes(3, "big")


def avc_video_tag(avcc: bytes, is_key_frame: bool, composition_time: int = 0) -> bytes:
    """An AVC NALU video tag body from AVCC (length-prefixed) NAL units."""
    return bytes(((FRAME_KEY if is_key_frame else FRAME_INTER) << 4 | VIDEO_AVC, 1)) + _cts(composition_time) + avcc


def avc_sequence_header_tag(decoder_configuration: bytes) -> bytes:
    """An AVC sequence header video tag body from an AVCDecoderConfigurationRecord."""
    return bytes((FRAME_KEY << 4 | VIDEO_AVC, 0, 0, 0, 0)) + decoder_configuration
