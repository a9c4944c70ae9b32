"""The operator side's costs: what a publish hook adds before Publish.Start, and how fast
the JSON API answers while a stream fans out to many players.

1. Publish with and without `--on-publish` (a hook server in this process that answers
   204 at once): the time from sending `publish` to receiving NetStream.Publish.Start,
   median and p95 over N publishes each, and the difference.
2. `neurtmp serve --http` with a publisher (bundled ffmpeg, the 720p30 bench media) and
   P players (bench/_swarm.py), all sharing the machine's cores: over the window, GET
   /api/v1/streams and /api/v1/clients on one keep-alive connection, and /api/v1/streams
   on a new connection each time, while the stream flows. For each, p50 and p99 of:

     client_ms   what this process measured (request sent to body read; for the fresh
                 connections, connect included)
     total_ms    what the server measured (its Server-Timing `total`: request line read,
                 or for a connection's first request the accept, to the response head)
     app_ms      the server's `app`: the application's call to the body built

   client_ms far above total_ms is time the request waited before the server read it.
   Beside them: the longest a flush held the server's hub (the /metrics gauge, sampled
   each second: median and max), the CPU (fraction of one core) of the server, this
   process and the players, and the share of the window the server waited for a core
   (run-queue time from /proc/PID/schedstat).

    python bench/http_side.py --publishes 40 --players 1000
    python bench/http_side.py --cases api --players 1000 --window 30
"""

from __future__ import annotations

import argparse
import http.client
import json
import shlex
import socket
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import imageio_ffmpeg  # noqa: E402
from fanout import MEDIA, cpu_seconds, free_port, make_media, stop_all, wait_for_port  # noqa: E402

from neurtmp.protocol import ClientProtocol  # noqa: E402
from neurtmp.protocol import events as ev  # noqa: E402


class _Hook(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 (the handler's name)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def publish_start_ms(port: int, name: str) -> float:
    """Milliseconds from sending `publish` to Publish.Start, with our sans-IO client on a
    blocking socket (the handshake and connect come before the clock starts)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # (else Nagle adds its 40 ms)
    client = ClientProtocol()
    sock.sendall(client.data_to_send())

    def until(done: object) -> None:
        while True:
            events = client.receive_data(sock.recv(65536))
            sock.sendall(client.data_to_send())
            if any(done(e) for e in events):  # type: ignore[operator]
                return

    until(lambda e: False if not client.handshake_done else True)
    client.connect("live", f"rtmp://127.0.0.1:{port}/live")
    client.create_stream()
    sock.sendall(client.data_to_send())
    until(lambda e: isinstance(e, ev.ResultReceived) and e.transaction_id == 2)
    started = time.perf_counter()
    client.publish(1, name)
    sock.sendall(client.data_to_send())
    until(lambda e: isinstance(e, ev.StatusReceived))
    elapsed = (time.perf_counter() - started) * 1000
    sock.close()
    return elapsed


def hook_case(publishes: int, hook: bool) -> list[float]:
    port = free_port()
    command = [sys.executable, "-m", "neurtmp.cli", "serve", "--listen", f"127.0.0.1:{port}", "--log-level", "warning"]
    hook_server = None
    if hook:
        hook_server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
        threading.Thread(target=hook_server.serve_forever, daemon=True).start()
        command += ["--on-publish", f"http://127.0.0.1:{hook_server.server_port}/auth"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        return [publish_start_ms(port, f"s{i}") for i in range(publishes)]
    finally:
        stop_all([server])
        if hook_server is not None:
            hook_server.shutdown()


def _schedstat_wait(pid: int) -> float:
    """Seconds the process's threads have waited on a run queue (Linux schedstat)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total / 1e9


def _server_timing(response: http.client.HTTPResponse) -> dict[str, float]:
    """The `name;dur=MS` entries of a response's Server-Timing headers."""
    timings = {}
    for header in response.headers.get_all("Server-Timing") or []:
        for entry in header.split(","):
            name, _, rest = entry.strip().partition(";")
            if rest.startswith("dur="):
                timings[name] = float(rest[4:])
    return timings


def _percentiles(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    if not values:
        return {}
    return {"p50": round(statistics.median(values), 2), "p99": round(values[min(len(values) - 1,
                                                                               int(len(values) * 0.99))], 2)}


class _Series:
    """One kind of request: client-measured and server-measured milliseconds."""

    def __init__(self) -> None:
        self.client: list[float] = []
        self.server: dict[str, list[float]] = {"total": [], "app": []}
        self.size = 0

    def add(self, client_ms: float, response: http.client.HTTPResponse, body: bytes) -> None:
        assert response.status == 200, (response.status, body[:200])
        self.client.append(client_ms)
        timing = _server_timing(response)
        for name, values in self.server.items():
            if name in timing:
                values.append(timing[name])
        self.size = len(body)

    def figures(self) -> dict[str, object]:
        return {"requests": len(self.client), "bytes": self.size, "client_ms": _percentiles(self.client),
                "total_ms": _percentiles(self.server["total"]), "app_ms": _percentiles(self.server["app"])}


def _flush_hold_ms(http_port: int) -> float | None:
    body = http.client.HTTPConnection("127.0.0.1", http_port, timeout=10)
    try:
        body.request("GET", "/metrics")
        text = body.getresponse().read().decode()
    finally:
        body.close()
    for line in text.splitlines():
        if line.startswith("neurtmp_flush_hold_seconds "):
            return float(line.split()[1]) * 1000
    return None


def api_case(players: int, window: float) -> dict[str, object]:
    port, http_port = free_port(), free_port()
    server = subprocess.Popen(shlex.split(f"{shlex.quote(sys.executable)} -m neurtmp.cli serve --listen "
                                          f"127.0.0.1:{port} --http 127.0.0.1:{http_port} --log-level warning"),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    publisher = swarm = None
    try:
        wait_for_port(port)
        wait_for_port(http_port)
        publisher = subprocess.Popen(
            [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1",
             "-i", str(MEDIA), "-c", "copy", "-f", "flv", f"rtmp://127.0.0.1:{port}/live/bench"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(2)
        swarm = subprocess.Popen([sys.executable, str(HERE / "_swarm.py"), "127.0.0.1", str(port), "live", "bench",
                                  str(players), "3", str(window + 5)], stdout=subprocess.PIPE, text=True)
        assert swarm.stdout is not None
        for line in swarm.stdout:  # wait for every player to have joined
            if json.loads(line)["event"] == "window_start":
                break
        series = {"streams": _Series(), "clients": _Series(), "streams_fresh": _Series()}
        holds: list[float] = []
        connection = http.client.HTTPConnection("127.0.0.1", http_port, timeout=10)
        started, cpu = time.monotonic(), time.process_time()
        server_cpu, players_cpu, server_wait = cpu_seconds(server.pid), cpu_seconds(swarm.pid), _schedstat_wait(
            server.pid)
        deadline, next_scrape = started + window, started + 1
        while time.monotonic() < deadline:
            for what in ("streams", "clients"):
                begun = time.perf_counter()
                connection.request("GET", f"/api/v1/{what}")
                response = connection.getresponse()
                body = response.read()
                series[what].add((time.perf_counter() - begun) * 1000, response, body)
            begun = time.perf_counter()
            fresh = http.client.HTTPConnection("127.0.0.1", http_port, timeout=10)
            fresh.request("GET", "/api/v1/streams")
            response = fresh.getresponse()
            body = response.read()
            series["streams_fresh"].add((time.perf_counter() - begun) * 1000, response, body)
            fresh.close()
            if time.monotonic() >= next_scrape:
                next_scrape += 1
                hold = _flush_hold_ms(http_port)
                if hold is not None:
                    holds.append(hold)
            time.sleep(0.05)
        wall = time.monotonic() - started
        result: dict[str, object] = {
            "case": "api", "players": players, "window_s": round(wall, 1),
            **{what: one.figures() for what, one in series.items()},
            "flush_hold_ms": {"median": round(statistics.median(holds), 1), "max": round(max(holds), 1)}
            if holds else None,
            "server_cpu": round((cpu_seconds(server.pid) - server_cpu) / wall, 3),
            "server_waiting_for_a_core": round((_schedstat_wait(server.pid) - server_wait) / wall, 3),
            "bench_cpu": round((time.process_time() - cpu) / wall, 3),
            "players_cpu": round((cpu_seconds(swarm.pid) - players_cpu) / wall, 3),
        }
        return result
    finally:
        stop_all([swarm, publisher, server])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default="hook,api", help="which parts to run (hook, api)")
    parser.add_argument("--publishes", type=int, default=50)
    parser.add_argument("--players", type=int, default=1000)
    parser.add_argument("--window", type=float, default=20.0)
    args = parser.parse_args()
    cases = set(args.cases.split(","))
    make_media()
    if "hook" in cases:
        figures = {}
        for hook in (False, True):
            values = sorted(hook_case(args.publishes, hook))
            figures[hook] = statistics.median(values)
            print(json.dumps({"case": "publish_start", "hook": hook, "publishes": len(values),
                              "median_ms": round(statistics.median(values), 2),
                              "p95_ms": round(values[int(len(values) * 0.95)], 2)}), flush=True)
        print(json.dumps({"case": "hook_added_ms", "median": round(figures[True] - figures[False], 2)}), flush=True)
    if "api" in cases:
        print(json.dumps(api_case(args.players, args.window)), flush=True)


if __name__ == "__main__":
    main()
