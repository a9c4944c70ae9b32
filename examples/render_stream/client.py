"""Steer the scenes of a render_stream viewer connection with remote calls.

    python examples/render_stream/client.py rtmp://127.0.0.1:1935/demo set_color 255 0 0

It plays `scene` itself (so it has a scene to steer), makes the call, prints the answer,
and keeps watching for --seconds, counting the frames it receives.
"""

from __future__ import annotations

import argparse
import time

import neurtmp

ev = neurtmp.events


def _value(text: str) -> object:
    if text in ("true", "false"):
        return text == "true"
    try:
        return float(text)
    except ValueError:
        return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", help="rtmp://HOST[:PORT]/APP")
    parser.add_argument("call", help="set_speed | set_color | pause_scene")
    parser.add_argument("arguments", nargs="*")
    parser.add_argument("--stream", default="scene", help="stream name to play (default %(default)s)")
    parser.add_argument("--seconds", type=float, default=3.0, help="how long to keep watching")
    args = parser.parse_args()
    with neurtmp.connect(args.url) as client:
        client.play(args.stream)
        print(client.call(args.call, *(_value(a) for a in args.arguments)))
        frames, end = 0, time.monotonic() + args.seconds
        while time.monotonic() < end:
            try:
                if isinstance(client.read(timeout=1), ev.VideoReceived):
                    frames += 1
            except TimeoutError:
                pass
        print(f"{frames} video frames in {args.seconds:g} s")


if __name__ == "__main__":
    main()
