"""Helpers for recording tests: an audio+video ffmpeg publisher, what the server saw
published, and reading recorded files back (FLV tags, PyAV decoding)."""

from __future__ import annotations

import pathlib
from dataclasses import dataclass, field
from typing import Any

import av
from gevent import subprocess

import neurtmp
from neurtmp import MessageType, Packet
from neurtmp.codec import flv
from neurtmp.record import Recorder

from ..helpers import wait_for
from ..live.helpers import FFMPEG

#: The test stream: 25 fps video with a key frame each second, and AAC audio.
FPS = 25
FRAME_MS = 1000 // FPS


def publish_av(url: str, seconds: float, size: str = "160x120") -> subprocess.Popen:
    """A real-time ffmpeg publisher of `seconds` of test pattern (H.264, a key frame a
    second) and a sine tone (AAC)."""
    return subprocess.Popen(
        [FFMPEG, "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", f"testsrc=size={size}:rate={FPS}",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", str(seconds),
         "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", str(FPS), "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-b:a", "64k", "-f", "flv", url],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


@dataclass
class Published:
    """The video frames a server saw published (a server-wide media handler)."""

    video: list[Packet] = field(default_factory=list)

    def __call__(self, stream: Any, packet: Packet) -> None:
        if packet.type_id == MessageType.VIDEO and not packet.is_sequence_header:
            self.video.append(packet)

    @property
    def frames(self) -> list[Packet]:
        """The coded pictures (not the end-of-sequence message ffmpeg ends with)."""
        return [p for p in self.video if is_coded_frame(p.payload)]

    def install(self, server: neurtmp.Server) -> Published:
        server.register_media_event_handler(self)
        return self


@dataclass
class Done:
    """An on_done callback that keeps its calls."""

    calls: list[tuple[str, str, str, float, float]] = field(default_factory=list)

    def __call__(self, path: str, app: str, name: str, start: float, end: float) -> None:
        self.calls.append((path, app, name, start, end))

    @property
    def paths(self) -> list[pathlib.Path]:
        return [pathlib.Path(call[0]) for call in self.calls]


def wait_recorded(recorders: list[Recorder], publisher: subprocess.Popen, timeout: float = 20.0) -> None:
    """Wait for the recorders to start, then for the publisher to exit and the files to be finished."""
    wait_for(lambda: all(not r.idle for r in recorders), timeout, "every recorder started recording")
    wait_for(lambda: publisher.poll() is not None and all(r.idle for r in recorders), timeout,
             "the publisher exited and every file was finished")


def flv_tags(path: pathlib.Path) -> tuple[int, list[flv.FlvTag]]:
    """An FLV file's header flags and tags."""
    with open(path, "rb") as file:
        flags = file.read(5)[4]
        file.seek(0)
        return flags, list(flv.FlvReader(file))


def video_tags(tags: list[flv.FlvTag]) -> list[flv.FlvTag]:
    """The video messages but the sequence headers."""
    return [t for t in tags if t.type_id == flv.TAG_VIDEO and not flv.is_video_sequence_header(t.payload)]


def is_coded_frame(payload: bytes) -> bool:
    """An H.264 picture: AVC packet type 1 (not a header, not the end of sequence)."""
    return len(payload) > 5 and payload[1] == 1


@dataclass
class Decoded:
    video_times: list[float]
    key_frames: list[bool]
    audio_frames: int


def decode(path: pathlib.Path | str) -> Decoded:
    """Decode every video and audio frame of a file with PyAV."""
    with av.open(str(path)) as container:
        times: list[float] = []
        keys: list[bool] = []
        audio = 0
        for frame in container.decode(*container.streams):
            if isinstance(frame, av.VideoFrame):
                times.append(float(frame.time or 0.0))
                keys.append(bool(frame.key_frame))
            else:
                audio += 1
    return Decoded(times, keys, audio)
