"""The player swarm of bench/fanout.py: N raw-socket RTMP players in one process.

Each player does the plain handshake, sends connect + createStream + play pipelined,
parses what arrives only until its first video message (time to first media), then just
counts bytes and sends an Acknowledgement every window. Output: JSON lines on stdout.

    python bench/_swarm.py HOST PORT APP STREAM N WARMUP WINDOW [READ_SIZE [INTERVAL_MS [HTTP_PORT]]]

READ_SIZE (default 1 MiB) is the most each recv asks for: small reads make a player that
the kernel wakes often and hands little at a time. INTERVAL_MS (default 0) makes every
player read at most once per that many milliseconds, as a player's decode loop would:
it keeps this process cheap when a server sends each message on its own (a saturated
load generator measures itself). HTTP_PORT (default 0: RTMP) makes every player an
HTTP-FLV player instead: ``GET /APP/STREAM.flv`` on that port, then counting.
"""

from __future__ import annotations

import json
import select
import socket
import sys
import time

from neurtmp.protocol import ClientProtocol
from neurtmp.protocol import events as ev
from neurtmp.protocol.chunk import encode_message
from neurtmp.protocol.control import acknowledgement
from neurtmp.protocol.handshake import ClientHandshake

HANDSHAKE_REPLY = 1 + 2 * 1536
ACK_WINDOW = 2_500_000
RAMP_PER_SECOND = 400


def session_bytes(app: str, stream: str | None, host: str, port: int) -> tuple[bytes, bytes]:
    """(C0+C1, C2 + connect/createStream/play) for a plain-handshake player (no play
    when `stream` is None: an idle client)."""
    client = ClientProtocol(handshake=ClientHandshake(digest=False))
    hello = client.data_to_send()
    client.receive_data(b"\x03" + bytes(1536) + bytes(1536))  # a plain S0/S1/S2: zeros
    client.data_to_send()  # our C2 for those zeros; a real C2 is the server's S1, echoed per player
    client.connect(app, f"rtmp://{host}:{port}/{app}")
    client.create_stream()
    if stream is not None:
        client.play(1, stream, -1)
    return hello, client.data_to_send()


def new_parser() -> ClientProtocol:
    parser = ClientProtocol(handshake=ClientHandshake(digest=False))
    parser.data_to_send()
    parser.receive_data(b"\x03" + bytes(3072))
    parser.data_to_send()
    return parser


class Player:
    __slots__ = ("sock", "state", "buffer", "received", "play_sent", "first_media", "parser", "next_ack")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.state = "handshake"
        self.buffer = b""
        self.received = 0
        self.play_sent = 0.0
        self.first_media: float | None = None
        self.parser: ClientProtocol | None = None
        self.next_ack = ACK_WINDOW


def _flv_video_started(data: bytes) -> bool:
    """Whether an HTTP-FLV response holds the start of its first video tag."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return False
    at = end + 4 + 13  # the FLV header and the first back pointer
    while at + 11 <= len(data):
        if data[at] == 9:
            return True
        at += 11 + int.from_bytes(data[at + 1:at + 4], "big") + 4
    return False


def main() -> None:
    host, port, app, stream = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    count, warmup, window = int(sys.argv[5]), float(sys.argv[6]), float(sys.argv[7])
    read_size = int(sys.argv[8]) if len(sys.argv) > 8 else 1 << 20
    interval = float(sys.argv[9]) / 1000 if len(sys.argv) > 9 else 0.0
    http_port = int(sys.argv[10]) if len(sys.argv) > 10 else 0
    http_request = f"GET /{app}/{stream}.flv HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    hello, commands = session_bytes(app, stream, host, port)
    poller = select.epoll()
    by_fd: dict[int, Player] = {}
    players: list[Player] = []
    scratch = bytearray(read_size)
    failed = 0

    def connect_one() -> None:
        nonlocal failed
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 256 * 1024)
        try:
            sock.connect((host, http_port or port))
        except OSError:
            failed += 1
            sock.close()
            return
        sock.setblocking(False)
        player = Player(sock)
        if http_port:
            sock.sendall(http_request)
            player.state = "http"
            player.play_sent = time.monotonic()
            player.next_ack = 1 << 62  # nothing to acknowledge over HTTP
        else:
            sock.sendall(hello)
        players.append(player)
        by_fd[sock.fileno()] = player
        poller.register(sock.fileno(), select.EPOLLIN)

    def on_readable(player: Player) -> None:
        sock = player.sock
        try:
            n = sock.recv_into(scratch)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            n = 0
        if not n:
            poller.unregister(sock.fileno())
            sock.close()
            player.state = "closed"
            return
        player.received += n
        if player.state == "http":
            player.buffer += scratch[:n]
            if _flv_video_started(player.buffer):
                player.first_media = time.monotonic() - player.play_sent
                player.state = "counting"
                player.buffer = b""
            return
        if player.state == "handshake":
            player.buffer += scratch[:n]
            if len(player.buffer) < HANDSHAKE_REPLY:
                return
            s1 = player.buffer[1:1537]
            rest = player.buffer[HANDSHAKE_REPLY:]
            player.buffer = b""
            sock.setblocking(True)
            sock.sendall(s1 + commands)
            sock.setblocking(False)
            player.play_sent = time.monotonic()
            player.state = "starting"
            player.parser = new_parser()
            if not rest:
                return
            data = rest
        elif player.state == "starting":
            data = bytes(scratch[:n])
        else:
            if player.received >= player.next_ack:
                player.next_ack += ACK_WINDOW
                ack = acknowledgement(player.received)
                try:
                    sock.send(encode_message(ack.type_id, 0, 0, ack.payload, 2, 128))
                except OSError:
                    pass
            return
        assert player.parser is not None
        for event in player.parser.receive_data(data):
            if isinstance(event, ev.VideoReceived):
                player.first_media = time.monotonic() - player.play_sent
                player.state = "counting"
                player.parser = None
                break

    def pump(seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while True:
            now = time.monotonic()
            remaining = deadline - now
            if remaining <= 0:
                return
            for fd, _ in poller.poll(min(remaining, 0.05)):
                player = by_fd[fd]
                if player.state != "counting" or player.received >= player.next_ack:
                    on_readable(player)
                    continue
                try:  # the common case, kept short: count what arrived
                    n = player.sock.recv_into(scratch)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    n = 0
                if n:
                    player.received += n
                else:
                    on_readable(player)  # closed: let the general path tidy up
            if interval:
                time.sleep(max(0.0, now + interval - time.monotonic()))

    started = time.monotonic()
    for i in range(count):
        connect_one()
        if i % 50 == 49:
            pump(50 / RAMP_PER_SECOND)
    pump(warmup)
    ramp_seconds = time.monotonic() - started
    before = [p.received for p in players]
    print(json.dumps({"event": "window_start"}), flush=True)
    window_start = time.monotonic()
    pump(window)
    elapsed = time.monotonic() - window_start
    print(json.dumps({"event": "window_end"}), flush=True)
    delivered = [p.received - b for p, b in zip(players, before, strict=True)]
    latencies = sorted(p.first_media for p in players if p.first_media is not None)
    print(json.dumps({
        "event": "result",
        "players": len(players),
        "connect_failures": failed,
        "closed": sum(1 for p in players if p.state == "closed"),
        "started": len(latencies),
        "window_seconds": elapsed,
        "ramp_seconds": ramp_seconds,
        "delivered": delivered,
        "first_media_median_ms": 1000 * latencies[len(latencies) // 2] if latencies else None,
        "first_media_p95_ms": 1000 * latencies[int(len(latencies) * 0.95)] if latencies else None,
    }), flush=True)


if __name__ == "__main__":
    main()
