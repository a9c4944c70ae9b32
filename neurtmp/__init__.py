"""neurtmp: an RTMP server framework and live-streaming toolkit for Python.

The names below are loaded on first use, so `import neurtmp.protocol` (the sans-IO core)
does not pull in gevent, PyAV or NumPy, and a server that never encodes never loads PyAV.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from neurtmp._version import __version__
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
    MissingExtra,
    NeurtmpError,
    ProtocolError,
    RemoteProtocolError,
)
from neurtmp.lazy import lazy_attributes

if TYPE_CHECKING:
    from neurtmp.client import Client, RtmpUrl, connect, parse_rtmp_url, reconnect_target
    from neurtmp.codec.video_data import VideoData
    from neurtmp.connection import Connection
    from neurtmp.fanout import FanOut, broadcast
    from neurtmp.flv_player import FlvPlayer
    from neurtmp.protocol import events
    from neurtmp.protocol.capabilities import Capabilities, CapsEx, FourCcInfo
    from neurtmp.protocol.commands import StatusCode
    from neurtmp.protocol.ertmp import TrackForm, split_audio, split_video
    from neurtmp.protocol.message import MessageType
    from neurtmp.protocol.packet import DataPacket, Packet, absent_track_metadata
    from neurtmp.protocol.tracks import DEFAULT_TRACK, one_track, split_tracks
    from neurtmp.server import Factory, Server, ServerOptions
    from neurtmp.stream import Stream

#: Public name -> the module that defines it (imported on first access).
_LAZY = {
    "Client": "neurtmp.client",
    "RtmpUrl": "neurtmp.client",
    "connect": "neurtmp.client",
    "parse_rtmp_url": "neurtmp.client",
    "reconnect_target": "neurtmp.client",
    "VideoData": "neurtmp.codec.video_data",
    "Connection": "neurtmp.connection",
    "FanOut": "neurtmp.fanout",
    "FlvPlayer": "neurtmp.flv_player",
    "StatusCode": "neurtmp.protocol.commands",
    "TrackForm": "neurtmp.protocol.ertmp",
    "split_audio": "neurtmp.protocol.ertmp",
    "split_video": "neurtmp.protocol.ertmp",
    "Capabilities": "neurtmp.protocol.capabilities",
    "CapsEx": "neurtmp.protocol.capabilities",
    "FourCcInfo": "neurtmp.protocol.capabilities",
    "MessageType": "neurtmp.protocol.message",
    "DataPacket": "neurtmp.protocol.packet",
    "Packet": "neurtmp.protocol.packet",
    "absent_track_metadata": "neurtmp.protocol.packet",
    "DEFAULT_TRACK": "neurtmp.protocol.tracks",
    "one_track": "neurtmp.protocol.tracks",
    "split_tracks": "neurtmp.protocol.tracks",
    "Factory": "neurtmp.server",
    "Server": "neurtmp.server",
    "ServerOptions": "neurtmp.server",
    "Stream": "neurtmp.stream",
    "broadcast": "neurtmp.fanout",
}


_lazy_getattr = lazy_attributes("neurtmp", _LAZY, globals())


def __getattr__(name: str) -> Any:
    if name == "events":  # the events `Client.read()` returns
        events_module = importlib.import_module("neurtmp.protocol.events")
        globals()[name] = events_module
        return events_module
    return _lazy_getattr(name)


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "AMFError",
    "CallError",
    "Capabilities",
    "CapsEx",
    "ChunkError",
    "DEFAULT_TRACK",
    "Client",
    "CodecError",
    "ConfigError",
    "Connection",
    "ConnectionClosed",
    "DataPacket",
    "DecodeError",
    "EncodeError",
    "EncoderNotFound",
    "Factory",
    "FanOut",
    "FlvPlayer",
    "FourCcInfo",
    "HandshakeError",
    "LimitExceeded",
    "ListenError",
    "LocalProtocolError",
    "MessageType",
    "MissingExtra",
    "NeurtmpError",
    "Packet",
    "ProtocolError",
    "RemoteProtocolError",
    "RtmpUrl",
    "Server",
    "ServerOptions",
    "StatusCode",
    "Stream",
    "TrackForm",
    "VideoData",
    "__version__",
    "absent_track_metadata",
    "broadcast",
    "connect",
    "events",
    "parse_rtmp_url",
    "reconnect_target",
    "one_track",
    "split_audio",
    "split_tracks",
    "split_video",
]
