"""`neurtmp serve --workers 2`: processes sharing the port, streams reachable from any."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import signal
import socket
import sys
import time
from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import gevent
import pytest
from gevent import subprocess

import neurtmp

from ..conftest import url
from ..helpers import wait_for
from ..media import encode_h264


def videos_within(client: neurtmp.Client, count: int, timeout: float = 15) -> int:
    seen = 0
    deadline = time.monotonic() + timeout
    while seen < count and time.monotonic() < deadline:
        try:
            event = client.read(timeout=max(0.1, deadline - time.monotonic()))
        except TimeoutError:
            break
        if event is None:
            break
        if isinstance(event, neurtmp.events.VideoReceived):
            seen += 1
    return seen


@contextlib.contextmanager
def supervisor(tmp_path: Any, count: int = 2, *options: str) -> Iterator[tuple[str, Any, Any]]:
    """Run `neurtmp serve --workers COUNT [OPTIONS]` on a free loopback port; yields (base
    URL, path of its stderr, the process). Stopped with SIGTERM at the end, which must make
    it exit with status 0."""
    log_path = tmp_path / "stderr.log"
    with open(log_path, "w") as log_file:
        process = subprocess.Popen([sys.executable, "-m", "neurtmp.cli", "serve", "--workers", str(count),
                                    "--listen", "127.0.0.1:0", *options],
                                   stdout=subprocess.PIPE, stderr=log_file, text=True)
    try:
        line = process.stdout.readline()  # type: ignore[union-attr]
        match = re.match(rf"listening on rtmp://(\S+) \({count} workers\)", line)
        assert match, (line, log_path.read_text()[-2000:])
        yield "rtmp://" + match.group(1), log_path, process
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert process.returncode == 0


def worker_pid(log: str, index: int) -> int:
    """The pid of the latest start of worker `index`, from the supervisor's log."""
    return int(re.findall(rf"worker {index} serving \(pid (\d+)\)", log)[-1])


def servings(log_path: Any, index: int) -> int:
    return len(re.findall(rf"worker {index} serving", log_path.read_text()))


def players_all_get_video(base: str, players: int = 8) -> None:
    """A publisher and `players` players on the pool: every player gets 5 video messages."""
    publisher = Publisher(base)
    clients = [neurtmp.connect(f"{base}/live", timeout=10) for _ in range(players)]
    try:
        for client in clients:
            client.play("cam")
        assert [videos_within(client, 5) for client in clients] == [5] * players
    finally:
        for client in clients:
            client.close()
        publisher.stop()


class Publisher:
    def __init__(self, base: str) -> None:
        self.header, self.frames = encode_h264(30, gop=10)
        self.client = neurtmp.connect(f"{base}/live", timeout=10)
        self.client.publish("cam")
        self.client.send_video(self.header.data, 0)
        self.greenlet = gevent.spawn(self._run)

    def _run(self) -> None:
        i = 0
        while not self.client.closed:
            i += 1
            try:
                self.client.send_video(self.frames[i % len(self.frames)].data, i * 33)
            except neurtmp.ConnectionClosed:
                return  # its worker went away
            gevent.sleep(0.033)

    def stop(self) -> None:
        self.greenlet.kill()
        self.client.close()


@pytest.mark.timeout(120)
def test_two_workers_serve_every_player_and_a_dead_worker_is_replaced(tmp_path: Any) -> None:
    log_path = tmp_path / "stderr.log"
    with open(log_path, "w") as log_file:
        process = subprocess.Popen([sys.executable, "-m", "neurtmp.cli", "serve", "--workers", "2", "--listen",
                                    "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=log_file, text=True)
    try:
        line = process.stdout.readline()  # type: ignore[union-attr]
        base = "rtmp://" + re.match(r"listening on rtmp://(\S+) \(2 workers\)", line).group(1)  # type: ignore[union-attr]
        publisher = Publisher(base)
        players = []
        for _ in range(16):  # the kernel spreads them over both workers
            client = neurtmp.connect(f"{base}/live", timeout=10)
            client.play("cam")
            players.append(client)
        assert [videos_within(client, 10) for client in players] == [10] * 16
        log = log_path.read_text()
        for worker in (0, 1):
            assert re.search(rf"\[worker {worker}\] neurtmp\.live\.app: live/cam: \S+ plays", log), log[-2000:]
        for client in players:
            client.close()
        # Worker 1 dies: it is replaced, and new players there still get the stream.
        pid = int(re.search(r"worker 1 serving \(pid (\d+)\)", log).group(1))  # type: ignore[union-attr]
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: "worker 1 exited with -9; restarting" in log_path.read_text(), 15)
        wait_for(lambda: len(re.findall(r"worker 1 serving", log_path.read_text())) == 2, 20)
        publisher.stop()  # it may have been on the dead worker: an encoder would reconnect
        publisher = Publisher(base)
        players = [neurtmp.connect(f"{base}/live", timeout=10) for _ in range(8)]
        for client in players:
            client.play("cam")
        assert [videos_within(client, 5) for client in players] == [5] * 8
        for client in players:
            client.close()
        publisher.stop()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert process.returncode == 0
    for pid in map(int, re.findall(r"serving \(pid (\d+)\)", log_path.read_text())):
        with pytest.raises(ProcessLookupError):  # every worker stopped with the supervisor
            os.kill(pid, 0)


@pytest.mark.timeout(120)
def test_the_origin_port_of_worker_0_stays_held_while_it_restarts(tmp_path: Any) -> None:
    with supervisor(tmp_path) as (base, log_path, _):
        log = log_path.read_text()
        origin = re.search(r"the other workers reach it on 127\.0\.0\.1:(\d+)", log)
        assert origin, log
        os.kill(worker_pid(log, 0), signal.SIGKILL)
        wait_for(lambda: "worker 0 exited with -9; restarting" in log_path.read_text(), 15)
        # Worker 0 is gone and not back yet: another program still cannot take its port.
        with socket.socket() as intruder, pytest.raises(OSError) as refused:
            intruder.bind(("127.0.0.1", int(origin.group(1))))
        assert refused.value.errno == errno.EADDRINUSE
        wait_for(lambda: servings(log_path, 0) == 2, 30)
        players_all_get_video(base)  # players on worker 1 reach streams on the new worker 0


@pytest.mark.timeout(120)
def test_a_worker_that_keeps_dying_is_restarted_after_growing_delays(tmp_path: Any) -> None:
    with supervisor(tmp_path) as (base, log_path, _):
        gaps = []
        for death in range(1, 4):
            os.kill(worker_pid(log_path.read_text(), 1), signal.SIGKILL)
            wait_for(lambda: len(re.findall(r"worker 1 exited with -9", log_path.read_text())) == death, 15)  # noqa: B023
            died = time.monotonic()
            wait_for(lambda: servings(log_path, 1) == death + 1, 30)  # noqa: B023
            gaps.append(time.monotonic() - died)
        delays = [float(d) for d in re.findall(r"worker 1 exited with -9; restarting in ([\d.]+) s",
                                                 log_path.read_text())]
        assert delays == [0.5, 1.0, 2.0]
        assert all(gap >= delay for gap, delay in zip(gaps, delays, strict=True)), (gaps, delays)
        players_all_get_video(base)  # and the pool serves again


@pytest.mark.timeout(60)
def test_a_worker_that_never_starts_serving_is_killed_and_reported(tmp_path: Any) -> None:
    # A certificate file that blocks whoever opens it (a named pipe nobody writes to): each
    # worker hangs loading it, before it can print its "listening on" line.
    fifo = tmp_path / "cert.pem"
    os.mkfifo(fifo)
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "neurtmp.cli", "serve", "--workers", "2", "--listen",
                             "127.0.0.1:0", "--tls-cert", str(fifo), "--tls-key", str(fifo),
                             "--worker-start-timeout", "2"], capture_output=True, text=True, timeout=40)
    assert result.returncode == 2, result.stderr
    assert re.search(r"neurtmp serve: worker \d printed no 'listening on' line within 2 s; killed it",
                     result.stderr), result.stderr
    assert "Traceback" not in result.stderr and "listening on" not in result.stdout
    assert time.monotonic() - started < 30
    with pytest.raises(OSError) as no_reader:  # no worker is left waiting on the pipe
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    assert no_reader.value.errno == errno.ENXIO


@pytest.mark.timeout(120)
def test_sigusr2_replaces_every_worker_and_reconnecting_clients_see_no_gap(tmp_path: Any, make_server: Any) -> None:
    """A push relay publishes to the pool, an edge pulls from it; both honour reconnect
    requests. SIGUSR2 replaces worker 1, then worker 0 (which holds the stream): the
    edge's player sees the stream go on, timestamps and arrivals without a gap."""
    from neurtmp.relay import Backoff, Edge, PushRelay

    from .helpers import ffmpeg_publish, live_server
    from .test_reconnect_request import Watcher

    local, local_app = live_server(make_server)
    edge_server, _ = live_server(make_server)
    encoder = ffmpeg_publish(url(local, "live/cam"), 60)
    with supervisor(tmp_path, 2, "--shutdown-grace", "4") as (base, log_path, process):
        try:
            wait_for(lambda: local_app.registry.get("live", "cam") is not None, 20)
            push = PushRelay(local, "live", "cam", f"{base}/live/cam", timeout=5, backoff=Backoff(0.2, 1),
                             source_live=True).start()
            edge = Edge(edge_server, base, timeout=5, backoff=Backoff(0.2, 1)).start()
            player = Watcher(neurtmp.connect(url(edge_server, "live"), timeout=5))
            player.client.play("cam")
            wait_for(lambda: len(player.videos) >= 25, 20, "the edge's player gets the pushed stream")
            log = log_path.read_text()
            old_pids = [worker_pid(log, 0), worker_pid(log, 1)]
            before = len(player.videos)

            process.send_signal(signal.SIGUSR2)
            wait_for(lambda: "every worker replaced" in log_path.read_text(), 60, "both workers replaced")
            count = len(player.videos)
            wait_for(lambda: len(player.videos) >= count + 25, 10, "video goes on after the replacement")

            log = log_path.read_text()
            assert re.search(r"worker 1 replaced: .*\n(.*\n)*.*worker 0 replaced: ", log), log[-3000:]
            new_pids = [worker_pid(log, 0), worker_pid(log, 1)]
            assert set(new_pids).isdisjoint(old_pids)
            for pid in old_pids:
                with pytest.raises(ProcessLookupError):  # the old processes drained and exited
                    os.kill(pid, 0)
            pull = edge.pulls[("live", "cam")]
            assert push.target_switches + pull.source_switches >= 2, (push.target_switches, pull.source_switches)
            assert push.published == 1 and pull.published == 1  # one publish each, throughout
            assert "NetStream.Play.UnpublishNotify" not in player.statuses
            stamps = [ts for _, ts in player.videos[before - 1:]]
            assert all(a <= b for a, b in pairwise(stamps)), "timestamps go back"
            assert max(b - a for a, b in pairwise(stamps)) <= 500  # no jump
            arrivals = [t for t, _ in player.videos[before - 1:]]
            assert max(b - a for a, b in pairwise(arrivals)) < 1.5  # no stall either
            player.close()
            edge.stop()
            push.stop()
        finally:
            encoder.kill()
            encoder.wait()


@pytest.mark.timeout(60)
def test_sighup_is_passed_on_to_every_worker(tmp_path: Any) -> None:
    with supervisor(tmp_path, 2, "--deny-play", "127.0.0.1") as (base, log_path, process):
        pids = [worker_pid(log_path.read_text(), index) for index in (0, 1)]
        process.send_signal(signal.SIGHUP)
        wait_for(lambda: "SIGHUP passed on to 2 workers" in log_path.read_text(), 10)
        for index in (0, 1):
            wait_for(lambda index=index: re.search(rf"\[worker {index}\] .*reload", log_path.read_text()), 10,
                     f"worker {index} reloaded")
        assert process.poll() is None and [worker_pid(log_path.read_text(), i) for i in (0, 1)] == pids
