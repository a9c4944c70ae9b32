"""Events: what the peer did, as returned by `receive_data`.

Events are frozen, slotted dataclasses named as facts. Commands that expect an answer
carry the `transaction_id` to answer with; the protocol object has `accept_*` /
`reject_*` / `send_*` methods that take the event itself. Acknowledgements, window sizes
and ping requests are answered inside the protocol object; they are still reported, so
an application can count them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from neurtmp.protocol.capabilities import Capabilities

__all__ = [
    "AcknowledgementReceived",
    "AudioReceived",
    "BufferLengthSet",
    "CallReceived",
    "CheckBandwidthRequested",
    "ChunkSizeChanged",
    "CloseStreamRequested",
    "CommandOutOfState",
    "ConnectRequested",
    "CreateStreamRequested",
    "DataReceived",
    "DeleteStreamRequested",
    "ErrorReceived",
    "Event",
    "FCPublishRequested",
    "FCSubscribeRequested",
    "FCUnpublishRequested",
    "GetStreamLengthRequested",
    "HandshakeCompleted",
    "PauseRequested",
    "PeerBandwidthReceived",
    "PingReceived",
    "PingResponseReceived",
    "Play2Requested",
    "PlayRequested",
    "PublishRequested",
    "ReceiveAudioRequested",
    "ReceiveVideoRequested",
    "ReleaseStreamRequested",
    "ResultReceived",
    "SeekRequested",
    "SharedObjectReceived",
    "StatusReceived",
    "StreamBegan",
    "StreamDry",
    "StreamEnded",
    "StreamIsRecorded",
    "UnknownMessageReceived",
    "VideoReceived",
    "WindowAckSizeReceived",
]


class Event:
    """Base class of every protocol event."""

    __slots__ = ()


# -- connection ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HandshakeCompleted(Event):
    """The handshake finished.

    Attributes:
        digest: True when the peer used the HMAC-SHA256 digest handshake.
        peer_version: the 4 version bytes of the peer's C1/S1 (zeros for plain peers).
    """

    digest: bool
    peer_version: bytes


@dataclass(frozen=True, slots=True)
class ConnectRequested(Event):
    """The client sent `connect` (NetConnection.connect).

    Attributes:
        transaction_id: to answer with (normally 1).
        command_object: app, tcUrl, flashVer, swfUrl, pageUrl, objectEncoding, ...
        arguments: optional user arguments after the command object.
    """

    transaction_id: float
    command_object: dict[str, Any]
    arguments: list[Any] = field(default_factory=list)

    @property
    def app(self) -> str:
        """The application name, query string included (`live?key=1`)."""
        return str(self.command_object.get("app") or "")

    @property
    def tc_url(self) -> str:
        return str(self.command_object.get("tcUrl") or "")

    @property
    def object_encoding(self) -> int:
        """0 for AMF0, 3 for AMF3."""
        value = self.command_object.get("objectEncoding")
        return 3 if value == 3 else 0

    @property
    def fourcc_list(self) -> list[str] | None:
        """Enhanced-RTMP codecs the client announced, or None when it sent none."""
        value = self.command_object.get("fourCcList")
        if isinstance(value, (list, dict)):
            items = value.values() if isinstance(value, dict) else value
            return [str(v) for v in items]
        return None

    @property
    def capabilities(self) -> Capabilities:
        """What the client announced of Enhanced RTMP (`fourCcList`, the FourCC info
        maps, `capsEx`); `.announced` is False for a legacy client."""
        return Capabilities.from_object(self.command_object)


@dataclass(frozen=True, slots=True)
class CommandOutOfState(Event):
    """A command the session's state does not allow, reported instead of its own event.

    `ServerProtocol` checks each command against a table: nothing but `connect` before
    connect, and stream commands only on message stream ids it handed out.

    Attributes:
        command: the command's event as parsed (e.g. a `PublishRequested`).
        reason: why it is refused, for the log ("publish before connect").
        before_connect: True when no connect was accepted yet (servers drop such clients).
    """

    command: Event
    reason: str
    before_connect: bool


@dataclass(frozen=True, slots=True)
class CreateStreamRequested(Event):
    transaction_id: float
    command_object: Any = None


@dataclass(frozen=True, slots=True)
class DeleteStreamRequested(Event):
    """`deleteStream(stream_id)`: the client is done with a NetStream."""

    transaction_id: float
    stream_id: int


@dataclass(frozen=True, slots=True)
class CloseStreamRequested(Event):
    """`closeStream` on a NetStream (stop playing or publishing, keep the stream id)."""

    message_stream_id: int


@dataclass(frozen=True, slots=True)
class ReleaseStreamRequested(Event):
    """`releaseStream(name)`, sent by FMLE-style encoders before publishing."""

    transaction_id: float
    name: str


@dataclass(frozen=True, slots=True)
class FCPublishRequested(Event):
    transaction_id: float
    name: str


@dataclass(frozen=True, slots=True)
class FCUnpublishRequested(Event):
    transaction_id: float
    name: str


@dataclass(frozen=True, slots=True)
class FCSubscribeRequested(Event):
    """`FCSubscribe(name)`, sent by some players to CDNs before play."""

    transaction_id: float
    name: str


@dataclass(frozen=True, slots=True)
class GetStreamLengthRequested(Event):
    message_stream_id: int
    transaction_id: float
    name: str


@dataclass(frozen=True, slots=True)
class CheckBandwidthRequested(Event):
    """`_checkbw`: a bandwidth check request (answered with an empty result usually)."""

    transaction_id: float


@dataclass(frozen=True, slots=True)
class CallReceived(Event):
    """Any other command: a remote procedure call by name.

    Attributes:
        message_stream_id: 0 for NetConnection calls.
        transaction_id: 0 when the caller expects no answer.
        name: the procedure name.
        command_object: usually None.
        arguments: the call's arguments.
    """

    message_stream_id: int
    transaction_id: float
    name: str
    command_object: Any
    arguments: list[Any] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ResultReceived(Event):
    """`_result`: the answer to one of our commands."""

    message_stream_id: int
    transaction_id: float
    command_object: Any
    arguments: list[Any] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ErrorReceived(Event):
    """`_error`: one of our commands failed."""

    message_stream_id: int
    transaction_id: float
    command_object: Any
    arguments: list[Any] = field(default_factory=list)

    @property
    def code(self) -> str:
        info = self.arguments[0] if self.arguments else None
        return str(info.get("code", "")) if isinstance(info, dict) else ""


@dataclass(frozen=True, slots=True)
class StatusReceived(Event):
    """`onStatus` on a NetStream (or NetConnection)."""

    message_stream_id: int
    level: str
    code: str
    description: str
    info: dict[str, Any] = field(default_factory=dict)


# -- stream commands ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PublishRequested(Event):
    """`publish(name, type)`; type is "live", "record" or "append"."""

    message_stream_id: int
    transaction_id: float
    name: str
    publish_type: str


@dataclass(frozen=True, slots=True)
class PlayRequested(Event):
    """`play(name, start, duration, reset)`.

    `start` and `duration` are milliseconds on the wire, as librtmp (rtmpdump), Flash
    and nginx-rtmp send and read them.

    Attributes:
        start: -2 live or recorded, -1 live only (librtmp sends -1000 for --live: any
            negative value but -2 means live), >= 0 recorded from that millisecond.
        duration: -1 until the end, 0 a single frame, > 0 that many milliseconds.
        reset: flush any previous playlist.
    """

    message_stream_id: int
    transaction_id: float
    name: str
    start: float = -2
    duration: float = -1
    reset: bool = True


@dataclass(frozen=True, slots=True)
class Play2Requested(Event):
    """`play2(parameters)`: switch streams (dynamic streaming)."""

    message_stream_id: int
    transaction_id: float
    parameters: dict[str, Any]


@dataclass(frozen=True, slots=True)
class PauseRequested(Event):
    message_stream_id: int
    transaction_id: float
    paused: bool
    milliseconds: float


@dataclass(frozen=True, slots=True)
class SeekRequested(Event):
    message_stream_id: int
    transaction_id: float
    milliseconds: float


@dataclass(frozen=True, slots=True)
class ReceiveAudioRequested(Event):
    message_stream_id: int
    enabled: bool


@dataclass(frozen=True, slots=True)
class ReceiveVideoRequested(Event):
    message_stream_id: int
    enabled: bool


# -- media and data -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AudioReceived(Event):
    """An audio message: `payload` is an FLV audio tag body."""

    message_stream_id: int
    timestamp: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class VideoReceived(Event):
    """A video message: `payload` is an FLV video tag body (legacy or enhanced RTMP)."""

    message_stream_id: int
    timestamp: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class DataReceived(Event):
    """A data message (type 18 or 15): `@setDataFrame`, `onMetaData`, cue points.

    Attributes:
        name: the handler name (first value), e.g. "@setDataFrame" or "onMetaData".
        values: the values after the name.
        payload: the AMF0 body as received (for relaying it unchanged).
    """

    message_stream_id: int
    timestamp: int
    name: str
    values: list[Any]
    payload: bytes


@dataclass(frozen=True, slots=True)
class SharedObjectReceived(Event):
    """A shared object message (type 19 or 16). neurtmp does not serve shared objects;
    the event lets an application answer or ignore it.

    Attributes:
        events: (event type, raw event data) pairs.
    """

    message_stream_id: int
    name: str
    version: int
    persistent: bool
    events: list[tuple[int, bytes]]
    amf3: bool


@dataclass(frozen=True, slots=True)
class UnknownMessageReceived(Event):
    """A message of a type neurtmp does not know; it is otherwise ignored."""

    type_id: int
    message_stream_id: int
    timestamp: int
    payload: bytes


# -- control --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChunkSizeChanged(Event):
    """The peer changed the size of the chunks it sends."""

    size: int


@dataclass(frozen=True, slots=True)
class AcknowledgementReceived(Event):
    """The peer acknowledged `sequence_number` bytes received from us."""

    sequence_number: int


@dataclass(frozen=True, slots=True)
class WindowAckSizeReceived(Event):
    size: int


@dataclass(frozen=True, slots=True)
class PeerBandwidthReceived(Event):
    size: int
    limit: int


@dataclass(frozen=True, slots=True)
class StreamBegan(Event):
    message_stream_id: int


@dataclass(frozen=True, slots=True)
class StreamEnded(Event):
    """User control StreamEOF."""

    message_stream_id: int


@dataclass(frozen=True, slots=True)
class StreamDry(Event):
    message_stream_id: int


@dataclass(frozen=True, slots=True)
class StreamIsRecorded(Event):
    message_stream_id: int


@dataclass(frozen=True, slots=True)
class BufferLengthSet(Event):
    """The client's playback buffer for a stream, in milliseconds."""

    message_stream_id: int
    milliseconds: int


@dataclass(frozen=True, slots=True)
class PingReceived(Event):
    """The peer pinged us; the response has already been queued."""

    timestamp: int


@dataclass(frozen=True, slots=True)
class PingResponseReceived(Event):
    """The peer answered our ping; `timestamp` is the value we sent."""

    timestamp: int
