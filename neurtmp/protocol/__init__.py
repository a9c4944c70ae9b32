"""The sans-IO RTMP protocol core: bytes in -> events out, calls in -> bytes out.

Nothing in this package opens a socket, starts a thread or logs. `ServerProtocol` and
`ClientProtocol` hold all the state of one connection; `Packet` carries a media message
whose wire bytes are shared by every player.
"""

from __future__ import annotations

from neurtmp.protocol import amf0, amf3, ertmp, events
from neurtmp.protocol.amf_types import XML, Dictionary, ECMAArray, TypedObject, Undefined, Vector, XMLDocument
from neurtmp.protocol.capabilities import Capabilities, CapsEx, FourCcInfo
from neurtmp.protocol.chunk import ChunkDecoder, ChunkEncoder, encode_message
from neurtmp.protocol.commands import StatusCode
from neurtmp.protocol.connection import ClientProtocol, ServerProtocol
from neurtmp.protocol.control import UserControl
from neurtmp.protocol.events import *  # noqa: F403
from neurtmp.protocol.message import Message, MessageType
from neurtmp.protocol.packet import Packet

__all__ = [
    "Capabilities",
    "CapsEx",
    "ChunkDecoder",
    "ChunkEncoder",
    "ClientProtocol",
    "Dictionary",
    "ECMAArray",
    "FourCcInfo",
    "Message",
    "MessageType",
    "Packet",
    "ServerProtocol",
    "StatusCode",
    "TypedObject",
    "Undefined",
    "UserControl",
    "Vector",
    "XML",
    "XMLDocument",
    "amf0",
    "amf3",
    "encode_message",
    "ertmp",
    *events.__all__,
]
