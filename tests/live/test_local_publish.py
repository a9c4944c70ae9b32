"""`Server.publish_local`: a publish from inside the process, as pull relays and worker
edges use it; the live app's handlers see it as any publish, players get it over RTMP."""

from __future__ import annotations

from typing import Any

import pytest

import neurtmp
from neurtmp.handlers import Refusal
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
