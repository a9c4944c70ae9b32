"""Handler chains: the live app, a push relay and a third observer all see one publish;
one refusal in the chain undoes the others."""

from __future__ import annotations

from typing import Any

import pytest

import neurtmp
from neurtmp.relay import Backoff, Forwarder

from ..conftest import url
from ..helpers import wait_for
from ..media import encode_h264
from .helpers import live_server


class Observer:
    """A server-wide publish and media observer that records what it sees."""

    def __init__(self, accept: bool = True) -> None:
        self.accept = accept
        self.publishes: list[tuple[bool, str]] = []
        self.videos: list[bytes] = []
        self.metadata: list[dict[str, Any] | None] = []

    def on_publish(self, is_start: bool, stream: neurtmp.Stream, name: str, publish_type: str) -> bool:
        self.publishes.append((is_start, name))
        return self.accept

    def on_media(self, stream: neurtmp.Stream, packet: neurtmp.Packet) -> None:
        if packet.type_id == neurtmp.MessageType.VIDEO:
            self.videos.append(packet.payload)
        elif isinstance(packet, neurtmp.DataPacket):
            self.metadata.append(packet.metadata)


def read_videos(client: neurtmp.Client, count: int) -> list[bytes]:
    videos: list[bytes] = []
    while len(videos) < count:
        event = client.read(timeout=10)
        assert event is not None, "connection closed"
        if isinstance(event, neurtmp.events.VideoReceived):
            videos.append(event.payload)
    return videos


@pytest.mark.timeout(60)
def test_live_app_push_relay_and_a_third_observer_all_see_one_publish(make_server: Any) -> None:
    remote, _ = live_server(make_server)
    local, local_app = live_server(make_server)
    observer = Observer()
    local.register_publish_event_handler(observer.on_publish)
    local.register_media_event_handler(observer.on_media)
    forwarder = Forwarder(local, url(remote, "ingest"), backoff=Backoff(0.2, 1)).start()
    local_player = neurtmp.connect(url(local, "live"), timeout=5)
    local_player.play("cam")
    remote_player = neurtmp.connect(url(remote, "ingest"), timeout=5)
    remote_player.play("cam")

    header, frames = encode_h264(20, gop=10)
    sent = [header.data] + [frame.data for frame in frames]
    encoder = neurtmp.connect(url(local, "live"), timeout=5)
    encoder.publish("cam")
    wait_for(lambda: ("live", "cam") in forwarder.relays and forwarder.relays[("live", "cam")].connected == 1)
    encoder.send_data("@setDataFrame", "onMetaData", {"width": 320.0, "height": 240.0})
    for i, payload in enumerate(sent):
        encoder.send_video(payload, i * 33)

    assert read_videos(local_player, len(sent)) == sent  # the live app fanned it out
    assert read_videos(remote_player, len(sent)) == sent  # the push relay forwarded it
    assert observer.videos == sent  # and the observer saw every message, in order
    assert observer.metadata == [{"width": 320.0, "height": 240.0}]  # decoded, unwrapped
    live = local_app.registry.get("live", "cam")
    assert live is not None and live.is_live and live.metadata is not None
    encoder.close()
    wait_for(lambda: observer.publishes == [(True, "cam"), (False, "cam")])
    wait_for(lambda: not live.is_live and not forwarder.relays)
    forwarder.stop()
    local_player.close()
    remote_player.close()


@pytest.mark.timeout(30)
def test_one_refusal_in_the_publish_chain_undoes_the_others(make_server: Any) -> None:
    server, app = live_server(make_server)
    first, refusing = Observer(), Observer(accept=False)
    for observer in (first, refusing):
        server.register_publish_event_handler(observer.on_publish)
    encoder = neurtmp.connect(url(server, "live"), timeout=5)
    with pytest.raises(neurtmp.CallError) as refused:
        encoder.publish("cam")
    assert refused.value.code == "NetStream.Publish.BadName"
    # The live app accepted first, then was told the publish is off; so was the first observer.
    live = app.registry.get("live", "cam")
    assert live is None or not live.is_live
    assert first.publishes == [(True, "cam"), (False, "cam")]
    assert refusing.publishes == [(True, "cam")]
    encoder.close()
    # The name is free: once the refusing observer is gone, a publish goes live.
    server.remove_publish_event_handler(refusing.on_publish)
    encoder = neurtmp.connect(url(server, "live"), timeout=5)
    encoder.publish("cam")
    wait_for(lambda: (s := app.registry.get("live", "cam")) is not None and s.is_live)
    encoder.close()
