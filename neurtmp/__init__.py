"""neurtmp: an RTMP server framework and live-streaming toolkit for Python."""

from __future__ import annotations

from neurtmp._version import __version__
from neurtmp.errors import (
    AMFError,
    ChunkError,
    CodecError,
    ConfigError,
    ConnectionClosed,
    DecodeError,
    EncodeError,
    EncoderNotFound,
    HandshakeError,
    LimitExceeded,
    LocalProtocolError,
    NeurtmpError,
    ProtocolError,
    RemoteProtocolError,
)

__all__ = [
    "AMFError",
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
