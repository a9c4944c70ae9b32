"""Media payloads: FLV tag bodies, H.264 bitstream helpers, and the video data type.

Encoders and decoders by name arrive in this package with the codec work; until then a
stream's codec is "none": what a frame handler returns is sent as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

from neurtmp.codec import avc, flv

__all__ = ["VideoData", "avc", "flv"]


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
