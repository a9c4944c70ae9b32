"""Code ported from neuray's `mi::rtmp` works as the reference says."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys
import threading
import time
from typing import Any

import gevent
import gevent.socket
import imageio_ffmpeg
import numpy as np
import pytest
from gevent import subprocess as gevent_subprocess

import neurtmp
from neurtmp.codec.canvas import to_host_array
from neurtmp.handlers import (
    ConnectEventHandler,
    FrameEventHandler,
    PlayEventHandler,
    RenderEventHandler,
    StreamEventHandler,
)
from neurtmp.protocol import ClientProtocol
from neurtmp.server import parse_address

from ..conftest import accept_all, serve_streams, url
from ..helpers import assert_stays, wait_for

ROOT = pathlib.Path(__file__).resolve().parents[2]
FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def read_until(client: neurtmp.Client, done: Any, timeout: float = 10) -> list[Any]:
    events: list[Any] = []
    deadline = time.monotonic() + timeout
    while not done(events):
        assert time.monotonic() < deadline, f"gave up after {len(events)} events"
        event = client.read(timeout=timeout)
        assert event is not None, "connection closed"
        events.append(event)
    return events


def videos(events: list[Any]) -> list[Any]:
    return [e for e in events if isinstance(e, neurtmp.events.VideoReceived)]


def codes(events: list[Any]) -> list[str]:
    return [e.code for e in events if isinstance(e, neurtmp.events.StatusReceived)]


@pytest.mark.timeout(30)
def test_a_slow_render_does_not_stall_the_frame_clock_or_other_clients(make_server: Any) -> None:
    class SlowRender(RenderEventHandler):  # threaded by default, as neuray's frame thread is apart
        def handle(self, stream: Any) -> bool:
            time.sleep(0.2)  # 200 ms of blocking work per render
            return True

    class Ticks(FrameEventHandler):
        def __init__(self) -> None:
            self.times: list[float] = []

        def handle(self, stream: Any, outqueue_is_full: bool) -> bytes:
            self.times.append(time.monotonic())
            return b"\x27\x01\x00\x00\x00frame"

    ticks = Ticks()

    def on_stream(stream: Any) -> None:
        stream.set_property("render_rate", 30)  # asks for more than the render can do
        stream.set_property("frame_rate", 30)
        stream.register_render_event_handler(SlowRender())
        stream.register_frame_event_handler(ticks)

    server = serve_streams(make_server, on_stream)
    client = neurtmp.connect(url(server, "app"), timeout=5)
    client.play("slow")
    wait_for(lambda: len(ticks.times) >= 60, 4)
    window = ticks.times[:60]
    assert window[-1] - window[0] < 2.5  # 60 frames at 30/s in about 2 s
    assert max(b - a for a, b in zip(window, window[1:], strict=False)) < 0.15
    other = neurtmp.connect(url(server, "app"), timeout=5)  # the hub still answers at once
    started = time.monotonic()
    other.play("other")
    assert time.monotonic() - started < 2
    other.close()
    client.close()


@pytest.mark.timeout(60)
def test_the_reference_example_ported_line_by_line_plays_in_ffmpeg() -> None:
    server = subprocess.Popen([sys.executable, str(ROOT / "examples" / "neuray_port" / "server.py"),
                               "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()  # type: ignore[union-attr]
        address = re.match(r"listening on rtmp://(\S+)", line).group(1)  # type: ignore[union-attr]
        frames = []
        for _ in range(2):  # a second viewer gets a fresh start as well
            player = subprocess.run(
                [FFMPEG, "-hide_banner", "-loglevel", "error", "-i", f"rtmp://{address}/app/any",
                 "-frames:v", "15", "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                capture_output=True, timeout=30)
            assert player.returncode == 0, player.stderr
            frames.append(np.frombuffer(player.stdout, np.uint8).reshape(-1, 240, 320, 3))
    finally:
        server.terminate()
        server.wait(10)
    for run in frames:
        assert len(run) == 15
        # The pattern: red follows x, green follows y, blue 128 (H.264: within a few levels).
        assert abs(float(run[-1][:, :, 2].mean()) - 128) < 6
        row = run[-1][120, 8:300, 0].astype(int)
        assert np.median(np.diff(row) % 256) == 1
        assert len({int(f[120, 8, 0]) // 4 for f in run}) >= 3  # it moves


class InitPlay(PlayEventHandler):
    """neuray's path: init the stream's encoder in the play handler, its header the init frame."""

    def handle(self, is_start: bool, stream: Any) -> Any:
        if is_start:
            encoder = stream.get_video_encoder()
            header = encoder.init(64, 48)
            assert encoder.width == 64 and encoder.get_identifier() == "h264"
            return True, header
        return True


class EncodeInHandler(FrameEventHandler):
    threaded = True  # also works from a worker thread

    def handle(self, stream: Any, outqueue_is_full: bool) -> Any:
        return stream.get_video_encoder().encode_canvas(np.full((48, 64, 3), 90, np.uint8))


@pytest.mark.timeout(30)
def test_play_handler_init_frame_and_the_streams_encoder_used_as_in_neuray(make_server: Any) -> None:
    def on_stream(stream: Any) -> None:
        assert stream.use_codec("h264")
        stream.register_play_event_handler(InitPlay())
        stream.register_frame_event_handler(EncodeInHandler())

    server = serve_streams(make_server, on_stream)
    client = neurtmp.connect(url(server, "app"), timeout=5)
    stream_id = client.play("x")
    events = read_until(client, lambda e: len(videos(e)) >= 6)
    payloads = [v.payload for v in videos(events)]
    assert payloads[0][:2] == b"\x17\x00"  # the init frame: the sequence header, first
    assert payloads[1][:2] == b"\x17\x01"  # then a key frame, not a second header
    assert all(p[:2] != b"\x17\x00" for p in payloads[1:])
    # A replay on the same stream: the handler inits again; still one header, first.
    client.protocol.play(stream_id, "x")
    client.pause(False)  # sends what is queued
    events = read_until(client, lambda e: "NetStream.Play.Start" in codes(e) and len(videos(e)) >= 4)
    after = [v.payload for v in videos(events)][-4:]
    assert sum(p[:2] == b"\x17\x00" for p in after) <= 1
    client.close()


@pytest.mark.timeout(30)
def test_call_handlers_may_return_a_bare_bool(make_server: Any) -> None:
    def on_connect(is_create: bool, connection: Any, args: Any, user: Any) -> bool:
        if is_create:
            connection.register_remote_call_handler(lambda c, n, o, a: True, "yes")
            connection.register_remote_call_handler(lambda c, n, o, a: False, "no")
        return True

    server = make_server(on_connect)
    with neurtmp.connect(url(server), timeout=5) as client:
        assert client.call("yes") is None  # _result, no value
        with pytest.raises(neurtmp.CallError) as info:
            client.call("no")
        assert info.value.code == "NetConnection.Call.Failed"


def test_an_empty_listen_address_means_the_default() -> None:
    assert parse_address("") == ("0.0.0.0", 1935)
    server = neurtmp.Factory().create_server()
    try:
        server.start("")
    except neurtmp.ListenError:  # something else holds 1935 on this machine: the parse is the point
        return
    try:
        assert server.get_listen_address() == "0.0.0.0:1935"
    finally:
        server.shutdown(grace=0)


@pytest.mark.timeout(30)
def test_closed_streams_and_connections_refuse_changes_but_answer_questions(make_server: Any) -> None:
    kept: list[Any] = []

    def on_connect(is_create: bool, connection: Any, args: Any, user: Any) -> bool:
        if is_create:
            def on_stream(create: bool, stream: Any, arguments: Any) -> bool:
                kept.append(stream)
                return True
            connection.register_stream_event_handler(on_stream)
            kept.append(connection)
        return True

    server = make_server(on_connect)
    client = neurtmp.connect(url(server), timeout=5)
    client.play("x")
    wait_for(lambda: len(kept) == 2)
    connection, stream = kept
    client.close()
    wait_for(lambda: stream.closed and connection.closed)
    for change in (lambda: stream.register_play_event_handler(accept_all),
                   lambda: stream.register_frame_event_handler(accept_all),
                   lambda: stream.register_publish_event_handler(accept_all),
                   lambda: stream.set_property("render_rate", 10),
                   lambda: stream.use_codec("h264"),
                   lambda: stream.send_video(b"\x17\x01"),
                   lambda: connection.set_property("user_x", 1),
                   lambda: connection.register_remote_call_handler(accept_all, "x")):
        with pytest.raises(neurtmp.ConnectionClosed):
            change()
    assert stream.get_stream_name() == "x" and stream.get_property("render_rate") == 30
    assert connection.get_statistics()["bytes_in"] > 0


def test_canvases_with_the_array_interface_and_cuda_arrays_reach_the_host() -> None:
    picture = np.arange(48 * 64 * 3, dtype=np.uint8).reshape(48, 64, 3)

    class HostArray:  # only the array interface, as many image libraries offer
        def __init__(self, array: np.ndarray) -> None:
            self.__array_interface__ = array.__array_interface__
            self._keep = array

    class FakeCudaArray:  # what CuPy looks like to us: a CUDA interface and get()
        __cuda_array_interface__ = {"shape": (48, 64, 3), "typestr": "|u1", "data": (0, False), "version": 3}

        def get(self) -> np.ndarray:
            return picture.copy()

    assert np.array_equal(to_host_array(HostArray(picture)), picture)
    assert np.array_equal(to_host_array(FakeCudaArray()), picture)
    encoder = neurtmp.codec.create_video_encoder("screen video")
    assert encoder is not None
    encoder.init(64, 48)
    from_interface = encoder.encode_canvas(HostArray(picture))
    encoder.init(64, 48)
    assert encoder.encode_canvas(picture) == from_interface  # the same picture, the same bytes


def _gpu_array() -> Any:
    try:
        import torch

        if torch.cuda.is_available():
            return torch.full((48, 64, 3), 77, dtype=torch.uint8, device="cuda")
    except ImportError:
        pass
    try:
        import cupy

        return cupy.full((48, 64, 3), 77, dtype=cupy.uint8)
    except Exception:
        return None


@pytest.mark.skipif(_gpu_array() is None, reason="needs a CUDA GPU with torch or CuPy")
def test_a_cuda_canvas_is_encoded() -> None:
    encoder = neurtmp.codec.create_video_encoder("h264")
    assert encoder is not None
    encoder.init(64, 48)
    frame = encoder.encode_canvas(_gpu_array())
    assert frame.is_key_frame and len(frame.data) > 10


@pytest.mark.timeout(30)
def test_server_remove_stops_asking_a_connect_handler(make_server: Any) -> None:
    asked: list[str] = []

    def first(is_create: bool, connection: Any, args: Any, user: Any) -> bool:
        asked.append(f"first {is_create}")
        return True

    server = make_server(first, accept_all)
    neurtmp.connect(url(server), timeout=5).close()
    wait_for(lambda: asked == ["first True", "first False"])
    server.remove(first)
    neurtmp.connect(url(server), timeout=5).close()  # accept_all takes it now
    assert_stays(lambda: asked == ["first True", "first False"], 0.3)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("ending", ["returns False", "raises"])
def test_a_frame_handler_ends_the_stream_with_play_stop(make_server: Any, ending: str) -> None:
    plays: list[bool] = []

    class Ending(FrameEventHandler):
        def __init__(self) -> None:
            self.calls = 0

        def handle(self, stream: Any, outqueue_is_full: bool) -> Any:
            self.calls += 1
            if self.calls == 5:
                if ending == "raises":
                    raise RuntimeError("as asked")
                return False
            return b"\x27\x01\x00\x00\x00x"

    def on_stream(stream: Any) -> None:
        stream.register_play_event_handler(lambda is_start, s: plays.append(is_start) or True)
        stream.register_frame_event_handler(Ending())

    server = serve_streams(make_server, on_stream)
    client = neurtmp.connect(url(server, "app"), timeout=5)
    client.play("x")
    events = read_until(client, lambda e: "NetStream.Play.Stop" in codes(e))
    assert len(videos(events)) == 4
    assert plays == [True, False]  # the play handler hears of the end
    assert not client.closed  # only the stream ended
    assert client.call("createStream") > 0
    client.close()


@pytest.mark.timeout(30)
def test_pause_refused_by_the_handler_changes_nothing(make_server: Any) -> None:
    frames = {"n": 0}

    def frame(stream: Any, full: bool) -> bytes:
        frames["n"] += 1
        return b"\x27\x01\x00\x00\x00x"

    def on_stream(stream: Any) -> None:
        stream.register_pause_event_handler(lambda is_pause, s: False)
        stream.register_frame_event_handler(frame)

    server = serve_streams(make_server, on_stream)
    client = neurtmp.connect(url(server, "app"), timeout=5)
    client.play("x")
    wait_for(lambda: frames["n"] >= 3)
    client.pause(True)
    count = frames["n"]
    wait_for(lambda: frames["n"] >= count + 10)  # frames keep coming
    events: list[Any] = []
    while (event := client.read(timeout=0.5)) is not None and len(events) < 30:
        events.append(event)
    assert "NetStream.Pause.Notify" not in codes(events)
    client.close()


@pytest.mark.timeout(30)
def test_stream_handler_hears_of_an_abrupt_disconnect(make_server: Any) -> None:
    calls: list[bool] = []

    def on_connect(is_create: bool, connection: Any, args: Any, user: Any) -> bool:
        if is_create:
            connection.register_stream_event_handler(lambda create, s, a: calls.append(create) or True)
        return True

    server = make_server(on_connect)
    client = neurtmp.connect(url(server), timeout=5)
    client.create_stream()
    client.create_stream()
    wait_for(lambda: calls == [True, True])
    client.close()  # a player's close: the socket goes, no deleteStream is sent
    wait_for(lambda: calls == [True, True, False, False])
    assert_stays(lambda: len(calls) == 4, 0.2)


@pytest.mark.timeout(30)
def test_connect_handler_gets_the_user_arguments(make_server: Any) -> None:
    seen: list[Any] = []

    def on_connect(is_create: bool, connection: Any, args: Any, user: Any) -> bool:
        if is_create:
            seen.append((args.get("app"), user))
        return True

    server = make_server(on_connect)
    host, port = server.get_listen_address().rsplit(":", 1)
    sock = gevent.socket.create_connection((host, int(port)), timeout=5)
    protocol = ClientProtocol()
    sock.sendall(protocol.data_to_send())
    answered = False
    while not answered:
        for event in protocol.receive_data(sock.recv(65536)):
            if isinstance(event, neurtmp.events.HandshakeCompleted):
                protocol.send_command("connect", 1, {"app": "live", "tcUrl": f"rtmp://{host}/live"},
                                      "token-123", 42.0, {"role": "viewer"})
            answered = answered or isinstance(event, neurtmp.events.ResultReceived)
        sock.sendall(protocol.data_to_send())
    sock.close()
    assert seen == [("live", ["token-123", 42.0, {"role": "viewer"}])]


# The reference example's handlers (neuray-rtmp-server.md), ported line by line: no
# use_codec anywhere; the frame handler takes the stream's codec as it is.
_canvas_lock = threading.Lock()
_last_canvas: list[np.ndarray] = [np.full((48, 64, 3), 160, np.uint8)]  # "your code": a first canvas


def render_a_canvas_and_save() -> None:
    with _canvas_lock:
        _last_canvas[:] = [np.full((48, 64, 3), 160, np.uint8)]


def get_the_last_rendered_canvas() -> np.ndarray:
    with _canvas_lock:
        return _last_canvas[0]


class My_render_handler(RenderEventHandler):  # noqa: N801 (the example's names)
    def handle(self, stream: Any) -> bool:
        render_a_canvas_and_save()
        return True


class My_frame_handler(FrameEventHandler):  # noqa: N801
    def handle(self, stream: Any, outqueue_is_full: bool) -> Any:
        if outqueue_is_full:  # not an error, just no use in encoding a new frame
            return True
        canvas = get_the_last_rendered_canvas()
        codec = stream.get_video_codec()
        return codec.encode_canvas(canvas)


class My_stream_handler(StreamEventHandler):  # noqa: N801
    def handle(self, is_create: bool, stream: Any, command_arguments: Any) -> bool:
        if is_create:
            stream.register_render_event_handler(My_render_handler())
            stream.register_frame_event_handler(My_frame_handler())
        return True


class My_connect_handler(ConnectEventHandler):  # noqa: N801
    def handle(self, is_create: bool, connection: Any, cmd_arguments: Any, user_arguments: Any) -> bool:
        if is_create:
            connection.register_stream_event_handler(My_stream_handler())
        return True


@pytest.mark.timeout(60)
def test_the_reference_examples_frame_handler_streams_as_written(make_server: Any) -> None:
    """`stream.get_video_codec()` is the stream's encoder (h264 by default), as in the
    reference example; ffmpeg decodes what it sends."""
    server = make_server(My_connect_handler())
    player = gevent_subprocess.Popen(
        [FFMPEG, "-hide_banner", "-loglevel", "error", "-i", url(server, "app/x"), "-frames:v", "5",
         "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], stdout=gevent_subprocess.PIPE, stderr=gevent_subprocess.PIPE)
    out, err = player.communicate(timeout=45)
    assert player.returncode == 0, err.decode(errors="replace")
    images = np.frombuffer(out, np.uint8).reshape(-1, 48, 64, 3)
    assert len(images) == 5 and all(abs(float(image.mean()) - 160) < 4 for image in images)
