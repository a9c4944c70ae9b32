"""Edges: players spread over two edges of one origin, one upstream play per edge."""

from __future__ import annotations

from typing import Any

import gevent
import pytest

import neurtmp
from neurtmp.relay import Backoff, Edge

from ..conftest import url
from ..helpers import wait_for
from ..media import decode_flv_h264
from .helpers import live_server
from .test_relay import Feeder


def origin_with_play_log(make_server: Any, address: str = "127.0.0.1:0") -> tuple[Any, list[str]]:
    server, _ = live_server(make_server, address=address)
    plays: list[str] = []
    server.register_play_event_observer(
        lambda is_start, stream: plays.append(stream.get_connection().get_peer_address()) if is_start else None)
    return server, plays


def count_videos(client: neurtmp.Client, seen: list[bytes]) -> None:
    while (event := client.read(timeout=30)) is not None:
        if isinstance(event, neurtmp.events.VideoReceived):
            seen.append(event.payload)


@pytest.mark.timeout(90)
def test_twenty_players_on_two_edges_one_upstream_play_each_and_an_origin_restart(make_server: Any) -> None:
    origin, origin_plays = origin_with_play_log(make_server)
    address = origin.get_listen_address()
    edges = []
    for _ in range(2):
        edge, _ = live_server(make_server)
        edges.append((edge, Edge(edge, f"rtmp://{address}", grace=0.5, timeout=5, backoff=Backoff(0.2, 1)).start()))
    players = []
    received: list[list[bytes]] = []
    for i in range(20):
        client = neurtmp.connect(url(edges[i % 2][0], "live"), timeout=10)
        client.play("src")
        seen: list[bytes] = []
        players.append((client, gevent.spawn(count_videos, client, seen)))
        received.append(seen)
    feeder = Feeder(f"rtmp://{address}/live")
    wait_for(lambda: all(len(seen) >= 15 for seen in received), 30)
    assert len(origin_plays) == 2  # exactly one upstream play per edge, not one per player
    for seen in received[:3]:  # what the players got decodes
        assert len(decode_flv_h264(seen[0], seen[1:15])) >= 10
    # The origin goes away and comes back on the same port: the edges pull again.
    feeder.stop()
    origin.shutdown(grace=0)
    before = [len(seen) for seen in received]
    origin, origin_plays = origin_with_play_log(make_server, address=address)
    feeder = Feeder(f"rtmp://{address}/live")
    wait_for(lambda: all(len(seen) >= count + 15 for seen, count in zip(received, before, strict=True)), 40)
    assert len(origin_plays) == 2
    feeder.stop()
    for client, reader in players:
        client.close()
        reader.kill()
    # The last player gone, each edge stops its pull after the grace period.
    wait_for(lambda: all(not edge.pulls for _, edge in edges), 10)
    for _, edge in edges:
        edge.stop()


@pytest.mark.timeout(60)
def test_a_publish_to_an_edge_reaches_the_origin_and_edges_chain(make_server: Any) -> None:
    origin, origin_plays = origin_with_play_log(make_server)
    first, _ = live_server(make_server)
    second, _ = live_server(make_server)  # an edge of the first edge
    edge1 = Edge(first, f"rtmp://{origin.get_listen_address()}", grace=0.5, timeout=5,
                 backoff=Backoff(0.2, 1)).start()
    edge2 = Edge(second, f"rtmp://{first.get_listen_address()}", grace=0.5, timeout=5,
                 backoff=Backoff(0.2, 1)).start()
    watcher = neurtmp.connect(url(origin, "live"), timeout=10)
    watcher.play("cam")
    far = neurtmp.connect(url(second, "live"), timeout=10)
    far.play("cam")
    feeder = Feeder(url(first, "live"), name="cam")  # an encoder publishing to the first edge
    seen_origin: list[bytes] = []
    seen_far: list[bytes] = []
    readers = [gevent.spawn(count_videos, watcher, seen_origin), gevent.spawn(count_videos, far, seen_far)]
    wait_for(lambda: len(seen_origin) >= 15 and len(seen_far) >= 15, 30)
    assert seen_origin[0][:2] == b"\x17\x00" and seen_far[0][:2] == b"\x17\x00"
    feeder.stop()
    for client in (watcher, far):
        client.close()
    gevent.killall(readers)
    edge1.stop()
    edge2.stop()


@pytest.mark.timeout(60)
def test_an_edge_forgets_each_name_once_its_last_player_leaves(make_server: Any) -> None:
    origin, origin_plays = origin_with_play_log(make_server)
    server, _ = live_server(make_server)
    edge = Edge(server, f"rtmp://{origin.get_listen_address()}", grace=0.2, timeout=5,
                backoff=Backoff(0.2, 1)).start()
    feeder = Feeder(url(origin, "live"), name="cam0")  # one name is live upstream; the others wait
    names = [f"cam{i}" for i in range(4)]
    players = []
    for name in names:
        for _ in range(2):
            client = neurtmp.connect(url(server, "live"), timeout=10)
            client.play(name)
            players.append(client)
    wait_for(lambda: dict(edge.players) == {("live", name): 2 for name in names}, 10)
    assert set(edge.pulls) == {("live", name) for name in names}
    wait_for(lambda: len(origin_plays) == len(names), 10)  # one upstream play per name
    seen: list[bytes] = []
    reader = gevent.spawn(count_videos, players[0], seen)
    wait_for(lambda: len(seen) >= 5, 20)  # the live name's pull relays
    reader.kill()
    for client in players[:-1]:  # all but one player of the last name leave
        client.close()
    wait_for(lambda: dict(edge.players) == {("live", names[-1]): 1}, 10)
    wait_for(lambda: set(edge.pulls) == {("live", names[-1])}, 10)
    players[-1].close()
    wait_for(lambda: not edge.players and not edge.pulls, 10)
    feeder.stop()
    edge.stop()


@pytest.mark.timeout(120)
def test_an_edges_players_see_the_slate_through_an_origin_fault_then_the_stream_again(make_server: Any) -> None:
    """The origin ends the stream (its publisher killed), then restarts: the edge's
    players keep playing (the edge's own grace and slate), and go on with the stream
    once the origin has it again, timestamps continuing."""
    import signal

    from neurtmp.live import LiveOptions

    from .helpers import ffmpeg_play_raw
    from .test_grace import HEIGHT, WIDTH, EventLog, RawFrames, _non_decreasing, ffmpeg_publish_colour

    origin, _ = live_server(make_server)  # no grace at the origin: its stream ends at once
    address = origin.get_listen_address()
    edge, edge_app = live_server(make_server, LiveOptions(reconnect_grace=15))
    relay = Edge(edge, f"rtmp://{address}", backoff=Backoff(0.2, 0.5)).start()
    red = ffmpeg_publish_colour(url(origin, "live/cam"), "red")
    raw = RawFrames(ffmpeg_play_raw(url(edge, "live/cam"), WIDTH, HEIGHT))
    client = neurtmp.connect(url(edge), timeout=5)
    client.play("cam")
    log = EventLog(client)
    blue = None
    try:
        wait_for(lambda: raw.count("red") >= 25, 30, "the edge's player decodes the red source")
        red.send_signal(signal.SIGKILL)
        red.wait(10)
        wait_for(lambda: raw.count("slate") >= 25, 20, "the edge's player gets the slate")
        origin.shutdown(grace=0)  # and the origin restarts on the same port
        origin, _ = live_server(make_server, address=address)
        blue = ffmpeg_publish_colour(url(origin, "live/cam"), "blue")
        wait_for(lambda: raw.count("blue") >= 25, 40, "the same player gets the stream back")
        assert raw.player.poll() is None
        assert "NetStream.Play.UnpublishNotify" not in log.codes()
        for kind in (neurtmp.events.VideoReceived, neurtmp.events.AudioReceived):
            stamps = log.timestamps(kind)
            assert stamps and _non_decreasing(stamps), kind
        video = log.timestamps(neurtmp.events.VideoReceived)
        assert max(b - a for a, b in zip(video, video[1:], strict=False)) < 500  # no jump: the slate filled the gap
        live = edge_app.registry.get("live", "cam")
        assert live is not None and live.is_live and not live.reconnecting
    finally:
        for process in (red, blue, raw.player):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(10)
        client.close()
        relay.stop()


@pytest.mark.timeout(60)
def test_an_encoder_publishing_a_pulled_name_on_an_edge_takes_over_at_its_first_key_frame(make_server: Any) -> None:
    """The players of a pulled name see no gap when an encoder publishes that name on the
    edge: the pull feeds them until the encoder's first key frame, where the encoder is
    spliced in (no UnpublishNotify), and then stops."""
    from .helpers import ffmpeg_publish
    from .test_reconnect_request import Watcher

    origin, origin_app = live_server(make_server)
    edge_server, edge_app = live_server(make_server)
    upstream = ffmpeg_publish(url(origin, "live/cam"), 30)
    local = None
    try:
        wait_for(lambda: origin_app.registry.get("live", "cam") is not None, 20)
        edge = Edge(edge_server, f"rtmp://{origin.get_listen_address()}", grace=0.5, timeout=5,
                    backoff=Backoff(0.2, 1)).start()
        player = Watcher(neurtmp.connect(url(edge_server, "live"), timeout=5))
        player.client.play("cam")
        wait_for(lambda: len(player.videos) >= 25, 20, "the pulled stream")
        before = len(player.videos)
        local = ffmpeg_publish(url(edge_server, "live/cam"), 30)  # an encoder on the edge (GOP 1 s)
        wait_for(lambda: ("live", "cam") not in edge.pulls, 10, "the pull stopped")
        live = edge_app.registry.get("live", "cam")
        assert live is not None and live.handovers == 1 and live.publisher_peer.startswith("127.0.0.1:")
        count = len(player.videos)
        wait_for(lambda: len(player.videos) >= count + 25, 10, "the encoder's frames")
        assert "NetStream.Play.UnpublishNotify" not in player.statuses
        arrivals = [t for t, _ in player.videos[before - 1:]]
        assert max(b - a for a, b in zip(arrivals, arrivals[1:], strict=False)) < 0.5  # no stall at the takeover
        player.close()
        edge.stop()
    finally:
        for process in (upstream, local):
            if process is not None:
                process.kill()
                process.wait()
