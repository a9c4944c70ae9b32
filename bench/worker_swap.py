"""Worker replacement: what players see while `neurtmp serve --workers N` replaces every
worker (SIGUSR2), and how long the replacement takes.

The pool runs as a subprocess. In this process, as a real deployment would put them in
front of it: a local server with a push relay publishing the bundled ffmpeg's 720p30
bench media into the pool (`-re -c copy`), and an edge server pulling it out of the pool
for P players (neurtmp's client, which notes when each video message arrives). Relays
and edges honour the pool's reconnect requests; the players never talk to the pool. For
each of R rounds of SIGUSR2 it prints one JSON line:

  replace_s        SIGUSR2 -> the supervisor's "every worker replaced" line
  max_gap_ms       the longest time any player went without a video message (the
                   media's own frame interval is 33 ms)
  max_jump_ms      the largest timestamp step any player saw (a splice shows here)
  frames           video messages per player over the round, against what 30 fps gives
  unpublish        UnpublishNotify statuses the players got (goal: 0)
  switches         the push relay's target switches + the edge pull's source switches

    python bench/worker_swap.py --workers 2 --players 20 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import subprocess
import sys
import tempfile
import time
from itertools import pairwise
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import gevent  # noqa: E402
import imageio_ffmpeg  # noqa: E402
from fanout import MEDIA, make_media, stop_all  # noqa: E402

import neurtmp  # noqa: E402
from neurtmp.live import LiveApp, LiveOptions  # noqa: E402
from neurtmp.protocol import events as ev  # noqa: E402
from neurtmp.relay import Backoff, Edge, PushRelay  # noqa: E402


class Player:
    """Notes (arrival, timestamp) of each video message and the statuses, in a greenlet."""

    def __init__(self, url: str, name: str) -> None:
        self.client = neurtmp.connect(url, timeout=10)
        self.client.play(name)
        self.videos: list[tuple[float, int]] = []
        self.statuses: list[str] = []
        self._reader = gevent.spawn(self._read)

    def _read(self) -> None:
        while (event := self.client.read(timeout=60)) is not None:
            if isinstance(event, ev.VideoReceived):
                self.videos.append((time.monotonic(), event.timestamp))
            elif isinstance(event, ev.StatusReceived):
                self.statuses.append(event.code)

    def close(self) -> None:
        self.client.close()
        self._reader.join(5)


def start_pool(workers: int, log_path: Path) -> tuple[subprocess.Popen, str]:  # type: ignore[type-arg]
    with open(log_path, "w") as log_file:
        process = subprocess.Popen([sys.executable, "-m", "neurtmp.cli", "serve", "--workers", str(workers),
                                    "--listen", "127.0.0.1:0", "--log-level", "warning"],
                                   stdout=subprocess.PIPE, stderr=log_file, text=True)
    line = process.stdout.readline()  # type: ignore[union-attr]
    found = re.match(r"listening on rtmp://(\S+) ", line)
    if not found:
        raise SystemExit(f"the pool did not start: {line!r} {log_path.read_text()[-2000:]}")
    return process, f"rtmp://{found.group(1)}"


def wait(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        gevent.sleep(0.05)


def round_figures(players: list[Player], since: float, until: float) -> dict[str, float | int]:
    gaps, jumps, frames = [], [], []
    for player in players:
        seen = [(at, ts) for at, ts in player.videos if since <= at <= until]
        frames.append(len(seen))
        gaps += [b[0] - a[0] for a, b in pairwise(seen)]
        jumps += [b[1] - a[1] for a, b in pairwise(seen)]
    return {"max_gap_ms": round(max(gaps, default=0) * 1000), "max_jump_ms": max(jumps, default=0),
            "frames": min(frames, default=0), "frames_at_30fps": round((until - since) * 30)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--players", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    make_media()
    log_path = Path(tempfile.mkdtemp(prefix="worker-swap-")) / "pool.log"
    pool, base = start_pool(args.workers, log_path)
    local = neurtmp.Factory().create_server()
    LiveApp(LiveOptions(reconnect_grace=0)).install(local)
    local.start("127.0.0.1:0")
    edge_server = neurtmp.Factory().create_server()
    LiveApp(LiveOptions(reconnect_grace=0)).install(edge_server)
    edge_server.start("127.0.0.1:0")
    encoder = subprocess.Popen(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1",
         "-i", str(MEDIA), "-c", "copy", "-f", "flv", f"rtmp://{local.get_listen_address()}/live/cam"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    push = edge = None
    players: list[Player] = []
    try:
        wait(lambda: local.get_connections(), 20, "the encoder")
        push = PushRelay(local, "live", "cam", f"{base}/live/cam", timeout=5, backoff=Backoff(0.2, 1),
                         source_live=True).start()
        edge = Edge(edge_server, base, timeout=5, backoff=Backoff(0.2, 1)).start()
        players = [Player(f"rtmp://{edge_server.get_listen_address()}/live", "cam") for _ in range(args.players)]
        wait(lambda: all(len(p.videos) >= 30 for p in players), 30, "every player playing")
        for number in range(1, args.rounds + 1):
            gevent.sleep(2)
            done_before = log_path.read_text().count("every worker replaced")
            started = time.monotonic()
            pool.send_signal(signal.SIGUSR2)
            wait(lambda: log_path.read_text().count("every worker replaced") > done_before,  # noqa: B023
                 120, "the replacement")
            replaced = time.monotonic()
            gevent.sleep(2)
            pull = edge.pulls.get(("live", "cam"))
            figures = {"round": number, "workers": args.workers, "players": args.players,
                       "replace_s": round(replaced - started, 2),
                       **round_figures(players, started - 1, time.monotonic()),
                       "unpublish": sum(p.statuses.count(neurtmp.StatusCode.PLAY_UNPUBLISH_NOTIFY) for p in players),
                       "switches": push.target_switches + (pull.source_switches if pull else 0)}
            print(json.dumps(figures), flush=True)
    finally:
        for player in players:
            player.close()
        for relay in (edge, push):
            if relay is not None:
                relay.stop()
        stop_all([encoder])
        pool.send_signal(signal.SIGTERM)
        pool.wait(30)
        local.shutdown(grace=0)
        edge_server.shutdown(grace=0)


if __name__ == "__main__":
    main()
