"""Fan-out benchmark: one publisher, N players, the server pinned to one core.

The publisher is the bundled ffmpeg sending a 720p30 ~2.5 Mbit/s H.264/AAC FLV (made
once, cached in bench/.cache) in real time with `-c copy`; the players are one separate
process of raw sockets (bench/_swarm.py) that handshake, connect, createStream and play,
then only count bytes and acknowledge. The server runs on core 0; publisher and players
on the other core(s). For each N it prints one JSON line:

  players_healthy   players that got >= 95% of the stream's bytes during the window
  server_cpu        server CPU time / wall time in the window (fraction of one core)
  server_rss_mb     server resident memory at the end of the window
  cpu_s_per_gbit    server CPU seconds per Gbit delivered to players
  first_media_ms    median time from play to the first video message (player side)
  players_cpu       the player process's CPU time / wall time (near 1.0: it measures itself)

    python bench/fanout.py --players 100,500,1000
    python bench/fanout.py --server-cmd 'nginx -c {conf}' --nginx   # compare with nginx-rtmp

`--server-cmd` runs another server: `{port}` is replaced by the port to listen on.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shlex
import socket
import subprocess
import sys
import tempfile
import time

import imageio_ffmpeg

HERE = pathlib.Path(__file__).resolve().parent
CACHE = HERE / ".cache"
MEDIA = CACHE / "bench-720p30.flv"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

NGINX_CONF = """
daemon off;
master_process {master};
worker_processes {workers};
error_log {dir}/error.log warn;
pid {dir}/nginx.pid;
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
{auto_push}
events {{ worker_connections 20000; }}
rtmp {{
    server {{
        listen 127.0.0.1:{port};
        chunk_size 4096;
        application live {{ live on; }}
    }}
}}
"""


def nginx_command(port: int, workers: int = 1) -> str:
    """The command line of nginx-rtmp listening on `port` (config in a temporary folder);
    with several workers, `rtmp_auto_push` relays each stream to every worker."""
    workdir = tempfile.mkdtemp(prefix="neurtmp-bench-nginx-")
    conf = pathlib.Path(workdir) / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=workdir, port=port, workers=workers, master="on" if workers > 1 else "off",
                                      auto_push="rtmp_auto_push on;" if workers > 1 else ""))
    return f"nginx -e {workdir}/error.log -c {conf}"


def make_media(seconds: int = 30) -> pathlib.Path:
    if MEDIA.exists():
        return MEDIA
    CACHE.mkdir(exist_ok=True)
    subprocess.run([
        imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30", "-f", "lavfi", "-i", "sine=frequency=440",
        "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-b:v", "2500k", "-maxrate", "2500k",
        "-bufsize", "5000k", "-g", "60", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", str(MEDIA),
    ], check=True)
    return MEDIA


def media_bitrate(path: pathlib.Path) -> float:
    """Bytes per second of the FLV (what each player should receive)."""
    probe = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)],
                           capture_output=True, text=True)
    duration = next(line for line in probe.stderr.splitlines() if "Duration:" in line)
    h, m, s = duration.split("Duration:")[1].split(",")[0].strip().split(":")
    return path.stat().st_size / (int(h) * 3600 + int(m) * 60 + float(s))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (a server's worker processes)."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        try:
            for task in pathlib.Path(f"/proc/{current}/task").iterdir():
                todo.extend(int(child) for child in (task / "children").read_text().split())
        except OSError:
            continue
    return pids


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its descendants, threads included."""
    total = 0.0
    for member in process_tree(pid):
        try:
            for task in pathlib.Path(f"/proc/{member}/task").iterdir():
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        except OSError:
            continue
    return total


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its descendants."""
    total = 0.0
    for member in process_tree(pid):
        try:
            for line in pathlib.Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            continue
    return total


def stop_all(processes: list[subprocess.Popen | None]) -> None:  # type: ignore[type-arg]
    """Terminate the processes still running, in order; kill those that linger."""
    for process in processes:
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


def wait_for_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port}")


def server_name(args: argparse.Namespace) -> str:
    if args.nginx:
        return "nginx-rtmp" if args.nginx_workers == 1 else f"nginx-rtmp ({args.nginx_workers} workers)"
    if args.server_cmd:
        return str(args.server_cmd.split()[0])
    name = "neurtmp" if args.workers == "1" else f"neurtmp --workers {args.workers}"
    return f"{name} (HTTP-FLV players)" if args.http_flv else name


def run_case(args: argparse.Namespace, players: int, bitrate: float) -> dict[str, object]:
    port = free_port()
    if args.nginx:
        command = nginx_command(port, args.nginx_workers)
    elif args.server_cmd:
        command = args.server_cmd.format(port=port)
    else:
        command = (f"{shlex.quote(sys.executable)} -m neurtmp.cli serve --listen 127.0.0.1:{port} "
                   f"--log-level warning --flush-interval {args.flush_ms} --workers {args.workers}")
    http_port = 0
    if args.http_flv:
        http_port = free_port()
        command += f" --http 127.0.0.1:{http_port}"
    server = subprocess.Popen(["taskset", "-c", args.server_core, *shlex.split(command)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    publisher = swarm = None
    try:
        wait_for_port(port)
        publisher = subprocess.Popen(
            ["taskset", "-c", args.load_cores, imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel",
             "error", "-re", "-stream_loop", "-1", "-i", str(MEDIA), "-c", "copy", "-f", "flv",
             f"rtmp://127.0.0.1:{port}/live/bench"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(2)
        swarm = subprocess.Popen(
            ["taskset", "-c", args.load_cores, sys.executable, str(HERE / "_swarm.py"), "127.0.0.1", str(port),
             "live", "bench", str(players), str(args.warmup), str(args.window), str(args.read_kib * 1024),
             str(args.read_interval_ms), str(http_port)],
            stdout=subprocess.PIPE, text=True)
        cpu_start = wall_start = swarm_cpu_start = 0.0
        result: dict[str, object] = {}
        assert swarm.stdout is not None
        for line in swarm.stdout:
            message = json.loads(line)
            if message["event"] == "window_start":
                cpu_start, wall_start = cpu_seconds(server.pid), time.monotonic()
                swarm_cpu_start = cpu_seconds(swarm.pid)
            elif message["event"] == "window_end":
                cpu = cpu_seconds(server.pid) - cpu_start
                wall = time.monotonic() - wall_start
                swarm_cpu = cpu_seconds(swarm.pid) - swarm_cpu_start
                rss = rss_mb(server.pid)
            elif message["event"] == "result":
                result = message
        swarm.wait(30)
        delivered = result["delivered"]
        window = float(result["window_seconds"])  # type: ignore[arg-type]
        expected = bitrate * window
        healthy = sum(1 for d in delivered if d >= 0.95 * expected)  # type: ignore[union-attr]
        total_bits = sum(delivered) * 8  # type: ignore[arg-type]
        return {
            "server": server_name(args),
            "players": players,
            "read_kib": args.read_kib,
            "read_interval_ms": args.read_interval_ms,
            "players_connected": result["players"],
            "players_healthy": healthy,
            "stream_mbit": round(bitrate * 8 / 1e6, 2),
            "delivered_gbit_per_s": round(total_bits / window / 1e9, 3),
            "server_cpu": round(cpu / wall, 3),
            "server_rss_mb": round(rss, 1),
            "cpu_s_per_gbit": round(cpu / (total_bits / 1e9), 3) if total_bits else None,
            "first_media_ms": round(result["first_media_median_ms"], 1) if result["first_media_median_ms"] else None,
            "players_cpu": round(swarm_cpu / wall, 3),
            "window_s": round(window, 1),
        }
    finally:
        stop_all([swarm, publisher, server])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--players", default="100,500,1000", help="comma-separated player counts")
    parser.add_argument("--window", type=float, default=10.0, help="measurement window in seconds")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds after the last player connects")
    parser.add_argument("--flush-ms", type=float, default=50.0, help="neurtmp --flush-interval in ms")
    parser.add_argument("--read-kib", type=int, default=1024, help="the most each player reads at once, KiB")
    parser.add_argument("--read-interval-ms", type=float, default=0.0,
                        help="each player reads at most once per this many ms (a cheaper load generator)")
    parser.add_argument("--server-core", default="0", help="core(s) the server is pinned to")
    parser.add_argument("--load-cores", default="1", help="core(s) for the publisher and the players")
    parser.add_argument("--server-cmd", help="another server's command line; {port} is replaced")
    parser.add_argument("--nginx", action="store_true", help="run nginx with the rtmp module instead")
    parser.add_argument("--workers", default="1", help="neurtmp serve --workers (processes sharing the port)")
    parser.add_argument("--http-flv", action="store_true", help="the players play over HTTP-FLV (neurtmp --http)")
    parser.add_argument("--nginx-workers", type=int, default=1, help="nginx worker_processes")
    args = parser.parse_args()
    bitrate = media_bitrate(make_media())
    for players in (int(n) for n in args.players.split(",")):
        print(json.dumps(run_case(args, players, bitrate)), flush=True)


if __name__ == "__main__":
    main()
