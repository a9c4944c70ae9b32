"""VideoData: one encoded video frame (neuray `IVideo_data`)."""

from __future__ import annotations

from dataclasses import dataclass

from neurtmp.codec import flv

__all__ = ["VideoData"]


@dataclass(frozen=True, slots=True)
class VideoData:
    """One encoded video frame, ready to send.

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
