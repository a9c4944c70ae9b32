"""Media payloads and codecs: FLV tag bodies, H.264/AAC helpers, encoders and decoders by name.

`create_video_encoder(name)` / `create_video_decoder(name)` return a new codec object, or
None for an unknown name: "h264" (libx264, or NVENC when a GPU is present), "hevc"
(enhanced RTMP "hvc1"; libx265 or NVENC), "sorenson" (FLV codec 2), "screen video" (FLV
codec 3). A stream whose codec is "none" sends what
frame handlers return as it is.
"""

from __future__ import annotations

from neurtmp.codec import aac, avc, flv, hevc
from neurtmp.codec.encoders import ScreenVideoEncoder, VideoEncoder
from neurtmp.codec.pyav import (
    H264Decoder,
    H264Encoder,
    HEVCDecoder,
    HEVCEncoder,
    ScreenVideoDecoder,
    SorensonDecoder,
    SorensonEncoder,
    VideoDecoder,
)
from neurtmp.codec.video_data import VideoData

__all__ = [
    "VideoData",
    "VideoDecoder",
    "VideoEncoder",
    "aac",
    "avc",
    "create_video_decoder",
    "create_video_encoder",
    "decoder_names",
    "encoder_names",
    "flv",
    "hevc",
]

_ENCODERS: dict[str, type[VideoEncoder]] = {
    cls.identifier: cls for cls in (H264Encoder, HEVCEncoder, SorensonEncoder, ScreenVideoEncoder)
}
_DECODERS: dict[str, type[VideoDecoder]] = {
    cls.identifier: cls for cls in (H264Decoder, HEVCDecoder, SorensonDecoder, ScreenVideoDecoder)
}


def encoder_names() -> list[str]:
    """Names `create_video_encoder` knows."""
    return sorted(_ENCODERS)


def decoder_names() -> list[str]:
    """Names `create_video_decoder` knows."""
    return sorted(_DECODERS)


def create_video_encoder(name: str) -> VideoEncoder | None:
    """A new encoder for `name`, or None when unknown."""
    factory = _ENCODERS.get(name.lower())
    return factory() if factory is not None else None


def create_video_decoder(name: str) -> VideoDecoder | None:
    """A new decoder for `name`, or None when unknown."""
    factory = _DECODERS.get(name.lower())
    return factory() if factory is not None else None
