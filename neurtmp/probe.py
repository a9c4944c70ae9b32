"""A blocking, single-connection RTMP endpoint that reports what a client sends.

`neurtmp probe` uses it to show what an encoder or player does, message by message:
it accepts connect, createStream and publish, refuses play (nothing to play here),
answers the FMLE-style commands encoders send, and yields every protocol event. It
is also the smallest complete example of driving `ServerProtocol` with a socket.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

from neurtmp.protocol import events as ev
from neurtmp.protocol.connection import ServerProtocol

__all__ = ["probe_connection"]

#: Bytes read from the socket at once.
_RECV_SIZE = 65536


def probe_connection(sock: socket.socket, protocol: ServerProtocol | None = None) -> Iterator[ev.Event]:
    """Serve one client on a connected blocking socket, yielding its events.

    Ends when the client closes the connection. Socket timeouts propagate.

    Raises:
        RemoteProtocolError: the client broke the protocol.
    """
    rtmp = protocol or ServerProtocol()
    while True:
        data = sock.recv(_RECV_SIZE)
        if not data:
            return
        for event in rtmp.receive_data(data):
            _answer(rtmp, event)
            yield event
        out = rtmp.data_to_send()
        if out:
            sock.sendall(out)


def _answer(rtmp: ServerProtocol, event: ev.Event) -> None:
    if isinstance(event, ev.ConnectRequested):
        rtmp.accept_connect(event)
    elif isinstance(event, ev.CreateStreamRequested):
        rtmp.accept_create_stream(event)
    elif isinstance(event, ev.PublishRequested):
        rtmp.accept_publish(event)
    elif isinstance(event, ev.PlayRequested):
        rtmp.reject_play(event)
    elif isinstance(event, (ev.ReleaseStreamRequested, ev.FCPublishRequested, ev.CheckBandwidthRequested)):
        rtmp.send_result(event.transaction_id, None)
    elif isinstance(event, ev.CallReceived) and event.transaction_id:
        rtmp.send_error(event.transaction_id, None, {"level": "error", "code": "NetConnection.Call.Failed",
                                                     "description": f"{event.name} is not served by the probe"})
