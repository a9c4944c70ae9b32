"""Canvases: what encoders take, as a host NumPy array.

neuray renders into canvases (`ICanvas`, tiles, CUDA tiles); neurtmp takes any array:
a NumPy array, any object with the array interface (`__array_interface__`, `__array__`,
the buffer protocol), a torch tensor, or a CUDA array (`__cuda_array_interface__`: CuPy,
torch on the GPU), which is copied to the host: PyAV's encoders, NVENC included, take
frames from host memory.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neurtmp.errors import EncodeError

__all__ = ["to_host_array"]


def to_host_array(canvas: Any) -> np.ndarray:
    """`canvas` as a host NumPy array (no copy when it already is one).

    Raises:
        EncodeError: a CUDA array of a kind that cannot be copied to the host here.
    """
    if isinstance(canvas, np.ndarray):
        return canvas
    if hasattr(canvas, "detach") and hasattr(canvas, "cpu"):  # a torch tensor, on any device
        return np.asarray(canvas.detach().cpu().numpy())
    if hasattr(canvas, "__cuda_array_interface__"):
        for method in ("get", "copy_to_host", "cpu"):  # CuPy, Numba, others
            copy = getattr(canvas, method, None)
            if callable(copy):
                return np.asarray(copy())
        raise EncodeError(f"cannot copy a {type(canvas).__name__} CUDA array to the host "
                          "(pass a CuPy array, a torch tensor or a host array)")
    return np.asarray(canvas)
