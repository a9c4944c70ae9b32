"""The `neurtmp` command line: defaults from the option dataclasses, and bad arguments
refused at start with one line on stderr and exit status 2."""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import re
import subprocess
import sys
from typing import Any

import pytest

import neurtmp
from neurtmp.cli import build_parser, parse_pull, parse_push, server_options
from neurtmp.live import LiveOptions
from neurtmp.protocol import events as ev
from neurtmp.server import ServerOptions

from .conftest import url
from .helpers import wait_for
from .live.helpers import live_server
from .live.test_relay import neurtmp_process
from .media import encode_h264

#: Seconds a refused command may take (it should exit at once, before listening).
COMMAND_TIMEOUT = 60


def run_neurtmp(*arguments: str) -> subprocess.CompletedProcess[str]:
    """Run `neurtmp ARGUMENTS` as a process (as tests/live/test_relay.py does), listening on
    a free loopback port should the arguments be accepted; killed after COMMAND_TIMEOUT."""
    return subprocess.run([sys.executable, "-m", "neurtmp.cli", *arguments, "--listen", "127.0.0.1:0"],
                          capture_output=True, text=True, timeout=COMMAND_TIMEOUT)


def assert_refused(result: subprocess.CompletedProcess[str], command: str, *fragments: str) -> str:
    """Exit status 2 and exactly one stderr line, "neurtmp COMMAND: ...", containing `fragments`."""
    lines = result.stderr.splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    [line] = lines
    assert line.startswith(f"neurtmp {command}: "), line
    for fragment in fragments:
        assert fragment in line, line
    assert "listening on" not in result.stdout
    return line


def test_serve_defaults_are_the_option_dataclass_defaults() -> None:
    args = build_parser().parse_args(["serve"])
    server, live = ServerOptions(), LiveOptions()
    assert args.chunk_size == server.chunk_size
    assert args.max_connections == server.max_connections
    assert args.handshake_timeout == server.handshake_timeout
    assert args.connect_timeout == server.connect_timeout
    assert args.idle_timeout == server.idle_timeout
    assert args.publisher_idle_timeout == server.publisher_idle_timeout
    assert args.send_timeout == server.send_timeout
    assert args.flush_interval == pytest.approx(server.flush_interval * 1000)  # milliseconds on the command line
    assert args.shutdown_grace == server.shutdown_grace
    assert args.reconnect_url is server.reconnect_url is None
    assert args.log_io == server.log_io_dir
    assert args.gop_packets == live.gop_packets
    assert args.gop_bytes == live.gop_bytes
    assert args.takeover == live.takeover
    assert args.reconnect_grace == live.reconnect_grace
    assert args.slate == live.slate
    assert ServerOptions(**server_options(args)) == server  # and they go back unchanged


def test_serve_reconnect_url_reaches_the_server_options() -> None:
    args = build_parser().parse_args(["serve", "--reconnect-url", "rtmp://other:1936/live"])
    assert ServerOptions(**server_options(args)).reconnect_url == "rtmp://other:1936/live"
    with pytest.raises(neurtmp.ConfigError, match="reconnect_url"):
        ServerOptions(**server_options(build_parser().parse_args(["serve", "--reconnect-url", "other"])))


def test_serve_defaults_follow_a_changed_server_options_default(monkeypatch: pytest.MonkeyPatch) -> None:
    fields = {field.name: field for field in dataclasses.fields(ServerOptions)}
    monkeypatch.setattr(fields["chunk_size"], "default", 1234)
    monkeypatch.setattr(fields["flush_interval"], "default", 0.02)
    args = build_parser().parse_args(["serve"])
    assert args.chunk_size == 1234
    assert args.flush_interval == 20.0


def test_serve_low_latency_and_flush_interval_in_milliseconds() -> None:
    parser = build_parser()
    assert server_options(parser.parse_args(["serve", "--flush-interval", "10"]))["flush_interval"] == 0.01
    assert server_options(parser.parse_args(["serve", "--low-latency"]))["flush_interval"] == 0.0


def test_serve_publisher_idle_timeout_reaches_server_options() -> None:
    args = build_parser().parse_args(["serve", "--publisher-idle-timeout", "0"])
    assert ServerOptions(**server_options(args)).publisher_idle_timeout == 0  # 0: off


def test_serve_refuses_a_negative_publisher_idle_timeout() -> None:
    assert_refused(run_neurtmp("serve", "--publisher-idle-timeout", "-1"), "serve",
                   "--publisher-idle-timeout must be >= 0")


def test_ingest_publisher_idle_timeout_from_its_flag_or_environment() -> None:
    from neurtmp.ingest import IngestConfig

    args = build_parser().parse_args(["ingest", "--publisher-idle-timeout", "4"])
    flags = {"publisher_idle_timeout": args.publisher_idle_timeout}
    assert IngestConfig.from_sources({}).server_options() == {
        "publisher_idle_timeout": ServerOptions().publisher_idle_timeout}
    environ = {"RTMP_PUBLISHER_IDLE_TIMEOUT": "0"}
    assert IngestConfig.from_sources(environ).publisher_idle_timeout == 0
    config = IngestConfig.from_sources(environ, flags)  # the flag wins
    assert ServerOptions(**config.server_options()).publisher_idle_timeout == 4
    with pytest.raises(neurtmp.ConfigError, match="RTMP_PUBLISHER_IDLE_TIMEOUT must be >= 0"):
        IngestConfig.from_sources({"RTMP_PUBLISHER_IDLE_TIMEOUT": "-2"})


def help_texts() -> dict[str, str]:
    """`neurtmp --help` and `neurtmp COMMAND --help` of every command, each on one line
    (argparse wraps to $COLUMNS, breaking at spaces and hyphens)."""
    parser = build_parser()
    [commands] = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    texts = {"neurtmp": parser.format_help()}
    texts.update({f"neurtmp {name}": command.format_help() for name, command in commands.choices.items()})
    return {name: " ".join(text.split()) for name, text in texts.items()}


def test_every_help_text_shows_real_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "10000")
    texts = help_texts()
    assert {"neurtmp serve", "neurtmp proxy", "neurtmp ingest", "neurtmp token", "neurtmp probe"} <= set(texts)
    for name, text in texts.items():
        for artefact in (r"default:? ?\)", r"default:? ?None\b", r"default:? ?$", r"%\("):
            assert not re.search(artefact, text), f"{name} --help: {artefact!r} in {text}"
    ingest = texts["neurtmp ingest"]
    assert "--ffmpeg FFMPEG ffmpeg binary ($RTMP_FFMPEG; default the one imageio-ffmpeg installs)" in ingest
    assert "($RTMP_AUTH_SECRET; default no secret, no auth)" in ingest


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("rtmp://origin/live/cam=live/cam", ("rtmp://origin/live/cam", "live", "cam")),
        ("rtmp://origin:1936/app/cam?key=a=b=mirror", ("rtmp://origin:1936/app/cam?key=a=b", "live", "mirror")),
    ],
)
def test_parse_pull_accepts(spec: str, expected: tuple[str, str, str]) -> None:
    assert parse_pull(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("http://origin/live/cam=live/cam", "is not an rtmp:// URL"),
        ("rtmp:/origin/live/cam=live/cam", "no '//' after 'rtmp:'"),
        ("rtmp//origin/live/cam=live/cam", "is not an rtmp:// URL"),
        ("rtmp://origin/live=live/cam", "names no stream"),
        ("live/cam=rtmp://origin/live/cam", "the URL comes first"),
        ("live/cam=rtmp://origin/live/cam?key=1", "the URL comes first"),
        ("rtmp://origin/live/cam", "wants URL=LOCAL"),
        ("rtmp://origin/live/cam=", "wants URL=LOCAL"),
    ],
)
def test_parse_pull_rejects(spec: str, message: str) -> None:
    with pytest.raises(neurtmp.ConfigError, match="^--pull") as caught:
        parse_pull(spec)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("live/cam=rtmp://cdn/app/cam", ("live", "cam", "rtmp://cdn/app/cam")),
        ("cam=rtmp://cdn/app/key?token=x", ("live", "cam", "rtmp://cdn/app/key?token=x")),
    ],
)
def test_parse_push_accepts(spec: str, expected: tuple[str, str, str]) -> None:
    assert parse_push(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("rtmp://cdn/app/cam=live/cam", "the URL comes after '='"),
        ("rtmp:/cdn/app/cam=live/cam", "the URL comes after '='"),
        ("live/cam=http://cdn/app/cam", "is not an rtmp:// URL"),
        ("live/cam=rtmp//cdn/app/cam", "is not an rtmp:// URL"),
        ("live/cam=rtmp://cdn/app", "names no stream"),
        ("live/cam=rtmp://cdn:0/app/cam", "bad port"),
        ("live/cam", "wants LOCAL=URL"),
        ("live/=rtmp://cdn/app/cam", "empty local stream name"),
    ],
)
def test_parse_push_rejects(spec: str, message: str) -> None:
    with pytest.raises(neurtmp.ConfigError, match="^--push") as caught:
        parse_push(spec)
    assert message in str(caught.value)


@pytest.mark.timeout(COMMAND_TIMEOUT + 10)
def test_serve_refuses_a_log_io_path_that_is_a_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "log.txt"
    path.write_text("")
    assert_refused(run_neurtmp("serve", "--log-io", str(path)), "serve", "--log-io", str(path), "not a directory")


@pytest.mark.timeout(COMMAND_TIMEOUT + 10)
def test_serve_refuses_a_log_io_directory_that_cannot_be_created(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "log.txt"
    path.write_text("")
    assert_refused(run_neurtmp("serve", "--log-io", str(path / "sub")), "serve", "--log-io", "cannot be created")


@pytest.mark.timeout(COMMAND_TIMEOUT + 10)
def test_serve_refuses_pull_from_an_http_url() -> None:
    result = run_neurtmp("serve", "--pull", "http://origin/live/cam=live/cam")
    assert_refused(result, "serve", "--pull", "'http://origin/live/cam' is not an rtmp:// URL", "rtmp://HOST")


@pytest.mark.timeout(COMMAND_TIMEOUT + 10)
def test_serve_refuses_push_with_url_and_local_name_reversed() -> None:
    result = run_neurtmp("serve", "--push", "rtmp://cdn/app/name=live/cam")
    assert_refused(result, "serve", "--push wants LOCAL=URL", "the URL comes after '='")


@pytest.mark.timeout(COMMAND_TIMEOUT + 10)
def test_serve_refuses_push_to_a_url_without_a_stream_name() -> None:
    result = run_neurtmp("serve", "--push", "live/cam=rtmp://cdn/app")
    assert_refused(result, "serve", "--push", "'rtmp://cdn/app' names no stream", "rtmp://HOST[:PORT]/APP/NAME")


@pytest.mark.timeout(COMMAND_TIMEOUT + 10)
def test_serve_refuses_a_mistyped_pull_url() -> None:
    assert_refused(run_neurtmp("serve", "--pull", "rtmp:/origin/live/cam=live/cam"), "serve", "--pull", "'//'")


@pytest.mark.timeout(COMMAND_TIMEOUT + 10)
def test_proxy_refuses_a_non_rtmp_target() -> None:
    assert_refused(run_neurtmp("proxy", "--to", "http://cdn/app"), "proxy", "--to", "is not an rtmp:// URL")


@pytest.mark.timeout(COMMAND_TIMEOUT + 10)
def test_proxy_refuses_a_log_io_path_that_is_a_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "log.txt"
    path.write_text("")
    result = run_neurtmp("proxy", "--to", "rtmp://cdn/app", "--log-io", str(path))
    assert_refused(result, "proxy", "--log-io", "not a directory")


@pytest.mark.timeout(60)
def test_serve_push_republishes_a_local_stream_to_the_remote(make_server: Any) -> None:
    remote, remote_app = live_server(make_server)
    header, frames = encode_h264(10, gop=10)
    with neurtmp_process("serve", "--push", f"live/cam={url(remote, 'ingest/cam')}") as (address, log):
        encoder = neurtmp.connect(f"rtmp://{address}/live", timeout=5)
        encoder.publish("cam")
        encoder.send_video(header.data, 0)  # the relay publishes to the remote on the first packet
        wait_for(lambda: (s := remote_app.registry.get("ingest", "cam")) is not None and s.is_live, 15)
        watcher = neurtmp.connect(url(remote, "ingest"), timeout=5)
        watcher.play("cam")
        for i, frame in enumerate(frames):
            encoder.send_video(frame.data, (i + 1) * 40)
        received: list[bytes] = []
        while len(received) < len(frames):
            event = watcher.read(timeout=10)
            if isinstance(event, ev.VideoReceived) and event.payload != header.data:
                received.append(event.payload)
        assert received == [frame.data for frame in frames]
        encoder.close()
        watcher.close()
    [err] = log
    assert "Traceback" not in err, err


@pytest.mark.timeout(60)
def test_serve_pull_serves_a_remote_stream_locally(make_server: Any) -> None:
    remote, remote_app = live_server(make_server)
    header, frames = encode_h264(10, gop=10)
    encoder = neurtmp.connect(url(remote, "ingest"), timeout=5)
    encoder.publish("cam")
    with neurtmp_process("serve", "--pull", f"{url(remote, 'ingest/cam')}=live/cam") as (address, log):
        source = remote_app.registry.get("ingest", "cam")
        assert source is not None
        wait_for(lambda: len(source.players()) == 1, 15)  # the relay plays the remote stream
        watcher = neurtmp.connect(f"rtmp://{address}/live", timeout=5)
        watcher.play("cam")  # waits for the relay's publish
        for i, frame in enumerate([header, *frames]):
            encoder.send_video(frame.data, i * 40)
        received: list[bytes] = []
        while len(received) < len(frames) + 1:
            event = watcher.read(timeout=10)
            if isinstance(event, ev.VideoReceived):
                received.append(event.payload)
        assert received == [header.data] + [frame.data for frame in frames]
        watcher.close()
    encoder.close()
    [err] = log
    assert "Traceback" not in err, err


def test_reconnect_grace_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RTMP_RECONNECT_GRACE", "2.5")
    args = build_parser().parse_args(["serve", "--slate", "none"])
    assert args.reconnect_grace == 2.5 and args.slate == "none"
    assert build_parser().parse_args(["serve", "--reconnect-grace", "0"]).reconnect_grace == 0


def test_ingest_reconnect_grace_slate_and_failover_from_flags_or_environment() -> None:
    from neurtmp.ingest import IngestConfig

    def config(argv: list[str], environ: dict[str, str] | None = None) -> IngestConfig:
        args = build_parser().parse_args(["ingest", *argv])
        names = ("reconnect_grace", "slate", "failover_timeout")
        return IngestConfig.from_sources(environ or {}, {name: getattr(args, name) for name in names})

    default = config([])
    assert default.reconnect_grace == LiveOptions().reconnect_grace and default.slate is None
    assert default.live_options().failover_timeout == LiveOptions().failover_timeout
    environ = {"RTMP_RECONNECT_GRACE": "3", "RTMP_SLATE": "none", "RTMP_FAILOVER_TIMEOUT": "1.5"}
    assert config([], environ).live_options() == LiveOptions(apps=("live",), reconnect_grace=3, slate="none",
                                                             failover_timeout=1.5)
    assert config(["--reconnect-grace", "0"], environ).reconnect_grace == 0  # the flag wins
    with pytest.raises(neurtmp.ConfigError, match="--reconnect-grace must be >= 0"):
        config(["--reconnect-grace", "-1"])
    with pytest.raises(neurtmp.ConfigError, match="RTMP_SLATE"):
        config([], {"RTMP_SLATE": "/no/such/picture.png"})
