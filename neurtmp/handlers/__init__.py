"""Handler base classes: the only classes a neurtmp user writes.

Each handler has one `handle(...)` method; a plain callable with the same signature is
accepted wherever a handler is. Every handler is optional: a missing one is not called.

The first seven mirror the neuray RTMP server API (`mi::rtmp`); `PublishEventHandler`
and `MediaEventHandler` are neurtmp extensions that let handler code receive what
clients publish, so the live app is built from this API alone.

Handlers run in the connection's greenlet (synchronous-style code; don't block it with
real blocking calls). Render handlers run in gevent's thread pool (drawing is CPU work
that releases the GIL: NumPy, PyAV, torch) unless their class sets ``threaded = False``;
frame handlers run on the hub unless they set ``threaded = True``. A handler running in
the thread pool must not call a stream's send methods; a frame handler returns what the
frame worker should send.

Publish and media handlers form chains (each stream's, then the server's): several
observers (the live app, a relay, a recorder, user code) see one publish. Access handlers
(`AccessEventHandler`, server-wide) are asked before any of them whether a publish or a
play may go ahead at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from neurtmp.codec import VideoData
    from neurtmp.connection import Connection
    from neurtmp.protocol.packet import Packet
    from neurtmp.stream import Stream

__all__ = [
    "AccessEventHandler",
    "AccessHandler",
    "CallHandler",
    "ConnectHandler",
    "FrameHandler",
    "MediaHandler",
    "PauseHandler",
    "PlayHandler",
    "PublishHandler",
    "RenderHandler",
    "StreamHandler",
    "CallEventHandler",
    "ConnectEventHandler",
    "FrameEventHandler",
    "MediaEventHandler",
    "PauseEventHandler",
    "PlayEventHandler",
    "PublishEventHandler",
    "Refusal",
    "RenderEventHandler",
    "StreamEventHandler",
]


@dataclass(frozen=True)
class Refusal:
    """A refusal with its own status, returned by a publish or play handler instead of
    False: the client gets onStatus `code` (level "error") with `description`.

    Example: ``return Refusal("NetStream.Publish.Rejected", "403 too many streams")``.
    A Refusal is false, so code that tests the result as a bool still works.
    """

    code: str
    description: str = ""

    def __bool__(self) -> bool:
        return False


class ConnectEventHandler:
    """Decides who owns a new connection (neuray `IConnect_event_handler`).

    Installed on a server with `server.install(handler)`; several may be installed and
    are asked in order until one returns True. If none does, the client gets `_error`
    NetConnection.Connect.Rejected. A handler that returns a `Refusal` refuses the
    connection outright (no later handler is asked; its description goes to the client).
    When the connection closes, the handler that claimed it is called again with
    ``is_create=False`` (the return value is then ignored).
    """

    def handle(
        self, is_create: bool, connection: Connection, command_arguments: dict[str, Any], user_arguments: list[Any]
    ) -> bool:
        """Args:
            is_create: True on connect, False on close.
            connection: the client's connection.
            command_arguments: the connect command object (app, tcUrl, flashVer, ...).
            user_arguments: optional extra arguments after it.

        Returns:
            True to accept and own the connection.
        """
        return False


class StreamEventHandler:
    """Called on createStream (False refuses it) and on deleteStream / close.

    Registered with `connection.register_stream_event_handler(handler)`.
    """

    def handle(self, is_create: bool, stream: Stream, command_arguments: Any) -> bool:
        return True


class CallEventHandler:
    """Answers a client's remote procedure call.

    Registered with `connection.register_remote_call_handler(handler, procedure_name)`;
    ``procedure_name=None`` makes it the default for names without their own handler.
    """

    def handle(
        self, connection: Connection, procedure_name: str, command_arguments: Any, user_arguments: list[Any]
    ) -> tuple[bool, Any]:
        """Returns:
            (ok, response): `_result` with the response when ok, `_error` otherwise.
        """
        return False, None


class PlayEventHandler:
    """Filters play and stop on a stream (`stream.register_play_event_handler`).

    True on start accepts the play and starts the render loop and frame worker; False on
    start refuses it (the client gets NetStream.Play.StreamNotFound). On stop (closeStream,
    a new play, deleteStream, disconnect, the play's duration reached, or a render or
    frame handler ending the stream) the loops have already stopped and the return value
    is ignored. Returning ``(True, video_data)`` on start also sends that initialisation
    frame.
    """

    def handle(self, is_start: bool, stream: Stream) -> bool | tuple[bool, VideoData | None]:
        return True


class PauseEventHandler:
    """Filters pause and resume (`stream.register_pause_event_handler`).

    True on pause stops render and frame calls; True on resume restarts them.
    """

    def handle(self, is_pause: bool, stream: Stream) -> bool:
        return True


class RenderEventHandler:
    """Draws the next frame; called about `render_rate` times a second while playing.

    Runs in a worker thread by default: draw into a new array and swap it in whole, so a
    frame handler reading it never sees half a picture. Returning False stops the stream.
    """

    #: Run `handle` in gevent's thread pool (False: on the hub, for cheap work).
    threaded = True

    def handle(self, stream: Stream) -> bool:
        return True


class FrameEventHandler:
    """Hands over the next encoded frame; called by a separate worker at the frame rate.

    Returns a `VideoData` (or raw FLV video tag body bytes) to send, None to send nothing
    this tick, or False to stop the stream. ``outqueue_is_full`` is True when the client
    is not draining what was sent: send nothing or a tiny frame then.
    """

    #: Run `handle` in gevent's thread pool (for GIL-releasing CPU work).
    threaded = False

    def handle(self, stream: Stream, outqueue_is_full: bool) -> VideoData | bytes | None | bool:
        return None


class PublishEventHandler:
    """neurtmp extension: observes and filters publish and unpublish.

    Added to a stream's chain with `stream.register_publish_event_handler(handler)`, or to
    every stream's with `server.register_publish_event_handler(handler)`. On start each
    handler in the chain is asked in order; all must return True (NetStream.Publish.Start),
    and when one returns False the client gets NetStream.Publish.BadName (or the status of
    a returned `Refusal`), and the handlers
    that had accepted are called again with ``is_start=False``. On unpublish every handler
    that accepted is called with ``is_start=False`` (the return value is then ignored).
    """

    def handle(self, is_start: bool, stream: Stream, name: str, publish_type: str) -> bool:
        return True


class AccessEventHandler:
    """neurtmp extension: may this publish or play go ahead at all?

    Registered server-wide with `server.register_access_event_handler(handler)`; asked in
    order, before the stream's publish chain or play handler (so before the live app
    decides anything, takeover included), with `action` "publish" or "play". The name is
    `stream.get_stream_name()` (query string included), the publish type
    `stream.publish_type`. Return True to let it go on; False or a `Refusal` refuses it
    (by default NetStream.Publish.Rejected / NetStream.Play.Failed, "403 access refused").
    A handler may `stream.rename(...)` the stream before the handlers after it see it. An
    exception refuses too (fail closed). Asked on start only: to hear of the end, use a
    publish or media chain link or a play observer.
    """

    def handle(self, action: str, stream: Stream) -> bool | Refusal:
        return True


class MediaEventHandler:
    """neurtmp extension: receives each audio, video and data message a client publishes.

    Added to a stream's chain with `stream.register_media_event_handler(handler)`, or to
    every stream's with `server.register_media_event_handler(handler)`. The `Packet` holds
    the payload once; pass it on to players with `stream.send_packet(packet)`,
    `neurtmp.broadcast`, or a `neurtmp.FanOut` (one append per message however many
    players), which share its wire bytes among them. Data messages arrive as a
    `neurtmp.DataPacket`, decoded (`name`, `values`, `metadata`), ``@setDataFrame``
    unwrapped.
    """

    def handle(self, stream: Stream, packet: Packet) -> None:
        return None


# -- What a handler parameter takes: an object with `handle(...)` (any of the classes
# above, or any class with that method) or a plain callable with the same signature.
# Positional-only, so the parameter names of user code don't matter.


class _HandlesConnect(Protocol):
    def handle(self, is_create: bool, connection: Connection, command_arguments: Any, user_arguments: Any, /
               ) -> Any: ...


class _HandlesStream(Protocol):
    def handle(self, is_create: bool, stream: Stream, command_arguments: Any, /) -> Any: ...


class _HandlesCall(Protocol):
    def handle(self, connection: Connection, procedure_name: str, command_arguments: Any, user_arguments: Any, /
               ) -> Any: ...


class _HandlesStart(Protocol):  # play, pause, and play observers
    def handle(self, is_start: bool, stream: Stream, /) -> Any: ...


class _HandlesRender(Protocol):
    def handle(self, stream: Stream, /) -> Any: ...


class _HandlesFrame(Protocol):
    def handle(self, stream: Stream, outqueue_is_full: bool, /) -> Any: ...


class _HandlesPublish(Protocol):
    def handle(self, is_start: bool, stream: Stream, name: str, publish_type: str, /) -> Any: ...


class _HandlesAccess(Protocol):
    def handle(self, action: str, stream: Stream, /) -> Any: ...


class _HandlesMedia(Protocol):
    def handle(self, stream: Stream, packet: Packet, /) -> Any: ...


ConnectHandler = _HandlesConnect | Callable[[bool, "Connection", Any, Any], Any]
StreamHandler = _HandlesStream | Callable[[bool, "Stream", Any], Any]
CallHandler = _HandlesCall | Callable[["Connection", str, Any, Any], Any]
#: Play and pause handlers, and server-wide play observers: ``(is_start, stream)``.
PlayHandler = _HandlesStart | Callable[[bool, "Stream"], Any]
PauseHandler = PlayHandler
RenderHandler = _HandlesRender | Callable[["Stream"], Any]
FrameHandler = _HandlesFrame | Callable[["Stream", bool], Any]
PublishHandler = _HandlesPublish | Callable[[bool, "Stream", str, str], Any]
MediaHandler = _HandlesMedia | Callable[["Stream", "Packet"], Any]
#: Access handlers: ``(action, stream)`` with action "publish" or "play".
AccessHandler = _HandlesAccess | Callable[[str, "Stream"], Any]
