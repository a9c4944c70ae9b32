"""How fast the server protocol parses a realistic publish stream.

A client publishes 30 fps H.264-sized video (about 2.5 Mbit/s, a key frame every 2 s)
and 44.1 kHz AAC-sized audio with 4096-byte chunks; the bytes are fed to a
ServerProtocol in 64 KiB reads, as a socket loop would. Prints one JSON line.

    python bench/protocol_parse.py [--seconds 60] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

from neurtmp.protocol import ClientProtocol, ServerProtocol
from neurtmp.protocol import events as ev
from neurtmp.protocol.handshake import ClientHandshake

VIDEO_FPS = 30
AUDIO_RATE = 44100 / 1024  # AAC frames per second
BITRATE = 2_500_000
READ_SIZE = 65536


def build_stream(seconds: int) -> tuple[bytes, bytes, int]:
    """(handshake bytes, session bytes, number of media messages)."""
    server = ServerProtocol()
    client = ClientProtocol(handshake=ClientHandshake(digest=False))
    hello = client.data_to_send()
    server.receive_data(hello)
    client.receive_data(server.data_to_send())
    handshake = hello + client.data_to_send()
    client.set_chunk_size(4096)
    client.connect("live", "rtmp://127.0.0.1/live")
    client.create_stream()
    client.publish(1, "bench")
    frame_bytes = BITRATE // 8 // VIDEO_FPS
    random_block = os.urandom(frame_bytes * 8)
    messages = 0
    audio_clock = 0.0
    for frame in range(seconds * VIDEO_FPS):
        key = frame % (2 * VIDEO_FPS) == 0
        size = frame_bytes * 6 if key else frame_bytes * 9 // 10
        ts = frame * 1000 // VIDEO_FPS
        client.send_video(1, ts, bytes((0x17 if key else 0x27, 1, 0, 0, 0)) + random_block[:size])
        messages += 1
        while audio_clock <= ts:
            client.send_audio(1, int(audio_clock), b"\xaf\x01" + random_block[:180])
            audio_clock += 1000 / AUDIO_RATE
            messages += 1
    return handshake, client.data_to_send(), messages


def parse_once(handshake: bytes, session: bytes) -> tuple[float, int]:
    server = ServerProtocol()
    server.receive_data(handshake)
    view = memoryview(session)
    media = 0
    start = time.perf_counter()
    for offset in range(0, len(session), READ_SIZE):
        for event in server.receive_data(view[offset : offset + READ_SIZE]):
            if isinstance(event, (ev.VideoReceived, ev.AudioReceived)):
                media += 1
        server.data_to_send()
    return time.perf_counter() - start, media


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=60, help="seconds of stream to generate")
    parser.add_argument("--repeat", type=int, default=5, help="parse runs; the best is reported")
    args = parser.parse_args()
    handshake, session, messages = build_stream(args.seconds)
    best = min(parse_once(handshake, session) for _ in range(args.repeat))
    elapsed, media = best
    assert media == messages, (media, messages)
    print(json.dumps({
        "bench": "protocol_parse",
        "python": platform.python_version(),
        "stream_seconds": args.seconds,
        "messages": messages,
        "bytes": len(session),
        "seconds": round(elapsed, 4),
        "messages_per_s": round(messages / elapsed),
        "mb_per_s": round(len(session) / elapsed / 1e6, 1),
        "realtime_factor": round(args.seconds / elapsed),
    }))


if __name__ == "__main__":
    main()
