"""`pip install neurtmp` is the framework and `neurtmp serve`; the rest comes with extras.

A child Python that cannot import any optional package (PyAV, NumPy, gRPC, protobuf,
Prometheus, Werkzeug, psutil, NVML, imageio-ffmpeg) stands for a lean install: `serve`
must run and fan out to a real ffmpeg player, and what needs an extra must say which."""

from __future__ import annotations

import configparser
import pathlib
import sys
import textwrap
from typing import Any

import pytest
from gevent import subprocess

from .live.helpers import FFMPEG

ROOT = pathlib.Path(__file__).resolve().parents[1]
OPTIONAL = ("av", "numpy", "grpc", "grpc_health", "grpc_reflection", "google", "prometheus_client", "werkzeug",
            "psutil", "pynvml", "imageio_ffmpeg")

#: Run before the code under test in the child: the optional packages cannot be imported.
BLOCKER = textwrap.dedent(f"""
    import importlib.abc, sys
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {OPTIONAL!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None
    sys.meta_path.insert(0, Block())
""")


def lean_python(code: str, *args: str, **popen: Any) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", BLOCKER + textwrap.dedent(code), *args], cwd=ROOT, **popen)


def test_the_core_install_needs_only_gevent() -> None:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    required = [line.split(">")[0].split("=")[0] for line in config["options"]["install_requires"].split() if line]
    assert required == ["gevent", "greenlet"]
    extras = config["options.extras_require"]
    assert "av" in extras["codec"] and "grpcio" in extras["ingest"] and "neurtmp[all]" in extras["test"]


@pytest.mark.timeout(60)
def test_serve_runs_and_fans_out_without_the_extras() -> None:
    server = lean_python("""
        import sys
        from neurtmp.cli import main
        sys.exit(main(["serve", "--listen", "127.0.0.1:0"]))
    """, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    publisher = player = None
    try:
        line = server.stdout.readline()
        assert line.startswith("listening on rtmp://"), (line, server.stderr.read() if server.poll() else "")
        address = line.split("rtmp://", 1)[1].split()[0]
        publisher = subprocess.Popen(
            [FFMPEG, "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25",
             "-t", "20", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-f", "flv",
             f"rtmp://{address}/live/cam"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        player = subprocess.run(
            [FFMPEG, "-hide_banner", "-loglevel", "error", "-i", f"rtmp://{address}/live/cam", "-frames:v", "10",
             "-f", "rawvideo", "-pix_fmt", "gray", "-"], capture_output=True, timeout=40)
        assert player.returncode == 0, player.stderr
        assert len(player.stdout) == 10 * 160 * 120  # ten decoded frames
    finally:
        for process in (publisher, server):
            if process is not None:
                process.kill()
                process.wait()


def test_what_needs_an_extra_names_it() -> None:
    ingest = lean_python("""
        import sys
        from neurtmp.cli import main
        sys.exit(main(["ingest"]))
    """, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, err = ingest.communicate(timeout=30)
    assert ingest.returncode == 2 and "pip install 'neurtmp[ingest]'" in err, err
    codec = lean_python("""
        import neurtmp.codec
        try:
            neurtmp.codec.create_video_encoder("h264")
        except ImportError as exc:
            print(exc)
    """, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = codec.communicate(timeout=30)
    assert "pip install 'neurtmp[codec]'" in out, (out, err)


def test_no_optional_package_is_imported_by_the_core() -> None:
    child = lean_python("""
        import neurtmp, neurtmp.live, neurtmp.relay, neurtmp.proxy, neurtmp.cli, neurtmp.ingest
        print(neurtmp.Factory().create_server() is not None)
    """, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = child.communicate(timeout=30)
    assert child.returncode == 0 and out.strip() == "True", err


