"""Live publish -> play with real clients: fan-out, fast start, republish, takeover,
enhanced RTMP, slow players, and encode-once fan-out."""

from __future__ import annotations

import logging
import time
from typing import Any

import gevent
import numpy as np
import pytest

import neurtmp
from neurtmp.codec import flv
from neurtmp.live import LiveOptions
from neurtmp.protocol import events as ev
from neurtmp.protocol import packet as packet_module

from ..conftest import url
from ..helpers import assert_stays, wait_for
from ..media import encode_h264
from .helpers import ffmpeg_play_raw, ffmpeg_publish, live_server


@pytest.mark.timeout(90)
def test_three_ffmpeg_players_decode_what_ffmpeg_publishes(make_server: Any) -> None:
    server, app = live_server(make_server, flush_interval=0.05)
    stream_url = url(server, "live/colour")
    players = [ffmpeg_play_raw(stream_url, 160, 120) for _ in range(3)]
    wait_for(lambda: (s := app.registry.get("live", "colour")) is not None and len(s.players()) == 3, 20)
    publisher = ffmpeg_publish(stream_url, 4, "color=c=0x3366CC:size=160x120:rate=25")
    assert publisher.wait(30) == 0, publisher.stderr.read()
    frame_size = 160 * 120 * 3
    for player in players:
        out, err = player.communicate(timeout=30)
        assert player.returncode == 0, err
        frames = np.frombuffer(out, np.uint8).reshape(-1, 120, 160, 3)
        assert len(frames) >= 90, len(frames)  # 100 published
        assert len(out) % frame_size == 0
        colour = frames.reshape(-1, 3).mean(axis=0)
        assert np.allclose(colour, (0x33, 0x66, 0xCC), atol=6), colour


@pytest.mark.timeout(60)
def test_late_joiner_starts_on_a_key_frame_at_once(make_server: Any) -> None:
    server, app = live_server(make_server)
    # a 10 s GOP: a player left to wait for the next key frame would wait seconds
    publisher = ffmpeg_publish(url(server, "live/late"), 8, codec=[
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "250", "-pix_fmt", "yuv420p"])
    wait_for(lambda: (s := app.registry.get("live", "late")) is not None and s.gop.nbytes > 0 and len(s.gop) > 10, 20)
    client = neurtmp.connect(url(server), timeout=5)
    client.play("late")
    videos: list[ev.VideoReceived] = []
    metadata = None
    order: list[str] = []
    while len(videos) < 5:
        event = client.read(timeout=5)
        order.append(event.code if isinstance(event, ev.StatusReceived) else type(event).__name__)
        if isinstance(event, ev.DataReceived) and event.name == "onMetaData":
            metadata = event
        if isinstance(event, ev.VideoReceived):
            videos.append(event)
    assert metadata is not None and metadata.values[0]["width"] == 160
    # the play answer comes first, then the cached start (metadata, headers, GOP)
    assert order.index("NetStream.Play.Start") < order.index("VideoReceived")
    assert order[:3] == ["StreamBegan", "NetStream.Play.Reset", "NetStream.Play.Start"]
    assert flv.is_video_sequence_header(videos[0].payload)
    assert flv.is_video_key_frame(videos[1].payload) and not flv.is_video_sequence_header(videos[1].payload)
    live = app.registry.get("live", "late")
    assert live is not None
    [player] = live.players()
    first_key_ms = live.player_first_key_ms(player)
    # queued from the GOP cache in the play handler itself (the figure: bench/latency.py)
    assert first_key_ms is not None and first_key_ms < 2000
    assert videos[1].timestamp < videos[-1].timestamp
    client.close()
    publisher.kill()  # (its 8 s are not needed past this point)
    publisher.wait(30)


def publish_frames(client: neurtmp.Client, frames: list[neurtmp.VideoData], header: neurtmp.VideoData,
                   start_ms: int = 0) -> None:
    client.send_data("@setDataFrame", "onMetaData", {"width": 320.0, "height": 240.0, "videocodecid": 7.0})
    client.send_video(header.data, start_ms)
    for i, frame in enumerate(frames):
        client.send_video(frame.data, start_ms + i * 33)
        gevent.sleep(0.005)


def read_videos(client: neurtmp.Client, count: int, sink: list[ev.Event]) -> None:
    """Read events into `sink` until `count` more video messages arrived."""
    while count:
        event = client.read(timeout=5)
        assert event is not None
        sink.append(event)
        count -= isinstance(event, ev.VideoReceived)


def read_until(client: neurtmp.Client, code: str, sink: list[ev.Event]) -> None:
    while True:
        event = client.read(timeout=5)
        assert event is not None
        sink.append(event)
        if isinstance(event, ev.StatusReceived) and event.code == code:
            return


@pytest.mark.timeout(60)
def test_player_before_publisher_and_republish(make_server: Any) -> None:
    server, app = live_server(make_server)
    header, frames = encode_h264(20, gop=10)
    player = neurtmp.connect(url(server), timeout=5)
    player.play("show")  # nobody publishes yet: the player waits
    seen: list[ev.Event] = []
    for _session in range(2):
        publisher = neurtmp.connect(url(server), timeout=5)
        publisher.publish("show")
        publish_frames(publisher, frames, header)  # both sessions start their clock at 0
        read_videos(player, 21, seen)  # the server has it all before the publisher leaves
        publisher.close()
        read_until(player, "NetStream.Play.UnpublishNotify", seen)
    codes = [e.code for e in seen if isinstance(e, ev.StatusReceived) and e.code.endswith("ublishNotify")]
    assert codes == ["NetStream.Play.PublishNotify", "NetStream.Play.UnpublishNotify"] * 2
    videos = [e for e in seen if isinstance(e, ev.VideoReceived)]
    assert len(videos) == 2 * 21  # every frame of both sessions, headers included
    stamps = [v.timestamp for v in videos]
    assert stamps == sorted(stamps)  # the second session continues the timeline
    assert stamps[21] > stamps[20]
    second = videos[21:]
    assert flv.is_video_sequence_header(second[0].payload) and flv.is_video_key_frame(second[1].payload)
    player.close()


@pytest.mark.timeout(60)
def test_second_publisher_gets_bad_name(make_server: Any) -> None:
    server, _ = live_server(make_server)
    first = neurtmp.connect(url(server), timeout=5)
    first.publish("taken")
    second = neurtmp.connect(url(server), timeout=5)
    with pytest.raises(neurtmp.CallError) as info:
        second.publish("taken")
    assert info.value.code == "NetStream.Publish.BadName"
    first.close()
    second.close()


@pytest.mark.timeout(60)
def test_takeover_replaces_the_publisher_and_keeps_players(make_server: Any) -> None:
    server, app = live_server(make_server, LiveOptions(takeover=True))
    header, frames = encode_h264(10, gop=10)
    player = neurtmp.connect(url(server), timeout=5)
    player.play("cam")
    old = neurtmp.connect(url(server), timeout=5)
    old.publish("cam")
    publish_frames(old, frames, header)
    new = neurtmp.connect(url(server), timeout=5)
    new.publish("cam")  # accepted: the old encoder is dropped
    wait_for(lambda: old.closed, 5)
    publish_frames(new, frames, header)
    seen: list[ev.Event] = []
    read_videos(player, 22, seen)  # both publishers' frames, headers included
    assert_stays(lambda: player.inbox.empty(), 0.3, "no more events after both publishers' frames")
    assert not player.closed
    assert [e.code for e in seen if isinstance(e, ev.StatusReceived)][-2:] == [
        "NetStream.Play.UnpublishNotify", "NetStream.Play.PublishNotify"]
    live = app.registry.get("live", "cam")
    assert live is not None and live.is_live and live.publisher_peer.endswith(str(new._sock.getsockname()[1]))
    new.close()
    player.close()


@pytest.mark.timeout(60)
def test_hevc_over_enhanced_rtmp_end_to_end(make_server: Any) -> None:
    server, app = live_server(make_server)
    stream_url = url(server, "live/hevc")
    player = ffmpeg_play_raw(stream_url, 160, 120, ["-loglevel", "info"])
    wait_for(lambda: (s := app.registry.get("live", "hevc")) is not None and len(s.players()) == 1, 20)
    publisher = ffmpeg_publish(stream_url, 3, codec=["-c:v", "libx265", "-preset", "ultrafast", "-x265-params",
                                                     "log-level=error", "-g", "25"])
    wait_for(lambda: app.registry.get("live", "hevc").video_header is not None, 20)  # type: ignore[union-attr]
    header = app.registry.get("live", "hevc").video_header.payload  # type: ignore[union-attr]
    assert header[0] & 0x80 and flv.video_codec(header) == "hvc1"  # an E-RTMP SequenceStart
    assert publisher.wait(30) == 0
    out, err = player.communicate(timeout=30)
    assert player.returncode == 0
    assert "Video: hevc" in err.decode()
    frames = np.frombuffer(out, np.uint8).reshape(-1, 120, 160, 3)
    assert len(frames) >= 65  # 75 published
    assert frames.std() > 10  # a real picture (testsrc), not a blank


@pytest.mark.timeout(90)
def test_stalled_player_is_dropped_while_healthy_players_keep_their_frames(make_server: Any) -> None:
    server, app = live_server(make_server, outqueue_high_water=64 * 1024, outqueue_soft_limit=256 * 1024,
                              outqueue_hard_limit=1024 * 1024, send_timeout=1.5, send_buffer_size=64 * 1024)
    healthy = [neurtmp.connect(url(server), timeout=5) for _ in range(2)]
    for client in healthy:
        client.play("big")
    stalled = neurtmp.connect(url(server), timeout=5, inbox_size=2, receive_buffer_size=16 * 1024)
    stalled.play("big")
    counts = [0, 0]

    def count(index: int) -> None:
        while (event := healthy[index].read(timeout=10)) is not None:
            if isinstance(event, ev.VideoReceived):
                counts[index] += 1

    readers = [gevent.spawn(count, i) for i in range(2)]
    publisher = neurtmp.connect(url(server), timeout=5)
    publisher.publish("big")
    stalled_connection = next(c for c in server.get_connections() if c.get_peer_address().endswith(
        str(stalled._sock.getsockname()[1])))
    peak = 0
    sent = 0
    rng = np.random.default_rng(0)
    started = time.monotonic()
    for i in range(120):  # 4 s at 30 fps, ~1 MB/s of video and audio
        key = i % 30 == 0
        publisher.send_video(bytes((0x17 if key else 0x27, 1, 0, 0, 0)) + rng.bytes(25_000), i * 33)
        publisher.send_audio(b"\xaf\x01" + rng.bytes(4_000), i * 33)
        sent += 1
        peak = max(peak, stalled_connection.get_statistics()["bytes_queued"])
        gevent.sleep(max(0, started + (i + 1) / 30 - time.monotonic()))
    wait_for(lambda: stalled_connection.closed, 5, "the stalled player is dropped")
    assert peak <= 1024 * 1024
    wait_for(lambda: all(c >= 0.95 * sent for c in counts), 5, f"healthy players get 95% of {sent} frames")
    publisher.close()
    for client in healthy + [stalled]:
        client.close()
    gevent.joinall(readers, timeout=5)


@pytest.mark.timeout(60)
def test_wire_bytes_are_built_once_for_all_players(make_server: Any, monkeypatch: Any) -> None:
    calls = []
    original = packet_module.encode_message

    def counting(*args: Any) -> bytes:
        calls.append(args[0])
        return original(*args)

    monkeypatch.setattr(packet_module, "encode_message", counting)
    server, _ = live_server(make_server)
    players = [neurtmp.connect(url(server), timeout=5) for _ in range(3)]
    for player in players:
        player.play("shared")
    publisher = neurtmp.connect(url(server), timeout=5)
    publisher.publish("shared")
    header, frames = encode_h264(10, gop=10)
    publish_frames(publisher, frames, header)
    received = [0, 0, 0]
    for index, player in enumerate(players):
        while received[index] < 11:
            if isinstance(player.read(timeout=5), ev.VideoReceived):
                received[index] += 1
    assert calls.count(9) == 11  # 11 video messages, 3 players, one encoding each
    for client in players + [publisher]:
        client.close()


@pytest.mark.timeout(60)
def test_receive_audio_false_stops_audio_for_that_player_only(make_server: Any) -> None:
    server, _ = live_server(make_server)
    quiet, normal = neurtmp.connect(url(server), timeout=5), neurtmp.connect(url(server), timeout=5)
    for player in (quiet, normal):
        player.play("radio")
    quiet.receive_audio(False)
    quiet.call("_checkbw")  # a round trip: receiveAudio has been handled by now
    publisher = neurtmp.connect(url(server), timeout=5)
    publisher.publish("radio")
    for i in range(10):
        publisher.send_audio(b"\xaf\x01" + bytes(100), i * 23)
        publisher.send_video(bytes((0x17 if i == 0 else 0x27, 1, 0, 0, 0)) + bytes(500), i * 23)
    counts = []
    for player in (quiet, normal):
        kinds: dict[str, int] = {"audio": 0, "video": 0}
        while kinds["video"] < 10:  # each audio message was sent before its video message
            event = player.read(timeout=5)
            if isinstance(event, ev.AudioReceived):
                kinds["audio"] += 1
            elif isinstance(event, ev.VideoReceived):
                kinds["video"] += 1
        assert_stays(lambda client=player: client.inbox.empty(), 0.2, "nothing after the last video")
        counts.append(kinds)
    assert counts == [{"audio": 0, "video": 10}, {"audio": 10, "video": 10}]
    for client in (quiet, normal, publisher):
        client.close()


@pytest.mark.timeout(30)
def test_play_duration_ends_a_live_play_with_play_stop(make_server: Any) -> None:
    """rtmpdump --stop N sends play(name, start, N): the server ends the play after N s."""
    server, app = live_server(make_server)
    publisher = ffmpeg_publish(url(server, "live/cam"), 20)
    try:
        wait_for(lambda: (s := app.registry.get("live", "cam")) is not None and s.is_live, 15)
        player = neurtmp.connect(url(server, "live"), timeout=10)
        started = time.monotonic()
        player.play("cam", duration=1.5)
        videos, stopped = 0, None
        while stopped is None:
            event = player.read(timeout=10)
            assert event is not None
            if isinstance(event, neurtmp.events.VideoReceived):
                videos += 1
            elif isinstance(event, neurtmp.events.StatusReceived) and event.code == "NetStream.Play.Stop":
                stopped = time.monotonic() - started
        assert 1.4 <= stopped < 3.0 and videos >= 20  # 1.5 s of a 25 fps stream, then the stop
        live = app.registry.get("live", "cam")
        assert live is not None and live.players() == []  # it left the fan-out
        assert not player.closed  # the connection stays; only that play ended
        player.close()
    finally:
        publisher.kill()
        publisher.wait()


@pytest.mark.timeout(30)
def test_a_publish_with_an_empty_stream_name_is_refused(make_server: Any, caplog: pytest.LogCaptureFixture) -> None:
    """ffmpeg publishing to rtmp://host/live (no stream name) gets a refusal, not a live
    stream named ""."""
    caplog.set_level(logging.INFO, logger="neurtmp.stream")
    server, app = live_server(make_server)
    publisher = ffmpeg_publish(url(server, "live"), 5)
    _, err = publisher.communicate(timeout=20)
    assert publisher.returncode != 0, err
    assert any("empty stream name" in r.getMessage() for r in caplog.records)
    assert app.registry.streams() == []
