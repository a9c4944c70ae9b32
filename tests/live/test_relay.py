"""Pull and push relays between neurtmp servers, with a remote restart in the middle,
and `neurtmp serve` as a process."""

from __future__ import annotations

import contextlib
import re
import signal
import sys
from collections.abc import Iterator
from typing import Any

import gevent
import pytest
from gevent import subprocess

import neurtmp
from neurtmp.protocol import events as ev
from neurtmp.relay import Backoff, PullRelay, PushRelay, parse_local_name

from ..conftest import url
from ..helpers import wait_for
from ..media import encode_h264
from .helpers import live_server


@contextlib.contextmanager
def neurtmp_process(*arguments: str) -> Iterator[tuple[str, list[str]]]:
    """Run `neurtmp ARGUMENTS --listen 127.0.0.1:0`; yields (address, [stderr once stopped]).

    Stopped with SIGTERM at the end, which must make it exit with status 0.
    """
    process = subprocess.Popen([sys.executable, "-m", "neurtmp.cli", *arguments, "--listen", "127.0.0.1:0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log: list[str] = []
    try:
        line = process.stdout.readline()  # type: ignore[union-attr]
        address = re.match(r"listening on rtmp://(127\.0\.0\.1:\d+)$", line.strip()).group(1)  # type: ignore[union-attr]
        yield address, log
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=15)
        log.append(err)
    assert process.returncode == 0, err


def send_and_receive(publisher: neurtmp.Client, player: neurtmp.Client) -> bool:
    """Publish a sequence header and 10 H.264 frames; True when the player gets exactly
    those 11 payloads in order (TimeoutError when they don't all come)."""
    header, frames = encode_h264(10, gop=10)
    sent = [header.data] + [frame.data for frame in frames]
    for i, payload in enumerate(sent):
        publisher.send_video(payload, i * 40)
    received: list[bytes] = []
    while len(received) < len(sent):
        event = player.read(timeout=10)
        if isinstance(event, ev.VideoReceived):
            received.append(event.payload)
    return received == sent


def test_parse_local_name() -> None:
    assert parse_local_name("live/cam") == ("live", "cam")
    assert parse_local_name("cam") == ("live", "cam")
    with pytest.raises(neurtmp.ConfigError):
        parse_local_name("live/")


class Feeder:
    """Publishes H.264 frames to a server until stopped; marks each frame's index."""

    def __init__(self, target: str, name: str = "src") -> None:
        self.header, self.frames = encode_h264(30, gop=15)
        self.client = neurtmp.connect(target, timeout=5)
        self.client.publish(name)
        self.sent = 0
        self._greenlet = gevent.spawn(self._run)

    def _run(self) -> None:
        self.client.send_data("@setDataFrame", "onMetaData", {"width": 320.0, "height": 240.0})
        self.client.send_video(self.header.data, 0)
        while True:
            frame = self.frames[self.sent % len(self.frames)]
            self.client.send_video(frame.data, self.sent * 33)
            self.sent += 1
            gevent.sleep(0.033)

    def stop(self) -> None:
        self._greenlet.kill()
        self.client.close()


def count_videos(client: neurtmp.Client, counter: dict[str, int]) -> None:
    while (event := client.read(timeout=30)) is not None:
        if isinstance(event, ev.VideoReceived):
            counter["videos"] += 1
        elif isinstance(event, ev.StatusReceived):
            counter[event.code] = counter.get(event.code, 0) + 1


@pytest.mark.timeout(90)
def test_pull_then_push_across_three_servers_survives_an_origin_restart(make_server: Any) -> None:
    origin, _ = live_server(make_server)
    origin_address = origin.get_listen_address()
    edge, edge_app = live_server(make_server)
    far, far_app = live_server(make_server)
    pull = PullRelay(edge, f"rtmp://localhost:{origin_address.rsplit(':', 1)[1]}/live/src",
                     "live", "copy", timeout=5, backoff=Backoff(0.2, 1.0)).start()
    push = PushRelay(edge, "live", "copy", url(far, "live/pushed"), timeout=5,
                     backoff=Backoff(0.2, 1.0)).start()
    edge_player = neurtmp.connect(url(edge), timeout=5)
    edge_player.play("copy")
    far_player = neurtmp.connect(url(far), timeout=5)
    far_player.play("pushed")
    edge_count: dict[str, int] = {"videos": 0}
    far_count: dict[str, int] = {"videos": 0}
    readers = [gevent.spawn(count_videos, edge_player, edge_count), gevent.spawn(count_videos, far_player, far_count)]

    feeder = Feeder(f"rtmp://{origin_address}/live")
    wait_for(lambda: edge_count["videos"] >= 20 and far_count["videos"] >= 20, 20)

    # The origin goes away and comes back on the same port; the edge reconnects by itself.
    feeder.stop()
    origin.shutdown(grace=0)
    wait_for(lambda: edge_count.get("NetStream.Play.UnpublishNotify", 0) >= 1, 10)
    before = edge_count["videos"], far_count["videos"]
    gevent.sleep(0.5)
    restarted, _ = live_server(make_server, address=origin_address)
    feeder = Feeder(f"rtmp://{restarted.get_listen_address()}/live")
    wait_for(lambda: edge_count["videos"] >= before[0] + 20 and far_count["videos"] >= before[1] + 20, 30)
    assert pull.attempts >= 2 and pull.connected >= 2 and pull.published >= 2
    # One local play carried both origin sessions, each published to the far server.
    assert push.connected == 1 and push.published >= 2 and push.packets_sent >= 40
    assert not edge_player.closed and not far_player.closed
    feeder.stop()
    pull.stop()
    push.stop()
    edge_player.close()
    far_player.close()
    gevent.joinall(readers, timeout=5)


@pytest.mark.timeout(60)
def test_neurtmp_serve_command(tmp_path: Any) -> None:
    with neurtmp_process("serve", "--app", "live", "--log-io", str(tmp_path)) as (address, log):
        with pytest.raises(neurtmp.CallError):
            neurtmp.connect(f"rtmp://{address}/other", timeout=5)  # only "live" is served
        player = neurtmp.connect(f"rtmp://{address}/live", timeout=5)
        player.play("cam")
        publisher = neurtmp.connect(f"rtmp://{address}/live", timeout=5)
        publisher.publish("cam")
        assert send_and_receive(publisher, player)
        publisher.close()
        player.close()
    [err] = log
    assert "live/cam: published by 127.0.0.1:" in err
    assert "live/cam: publisher gone; live for 10 s more" in err  # the default reconnect grace
    assert "live/cam: unpublished" not in err  # (not yet: the grace runs)
    assert "plays (waiting for a publisher)" in err
    assert len(list(tmp_path.iterdir())) >= 6  # three connections, two files each


@pytest.mark.timeout(60)
def test_local_proxy_forwards_each_publisher_to_the_remote(make_server: Any) -> None:
    from neurtmp.relay import Forwarder

    remote, remote_app = live_server(make_server)
    local, local_app = live_server(make_server)
    forwarder = Forwarder(local, url(remote, "ingest"), backoff=Backoff(0.2, 1)).start()
    watcher = neurtmp.connect(url(remote, "ingest"), timeout=5)
    watcher.play("cam1")
    header, frames = encode_h264(20, gop=10)
    encoder = neurtmp.connect(url(local, "live"), timeout=5)  # what OBS would do, pointed at the proxy
    encoder.publish("cam1")
    wait_for(lambda: ("live", "cam1") in forwarder.relays and forwarder.relays[("live", "cam1")].connected == 1)
    encoder.send_video(header.data, 0)
    for i, frame in enumerate(frames):
        encoder.send_video(frame.data, i * 33)
    videos = []
    while len(videos) < 21:
        event = watcher.read(timeout=10)
        if isinstance(event, ev.VideoReceived):
            videos.append(event.payload)
    assert videos == [header.data] + [f.data for f in frames]  # byte for byte, in order
    assert list(forwarder.relays) == [("live", "cam1")]
    live = remote_app.registry.get("ingest", "cam1")
    assert live is not None and live.is_live
    relay = forwarder.relays[("live", "cam1")]
    encoder.close()
    wait_for(lambda: not live.is_live, 10)  # the remote publish ends with the local one
    wait_for(lambda: not relay.running and not forwarder.relays, 10)  # and so does its relay
    forwarder.stop()
    watcher.close()


@pytest.mark.timeout(60)
def test_neurtmp_proxy_command_forwards_to_the_remote(make_server: Any) -> None:
    remote, remote_app = live_server(make_server)
    with neurtmp_process("proxy", "--to", url(remote, "ingest")) as (address, log):
        encoder = neurtmp.connect(f"rtmp://{address}/live", timeout=5)
        encoder.publish("studio")
        wait_for(lambda: (s := remote_app.registry.get("ingest", "studio")) is not None and s.is_live, 15)
        watcher = neurtmp.connect(url(remote, "ingest"), timeout=5)
        watcher.play("studio")
        assert send_and_receive(encoder, watcher)
        encoder.close()
        watcher.close()
    [err] = log
    assert "forwarding live/studio to rtmp://" in err


def closed_port() -> int:
    """A loopback port nothing listens on (connections to it are refused at once)."""
    probe = gevent.socket.socket()
    probe.bind(("127.0.0.1", 0))
    port: int = probe.getsockname()[1]
    probe.close()
    return port


@pytest.mark.timeout(30)
def test_a_relay_that_does_not_retry_an_unreachable_source_says_why(make_server: Any) -> None:
    server, _ = live_server(make_server)
    relay = PullRelay(server, f"rtmp://127.0.0.1:{closed_port()}/live/src?key=hush", "live", "copy", timeout=2,
                      retry_unreachable=False).start()
    problem = relay.wait_playing(5)
    assert "refused" in problem.lower(), problem
    wait_for(lambda: not relay.running, 5)
    assert relay.attempts == 1 and relay.connected == 0 and "hush" not in repr(relay)
    relay.stop()
    # a source that plays: "" as soon as it does, and from then on
    origin, _ = live_server(make_server)
    relay = PullRelay(server, url(origin, "live/src"), "live", "copy", timeout=5, retry_unreachable=False).start()
    assert relay.wait_playing(10) == "" and relay.wait_playing(0) == ""
    relay.stop()
