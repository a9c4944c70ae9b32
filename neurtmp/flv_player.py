"""FlvPlayer: a player that reads FLV over a socket (HTTP-FLV, WebSocket-FLV).

An HTTP-FLV player gets the same thing an RTMP player gets, as FLV tags instead of RTMP
chunks: the same fast start (metadata, sequence headers, the cached GOP), the same place
in a `neurtmp.FanOut` (a shared log of FLV tag bytes beside the RTMP-chunk logs: one
append per message whatever the number of players), and the same slow-reader policy
(its own bounded `Outbox`: key-frame skips past the soft limit, closed past the hard
limit or the send timeout). So an HTTP-FLV player costs what an RTMP player costs.

The HTTP side (the response headers, reading the request, the WebSocket handshake) is
the caller's; this object starts with the FLV file header and then only writes. Over a
WebSocket each FLV tag (and the file header) goes as one binary frame, from a log of
framed tags of its own (`WEBSOCKET_FLV_TAGS`); the client's frames are read only to see
it close.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import gevent
import gevent.event
import gevent.socket

from neurtmp._outbox import CRITICAL, Outbox
from neurtmp._wirelog import WireLog
from neurtmp.codec import flv
from neurtmp.errors import RemoteProtocolError
from neurtmp.protocol import websocket as ws
from neurtmp.protocol.message import MessageType
from neurtmp.protocol.packet import FLV_TAGS, WEBSOCKET_FLV_TAGS, DataPacket, Packet, WireFormat

if TYPE_CHECKING:
    from neurtmp.fanout import FanOut
    from neurtmp.server import Server

__all__ = ["FlvPlayer"]

log = logging.getLogger(__name__)

class FlvPlayer:
    """One FLV reader on a socket, a `neurtmp.FanOut` member (see the module docstring).

    Args:
        server: the server whose limits and flusher it uses.
        sock: the connected socket, after the HTTP response headers were sent.
        peer: the client's address, for log lines and listings.
        app, name: what it plays (for listings).
        websocket: the socket speaks WebSocket (the handshake done): FLV in binary frames.
        player_id: its client id (`Server.new_client_id`, drawn here when not given: one
            sequence with the RTMP connections' ids, so no two clients share one).
    """

    receive_audio = True
    receive_video = True
    #: FLV has no message streams; the shared log is keyed by the format alone.
    stream_id = 0

    def __init__(self, server: Server, sock: gevent.socket.socket, peer: str, app: str, name: str,
                 player_id: int | None = None, websocket: bool = False) -> None:
        options = server.options
        self.websocket = websocket
        self._format: WireFormat = WEBSOCKET_FLV_TAGS if websocket else FLV_TAGS
        self.player_id = server.new_client_id() if player_id is None else player_id
        self.peer = peer
        self.app = app
        self.name = name
        self.group: FanOut | None = None
        self.started = time.monotonic()
        self._closed = False
        self._close_reason = ""
        self._done = gevent.event.Event()
        self._header_sent = False
        self._outbox = Outbox(sock, high_water=options.outqueue_high_water, soft_limit=options.outqueue_soft_limit,
                              hard_limit=options.outqueue_hard_limit, flusher=server.flusher,
                              send_timeout=options.send_timeout, on_overflow=self.close)

    def __repr__(self) -> str:
        return f"<FlvPlayer {self.player_id} {self.app}/{self.name} {self.peer}>"

    @staticmethod
    def websocket_response(client_key: str) -> bytes:
        """The head of the 101 answer that upgrades an HTTP request with this
        Sec-WebSocket-Key to a WebSocket (then `FlvPlayer(..., websocket=True)`).

        Raises:
            ValueError: the key is not a WebSocket key.
        """
        accept = ws.accept_key(client_key)
        return (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + f"Sec-WebSocket-Accept: {accept}\r\n\r\n".encode())

    @property
    def wire_format(self) -> WireFormat:
        return self._format

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def close_reason(self) -> str:
        return self._close_reason

    @property
    def bytes_out(self) -> int:
        """Bytes sent to the client."""
        return self._outbox.bytes_sent

    def statistics(self) -> dict[str, Any]:
        """Bytes sent and queued, drops, seconds since it started."""
        outbox = self._outbox
        return {"bytes_out": outbox.bytes_sent, "bytes_queued": outbox.queued_bytes,
                "dropped_messages": outbox.dropped_messages, "uptime": time.monotonic() - self.started}

    # -- what a FanOut and the live app use ------------------------------------------------

    def follow(self, log: WireLog) -> bool:
        self._ensure_header()
        return self._outbox.follow(log)

    def unfollow(self, log: WireLog) -> None:
        if self._outbox.following is log:
            self._outbox.unfollow()

    def queue_packet(self, packet: Packet) -> bool | None:
        """Queue one message's FLV tag; None when closed, False when the slow-reader
        policy dropped it."""
        if self._closed:
            return None
        if not self._header_sent:  # joined before any media: the metadata says what comes
            is_metadata = isinstance(packet, DataPacket) and packet.metadata is not None
            self._send_header(*(_tracks([packet]) if is_metadata else (True, True)))
        return self._outbox.put(self._format.encode(packet), packet.priority)

    def send_fast_start(self, packets: Iterable[Packet]) -> int:
        """Metadata, sequence headers and the cached GOP as one burst (see
        `neurtmp.Stream.send_fast_start`); the FLV header first, its audio and video
        flags from what the stream has. Returns the video messages cut."""
        packets = list(packets)
        if not packets:
            return 0  # nothing known yet: the header waits for the stream's first message
        if not self._header_sent:
            self._send_header(*_tracks(packets))
        dropped = 0
        for packet in packets:
            if not self._closed and not self._outbox.put(self._format.encode(packet), packet.priority, burst=True):
                dropped += 1
        return dropped

    def send_status(self, code: str, description: str = "", level: str = "status", **extra: Any) -> None:
        """FLV carries no status messages: a player waits through an unpublish."""

    # -- lifecycle ----------------------------------------------------------------------

    def _ensure_header(self) -> None:
        if not self._header_sent:
            self._send_header(True, True)

    def _send_header(self, has_audio: bool, has_video: bool) -> None:
        self._header_sent = True
        header = flv.file_header(has_audio, has_video)
        self._outbox.put(ws.binary_frame(header) if self.websocket else header, CRITICAL, urgent=True)

    def serve(self, sock: gevent.socket.socket) -> None:
        """Block until the client goes away or the player is closed: HTTP-FLV clients
        send nothing after the request, so a read returning nothing means they left;
        a WebSocket client leaves with a close frame (or by closing)."""
        reader = gevent.spawn(self._watch, sock)
        try:
            self._done.wait()
        finally:
            reader.kill(block=False)
            self._outbox.close()

    def _watch(self, sock: gevent.socket.socket) -> None:
        frames = ws.FrameReader() if self.websocket else None
        reason = "client closed the connection"
        try:
            while data := sock.recv(4096):
                if frames is not None and any(f.opcode == ws.CLOSE for f in frames.receive(data)):
                    reason = "client closed the WebSocket"
                    break
        except OSError:
            pass
        except RemoteProtocolError as exc:
            reason = f"bad WebSocket frame: {exc}"
        self.close(reason)

    def close(self, reason: str = "closed by the server") -> None:
        """Stop sending and end `serve`."""
        if not self._closed:
            self._closed = True
            self._close_reason = reason
            self._done.set()


def _tracks(packets: list[Packet]) -> tuple[bool, bool]:
    """(has audio, has video) of a stream from its fast start: what it sent, and what
    its metadata announces."""
    has_audio = any(p.type_id == MessageType.AUDIO for p in packets)
    has_video = any(p.type_id == MessageType.VIDEO for p in packets)
    for packet in packets:
        metadata = packet.metadata if isinstance(packet, DataPacket) else None
        if metadata:
            has_audio = has_audio or isinstance(metadata.get("audiocodecid"), (int, float, str))
            has_video = has_video or isinstance(metadata.get("videocodecid"), (int, float, str))
    if not (has_audio or has_video):
        return True, True  # nothing known yet (a publisher still to come)
    return has_audio, has_video
