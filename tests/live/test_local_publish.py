"""`Server.publish_local` and `Server.play_local`: a publish or a play from inside the
process, as relays and worker edges use them; the live app's handlers see each as any
publish or play, and access checks let them through."""

from __future__ import annotations

from typing import Any

import pytest

import neurtmp
from neurtmp.handlers import Refusal
from neurtmp.live import LiveApp
from neurtmp.protocol import events as ev

from ..conftest import url
from ..helpers import wait_for
from ..media import encode_h264
from .helpers import live_server


def test_a_local_publish_reaches_players_like_a_network_one(make_server: Any) -> None:
    server, app = live_server(make_server)
    publisher = server.publish_local("live", "cam")
    [live] = app.streams()
    assert live.is_live and live.publisher_peer == "local:0"
    player = neurtmp.connect(url(server), timeout=10)
    player.play("cam")
    header, frames = encode_h264(10, gop=10)
    sent = [(0, header.data)] + [(40 * (i + 1), frame.data) for i, frame in enumerate(frames)]
    for timestamp, payload in sent:
        publisher.send_packet(neurtmp.Packet(neurtmp.MessageType.VIDEO, timestamp, payload))
    received = []
    while len(received) < len(sent):
        event = player.read(timeout=10)
        if isinstance(event, ev.VideoReceived):
            received.append((event.timestamp, event.payload))
    assert received == sent
    assert publisher.stream.publishing and not publisher.closed

    publisher.close()
    statuses = []
    while neurtmp.StatusCode.PLAY_UNPUBLISH_NOTIFY not in statuses:
        event = player.read(timeout=10)
        if isinstance(event, ev.StatusReceived):
            statuses.append(event.code)
    assert publisher.closed
    with pytest.raises(neurtmp.ConnectionClosed):
        publisher.send_packet(neurtmp.Packet(neurtmp.MessageType.VIDEO, 1000, frames[0].data))
    wait_for(lambda: not live.is_live, 5)
    player.close()


def test_a_refused_local_publish_raises_with_the_handlers_reason(make_server: Any) -> None:
    server, _ = live_server(make_server)

    def refuse(is_start: bool, stream: neurtmp.Stream, name: str, publish_type: str) -> Any:
        return Refusal(neurtmp.StatusCode.PUBLISH_BAD_NAME, "no local publishing here") if is_start else True

    server.register_publish_event_handler(refuse)
    with pytest.raises(neurtmp.CallError, match="no local publishing here"):
        server.publish_local("live", "cam", timeout=5)
    wait_for(lambda: not server.get_connections(), 5, "the refused local connection closed")


def test_a_local_play_gets_the_stream_and_passes_the_access_checks(make_server: Any) -> None:
    from neurtmp.access import AccessControl, AccessOptions, parse_rule

    server = make_server()
    AccessControl(AccessOptions(play_rules=(parse_rule(False, "all"),))).install(server)
    LiveApp().install(server)
    outsider = neurtmp.connect(url(server), timeout=5)
    with pytest.raises(neurtmp.CallError, match="play not allowed"):
        outsider.play("cam")  # a network player is refused
    outsider.close()
    player = server.play_local("live", "cam", timeout=5)  # the server's own (a push relay) is not
    publisher = neurtmp.connect(url(server), timeout=5)
    publisher.publish("cam")
    header, frames = encode_h264(5, gop=5)
    sent = [header.data] + [frame.data for frame in frames]
    for i, payload in enumerate(sent):
        publisher.send_video(payload, i * 40)
    received = []
    while len(received) < len(sent):
        event = player.read(timeout=10)
        if isinstance(event, ev.VideoReceived):
            received.append(event.payload)
    assert received == sent
    [local] = [connection for connection in server.get_connections() if connection.local]
    assert local.get_peer_address() == "local:0"
    publisher.close()
    player.close()
