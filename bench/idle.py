"""Idle cost: `neurtmp serve` at rest, then holding N idle clients.

Starts `neurtmp serve` (or `--nginx`), reads its resident memory at rest, then opens N
clients from one separate process: each does the plain handshake, connect and
createStream, then stays idle (answering nothing; the hold is shorter than the server's
idle timeout). Prints one JSON line per N: the server's RSS at rest and with N clients
held, the memory per connection, how many clients were still connected at the end, and
the client process's own CPU.

    python bench/idle.py --clients 1000,10000
"""

from __future__ import annotations

import argparse
import functools
import json
import selectors
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _swarm import HANDSHAKE_REPLY, session_bytes  # noqa: E402
from fanout import cpu_seconds, free_port, nginx_command, rss_mb, wait_for_port  # noqa: E402

#: Connections opened before pumping replies (keeps the listen backlog short).
_BURST = 200


def hold_clients(port: int, count: int, hold: float, measure: Callable[[], float]) -> dict[str, float]:
    """Open `count` idle clients; after `hold` seconds, `measure()` (the server's RSS),
    then how many were set up and are still open."""
    hello, commands = session_bytes("live", None, "127.0.0.1", port)
    selector = selectors.DefaultSelector()
    pending: dict[socket.socket, bytearray] = {}
    ready: list[socket.socket] = []
    closed = 0

    def pump(timeout: float) -> None:
        nonlocal closed
        for key, _ in selector.select(timeout):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            try:
                data = sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                selector.unregister(sock)
                closed += 1
                pending.pop(sock, None)
                continue
            buffer = pending.get(sock)
            if buffer is None:
                continue  # set up already: what follows (replies, pings) is not read further
            buffer += data
            if len(buffer) >= HANDSHAKE_REPLY:
                sock.setblocking(True)
                sock.sendall(bytes(buffer[1:1537]) + commands)
                sock.setblocking(False)
                del pending[sock]
                ready.append(sock)

    started = time.monotonic()
    sockets = []
    for i in range(count):
        sock = socket.socket()
        sock.connect(("127.0.0.1", port))
        sock.setblocking(False)
        sock.sendall(hello)
        pending[sock] = bytearray()
        sockets.append(sock)
        selector.register(sock, selectors.EVENT_READ)
        if i % _BURST == _BURST - 1:
            while len(pending) > _BURST:
                pump(0.05)
    deadline = time.monotonic() + 30
    while pending and time.monotonic() < deadline:
        pump(0.05)
    setup = time.monotonic() - started
    end = time.monotonic() + hold
    while time.monotonic() < end:
        pump(0.05)
    pump(0)
    result = {"set_up": len(ready), "still_open": len(ready) - closed, "setup_s": round(setup, 1),
              "rss_mb": measure()}
    for sock in sockets:
        sock.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", default="1000,10000", help="comma-separated client counts")
    parser.add_argument("--hold", type=float, default=5.0, help="seconds to hold the clients before measuring")
    parser.add_argument("--nginx", action="store_true", help="measure nginx with the rtmp module instead")
    parser.add_argument("--serve-args", default="", help="extra arguments for neurtmp serve")
    args = parser.parse_args()
    for count in (int(n) for n in args.clients.split(",")):
        port = free_port()
        if args.nginx:
            command = nginx_command(port)
        else:
            command = (f"{shlex.quote(sys.executable)} -m neurtmp.cli serve --listen 127.0.0.1:{port} "
                       f"--log-level warning --max-connections {count + 100} {args.serve_args}")
        server = subprocess.Popen(shlex.split(command), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for_port(port)
            time.sleep(1)
            at_rest = rss_mb(server.pid)
            client_cpu = time.process_time()
            held = hold_clients(port, count, args.hold, functools.partial(rss_mb, server.pid))
            client_cpu = time.process_time() - client_cpu
            server_cpu = cpu_seconds(server.pid)
        finally:
            server.terminate()
            server.wait(10)
        loaded = held.pop("rss_mb")
        print(json.dumps({
            "server": "nginx-rtmp" if args.nginx else "neurtmp",
            "clients": count,
            **held,
            "rss_at_rest_mb": round(at_rest, 1),
            "rss_with_clients_mb": round(loaded, 1),
            "kib_per_connection": round((loaded - at_rest) * 1024 / max(1, held["still_open"]), 1),
            "server_cpu_s": round(server_cpu, 2),
            "client_cpu_s": round(client_cpu, 2),
        }), flush=True)


if __name__ == "__main__":
    main()
