"""RtmpProxy (the TMIO-shaped API): ffmpeg publishes to the proxy, the remote gets it."""

from __future__ import annotations

import signal
from typing import Any

import numpy as np
import pytest

import neurtmp
from neurtmp.proxy import ErrorType, ProxyConfig, ProxyListener, RtmpProxy

from ..conftest import url
from ..helpers import wait_for
from ..media import encode_h264
from .helpers import ffmpeg_play_raw, ffmpeg_publish, live_server


class Recorder(ProxyListener):
    def __init__(self) -> None:
        self.configs: list[ProxyConfig] = []
        self.started: list[tuple[str, int]] = []
        self.errors: list[tuple[ErrorType, BaseException]] = []

    def on_config(self, config: ProxyConfig) -> None:
        config.timeout = 5
        self.configs.append(config)

    def on_start(self, local_addr: str, local_port: int) -> None:
        self.started.append((local_addr, local_port))

    def on_error(self, error_type: ErrorType, error: BaseException) -> None:
        self.errors.append((error_type, error))


def remote_with_connect_log(make_server: Any) -> tuple[Any, Any, list[dict[str, Any]]]:
    """A live server whose connect commands are recorded (tcUrl, app)."""
    connects: list[dict[str, Any]] = []

    def record(is_create: bool, connection: Any, command: Any, user: Any) -> bool:
        if is_create:
            connects.append(dict(command))
        return False  # the live app claims it

    server = make_server(record)
    from neurtmp.live import LiveApp, LiveOptions

    app = LiveApp(LiveOptions(reconnect_grace=0))  # its players' stream ends with the publish
    app.install(server)
    return server, app, connects


def start_proxy(remote: str, listener: Recorder | None = None) -> tuple[RtmpProxy, Recorder]:
    listener = listener or Recorder()
    proxy = RtmpProxy.create()
    proxy.set_listener(listener)
    proxy.start("tcp://127.0.0.1:0", remote)
    wait_for(lambda: listener.started or listener.errors, 10)
    return proxy, listener


@pytest.mark.timeout(60)
@pytest.mark.parametrize("tx_host", [None, "push.example.com"])
def test_ffmpeg_through_the_proxy_reaches_a_player_on_the_remote(make_server: Any, tx_host: str | None) -> None:
    remote, remote_app, connects = remote_with_connect_log(make_server)
    with RtmpProxy.create() as proxy:
        listener = Recorder()
        proxy.set_listener(listener)
        proxy.start("tcp://127.0.0.1:0", url(remote, "live"))
        wait_for(lambda: listener.started, 10)
        [(host, port)] = listener.started
        assert host == "127.0.0.1" and port > 0 and listener.configs[0].timeout == 5
        query = "txSecret=abc&txTime=5F5E1000" + (f"&txHost={tx_host}" if tx_host else "")
        player = ffmpeg_play_raw(url(remote, "live/cam"), 160, 120)
        wait_for(lambda: remote_app.registry.get("live", "cam") is not None, 10)
        publisher = ffmpeg_publish(f"rtmp://127.0.0.1:{port}/live/cam?{query}", 4)
        assert publisher.wait(timeout=40) == 0, publisher.stderr.read()  # type: ignore[union-attr]
        frames = np.frombuffer(player.stdout.read(), np.uint8)  # type: ignore[union-attr]
        player.wait(timeout=10)
        assert len(frames) // (160 * 120 * 3) >= 0.9 * 100  # 4 s at 25 fps, >= 90% decoded
        # The remote was connected with its own tcUrl, or the txHost one; the query came along.
        expected = f"rtmp://{tx_host}/live" if tx_host else url(remote, "live")
        assert connects[-1]["tcUrl"] == expected and connects[-1]["app"] == "live"
        wait_for(lambda: [e for e in listener.errors if e[0] is ErrorType.LOCAL], 10)  # the publisher left
        assert not [e for e in listener.errors if e[0] is ErrorType.REMOTE]
    assert proxy.packets_forwarded >= 100


@pytest.mark.timeout(60)
def test_the_query_reaches_the_remote_publish(make_server: Any) -> None:
    published: list[str] = []
    remote, _, _ = remote_with_connect_log(make_server)
    remote.register_publish_event_handler(lambda start, stream, name, kind: published.append(name) or True)
    proxy, listener = start_proxy(url(remote, "live"))
    port = listener.started[0][1]
    header, frames = encode_h264(5)
    client = neurtmp.connect(f"rtmp://127.0.0.1:{port}/live", timeout=5)
    client.publish("cam?txSecret=abc&txTime=1&txHost=cdn.example.com")
    client.send_data("@setDataFrame", "onMetaData", {"width": 320.0})
    for i, frame in enumerate([header, *frames]):
        client.send_video(frame.data, i * 40)
    wait_for(lambda: proxy.packets_forwarded == 7)
    assert published == ["cam?txSecret=abc&txTime=1"]  # txHost went into the tcUrl, the rest on
    with pytest.raises(neurtmp.CallError):  # a second publisher is refused
        neurtmp.connect(f"rtmp://127.0.0.1:{port}/live", timeout=5)
    client.close()
    proxy.stop()
    with pytest.raises(neurtmp.ConfigError, match="starts once"):
        proxy.start("tcp://127.0.0.1:0", url(remote, "live"))
    with pytest.raises(neurtmp.ConfigError):
        RtmpProxy.create().start("udp://127.0.0.1:0", url(remote, "live"))
    with pytest.raises(neurtmp.ConfigError):
        RtmpProxy.create().start("tcp://127.0.0.1:0", "http://example.com/live")


@pytest.mark.timeout(60)
def test_remote_errors_and_local_errors_are_told_apart(make_server: Any) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    _, unreachable = start_proxy(f"rtmp://127.0.0.1:{dead}/live")
    assert unreachable.errors and unreachable.errors[0][0] is ErrorType.REMOTE and not unreachable.started

    remote, _ = live_server(make_server)
    proxy, listener = start_proxy(url(remote, "live"))
    port = listener.started[0][1]
    publisher = ffmpeg_publish(f"rtmp://127.0.0.1:{port}/live/cam", 30)
    wait_for(lambda: proxy.packets_forwarded > 10, 15)
    remote.shutdown(grace=0)  # the remote goes away mid-stream
    wait_for(lambda: listener.errors, 10)
    assert listener.errors[0][0] is ErrorType.REMOTE
    publisher.kill()
    publisher.wait()
    proxy.stop()

    remote, _ = live_server(make_server)
    proxy, listener = start_proxy(url(remote, "live"))
    publisher = ffmpeg_publish(f"rtmp://127.0.0.1:{listener.started[0][1]}/live/cam", 30)
    wait_for(lambda: proxy.packets_forwarded > 10, 15)
    publisher.send_signal(signal.SIGKILL)  # the publisher vanishes
    publisher.wait()
    wait_for(lambda: listener.errors, 10)
    assert [kind for kind, _ in listener.errors] == [ErrorType.LOCAL]
    proxy.stop()
