"""Multitrack variants from the bundled ffmpeg 9 into the live app, played by late-joining
legacy ffmpeg players: (a) two H.264 tracks with Opus audio, (b) H.264 track 0 with an
HEVC track 1 and AAC. Track 0 comes unwrapped by default, `?track=1` gives the other."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import pytest
from gevent import subprocess

import neurtmp
from neurtmp.protocol import ertmp
from neurtmp.protocol import events as ev

from ..conftest import url
from ..live.helpers import FFMPEG, live_server
from .test_multitrack_players import decoded_sizes, ffmpeg_record, wait_live


def publish(target: str, codecs: list[str], seconds: float = 10) -> subprocess.Popen:
    """ffmpeg 9 sending two renditions (320x240, 160x120) and a sine as one multitrack stream."""
    return subprocess.Popen([
        FFMPEG, "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", str(seconds),
        "-filter_complex", "[0:v]split[a][b];[b]scale=160:120[c]", "-map", "[a]", "-map", "[c]", "-map", "1:a",
        *codecs, "-f", "flv", target], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


X264 = ["-preset", "ultrafast", "-tune", "zerolatency", "-g", "25", "-bf", "0", "-pix_fmt", "yuv420p"]


def first_media(server: Any, path: str) -> tuple[bytes, bytes]:
    """What a legacy (no capabilities) player of `path` gets first: a video payload and
    an audio payload (the sequence headers)."""
    video: bytes | None = None
    audio: bytes | None = None
    with neurtmp.connect(url(server), timeout=10) as client:
        client.play(path)
        while video is None or audio is None:
            event = client.read(timeout=10)
            assert event is not None, "media within 10 s"
            if isinstance(event, ev.VideoReceived) and video is None:
                video = bytes(event.payload)
            elif isinstance(event, ev.AudioReceived) and audio is None:
                audio = bytes(event.payload)
    return video, audio


def play_both(server: Any, app: Any, name: str, publisher: subprocess.Popen, tmp_path: Path,
              on_live: Any = None) -> dict[int, Path]:
    try:
        wait_live(app, name)
        if on_live is not None:
            on_live()
        outs = {track: tmp_path / f"track{track}.flv" for track in (0, 1)}
        players = [ffmpeg_record(url(server, f"live/{name}"), outs[0]),
                   ffmpeg_record(url(server, f"live/{name}?track=1"), outs[1])]
        for player in players:
            _, err = player.communicate(timeout=30)
            assert player.returncode == 0, err
    finally:
        publisher.kill()
        _, err = publisher.communicate(timeout=10)
    return outs


def codecs_of(path: Path) -> tuple[list[str], list[str]]:
    with av.open(str(path)) as container:
        return [s.codec_context.name for s in container.streams.video], [
            s.codec_context.name for s in container.streams.audio]


@pytest.mark.timeout(60)
def test_two_h264_tracks_with_opus_audio(make_server: Any, tmp_path: Path) -> None:
    server, app = live_server(make_server)
    publisher = publish(url(server, "live/opus"), ["-c:v", "libx264", *X264, "-c:a", "libopus", "-b:a", "64k"])
    wire: list[tuple[bytes, bytes]] = []
    outs = play_both(server, app, "opus", publisher, tmp_path,
                     lambda: wire.extend([first_media(server, "opus"), first_media(server, "opus?track=1")]))
    # both legacy players get legacy AVC video and the Opus as E-RTMP v1 FourCC audio
    # (single track, not Multitrack): an Opus sequence start with its OpusHead
    for video, audio in wire:
        assert not ertmp.is_enhanced_video(video) and video[:2] == b"\x17\x00", video[:8].hex()
        assert ertmp.is_enhanced_audio(audio), audio[:8].hex()
        tag = ertmp.parse_audio(audio)
        assert tag.multitrack_type is None and tag.packet_type == ertmp.AudioPacketType.SEQUENCE_START
        assert [(t.track_id, t.fourcc) for t in tag.tracks] == [(0, "Opus")]
        assert tag.tracks[0].data.startswith(b"OpusHead")
    for track, size in ((0, (320, 240)), (1, (160, 120))):
        streams, sizes, frames = decoded_sizes(outs[track])
        assert streams == 1 and sizes == {size} and frames >= 10, (track, streams, sizes, frames)
        video, audio = codecs_of(outs[track])
        assert video == ["h264"] and audio == ["opus"], (track, video, audio)
        with av.open(str(outs[track])) as container:
            assert sum(1 for _ in container.decode(audio=0)) >= 10  # the Opus decodes


@pytest.mark.timeout(60)
def test_h264_track_0_and_hevc_track_1_with_aac(make_server: Any, tmp_path: Path) -> None:
    server, app = live_server(make_server)
    publisher = publish(url(server, "live/hevc"), [
        "-c:v:0", "libx264", *X264, "-c:v:1", "libx265", "-preset:v:1", "ultrafast",
        "-x265-params", "keyint=25:bframes=0:log-level=error", "-c:a", "aac"])
    wire: list[tuple[bytes, bytes]] = []
    outs = play_both(server, app, "hevc", publisher, tmp_path,
                     lambda: wire.extend([first_media(server, "hevc"), first_media(server, "hevc?track=1")]))
    # track 0: legacy AVC; track 1: HEVC as E-RTMP v1 FourCC hvc1 (not Multitrack); legacy AAC both
    (video0, audio0), (video1, audio1) = wire
    assert not ertmp.is_enhanced_video(video0) and video0[:2] == b"\x17\x00", video0[:8].hex()
    tag = ertmp.parse_video(video1)
    assert tag.multitrack_type is None and tag.is_sequence_header
    assert [(t.track_id, t.fourcc) for t in tag.tracks] == [(0, "hvc1")]
    assert audio0[:2] == audio1[:2] == b"\xaf\x00"  # AAC sequence header
    for track, size, codec in ((0, (320, 240), "h264"), (1, (160, 120), "hevc")):
        streams, sizes, frames = decoded_sizes(outs[track])
        assert streams == 1 and sizes == {size} and frames >= 10, (track, streams, sizes, frames)
        video, audio = codecs_of(outs[track])
        assert video == [codec] and audio == ["aac"], (track, video, audio)
