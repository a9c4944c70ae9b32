"""Latency: the delay the server adds between a publisher and its players.

A publisher (our client, its own process) sends 30 fps video of ~11 KB a frame (2.7
Mbit/s) and 50 audio messages a second, each stamped with the machine's monotonic clock
at the moment it is written. N players (one process, raw sockets) play the stream; a few
"probe" players parse every message and record `now - stamp`, the rest just read. The
server runs on core 0, publisher and players on core 1. The figure includes the
publisher's and the players' own scheduling, so the players' CPU is printed too: a busy
generator measures itself.

    python bench/latency.py --players 100                # neurtmp serve, merged writes
    python bench/latency.py --players 100 --low-latency  # neurtmp serve --low-latency
    python bench/latency.py --players 100 --nginx
"""

from __future__ import annotations

import argparse
import json
import selectors
import shlex
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _swarm import HANDSHAKE_REPLY, new_parser, session_bytes  # noqa: E402
from fanout import cpu_seconds, free_port, nginx_command, stop_all, wait_for_port  # noqa: E402

STAMP = struct.Struct(">d")
AVC_HEADER = b"\x17\x00\x00\x00\x00\x01\x64\x00\x1f\xff\xe1\x00\x04\x67\x64\x00\x1f\x01\x00\x04\x68\xeb\xe3\xcb"


def publish(port: int, seconds: float, fps: float = 30.0, frame_bytes: int = 11_000) -> None:
    """The publisher process: stamped video and audio in real time."""
    import gevent

    import neurtmp

    client = neurtmp.connect(f"rtmp://127.0.0.1:{port}/live", timeout=10)
    client.publish("latency")
    client.send_video(AVC_HEADER, 0)
    padding = bytes(frame_bytes)
    started = time.monotonic()
    frame = audio = 0
    while True:
        now = time.monotonic()
        elapsed = now - started
        if elapsed > seconds:
            break
        if elapsed >= frame / fps:
            head = b"\x17\x01\x00\x00\x00" if frame % 60 == 0 else b"\x27\x01\x00\x00\x00"
            client.send_video(head + STAMP.pack(time.monotonic()) + padding, int(elapsed * 1000))
            frame += 1
        if elapsed >= audio / 50:
            client.send_audio(b"\xaf\x01" + STAMP.pack(time.monotonic()) + bytes(300), int(elapsed * 1000))
            audio += 1
        gevent.sleep(max(0.0, min(frame / fps, audio / 50) - (time.monotonic() - started)))
    client.close()


def play(port: int, players: int, probes: int, warmup: float, window: float) -> None:
    """The players process: prints one JSON line with the probes' delays."""
    hello, commands = session_bytes("live", "latency", "127.0.0.1", port)
    selector = selectors.DefaultSelector()
    state: dict[socket.socket, list] = {}  # sock -> [handshake buffer or None, parser or None]
    for i in range(players):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setblocking(False)
        sock.sendall(hello)
        state[sock] = [bytearray(), new_parser() if i < probes else None]
        selector.register(sock, selectors.EVENT_READ)
    delays: list[float] = []
    measure_from = time.monotonic() + warmup
    end = measure_from + window
    cpu_start = wall_start = None
    while (now := time.monotonic()) < end:
        if cpu_start is None and now >= measure_from:
            cpu_start, wall_start = time.process_time(), now
        for key, _ in selector.select(0.05):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            try:
                data = sock.recv(1 << 18)
            except BlockingIOError:
                continue
            if not data:
                selector.unregister(sock)
                continue
            entry = state[sock]
            if entry[0] is not None:
                entry[0] += data
                if len(entry[0]) < HANDSHAKE_REPLY:
                    continue
                data = bytes(entry[0][HANDSHAKE_REPLY:])
                sock.setblocking(True)
                sock.sendall(bytes(entry[0][1:1537]) + commands)
                sock.setblocking(False)
                entry[0] = None
            parser = entry[1]
            if parser is None:
                continue
            received = time.monotonic()
            for event in parser.receive_data(data):
                payload = getattr(event, "payload", b"")
                if received < measure_from:
                    continue
                if event.__class__.__name__ == "VideoReceived" and payload[1:2] == b"\x01":
                    delays.append(received - STAMP.unpack_from(payload, 5)[0])
                elif event.__class__.__name__ == "AudioReceived" and payload[1:2] == b"\x01":
                    delays.append(received - STAMP.unpack_from(payload, 2)[0])
    cpu = time.process_time() - cpu_start if cpu_start is not None else 0.0
    wall = time.monotonic() - wall_start if wall_start is not None else 1.0
    delays.sort()
    print(json.dumps({
        "messages": len(delays),
        "p50_ms": round(1000 * delays[len(delays) // 2], 2) if delays else None,
        "p99_ms": round(1000 * delays[int(len(delays) * 0.99)], 2) if delays else None,
        "max_ms": round(1000 * delays[-1], 2) if delays else None,
        "players_cpu": round(cpu / wall, 3),
    }), flush=True)


def run_case(args: argparse.Namespace) -> dict[str, object]:
    port = free_port()
    if args.nginx:
        command, name = nginx_command(port), "nginx-rtmp"
    else:
        mode = "--low-latency" if args.low_latency else f"--flush-interval {args.flush_ms}"
        command = (f"{shlex.quote(sys.executable)} -m neurtmp.cli serve --listen 127.0.0.1:{port} "
                   f"--log-level warning {mode}")
        name = "neurtmp --low-latency" if args.low_latency else f"neurtmp (flush {args.flush_ms:g} ms)"
    server = subprocess.Popen(["taskset", "-c", args.server_core, *shlex.split(command)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    me = [sys.executable, __file__]
    seconds = args.warmup + args.window + 3
    publisher = players = None
    try:
        wait_for_port(port)
        publisher = subprocess.Popen(["taskset", "-c", args.load_cores, *me, "--role", "publish", "--port", str(port),
                                      "--seconds", str(seconds)])
        time.sleep(1)
        players = subprocess.Popen(["taskset", "-c", args.load_cores, *me, "--role", "play", "--port", str(port),
                                    "--players", str(args.players), "--probes", str(args.probes),
                                    "--warmup", str(args.warmup), "--window", str(args.window)],
                                   stdout=subprocess.PIPE, text=True)
        cpu_before = cpu_seconds(server.pid)
        out, _ = players.communicate(timeout=seconds + 30)
        server_cpu = (cpu_seconds(server.pid) - cpu_before) / (args.warmup + args.window)
        return {"server": name, "players": args.players, "probes": args.probes, **json.loads(out.splitlines()[-1]),
                "server_cpu": round(server_cpu, 3)}
    finally:
        stop_all([players, publisher, server])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--players", type=int, default=100)
    parser.add_argument("--probes", type=int, default=10, help="players that parse and time every message")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--flush-ms", type=float, default=50.0, help="neurtmp --flush-interval in ms")
    parser.add_argument("--low-latency", action="store_true", help="neurtmp serve --low-latency")
    parser.add_argument("--nginx", action="store_true", help="run nginx with the rtmp module instead")
    parser.add_argument("--server-core", default="0")
    parser.add_argument("--load-cores", default="1")
    parser.add_argument("--role", choices=["bench", "publish", "play"], default="bench", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "publish":
        publish(args.port, args.seconds)
    elif args.role == "play":
        play(args.port, args.players, args.probes, args.warmup, args.window)
    else:
        print(json.dumps(run_case(args)), flush=True)


if __name__ == "__main__":
    main()
