"""H.265 (HEVC) helpers: NAL unit types and the HEVCDecoderConfigurationRecord ("hvcC",
ISO/IEC 14496-15, 8.3.3.1) that an enhanced-RTMP SequenceStart carries.

The record's profile/tier/level bytes are copied from the SPS (they have the same layout);
chroma format and bit depths are read from the SPS with an Exp-Golomb reader; the arrays
hold the VPS, SPS and PPS NAL units.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from neurtmp.codec.avc import _Bits, _rbsp, read_parameter_sets
from neurtmp.errors import DecodeError

__all__ = ["HEVCDecoderConfiguration", "build_decoder_configuration", "nal_type", "parse_decoder_configuration"]

NAL_IDR_W_RADL = 19
NAL_IDR_N_LP = 20
NAL_CRA = 21
NAL_VPS = 32
NAL_SPS = 33
NAL_PPS = 34
NAL_AUD = 35
NAL_PREFIX_SEI = 39


def nal_type(unit: bytes) -> int:
    """The NAL unit type from its 2-byte header."""
    return (unit[0] >> 1) & 0x3F


@dataclass
class _SpsInfo:
    profile_tier_level: bytes
    sub_layers: int
    temporal_id_nested: int
    chroma_format: int
    bit_depth_luma: int
    bit_depth_chroma: int
    width: int
    height: int


def _parse_sps(sps: bytes) -> _SpsInfo:
    rbsp = _rbsp(sps[2:])
    if len(rbsp) < 13:
        raise DecodeError("HEVC SPS is truncated")
    bits = _Bits(rbsp)
    bits.bits(4)  # sps_video_parameter_set_id
    max_sub_layers_minus1 = bits.bits(3)
    nested = bits.bits(1)
    bits.bits(96)  # general profile, tier and level: copied as bytes below
    present = [(bits.bits(1), bits.bits(1)) for _ in range(max_sub_layers_minus1)]
    if max_sub_layers_minus1:
        bits.bits(2 * (8 - max_sub_layers_minus1))
    for profile_present, level_present in present:
        bits.bits(88 if profile_present else 0)
        bits.bits(8 if level_present else 0)
    bits.ue()  # sps_seq_parameter_set_id
    chroma = bits.ue()
    if chroma == 3:
        bits.bits(1)
    width, height = bits.ue(), bits.ue()
    if bits.bits(1):  # conformance window
        left, right, top, bottom = bits.ue(), bits.ue(), bits.ue(), bits.ue()
        sub_w = 2 if chroma in (1, 2) else 1
        sub_h = 2 if chroma == 1 else 1
        width -= sub_w * (left + right)
        height -= sub_h * (top + bottom)
    luma, chroma_depth = bits.ue(), bits.ue()
    return _SpsInfo(rbsp[1:13], max_sub_layers_minus1 + 1, nested, chroma, luma, chroma_depth, width, height)


@dataclass
class HEVCDecoderConfiguration:
    length_size: int = 4
    arrays: dict[int, list[bytes]] = field(default_factory=dict)

    def parameter_sets(self) -> list[bytes]:
        """VPS, SPS and PPS units in decoding order."""
        return [u for t in (NAL_VPS, NAL_SPS, NAL_PPS) for u in self.arrays.get(t, [])]


def sps_dimensions(sps: bytes) -> tuple[int, int]:
    """(width, height) from an HEVC SPS NAL unit (conformance window applied)."""
    info = _parse_sps(sps)
    return info.width, info.height


def build_decoder_configuration(vps: list[bytes], sps: list[bytes], pps: list[bytes]) -> bytes:
    """An HEVCDecoderConfigurationRecord with 4-byte NAL lengths."""
    if not (vps and sps and pps):
        raise ValueError("an HEVC decoder configuration needs a VPS, an SPS and a PPS")
    info = _parse_sps(sps[0])
    out = bytearray((1,))
    out += info.profile_tier_level
    out += b"\xf0\x00"  # min_spatial_segmentation_idc 0
    out.append(0xFC)  # parallelismType 0
    out.append(0xFC | info.chroma_format)
    out.append(0xF8 | info.bit_depth_luma)
    out.append(0xF8 | info.bit_depth_chroma)
    out += b"\x00\x00"  # avgFrameRate unknown
    out.append(((info.sub_layers & 7) << 3) | (info.temporal_id_nested << 2) | 3)
    arrays = [(NAL_VPS, vps), (NAL_SPS, sps), (NAL_PPS, pps)]
    out.append(len(arrays))
    for kind, units in arrays:
        out.append(0x80 | kind)
        out += len(units).to_bytes(2, "big")
        for unit in units:
            out += len(unit).to_bytes(2, "big") + unit
    return bytes(out)


def parse_decoder_configuration(record: bytes) -> HEVCDecoderConfiguration:
    """Raises:
        DecodeError: the record is malformed.
    """
    if len(record) < 23 or record[0] != 1:
        raise DecodeError("not an HEVC decoder configuration record")
    config = HEVCDecoderConfiguration(length_size=(record[21] & 3) + 1)
    pos = 23
    try:
        for _ in range(record[22]):
            kind = record[pos] & 0x3F
            count = int.from_bytes(record[pos + 1 : pos + 3], "big")
            units, pos = read_parameter_sets(record, pos + 3, count, "HEVC")
            config.arrays.setdefault(kind, []).extend(units)
    except IndexError:
        raise DecodeError("HEVC configuration record is truncated") from None
    return config
