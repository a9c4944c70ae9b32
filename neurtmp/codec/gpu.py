"""NVIDIA GPU detection through NVML (nvidia-ml-py); a machine without one is normal.

Every function answers without raising: no driver, no library or no device means "no GPU".
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

__all__ = ["GpuInfo", "gpu_count", "gpus"]


@dataclass(frozen=True)
class GpuInfo:
    index: int
    name: str
    memory_total: int
    memory_used: int
    utilization: int  # percent


def _nvml() -> Any:
    try:
        import pynvml

        pynvml.nvmlInit()
        return pynvml
    except Exception:  # no library, no driver, no device: all mean "no GPU"
        return None


def gpus() -> list[GpuInfo]:
    """The NVIDIA GPUs NVML sees, with memory and utilisation now; [] without one."""
    nvml = _nvml()
    if nvml is None:
        return []
    found = []
    try:
        for index in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            name = nvml.nvmlDeviceGetName(handle)
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            utilization = nvml.nvmlDeviceGetUtilizationRates(handle)
            found.append(GpuInfo(index, name.decode() if isinstance(name, bytes) else str(name),
                                 int(memory.total), int(memory.used), int(utilization.gpu)))
    except Exception:
        return found
    return found


@functools.lru_cache(maxsize=1)
def gpu_count() -> int:
    """How many NVIDIA GPUs there are (cached: it does not change while we run)."""
    return len(gpus())
