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
from typing import Any

import gevent
import pytest
from gevent import subprocess

import neurtmp

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
def supervisor(tmp_path: Any, count: int = 2) -> Iterator[tuple[str, Any]]:
    """Run `neurtmp serve --workers COUNT` on a free loopback port; yields (base URL, path of
    its stderr). Stopped with SIGTERM at the end, which must make it exit with status 0."""
    log_path = tmp_path / "stderr.log"
    with open(log_path, "w") as log_file:
        process = subprocess.Popen([sys.executable, "-m", "neurtmp.cli", "serve", "--workers", str(count),
                                    "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=log_file, text=True)
    try:
        line = process.stdout.readline()  # type: ignore[union-attr]
        match = re.match(rf"listening on rtmp://(\S+) \({count} workers\)", line)
        assert match, (line, log_path.read_text()[-2000:])
        yield "rtmp://" + match.group(1), log_path
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
    with supervisor(tmp_path) as (base, log_path):
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
    with supervisor(tmp_path) as (base, log_path):
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
