"""The bundled ffmpeg publishing Enhanced RTMP v2 multitrack, live: two H.264 tracks and
AAC with `-map 0:v -map 0:v -map 0:a -c copy -f flv`, read through the framework's
media handler and parsed per track."""

from __future__ import annotations

from typing import Any

import imageio_ffmpeg
import pytest
from gevent import subprocess

import neurtmp
from neurtmp.protocol import ertmp

from ..helpers import wait_for

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


@pytest.mark.timeout(90)
def test_ffmpeg9_publishes_a_second_h264_stream_as_multitrack_track_1(make_server: Any, tmp_path: Any) -> None:
    packets: list[neurtmp.Packet] = []
    capabilities: list[neurtmp.Capabilities] = []
    ended: list[bool] = []

    def on_stream(is_create: bool, stream: Any, args: Any) -> bool:
        if is_create:
            stream.register_publish_event_handler(lambda start, s, name, kind: ended.append(not start) or True)
            stream.register_media_event_handler(lambda s, packet: packets.append(packet))
        return True

    def on_connect(is_create: bool, connection: neurtmp.Connection, args: Any, user: Any) -> bool:
        if is_create:
            capabilities.append(connection.client_capabilities)
            connection.register_stream_event_handler(on_stream)
        return True

    server = make_server(on_connect)
    source = tmp_path / "source.nut"
    subprocess.run([
        FFMPEG, "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=10",
        "-f", "lavfi", "-i", "sine=frequency=440", "-t", "1", "-c:v", "libx264", "-g", "5", "-bf", "0",
        "-c:a", "aac", str(source)], check=True, timeout=40)
    result = subprocess.run([
        FFMPEG, "-hide_banner", "-loglevel", "error", "-i", str(source), "-map", "0:v", "-map", "0:v", "-map", "0:a",
        "-c", "copy", "-rtmp_enhanced_codecs", "avc1,mp4a", "-f", "flv",
        f"rtmp://{server.get_listen_address()}/live/multi"], capture_output=True, text=True, timeout=40)
    assert result.returncode == 0, result.stderr
    wait_for(lambda: True in ended, 5, "the unpublish after ffmpeg exits")
    assert capabilities[0].fourcc_list == ("avc1", "mp4a") and not capabilities[0].multitrack

    videos = [p for p in packets if p.type_id == neurtmp.MessageType.VIDEO]
    legacy = [p for p in videos if not ertmp.is_enhanced_video(p.payload)]
    multitrack = [(p, ertmp.parse_video(p.payload)) for p in videos if ertmp.is_enhanced_video(p.payload)]
    # ffmpeg 9 ends both streams with a legacy AVC end of sequence (no track id), twice
    ends = [p for p in legacy if p.payload == b"\x17\x02\x00\x00\x00"]
    assert len(ends) == 2 and all(not p.is_key_frame and not p.is_sequence_header for p in ends)
    legacy = [p for p in legacy if p not in ends]
    assert len(legacy) == len(multitrack) == 11  # 10 frames + the sequence header, per track
    assert {(tag.multitrack_type, t.track_id, t.fourcc) for _, tag in multitrack for t in tag.tracks} == {
        (ertmp.AvMultitrackType.ONE_TRACK, 1, "avc1")}
    first, tag = multitrack[0]
    assert tag.is_sequence_header and first.is_sequence_header
    keys = [p for p, tag in multitrack if tag.is_key_frame]
    assert len(keys) == 2 and all(p.is_key_frame for p in keys)  # GOP 5
    # track 1 is a copy of track 0: its legacy form is byte for byte ffmpeg's legacy AVC
    for old, (new, _) in zip(legacy, multitrack, strict=True):
        assert ertmp.split_video(new.payload, ertmp.TrackForm.LEGACY) == [(1, old.payload)]
    audios = [p for p in packets if p.type_id == neurtmp.MessageType.AUDIO]
    assert audios and not any(ertmp.is_enhanced_audio(p.payload) for p in audios)  # AAC stays legacy
