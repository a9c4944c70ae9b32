"""`--config FILE`: a TOML table per command, checked by the command's own parser."""

from __future__ import annotations

import pathlib
import sys

import gevent
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
    assert main(["serve", "--config", str(tmp_path / "missing.toml")]) == 2


@pytest.mark.parametrize(("table", "line"), [
    ("[serve]\nno-such-option = 3\n", "[serve] no-such-option: unknown key"),
    ("[serve]\nflush-interval = 'soon'\n", "[serve] flush-interval: invalid float value: 'soon'"),
    ("[serve]\nrecord-format = 'avi'\n", "[serve] record-format: invalid choice: 'avi'"),
    ("[ingest]\nmax-streams = 'x'\n", "[ingest] max-streams: invalid int value: 'x'"),
    ("[serve.apps.live]\ncolour = 'red'\n", "[serve] apps.live.colour: unknown key (an app table takes publish-secret"),
    ("[serve.apps.live]\nrecord = 'yes'\n", "[serve] apps.live.record must be true or false"),
    ("[serve.apps.live]\non-play = 3\n", "[serve] apps.live.on-play must be a string or a list of strings"),
    ("[serve]\napps = 3\n", "[serve] apps must hold a table per application"),
])
def test_a_bad_key_is_one_line_naming_it(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str], table: str,
                                         line: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(table)
    command = table[1:].split("]")[0].split(".")[0]
    assert main([command, "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "usage" not in err, err
    assert f"config file {config}: {line}" in err


def test_app_tables_become_per_app_options(tmp_path: pathlib.Path) -> None:
    config = tmp_path / "apps.toml"
    config.write_text('[serve]\nlisten = "127.0.0.1:0"\nrecord = "/tmp/rec"\n'
                      '[serve.apps.live]\npublish-secret = "s"\nallow-publish = ["10.0.0.0/8", "::1"]\n'
                      'deny-publish = "all"\non-play = "http://127.0.0.1:9/p"\nrecord = true\n'
                      'push = ["cam=rtmp://backup/live/cam"]\npull = ["rtmp://origin/live/x=x"]\n'
                      '[serve.apps.studio]\nrecord = false\n')
    words = options_from_file(str(config), "serve")
    assert words == ["--listen=127.0.0.1:0", "--record=/tmp/rec", "--app=live",
                     "--app-publish-secret", "live", "s",
                     "--app-rule", "live", "allow-publish", "10.0.0.0/8", "--app-rule", "live", "allow-publish", "::1",
                     "--app-rule", "live", "deny-publish", "all",
                     "--app-hook", "live", "play", "http://127.0.0.1:9/p", "--record-app", "live",
                     "--push=live/cam=rtmp://backup/live/cam", "--pull=rtmp://origin/live/x=live/x",
                     "--app=studio"]
    args = build_parser().parse_args(["serve", *words])
    assert args.app == ["live", "studio"] and args.record_app == ["live"]
    # with an `app` key, that list alone says which apps are served
    config.write_text('[serve]\napp = ["live"]\n[serve.apps.studio]\nplay-secret = "p"\n')
    assert options_from_file(str(config), "serve") == ["--app=live", "--app-play-secret", "studio", "p"]


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
    reader = gevent.spawn(lambda: None)
    try:
        lines = [serve.stdout.readline().strip().split("listening on ", 1)[1] for _ in range(2)]
        rtmp = next(line for line in lines if line.startswith("rtmp://"))
        http = next(line for line in lines if line.startswith("http://"))
        publisher = publish("cam")
        wait_for(lambda: live_names() == ["cam"], 15, "the allowed publisher is live")
        assert play("cam") != 0  # play denied from 127.0.0.1
        config.write_text('[serve]\nlisten = "127.0.0.1:0"\nhttp = "127.0.0.1:0"\ndeny-publish = ["all"]\n'
                          'flush-interval = 20\n')
        errors: list[str] = []
        reader = gevent.spawn(lambda: errors.extend(iter(serve.stderr.readline, "")))
        serve.send_signal(signal.SIGHUP)
        wait_for(lambda: play("cam") == 0, 20, "plays are allowed after the reload")
        # what a reload cannot change is named by its option
        wait_for(lambda: any("a restart is needed for: --flush-interval" in line for line in errors), 10)
        assert live_names() == ["cam"] and publisher.poll() is None  # the publisher was not dropped
        second = publish("other")  # publishing is now denied to everyone
        try:
            assert second.wait(timeout=20) != 0 and "other" not in live_names()
        finally:
            if second.poll() is None:
                second.kill()
    finally:
        reader.kill()
        for process in (publisher, serve):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
