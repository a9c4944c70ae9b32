"""`neurtmp serve`'s access flags and `neurtmp token --play`, end to end."""

from __future__ import annotations

from typing import Any

import pytest

import neurtmp
from neurtmp.access import PLAY, PUBLISH, check_token
from neurtmp.access.tokens import split_name
from neurtmp.cli import main

from ..helpers import wait_for
from ..live.helpers import ffmpeg_publish
from ..live.test_relay import neurtmp_process
from ..test_cli import assert_refused, run_neurtmp
from .helpers import HookServer, play_refused, publish_refused


def token_url(capsys: Any, *arguments: str) -> str:
    assert main(["token", *arguments]) == 0
    return capsys.readouterr().out.strip()


def test_neurtmp_token_makes_publish_and_play_tokens(capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RTMP_PLAY_SECRET", "ply")
    publish = token_url(capsys, "cam", "--secret", "pub", "--server", "rtmp://h/live/")
    play = token_url(capsys, "cam", "--play", "--server", "rtmp://h/live")
    assert publish.startswith("rtmp://h/live/cam?expires=") and play.startswith("rtmp://h/live/cam?expires=")
    key, query = split_name(publish.rpartition("/")[2])
    assert check_token("pub", key, query, kind=PUBLISH) is None
    key, query = split_name(play.rpartition("/")[2])
    assert check_token("ply", key, query, kind=PLAY) is None and check_token("ply", key, query) is not None
    monkeypatch.delenv("RTMP_PLAY_SECRET")
    assert main(["token", "cam", "--play"]) == 2
    assert "RTMP_PLAY_SECRET" in capsys.readouterr().err


@pytest.mark.timeout(90)
def test_serve_checks_tokens_rules_and_sends_hooks(capsys: Any) -> None:
    hooks = HookServer()
    try:
        with neurtmp_process("serve", "--publish-secret", "pub", "--app-publish-secret", "vip", "own",
                             "--allow-play", "::1", "--deny-play", "all", "--on-publish-done", hooks.url()
                             ) as (address, log):
            assert "403 publishing needs a token" in publish_refused(f"rtmp://{address}/live/cam")
            # the app's own secret, not the every-app one
            assert "403 bad token signature" in publish_refused(
                token_url(capsys, "cam", "--secret", "pub", "--server", f"rtmp://{address}/vip"))
            assert "403 play not allowed from 127.0.0.1 (deny all)" in play_refused(f"rtmp://{address}/live/cam")
            signed = token_url(capsys, "cam", "--secret", "pub", "--server", f"rtmp://{address}/live")
            publisher = ffmpeg_publish(signed, 2)
            assert publisher.wait(30) == 0, publisher.stderr.read()
            wait_for(lambda: hooks.seen("publish_done"), 10)
            assert hooks.seen("publish_done")[0]["name"] == "cam"
        assert split_name(signed)[1]["sig"] not in log[0]  # secrets never logged
        assert "publish 'cam' refused: 403 publishing needs a token" in log[0]
    finally:
        hooks.stop()


@pytest.mark.parametrize(("flags", "fragments"), [
    (["--deny-publish", "10.0.0.0/33"], ["--allow-publish/--deny-publish", "'10.0.0.0/33'"]),
    (["--on-play-done", "ftp://hooks/x?token=secret"], ["--on-play-done", "not an http", "token=***"]),
    (["--hook-timeout", "0"], ["--hook-timeout must be > 0"]),
])
def test_serve_refuses_bad_access_flags(flags: list[str], fragments: list[str]) -> None:
    line = assert_refused(run_neurtmp("serve", *flags), "serve", *fragments)
    assert "secret" not in line.replace("token=***", "")


def test_serve_without_access_flags_adds_only_an_open_access_check(monkeypatch: pytest.MonkeyPatch) -> None:
    from neurtmp.cli import _access_control, build_parser

    for name in ("RTMP_PUBLISH_SECRET", "RTMP_PLAY_SECRET"):
        monkeypatch.delenv(name, raising=False)
    control = _access_control(build_parser().parse_args(["serve"]))
    assert not control.options.active
    server = neurtmp.Factory().create_server()
    control.install(server)
    # the connect check is there (a reload may give it a hook) and claims no connection
    assert len(server.get_connect_handlers()) == 1 and server.get_publish_event_handlers() == ()
    assert server.get_play_event_observers() == () and len(server.get_access_event_handlers()) == 1


@pytest.mark.timeout(90)
def test_a_config_files_app_tables_give_each_app_its_own_rules_and_hooks(tmp_path: Any) -> None:
    live_hooks, studio_hooks = HookServer(), HookServer()
    config = tmp_path / "apps.toml"
    config.write_text(f'[serve]\non-publish-done = "{live_hooks.url()}"\n'
                      '[serve.apps.live]\n'
                      '[serve.apps.studio]\ndeny-play = "all"\n'
                      f'on-publish-done = "{studio_hooks.url()}"\n'
                      '[serve.apps.locked]\nallow-publish = "10.0.0.0/8"\ndeny-publish = "all"\n')
    try:
        with neurtmp_process("serve", "--config", str(config)) as (address, log):
            assert "403 publish not allowed from 127.0.0.1 (deny all)" in publish_refused(
                f"rtmp://{address}/locked/cam")
            assert publish_refused(f"rtmp://{address}/other/cam")  # no table: not served
            for app in ("live", "studio"):
                publisher = ffmpeg_publish(f"rtmp://{address}/{app}/cam", 1)
                assert publisher.wait(30) == 0, publisher.stderr.read()
            # each app's publish_done went to its own hook: the app's replaces the server's
            wait_for(lambda: live_hooks.seen("publish_done") and studio_hooks.seen("publish_done"), 10)
            assert [call["app"] for call in live_hooks.seen("publish_done")] == ["live"]
            assert [call["app"] for call in studio_hooks.seen("publish_done")] == ["studio"]
            # plays: denied in studio alone (live has no rules of its own and none server-wide)
            assert "403 play not allowed from 127.0.0.1 (deny all)" in play_refused(f"rtmp://{address}/studio/cam")
    finally:
        live_hooks.stop()
        studio_hooks.stop()
