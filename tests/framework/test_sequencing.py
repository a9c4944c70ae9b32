"""Commands out of sequence are the peer's fault: answered with a status, never a crash.

A client may pipeline `connect, createStream, publish` without waiting for answers
(ffmpeg and OBS do). When the server refuses the createStream, the publish (or play,
pause, media) that follows names a stream that does not exist."""

from __future__ import annotations

import logging
import time
from typing import Any

import gevent.socket
import pytest

import neurtmp
from neurtmp.protocol import events as ev
from neurtmp.protocol.connection import ClientProtocol

from ..conftest import serve_streams, url


def refusing_server(make_server: Any) -> neurtmp.Server:
    """Every createStream is refused by the stream handler."""
    return serve_streams(make_server, lambda stream: False)


class RawClient:
    """ClientProtocol over a socket: sends exactly what it is told, when it is told."""

    def __init__(self, server: neurtmp.Server) -> None:
        host, port = server.get_local_address().rsplit(":", 1)
        self.sock = gevent.socket.create_connection((host, int(port)), timeout=5)
        self.protocol = ClientProtocol()
        self.events: list[ev.Event] = []
        self._flush()
        self.read_until(lambda: self.protocol.handshake_done)

    def _flush(self) -> None:
        self.sock.sendall(self.protocol.data_to_send())

    def send(self) -> None:
        self._flush()

    def read_until(self, predicate: Any, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, f"not met in {timeout} s; events: {self.events}"
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            data = self.sock.recv(65536)
            assert data, f"the server closed the connection; events: {self.events}"
            self.events.extend(self.protocol.receive_data(data))
            self._flush()

    def statuses(self) -> list[str]:
        return [e.code for e in self.events if isinstance(e, ev.StatusReceived)]

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize("command", ["publish", "play"])
def test_a_command_pipelined_behind_a_refused_create_stream_is_answered(
        make_server: Any, command: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    server = refusing_server(make_server)
    client = RawClient(server)
    protocol = client.protocol
    protocol.connect("live", url(server))
    protocol.create_stream()
    if command == "publish":
        protocol.publish(1, "cam")  # the id the refused createStream would have had
    else:
        protocol.play(1, "cam")
    protocol.pause(1, True)
    protocol.send_video(1, 0, b"\x17\x01\x00\x00\x00\x00")
    client.send()  # all in one write, as a client that does not wait
    expected = "NetStream.Publish.Failed" if command == "publish" else "NetStream.Play.Failed"
    client.read_until(lambda: expected in client.statuses())
    assert any(isinstance(e, ev.ErrorReceived) for e in client.events)  # the createStream refusal
    # the connection is still served: a call is answered
    protocol.call("no_such_method")
    client.send()
    client.read_until(lambda: sum(isinstance(e, ev.ErrorReceived) for e in client.events) == 2)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]
    client.close()


def test_a_publish_sent_after_the_refusal_is_answered_too(make_server: Any) -> None:
    server = refusing_server(make_server)
    client = RawClient(server)
    protocol = client.protocol
    protocol.connect("live", url(server))
    protocol.create_stream()
    client.send()
    client.read_until(lambda: sum(isinstance(e, ev.ErrorReceived) for e in client.events) == 1)
    protocol.publish(1, "cam")  # one at a time: the stream is known not to exist
    client.send()
    client.read_until(lambda: "NetStream.Publish.Failed" in client.statuses())
    client.close()
