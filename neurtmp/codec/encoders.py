"""Video encoders behind one small contract (neuray `IVideo_encoder`).

An encoder turns canvases (NumPy arrays, H x W x 3 "Rgb" or H x W x 4 "Rgba", uint8)
into ready-to-send FLV video tag bodies. One encoder per stream: encoders keep state.
"""

from __future__ import annotations

import zlib
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from neurtmp.codec.canvas import to_host_array
from neurtmp.codec.flv import FRAME_INTER, FRAME_KEY, VIDEO_SCREEN
from neurtmp.codec.video_data import VideoData
from neurtmp.errors import EncodeError

__all__ = ["ScreenVideoEncoder", "VideoEncoder"]


class VideoEncoder(ABC):
    """Encodes canvases into FLV video payloads.

    Subclasses set `identifier`, `parameters` (name -> default) and implement
    `_encode`. Errors raise `EncodeError` (bad canvas, not initialised, failure) or
    `ValueError` (bad parameter value).
    """

    identifier = ""
    #: Pixel types in order of preference.
    supported_types: tuple[str, ...] = ("Rgb", "Rgba")
    #: Parameter names and default values.
    parameters: dict[str, Any] = {}

    def __init__(self) -> None:
        self.width = 0
        self.height = 0
        self._values = dict(self.parameters)

    def get_identifier(self) -> str:
        return self.identifier

    def init(self, width: int, height: int) -> Any:
        """Prepare for `width` x `height` canvases; returns a sequence header or None.

        Raises:
            EncodeError: the size is not supported.
        """
        if width <= 0 or height <= 0 or width > 4095 or height > 4095:
            raise EncodeError(f"unsupported resolution {width}x{height}")
        self.width, self.height = width, height
        return None

    def set_parameter(self, name: str, value: Any) -> bool:
        """Set a parameter; False for a name this encoder does not have."""
        if name not in self._values:
            return False
        self._values[name] = value
        return True

    def get_parameter(self, name: str) -> Any:
        """A parameter's value, or None for a name this encoder does not have."""
        return self._values.get(name)

    def get_supported_type(self, index: int) -> str | None:
        """The index-th preferred pixel type, None past the end."""
        return self.supported_types[index] if 0 <= index < len(self.supported_types) else None

    def encode_canvas(self, canvas: Any) -> Any:
        """Encode one canvas into a `VideoData`: an H x W x 3 (RGB) or 4 (RGBA) uint8
        array, or anything `neurtmp.codec.canvas.to_host_array` takes (array interface,
        torch tensor, CUDA array).

        Raises:
            EncodeError: not initialised, or a canvas of the wrong shape or type.
        """
        if not self.width:
            raise EncodeError(f"{self.identifier} encoder used before init()")
        image = to_host_array(canvas)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (3, 4):
            raise EncodeError(f"canvas must be H x W x 3 or 4 uint8, not {image.dtype} {image.shape}")
        if image.shape[:2] != (self.height, self.width):
            raise EncodeError(f"canvas is {image.shape[1]}x{image.shape[0]}, encoder is {self.width}x{self.height}")
        return self._encode(image[:, :, :3])

    @abstractmethod
    def _encode(self, rgb: np.ndarray) -> Any: ...

    def close(self) -> Any:
        """Flush; returns a last frame or None."""
        self.width = self.height = 0
        return None


class ScreenVideoEncoder(VideoEncoder):
    """FLV Screen Video (codec 3): the image in zlib-compressed BGR blocks.

    Key frames carry every block; inter frames only the blocks that changed (a block of
    size 0 means "unchanged"), so a still scene costs a few bytes per frame.
    """

    identifier = "screen video"
    parameters = {"block_size": 64, "key_frame_interval": 60, "compression_level": 6}

    def init(self, width: int, height: int) -> Any:
        super().init(width, height)
        self._previous: np.ndarray | None = None
        self._since_key = 0
        return None

    def _encode(self, rgb: np.ndarray) -> Any:
        block = int(self._values["block_size"])
        if block % 16 or not 16 <= block <= 256:
            raise ValueError(f"block_size must be a multiple of 16 in 16..256, not {block}")
        bgr = np.ascontiguousarray(rgb[::-1, :, ::-1])  # bottom-up rows, BGR order
        key = self._previous is None or self._since_key >= int(self._values["key_frame_interval"])
        level = int(self._values["compression_level"])
        out = bytearray()
        out += (((block // 16 - 1) << 12) | self.width).to_bytes(2, "big")
        out += (((block // 16 - 1) << 12) | self.height).to_bytes(2, "big")
        for y in range(0, self.height, block):
            for x in range(0, self.width, block):
                tile = bgr[y : y + block, x : x + block]
                if not key and np.array_equal(tile, self._previous[y : y + block, x : x + block]):  # type: ignore[index]
                    out += b"\x00\x00"
                    continue
                data = zlib.compress(np.ascontiguousarray(tile).tobytes(), level)
                out += len(data).to_bytes(2, "big") + data
        self._previous = bgr
        self._since_key = 0 if key else self._since_key + 1
        frame_type = FRAME_KEY if key else FRAME_INTER
        return VideoData(bytes((frame_type << 4 | VIDEO_SCREEN,)) + bytes(out), key)
