"""`--config FILE`: a TOML table per command, checked by the command's own parser."""

from __future__ import annotations

import pathlib
import sys

import pytest
from gevent import subprocess

from neurtmp.cli import build_parser, main
from neurtmp.configfile import options_from_file
from neurtmp.errors import ConfigError

from .helpers import wait_for

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_a_table_becomes_options(tmp_path: pathlib.Path) -> None:
    config = tmp_path / "n.toml"
    config.write_text('[serve]\nlisten = "127.0.0.1:1999"\ntakeover = true\nlow_latency = false\n'
                      'app = ["live", "studio"]\nflush-interval = 20\n')
    assert options_from_file(str(config), "serve") == [
        "--listen=127.0.0.1:1999", "--takeover", "--app=live", "--app=studio", "--flush-interval=20"]
    assert options_from_file(str(config), "ingest") == []


def test_the_example_file_parses_for_both_commands() -> None:
    example = str(ROOT / "neurtmp.example.toml")
    for command in ("serve", "ingest"):
        args = build_parser().parse_args([command, *options_from_file(example, command)])
        assert args.command == command


def test_bad_files_say_what_is_wrong(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[serve\n")
    with pytest.raises(ConfigError, match="broken.toml"):
        options_from_file(str(broken), "serve")
    nested = tmp_path / "nested.toml"
    nested.write_text("[serve]\nlisten = { host = 'x' }\n")
    with pytest.raises(ConfigError, match="listen must be"):
        options_from_file(str(nested), "serve")
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[serve]\nno-such-option = 3\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--config", str(unknown)])
    assert exit_info.value.code == 2 and "--no-such-option" in capsys.readouterr().err
    assert main(["serve", "--config", str(tmp_path / "missing.toml")]) == 2


@pytest.mark.timeout(30)
def test_serve_reads_its_options_and_typed_ones_win(tmp_path: pathlib.Path) -> None:
    config = tmp_path / "n.toml"
    config.write_text('[serve]\nlisten = "127.0.0.1:1"\nhttp = "127.0.0.1:0"\nlog-level = "warning"\n')
    serve = subprocess.Popen([sys.executable, "-m", "neurtmp.cli", "serve", "--config", str(config),
                              "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = [serve.stdout.readline().strip() for _ in range(2)]
        assert any(line.startswith("listening on rtmp://127.0.0.1:") and not line.endswith(":1") for line in lines)
        assert any(line.startswith("listening on http://127.0.0.1:") for line in lines)  # from the file
    finally:
        serve.terminate()
        serve.wait(timeout=10)


@pytest.mark.timeout(60)
def test_sighup_reloads_access_rules_without_dropping_anyone(tmp_path: pathlib.Path) -> None:
    import json
    import signal
    import urllib.request

    from .live.helpers import FFMPEG

    config = tmp_path / "n.toml"
    config.write_text('[serve]\nlisten = "127.0.0.1:0"\nhttp = "127.0.0.1:0"\n'
                      'allow-publish = ["127.0.0.1"]\ndeny-publish = ["all"]\nallow-play = ["10.9.9.9"]\n'
                      'deny-play = ["all"]\n')
    serve = subprocess.Popen([sys.executable, "-m", "neurtmp.cli", "serve", "--config", str(config)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def publish(name: str) -> subprocess.Popen:
        return subprocess.Popen([FFMPEG, "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i",
                                 "testsrc=size=160x120:rate=25", "-t", "30", "-c:v", "libx264", "-preset",
                                 "ultrafast", "-f", "flv", f"{rtmp}/live/{name}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def play(name: str) -> int:
        return subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-i", f"{rtmp}/live/{name}",
                               "-frames:v", "5", "-f", "null", "-"], capture_output=True, timeout=30).returncode

    def live_names() -> list[str]:
        with urllib.request.urlopen(f"{http}/api/v1/streams", timeout=5) as response:
            return [s["name"] for s in json.loads(response.read())["streams"] if s["live"]]

    publisher = None
    try:
        lines = [serve.stdout.readline().strip().split("listening on ", 1)[1] for _ in range(2)]
        rtmp = next(line for line in lines if line.startswith("rtmp://"))
        http = next(line for line in lines if line.startswith("http://"))
        publisher = publish("cam")
        wait_for(lambda: live_names() == ["cam"], 15, "the allowed publisher is live")
        assert play("cam") != 0  # play denied from 127.0.0.1
        config.write_text('[serve]\nlisten = "127.0.0.1:0"\nhttp = "127.0.0.1:0"\ndeny-publish = ["all"]\n')
        serve.send_signal(signal.SIGHUP)
        wait_for(lambda: play("cam") == 0, 20, "plays are allowed after the reload")
        assert live_names() == ["cam"] and publisher.poll() is None  # the publisher was not dropped
        second = publish("other")  # publishing is now denied to everyone
        try:
            assert second.wait(timeout=20) != 0 and "other" not in live_names()
        finally:
            if second.poll() is None:
                second.kill()
    finally:
        for process in (publisher, serve):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
