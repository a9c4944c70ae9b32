"""Enhanced RTMP capabilities between our client and our server: the client announces
its own, the connection exposes them, the server answers with its own."""

from __future__ import annotations

from typing import Any

import pytest

import neurtmp
from neurtmp import Capabilities, CapsEx, FourCcInfo

from ..conftest import url


def _recording_server(make_server: Any, seen: list[Capabilities]) -> neurtmp.Server:
    def on_connect(is_create: bool, connection: neurtmp.Connection, args: Any, user: Any) -> bool:
        if is_create:
            seen.append(connection.client_capabilities)
        return True

    return make_server(on_connect)


@pytest.mark.timeout(30)
def test_a_multitrack_player_s_capabilities_reach_the_connection(make_server: Any) -> None:
    seen: list[Capabilities] = []
    server = _recording_server(make_server, seen)
    mine = Capabilities.of(["avc1", "hvc1"], video={"*": FourCcInfo.CAN_DECODE},
                           caps_ex=CapsEx.MULTITRACK | CapsEx.MOD_EX)
    with neurtmp.connect(url(server), capabilities=mine) as client:
        assert seen == [mine] and seen[0].multitrack
        theirs = client.server_capabilities
        assert theirs.announced and theirs.multitrack and theirs.mod_ex and theirs.reconnect
        assert theirs.can_take_video("vvc1") and theirs.can_take_audio("Opus")  # forwards any codec
        assert theirs.fourcc_list == tuple(server.options.fourcc_list)


@pytest.mark.timeout(30)
def test_a_legacy_client_announces_nothing_and_gets_nothing(make_server: Any) -> None:
    seen: list[Capabilities] = []
    server = _recording_server(make_server, seen)
    with neurtmp.connect(url(server)) as client:
        assert seen == [Capabilities()] and not seen[0].announced
        assert not client.server_capabilities.announced
        assert client.connect_result is not None and "capsEx" not in client.connect_result.command_object
