"""H.264 (AVC) bitstream helpers: Annex-B <-> AVCC and the decoder configuration record.

Encoders (x264, NVENC) emit Annex-B: NAL units separated by 00 00 01 / 00 00 00 01 start
codes. FLV and RTMP carry AVCC: each NAL unit prefixed by its length (4 bytes here), and
the SPS/PPS in an AVCDecoderConfigurationRecord (ISO/IEC 14496-15, 5.2.4.1) sent once as
the sequence header. Start codes are found with bytes.find, not a Python byte loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from neurtmp.errors import DecodeError

__all__ = [
    "AVCDecoderConfiguration",
    "NAL_IDR",
    "NAL_PPS",
    "NAL_SPS",
    "annexb_to_avcc",
    "avcc_to_nal_units",
    "build_decoder_configuration",
    "parse_decoder_configuration",
    "split_annexb",
]

NAL_SLICE = 1
NAL_IDR = 5
NAL_SEI = 6
NAL_SPS = 7
NAL_PPS = 8
NAL_AUD = 9


def split_annexb(data: bytes) -> list[bytes]:
    """The NAL units of an Annex-B byte stream (start codes removed)."""
    units: list[bytes] = []
    start = data.find(b"\x00\x00\x01")
    if start < 0:
        return [data] if data else []
    start += 3
    while True:
        nxt = data.find(b"\x00\x00\x01", start)
        if nxt < 0:
            unit = data[start:]
            if unit:
                units.append(unit)
            return units
        end = nxt - 1 if nxt > start and data[nxt - 1] == 0 else nxt  # 4-byte start code
        if end > start:
            units.append(data[start:end])
        start = nxt + 3


def annexb_to_avcc(data: bytes, drop_types: frozenset[int] = frozenset({NAL_AUD})) -> bytes:
    """Annex-B -> 4-byte length-prefixed NAL units (access unit delimiters dropped)."""
    out = bytearray()
    for unit in split_annexb(data):
        if unit[0] & 0x1F in drop_types:
            continue
        out += len(unit).to_bytes(4, "big")
        out += unit
    return bytes(out)


def avcc_to_nal_units(data: bytes, length_size: int = 4) -> list[bytes]:
    """Length-prefixed NAL units -> the units.

    Raises:
        DecodeError: a length runs past the end.
    """
    units, pos = [], 0
    while pos < len(data):
        if pos + length_size > len(data):
            raise DecodeError("truncated AVCC NAL unit length")
        size = int.from_bytes(data[pos : pos + length_size], "big")
        pos += length_size
        if pos + size > len(data):
            raise DecodeError(f"AVCC NAL unit of {size} bytes runs past the end")
        units.append(data[pos : pos + size])
        pos += size
    return units


@dataclass
class AVCDecoderConfiguration:
    """The fields of an AVCDecoderConfigurationRecord that matter to a streamer."""

    profile: int
    compatibility: int
    level: int
    length_size: int = 4
    sps: list[bytes] = field(default_factory=list)
    pps: list[bytes] = field(default_factory=list)


def build_decoder_configuration(sps: list[bytes], pps: list[bytes]) -> bytes:
    """An AVCDecoderConfigurationRecord (4-byte NAL lengths) from SPS and PPS units."""
    if not sps or not pps:
        raise ValueError("an AVC decoder configuration needs at least one SPS and one PPS")
    first = sps[0]
    out = bytearray((1, first[1], first[2], first[3], 0xFF, 0xE0 | len(sps)))
    for unit in sps:
        out += len(unit).to_bytes(2, "big") + unit
    out.append(len(pps))
    for unit in pps:
        out += len(unit).to_bytes(2, "big") + unit
    return bytes(out)


def parse_decoder_configuration(record: bytes) -> AVCDecoderConfiguration:
    """Parse an AVCDecoderConfigurationRecord.

    Raises:
        DecodeError: the record is malformed.
    """
    try:
        if record[0] != 1:
            raise DecodeError(f"AVC configuration version {record[0]} (expected 1)")
        config = AVCDecoderConfiguration(record[1], record[2], record[3], (record[4] & 0x03) + 1)
        pos = 6
        for target, count in ((config.sps, record[5] & 0x1F), (config.pps, None)):
            if count is None:
                count = record[pos]
                pos += 1
            for _ in range(count):
                size = int.from_bytes(record[pos : pos + 2], "big")
                unit = record[pos + 2 : pos + 2 + size]
                if len(unit) != size:
                    raise DecodeError("AVC configuration record is truncated")
                target.append(unit)
                pos += 2 + size
        return config
    except IndexError:
        raise DecodeError("AVC configuration record is truncated") from None
