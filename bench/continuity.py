"""Publisher continuity: what a viewer sees when an encoder drops, comes back or fails
over, and what the slate costs while it loops.

`neurtmp serve` runs as a subprocess; publishers are the bundled ffmpeg (the 720p30
bench media, `-re -c copy`); the watching player is neurtmp's client in this process,
which notes when each video message arrives. A source change shows as a new video
sequence header (the slate's own, the new publisher's, the backup's). For each case it
prints one JSON line:

  reconnect   last source frame -> first slate frame at the player (goal < 1 s), and
              new publish -> its first frame at the player
  failover    primary killed -> first backup frame at the player (failover at once),
              and primary stopped (SIGSTOP) -> first backup frame (--failover-timeout)
  slate_cpu   server CPU (fraction of one core) while the slate loops to P players,
              next to the same while the source plays to them (goal: near zero extra)

    python bench/continuity.py --players 20
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import gevent  # noqa: E402
import imageio_ffmpeg  # noqa: E402
import psutil  # noqa: E402
from fanout import MEDIA, free_port, make_media, stop_all, wait_for_port  # noqa: E402

import neurtmp  # noqa: E402
from neurtmp.protocol import events as ev  # noqa: E402


def publish(port: int, name: str) -> subprocess.Popen:  # type: ignore[type-arg]
    return subprocess.Popen(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1",
         "-i", str(MEDIA), "-c", "copy", "-f", "flv", f"rtmp://127.0.0.1:{port}/live/{name}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Watcher:
    """A player that notes the arrival time of every video message (and which ones
    were sequence headers) in a greenlet of its own."""

    def __init__(self, port: int, name: str) -> None:
        self.client = neurtmp.connect(f"rtmp://127.0.0.1:{port}/live", timeout=10)
        self.client.play(name)
        self.videos: list[tuple[float, bool]] = []
        self.statuses: list[str] = []
        self._reader = gevent.spawn(self._read)

    def _read(self) -> None:
        while True:
            try:
                event = self.client.read(timeout=60)
            except (TimeoutError, OSError, neurtmp.NeurtmpError):
                return
            if event is None:
                return
            if isinstance(event, ev.VideoReceived):
                self.videos.append((time.monotonic(), neurtmp.Packet(9, event.timestamp, event.payload)
                                    .is_sequence_header))
            elif isinstance(event, ev.StatusReceived):
                self.statuses.append(event.code)

    def headers_after(self, since: float) -> list[float]:
        return [t for t, header in self.videos if header and t > since]

    def last_frame_before(self, moment: float) -> float:
        return max(t for t, header in self.videos if not header and t < moment)

    def close(self) -> None:
        self._reader.kill(block=False)
        self.client.close()


def wait(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        gevent.sleep(0.01)


def serve(port: int, *flags: str) -> subprocess.Popen:  # type: ignore[type-arg]
    server = subprocess.Popen([sys.executable, "-m", "neurtmp.cli", "serve", "--listen", f"127.0.0.1:{port}",
                               "--log-level", "warning", *flags], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port)
    return server


def reconnect_case() -> dict[str, object]:
    port = free_port()
    server = serve(port, "--reconnect-grace", "10")
    first = second = watcher = None
    try:
        first = publish(port, "cam")
        watcher = Watcher(port, "cam")
        wait(lambda: len(watcher.videos) > 60, 20, "the source plays")
        killed = time.monotonic()
        first.kill()
        wait(lambda: watcher.headers_after(killed), 10, "the slate's header")
        slate_at = watcher.headers_after(killed)[0]
        wait(lambda: len([t for t, _ in watcher.videos if t > slate_at]) > 30, 10, "the slate loops")
        last_source = watcher.last_frame_before(slate_at)
        republished = time.monotonic()
        second = publish(port, "cam")
        wait(lambda: watcher.headers_after(republished), 20, "the new publisher's header")
        new_at = watcher.headers_after(republished)[0]
        return {"case": "reconnect", "last_source_to_slate_ms": round((slate_at - last_source) * 1000, 1),
                "kill_to_slate_ms": round((slate_at - killed) * 1000, 1),
                "publish_to_new_source_ms": round((new_at - republished) * 1000, 1),
                "unpublish_seen": "NetStream.Play.UnpublishNotify" in watcher.statuses}
    finally:
        if watcher is not None:
            watcher.close()
        stop_all([first, second, server])


def failover_case(how: str, timeout: float) -> dict[str, object]:
    port = free_port()
    server = serve(port, "--reconnect-grace", "10", "--failover-timeout", str(timeout))
    primary = backup = watcher = None
    try:
        primary = publish(port, "cam")
        watcher = Watcher(port, "cam")
        wait(lambda: len(watcher.videos) > 30, 20, "the primary plays")
        backup = publish(port, "cam?role=backup")
        gevent.sleep(2)  # the backup connects and sends its headers and a GOP (kept warm)
        cut = time.monotonic()
        if how == "kill":
            primary.kill()
        else:
            primary.send_signal(signal.SIGSTOP)
        wait(lambda: watcher.headers_after(cut), 20, "the backup's header")
        switched = watcher.headers_after(cut)[0]
        wait(lambda: any(not header for t, header in watcher.videos if t > switched), 10, "a backup frame")
        first_backup = min(t for t, header in watcher.videos if t > switched and not header)
        return {"case": "failover", "how": how, "failover_timeout_s": timeout,
                "cut_to_backup_frame_ms": round((first_backup - cut) * 1000, 1),
                "unpublish_seen": "NetStream.Play.UnpublishNotify" in watcher.statuses}
    finally:
        if primary is not None and primary.poll() is None:
            primary.send_signal(signal.SIGCONT)
        if watcher is not None:
            watcher.close()
        stop_all([primary, backup, server])


def slate_cpu_case(players: int, window: float) -> dict[str, object]:
    port = free_port()
    server = serve(port, "--reconnect-grace", "60")
    publisher = None
    watchers: list[Watcher] = []
    try:
        publisher = publish(port, "cam")
        watchers = [Watcher(port, "cam") for _ in range(players)]
        wait(lambda: all(len(w.videos) > 30 for w in watchers), 30, "every player plays")

        process = psutil.Process(server.pid)

        def cpu() -> float:  # the process's own figure: threads that ended count too
            times = process.cpu_times()
            return float(times.user + times.system)

        def cpu_over(seconds: float) -> float:
            start_cpu, start = cpu(), time.monotonic()
            gevent.sleep(seconds)
            return (cpu() - start_cpu) / (time.monotonic() - start)

        source_cpu = cpu_over(window)
        killed = time.monotonic()
        publisher.kill()
        wait(lambda: all(w.headers_after(killed) for w in watchers), 20, "every player gets the slate")
        gevent.sleep(1)  # the slate loops (encoded when the stream started: nothing to wait for)
        slate_cpu = cpu_over(window)
        return {"case": "slate_cpu", "players": players, "server_cpu_source": round(source_cpu, 4),
                "server_cpu_slate": round(slate_cpu, 4), "bench_note": "the source is 720p30 ~2.5 Mbit/s"}
    finally:
        for watcher in watchers:
            watcher.close()
        stop_all([publisher, server])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--players", type=int, default=20)
    parser.add_argument("--window", type=float, default=5.0)
    parser.add_argument("--failover-timeout", type=float, default=2.0)
    args = parser.parse_args()
    make_media()
    print(json.dumps(reconnect_case()), flush=True)
    print(json.dumps(failover_case("kill", args.failover_timeout)), flush=True)
    print(json.dumps(failover_case("stop", args.failover_timeout)), flush=True)
    print(json.dumps(slate_cpu_case(args.players, args.window)), flush=True)


if __name__ == "__main__":
    main()
