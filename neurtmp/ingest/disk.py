"""DiskSpace: whether the output folder's disk has room for whole segments.

ffmpeg says nothing when its writes fail for want of space, so the free space is
watched instead: under `MIN_FREE_BYTES` the disk counts as full. The change is logged
once each way (full, then space back), not once per segment.
"""

from __future__ import annotations

import logging
import shutil

__all__ = ["MIN_FREE_BYTES", "DiskSpace"]

log = logging.getLogger(__name__)

#: Free bytes under which the output disk counts as full: about three 2-second segments
#: of a whole 1080p ladder (some 10 Mbit/s); less, and the next ones may be cut short.
MIN_FREE_BYTES = 8 * 1024 * 1024


class DiskSpace:
    """The free space under `path` (see the module docstring).

    Args:
        path: the output folder.
        min_free: free bytes under which the disk counts as full.
    """

    def __init__(self, path: str, min_free: int = MIN_FREE_BYTES) -> None:
        self.path = path
        self.min_free = min_free
        #: Why segments cannot be written (None while there is room).
        self.problem: str | None = None

    def check(self) -> str | None:
        """Look at the disk now; returns (and keeps in `problem`) what is wrong, if anything."""
        try:
            free = shutil.disk_usage(self.path).free
        except OSError as exc:
            problem: str | None = f"output folder unusable: {exc.strerror or exc}"
        else:
            problem = (f"output disk full: {free / 2**20:.1f} MiB free, under {self.min_free / 2**20:g} MiB"
                       if free < self.min_free else None)
        if problem is not None and self.problem is None:
            log.error("%s: %s; new segments cannot be written whole (playlists list only whole ones)", self.path,
                      problem)
        elif problem is None and self.problem is not None:
            log.warning("%s: disk space is back (%.1f MiB free); segments are written again", self.path,
                        free / 2**20)
        self.problem = problem
        return problem
