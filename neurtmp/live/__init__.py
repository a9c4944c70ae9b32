"""Live streaming: encoders publish, players play the same name, joining fast.

Built only from neurtmp's public handler API (see `neurtmp.handlers`).
"""

from __future__ import annotations

from neurtmp.live.app import LiveApp, LiveOptions
from neurtmp.live.gop import GopCache
from neurtmp.live.registry import Registry
from neurtmp.live.stream import LiveStream

__all__ = ["GopCache", "LiveApp", "LiveOptions", "LiveStream", "Registry"]
