"""The neurtmp exception tree.

Every error neurtmp raises on purpose derives from :class:`NeurtmpError`::

    NeurtmpError
    ├─ ProtocolError
    │   ├─ LocalProtocolError     we were called wrongly (state, argument)   + ValueError
    │   └─ RemoteProtocolError    the peer sent bad bytes; has .reason
    │       ├─ HandshakeError
    │       ├─ ChunkError
    │       ├─ AMFError
    │       └─ LimitExceeded      oversize message, too many chunk streams (names the limit)
    ├─ ConnectionClosed           using a closed connection or stream     + ConnectionError
    ├─ ListenError                a server could not listen on its address + OSError
    ├─ CallError                  a remote call was answered with _error
    ├─ CodecError
    │   ├─ EncoderNotFound                                               + LookupError
    │   ├─ EncodeError
    │   └─ DecodeError
    ├─ ConfigError                                                        + ValueError
    └─ MissingExtra               an optional part is not installed       + ImportError

Errors that also derive from a builtin can be caught either way, as PyAV does it.
"""

from __future__ import annotations

__all__ = [
    "AMFError",
    "ChunkError",
    "CodecError",
    "ConfigError",
    "CallError",
    "ConnectionClosed",
    "ListenError",
    "DecodeError",
    "EncodeError",
    "EncoderNotFound",
    "HandshakeError",
    "LimitExceeded",
    "LocalProtocolError",
    "MissingExtra",
    "NeurtmpError",
    "ProtocolError",
    "RemoteProtocolError",
]


class NeurtmpError(Exception):
    """Root of every exception neurtmp raises on purpose."""


class ProtocolError(NeurtmpError):
    """Something went wrong at the RTMP protocol level."""


class LocalProtocolError(ProtocolError, ValueError):
    """The protocol object was called wrongly (bad state or argument): our fault."""


class RemoteProtocolError(ProtocolError):
    """The peer sent bytes that break RTMP: their fault. The connection should close.

    Attributes:
        reason: a short human-readable explanation, suitable for a log line.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class HandshakeError(RemoteProtocolError):
    """The C0/C1/C2 (or S0/S1/S2) handshake was malformed."""


class ChunkError(RemoteProtocolError):
    """A chunk header or chunk stream state was invalid."""


class AMFError(RemoteProtocolError):
    """An AMF0 or AMF3 value could not be decoded."""


class LimitExceeded(RemoteProtocolError):
    """The peer went past a configured limit (message size, chunk streams, ...).

    Attributes:
        limit: the name of the limit that was exceeded.
    """

    def __init__(self, reason: str, limit: str) -> None:
        super().__init__(reason)
        self.limit = limit


class ConnectionClosed(NeurtmpError, ConnectionError):
    """A closed connection or stream was used."""


class ListenError(NeurtmpError, OSError):
    """A server could not bind or listen on the address it was given."""


class CallError(NeurtmpError):
    """A command sent by the client was answered with `_error` (or an error status).

    Attributes:
        code: the status code, e.g. "NetConnection.Call.Failed".
        info: the whole info object (or other value) the server sent.
    """

    def __init__(self, message: str, code: str = "", info: object = None) -> None:
        super().__init__(message)
        self.code = code
        self.info = info


class CodecError(NeurtmpError):
    """A video or audio codec failed."""


class EncoderNotFound(CodecError, LookupError):
    """No encoder or decoder of that name is available here."""


class EncodeError(CodecError):
    """Encoding a frame failed."""


class DecodeError(CodecError):
    """Decoding a frame failed."""


class ConfigError(NeurtmpError, ValueError):
    """A configuration value is invalid."""


class MissingExtra(NeurtmpError, ImportError):
    """An optional part of neurtmp needs packages that are not installed: the message
    names the extra that brings them (``pip install 'neurtmp[codec]'``).

    Attributes:
        extra: the extra's name ("codec", "ingest").
    """

    def __init__(self, what: str, extra: str, missing: str | None = None) -> None:
        module = f" (no module {missing!r})" if missing else ""
        super().__init__(f"{what} needs the {extra!r} extra{module}: pip install 'neurtmp[{extra}]'", name=missing)
        self.extra = extra
