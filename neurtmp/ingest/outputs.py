"""Outputs: the output folder, a folder per key with a folder per publish session in it.

    <output folder>/<key>/<session>/r<N>/    what ffmpeg run N of that session writes

Each publish of a key gets a session folder of its own (`open`), so a key published again
while its previous ffmpeg is still finishing (finalising its files after the publisher
left) never touches that process's files: the two write different folders, and a session
folder is removed only by `remove`, which the app calls a while after that session's
ffmpeg is gone. Folders under a key that no session of this process owns (left by an
earlier process) are removed at the next publish of the key once nothing has written
them for `STALE_SECONDS`.

Players read the key's newest session at a stable path (`listing`): /streams/KEY/
master.m3u8, media_N.m3u8 and dash/manifest.mpd; the segments those list carry their
session's name (`segment`), so those of an earlier session stay readable until removed.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import time

from neurtmp.ingest.access import check_key
from neurtmp.ingest.session import MANIFEST, MASTER, Continuation, Session

__all__ = ["STALE_SECONDS", "Outputs"]

log = logging.getLogger(__name__)

#: Seconds without a write after which a folder no session owns counts as abandoned (an
#: ffmpeg of an earlier process would have finalised long before).
STALE_SECONDS = 60.0
_MEDIA_PLAYLIST = re.compile(r"media_\d+\.m3u8")


def _newest_write(path: str) -> float:
    newest = os.path.getmtime(path)
    for folder, _, names in os.walk(path):
        for name in names:
            try:
                newest = max(newest, os.path.getmtime(os.path.join(folder, name)))
            except OSError:
                pass  # removed meanwhile
    return newest


class Outputs:
    """The sessions of each key under `root` (see the module docstring).

    Args:
        root: the output folder (absolute).
        segment_duration: seconds per segment.
    """

    def __init__(self, root: str, segment_duration: float) -> None:
        self.root = root
        self.segment_duration = segment_duration
        #: Key -> its sessions still on disk, oldest first; the last is the one served.
        self.sessions: dict[str, list[Session]] = {}

    def key_dir(self, key: str) -> str | None:
        """The folder of a valid key, inside the output folder (None: not a key)."""
        if check_key(key) is not None:
            return None
        path = os.path.realpath(os.path.join(self.root, key))
        return path if os.path.dirname(path) == self.root else None

    def open(self, key: str) -> Session:
        """A new session for a publish of `key` (a valid key), served from now on; its
        numbering continues the key's previous session's, if that is still here."""
        key_dir = self.key_dir(key)
        assert key_dir is not None, key
        sessions = self.sessions.setdefault(key, [])
        self._remove_leftovers(key_dir, {session.name for session in sessions})
        name = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{secrets.token_hex(3)}"
        continuation = sessions[-1].continuation() if sessions else Continuation()
        session = Session(os.path.join(key_dir, name), self.segment_duration, continuation)
        sessions.append(session)
        return session

    def remove(self, session: Session) -> None:
        """Remove a finished session's folder (and the key's, once empty). Call it only
        once no ffmpeg writes there any more."""
        key_dir = os.path.dirname(session.folder)
        key = os.path.basename(key_dir)
        sessions = self.sessions.get(key, [])
        if session in sessions:
            sessions.remove(session)
        if not sessions:
            self.sessions.pop(key, None)
        shutil.rmtree(session.folder, ignore_errors=True)
        try:
            os.rmdir(key_dir)
        except OSError:
            pass  # another session's folder is in it (or it is gone)
        log.info("%s: finished session's files removed", session.folder)

    def _remove_leftovers(self, key_dir: str, owned: set[str]) -> None:
        try:
            names = os.listdir(key_dir)
        except OSError:
            return
        now = time.time()
        for name in names:
            path = os.path.join(key_dir, name)
            if name in owned:
                continue
            try:
                idle = now - _newest_write(path)
            except OSError:
                continue
            if idle >= STALE_SECONDS:
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    os.remove(path)
                log.info("%s: left by an earlier process, removed", path)
            else:
                log.warning("%s: not ours, written %.0f s ago: left alone", path, idle)

    # -- what the HTTP side serves ---------------------------------------------------------

    def served(self, key: str) -> Session | None:
        """The session players of `key` get (its newest)."""
        sessions = self.sessions.get(key)
        return sessions[-1] if sessions else None

    def listing(self, key: str, name: str) -> bytes | None:
        """A playlist or manifest of `key`'s served session by its name ("master.m3u8",
        "media_0.m3u8", "manifest.mpd"); None while it has no whole segment to list.

        Raises:
            LookupError: no such key or playlist.
        """
        session = self.served(key)
        if session is None:
            raise LookupError(key)
        if name == MASTER:
            return session.master_playlist()
        if name == MANIFEST:
            return session.manifest()
        if _MEDIA_PLAYLIST.fullmatch(name):
            return session.media_playlist(name)
        raise LookupError(name)

    def segment(self, key: str, path: str) -> str | None:
        """The file of a segment `key`'s playlists list ("SESSION/chunk-0-00012.m4s",
        "SESSION/r1/init-0.m4s"), when it is written whole."""
        session_name, _, rest = path.partition("/")
        for session in self.sessions.get(key, ()):
            if session.name == session_name:
                return session.segment_file(rest)
        return None
