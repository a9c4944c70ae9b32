"""FanOut groups joined from a play handler, through a real server and client."""

from __future__ import annotations

from typing import Any

import pytest

import neurtmp
from neurtmp import FanOut, MessageType, Packet
from neurtmp.protocol import events as ev

from ..conftest import serve_streams, url


@pytest.mark.timeout(30)
def test_a_player_added_to_two_groups_in_its_play_handler_gets_both(make_server: Any) -> None:
    """A connection follows one shared log; the second group a play handler adds the
    player to must serve it message by message, not record it as following and send
    nothing."""
    first, second = FanOut(), FanOut()
    players: list[Any] = []

    def on_play(is_start: bool, stream: Any) -> bool:
        if is_start:
            first.add(stream)
            second.add(stream)
            players.append(stream)
        return True

    server = serve_streams(make_server, lambda stream: stream.register_play_event_handler(on_play))
    client = neurtmp.connect(url(server), timeout=5)
    client.play("x")
    assert len(players) == 1 and len(first) == len(second) == 1
    sent = []
    for n in range(10):
        for group, tag in ((first, 1), (second, 2)):
            packet = Packet(MessageType.AUDIO, n * 10 + tag, bytes([0xAF, 0x01, tag, n]))
            group.send(packet)
            sent.append(packet.payload)
    received = []
    while len(received) < len(sent):
        event = client.read(timeout=5)
        assert event is not None, f"{len(received)} of {len(sent)} arrived"
        if isinstance(event, ev.AudioReceived):
            received.append(event.payload)
    assert sorted(received) == sorted(sent)
    assert [p for p in received if p[2] == 1] == [p for p in sent if p[2] == 1]  # each group in order
    assert [p for p in received if p[2] == 2] == [p for p in sent if p[2] == 2]
    client.close()
