"""Access handlers: asked before a stream's publish chain and play handler; a refusal
from one, or from a connect handler, reaches the client; `Stream.rename`."""

from __future__ import annotations

from typing import Any

import pytest

import neurtmp
from neurtmp.handlers import Refusal

from ..conftest import url
from ..live.helpers import live_server


@pytest.mark.timeout(30)
def test_an_access_refusal_comes_before_the_live_app_and_names_its_status(make_server: Any) -> None:
    server, app = live_server(make_server)
    asked: list[tuple[str, str, str]] = []

    def gate(action: str, stream: neurtmp.Stream) -> Any:
        asked.append((action, stream.get_stream_name(), stream.publish_type))
        return Refusal("NetStream.Publish.Rejected", "403 not you") if "bad" in stream.get_stream_name() else True

    server.register_access_event_handler(gate)
    encoder = neurtmp.connect(url(server), timeout=5)
    with pytest.raises(neurtmp.CallError) as refused:
        encoder.publish("bad?x=1")
    assert refused.value.code == "NetStream.Publish.Rejected" and "403 not you" in str(refused.value)
    assert app.registry.get("live", "bad") is None  # the live app was never asked
    encoder.publish("good")
    assert asked == [("publish", "bad?x=1", "live"), ("publish", "good", "live")]
    player = neurtmp.connect(url(server), timeout=5)
    player.play("good")
    assert asked[-1] == ("play", "good", "")
    server.remove_access_event_handler(gate)
    assert server.get_access_event_handlers() == ()
    encoder.close()
    player.close()


@pytest.mark.timeout(30)
def test_a_plain_false_or_an_exception_refuses_with_403_or_500(make_server: Any) -> None:
    server, app = live_server(make_server)

    def gate(action: str, stream: neurtmp.Stream) -> bool:
        if stream.get_stream_name() == "boom":
            raise RuntimeError("checker broke")
        return False

    server.register_access_event_handler(gate)
    client = neurtmp.connect(url(server), timeout=5)
    with pytest.raises(neurtmp.CallError) as refused:
        client.play("cam")
    assert refused.value.code == "NetStream.Play.Failed" and "403" in str(refused.value)
    with pytest.raises(neurtmp.CallError) as failed:
        client.publish("boom")
    assert failed.value.code == "NetStream.Publish.Rejected" and "500" in str(failed.value)
    client.close()


@pytest.mark.timeout(30)
def test_rename_sends_the_publish_and_the_play_to_another_name(make_server: Any) -> None:
    server, app = live_server(make_server)

    def redirect(action: str, stream: neurtmp.Stream) -> bool:
        stream.rename(f"{action}ed")
        return True

    server.register_access_event_handler(redirect)
    encoder = neurtmp.connect(url(server), timeout=5)
    encoder.publish("cam")
    live = app.registry.get("live", "published")
    assert live is not None and live.is_live and app.registry.get("live", "cam") is None
    player = neurtmp.connect(url(server), timeout=5)
    player.play("anything")
    played = app.registry.get("live", "played")
    assert played is not None and len(played.players()) == 1
    [stream] = [s for c in server.get_connections() for s in c.get_streams() if s.publishing]
    with pytest.raises(ValueError):
        stream.rename("later")  # only while the publish is being decided
    encoder.close()
    player.close()


@pytest.mark.timeout(30)
def test_a_connect_refusal_stops_the_asking_and_carries_its_description(make_server: Any) -> None:
    later: list[bool] = []

    def gate(is_create: bool, connection: neurtmp.Connection, args: Any, user: Any) -> Any:
        return Refusal("NetConnection.Connect.Rejected", "403 go away") if "no" in connection.app else False

    def accept(is_create: bool, connection: neurtmp.Connection, args: Any, user: Any) -> bool:
        later.append(is_create)
        return True

    server = make_server(gate, accept)
    with pytest.raises(neurtmp.CallError) as refused:
        neurtmp.connect(url(server, "no"), timeout=5)
    assert "403 go away" in str(refused.value) and later == []
    client = neurtmp.connect(url(server, "yes"), timeout=5)
    assert later == [True] and not any(c.local for c in server.get_connections())
    client.close()
