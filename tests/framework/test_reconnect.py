"""Enhanced RTMP v2 reconnect requests between our server and our client: sent only to
clients that announced capsEx Reconnect, by `Connection.request_reconnect` and on a
graceful `Server.shutdown`, surfaced by the client as `reconnect_requested`."""

from __future__ import annotations

from typing import Any

import gevent
import pytest

import neurtmp
from neurtmp import Capabilities, CapsEx
from neurtmp.protocol import events as ev

from ..conftest import url
from ..helpers import wait_for

RECONNECTING = Capabilities.of(caps_ex=CapsEx.RECONNECT)


def _server(make_server: Any, connections: list[neurtmp.Connection], **options: Any) -> neurtmp.Server:
    def on_connect(is_create: bool, connection: neurtmp.Connection, args: Any, user: Any) -> bool:
        if is_create:
            connections.append(connection)
        return True

    return make_server(on_connect, **options)


def _statuses(client: neurtmp.Client, seconds: float) -> list[ev.StatusReceived]:
    """The statuses the client gets within `seconds` (or until it closes)."""
    found: list[ev.StatusReceived] = []
    with gevent.Timeout(seconds, False):
        while (event := client.read(timeout=seconds)) is not None:
            if isinstance(event, ev.StatusReceived):
                found.append(event)
    return found


@pytest.mark.timeout(30)
def test_request_reconnect_reaches_only_a_client_that_announced_it(make_server: Any) -> None:
    connections: list[neurtmp.Connection] = []
    server = _server(make_server, connections)
    capable = neurtmp.connect(url(server), timeout=5, capabilities=RECONNECTING)
    legacy = neurtmp.connect(url(server), timeout=5)
    multitrack_only = neurtmp.connect(url(server), timeout=5, capabilities=Capabilities.of(caps_ex=CapsEx.MULTITRACK))
    assert capable.server_capabilities.reconnect  # the server states it: it sends them
    assert [c.client_capabilities.reconnect for c in connections] == [True, False, False]
    sent = [c.request_reconnect("rtmp://elsewhere:1936/live", "move") for c in connections]
    assert sent == [True, False, False]
    wait_for(lambda: capable.reconnect_requested is not None, 5)
    request = capable.reconnect_requested
    assert request is not None and request.description == "move" and request.message_stream_id == 0
    assert capable.reconnect_tc_url == "rtmp://elsewhere:1936/live"
    assert capable.reconnect_url("rtmp://a:1935/live/cam?k=1") == "rtmp://elsewhere:1936/live/cam?k=1"
    event = capable.read(timeout=5)  # in the inbox too, as a status on the NetConnection
    assert isinstance(event, ev.StatusReceived) and event.code == neurtmp.StatusCode.CONNECT_RECONNECT_REQUEST
    assert _statuses(legacy, 0.5) == [] and _statuses(multitrack_only, 0.5) == []
    assert legacy.reconnect_requested is None
    connections[1].close()
    assert connections[1].request_reconnect() is False  # closed: nothing sent
    for client in (capable, legacy, multitrack_only):
        client.close()


@pytest.mark.timeout(30)
def test_shutdown_asks_capable_clients_to_reconnect_at_the_start_of_the_grace(make_server: Any) -> None:
    connections: list[neurtmp.Connection] = []
    server = _server(make_server, connections, reconnect_url="rtmp://127.0.0.1:9/live")
    capable = neurtmp.connect(url(server), timeout=5, capabilities=RECONNECTING)
    legacy = neurtmp.connect(url(server), timeout=5)
    stopping = gevent.spawn(server.shutdown, 3)
    wait_for(lambda: capable.reconnect_requested is not None, 2)  # long before the grace ends
    assert not stopping.ready() and not capable.closed  # the old connection goes on meanwhile
    assert capable.reconnect_tc_url == "rtmp://127.0.0.1:9/live"
    assert capable.reconnect_url() == "rtmp://127.0.0.1:9/live"
    assert legacy.reconnect_requested is None
    capable.close()
    legacy.close()
    stopping.join(10)
    assert stopping.ready()


@pytest.mark.timeout(30)
def test_shutdown_without_a_reconnect_url_names_none(make_server: Any) -> None:
    server = _server(make_server, [])
    same = url(server, "live/cam")
    capable = neurtmp.connect(same, timeout=5, capabilities=RECONNECTING)
    gevent.spawn(server.shutdown, 2)
    wait_for(lambda: capable.reconnect_requested is not None, 2)
    assert capable.reconnect_tc_url is None
    assert capable.reconnect_url() == same
    capable.close()


def test_reconnect_url_option_is_checked() -> None:
    with pytest.raises(neurtmp.ConfigError, match="reconnect_url"):
        neurtmp.ServerOptions(reconnect_url="http://x/live")


def test_reconnect_target() -> None:
    assert neurtmp.reconnect_target("rtmp://a/live/cam", None) == "rtmp://a/live/cam"
    assert neurtmp.reconnect_target("rtmp://a/live/cam?k=1", "rtmps://b:443/app/") == "rtmps://b:443/app/cam?k=1"
    assert neurtmp.reconnect_target("rtmp://a/live", "rtmp://b/app") == "rtmp://b/app"
    with pytest.raises(neurtmp.ConfigError):
        neurtmp.reconnect_target("rtmp://a/live/cam", "not a url")
