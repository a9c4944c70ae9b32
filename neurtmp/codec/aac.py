"""AAC AudioSpecificConfig (ISO/IEC 14496-3, 1.6.2.1) and FLV AAC audio tag bodies.

An FLV AAC audio tag body is `0xAF` (AAC, 44 kHz, 16-bit, stereo: the flags FLV requires
for AAC whatever the real format), then 0 for the AudioSpecificConfig or 1 for a raw
AAC frame.
"""

from __future__ import annotations

from dataclasses import dataclass

from neurtmp.errors import DecodeError

__all__ = ["AudioSpecificConfig", "aac_frame_tag", "aac_sequence_header_tag", "build_audio_specific_config",
           "parse_audio_specific_config"]

SAMPLE_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)

_AAC_FLAGS = 0xAF


@dataclass(frozen=True)
class AudioSpecificConfig:
    object_type: int  # 2 = AAC-LC
    sample_rate: int
    channels: int


def parse_audio_specific_config(data: bytes) -> AudioSpecificConfig:
    """Raises:
        DecodeError: truncated or using an unknown sampling index without explicit rate.
    """
    if len(data) < 2:
        raise DecodeError("AudioSpecificConfig is shorter than 2 bytes")
    value = int.from_bytes(data[:5].ljust(5, b"\x00"), "big")  # 40 bits is enough for the fields below
    object_type = value >> 35
    index = (value >> 31) & 0x0F
    if object_type == 31:
        raise DecodeError("extended AAC object types are not supported")
    if index == 15:
        if len(data) < 5:
            raise DecodeError("AudioSpecificConfig with an explicit rate is truncated")
        sample_rate = (value >> 7) & 0xFFFFFF
        channels = (value >> 3) & 0x0F
    elif index < len(SAMPLE_RATES):
        sample_rate = SAMPLE_RATES[index]
        channels = (value >> 27) & 0x0F
    else:
        raise DecodeError(f"reserved AAC sampling frequency index {index}")
    return AudioSpecificConfig(object_type, sample_rate, channels)


def build_audio_specific_config(sample_rate: int, channels: int, object_type: int = 2) -> bytes:
    """A 2-byte AudioSpecificConfig for a standard sampling rate."""
    try:
        index = SAMPLE_RATES.index(sample_rate)
    except ValueError:
        raise ValueError(f"{sample_rate} Hz has no AAC sampling index") from None
    return ((object_type << 11) | (index << 7) | (channels << 3)).to_bytes(2, "big")


def aac_sequence_header_tag(config: bytes) -> bytes:
    return bytes((_AAC_FLAGS, 0)) + config


def aac_frame_tag(frame: bytes) -> bytes:
    return bytes((_AAC_FLAGS, 1)) + frame
