"""Ctrl-C (SIGINT) on the examples: a quiet, prompt exit, never a traceback."""

from __future__ import annotations

import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import pytest

import neurtmp

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

#: Seconds an example may take to exit after SIGINT.
EXIT_TIMEOUT = 10


def start_example(script: str, *arguments: str) -> subprocess.Popen[str]:
    """Run examples/SCRIPT with this checkout's neurtmp; stdout and stderr piped."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen([sys.executable, str(EXAMPLES / script), *arguments], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def interrupt(process: subprocess.Popen[str]) -> str:
    """Send SIGINT; returns the stderr of the process, which must exit within EXIT_TIMEOUT
    with status 0 or 130 and without a traceback."""
    process.send_signal(signal.SIGINT)
    try:
        _, err = process.communicate(timeout=EXIT_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode in (0, 130), err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    return err


def listening_address(process: subprocess.Popen[str]) -> str:
    line = process.stdout.readline()  # type: ignore[union-attr]
    match = re.match(r"listening on rtmp://(\S+)", line)
    assert match, (line, process.poll())
    return match.group(1)


def wait_for_video(client: neurtmp.Client, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not isinstance(client.read(timeout=max(0.1, deadline - time.monotonic())), neurtmp.events.VideoReceived):
        assert time.monotonic() < deadline, "no video"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("script", ["render_stream/server.py", "neuray_port/server.py"])
def test_a_server_example_exits_quietly_on_ctrl_c_while_a_player_watches(script: str) -> None:
    process = start_example(script, "--listen", "127.0.0.1:0")
    try:
        address = listening_address(process)
        player = neurtmp.connect(f"rtmp://{address}/app", timeout=10)
        player.play("scene")
        wait_for_video(player)  # it is rendering and encoding for a viewer
    except BaseException:
        process.kill()
        process.wait()
        raise
    interrupt(process)
    player.close()


@pytest.mark.timeout(60)
def test_the_render_stream_client_exits_quietly_on_ctrl_c() -> None:
    server = start_example("render_stream/server.py", "--listen", "127.0.0.1:0")
    try:
        address = listening_address(server)
        client = start_example("render_stream/client.py", f"rtmp://{address}/demo", "set_speed", "2",
                               "--seconds", "60")
        try:
            answer = client.stdout.readline()  # type: ignore[union-attr]
            assert "'call': 'set_speed'" in answer, answer  # connected, playing, called: now watching
        except BaseException:
            client.kill()
            client.wait()
            raise
        interrupt(client)
        assert client.returncode == 130
    finally:
        if server.poll() is None:
            interrupt(server)
