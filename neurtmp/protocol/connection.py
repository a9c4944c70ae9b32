"""ServerProtocol and ClientProtocol: the whole of RTMP for one connection, sans-IO.

Feed received bytes to `receive_data()`; it returns the events they complete. Call the
`accept_*` / `reject_*` / `send_*` methods to answer; they queue bytes that
`data_to_send()` hands over for the socket. Nothing here touches a socket, a thread or
a clock, so both roles are tested by wiring two objects together in memory.

The protocol object answers on its own what needs no decision: Acknowledgements when
the peer's window is crossed, Ping responses, and a Window Acknowledgement Size after
a Set Peer Bandwidth. Everything is still reported as an event.

After a `RemoteProtocolError` the object is dead: every later call raises
`LocalProtocolError`, and the connection should be closed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from neurtmp.errors import LocalProtocolError, RemoteProtocolError
from neurtmp.protocol import amf0, commands, control
from neurtmp.protocol._buffer import ReceiveBuffer
from neurtmp.protocol.capabilities import Capabilities
from neurtmp.protocol.chunk import ChunkDecoder, ChunkEncoder
from neurtmp.protocol.commands import StatusCode, command_payload, status_info
from neurtmp.protocol.control import CONTROL_CHUNK_STREAM, UserControl
from neurtmp.protocol.events import (
    AcknowledgementReceived,
    AudioReceived,
    BufferLengthSet,
    CallReceived,
    CheckBandwidthRequested,
    ChunkSizeChanged,
    CloseStreamRequested,
    CommandOutOfState,
    ConnectRequested,
    CreateStreamRequested,
    DeleteStreamRequested,
    Event,
    FCPublishRequested,
    FCSubscribeRequested,
    FCUnpublishRequested,
    GetStreamLengthRequested,
    HandshakeCompleted,
    PauseRequested,
    PeerBandwidthReceived,
    PingReceived,
    PingResponseReceived,
    Play2Requested,
    PlayRequested,
    PublishRequested,
    ReceiveAudioRequested,
    ReceiveVideoRequested,
    ReleaseStreamRequested,
    SeekRequested,
    StreamBegan,
    StreamDry,
    StreamEnded,
    StreamIsRecorded,
    UnknownMessageReceived,
    VideoReceived,
    WindowAckSizeReceived,
)
from neurtmp.protocol.handshake import ClientHandshake, ServerHandshake
from neurtmp.protocol.limits import (
    DEFAULT_MAX_CHUNK_STREAMS,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_MAX_PENDING_BYTES,
    DEFAULT_MAX_STREAMS,
    DEFAULT_OUT_CHUNK_SIZE,
    DEFAULT_PEER_BANDWIDTH,
    DEFAULT_WINDOW_ACK_SIZE,
)
from neurtmp.protocol.message import Message, MessageType, split_aggregate
from neurtmp.protocol.packet import AUDIO_CHUNK_STREAM, DATA_CHUNK_STREAM, VIDEO_CHUNK_STREAM

__all__ = ["ClientProtocol", "ServerProtocol"]

#: Chunk stream for connection-level commands (message stream 0).
COMMAND_CHUNK_STREAM = 3

#: What a server says it is in the connect result (Flash clients look for an FMS version).
SERVER_FMS_VERSION = "FMS/3,5,7,7009"
SERVER_CAPABILITIES = 31

#: Commands a server takes only after connect, by the name used in log lines.
_NEEDS_CONNECT: dict[type, str] = {
    CreateStreamRequested: "createStream",
    DeleteStreamRequested: "deleteStream",
    CloseStreamRequested: "closeStream",
    ReleaseStreamRequested: "releaseStream",
    FCPublishRequested: "FCPublish",
    FCUnpublishRequested: "FCUnpublish",
    FCSubscribeRequested: "FCSubscribe",
    GetStreamLengthRequested: "getStreamLength",
    CheckBandwidthRequested: "_checkbw",
    CallReceived: "call",
    PublishRequested: "publish",
    PlayRequested: "play",
    Play2Requested: "play2",
    PauseRequested: "pause",
    SeekRequested: "seek",
    ReceiveAudioRequested: "receiveAudio",
    ReceiveVideoRequested: "receiveVideo",
}
#: Commands that act on a NetStream: only on a message stream id createStream handed out.
_ON_A_STREAM = (CloseStreamRequested, PublishRequested, PlayRequested, Play2Requested, PauseRequested,
                SeekRequested, ReceiveAudioRequested, ReceiveVideoRequested)

_USER_CONTROL_EVENTS: dict[int, Callable[[int], Event]] = {
    UserControl.STREAM_BEGIN: StreamBegan,
    UserControl.STREAM_EOF: StreamEnded,
    UserControl.STREAM_DRY: StreamDry,
    UserControl.STREAM_IS_RECORDED: StreamIsRecorded,
}


class _Session:
    """What both roles share: chunking, control messages, command parsing, the outbox."""

    _handshake: ServerHandshake | ClientHandshake

    def __init__(
        self,
        *,
        max_message_size: int,
        max_chunk_streams: int,
        max_pending_bytes: int,
        window_ack_size: int,
        compress_headers: bool,
    ) -> None:
        self._buffer = ReceiveBuffer()
        self._decoder = ChunkDecoder(max_message_size, max_chunk_streams, max_pending_bytes)
        self._encoder = ChunkEncoder(compress=compress_headers)
        self._outbox: list[bytes] = []
        self._dead = False
        self.window_ack_size = window_ack_size
        #: How often the peer wants acknowledgements (0: never asked).
        self.peer_window_ack_size = 0
        self.bytes_received = 0
        self.bytes_sent = 0
        self.messages_received = 0
        self.messages_sent = 0
        self._last_ack = 0

    # -- properties -------------------------------------------------------------------

    @property
    def handshake_done(self) -> bool:
        return self._handshake.done

    @property
    def out_chunk_size(self) -> int:
        """The chunk size we use for what we send."""
        return self._encoder.chunk_size

    @property
    def in_chunk_size(self) -> int:
        """The chunk size the peer uses."""
        return self._decoder.chunk_size

    @property
    def pending_bytes(self) -> int:
        """Received bytes held for unfinished messages (bounded by the limits)."""
        return self._decoder.pending_bytes + len(self._buffer)

    # -- input ------------------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """Process received bytes and return the events they complete.

        Raises:
            RemoteProtocolError: the peer broke the protocol (the session is then dead).
            LocalProtocolError: called after a protocol error.
        """
        if self._dead:
            raise LocalProtocolError("receive_data() after a protocol error")
        try:
            return self._receive(data)
        except RemoteProtocolError:
            self._dead = True
            raise

    def _receive(self, data: bytes | bytearray | memoryview) -> list[Event]:
        self.bytes_received += len(data)
        events: list[Event] = []
        if not self._handshake.done:
            self._buffer.feed(data)
            reply = self._handshake.receive(self._buffer)
            if reply:
                self._queue(reply)
            if not self._handshake.done:
                return events
            events.append(HandshakeCompleted(self._handshake.digest, bytes(self._handshake.peer_version)))
            self._on_handshake_done()
            data = self._buffer.take_all()
            self._buffer = ReceiveBuffer()  # let the handshake's bytes go (idle connections add up)
        self._decoder.feed(data)
        decoder = self._decoder
        while True:
            message = decoder.next_message()
            if message is None:
                break
            self.messages_received += 1
            self._dispatch(message, events)
        self._maybe_acknowledge()
        return events

    def _on_handshake_done(self) -> None:
        pass

    def _maybe_acknowledge(self) -> None:
        window = self.peer_window_ack_size
        if window and self.bytes_received - self._last_ack >= window:
            self._last_ack = self.bytes_received
            self._send_control(control.acknowledgement(self.bytes_received))

    def _dispatch(self, message: Message, events: list[Event]) -> None:
        type_id = message.type_id
        if type_id == MessageType.VIDEO:
            events.append(VideoReceived(message.message_stream_id, message.timestamp, message.payload))
        elif type_id == MessageType.AUDIO:
            events.append(AudioReceived(message.message_stream_id, message.timestamp, message.payload))
        elif type_id in (MessageType.COMMAND_AMF0, MessageType.COMMAND_AMF3):
            events.append(commands.parse_command(message))
        elif type_id in (MessageType.DATA_AMF0, MessageType.DATA_AMF3):
            events.append(commands.parse_data(message))
        elif type_id == MessageType.AGGREGATE:
            for sub in split_aggregate(message):
                self._dispatch(sub, events)
        elif type_id in (MessageType.SHARED_OBJECT_AMF0, MessageType.SHARED_OBJECT_AMF3):
            events.append(commands.parse_shared_object(message))
        else:
            self._control(message, events)

    def _control(self, message: Message, events: list[Event]) -> None:
        type_id = message.type_id
        payload = message.payload
        if type_id == MessageType.SET_CHUNK_SIZE:
            size = control.parse_u32(payload, "Set Chunk Size")
            self._decoder.set_chunk_size(size)
            events.append(ChunkSizeChanged(size))
        elif type_id == MessageType.ABORT:
            self._decoder.abort(control.parse_u32(payload, "Abort"))
        elif type_id == MessageType.ACKNOWLEDGEMENT:
            events.append(AcknowledgementReceived(control.parse_u32(payload, "Acknowledgement")))
        elif type_id == MessageType.WINDOW_ACK_SIZE:
            size = control.parse_u32(payload, "Window Acknowledgement Size")
            self.peer_window_ack_size = size
            events.append(WindowAckSizeReceived(size))
        elif type_id == MessageType.SET_PEER_BANDWIDTH:
            size, limit = control.parse_peer_bandwidth(payload)
            if size != self.window_ack_size:
                self.window_ack_size = size
                self._send_control(control.window_ack_size(size))
            events.append(PeerBandwidthReceived(size, limit))
        elif type_id == MessageType.USER_CONTROL:
            self._user_control(payload, events)
        else:
            events.append(UnknownMessageReceived(type_id, message.message_stream_id, message.timestamp, payload))

    def _user_control(self, payload: bytes, events: list[Event]) -> None:
        event_type, values = control.parse_user_control(payload)
        first = values[0] if values else 0
        if event_type == UserControl.PING_REQUEST:
            self._send_control(control.user_control(UserControl.PING_RESPONSE, first))
            events.append(PingReceived(first))
        elif event_type == UserControl.PING_RESPONSE:
            events.append(PingResponseReceived(first))
        elif event_type == UserControl.SET_BUFFER_LENGTH:
            events.append(BufferLengthSet(first, values[1] if len(values) > 1 else 0))
        elif event_type in _USER_CONTROL_EVENTS:
            events.append(_USER_CONTROL_EVENTS[event_type](first))
        else:
            events.append(UnknownMessageReceived(MessageType.USER_CONTROL, 0, 0, payload))

    # -- output -----------------------------------------------------------------------

    def data_to_send(self) -> bytes:
        """Everything queued for the peer since the last call (b"" when nothing)."""
        if not self._outbox:
            return b""
        data = self._outbox[0] if len(self._outbox) == 1 else b"".join(self._outbox)
        self._outbox.clear()
        return data

    def _queue(self, data: bytes) -> None:
        self.bytes_sent += len(data)
        self._outbox.append(data)

    def _check_usable(self) -> None:
        if self._dead:
            raise LocalProtocolError("the session ended with a protocol error")
        if not self._handshake.done:
            raise LocalProtocolError("cannot send messages before the handshake is done")

    def send_message(self, message: Message, chunk_stream_id: int) -> None:
        """Queue any message on a chunk stream of our choosing."""
        self._check_usable()
        self.messages_sent += 1
        self._queue(self._encoder.encode(message, chunk_stream_id))

    def _send_control(self, message: Message) -> None:
        self.messages_sent += 1
        self._queue(self._encoder.encode(message, CONTROL_CHUNK_STREAM))

    def set_chunk_size(self, size: int) -> None:
        """Announce and start using a new outgoing chunk size."""
        self._check_usable()
        self._send_control(control.set_chunk_size(size))
        self._encoder.set_chunk_size(size)

    def send_window_ack_size(self, size: int) -> None:
        self._check_usable()
        self.window_ack_size = size
        self._send_control(control.window_ack_size(size))

    def send_peer_bandwidth(self, size: int, limit: control.BandwidthLimit = control.BandwidthLimit.DYNAMIC) -> None:
        self._check_usable()
        self._send_control(control.set_peer_bandwidth(size, limit))

    def send_user_control(self, event: UserControl, *values: int) -> None:
        """Queue a user control event (StreamBegin, StreamEOF, SetBufferLength, ...)."""
        self._check_usable()
        self._send_control(control.user_control(event, *values))

    def send_ping(self, timestamp: int) -> None:
        """Ping the peer; its answer arrives as `PingResponseReceived(timestamp)`."""
        self.send_user_control(UserControl.PING_REQUEST, timestamp)

    def abort(self, chunk_stream_id: int) -> None:
        """Tell the peer to drop the partial message on a chunk stream."""
        self._check_usable()
        self._send_control(control.abort(chunk_stream_id))

    def send_command(
        self, name: str, transaction_id: float, command_object: Any = None, *arguments: Any, message_stream_id: int = 0
    ) -> None:
        """Queue a command message (AMF0)."""
        payload = command_payload(name, transaction_id, command_object, *arguments)
        csid = COMMAND_CHUNK_STREAM if message_stream_id == 0 else DATA_CHUNK_STREAM
        self.send_message(Message(MessageType.COMMAND_AMF0, 0, message_stream_id, payload), csid)

    def send_result(self, transaction_id: float, command_object: Any = None, *arguments: Any,
                    message_stream_id: int = 0) -> None:
        """Answer a command with `_result`."""
        self.send_command("_result", transaction_id, command_object, *arguments, message_stream_id=message_stream_id)

    def send_error(self, transaction_id: float, command_object: Any = None, *arguments: Any,
                   message_stream_id: int = 0) -> None:
        """Answer a command with `_error`."""
        self.send_command("_error", transaction_id, command_object, *arguments, message_stream_id=message_stream_id)

    def send_status(
        self, message_stream_id: int, code: str, description: str = "", level: str = "status", **extra: Any
    ) -> None:
        """Queue `onStatus` with an info object on a NetStream."""
        info = status_info(level, code, description, **extra)
        self.send_command("onStatus", 0, None, info, message_stream_id=message_stream_id)

    def send_audio(self, message_stream_id: int, timestamp: int, payload: bytes) -> None:
        """Queue an audio message (an FLV audio tag body)."""
        self.send_message(Message(MessageType.AUDIO, timestamp, message_stream_id, payload), AUDIO_CHUNK_STREAM)

    def send_video(self, message_stream_id: int, timestamp: int, payload: bytes) -> None:
        """Queue a video message (an FLV video tag body)."""
        self.send_message(Message(MessageType.VIDEO, timestamp, message_stream_id, payload), VIDEO_CHUNK_STREAM)

    def send_data(self, message_stream_id: int, name: str, *values: Any, timestamp: int = 0) -> None:
        """Queue a data message: `name` (e.g. "onMetaData") then AMF0 values."""
        payload = amf0.encode_all((name, *values))
        self.send_message(Message(MessageType.DATA_AMF0, timestamp, message_stream_id, payload), DATA_CHUNK_STREAM)


class ServerProtocol(_Session):
    """The server side of one RTMP connection.

    Args:
        max_message_size: largest message accepted from the client.
        max_chunk_streams: most chunk streams the client may use.
        max_pending_bytes: most bytes of unfinished messages held.
        out_chunk_size: chunk size announced in `accept_connect`.
        window_ack_size: acknowledgement window we ask the client to use.
        peer_bandwidth: what Set Peer Bandwidth announces.
    """

    def __init__(
        self,
        *,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        max_chunk_streams: int = DEFAULT_MAX_CHUNK_STREAMS,
        max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES,
        out_chunk_size: int = DEFAULT_OUT_CHUNK_SIZE,
        window_ack_size: int = DEFAULT_WINDOW_ACK_SIZE,
        peer_bandwidth: int = DEFAULT_PEER_BANDWIDTH,
        handshake: ServerHandshake | None = None,
    ) -> None:
        super().__init__(
            max_message_size=max_message_size,
            max_chunk_streams=max_chunk_streams,
            max_pending_bytes=max_pending_bytes,
            window_ack_size=window_ack_size,
            compress_headers=False,
        )
        self._handshake = handshake or ServerHandshake()
        self.announced_chunk_size = out_chunk_size
        self.peer_bandwidth = peer_bandwidth
        self.connect_event: ConnectRequested | None = None
        #: Message stream ids handed out by createStream and not yet deleted.
        self.stream_ids: set[int] = set()
        self._next_stream_id = 1
        #: Ids reserved for createStream requests not answered yet, in order. Reserving
        #: at parse time lets a client pipeline play/publish behind createStream.
        self._reserved: deque[int] = deque()

    def _dispatch(self, message: Message, events: list[Event]) -> None:
        before = len(events)
        super()._dispatch(message, events)
        for index in range(before, len(events)):
            event = events[index]
            if isinstance(event, ConnectRequested):
                if self.connect_event is None:
                    self.connect_event = event
                continue
            refusal = self._check_state(event)
            if refusal is not None:
                events[index] = refusal
            elif isinstance(event, CreateStreamRequested):
                stream_id = self.new_stream_id()
                self._reserved.append(stream_id)
                self.stream_ids.add(stream_id)
            elif isinstance(event, DeleteStreamRequested):
                self.stream_ids.discard(event.stream_id)

    def _check_state(self, event: Event) -> CommandOutOfState | None:
        """The command state table: what this event may do now (None: allowed)."""
        name = _NEEDS_CONNECT.get(type(event))
        if name is None:
            return None
        if self.connect_event is None:
            return CommandOutOfState(event, f"{name} before connect", True)
        if isinstance(event, CreateStreamRequested) and len(self.stream_ids) >= DEFAULT_MAX_STREAMS:
            return CommandOutOfState(event, f"createStream past {DEFAULT_MAX_STREAMS} open streams", False)
        if isinstance(event, _ON_A_STREAM):
            stream_id = event.message_stream_id
        elif isinstance(event, DeleteStreamRequested):
            stream_id = event.stream_id
        else:
            return None
        if stream_id not in self.stream_ids:
            return CommandOutOfState(event, f"{name} on unknown stream {stream_id}", False)
        return None

    def new_stream_id(self) -> int:
        """Take the next message stream id (the one place ids are allocated)."""
        stream_id = self._next_stream_id
        self._next_stream_id += 1
        return stream_id

    def accept_connect(
        self,
        event: ConnectRequested,
        properties: dict[str, Any] | None = None,
        information: dict[str, Any] | None = None,
        fourcc_list: list[str] | None = None,
        capabilities: Capabilities | None = None,
    ) -> None:
        """Accept `connect`: window sizes, our chunk size, then `_result` with Success.

        Args:
            properties: extra fields for the result's properties object.
            information: extra fields for the result's information object.
            fourcc_list: enhanced-RTMP codecs we accept; sent only to a client that
                announced its own `fourCcList`.
            capabilities: our Enhanced RTMP capabilities (`fourCcList`, FourCC info
                maps, `capsEx`), stated in the properties object only to a client that
                announced E-RTMP itself: a legacy client gets the legacy answer.
        """
        self.send_window_ack_size(self.window_ack_size)
        self.send_peer_bandwidth(self.peer_bandwidth)
        self.set_chunk_size(self.announced_chunk_size)
        props: dict[str, Any] = {"fmsVer": SERVER_FMS_VERSION, "capabilities": SERVER_CAPABILITIES, "mode": 1}
        if fourcc_list is not None and event.fourcc_list is not None:
            props["fourCcList"] = list(fourcc_list)
        if capabilities is not None and event.capabilities.announced:
            props.update(capabilities.to_object())
        props.update(properties or {})
        info = status_info(
            "status", StatusCode.CONNECT_SUCCESS, "Connection succeeded.", objectEncoding=event.object_encoding
        )
        info.update(information or {})
        self.send_result(event.transaction_id, props, info)

    def send_reconnect_request(self, tc_url: str | None = None, description: str = "") -> None:
        """Queue the E-RTMP v2 reconnect request: `onStatus` on the NetConnection (message
        stream 0) with NetConnection.Connect.ReconnectRequest, level "status", and the
        `tcUrl` to connect to (none: the same one). Only for a client that announced
        capsEx Reconnect: the caller checks (`Capabilities.reconnect`)."""
        extra = {"tcUrl": tc_url} if tc_url else {}
        self.send_status(0, StatusCode.CONNECT_RECONNECT_REQUEST,
                         description or "The server asks the client to reconnect.", **extra)

    def reject_connect(self, event: ConnectRequested, description: str = "Connection rejected.") -> None:
        """Refuse `connect` with `_error` NetConnection.Connect.Rejected."""
        self.send_error(event.transaction_id, None, status_info("error", StatusCode.CONNECT_REJECTED, description))

    def stream_id_for(self, event: CreateStreamRequested) -> int:
        """The message stream id the oldest unanswered createStream will get (reserved when
        it was received, so commands pipelined behind it already find their stream)."""
        return self._reserved[0] if self._reserved else self._next_stream_id

    def accept_create_stream(self, event: CreateStreamRequested, stream_id: int | None = None) -> int:
        """Answer the oldest unanswered `createStream` with its reserved message stream id
        (or `stream_id`), returned."""
        reserved = self._reserved.popleft() if self._reserved else None
        if stream_id is None:
            stream_id = reserved if reserved is not None else self.new_stream_id()
        elif reserved is not None and reserved != stream_id:
            self.stream_ids.discard(reserved)
        self._next_stream_id = max(self._next_stream_id, stream_id + 1)
        self.stream_ids.add(stream_id)
        self.send_result(event.transaction_id, None, float(stream_id))
        return stream_id

    def reject_create_stream(self, event: CreateStreamRequested, description: str = "Stream refused.") -> None:
        """Refuse the oldest unanswered `createStream` (its reserved id is given up)."""
        if self._reserved:
            self.stream_ids.discard(self._reserved.popleft())
        self.send_error(event.transaction_id, None, status_info("error", StatusCode.CALL_FAILED, description))

    def accept_publish(self, event: PublishRequested, description: str = "") -> None:
        """StreamBegin, then onStatus NetStream.Publish.Start."""
        self.send_user_control(UserControl.STREAM_BEGIN, event.message_stream_id)
        self.send_status(
            event.message_stream_id,
            StatusCode.PUBLISH_START,
            description or f"{event.name} is now published.",
            details=event.name,
        )

    def reject_publish(
        self, event: PublishRequested, code: str = StatusCode.PUBLISH_BAD_NAME, description: str = ""
    ) -> None:
        """onStatus error (NetStream.Publish.BadName by default)."""
        self.send_status(
            event.message_stream_id, code, description or f"{event.name} is already publishing.", level="error"
        )

    def accept_play(self, event: PlayRequested, description: str = "") -> None:
        """StreamBegin, Play.Reset (if asked), Play.Start, |RtmpSampleAccess.

        No `onStatus NetStream.Data.Start` data message: ffmpeg's FLV demuxer turns any
        data message it does not know into a stream of its own ("Data: none"), which
        breaks ``-map 0`` and keeps it waiting for more streams. ``|RtmpSampleAccess`` it
        knows (nginx-rtmp sends the same)."""
        msid = event.message_stream_id
        self.send_user_control(UserControl.STREAM_BEGIN, msid)
        if event.reset:
            self.send_status(msid, StatusCode.PLAY_RESET, f"Playing and resetting {event.name}.", details=event.name)
        self.send_status(
            msid, StatusCode.PLAY_START, description or f"Started playing {event.name}.", details=event.name
        )
        self.send_data(msid, "|RtmpSampleAccess", True, True)

    def reject_play(
        self, event: PlayRequested, code: str = StatusCode.PLAY_STREAM_NOT_FOUND, description: str = ""
    ) -> None:
        """onStatus error (NetStream.Play.StreamNotFound by default)."""
        self.send_status(event.message_stream_id, code, description or f"{event.name} is not available.",
                         level="error", details=event.name)


class ClientProtocol(_Session):
    """The client side of one RTMP connection; C0+C1 are queued at construction.

    Commands that expect an answer return their transaction id, which the matching
    `ResultReceived` / `ErrorReceived` event carries.
    """

    def __init__(
        self,
        *,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        max_chunk_streams: int = DEFAULT_MAX_CHUNK_STREAMS,
        max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES,
        window_ack_size: int = DEFAULT_WINDOW_ACK_SIZE,
        handshake: ClientHandshake | None = None,
    ) -> None:
        super().__init__(
            max_message_size=max_message_size,
            max_chunk_streams=max_chunk_streams,
            max_pending_bytes=max_pending_bytes,
            window_ack_size=window_ack_size,
            compress_headers=True,
        )
        self._handshake = handshake or ClientHandshake()
        self._next_transaction = 1
        self._queue(self._handshake.start())

    def _transaction(self) -> int:
        tid = self._next_transaction
        self._next_transaction += 1
        return tid

    def connect(self, app: str, tc_url: str, **properties: Any) -> int:
        """Send `connect`; extra keyword arguments go into the command object."""
        obj: dict[str, Any] = {
            "app": app,
            "type": "nonprivate",
            "flashVer": "FMLE/3.0 (compatible; neurtmp)",
            "tcUrl": tc_url,
            "fpad": False,
            "capabilities": 15.0,
            "audioCodecs": 4071.0,
            "videoCodecs": 252.0,
            "videoFunction": 1.0,
            "objectEncoding": 0.0,
        }
        obj.update(properties)
        tid = self._transaction()
        self.send_command("connect", tid, obj)
        return tid

    def call(self, name: str, *arguments: Any, command_object: Any = None, message_stream_id: int = 0) -> int:
        """Call a remote procedure; returns the transaction id its answer will carry."""
        tid = self._transaction()
        self.send_command(name, tid, command_object, *arguments, message_stream_id=message_stream_id)
        return tid

    def create_stream(self) -> int:
        """Send `createStream`; the `_result` carries the new message stream id."""
        return self.call("createStream")

    def release_stream(self, name: str) -> int:
        return self.call("releaseStream", name)

    def fc_publish(self, name: str) -> int:
        return self.call("FCPublish", name)

    def fc_unpublish(self, name: str) -> int:
        return self.call("FCUnpublish", name)

    def delete_stream(self, message_stream_id: int) -> None:
        self.send_command("deleteStream", 0, None, float(message_stream_id))

    def close_stream(self, message_stream_id: int) -> None:
        self.send_command("closeStream", 0, None, message_stream_id=message_stream_id)

    def publish(self, message_stream_id: int, name: str, publish_type: str = "live") -> None:
        """Send `publish`; the answer is onStatus NetStream.Publish.Start (or an error)."""
        self.send_command("publish", 0, None, name, publish_type, message_stream_id=message_stream_id)

    def play(
        self, message_stream_id: int, name: str, start: float = -2, duration: float = -1, reset: bool = True
    ) -> None:
        """Send `play`; the answer is onStatus NetStream.Play.Start (or an error).

        `start` (>= 0) and `duration` (> 0) are milliseconds, as on the wire."""
        self.send_command("play", 0, None, name, float(start), float(duration), reset,
                          message_stream_id=message_stream_id)

    def pause(self, message_stream_id: int, paused: bool, milliseconds: float = 0) -> None:
        self.send_command("pause", 0, None, paused, float(milliseconds), message_stream_id=message_stream_id)

    def seek(self, message_stream_id: int, milliseconds: float) -> None:
        self.send_command("seek", 0, None, float(milliseconds), message_stream_id=message_stream_id)

    def set_buffer_length(self, message_stream_id: int, milliseconds: int) -> None:
        self.send_user_control(UserControl.SET_BUFFER_LENGTH, message_stream_id, milliseconds)
