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


def read_parameter_sets(record: bytes, pos: int, count: int, what: str) -> tuple[list[bytes], int]:
    """`count` units each prefixed by a 16-bit length, from `pos`; returns (units, new pos).

    Raises:
        DecodeError: the record ends early.
    """
    units = []
    for _ in range(count):
        size = int.from_bytes(record[pos : pos + 2], "big")
        unit = record[pos + 2 : pos + 2 + size]
        if pos + 2 > len(record) or len(unit) != size:
            raise DecodeError(f"{what} configuration record is truncated")
        units.append(unit)
        pos += 2 + size
    return units, pos


def parse_decoder_configuration(record: bytes) -> AVCDecoderConfiguration:
    """Parse an AVCDecoderConfigurationRecord.

    Raises:
        DecodeError: the record is malformed.
    """
    try:
        if record[0] != 1:
            raise DecodeError(f"AVC configuration version {record[0]} (expected 1)")
        config = AVCDecoderConfiguration(record[1], record[2], record[3], (record[4] & 0x03) + 1)
        config.sps, pos = read_parameter_sets(record, 6, record[5] & 0x1F, "AVC")
        config.pps, pos = read_parameter_sets(record, pos + 1, record[pos], "AVC")
        return config
    except IndexError:
        raise DecodeError("AVC configuration record is truncated") from None


def _rbsp(nal_unit: bytes) -> bytes:
    """Remove emulation-prevention bytes (00 00 03 -> 00 00)."""
    return nal_unit.replace(b"\x00\x00\x03", b"\x00\x00")


class _Bits:
    """An MSB-first bit reader over an RBSP, with Exp-Golomb codes."""

    def __init__(self, data: bytes) -> None:
        self.value = int.from_bytes(data, "big")
        self.left = len(data) * 8

    def bits(self, n: int) -> int:
        if n > self.left:
            raise DecodeError("SPS is truncated")
        self.left -= n
        return (self.value >> self.left) & ((1 << n) - 1)

    def ue(self) -> int:
        zeros = 0
        while self.bits(1) == 0:
            zeros += 1
            if zeros > 31:
                raise DecodeError("bad Exp-Golomb code in SPS")
        return (1 << zeros) - 1 + self.bits(zeros)

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k % 2 else -(k // 2)


def _skip_scaling_list(bits: _Bits, size: int) -> None:
    last = next_scale = 8
    for _ in range(size):
        if next_scale:
            next_scale = (last + bits.se() + 256) % 256
        last = next_scale or last


def sps_dimensions(sps: bytes) -> tuple[int, int]:
    """(width, height) in pixels from an H.264 SPS NAL unit (cropping applied).

    Raises:
        DecodeError: not a parsable SPS.
    """
    if not sps or sps[0] & 0x1F != NAL_SPS:
        raise DecodeError("not an SPS NAL unit")
    bits = _Bits(_rbsp(sps[1:]))
    profile = bits.bits(8)
    bits.bits(16)  # constraint flags, level
    bits.ue()  # seq_parameter_set_id
    chroma_format = 1
    if profile in (100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135):
        chroma_format = bits.ue()
        if chroma_format == 3:
            bits.bits(1)
        bits.ue()
        bits.ue()  # bit depths
        bits.bits(1)
        if bits.bits(1):  # seq_scaling_matrix_present
            for i in range(8 if chroma_format != 3 else 12):
                if bits.bits(1):
                    _skip_scaling_list(bits, 16 if i < 6 else 64)
    bits.ue()  # log2_max_frame_num
    poc_type = bits.ue()
    if poc_type == 0:
        bits.ue()
    elif poc_type == 1:
        bits.bits(1)
        bits.se()
        bits.se()
        for _ in range(bits.ue()):
            bits.se()
    bits.ue()  # max_num_ref_frames
    bits.bits(1)
    width_mbs = bits.ue() + 1
    height_map_units = bits.ue() + 1
    frame_mbs_only = bits.bits(1)
    if not frame_mbs_only:
        bits.bits(1)
    bits.bits(1)  # direct_8x8_inference
    width = width_mbs * 16
    height = height_map_units * 16 * (2 - frame_mbs_only)
    if bits.bits(1):  # frame_cropping
        left, right, top, bottom = bits.ue(), bits.ue(), bits.ue(), bits.ue()
        crop_x = 1 if chroma_format in (0, 3) else 2
        crop_y = (1 if chroma_format in (0, 2) else 2) * (2 - frame_mbs_only)
        width -= (left + right) * crop_x
        height -= (top + bottom) * crop_y
    return width, height
