"""Edges: one origin, N edges (`neurtmp serve --origin`), players spread over the edges.

The publisher (the bundled ffmpeg, as in fanout.py) sends to the origin; each edge gets
an equal share of the players (one swarm process per edge), and pulls the stream from the
origin once. Prints one JSON line per player count: players healthy, the origin's CPU and
its connections (it serves only the edges however many players there are), each edge's
CPU, and the player processes' CPU. Every process is unpinned: on a small machine the
figures show how the work splits, not how much one core can do.

    python bench/edges.py --players 1000 --edges 2
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import imageio_ffmpeg

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fanout import cpu_seconds, free_port, make_media, media_bitrate, stop_all, wait_for_port  # noqa: E402


def serve(port: int, origin: int | None = None) -> subprocess.Popen[bytes]:
    command = f"{shlex.quote(sys.executable)} -m neurtmp.cli serve --listen 127.0.0.1:{port} --log-level warning"
    if origin is not None:
        command += f" --origin rtmp://127.0.0.1:{origin}"
    process = subprocess.Popen(shlex.split(command), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port)
    return process


def run_case(args: argparse.Namespace, players: int, bitrate: float) -> dict[str, object]:
    origin_port = free_port()
    processes: list[subprocess.Popen] = []  # type: ignore[type-arg]
    try:
        origin = serve(origin_port)
        processes.append(origin)
        edge_ports = [free_port() for _ in range(args.edges)]
        edges = [serve(port, origin_port) for port in edge_ports]
        processes += edges
        processes.append(subprocess.Popen(
            [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1",
             "-i", str(make_media()), "-c", "copy", "-f", "flv", f"rtmp://127.0.0.1:{origin_port}/live/bench"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(2)
        share = players // args.edges
        swarms = [subprocess.Popen([sys.executable, str(HERE / "_swarm.py"), "127.0.0.1", str(port), "live", "bench",
                                    str(share), str(args.warmup), str(args.window)], stdout=subprocess.PIPE, text=True)
                  for port in edge_ports]
        processes += swarms
        servers = [origin, *edges]
        before: list[float] = []
        wall = 0.0
        results = []
        assert swarms[0].stdout is not None
        for line in swarms[0].stdout:
            event = json.loads(line)
            if event["event"] == "window_start":
                before = [cpu_seconds(p.pid) for p in (*servers, *swarms)]
                started = time.monotonic()
            elif event["event"] == "window_end":
                wall = time.monotonic() - started
                used = [(cpu_seconds(p.pid) - b) / wall for p, b in zip((*servers, *swarms), before, strict=True)]
                origin_connections = len(os.listdir(f"/proc/{origin.pid}/fd"))
            elif event["event"] == "result":
                results.append(event)
        for swarm in swarms[1:]:
            out, _ = swarm.communicate(timeout=args.warmup + args.window + 60)
            results.append(json.loads(out.splitlines()[-1]))
        delivered = [d for result in results for d in result["delivered"]]
        window = float(results[0]["window_seconds"])
        healthy = sum(1 for d in delivered if d >= 0.95 * bitrate * window)
        return {
            "edges": args.edges,
            "players": len(delivered),
            "players_healthy": healthy,
            "delivered_gbit_per_s": round(sum(delivered) * 8 / window / 1e9, 3),
            "origin_cpu": round(used[0], 3),
            "origin_open_fds": origin_connections,
            "edge_cpu": [round(u, 3) for u in used[1:len(servers)]],
            "players_cpu": round(sum(used[len(servers):]), 3),
            "first_media_ms": [round(r["first_media_median_ms"], 1) for r in results if r["first_media_median_ms"]],
        }
    finally:
        stop_all(list(reversed(processes)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--players", default="200,1000", help="comma-separated player counts (split over the edges)")
    parser.add_argument("--edges", type=int, default=2)
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    args = parser.parse_args()
    bitrate = media_bitrate(make_media())
    for players in (int(n) for n in args.players.split(",")):
        print(json.dumps(run_case(args, players, bitrate)), flush=True)


if __name__ == "__main__":
    main()
