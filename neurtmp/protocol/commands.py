"""NetConnection / NetStream commands <-> AMF (spec 7.2), and status codes.

A command message (type 20, or 17 for AMF3 clients, whose body is a 0 byte followed
by AMF0 values) is: name, transaction id, command object, arguments. `parse_command`
turns one into the matching event by a name-keyed table; names not in the table become
`CallReceived`. Builders make the payloads the server and client send back.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from neurtmp.errors import AMFError, ChunkError
from neurtmp.protocol import amf0
from neurtmp.protocol._buffer import ByteReader
from neurtmp.protocol.events import (
    CallReceived,
    CheckBandwidthRequested,
    CloseStreamRequested,
    ConnectRequested,
    CreateStreamRequested,
    DataReceived,
    DeleteStreamRequested,
    ErrorReceived,
    Event,
    FCPublishRequested,
    FCSubscribeRequested,
    FCUnpublishRequested,
    GetStreamLengthRequested,
    PauseRequested,
    Play2Requested,
    PlayRequested,
    PublishRequested,
    ReceiveAudioRequested,
    ReceiveVideoRequested,
    ReleaseStreamRequested,
    ResultReceived,
    SeekRequested,
    SharedObjectReceived,
    StatusReceived,
)
from neurtmp.protocol.message import Message, MessageType

__all__ = ["StatusCode", "command_payload", "parse_command", "parse_data", "status_info"]


class StatusCode:
    """The standard `code` strings of onStatus / _result / _error info objects."""

    CONNECT_SUCCESS = "NetConnection.Connect.Success"
    CONNECT_REJECTED = "NetConnection.Connect.Rejected"
    CONNECT_CLOSED = "NetConnection.Connect.Closed"
    CONNECT_FAILED = "NetConnection.Connect.Failed"
    #: Enhanced RTMP v2: the server asks a client that announced capsEx Reconnect to
    #: connect again, to the info object's `tcUrl` when there is one, else to the same.
    CONNECT_RECONNECT_REQUEST = "NetConnection.Connect.ReconnectRequest"
    CALL_FAILED = "NetConnection.Call.Failed"
    PUBLISH_START = "NetStream.Publish.Start"
    PUBLISH_BAD_NAME = "NetStream.Publish.BadName"
    PUBLISH_DENIED = "NetStream.Publish.Denied"
    PUBLISH_FAILED = "NetStream.Publish.Failed"
    PUBLISH_REJECTED = "NetStream.Publish.Rejected"
    UNPUBLISH_SUCCESS = "NetStream.Unpublish.Success"
    PLAY_START = "NetStream.Play.Start"
    PLAY_RESET = "NetStream.Play.Reset"
    PLAY_STOP = "NetStream.Play.Stop"
    PLAY_FAILED = "NetStream.Play.Failed"
    PLAY_STREAM_NOT_FOUND = "NetStream.Play.StreamNotFound"
    PLAY_PUBLISH_NOTIFY = "NetStream.Play.PublishNotify"
    PLAY_UNPUBLISH_NOTIFY = "NetStream.Play.UnpublishNotify"
    PAUSE_NOTIFY = "NetStream.Pause.Notify"
    UNPAUSE_NOTIFY = "NetStream.Unpause.Notify"
    SEEK_NOTIFY = "NetStream.Seek.Notify"
    SEEK_FAILED = "NetStream.Seek.Failed"
    DATA_START = "NetStream.Data.Start"


def status_info(level: str, code: str, description: str = "", **extra: Any) -> dict[str, Any]:
    """An info object: {level, code, description, ...extra}."""
    info: dict[str, Any] = {"level": level, "code": code, "description": description}
    info.update(extra)
    return info


def command_payload(name: str, transaction_id: float, command_object: Any = None, *arguments: Any) -> bytes:
    """The AMF0 body of a command message."""
    return amf0.encode_all((name, float(transaction_id), command_object, *arguments))


# -- parsing --------------------------------------------------------------------------


def _amf_body(message: Message) -> bytes | memoryview:
    payload = message.payload
    if message.type_id in (MessageType.COMMAND_AMF3, MessageType.DATA_AMF3) and payload[:1] == b"\x00":
        return memoryview(payload)[1:]
    return payload


def _arg(args: list[Any], index: int, default: Any = None) -> Any:
    return args[index] if len(args) > index else default


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _num(value: Any, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    return float(value)


def _stream_id(value: Any, default: int) -> int:
    """A message stream id from an AMF number (NaN, negative or huge give `default`)."""
    number = _num(value, default)
    if not math.isfinite(number) or not 0 <= number <= 0xFFFFFFFF:
        return default
    return int(number)


def _bool(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, (bool, int, float)):
        return bool(value)
    return default


_Builder = Callable[[int, float, Any, list[Any]], Event]

_COMMANDS: dict[str, _Builder] = {
    "connect": lambda ms, tid, obj, args: ConnectRequested(tid, obj if isinstance(obj, dict) else {}, args),
    "createStream": lambda ms, tid, obj, args: CreateStreamRequested(tid, obj),
    "deleteStream": lambda ms, tid, obj, args: DeleteStreamRequested(tid, _stream_id(_arg(args, 0), ms)),
    "closeStream": lambda ms, tid, obj, args: CloseStreamRequested(ms),
    "releaseStream": lambda ms, tid, obj, args: ReleaseStreamRequested(tid, _str(_arg(args, 0))),
    "FCPublish": lambda ms, tid, obj, args: FCPublishRequested(tid, _str(_arg(args, 0))),
    "FCUnpublish": lambda ms, tid, obj, args: FCUnpublishRequested(tid, _str(_arg(args, 0))),
    "FCSubscribe": lambda ms, tid, obj, args: FCSubscribeRequested(tid, _str(_arg(args, 0))),
    "getStreamLength": lambda ms, tid, obj, args: GetStreamLengthRequested(ms, tid, _str(_arg(args, 0))),
    "_checkbw": lambda ms, tid, obj, args: CheckBandwidthRequested(tid),
    "publish": lambda ms, tid, obj, args: PublishRequested(
        ms, tid, _str(_arg(args, 0)), _str(_arg(args, 1)) or "live"
    ),
    "play": lambda ms, tid, obj, args: PlayRequested(
        ms,
        tid,
        _str(_arg(args, 0)),
        _num(_arg(args, 1), -2),
        _num(_arg(args, 2), -1),
        _bool(_arg(args, 3), True),
    ),
    "play2": lambda ms, tid, obj, args: Play2Requested(
        ms, tid, a if isinstance(a := _arg(args, 0), dict) else {}
    ),
    "pause": lambda ms, tid, obj, args: PauseRequested(ms, tid, _bool(_arg(args, 0), True), _num(_arg(args, 1), 0)),
    "seek": lambda ms, tid, obj, args: SeekRequested(ms, tid, _num(_arg(args, 0), 0)),
    "receiveAudio": lambda ms, tid, obj, args: ReceiveAudioRequested(ms, _bool(_arg(args, 0), True)),
    "receiveVideo": lambda ms, tid, obj, args: ReceiveVideoRequested(ms, _bool(_arg(args, 0), True)),
    "_result": lambda ms, tid, obj, args: ResultReceived(ms, tid, obj, args),
    "_error": lambda ms, tid, obj, args: ErrorReceived(ms, tid, obj, args),
    "onStatus": lambda ms, tid, obj, args: _status(ms, args),
}


def _status(message_stream_id: int, args: list[Any]) -> StatusReceived:
    info = _arg(args, 0)
    if not isinstance(info, dict):
        info = {}
    return StatusReceived(
        message_stream_id,
        _str(info.get("level")),
        _str(info.get("code")),
        _str(info.get("description")),
        info,
    )


def parse_command(message: Message) -> Event:
    """The event for a command message (type 20 or 17).

    Raises:
        AMFError: the body is not a valid command.
    """
    values = amf0.decode_all(_amf_body(message))
    if not values or not isinstance(values[0], str):
        raise AMFError("command message does not start with a command name")
    name = values[0]
    transaction_id = _num(_arg(values, 1), 0)
    command_object = _arg(values, 2)
    arguments = values[3:]
    builder = _COMMANDS.get(name)
    if builder is None:
        return CallReceived(message.message_stream_id, transaction_id, name, command_object, arguments)
    return builder(message.message_stream_id, transaction_id, command_object, arguments)


def parse_data(message: Message) -> DataReceived:
    """The event for a data message (type 18 or 15).

    Raises:
        AMFError: the body is not valid AMF.
    """
    values = amf0.decode_all(_amf_body(message))
    name = values[0] if values and isinstance(values[0], str) else ""
    rest = values[1:] if name else values
    return DataReceived(message.message_stream_id, message.timestamp, name, rest, message.payload)


def parse_shared_object(message: Message) -> SharedObjectReceived:
    """The event for a shared object message (type 19 or 16), events left raw.

    Raises:
        ChunkError: the body is truncated.
    """
    amf3 = message.type_id == MessageType.SHARED_OBJECT_AMF3
    payload = message.payload[1:] if amf3 and message.payload[:1] == b"\x00" else message.payload
    reader = ByteReader(payload, ChunkError)
    name = reader.utf8(reader.u16())
    version = reader.u32()
    persistent = reader.u32() != 0
    reader.u32()  # reserved
    events = []
    while not reader.at_end():
        event_type = reader.u8()
        events.append((event_type, reader.read(reader.u32())))
    return SharedObjectReceived(message.message_stream_id, name, version, persistent, events, amf3)
