"""The bundled ffmpeg against the framework: it publishes to handlers that record what
they receive, and it plays a stream fed by a frame handler."""

from __future__ import annotations

import re
from typing import Any

import imageio_ffmpeg
import pytest
from gevent import subprocess

import neurtmp
from neurtmp.codec import flv
from neurtmp.handlers import FrameEventHandler, PlayEventHandler
from neurtmp.protocol import amf0

from ..helpers import wait_for
from ..media import encode_h264

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


@pytest.mark.timeout(60)
def test_ffmpeg_publishes_to_handlers(make_server: Any) -> None:
    published: list[tuple[bool, str, str]] = []
    packets: list[neurtmp.Packet] = []

    def on_stream(is_create: bool, stream: Any, args: Any) -> bool:
        if is_create:
            stream.register_publish_event_handler(lambda start, s, name, kind: published.append((start, name, kind))
                                                  or True)
            stream.register_media_event_handler(lambda s, packet: packets.append(packet))
        return True

    def on_connect(is_create: bool, connection: Any, args: Any, user: Any) -> bool:
        if is_create:
            connection.register_stream_event_handler(on_stream)
        return args.get("app") == "live"

    server = make_server(on_connect)
    result = subprocess.run([
        FFMPEG, "-hide_banner", "-loglevel", "error", "-re",
        "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-f", "lavfi", "-i", "sine=frequency=1000",
        "-t", "3", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-f", "flv", f"rtmp://{server.get_listen_address()}/live/cam",
    ], capture_output=True, text=True, timeout=40)
    assert result.returncode == 0, result.stderr
    wait_for(lambda: len(published) == 2, 5, "the unpublish after ffmpeg exits")
    assert published == [(True, "cam", "live"), (False, "cam", "live")]
    data = [p for p in packets if p.type_id == neurtmp.MessageType.DATA_AMF0]
    videos = [p for p in packets if p.type_id == neurtmp.MessageType.VIDEO]
    audios = [p for p in packets if p.type_id == neurtmp.MessageType.AUDIO]
    # Handlers get data decoded, @setDataFrame unwrapped, and the payload players expect.
    assert isinstance(data[0], neurtmp.DataPacket) and data[0].name == "onMetaData"
    metadata = data[0].metadata
    assert metadata is not None and (metadata["width"], metadata["height"], metadata["framerate"]) == (320, 240, 25)
    assert amf0.decode_all(data[0].payload) == ["onMetaData", data[0].values[0]]
    assert 70 <= len(videos) <= 80  # 75 frames + the sequence header
    assert flv.is_video_sequence_header(videos[0].payload) and flv.is_video_key_frame(videos[1].payload)
    assert len(audios) >= 100  # ~43 AAC frames a second
    for stream in (videos, audios):
        stamps = [p.timestamp for p in stream]
        assert stamps == sorted(stamps) and stamps[-1] >= 2800


class PreEncoded(FrameEventHandler):
    def __init__(self, frames: list[neurtmp.VideoData]) -> None:
        self.frames = frames
        self.sent = 0
        self.clock: list[int] = []

    def handle(self, stream: Any, outqueue_is_full: bool) -> neurtmp.VideoData:
        frame = self.frames[self.sent % len(self.frames)]
        self.sent += 1
        self.clock.append(stream.clock())
        return frame


class Player(PlayEventHandler):
    def __init__(self, header: neurtmp.VideoData, frames: PreEncoded) -> None:
        self.header = header
        self.frames = frames

    def handle(self, is_start: bool, stream: Any) -> Any:
        if not is_start:
            return True
        stream.send_data("onMetaData", {"width": 320.0, "height": 240.0, "videocodecid": 7.0, "framerate": 30.0})
        stream.register_frame_event_handler(self.frames)
        return True, self.header  # the sequence header as the initialisation frame


@pytest.mark.timeout(60)
def test_ffmpeg_plays_a_frame_handler_stream(make_server: Any) -> None:
    header, frames = encode_h264(30, gop=30)  # one GOP, looped: every 30th frame a key frame
    feeder = PreEncoded(frames)
    player = Player(header, feeder)

    def on_connect(is_create: bool, connection: Any, args: Any, user: Any) -> bool:
        if is_create:
            connection.register_stream_event_handler(
                lambda create, s, a: (not create) or s.register_play_event_handler(player) is None)
        return True

    server = make_server(on_connect)
    result = subprocess.run([
        FFMPEG, "-hide_banner", "-loglevel", "error", "-t", "3",
        "-i", f"rtmp://{server.get_listen_address()}/app/scene", "-fps_mode", "passthrough", "-f", "framemd5", "-",
    ], capture_output=True, text=True, timeout=40)
    assert result.returncode == 0, result.stderr
    decoded = [line for line in result.stdout.splitlines() if line and not line.startswith("#")]
    produced = sum(1 for ms in feeder.clock if ms < 3000)  # frames stamped within ffmpeg's 3 s
    assert 80 <= produced <= 95
    assert len(decoded) >= 0.8 * produced, (len(decoded), produced)
    sizes = {re.split(r",\s*", line)[4] for line in decoded}
    assert sizes == {str(320 * 240 * 3 // 2)}  # yuv420p 320x240 frames
