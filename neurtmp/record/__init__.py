"""Recording: every published stream (or those of chosen apps) to files as it arrives.

FLV (the published bytes as they came) or fragmented MP4 (H.264/AAC remuxed with PyAV,
playable even when cut short), rotated by duration or size at key frames, named
DIR/APP/NAME/NAME-YYYYmmdd-HHMMSS[-N].EXT (UTC). Built only from the public handler
API: a server-wide publish observer and media handler (`Recorder.install(server)`).
"""

from __future__ import annotations

from neurtmp.record.options import DEFAULT_MAX_PENDING, FORMATS, RecordOptions, check_directory
from neurtmp.record.recorder import Recorder
from neurtmp.record.recording import DoneCallback, FileDone, Recording

__all__ = ["DEFAULT_MAX_PENDING", "FORMATS", "DoneCallback", "FileDone", "RecordOptions", "Recorder", "Recording",
           "check_directory"]
