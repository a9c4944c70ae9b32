"""Recorder: every stream published on a server, to files as it arrives.

Installed with `Recorder.install(server)`: a server-wide publish observer starts a
`Recording` for each publish (of every app, or of the chosen ones) and ends it on
unpublish; a server-wide media handler gives it every message (of a multitrack stream,
track 0 unwrapped: `neurtmp.one_track`). It never refuses a publish and never stops
a stream: a recording that cannot be written stops alone.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any

from neurtmp import DEFAULT_TRACK, Packet, Server, Stream, one_track
from neurtmp.names import redact_query, split_query
from neurtmp.record.flv_file import FlvFile
from neurtmp.record.mp4_file import Mp4File, load_pyav
from neurtmp.record.naming import safe_component
from neurtmp.record.options import RecordOptions, check_directory
from neurtmp.record.recording import DoneCallback, FileDone, Recording, SinkFactory
from neurtmp.record.segmenter import Segmenter

__all__ = ["Recorder"]

log = logging.getLogger(__name__)

#: Seconds `close` waits by default for the recordings' last writes.
DEFAULT_CLOSE_TIMEOUT = 10.0


class Recorder:
    """Records what is published on a server (see the module docstring).

    Args:
        options: directory, format, rotation, apps.
        on_done: ``on_done(path, app, name, start, end)`` on the hub for each finished
            file (start and end in epoch seconds), also one a write error cut short.

    Raises:
        ConfigError: the directory cannot be created or written.
        MissingExtra: MP4 without PyAV (the "codec" extra).

    Example:
        server = neurtmp.Factory().create_server()
        LiveApp().install(server)
        Recorder(RecordOptions("/var/rec", format="mp4", interval=600)).install(server)
    """

    def __init__(self, options: RecordOptions, on_done: DoneCallback | None = None) -> None:
        self.options = options
        self.on_done = on_done
        self.directory = os.path.abspath(options.directory)
        check_directory(self.directory)
        self._open_file: SinkFactory = FlvFile
        if options.format == "mp4":
            load_pyav()
            self._open_file = Mp4File
        self._recordings: dict[Stream, Recording] = {}
        #: Recordings whose publisher stopped, while their writers finish.
        self._ending: set[Recording] = set()
        self._servers: list[Server] = []
        self._closed = False

    def __repr__(self) -> str:
        return f"<Recorder {self.directory} {self.options.format} recording={len(self._recordings)}>"

    def install(self, server: Server) -> None:
        """Record every publish on `server` from now on."""
        server.register_publish_event_handler(self.handle_publish)
        server.register_media_event_handler(self.handle_media)
        self._servers.append(server)
        log.info("recording %s to %s as %s", ", ".join(self.options.apps) or "every app", self.directory,
                 self.options.format)

    def recordings(self) -> list[Recording]:
        """The recordings going on, and those ended whose last writes are not done."""
        self._ending = {recording for recording in self._ending if not recording.finished}
        return [*self._recordings.values(), *self._ending]

    @property
    def idle(self) -> bool:
        """Nothing being recorded and nothing left to write."""
        return not self.recordings()

    # -- handlers -------------------------------------------------------------------

    def handle_publish(self, is_start: bool, stream: Stream, name: str, publish_type: str) -> bool:
        """Server-wide publish observer: start or end the stream's recording (never refuses)."""
        if not is_start:
            recording = self._recordings.pop(stream, None)
            if recording is not None:
                recording.end()
                self._ending.add(recording)
            return True
        if self._closed:
            return True
        app_name = stream.get_connection().app_name
        if self.options.apps and app_name not in self.options.apps:
            return True
        label = f"{app_name}/{redact_query(name)}"
        app, safe_name = safe_component(app_name), safe_component(name)
        if app is None or safe_name is None:
            log.warning("%s: not recorded: the name cannot be a file name", label)
            return True
        self._recordings[stream] = Recording(
            self.directory, app, safe_name, self._open_file,
            Segmenter(round(self.options.interval * 1000), self.options.max_size),
            self.options.max_pending, self._make_done(app_name, name), label)
        return True

    def handle_media(self, stream: Stream, packet: Packet) -> None:
        """Server-wide media handler: the message goes to the stream's recording, if any."""
        recording = self._recordings.get(stream)
        if recording is not None:
            kept = one_track(packet, DEFAULT_TRACK)  # (of a multitrack stream, track 0)
            if kept is not None:
                recording.push(kept)

    def _make_done(self, app: str, name: str) -> Callable[[FileDone], Any]:
        stream_name = split_query(name)[0]

        def done(file: FileDone) -> None:
            if self.on_done is not None:
                self.on_done(file.path, app, stream_name, file.start, file.end)
        return done

    # -- lifecycle --------------------------------------------------------------------

    def close(self, timeout: float = DEFAULT_CLOSE_TIMEOUT) -> None:
        """Stop recording: end every recording, wait up to `timeout` for the last writes,
        and leave the servers' handler chains."""
        self._closed = True
        recordings = self.recordings()
        self._recordings.clear()
        for recording in recordings:
            recording.end()
        deadline = time.monotonic() + timeout
        for recording in recordings:
            if not recording.join(max(0.0, deadline - time.monotonic())):
                log.warning("%s: the recording's last writes did not finish in %g s", recording.label, timeout)
        for server in self._servers:
            server.remove_publish_event_handler(self.handle_publish)
            server.remove_media_event_handler(self.handle_media)
        self._servers.clear()
