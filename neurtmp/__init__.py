"""neurtmp: an RTMP server framework and live-streaming toolkit for Python."""

from __future__ import annotations

from neurtmp._version import __version__
from neurtmp.client import Client, RtmpUrl, connect, parse_rtmp_url
from neurtmp.codec import VideoData
from neurtmp.connection import Connection
from neurtmp.errors import (
    AMFError,
    CallError,
    ChunkError,
    CodecError,
    ConfigError,
    ConnectionClosed,
    DecodeError,
    EncodeError,
    EncoderNotFound,
    HandshakeError,
    LimitExceeded,
    ListenError,
    LocalProtocolError,
    NeurtmpError,
    ProtocolError,
    RemoteProtocolError,
)
from neurtmp.protocol.message import MessageType
from neurtmp.protocol.packet import Packet
from neurtmp.server import Factory, Server, ServerOptions
from neurtmp.stream import Stream, broadcast

__all__ = [
    "AMFError",
    "CallError",
    "Client",
    "Connection",
    "Factory",
    "ListenError",
    "MessageType",
    "Packet",
    "RtmpUrl",
    "Server",
    "ServerOptions",
    "Stream",
    "VideoData",
    "broadcast",
    "connect",
    "parse_rtmp_url",
    "ChunkError",
    "CodecError",
    "ConfigError",
    "ConnectionClosed",
    "DecodeError",
    "EncodeError",
    "EncoderNotFound",
    "HandshakeError",
    "LimitExceeded",
    "LocalProtocolError",
    "NeurtmpError",
    "ProtocolError",
    "RemoteProtocolError",
    "__version__",
]
