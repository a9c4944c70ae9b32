"""The NetStream state table (sans-IO): what a command may do to a stream in each state.

As h2 does for HTTP/2 streams, every change of a NetStream's state goes through one
table, ``(state, command) -> next state``; a pair that is not in it is the peer's error
(a publish on a stream that plays, a pause on a stream that does not play, media on a
stream that does not publish), answered or ignored by the caller, never a crash.

The commands here are what the application made of the client's: PUBLISH and PLAY are
the accepted ones (a refused publish or play changes nothing).
"""

from __future__ import annotations

import enum

__all__ = ["NetStreamCommand", "NetStreamState", "next_state"]


class NetStreamState(enum.Enum):
    IDLE = "idle"  # created, or stopped: may publish or play
    PUBLISHING = "publishing"
    PLAYING = "playing"
    PAUSED = "paused"  # playing, paused by the client
    CLOSED = "closed"  # deleted (deleteStream, disconnect): nothing more


class NetStreamCommand(enum.Enum):
    PUBLISH = "publish"
    UNPUBLISH = "unpublish"
    PLAY = "play"
    STOP = "stop"  # the play ends (closeStream, a new play, its duration, the server)
    PAUSE = "pause"
    RESUME = "resume"
    MEDIA = "media"  # audio, video or data published on the stream
    CLOSE = "closeStream"
    DELETE = "deleteStream"


_S = NetStreamState
_C = NetStreamCommand

_TABLE: dict[tuple[NetStreamState, NetStreamCommand], NetStreamState] = {
    (_S.IDLE, _C.PUBLISH): _S.PUBLISHING,
    (_S.IDLE, _C.PLAY): _S.PLAYING,
    (_S.PLAYING, _C.PLAY): _S.PLAYING,  # a new play replaces the first
    (_S.PAUSED, _C.PLAY): _S.PLAYING,
    (_S.PUBLISHING, _C.MEDIA): _S.PUBLISHING,
    (_S.PUBLISHING, _C.UNPUBLISH): _S.IDLE,
    (_S.PLAYING, _C.STOP): _S.IDLE,
    (_S.PAUSED, _C.STOP): _S.IDLE,
    (_S.PLAYING, _C.PAUSE): _S.PAUSED,
    (_S.PAUSED, _C.PAUSE): _S.PAUSED,  # pausing twice changes nothing
    (_S.PAUSED, _C.RESUME): _S.PLAYING,
    (_S.PLAYING, _C.RESUME): _S.PLAYING,
    **{(state, _C.CLOSE): _S.IDLE for state in (_S.IDLE, _S.PUBLISHING, _S.PLAYING, _S.PAUSED)},
    **{(state, _C.DELETE): _S.CLOSED for state in (_S.IDLE, _S.PUBLISHING, _S.PLAYING, _S.PAUSED)},
}


def next_state(state: NetStreamState, command: NetStreamCommand) -> NetStreamState | None:
    """The state `command` leads to from `state`; None when the table does not allow it."""
    return _TABLE.get((state, command))
