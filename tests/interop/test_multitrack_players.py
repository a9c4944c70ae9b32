"""A multitrack stream (the bundled ffmpeg 9 publishing two H.264 tracks, 320x240 and
160x120, plus AAC) to the live app, played by late joiners: legacy players (ffmpeg,
rtmpdump, HTTP-FLV) get one track unwrapped, a multitrack player gets every track with
its sequence header first."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import av
import pytest
from gevent import subprocess

import neurtmp
from neurtmp.live.http import LiveHttp, serve_live_http
from neurtmp.protocol import ertmp
from neurtmp.protocol import events as ev
from neurtmp.relay import Edge

from ..conftest import url
from ..helpers import wait_for
from ..live.helpers import FFMPEG, live_server

RTMPDUMP = shutil.which("rtmpdump")

#: Track 0 and track 1 of the ladder.
SIZES = {0: (320, 240), 1: (160, 120)}


def publish_ladder(target: str, seconds: float = 12) -> subprocess.Popen:
    """ffmpeg 9 sending two H.264 renditions and AAC as one multitrack FLV stream."""
    return subprocess.Popen([
        FFMPEG, "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
        "-f", "lavfi", "-i", "sine=frequency=440", "-t", str(seconds),
        "-filter_complex", "[0:v]split[a][b];[b]scale=160:120[c]", "-map", "[a]", "-map", "[c]", "-map", "1:a",
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "25", "-bf", "0",
        "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "flv", target], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def ffmpeg_record(source: str, out: Path, seconds: float = 2) -> subprocess.Popen:
    """A legacy ffmpeg player copying `seconds` of what it gets to an FLV file."""
    return subprocess.Popen([FFMPEG, "-hide_banner", "-loglevel", "error", "-i", source, "-t", str(seconds),
                             "-c", "copy", "-f", "flv", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def decoded_sizes(path: Path) -> tuple[int, set[tuple[int, int]], int]:
    """(video streams, the sizes of the decoded pictures, how many) of a file."""
    with av.open(str(path)) as container:
        streams = len(container.streams.video)
        frames = list(container.decode(video=0))
    return streams, {(f.width, f.height) for f in frames}, len(frames)


def wait_live(app: Any, name: str) -> None:
    """Until both tracks' headers came and a second of GOP is cached (a late join)."""
    wait_for(lambda: (s := app.registry.get("live", name)) is not None and len(s.tracks.video) == 2
             and len(s.gop) > 30, 20, "the ladder is live")


@pytest.mark.timeout(120)
def test_legacy_players_get_one_track_unwrapped(make_server: Any, tmp_path: Path) -> None:
    server, app = live_server(make_server)
    http = serve_live_http(LiveHttp(app, server, None), "127.0.0.1", 0)
    publisher = publish_ladder(url(server, "live/ladder"))
    try:
        wait_live(app, "ladder")
        outs = {name: tmp_path / f"{name}.flv" for name in ("track0", "track1", "http1", "dump")}
        players = [
            ffmpeg_record(url(server, "live/ladder"), outs["track0"]),
            ffmpeg_record(url(server, "live/ladder?track=1"), outs["track1"]),
            ffmpeg_record(f"http://127.0.0.1:{http.address[1]}/live/ladder.flv?track=1", outs["http1"]),
        ]
        if RTMPDUMP is not None:
            players.append(subprocess.Popen([RTMPDUMP, "-q", "-r", url(server, "live/ladder"), "--live",
                                             "--stop", "2", "-o", str(outs["dump"])],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        for player in players:
            _, err = player.communicate(timeout=30)
            is_rtmpdump = RTMPDUMP is not None and player is players[-1]
            assert player.returncode in ((0, 2) if is_rtmpdump else (0,)), err  # (rtmpdump: 2 after --stop)
        live = app.registry.get("live", "ladder")
        assert live is not None and live.statistics()["players"] == 0
    finally:
        publisher.kill()
        publisher.wait()
        http.stop()
    for name, track in (("track0", 0), ("track1", 1), ("http1", 1), ("dump", 0)):
        if name == "dump" and RTMPDUMP is None:
            continue
        streams, sizes, frames = decoded_sizes(outs[name])
        assert streams == 1 and sizes == {SIZES[track]} and frames >= 10, (name, streams, sizes, frames)
        with av.open(str(outs[name])) as container:
            assert len(container.streams.audio) == 1, name  # the AAC track goes along


@pytest.mark.timeout(90)
def test_a_multitrack_player_gets_every_track_with_its_header_first(make_server: Any) -> None:
    server, app = live_server(make_server)
    publisher = publish_ladder(url(server, "live/ladder"), seconds=8)
    caps = neurtmp.Capabilities.of(["avc1", "mp4a"], caps_ex=neurtmp.CapsEx.MULTITRACK)
    client = neurtmp.connect(url(server), timeout=10, capabilities=caps)
    try:
        wait_live(app, "ladder")
        client.play("ladder")
        kinds: dict[int, list[str]] = {0: [], 1: []}  # per track, what came in order
        while min(len(k) for k in kinds.values()) < 30:
            event = client.read(timeout=10)
            assert event is not None
            if not isinstance(event, ev.VideoReceived):
                continue
            packet = neurtmp.Packet(neurtmp.MessageType.VIDEO, event.timestamp, event.payload)
            if ertmp.peek_video_packet_type(event.payload) == ertmp.VideoPacketType.SEQUENCE_END:
                continue
            kind = "header" if packet.is_sequence_header else "key" if packet.is_key_frame else "inter"
            for track, _ in ertmp.split_video(event.payload):
                kinds[track].append(kind)
        for track, seen in kinds.items():  # its header first, then a key frame to start on
            assert seen[0] == "header" and seen[1] == "key", (track, seen[:5])
        # track 1 stays Multitrack OneTrack as published (the player announced it)
        live = app.registry.get("live", "ladder")
        assert live is not None and ertmp.is_enhanced_video(live.tracks.video[1].payload)
    finally:
        client.close()
        publisher.kill()
        publisher.wait()


@pytest.mark.timeout(90)
def test_an_edge_carries_every_track_and_its_legacy_players_choose(make_server: Any, tmp_path: Path) -> None:
    origin, origin_app = live_server(make_server)
    edge, edge_app = live_server(make_server)
    pull = Edge(edge, f"rtmp://{origin.get_listen_address()}", grace=0.5, timeout=5).start()
    publisher = publish_ladder(url(origin, "live/ladder"))
    try:
        wait_live(origin_app, "ladder")
        outs = {track: tmp_path / f"edge{track}.flv" for track in (0, 1)}
        players = [ffmpeg_record(url(edge, "live/ladder"), outs[0]),
                   ffmpeg_record(url(edge, "live/ladder?track=1"), outs[1])]
        wait_for(lambda: (s := edge_app.registry.get("live", "ladder")) is not None
                 and sorted(s.tracks.video) == [0, 1], 15, "the edge gets both tracks")
        for player in players:
            _, err = player.communicate(timeout=30)
            assert player.returncode == 0, err
    finally:
        publisher.kill()
        publisher.wait()
        pull.stop()
    for track, path in outs.items():
        streams, sizes, frames = decoded_sizes(path)
        assert streams == 1 and sizes == {SIZES[track]} and frames >= 10, (track, streams, sizes, frames)
