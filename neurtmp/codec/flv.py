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

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from neurtmp.errors import DecodeError
from neurtmp.protocol import ertmp
from neurtmp.protocol.media import (
    AUDIO_AAC,
    FRAME_KEY,
    VIDEO_AVC,
    VIDEO_HEVC_LEGACY,
    is_audio_sequence_header,
    is_video_key_frame,
    is_video_sequence_header,
    video_frame_type,
)
from neurtmp.protocol.packet import flv_tag_bytes

__all__ = [
    "AUDIO_AAC",
    "FRAME_DISPOSABLE",
    "FRAME_INTER",
    "FRAME_KEY",
    "VIDEO_AVC",
    "VIDEO_HEVC_LEGACY",
    "FlvReader",
    "FlvTag",
    "FlvWriter",
    "avc_sequence_header_tag",
    "enhanced_video_tag",
    "avc_video_tag",
    "is_audio_sequence_header",
    "is_video_key_frame",
    "is_video_sequence_header",
    "video_codec",
    "video_frame_type",
]

FRAME_INTER = 2
FRAME_DISPOSABLE = 3
FRAME_COMMAND = 5

VIDEO_SORENSON = 2
VIDEO_SCREEN = 3
VIDEO_VP6 = 4

_EX_HEADER = 0x80


def video_codec(payload: bytes) -> str:
    """The codec: a FourCC for enhanced RTMP ("hvc1", "av01"...; a Multitrack message's
    first track), else "avc", "flv1", "screen", "vp6", "hevc" or "codec<N>"; "" when
    the payload cannot say."""
    if not payload:
        return ""
    b0 = payload[0]
    if b0 & _EX_HEADER:
        try:
            tracks = ertmp.parse_video(payload).tracks
        except DecodeError:
            return ""
        return tracks[0].fourcc if tracks else ""
    codec = b0 & 0x0F
    return _LEGACY_NAMES.get(codec, f"codec{codec}")


_LEGACY_NAMES = {VIDEO_SORENSON: "flv1", VIDEO_SCREEN: "screen", VIDEO_VP6: "vp6", VIDEO_AVC: "avc",
                 VIDEO_HEVC_LEGACY: "hevc"}


def _cts(composition_time: int) -> bytes:
    return (composition_time & 0xFFFFFF).to_bytes(3, "big")


def avc_video_tag(avcc: bytes, is_key_frame: bool, composition_time: int = 0) -> bytes:
    """An AVC NALU video tag body from AVCC (length-prefixed) NAL units."""
    return bytes(((FRAME_KEY if is_key_frame else FRAME_INTER) << 4 | VIDEO_AVC, 1)) + _cts(composition_time) + avcc


def avc_sequence_header_tag(decoder_configuration: bytes) -> bytes:
    """An AVC sequence header video tag body from an AVCDecoderConfigurationRecord."""
    return bytes((FRAME_KEY << 4 | VIDEO_AVC, 0, 0, 0, 0)) + decoder_configuration


#: Enhanced-RTMP video packet types.
EX_SEQUENCE_START = 0
EX_CODED_FRAMES = 1
EX_SEQUENCE_END = 2
EX_CODED_FRAMES_X = 3


def enhanced_video_tag(fourcc: str, packet_type: int, data: bytes, is_key_frame: bool = False,
                       composition_time: int = 0) -> bytes:
    """An enhanced-RTMP video tag body: ex-header byte, FourCC, [composition time], data.

    CodedFrames carries a 24-bit composition time for "avc1" and "hvc1"; CodedFramesX is
    the same without it (composition time 0).
    """
    raw = fourcc.encode("latin-1")
    if len(raw) != 4:
        raise ValueError(f"FourCC must be 4 characters, not {fourcc!r}")
    frame_type = FRAME_KEY if is_key_frame or packet_type == EX_SEQUENCE_START else FRAME_INTER
    head = bytes((0x80 | frame_type << 4 | packet_type,)) + raw
    if packet_type == EX_CODED_FRAMES and fourcc in ("avc1", "hvc1"):
        head += _cts(composition_time)
    return head + data


# -- FLV files --------------------------------------------------------------------------

TAG_AUDIO = 8
TAG_VIDEO = 9
TAG_SCRIPT = 18


@dataclass(frozen=True)
class FlvTag:
    type_id: int
    timestamp: int
    payload: bytes


def file_header(has_audio: bool = True, has_video: bool = True) -> bytes:
    """An FLV file header and the first (zero) back pointer."""
    flags = (4 if has_audio else 0) | (1 if has_video else 0)
    return b"FLV\x01" + bytes((flags,)) + (9).to_bytes(4, "big") + b"\x00\x00\x00\x00"


#: One FLV tag (audio 8, video 9, script data 18) with its back pointer.
tag_bytes = flv_tag_bytes


class FlvWriter:
    """Writes an FLV file: header, then tags with their back pointers."""

    def __init__(self, file: BinaryIO, has_audio: bool = True, has_video: bool = True) -> None:
        self._file = file
        file.write(file_header(has_audio, has_video))

    def write(self, type_id: int, timestamp: int, payload: bytes) -> None:
        self._file.write(tag_bytes(type_id, timestamp, payload))


class FlvReader:
    """Reads the tags of an FLV file.

    Raises:
        DecodeError: not an FLV file, or a truncated tag.
    """

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        header = file.read(9)
        if len(header) < 9 or header[:3] != b"FLV":
            raise DecodeError("not an FLV file")
        file.read(int.from_bytes(header[5:9], "big") - 9 + 4)  # rest of header + PreviousTagSize0

    def __iter__(self) -> Iterator[FlvTag]:
        while True:
            header = self._file.read(11)
            if not header:
                return
            if len(header) < 11:
                raise DecodeError("truncated FLV tag header")
            size = int.from_bytes(header[1:4], "big")
            timestamp = int.from_bytes(header[4:7], "big") | header[7] << 24
            payload = self._file.read(size)
            if len(payload) < size:
                raise DecodeError("truncated FLV tag")
            self._file.read(4)
            yield FlvTag(header[0], timestamp, payload)
