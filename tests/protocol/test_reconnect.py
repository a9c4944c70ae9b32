"""The Enhanced RTMP v2 reconnect request on the wire (sans-IO): its AMF shape."""

from __future__ import annotations

from neurtmp.protocol import amf0
from neurtmp.protocol import events as ev
from neurtmp.protocol.commands import StatusCode
from neurtmp.protocol.message import MessageType

from .helpers import ConnectionPair


def test_the_request_is_on_status_on_the_net_connection_with_the_tc_url() -> None:
    pair = ConnectionPair().connected()
    pair.server.send_reconnect_request("rtmp://other:1936/live", "going away")
    _, events = pair.pump()
    [status] = [e for e in events if isinstance(e, ev.StatusReceived)]
    assert status.message_stream_id == 0
    assert status.code == StatusCode.CONNECT_RECONNECT_REQUEST == "NetConnection.Connect.ReconnectRequest"
    assert status.level == "status" and status.description == "going away"
    assert status.info["tcUrl"] == "rtmp://other:1936/live"


def test_without_a_tc_url_the_info_object_names_none() -> None:
    pair = ConnectionPair().connected()
    pair.server.send_reconnect_request()
    _, events = pair.pump()
    [status] = [e for e in events if isinstance(e, ev.StatusReceived)]
    assert status.code == StatusCode.CONNECT_RECONNECT_REQUEST and "tcUrl" not in status.info
    assert status.description  # a default one


def test_the_amf_body_is_on_status_transaction_0_null_then_the_info_object() -> None:
    pair = ConnectionPair().connected()
    sent: list[tuple[int, int, bytes]] = []
    send_message = pair.server.send_message

    def spy(message: object, chunk_stream_id: int) -> None:
        sent.append((message.type_id, message.message_stream_id, bytes(message.payload)))  # type: ignore[attr-defined]
        send_message(message, chunk_stream_id)  # type: ignore[arg-type]

    pair.server.send_message = spy  # type: ignore[method-assign]
    pair.server.send_reconnect_request("rtmp://h/app", "bye")
    [(type_id, stream_id, payload)] = sent
    assert type_id == MessageType.COMMAND_AMF0 and stream_id == 0
    assert amf0.decode_all(payload) == ["onStatus", 0.0, None, {
        "level": "status", "code": "NetConnection.Connect.ReconnectRequest", "description": "bye",
        "tcUrl": "rtmp://h/app"}]
