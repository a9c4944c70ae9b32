"""Media payloads: FLV tag bodies, H.264 bitstream helpers, VideoData, and encoders by name.

`create_video_encoder(name)` returns a new encoder (None for an unknown name). A stream
whose codec is "none" sends what frame handlers return as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

from neurtmp.codec import avc, flv

__all__ = ["VideoData", "VideoEncoder", "avc", "create_video_encoder", "encoder_names", "flv"]


@dataclass(frozen=True, slots=True)
class VideoData:
    """One encoded video frame, ready to send (neuray `IVideo_data`).

    Attributes:
        data: the FLV video tag body (frame type/codec byte first).
        is_key_frame: True for a key frame or a sequence header.
    """

    data: bytes
    is_key_frame: bool = False

    @classmethod
    def from_payload(cls, payload: bytes) -> VideoData:
        """Wrap an FLV video tag body, reading the key-frame flag from it."""
        return cls(payload, flv.is_video_key_frame(payload))


from neurtmp.codec.encoders import ScreenVideoEncoder, VideoEncoder  # noqa: E402

_ENCODERS: dict[str, type[VideoEncoder]] = {
    ScreenVideoEncoder.identifier: ScreenVideoEncoder,
}


def encoder_names() -> list[str]:
    """Names `create_video_encoder` knows."""
    return sorted(_ENCODERS)


def create_video_encoder(name: str) -> VideoEncoder | None:
    """A new encoder for `name` ("screen video", ...), or None when unknown."""
    factory = _ENCODERS.get(name.lower())
    return factory() if factory is not None else None
