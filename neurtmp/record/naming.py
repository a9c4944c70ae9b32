"""Recording file names: DIR/APP/NAME/NAME-YYYYmmdd-HHMMSS[-N].EXT (UTC).

App and stream names come from clients: a name with a path separator or ".." is refused
(it could climb out of the recording directory); other characters outside a small safe
set become "_".
"""

from __future__ import annotations

import os
import re
import time

from neurtmp.names import split_query

__all__ = ["file_stem", "safe_component"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def safe_component(name: str) -> str | None:
    """`name` (query string dropped) as one path component, or None when it cannot be one."""
    name = split_query(name)[0].strip()
    if not name or "/" in name or "\\" in name or ".." in name or "\0" in name:
        return None
    name = _UNSAFE.sub("_", name)
    return "_" + name[1:] if name.startswith(".") else name


def file_stem(directory: str, app: str, name: str, started: float) -> str:
    """DIR/APP/NAME/NAME-YYYYmmdd-HHMMSS for a file started at `started` (epoch seconds);
    `app` and `name` must be `safe_component`s. The caller adds [-N] and the extension."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(started))
    return os.path.join(directory, app, name, f"{name}-{stamp}")
