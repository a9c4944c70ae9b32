"""Test media made with PyAV: H.264 frames as FLV video tag bodies, with a known pattern.

Frame i is a flat grey of level `level_for(i)` with a white bar whose position encodes
nothing else; tests check decoded pixels against `level_for`.
"""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np

from neurtmp.codec import VideoData, avc, flv


def level_for(index: int) -> int:
    """The grey level of frame `index` (distinct steps, away from 0/255 clipping)."""
    return 32 + (index * 16) % 192


def encode_h264(count: int, width: int = 320, height: int = 240, fps: int = 30, gop: int = 30
                ) -> tuple[VideoData, list[VideoData]]:
    """(AVC sequence header, `count` frames) encoded with libx264, no B-frames."""
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height = width, height
    codec.pix_fmt = "yuv420p"
    codec.time_base = Fraction(1, fps)
    codec.framerate = Fraction(fps, 1)
    codec.gop_size = gop
    codec.options = {"preset": "ultrafast", "tune": "zerolatency", "bf": "0"}
    packets = []
    for i in range(count):
        image = np.full((height, width, 3), level_for(i), dtype=np.uint8)
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = i
        packets.extend(codec.encode(frame))
    packets.extend(codec.encode(None))
    sps = pps = None
    frames = []
    for packet in packets:
        data = bytes(packet)
        if sps is None:
            units = avc.split_annexb(data)
            sps = next(u for u in units if u[0] & 0x1F == avc.NAL_SPS)
            pps = next(u for u in units if u[0] & 0x1F == avc.NAL_PPS)
        drop = frozenset({avc.NAL_AUD, avc.NAL_SPS, avc.NAL_PPS})
        frames.append(VideoData(flv.avc_video_tag(avc.annexb_to_avcc(data, drop), packet.is_keyframe),
                                packet.is_keyframe))
    assert sps is not None and pps is not None
    header = VideoData(flv.avc_sequence_header_tag(avc.build_decoder_configuration([sps], [pps])), True)
    return header, frames


def decode_flv_h264(header: bytes, payloads: list[bytes]) -> list[np.ndarray]:
    """Decode FLV AVC video tag bodies back to RGB frames with PyAV."""
    config = avc.parse_decoder_configuration(header[5:])
    codec = av.CodecContext.create("h264", "r")
    prefix = b"".join(b"\x00\x00\x00\x01" + u for u in config.sps + config.pps)
    images = []
    for payload in payloads:
        annexb = b"".join(b"\x00\x00\x00\x01" + u for u in avc.avcc_to_nal_units(payload[5:]))
        for frame in codec.decode(av.Packet(prefix + annexb)):
            images.append(frame.to_ndarray(format="rgb24"))
    for frame in codec.decode(None):
        images.append(frame.to_ndarray(format="rgb24"))
    return images
