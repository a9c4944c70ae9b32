"""Media payloads and codecs: FLV tag bodies, H.264/AAC helpers, encoders and decoders by name.

`create_video_encoder(name)` / `create_video_decoder(name)` return a new codec object, or
None for an unknown name: "h264" (libx264, or NVENC when a GPU is present), "hevc"
(enhanced RTMP "hvc1"; libx265 or NVENC), "sorenson" (FLV codec 2), "screen video" (FLV
codec 3). A stream whose codec is "none" sends what
frame handlers return as it is. `encode_slate` encodes a still picture and silence as a
clip to loop (`neurtmp.codec.slate`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from neurtmp.codec import aac, avc, flv, hevc
from neurtmp.codec.video_data import VideoData
from neurtmp.errors import MissingExtra

if TYPE_CHECKING:
    from neurtmp.codec.encoders import VideoEncoder
    from neurtmp.codec.pyav import VideoDecoder
    from neurtmp.codec.slate import SlateClip

__all__ = [
    "SlateClip",
    "VideoData",
    "VideoDecoder",
    "VideoEncoder",
    "aac",
    "avc",
    "create_video_decoder",
    "create_video_encoder",
    "decoder_names",
    "encode_slate",
    "encoder_names",
    "flv",
    "hevc",
]

#: Codec name -> (module, class); the modules (NumPy, PyAV) load on first use.
_ENCODERS = {
    "h264": ("neurtmp.codec.pyav", "H264Encoder"),
    "hevc": ("neurtmp.codec.pyav", "HEVCEncoder"),
    "sorenson": ("neurtmp.codec.pyav", "SorensonEncoder"),
    "screen video": ("neurtmp.codec.encoders", "ScreenVideoEncoder"),
}
_DECODERS = {
    "h264": ("neurtmp.codec.pyav", "H264Decoder"),
    "hevc": ("neurtmp.codec.pyav", "HEVCDecoder"),
    "sorenson": ("neurtmp.codec.pyav", "SorensonDecoder"),
    "screen video": ("neurtmp.codec.pyav", "ScreenVideoDecoder"),
}
_LAZY = {"VideoEncoder": "neurtmp.codec.encoders", "VideoDecoder": "neurtmp.codec.pyav",
         "SlateClip": "neurtmp.codec.slate"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'neurtmp.codec' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def _load(table: dict[str, tuple[str, str]], name: str) -> Any:
    entry = table.get(name.lower())
    if entry is None:
        return None
    try:
        module = importlib.import_module(entry[0])
    except ModuleNotFoundError as exc:  # PyAV / NumPy: the "codec" extra
        raise MissingExtra(f"the {name!r} codec", "codec", exc.name) from exc
    return getattr(module, entry[1])


def encoder_names() -> list[str]:
    """Names `create_video_encoder` knows."""
    return sorted(_ENCODERS)


def decoder_names() -> list[str]:
    """Names `create_video_decoder` knows."""
    return sorted(_DECODERS)


def create_video_encoder(name: str) -> VideoEncoder | None:
    """A new encoder for `name`, or None when unknown."""
    factory = _load(_ENCODERS, name)
    return factory() if factory is not None else None


def create_video_decoder(name: str) -> VideoDecoder | None:
    """A new decoder for `name`, or None when unknown."""
    factory = _load(_DECODERS, name)
    return factory() if factory is not None else None


def encode_slate(width: int, height: int, **options: Any) -> SlateClip:
    """A slate clip (`neurtmp.codec.slate.encode_slate`: H.264 picture, AAC silence).

    Raises:
        MissingExtra: PyAV / NumPy (the "codec" extra) are not installed.
        EncodeError: the picture cannot be made or encoded.
    """
    try:
        module = importlib.import_module("neurtmp.codec.slate")
    except ModuleNotFoundError as exc:
        raise MissingExtra("the slate", "codec", exc.name) from exc
    clip: SlateClip = module.encode_slate(width, height, **options)
    return clip
