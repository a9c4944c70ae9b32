"""Every handler kind over real loopback sockets, driven by neurtmp's client."""

from __future__ import annotations

import time
from typing import Any

import gevent
import pytest

import neurtmp
from neurtmp.handlers import (
    CallEventHandler,
    ConnectEventHandler,
    FrameEventHandler,
    PauseEventHandler,
    PlayEventHandler,
    PublishEventHandler,
    RenderEventHandler,
    StreamEventHandler,
)
from neurtmp.protocol import events as ev

from ..conftest import accept_all, url
from ..helpers import assert_stays, wait_for


class Recorder(ConnectEventHandler):
    """Claims connections to one app and records every call."""

    def __init__(self, app: str | None = None, claim: bool = True) -> None:
        self.app = app
        self.claim = claim
        self.calls: list[tuple[bool, str]] = []
        self.connections: list[neurtmp.Connection] = []

    def handle(self, is_create: bool, connection: Any, command_arguments: Any, user_arguments: Any) -> bool:
        self.calls.append((is_create, command_arguments.get("app")))
        if is_create:
            self.connections.append(connection)
        return self.claim and (self.app is None or command_arguments.get("app") == self.app)


def test_connect_refused_when_no_handler_claims(make_server: Any) -> None:
    refuser = Recorder(claim=False)
    server = make_server(refuser)
    with pytest.raises(neurtmp.CallError) as info:
        neurtmp.connect(url(server, "nobody"), timeout=5)
    assert info.value.code == "NetConnection.Connect.Rejected"
    assert refuser.calls == [(True, "nobody")]  # asked once, never told of a close it didn't own
    wait_for(lambda: not server.get_connections())


def test_second_handler_claims_and_gets_the_close_call(make_server: Any) -> None:
    first, second = Recorder(app="other"), Recorder(app="live")
    server = make_server(first, second)
    client = neurtmp.connect(url(server), timeout=5)
    assert client.connect_result is not None
    assert client.connect_result.arguments[0]["code"] == "NetConnection.Connect.Success"
    client.close()
    wait_for(lambda: len(second.calls) == 2)
    assert first.calls == [(True, "live")]
    assert second.calls == [(True, "live"), (False, "live")]


def test_plain_callables_work_as_handlers(make_server: Any) -> None:
    def on_connect(is_create: bool, connection: Any, args: Any, user: Any) -> bool:
        if is_create:
            connection.register_remote_call_handler(lambda c, name, obj, a: (True, a[0] * 2), "double")
        return True

    server = make_server(on_connect)
    with neurtmp.connect(url(server), timeout=5) as client:
        assert client.call("double", 21) == 42


class Calls(CallEventHandler):
    def handle(self, connection: Any, procedure_name: str, command_arguments: Any, user_arguments: Any) -> Any:
        if procedure_name == "fail":
            return False, {"level": "error", "code": "App.Failed", "description": "as asked"}
        if procedure_name == "explode":
            raise RuntimeError("boom")
        return True, {"default": procedure_name, "args": user_arguments}


def test_remote_calls_named_default_failure_and_raising(make_server: Any) -> None:
    def on_connect(is_create: bool, connection: Any, args: Any, user: Any) -> bool:
        if is_create:
            connection.register_remote_call_handler(lambda c, n, o, a: (True, f"hello {a[0]}"), "greet")
            connection.register_remote_call_handler(Calls())
        return True

    server = make_server(on_connect)
    with neurtmp.connect(url(server), timeout=5) as client:
        assert client.call("greet", "world") == "hello world"
        assert client.call("anything", 1, "x") == {"default": "anything", "args": [1.0, "x"]}
        with pytest.raises(neurtmp.CallError) as info:
            client.call("fail")
        assert info.value.code == "App.Failed"
        with pytest.raises(neurtmp.CallError) as info:
            client.call("explode")
        assert info.value.code == "NetConnection.Call.Failed"
        assert client.call("greet", "again") == "hello again"  # the connection survived


def test_unknown_call_without_default_handler_is_an_error(make_server: Any) -> None:
    server = make_server(accept_all)
    with neurtmp.connect(url(server), timeout=5) as client:
        with pytest.raises(neurtmp.CallError, match="Method not found"):
            client.call("missing")


class Streams(StreamEventHandler):
    def __init__(self, allow: bool = True) -> None:
        self.allow = allow
        self.events: list[tuple[bool, int]] = []

    def handle(self, is_create: bool, stream: Any, command_arguments: Any) -> bool:
        self.events.append((is_create, stream.stream_id))
        return self.allow


def test_stream_handler_refuses_and_sees_delete(make_server: Any) -> None:
    refusing, allowing = Streams(allow=False), Streams()
    handlers = iter([refusing, allowing])

    def on_connect(is_create: bool, connection: Any, args: Any, user: Any) -> bool:
        if is_create:
            connection.register_stream_event_handler(next(handlers))
        return True

    server = make_server(on_connect)
    with neurtmp.connect(url(server), timeout=5) as client:
        with pytest.raises(neurtmp.CallError):
            client.create_stream()
    assert refusing.events == [(True, 1)]
    client = neurtmp.connect(url(server), timeout=5)
    client.publish("cam")
    client.close()  # FCUnpublish + deleteStream
    wait_for(lambda: len(allowing.events) == 2)
    assert allowing.events == [(True, 1), (False, 1)]


class Publishing(PublishEventHandler):
    def __init__(self) -> None:
        self.events: list[tuple[bool, str, str]] = []
        self.media: list[tuple[int, int, bytes]] = []

    def handle(self, is_start: bool, stream: Any, name: str, publish_type: str) -> bool:
        self.events.append((is_start, name, publish_type))
        return name != "taken"


def test_publish_handler_and_media_handler_receive_what_a_client_publishes(make_server: Any) -> None:
    publishing = Publishing()

    def on_stream(is_create: bool, stream: Any, args: Any) -> bool:
        if is_create:
            stream.register_publish_event_handler(publishing)
            stream.register_media_event_handler(
                lambda s, packet: publishing.media.append((packet.type_id, packet.timestamp, packet.payload)))
        return True

    def on_connect(is_create: bool, connection: Any, args: Any, user: Any) -> bool:
        if is_create:
            connection.register_stream_event_handler(on_stream)
        return True

    server = make_server(on_connect)
    with neurtmp.connect(url(server), timeout=5) as client:
        with pytest.raises(neurtmp.CallError) as info:
            client.publish("taken")
        assert info.value.code == "NetStream.Publish.BadName"
    client = neurtmp.connect(url(server), timeout=5)
    client.publish("cam", "record")
    client.send_data("@setDataFrame", "onMetaData", {"width": 2.0})
    client.send_video(b"\x17\x01\x00\x00\x00key", 0)
    client.send_audio(b"\xaf\x01aac", 5)
    client.send_video(b"\x27\x01\x00\x00\x00inter", 33)
    wait_for(lambda: len(publishing.media) == 4)
    client.close()
    wait_for(lambda: len(publishing.events) == 3)
    assert publishing.events == [(True, "taken", "live"), (True, "cam", "record"), (False, "cam", "record")]
    assert [(t, ts) for t, ts, _ in publishing.media] == [(18, 0), (9, 0), (8, 5), (9, 33)]
    assert publishing.media[2][2] == b"\xaf\x01aac"


class Counting(RenderEventHandler):
    def __init__(self) -> None:
        self.count = 0

    def handle(self, stream: Any) -> bool:
        self.count += 1
        return True


class Frames(FrameEventHandler):
    def __init__(self) -> None:
        self.count = 0
        self.full: list[bool] = []

    def handle(self, stream: Any, outqueue_is_full: bool) -> Any:
        self.count += 1
        self.full.append(outqueue_is_full)
        return neurtmp.VideoData(bytes((0x17 if self.count == 1 else 0x27, 1, 0, 0, 0)) + bytes(50), self.count == 1)


class Pausing(PauseEventHandler):
    def __init__(self) -> None:
        self.events: list[bool] = []

    def handle(self, is_pause: bool, stream: Any) -> bool:
        self.events.append(is_pause)
        return True


class Playing(PlayEventHandler):
    def __init__(self, allow: bool = True) -> None:
        self.allow = allow
        self.events: list[tuple[bool, str]] = []
        self.render, self.frames, self.pause = Counting(), Frames(), Pausing()

    def handle(self, is_start: bool, stream: Any) -> bool:
        self.events.append((is_start, stream.get_stream_name()))
        if is_start:
            stream.set_property("render_rate", 50)
            stream.register_render_event_handler(self.render)
            stream.register_frame_event_handler(self.frames)
            stream.register_pause_event_handler(self.pause)
        return self.allow


def play_server(make_server: Any, playing: Playing) -> neurtmp.Server:
    def on_stream(is_create: bool, stream: Any, args: Any) -> bool:
        if is_create:
            stream.register_play_event_handler(playing)
        return True

    def on_connect(is_create: bool, connection: Any, args: Any, user: Any) -> bool:
        if is_create:
            connection.register_stream_event_handler(on_stream)
        return True

    return make_server(on_connect)


def test_play_veto_gives_stream_not_found(make_server: Any) -> None:
    playing = Playing(allow=False)
    server = play_server(make_server, playing)
    with neurtmp.connect(url(server), timeout=5) as client:
        with pytest.raises(neurtmp.CallError) as info:
            client.play("secret")
        assert info.value.code == "NetStream.Play.StreamNotFound"
    assert playing.events == [(True, "secret")]
    assert playing.render.count == 0


def read_until_status(client: neurtmp.Client, code: str) -> None:
    """Read (and drop) the client's events until the status `code` arrives."""
    while not (isinstance(event := client.read(timeout=5), ev.StatusReceived) and event.code == code):
        assert event is not None, f"the connection closed before {code}"


def test_play_runs_render_and_frame_loops_and_pause_stops_them(make_server: Any) -> None:
    playing = Playing()
    server = play_server(make_server, playing)
    client = neurtmp.connect(url(server), timeout=5)
    stream_id = client.play("scene")
    started = time.monotonic()
    wait_for(lambda: playing.render.count >= 25 and playing.frames.count >= 25, 5)
    elapsed = time.monotonic() - started
    assert 25 / 60 <= elapsed <= 25 / 20, elapsed  # render_rate 50: 25 calls in 0.5 s on an idle machine
    videos = []
    while len(videos) < 15:
        event = client.read(timeout=2)
        if isinstance(event, ev.VideoReceived):
            videos.append(event)
    assert all(v.message_stream_id == stream_id for v in videos)
    stamps = [v.timestamp for v in videos]
    assert stamps == sorted(stamps) and 10 <= (stamps[-1] - stamps[0]) / (len(stamps) - 1) <= 40
    assert videos[0].payload[0] == 0x17 and not any(playing.frames.full)

    client.pause(True)
    read_until_status(client, "NetStream.Pause.Notify")  # sent once the loops have stopped
    assert playing.pause.events == [True]
    paused_at = playing.render.count
    assert_stays(lambda: playing.render.count == paused_at, 0.3, "no render calls while paused")
    client.pause(False)
    wait_for(lambda: playing.pause.events == [True, False])
    wait_for(lambda: playing.render.count >= paused_at + 8, 3, "render calls resume after unpause")
    client.close()
    wait_for(lambda: playing.events[-1] == (False, "scene"))


def test_render_handler_returning_false_stops_the_stream(make_server: Any) -> None:
    class StopAfterFive(RenderEventHandler):
        calls = 0

        def handle(self, stream: Any) -> bool:
            StopAfterFive.calls += 1
            return StopAfterFive.calls < 5

    def on_connect(is_create: bool, connection: Any, args: Any, user: Any) -> bool:
        if is_create:
            connection.register_stream_event_handler(
                lambda c, s, a: c and s.register_render_event_handler(StopAfterFive()) is None)
        return True

    server = make_server(on_connect)
    with neurtmp.connect(url(server), timeout=5) as client:
        stream_id = client.play("short")
        status = None
        while status is None or status.code != "NetStream.Play.Stop":
            event = client.read(timeout=3)
            status = event if isinstance(event, ev.StatusReceived) else status
        assert status.message_stream_id == stream_id
        assert_stays(lambda: StopAfterFive.calls == 5, 0.2, "no render calls after the stream stopped")


def test_properties_and_statistics(make_server: Any) -> None:
    seen: dict[str, Any] = {}

    def on_stream(is_create: bool, stream: Any, args: Any) -> bool:
        if is_create:
            assert stream.get_property("render_rate") == 30
            with pytest.raises(ValueError):
                stream.set_property("render_rate", 0)
            with pytest.raises(KeyError):
                stream.set_property("colour", "red")
            stream.set_property("user_colour", "red")
            seen["stream"] = stream
        return True

    def on_connect(is_create: bool, connection: Any, args: Any, user: Any) -> bool:
        if is_create:
            connection.set_property("user_id", 7)
            with pytest.raises(KeyError):
                connection.set_property("id", 7)
            connection.register_stream_event_handler(on_stream)
            seen["connection"] = connection
        return True

    server = make_server(on_connect)
    client = neurtmp.connect(url(server), timeout=5)
    client.play("x")
    connection, stream = seen["connection"], seen["stream"]
    assert connection.get_property("user_id") == 7 and stream.get_property("user_colour") == "red"
    assert stream.get_stream_name() == "x" and stream.get_connection() is connection
    assert stream.use_codec("none") and stream.get_video_codec() is None and stream.codec_name == "none"
    assert not stream.use_codec("no-such-codec")
    host, port = client._sock.getsockname()[:2]
    assert connection.get_peer_address() == f"{host}:{port}"
    wait_for(lambda: connection.rtt_ms is not None)
    stats = connection.get_statistics()
    assert stats["bytes_in"] > 3073 and stats["bytes_out"] > 3073  # past the handshake
    assert stats["messages_in"] >= 4 and 0 <= stats["rtt_ms"] < 1000
    client.close()
    wait_for(lambda: connection.closed)
    with pytest.raises(neurtmp.ConnectionClosed):
        stream.send_video(b"\x27\x01\x00\x00\x00")
    with pytest.raises(neurtmp.ConnectionClosed):
        connection.register_remote_call_handler(Calls())


def test_threaded_render_handler_does_not_stall_other_connections(make_server: Any) -> None:
    import time as real_time

    class Blocking(RenderEventHandler):
        threaded = True  # run in gevent's thread pool
        calls = 0

        def handle(self, stream: Any) -> bool:
            Blocking.calls += 1
            real_time.sleep(1.0)  # stands for CPU work that releases the GIL
            return True

    def on_connect(is_create: bool, connection: Any, args: Any, user: Any) -> bool:
        if is_create:
            connection.register_stream_event_handler(
                lambda create, s, a: (not create) or s.register_render_event_handler(Blocking()) is None)
            connection.register_remote_call_handler(lambda *a: (True, "pong"), "ping")
        return True

    server = make_server(on_connect)
    viewer = neurtmp.connect(url(server), timeout=5)
    viewer.play("heavy")
    other = neurtmp.connect(url(server), timeout=5)
    worst = 0.0
    wait_for(lambda: Blocking.calls >= 1, 5, "a render call is under way")
    for _ in range(10):  # 0.5 s or more of pings, all inside the 1 s render call
        started = real_time.monotonic()
        assert other.call("ping") == "pong"
        worst = max(worst, real_time.monotonic() - started)
        gevent.sleep(0.05)
    # on the hub, the render would hold a ping for most of its 1 s; off it, none waits long
    assert worst < 0.5, (Blocking.calls, worst)
    viewer.close()
    other.close()
