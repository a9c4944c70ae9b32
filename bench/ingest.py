"""Ingest benchmark: the ladder's encode speed, its ffmpeg's CPU and memory, time to the
first playable playlist, and how late segments are listed. One JSON line per input.

`neurtmp ingest` runs as a process; the bundled ffmpeg publishes a cached 30 fps H.264/AAC
file of each size in real time (`-re -c copy`). The ladder's ffmpeg (the ingest process's
child) is sampled with psutil. Figures:

  speed               the ladder ffmpeg's own `speed=` (x real time; >= 1.0 keeps up)
  ffmpeg_cpu          its CPU time / wall time (cores)
  ffmpeg_rss_mb       its resident memory at the end
  first_playlist_s    publish -> master.m3u8 and a first segment listed in a media playlist
  listing_delay_s     how long after the end of its media time each segment was listed
                      (median): encode + segmenting delay; a player is this far behind
                      the encoder at the very best, plus its buffer
  publisher_cpu       the publisher's CPU (cores): a busy load generator measures itself
  ingest_cpu          the ingest process's own CPU (cores), without its ffmpeg

With --multitrack the input is one Enhanced RTMP v2 ladder (1280x720, 854x480, 640x360,
or with --top 1080 1920x1080, 1280x720, 854x480; key frames aligned) published three
ways: only its top track (every rung transcoded), all three tracks (every rung of those
heights passed through, -c copy; with --top 1080 the 360p rung is transcoded), and the
top and bottom tracks (the middle rung transcoded); "rungs" says which rung was copied
and which transcoded.

    python bench/ingest.py [--sizes 1280x720,1920x1080] [--seconds 20] [--encoder x264]
                           [--multitrack [--top 1080]]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import imageio_ffmpeg
import psutil

HERE = pathlib.Path(__file__).resolve().parent
CACHE = HERE / ".cache"
FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
SEGMENT = 2.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def source(size: str, seconds: int) -> pathlib.Path:
    """A cached FLV of `size` at 30 fps, with AAC, about 6 Mbit/s at 1080p."""
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"ingest-{size}-{seconds}s.flv"
    if not path.exists():
        height = int(size.split("x")[1])
        subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                        f"testsrc2=size={size}:rate=30", "-f", "lavfi", "-i", "sine=frequency=440", "-t", str(seconds),
                        "-c:v", "libx264", "-preset", "veryfast", "-b:v", f"{max(1000, height * 5)}k", "-g", "60",
                        "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "flv", str(path)], check=True)
    return path


#: The encoder's own ladders --multitrack can publish: top track height -> (size, kbit/s) per track.
MULTITRACK_LADDERS = {
    720: (("1280x720", 3000), ("854x480", 1500), ("640x360", 800)),
    1080: (("1920x1080", 5000), ("1280x720", 3000), ("854x480", 1500)),
}


def multitrack_source(seconds: int, top: int = 720) -> pathlib.Path:
    """A cached multitrack FLV: the three tracks of MULTITRACK_LADDERS[top] of one source,
    key frames every 2 s on each, and AAC."""
    CACHE.mkdir(exist_ok=True)
    ladder = MULTITRACK_LADDERS[top]
    path = CACHE / f"ingest-multitrack-{top}p-{seconds}s.flv"
    if not path.exists():
        scales = ";".join(f"[s{i}]scale={size.replace('x', ':')}[v{i}]" for i, (size, _) in enumerate(ladder))
        graph = f"[0:v]split=3[s0][s1][s2];{scales}"
        rates = [arg for i, (_, kbps) in enumerate(ladder) for arg in (f"-b:v:{i}", f"{kbps}k")]
        subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                        f"testsrc2=size={ladder[0][0]}:rate=30", "-f", "lavfi", "-i", "sine=frequency=440",
                        "-t", str(seconds), "-filter_complex", graph, "-map", "[v0]", "-map", "[v1]", "-map", "[v2]",
                        "-map", "1:a", "-c:v", "libx264", "-preset", "veryfast", *rates,
                        "-g", "60", "-sc_threshold", "0", "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "flv", str(path)],
                       check=True)
    return path


def get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())
    except (urllib.error.URLError, OSError):
        return None


def segment_names(playlist: str) -> list[str]:
    return [line for line in playlist.splitlines() if line and not line.startswith("#")]


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def run(size: str, seconds: int, encoder: str, tracks: str | None = None, top: int = 720) -> dict[str, object]:
    """One publish of `size` (or, with `tracks`, of these tracks of the multitrack source,
    e.g. "0,2") to a fresh ingest process."""
    rtmp_port, http_port = free_port(), free_port()
    media_file = source(size, seconds) if tracks is None else multitrack_source(seconds, top)
    maps = [] if tracks is None else [arg for t in tracks.split(",") for arg in ("-map", f"0:v:{t}")] + ["-map", "0:a"]
    with tempfile.TemporaryDirectory() as out:
        ingest = subprocess.Popen([sys.executable, "-m", "neurtmp.cli", "ingest", "--host", "127.0.0.1",
                                   "--port", str(rtmp_port), "--http-port", str(http_port), "--output-dir", out,
                                   "--encoder", encoder, "--segment-duration", str(SEGMENT), "--log-level", "warning"],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            assert ingest.stdout is not None
            while "listening on" not in ingest.stdout.readline():
                pass
            base = f"http://127.0.0.1:{http_port}/streams"
            started = time.monotonic()
            publisher = subprocess.Popen([FFMPEG, "-hide_banner", "-loglevel", "error", "-re", "-i", str(media_file),
                                          *maps, "-c", "copy", "-f", "flv", f"rtmp://127.0.0.1:{rtmp_port}/live/bench"])
            publisher_process = psutil.Process(publisher.pid)
            ingest_process = psutil.Process(ingest.pid)
            ingest_cpu_start = cpu_seconds(ingest_process)
            rungs: list[str] = []
            first_playlist = None
            listed: dict[str, float] = {}
            ladder: psutil.Process | None = None
            cpu_start = cpu_end = window_start = window_end = 0.0
            publisher_cpu = rss = 0.0
            speeds: list[float] = []
            while publisher.poll() is None:
                now = time.monotonic()
                try:
                    publisher_cpu = cpu_seconds(publisher_process)
                    if ladder is None:
                        children = [p for p in psutil.Process(ingest.pid).children() if "ffmpeg" in p.name()]
                        if children:
                            ladder, cpu_start, window_start = children[0], cpu_seconds(children[0]), now
                    else:
                        cpu_end, window_end = cpu_seconds(ladder), now
                        rss = ladder.memory_info().rss / 1e6
                except psutil.NoSuchProcess:
                    break
                media = get(f"{base}/bench/media_0.m3u8")
                if media:
                    for name in segment_names(media):
                        listed.setdefault(name, now - started)
                    if first_playlist is None and listed and get(f"{base}/bench/master.m3u8"):
                        first_playlist = now - started
                streams = json.loads(get(base) or '{"streams": []}')["streams"]
                if streams and streams[0].get("speed"):
                    speeds.append(float(streams[0]["speed"]))
                if streams:
                    rungs = [f"{r['name']}:{r.get('encoder', encoder)}" for r in streams[0]["rungs"]]
                time.sleep(0.2)
            wall = time.monotonic() - started
            ingest_cpu = cpu_seconds(ingest_process) - ingest_cpu_start
        finally:
            ingest.terminate()
            ingest.wait(30)
    delays = [at - int(re.search(r"(\d+)\.m4s$", name).group(1)) * SEGMENT  # type: ignore[union-attr]
              for name, at in listed.items()]
    return {
        "input": size if tracks is None else f"multitrack {top}p ladder, tracks {tracks}",
        "encoder": encoder,
        "rungs": rungs,
        "seconds": seconds,
        "speed": round(statistics.median(speeds[len(speeds) // 2:]), 2) if speeds else None,
        "ffmpeg_cpu": round((cpu_end - cpu_start) / max(1e-6, window_end - window_start), 2),
        "ffmpeg_rss_mb": round(rss, 1),
        "first_playlist_s": round(first_playlist, 2) if first_playlist is not None else None,
        "listing_delay_s": round(statistics.median(delays), 2) if delays else None,
        "segments_listed": len(listed),
        "publisher_cpu": round(publisher_cpu / wall, 3),
        "ingest_cpu": round(ingest_cpu / wall, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1280x720,1920x1080")
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--encoder", default="x264", choices=["x264", "nvenc_h264"])
    parser.add_argument("--multitrack", action="store_true",
                        help="a multitrack ladder: transcoded vs passed through vs half and half")
    parser.add_argument("--top", type=int, default=720, choices=sorted(MULTITRACK_LADDERS),
                        help="with --multitrack: the top track's height (720: 720/480/360, 1080: 1080/720/480)")
    args = parser.parse_args()
    if args.multitrack:
        for tracks in ("0", "0,1,2", "0,2"):
            print(json.dumps(run(MULTITRACK_LADDERS[args.top][0][0], args.seconds, args.encoder, tracks, args.top)),
                  flush=True)
        return
    for size in args.sizes.split(","):
        print(json.dumps(run(size, args.seconds, args.encoder)), flush=True)


if __name__ == "__main__":
    main()
