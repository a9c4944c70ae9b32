"""`--config FILE`: a TOML table per command, checked by the command's own parser."""

from __future__ import annotations

import pathlib
import sys

import pytest
from gevent import subprocess

from neurtmp.cli import build_parser, main
from neurtmp.configfile import options_from_file
from neurtmp.errors import ConfigError

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
