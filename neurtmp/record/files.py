"""Creating a recording's file without overwriting another: NAME-STAMP.EXT, else -1, -2...

Called in a worker thread (file-system calls block).
"""

from __future__ import annotations

import errno
import os

__all__ = ["create_exclusive"]

#: Suffixes tried before giving up (files started the same second by the same name).
MAX_SUFFIX = 1000


def create_exclusive(stem: str, extension: str) -> tuple[str, int]:
    """Create `stem`[-N].`extension` (its directories too) for writing; returns (path, fd).

    Raises:
        OSError: the directory cannot be created or written, or every suffix is taken.
    """
    os.makedirs(os.path.dirname(stem) or ".", exist_ok=True)
    for number in range(MAX_SUFFIX):
        path = f"{stem}-{number}.{extension}" if number else f"{stem}.{extension}"
        try:
            return path, os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            continue
    raise OSError(errno.EEXIST, f"{MAX_SUFFIX} files named {os.path.basename(stem)}[-N].{extension} already exist")
