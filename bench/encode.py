"""Encoder throughput: frames per second per encoder and size, one JSON line per case.

The frames are the render_stream demo's scene (pre-rendered, so only encoding is timed).
H.264 runs on libx264 and, where NVML reports a GPU and the encoder opens, on NVENC.

    python bench/encode.py [--frames 60] [--sizes 640x360,1280x720,1920x1080]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

from neurtmp.codec import create_video_encoder, encoder_names
from neurtmp.codec.gpu import gpu_count

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "examples" / "render_stream"))
from scene import Scene  # noqa: E402


def run(name: str, hardware: str | None, width: int, height: int, frames: int) -> dict[str, object] | None:
    encoder = create_video_encoder(name)
    assert encoder is not None
    if hardware is not None:
        encoder.set_parameter("hardware", hardware)
    encoder.set_parameter("bitrate", width * height * 4)  # ~3.7 Mbit/s at 720p
    scene = Scene(width, height)
    pictures = []
    for _ in range(min(frames, 30)):
        scene.render(1 / 30)
        pictures.append(scene.canvas.copy())
    try:
        encoder.init(width, height)
    except Exception as exc:  # e.g. no NVENC
        return {"encoder": name, "hardware": hardware, "size": f"{width}x{height}", "error": str(exc)}
    started = time.perf_counter()
    total = 0
    for i in range(frames):
        total += len(encoder.encode_canvas(pictures[i % len(pictures)]).data)
    elapsed = time.perf_counter() - started
    encoder.close()
    return {
        "encoder": name,
        "implementation": getattr(encoder, "codec_name", name),
        "size": f"{width}x{height}",
        "frames": frames,
        "fps": round(frames / elapsed, 1),
        "ms_per_frame": round(1000 * elapsed / frames, 2),
        "kbit_per_frame": round(total * 8 / frames / 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--sizes", default="640x360,1280x720,1920x1080")
    args = parser.parse_args()
    for size in args.sizes.split(","):
        width, height = (int(v) for v in size.split("x"))
        for name in encoder_names():
            variants: list[str | None] = [None]
            if name == "h264":
                variants = ["never"] + (["always"] if gpu_count() else [])
            for hardware in variants:
                result = run(name, hardware, width, height, args.frames)
                if result is not None:
                    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
