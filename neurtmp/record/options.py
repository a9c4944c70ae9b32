"""RecordOptions: what `Recorder` records, where and how, checked at start."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

from neurtmp.errors import ConfigError

__all__ = ["DEFAULT_MAX_PENDING", "FORMATS", "RecordOptions", "check_directory"]

#: The file formats: the published FLV as it came, or fragmented MP4 (H.264/AAC; PyAV).
FORMATS = ("flv", "mp4")

#: Bytes a recording may have waiting for the disk before it is stopped: some 16 s of an
#: 8 Mbit/s stream. A disk that slow would otherwise grow memory without bound.
DEFAULT_MAX_PENDING = 16 * 1024 * 1024


@dataclass
class RecordOptions:
    """Recording settings (`neurtmp serve --record DIR ...`)."""

    #: Where files go: DIRECTORY/APP/NAME/NAME-YYYYmmdd-HHMMSS[-N].EXT (UTC).
    directory: str
    #: "flv" or "mp4" (fragmented; needs the "codec" extra).
    format: str = "flv"
    #: Start a new file at the first key frame this many seconds into a file (0: never).
    interval: float = 0.0
    #: Start a new file at the first key frame once a file has this many bytes (0: never).
    max_size: int = 0
    #: Record only these application names; empty: every app.
    apps: tuple[str, ...] = ()
    #: Bytes a recording may have waiting for the disk before it is stopped.
    max_pending: int = DEFAULT_MAX_PENDING

    def __post_init__(self) -> None:
        if not self.directory:
            raise ConfigError("recording directory must be given")
        if self.format not in FORMATS:
            raise ConfigError(f"recording format must be one of {', '.join(FORMATS)}, not {self.format!r}")
        if self.interval < 0:
            raise ConfigError(f"recording interval must be >= 0 s, not {self.interval:g}")
        if self.max_size < 0:
            raise ConfigError(f"recording max_size must be >= 0 bytes, not {self.max_size}")
        if self.max_pending <= 0:
            raise ConfigError(f"recording max_pending must be > 0 bytes, not {self.max_pending}")
        if any(not app or "/" in app or ".." in app for app in self.apps):
            raise ConfigError(f"recorded apps must be non-empty names without '/' or '..': {list(self.apps)}")


def check_directory(path: str) -> None:
    """Make sure `path` is a directory files can be created in (made if missing).

    Raises:
        ConfigError: it is not a directory, cannot be created, or cannot be written.
    """
    if os.path.exists(path) and not os.path.isdir(path):
        raise ConfigError(f"recording directory {path!r} is not a directory")
    try:
        os.makedirs(path, exist_ok=True)
        # Try it: os.access says yes to root on a read-only file system.
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise ConfigError(f"recording directory {path!r} cannot be created or written: "
                          f"{exc.strerror or exc}") from None
