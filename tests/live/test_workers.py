"""`neurtmp serve --workers 2`: processes sharing the port, streams reachable from any."""

from __future__ import annotations

import os
import re
import signal
import sys
import time
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
