"""ServerProtocol <-> ClientProtocol in memory: commands, replies, control messages."""

from __future__ import annotations

import pytest

from neurtmp.errors import AMFError, LocalProtocolError, RemoteProtocolError
from neurtmp.protocol import ECMAArray, MessageType, Packet, amf0
from neurtmp.protocol import events as ev
from neurtmp.protocol.chunk import encode_message
from neurtmp.protocol.message import Message, build_aggregate

from .helpers import ConnectionPair


def of(kind: type, events: list[ev.Event]) -> list:
    return [e for e in events if isinstance(e, kind)]


def test_handshake_then_connect_success() -> None:
    pair = ConnectionPair()
    server_events, client_events = pair.pump()
    assert of(ev.HandshakeCompleted, server_events)[0].digest
    assert of(ev.HandshakeCompleted, client_events)[0].digest
    pair.client.connect("live?key=abc", "rtmp://127.0.0.1/live?key=abc", fourCcList=["hvc1", "av01"])
    server_events, _ = pair.pump()
    [connect] = of(ev.ConnectRequested, server_events)
    assert connect.app == "live?key=abc" and connect.tc_url.endswith("/live?key=abc")
    assert connect.fourcc_list == ["hvc1", "av01"]
    pair.server.accept_connect(connect, fourcc_list=["hvc1"])
    _, client_events = pair.pump()
    [result] = of(ev.ResultReceived, client_events)
    assert result.transaction_id == 1
    assert result.command_object["fourCcList"] == ["hvc1"]
    assert result.arguments[0]["code"] == "NetConnection.Connect.Success"
    assert of(ev.ChunkSizeChanged, client_events) == [ev.ChunkSizeChanged(4096)]
    assert pair.client.in_chunk_size == 4096


def test_fourcc_list_is_not_advertised_to_clients_that_did_not_send_one() -> None:
    pair = ConnectionPair()
    pair.pump()
    pair.client.connect("live", "rtmp://h/live")
    [connect] = of(ev.ConnectRequested, pair.pump()[0])
    pair.server.accept_connect(connect, fourcc_list=["hvc1"])
    [result] = of(ev.ResultReceived, pair.pump()[1])
    assert "fourCcList" not in result.command_object


def test_connect_rejected() -> None:
    pair = ConnectionPair()
    pair.pump()
    pair.client.connect("private", "rtmp://h/private")
    [connect] = of(ev.ConnectRequested, pair.pump()[0])
    pair.server.reject_connect(connect, "no such app")
    [error] = of(ev.ErrorReceived, pair.pump()[1])
    assert error.code == "NetConnection.Connect.Rejected"
    assert error.arguments[0]["description"] == "no such app"


def test_publish_flow_with_media_and_metadata() -> None:
    pair = ConnectionPair().connected()
    pair.client.release_stream("cam")
    pair.client.fc_publish("cam")
    server_events, _ = pair.pump()
    assert of(ev.ReleaseStreamRequested, server_events)[0].name == "cam"
    assert of(ev.FCPublishRequested, server_events)[0].name == "cam"
    stream_id = pair.stream()
    pair.client.publish(stream_id, "cam")
    [publish] = of(ev.PublishRequested, pair.pump()[0])
    assert (publish.name, publish.publish_type, publish.message_stream_id) == ("cam", "live", stream_id)
    pair.server.accept_publish(publish)
    client_events = pair.pump()[1]
    assert of(ev.StreamBegan, client_events) == [ev.StreamBegan(stream_id)]
    assert of(ev.StatusReceived, client_events)[0].code == "NetStream.Publish.Start"
    pair.client.send_data(stream_id, "@setDataFrame", "onMetaData", ECMAArray(width=640.0, height=360.0))
    for i in range(30):
        pair.client.send_video(stream_id, i * 33, bytes([0x17 if i == 0 else 0x27, 1, 0, 0, 0]) + bytes(5000))
        pair.client.send_audio(stream_id, i * 33 + 1, b"\xaf\x01" + bytes(300))
    server_events = pair.pump()[0]
    [data] = of(ev.DataReceived, server_events)
    assert data.name == "@setDataFrame" and data.values == ["onMetaData", {"width": 640.0, "height": 360.0}]
    videos = of(ev.VideoReceived, server_events)
    assert [v.timestamp for v in videos] == [i * 33 for i in range(30)]
    assert videos[0].payload[0] == 0x17 and all(len(v.payload) == 5005 for v in videos)
    assert len(of(ev.AudioReceived, server_events)) == 30


def test_play_flow_sends_reset_start_and_sample_access() -> None:
    pair = ConnectionPair().connected()
    stream_id = pair.stream()
    pair.client.set_buffer_length(stream_id, 3000)
    pair.client.play(stream_id, "cam", -1, -1, True)
    server_events = pair.pump()[0]
    assert of(ev.BufferLengthSet, server_events) == [ev.BufferLengthSet(stream_id, 3000)]
    [play] = of(ev.PlayRequested, server_events)
    assert (play.name, play.start, play.duration, play.reset) == ("cam", -1, -1, True)
    pair.server.accept_play(play)
    client_events = pair.pump()[1]
    codes = [s.code for s in of(ev.StatusReceived, client_events)]
    assert codes == ["NetStream.Play.Reset", "NetStream.Play.Start"]
    # no onStatus data message (NetStream.Data.Start): ffmpeg would make a stream of it
    assert [d.name for d in of(ev.DataReceived, client_events)] == ["|RtmpSampleAccess"]


def test_play_rejected_stream_not_found() -> None:
    pair = ConnectionPair().connected()
    stream_id = pair.stream()
    pair.client.play(stream_id, "missing")
    [play] = of(ev.PlayRequested, pair.pump()[0])
    pair.server.reject_play(play)
    [status] = of(ev.StatusReceived, pair.pump()[1])
    assert (status.level, status.code) == ("error", "NetStream.Play.StreamNotFound")


def test_stream_commands_become_their_events() -> None:
    pair = ConnectionPair().connected()
    stream_id = pair.stream()
    pair.client.pause(stream_id, True, 1234)
    pair.client.seek(stream_id, 5000)
    pair.client.call("receiveAudio", False, message_stream_id=stream_id)
    pair.client.call("receiveVideo", True, message_stream_id=stream_id)
    pair.client.call("play2", {"streamName": "hd", "transition": "switch"}, message_stream_id=stream_id)
    pair.client.call("getStreamLength", "cam", message_stream_id=stream_id)
    pair.client.call("FCSubscribe", "cam")
    pair.client.call("_checkbw")
    pair.client.call("set_speed", 2.5, "fast")
    pair.client.close_stream(stream_id)
    pair.client.delete_stream(stream_id)
    events = pair.pump()[0]
    kinds = [type(e).__name__ for e in events]
    assert kinds == [
        "PauseRequested", "SeekRequested", "ReceiveAudioRequested", "ReceiveVideoRequested", "Play2Requested",
        "GetStreamLengthRequested", "FCSubscribeRequested", "CheckBandwidthRequested", "CallReceived",
        "CloseStreamRequested", "DeleteStreamRequested",
    ]
    assert events[0] == ev.PauseRequested(stream_id, events[0].transaction_id, True, 1234)
    assert events[4].parameters == {"streamName": "hd", "transition": "switch"}
    assert (events[8].name, events[8].arguments) == ("set_speed", [2.5, "fast"])
    assert events[10].stream_id == stream_id and stream_id not in pair.server.stream_ids


def test_remote_call_result_and_error_reach_the_client() -> None:
    pair = ConnectionPair().connected()
    tid = pair.client.call("add", 1, 2)
    [call] = of(ev.CallReceived, pair.pump()[0])
    assert call.transaction_id == tid
    pair.server.send_result(call.transaction_id, None, sum(call.arguments))
    [result] = of(ev.ResultReceived, pair.pump()[1])
    assert (result.transaction_id, result.arguments) == (tid, [3.0])
    tid = pair.client.call("fail")
    [call] = of(ev.CallReceived, pair.pump()[0])
    pair.server.send_error(call.transaction_id, None, {"code": "NetConnection.Call.Failed"})
    [error] = of(ev.ErrorReceived, pair.pump()[1])
    assert error.transaction_id == tid and error.code == "NetConnection.Call.Failed"


def test_amf3_command_message_type_17() -> None:
    pair = ConnectionPair().connected()
    payload = b"\x00" + amf0.encode_all(["hello", 7.0, None, b"\x01\x02"])  # bytes go via AMF3 switch
    pair.client.send_message(Message(MessageType.COMMAND_AMF3, 0, 0, payload), 3)
    [call] = of(ev.CallReceived, pair.pump()[0])
    assert (call.name, call.transaction_id, call.arguments) == ("hello", 7.0, [b"\x01\x02"])


def test_aggregate_message_is_split_with_corrected_timestamps() -> None:
    pair = ConnectionPair().connected()
    stream_id = pair.stream()
    subs = [
        Message(9, 100, 0, b"\x17\x01frame1"),
        Message(8, 110, 0, b"\xaf\x01aac"),
        Message(9, 133, 0, b"\x27\x01f2"),
    ]
    aggregate = build_aggregate(subs, stream_id)
    shifted = Message(aggregate.type_id, 5000, stream_id, aggregate.payload)
    pair.client.send_message(shifted, 6)
    events = pair.pump()[0]
    media = [(type(e).__name__, e.timestamp, e.payload) for e in events]
    assert media == [
        ("VideoReceived", 5000, b"\x17\x01frame1"),
        ("AudioReceived", 5010, b"\xaf\x01aac"),
        ("VideoReceived", 5033, b"\x27\x01f2"),
    ]


def test_shared_object_message_is_parsed() -> None:
    pair = ConnectionPair().connected()
    body = b"\x00\x04chat" + (3).to_bytes(4, "big") + (1).to_bytes(4, "big") + bytes(4) + b"\x01" + bytes(4)
    pair.client.send_message(Message(MessageType.SHARED_OBJECT_AMF0, 0, 0, body), 3)
    [so] = of(ev.SharedObjectReceived, pair.pump()[0])
    assert (so.name, so.version, so.persistent, so.events, so.amf3) == ("chat", 3, True, [(1, b"")], False)


def test_ping_is_answered_and_reported() -> None:
    pair = ConnectionPair().connected()
    pair.server.send_ping(123456)
    server_events, client_events = pair.pump()
    assert of(ev.PingReceived, client_events) == [ev.PingReceived(123456)]
    assert of(ev.PingResponseReceived, server_events) == [ev.PingResponseReceived(123456)]


def test_acknowledgement_sent_when_window_is_crossed() -> None:
    pair = ConnectionPair().connected()
    stream_id = pair.stream()
    pair.client.send_window_ack_size(10_000)  # "acknowledge every 10 kB you get from me"
    pair.pump()
    acks: list[ev.AcknowledgementReceived] = []
    for i in range(10):
        pair.client.send_video(stream_id, i, bytes(3000))
        acks += of(ev.AcknowledgementReceived, pair.pump()[1])
    sequence = [a.sequence_number for a in acks]
    assert len(sequence) >= 2
    # one acknowledgement per window crossed, each telling the total received so far
    assert all(10_000 <= b - a <= 10_000 + 3100 for a, b in zip(sequence, sequence[1:], strict=False))
    assert 0 <= pair.server.bytes_received - sequence[-1] < 10_000


def test_set_peer_bandwidth_is_answered_with_window_ack_size() -> None:
    pair = ConnectionPair().connected()
    pair.server.send_peer_bandwidth(1_000_000, limit=0)
    server_events, client_events = pair.pump()
    assert of(ev.PeerBandwidthReceived, client_events) == [ev.PeerBandwidthReceived(1_000_000, 0)]
    assert of(ev.WindowAckSizeReceived, server_events) == [ev.WindowAckSizeReceived(1_000_000)]


def test_chunk_size_change_mid_stream_applies_to_later_chunks() -> None:
    pair = ConnectionPair().connected()
    stream_id = pair.stream()
    pair.client.send_video(stream_id, 0, bytes(1000))
    pair.client.set_chunk_size(77)
    pair.client.send_video(stream_id, 40, bytes(range(200)) * 5)
    events = pair.pump()[0]
    videos = of(ev.VideoReceived, events)
    assert [len(v.payload) for v in videos] == [1000, 1000]
    assert pair.server.in_chunk_size == 77


def test_packet_wire_bytes_are_shared_and_decode_on_any_player() -> None:
    pair = ConnectionPair().connected()
    stream_id = pair.stream()
    packet = Packet(MessageType.VIDEO, 0x1000000, b"\x17\x01" + bytes(10000))
    wire = packet.wire(pair.server.out_chunk_size, stream_id)
    assert packet.wire(pair.server.out_chunk_size, stream_id) is wire
    assert wire == encode_message(9, 0x1000000, stream_id, packet.payload, 6, 4096)
    [video] = of(ev.VideoReceived, pair.client.receive_data(wire))
    assert (video.timestamp, video.payload) == (0x1000000, packet.payload)


def test_protocol_error_kills_the_session() -> None:
    pair = ConnectionPair().connected()
    bad = encode_message(20, 0, 0, b"\x02\x00\x05ab", 3, 4096)
    with pytest.raises(AMFError):
        pair.server.receive_data(bad)
    with pytest.raises(LocalProtocolError):
        pair.server.receive_data(b"\x00")


def test_sending_before_handshake_is_our_error() -> None:
    with pytest.raises(LocalProtocolError):
        ConnectionPair().server.send_status(1, "NetStream.Play.Start")


def test_every_remote_error_is_a_remote_protocol_error() -> None:
    assert issubclass(AMFError, RemoteProtocolError)


def test_commands_before_connect_are_out_of_state() -> None:
    pair = ConnectionPair()
    pair.pump()  # handshake only
    pair.client.create_stream()
    pair.client.publish(1, "cam")
    pair.client.call("anything")
    events = pair.pump()[0]
    refused = of(ev.CommandOutOfState, events)
    assert [type(e.command).__name__ for e in refused] == ["CreateStreamRequested", "PublishRequested",
                                                           "CallReceived"]
    assert all(e.before_connect for e in refused)
    assert refused[1].reason == "publish before connect"
    assert not of(ev.PublishRequested, events) and not of(ev.CreateStreamRequested, events)


def test_stream_commands_on_unknown_stream_ids_are_out_of_state() -> None:
    pair = ConnectionPair().connected()
    stream_id = pair.stream()
    pair.client.play(stream_id + 1, "cam")
    pair.client.publish(0, "cam")
    pair.client.pause(stream_id, True)
    pair.client.delete_stream(stream_id)
    pair.client.play(stream_id, "cam")  # deleted: no longer known
    events = pair.pump()[0]
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["CommandOutOfState", "CommandOutOfState", "PauseRequested", "DeleteStreamRequested",
                     "CommandOutOfState"]
    assert [e.reason for e in of(ev.CommandOutOfState, events)] == [
        f"play on unknown stream {stream_id + 1}", "publish on unknown stream 0", f"play on unknown stream {stream_id}"]
    assert not any(e.before_connect for e in of(ev.CommandOutOfState, events))


def test_stream_ids_are_allocated_in_one_place() -> None:
    pair = ConnectionPair().connected()
    taken = pair.server.new_stream_id()
    assert pair.stream() == taken + 1  # createStream takes the next one, never a taken one


def test_commands_pipelined_behind_create_stream_find_their_stream() -> None:
    """Clients may send connect, createStream and play in one go, before any answer."""
    pair = ConnectionPair()
    pair.pump()
    pair.client.connect("live", "rtmp://127.0.0.1/live")
    pair.client.create_stream()
    pair.client.create_stream()
    pair.client.play(1, "cam")
    pair.client.publish(2, "cam2")
    events = pair.pump()[0]
    assert not of(ev.CommandOutOfState, events)
    first, second = of(ev.CreateStreamRequested, events)
    assert pair.server.stream_id_for(first) == 1
    pair.server.reject_create_stream(first)  # its id is given up...
    assert pair.server.accept_create_stream(second) == 2  # ...the next keeps its own
    pair.client.play(1, "cam")
    assert [e.reason for e in of(ev.CommandOutOfState, pair.pump()[0])] == ["play on unknown stream 1"]
