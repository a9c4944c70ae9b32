"""Steer the scenes of a render_stream viewer connection with remote calls.

    python examples/render_stream/client.py rtmp://127.0.0.1:1935/demo set_color 255 0 0

It plays `scene` itself (so it has a scene to steer), makes the call, prints the answer,
and keeps watching for --seconds, counting the frames it receives. Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time

import gevent

import neurtmp

ev = neurtmp.events


def _value(text: str) -> object:
    if text in ("true", "false"):
        return text == "true"
    try:
        return float(text)
    except ValueError:
        return text


def watch(args: argparse.Namespace) -> None:
    """Play, make the call, print the answer, count frames for `args.seconds`."""
    with neurtmp.connect(args.url) as client:
        client.play(args.stream)
        print(client.call(args.call, *(_value(a) for a in args.arguments)), flush=True)
        frames, end = 0, time.monotonic() + args.seconds
        while time.monotonic() < end:
            try:
                if isinstance(client.read(timeout=1), ev.VideoReceived):
                    frames += 1
            except TimeoutError:
                pass
        print(f"{frames} video frames in {args.seconds:g} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", help="rtmp://HOST[:PORT]/APP")
    parser.add_argument("call", help="set_speed | set_color | pause_scene")
    parser.add_argument("arguments", nargs="*")
    parser.add_argument("--stream", default="scene", help="stream name to play (default %(default)s)")
    parser.add_argument("--seconds", type=float, default=3.0, help="how long to keep watching")
    args = parser.parse_args()
    watcher = gevent.spawn(watch, args)
    interrupted: list[int] = []

    def interrupt(signum: int) -> None:
        interrupted.append(signum)
        watcher.kill(block=False)  # it closes the connection on its way out

    for signum in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C or kill: stop watching, quietly
        gevent.signal_handler(signum, interrupt, signum)
    watcher.join()
    if interrupted:
        return 128 + interrupted[0]
    watcher.get()  # raise what made it fail
    return 0


if __name__ == "__main__":
    sys.exit(main())
