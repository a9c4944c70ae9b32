"""The README's commands and its framework example work as written."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import imageio_ffmpeg
import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def framework_example() -> str:
    section = README.split("## Framework", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]


#: How both Quickstart commands start: a virtualenv (Debian's Python refuses a global pip install).
VENV = "python3 -m venv .venv && . .venv/bin/activate && "


def test_quickstart_has_exactly_the_two_commands() -> None:
    quickstart = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```sh\n(.*?)\n```", quickstart, re.S)
    assert len(commands) == 2, commands
    assert all(command.startswith(VENV) for command in commands), commands
    serve, test = (command[len(VENV):] for command in commands)
    # The install (with whatever extras the main job needs), then the server.
    assert re.fullmatch(r"pip install -e (\.|'\.\[[\w,-]+\]') && neurtmp serve --listen 0\.0\.0\.0:1935", serve), serve
    assert test == "pip install -e '.[test]' && pytest"
    ci = (ROOT / ".ci" / "run").read_text()
    assert test in ci  # CI runs the README's test command, in a fresh virtualenv of its own
    assert "python3 -m venv" in ci


def test_examples_call_the_ffmpeg_they_say_how_to_get() -> None:
    """ffmpeg commands use $FFMPEG (the bundled ffmpeg is not on PATH), set as shown."""
    setting = re.search(r'^FFMPEG=\$\((python -c "[^"]+")\)$', README, re.M)
    assert setting, "no FFMPEG=$(python -c ...) line"
    commands = re.findall(r"```sh\n(.*?)\n```", README, re.S)
    assert not [line for block in commands for line in block.splitlines() if line.startswith("ffmpeg ")]
    assert sum(block.startswith("$FFMPEG ") for block in commands) == 2
    assert "`ffmpeg -i" not in README
    code = setting.group(1).removeprefix('python -c "').removesuffix('"')
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and result.stdout.strip() == imageio_ffmpeg.get_ffmpeg_exe()


@pytest.mark.timeout(60)
def test_framework_example_serves_an_animated_stream(tmp_path: pathlib.Path) -> None:
    script = tmp_path / "hello.py"
    source = framework_example()
    assert source.count("\n") <= 60 and '"0.0.0.0:1935"' in source
    script.write_text(source.replace('"0.0.0.0:1935"', '"127.0.0.1:0"'))
    server = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()  # type: ignore[union-attr]
        address = re.match(r"listening on rtmp://(\S+)", line).group(1)  # type: ignore[union-attr]
        player = subprocess.run(
            [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-i",
             f"rtmp://{address}/app/scene", "-frames:v", "20",
             "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
            capture_output=True, timeout=30,
        )
    finally:
        server.terminate()
        server.wait(10)
    assert player.returncode == 0, player.stderr
    frames = np.frombuffer(player.stdout, np.uint8).reshape(-1, 240, 320, 3)
    assert len(frames) == 20
    for frame in frames:  # screen video is lossless: the exact ramp, every row alike
        assert (frame == frame[:1]).all()
        assert (np.diff(frame[0, :, 0].astype(int)) % 256 == 1).all()
    offsets = [int(f[0, 0, 0]) for f in frames]
    assert len(set(offsets)) >= 10  # it moves
