"""HTTP hooks with a real hook server and real ffmpeg clients: the form fields, 2xx
allows, 403 refuses, 302 renames, a hook that hangs refuses after the timeout while
another client streams on, and the *_done calls arrive."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import gevent
import pytest

from neurtmp.access import AccessOptions, post_form

from ..conftest import url
from ..helpers import wait_for
from ..live.helpers import ffmpeg_play_raw, ffmpeg_publish
from .helpers import FrameCounter, HookServer, access_server, play_refused, publish_refused

CALLS = ("connect", "publish", "play", "publish_done", "play_done")


@pytest.fixture
def hooks() -> Iterator[HookServer]:
    server = HookServer()
    yield server
    server.stop()


def every_hook(hooks: HookServer, timeout: float = 5.0) -> AccessOptions:
    return AccessOptions(hooks={call: hooks.url(f"/on_{call}?token=t") for call in CALLS}, hook_timeout=timeout)


@pytest.mark.timeout(90)
def test_hooks_see_nginx_rtmp_fields_and_the_done_calls_arrive(make_server: Any, hooks: HookServer) -> None:
    server, app = access_server(make_server, every_hook(hooks))
    publisher = ffmpeg_publish(url(server, "live/cam?key=k1&x=2"), 3)
    player = ffmpeg_play_raw(url(server, "live/cam?viewer=v9"), 160, 120)
    assert publisher.wait(30) == 0, publisher.stderr.read()
    player.communicate(timeout=30)
    wait_for(lambda: hooks.seen("publish_done") and hooks.seen("play_done"), 10)
    [publish] = hooks.seen("publish")
    assert publish["_content_type"] == "application/x-www-form-urlencoded"
    assert publish["addr"] == "127.0.0.1" and publish["app"] == "live" and publish["name"] == "cam"
    assert publish["type"] == "live" and publish["key"] == "k1" and publish["x"] == "2"
    assert publish["tcurl"].startswith("rtmp://127.0.0.1:") and publish["flashver"]
    assert {"clientid", "swfurl", "pageurl"} <= set(publish)
    [play] = hooks.seen("play")
    assert play["name"] == "cam" and play["viewer"] == "v9" and "type" not in play
    assert play["clientid"] != publish["clientid"]
    connects = hooks.seen("connect")
    assert len(connects) == 2 and {c["clientid"] for c in connects} == {publish["clientid"], play["clientid"]}
    [done] = hooks.seen("publish_done")
    assert done["name"] == "cam" and done["key"] == "k1" and done["clientid"] == publish["clientid"]
    [played] = hooks.seen("play_done")
    assert played["name"] == "cam" and played["clientid"] == play["clientid"]
    assert app.registry.get("live", "cam") is None or not app.registry.get("live", "cam").is_live


@pytest.mark.timeout(90)
def test_403_refuses_and_302_renames(make_server: Any, hooks: HookServer) -> None:
    def answer(form: dict[str, str]) -> tuple[str, list[tuple[str, str]]]:
        if form.get("name") == "banned" or form.get("app") == "closed":
            return "403 Forbidden", []
        if form.get("name") == "alias":
            return "302 Found", [("Location", "real")]
        if form.get("name") == "nowhere":
            return "302 Found", []
        return "204 No Content", []

    hooks.answer = answer
    server, app = access_server(make_server, every_hook(hooks))
    assert "403 on_publish hook refused (403)" in publish_refused(url(server, "live/banned"))
    assert "403 on_play hook refused (403)" in play_refused(url(server, "live/banned"))
    assert "403 on_connect hook refused (403)" in publish_refused(url(server, "closed/cam"))
    assert "without a Location" in publish_refused(url(server, "live/nowhere"))
    assert not hooks.seen("publish_done")  # refused publishes were never live
    publisher = ffmpeg_publish(url(server, "live/alias"), 8)
    wait_for(lambda: (s := app.registry.get("live", "real")) is not None and s.is_live, 20)
    assert app.registry.get("live", "alias") is None
    player = FrameCounter(url(server, "live/real"))  # plays the new name: gets the stream
    aliased = FrameCounter(url(server, "live/alias"))  # renamed on play too
    try:
        wait_for(lambda: player.frames >= 10 and aliased.frames >= 10, 20)
        live = app.registry.get("live", "real")
        assert live is not None and len(live.players()) == 2
    finally:
        for counter in (player, aliased):
            counter.stop()
        publisher.kill()
        publisher.wait(10)


@pytest.mark.timeout(90)
def test_a_hanging_hook_refuses_after_the_timeout_and_delays_no_one_else(make_server: Any, hooks: HookServer
                                                                        ) -> None:
    hanging: list[float] = []

    def answer(form: dict[str, str]) -> tuple[str, list[tuple[str, str]]]:
        if form.get("name") == "slow":
            hanging.append(time.monotonic())
            return hooks.hang()
        return "200 OK", []

    hooks.answer = answer
    server, app = access_server(make_server, AccessOptions(hooks={"play": hooks.url()}, hook_timeout=1.0))
    publisher = ffmpeg_publish(url(server, "live/cam"), 15)
    watcher = FrameCounter(url(server, "live/cam"))
    try:
        wait_for(lambda: watcher.frames >= 5, 20)
        slow = ffmpeg_play_raw(url(server, "live/slow"), 160, 120)
        wait_for(lambda: hanging, 10)
        before = watcher.frames
        err = play_refused_process(slow)
        waited = time.monotonic() - hanging[0]
        assert "403 on_play hook failed: no answer within 1 s" in err
        assert 0.9 <= waited < 5, waited
        # The other player kept receiving frames while the hook held its neighbour (25 fps).
        assert watcher.frames - before >= 15, (before, watcher.frames)
    finally:
        watcher.stop()
        publisher.kill()
        publisher.wait(10)


def play_refused_process(process: Any) -> str:
    status = process.wait(20)
    err = process.stderr.read().decode(errors="replace")
    assert status != 0, err
    return err


@pytest.mark.timeout(30)
def test_post_form_answers_with_what_went_wrong(hooks: HookServer) -> None:
    hooks.answer = lambda form: ("307 Temporary Redirect", [("Location", "other")])
    answer = post_form(hooks.url(), [("call", "play"), ("name", "a b&c")])
    assert answer.redirect and answer.location == "other" and not answer.error
    assert hooks.calls[-1]["name"] == "a b&c"
    # nothing listening: refused at once, said so
    probe = gevent.socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    unreachable = post_form(f"http://127.0.0.1:{port}/", [("call", "publish")], timeout=2)
    assert unreachable.status == 0 and unreachable.error.startswith("unreachable")
    assert post_form("ftp://example/", []).error.startswith("not an http")


@pytest.mark.timeout(60)
def test_on_record_done_gets_each_finished_file(make_server: Any, hooks: HookServer, tmp_path: Any) -> None:
    from neurtmp.access import AccessControl
    from neurtmp.record import Recorder, RecordOptions

    access = AccessControl(AccessOptions(hooks={"record_done": hooks.url("/on_record_done")}))
    server, app = access_server(make_server, AccessOptions())
    recorder = Recorder(RecordOptions(str(tmp_path)), on_done=access.notify_recorded)
    recorder.install(server)
    publisher = ffmpeg_publish(url(server, "live/cam"), 2)
    assert publisher.wait(30) == 0, publisher.stderr.read()
    wait_for(lambda: hooks.seen("record_done"), 15, "the record_done hook was called")
    recorder.close(5)
    [done] = hooks.seen("record_done")
    assert (done["app"], done["name"]) == ("live", "cam")
    assert done["path"].startswith(str(tmp_path)) and done["path"].endswith(".flv")
    assert os.path.getsize(done["path"]) > 1000 and float(done["end"]) > float(done["start"])
