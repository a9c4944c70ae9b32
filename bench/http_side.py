"""The operator side's costs: what a publish hook adds before Publish.Start, and how fast
the JSON API answers while a stream fans out to many players.

1. Publish with and without `--on-publish` (a hook server in this process that answers
   204 at once): the time from sending `publish` to receiving NetStream.Publish.Start,
   median and p95 over N publishes each, and the difference.
2. `neurtmp serve --http` with a publisher (bundled ffmpeg, the 720p30 bench media) and
   P players (bench/_swarm.py): GET /api/v1/streams and /api/v1/clients, median and p99
   over the window, while the stream flows.

    python bench/http_side.py --publishes 50 --players 1000
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
from fanout import MEDIA, free_port, make_media, stop_all, wait_for_port  # noqa: E402

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
        timings: dict[str, list[float]] = {"streams": [], "clients": []}
        sizes: dict[str, int] = {}
        deadline = time.monotonic() + window
        connection = http.client.HTTPConnection("127.0.0.1", http_port, timeout=10)
        while time.monotonic() < deadline:
            for what in timings:
                started = time.perf_counter()
                connection.request("GET", f"/api/v1/{what}")
                body = connection.getresponse().read()
                timings[what].append((time.perf_counter() - started) * 1000)
                sizes[what] = len(body)
            time.sleep(0.05)
        result: dict[str, object] = {"case": "api", "players": players}
        for what, values in timings.items():
            values.sort()
            result[f"{what}_median_ms"] = round(statistics.median(values), 2)
            result[f"{what}_p99_ms"] = round(values[int(len(values) * 0.99)], 2)
            result[f"{what}_bytes"] = sizes[what]
            result[f"{what}_requests"] = len(values)
        return result
    finally:
        stop_all([swarm, publisher, server])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--publishes", type=int, default=50)
    parser.add_argument("--players", type=int, default=1000)
    parser.add_argument("--window", type=float, default=10.0)
    args = parser.parse_args()
    make_media()
    figures = {}
    for hook in (False, True):
        values = sorted(hook_case(args.publishes, hook))
        figures[hook] = statistics.median(values)
        print(json.dumps({"case": "publish_start", "hook": hook, "publishes": len(values),
                          "median_ms": round(statistics.median(values), 2),
                          "p95_ms": round(values[int(len(values) * 0.95)], 2)}), flush=True)
    print(json.dumps({"case": "hook_added_ms", "median": round(figures[True] - figures[False], 2)}), flush=True)
    print(json.dumps(api_case(args.players, args.window)), flush=True)


if __name__ == "__main__":
    main()
