"""Hooks that redirect to rtmp:// URLs, as nginx-rtmp relays them: an on_play redirect
pulls the stream for its players (one pull however many, stopped after the last leaves),
an on_publish redirect pushes the publish while it lasts. Two servers on loopback, real
ffmpeg publishers and players; an unreachable remote refuses the player at once (or
after the timeout) and leaves a publisher publishing here, never holding anyone up."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import gevent
import gevent.event
import gevent.server
import gevent.socket
import numpy as np
import pytest

import neurtmp
from neurtmp.access import AccessOptions, parse_rule
from neurtmp.protocol import events as ev
from neurtmp.relay import Backoff, RedirectRelays
from neurtmp.relay.redirects import relay_url

from ..conftest import url
from ..helpers import wait_for
from ..live.helpers import ffmpeg_publish, live_server
from ..live.test_relay import Feeder, closed_port, neurtmp_process
from .helpers import FrameCounter, HookServer, access_server, play_refused

#: A flat colour the publishers send and the players must decode (160x120, 25 fps).
COLOR = (32, 96, 160)
SOURCE = "color=c=0x2060a0:size=160x120:rate=25"


def shows_the_color(frame: bytes) -> bool:
    """Whether a decoded rgb24 frame is the published colour (within coding error)."""
    mean = np.frombuffer(frame, np.uint8).reshape(-1, 3).mean(axis=0)
    return bool(frame) and all(abs(got - want) < 12 for got, want in zip(mean, COLOR, strict=True))


class Relaying:
    """Makes the `RedirectRelays` of a test's server (short grace and backoff)."""

    def __init__(self) -> None:
        self.made: list[RedirectRelays] = []
        self.timeout = 3.0

    def __call__(self, server: neurtmp.Server) -> RedirectRelays:
        relays = RedirectRelays(server, grace=0.3, timeout=self.timeout, backoff=Backoff(0.2, 1)).start()
        self.made.append(relays)
        return relays

    @property
    def relays(self) -> RedirectRelays:
        [relays] = self.made
        return relays


@pytest.fixture
def hooks() -> Iterator[HookServer]:
    server = HookServer()
    yield server
    server.stop()


@pytest.fixture
def relaying(make_server: Any) -> Iterator[Relaying]:
    """Stopped before the servers are (this fixture is set up after `make_server`)."""
    made = Relaying()
    yield made
    for relays in made.made:
        relays.stop()


def redirect(names: dict[str, str]) -> Any:
    """A hook answer: 302 to `names[name]`, 200 for other names."""
    def answer(form: dict[str, str]) -> tuple[str, list[tuple[str, str]]]:
        location = names.get(form.get("name", ""))
        return ("302 Found", [("Location", location)]) if location else ("200 OK", [])
    return answer


@pytest.mark.timeout(90)
def test_an_on_play_redirect_pulls_the_stream_once_for_all_its_players(
        make_server: Any, hooks: HookServer, relaying: Relaying, caplog: Any) -> None:
    caplog.set_level(logging.INFO)
    origin, _ = live_server(make_server)
    upstream: list[bool] = []  # plays on the origin: start / stop
    origin.register_play_event_observer(lambda is_start, stream: upstream.append(is_start))
    hooks.answer = redirect({"tv": url(origin, "live/x?token=s3cret")})
    server, app = access_server(make_server, AccessOptions(hooks={"play": hooks.url()}), relays=relaying)
    publisher = ffmpeg_publish(url(origin, "live/x"), 60, SOURCE)
    players = [FrameCounter(url(server, "live/tv?viewer=1")), FrameCounter(url(server, "live/tv"))]
    try:
        wait_for(lambda: all(player.frames >= 25 for player in players), 40)
        assert all(shows_the_color(player.last) for player in players)
        assert upstream == [True]  # one pull for both players
        assert list(relaying.relays.pulls) == [("live", "tv")]
        live = app.registry.get("live", "tv")  # served under the name the players asked for
        assert live is not None and live.is_live and len(live.players()) == 2
        assert app.registry.get("live", "x") is None
        assert [form["name"] for form in hooks.seen("play")] == ["tv", "tv"]
    finally:
        for player in players:
            player.stop()
        publisher.kill()
        publisher.wait(10)
    # the last player gone, the pull stops after the grace period, upstream too
    wait_for(lambda: not relaying.relays.pulls and upstream == [True, False], 10)
    shown = f"rtmp://{origin.get_listen_address()}/live/x?token=***"
    assert f"on_play redirect: pulling live/tv from {shown}" in caplog.text
    assert f"on_play redirect: no player of live/tv left; stopping its pull from {shown}" in caplog.text
    assert "s3cret" not in caplog.text


@pytest.mark.timeout(90)
def test_an_on_publish_redirect_pushes_the_stream_while_it_is_published(
        make_server: Any, hooks: HookServer, relaying: Relaying, caplog: Any) -> None:
    caplog.set_level(logging.INFO)
    origin, origin_app = live_server(make_server)
    hooks.answer = redirect({"studio": url(origin, "live/y?key=s3cret")})
    server, app = access_server(make_server, AccessOptions(hooks={"publish": hooks.url()}), relays=relaying)
    far = FrameCounter(url(origin, "live/y"))  # waits for the push
    near = FrameCounter(url(server, "live/studio"))  # the publish stays here too, under its own name
    publisher = ffmpeg_publish(url(server, "live/studio"), 6, SOURCE)
    try:
        wait_for(lambda: far.frames >= 25 and near.frames >= 25, 40)
        assert shows_the_color(far.last) and shows_the_color(near.last)
        [push] = relaying.relays.pushes.values()
        assert list(relaying.relays.pushes) == [("live", "studio")]
        pushed = origin_app.registry.get("live", "y")
        assert pushed is not None and pushed.is_live
        assert publisher.wait(30) == 0, publisher.stderr.read()
        # the publisher gone, its push ends, and the far side's publish with it
        wait_for(lambda: not push.running and not relaying.relays.pushes and not pushed.is_live, 10)
    finally:
        for player in (far, near):
            player.stop()
        if publisher.poll() is None:
            publisher.kill()
    assert f"on_publish redirect: pushing live/studio to rtmp://{origin.get_listen_address()}/live/y?key=***" \
        in caplog.text
    assert "on_publish redirect: live/studio unpublished; ending its push to" in caplog.text
    assert "s3cret" not in caplog.text


@pytest.mark.timeout(90)
def test_an_unreachable_on_play_redirect_refuses_the_player_and_holds_no_one_up(
        make_server: Any, hooks: HookServer, relaying: Relaying, caplog: Any) -> None:
    release = gevent.event.Event()
    mute = gevent.server.StreamServer(("127.0.0.1", 0), lambda sock, address: release.wait(30))
    mute.start()  # accepts, never answers the handshake
    gone = closed_port()  # refuses at once
    hooks.answer = redirect({"gone": f"rtmp://127.0.0.1:{gone}/live/x",
                             "mute": f"rtmp://127.0.0.1:{mute.server_port}/live/x"})
    relaying.timeout = 1.0
    server, _ = access_server(make_server, AccessOptions(hooks={"play": hooks.url()}), relays=relaying)
    publisher = ffmpeg_publish(url(server, "live/cam"), 60)
    watcher = FrameCounter(url(server, "live/cam"))
    try:
        wait_for(lambda: watcher.frames >= 5, 30)
        started = time.monotonic()
        err = play_refused(url(server, "live/gone"))
        assert "502 on_play hook relay failed" in err and "refused" in err.lower(), err
        assert time.monotonic() - started < 5
        before, started = watcher.frames, time.monotonic()
        err = play_refused(url(server, "live/mute"))
        waited = time.monotonic() - started
        assert "502 on_play hook relay failed" in err, err
        assert 0.9 <= waited < 8, waited
        # the neighbour kept getting frames (25 fps) while the relay waited for the mute remote
        assert watcher.frames - before >= 15, (before, watcher.frames)
        assert not relaying.relays.pulls and set(relaying.relays.players) == {("live", "cam")}
    finally:
        watcher.stop()
        publisher.kill()
        publisher.wait(10)
        release.set()
        mute.stop(timeout=1)
    assert f"on_play redirect: cannot pull live/gone from rtmp://127.0.0.1:{gone}/live/x" in caplog.text


@pytest.mark.timeout(90)
def test_an_unreachable_on_publish_redirect_leaves_the_publish_here_with_a_warning(
        make_server: Any, hooks: HookServer, relaying: Relaying, caplog: Any) -> None:
    gone = closed_port()
    hooks.answer = redirect({"studio": f"rtmp://127.0.0.1:{gone}/live/y"})
    server, _ = access_server(make_server, AccessOptions(hooks={"publish": hooks.url()}), relays=relaying)
    near = FrameCounter(url(server, "live/studio"))
    publisher = ffmpeg_publish(url(server, "live/studio"), 4, SOURCE)
    try:
        wait_for(lambda: relaying.relays.pushes, 20)
        [push] = relaying.relays.pushes.values()
        wait_for(lambda: near.frames >= 25, 30)
        assert shows_the_color(near.last)
        assert publisher.wait(30) == 0, publisher.stderr.read()  # it published to the end
        wait_for(lambda: not push.running and not relaying.relays.pushes, 10)
        assert push.published == 0
    finally:
        near.stop()
        if publisher.poll() is None:
            publisher.kill()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"127.0.0.1:{gone}/live/y>: target:" in message for message in warnings), warnings


@pytest.mark.timeout(30)
def test_redirects_to_urls_the_server_cannot_relay_are_refused(make_server: Any, hooks: HookServer) -> None:
    hooks.answer = redirect({"far": "rtmp://127.0.0.1:1/live/x", "web": "http://example.invalid/x"})
    server, _ = access_server(make_server, AccessOptions(hooks={"play": hooks.url(), "publish": hooks.url()}))
    for name, why in (("far", "relaying is not enabled here"), ("web", r"only a name or an rtmp\[s\]:// URL")):
        for act in ("play", "publish"):
            client = neurtmp.connect(url(server, "live"), timeout=5)
            with pytest.raises(neurtmp.CallError, match=why):
                getattr(client, act)(name)
            client.close()


def test_relay_url_adds_the_local_name_where_the_location_names_no_stream() -> None:
    assert relay_url("rtmp://origin/live/other?k=1", "cam?x=2") == "rtmp://origin/live/other?k=1"
    assert relay_url("rtmp://origin/live", "cam?x=2") == "rtmp://origin/live/cam"
    assert relay_url("rtmps://origin:443/live/?token=t", "cam") == "rtmps://origin:443/live/cam?token=t"
    with pytest.raises(ValueError, match=r"not rtmp\[s\]://HOST") as raised:
        relay_url("rtmp://?sig=abc", "cam")
    assert "abc" not in str(raised.value)  # the message may go to a client


def count_videos(client: neurtmp.Client, seen: list[int]) -> None:
    while (event := client.read(timeout=30)) is not None:
        if isinstance(event, ev.VideoReceived):
            seen.append(len(event.payload))


@pytest.mark.timeout(90)
def test_neurtmp_serve_relays_hook_redirects_and_stops_them_on_shutdown(make_server: Any, hooks: HookServer
                                                                       ) -> None:
    origin, origin_app = live_server(make_server)
    hooks.answer = redirect({"tv": url(origin, "live/x"), "studio": url(origin, "live/y")})
    feeder = Feeder(url(origin, "live"), name="x")
    with neurtmp_process("serve", "--on-play", hooks.url(), "--on-publish", hooks.url()) as (address, log):
        player = neurtmp.connect(f"rtmp://{address}/live", timeout=10)
        player.play("tv")
        encoder = ffmpeg_publish(f"rtmp://{address}/live/studio", 60, SOURCE)
        watcher = neurtmp.connect(url(origin, "live"), timeout=10)
        watcher.play("y")
        pulled: list[int] = []
        pushed: list[int] = []
        readers = [gevent.spawn(count_videos, player, pulled), gevent.spawn(count_videos, watcher, pushed)]
        wait_for(lambda: len(pulled) >= 15 and len(pushed) >= 15, 30)
        live_x, live_y = origin_app.registry.get("live", "x"), origin_app.registry.get("live", "y")
        assert live_x is not None and len(live_x.players()) == 1 and live_y is not None and live_y.is_live
    # SIGTERM while both relays run: the server stops them and exits 0
    wait_for(lambda: not live_x.players() and not live_y.is_live, 10)
    [err] = log
    assert "on_play redirect: pulling live/tv from rtmp://" in err
    assert "on_publish redirect: pushing live/studio to rtmp://" in err
    gevent.killall(readers)
    for client in (player, watcher):
        client.close()
    encoder.kill()
    encoder.wait(10)
    feeder.stop()


@pytest.mark.timeout(30)
def test_a_remote_that_refuses_the_pull_refuses_the_player_and_no_secret_is_told(
        make_server: Any, hooks: HookServer, relaying: Relaying, caplog: Any) -> None:
    caplog.set_level(logging.INFO)
    origin, _ = access_server(make_server, AccessOptions(play_rules=(parse_rule(False, "all"),)))
    hooks.answer = redirect({"tv": url(origin, "live/x?token=s3cret"), "bad": "rtmp://?token=s3cret"})
    server, _ = access_server(make_server, AccessOptions(hooks={"play": hooks.url()}), relays=relaying)
    for name, why in (("tv", "502 on_play hook relay failed: .*x[?]token=[*]{3}.* play not allowed"),
                      ("bad", r"502 on_play hook relay failed: the Location is not rtmp\[s\]://HOST")):
        client = neurtmp.connect(url(server, "live"), timeout=5)
        with pytest.raises(neurtmp.CallError, match=why) as raised:
            client.play(name)
        assert "s3cret" not in str(raised.value)
        client.close()
    assert not relaying.relays.pulls
    assert "cannot pull live/tv from" in caplog.text and "on_play redirect of live/bad to rtmp://?token=***" \
        in caplog.text
    assert "s3cret" not in caplog.text


def http_get(port: int, path: str) -> bytes:
    """GET `path` from 127.0.0.1:`port`: the whole answer (the server closes it)."""
    sock = gevent.socket.create_connection(("127.0.0.1", port), timeout=20)
    try:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer
    finally:
        sock.close()


@pytest.mark.timeout(90)
def test_http_flv_players_of_an_on_play_redirect_share_the_pull_too(
        make_server: Any, hooks: HookServer, relaying: Relaying) -> None:
    from neurtmp.access import AccessControl
    from neurtmp.live import LiveApp
    from neurtmp.live.http import LiveHttp, serve_live_http

    origin, _ = live_server(make_server)
    upstream: list[bool] = []
    origin.register_play_event_observer(lambda is_start, stream: upstream.append(is_start))
    hooks.answer = redirect({"tv": url(origin, "live/x"), "gone": f"rtmp://127.0.0.1:{closed_port()}/live/x"})
    server = make_server()
    access = AccessControl(AccessOptions(hooks={"play": hooks.url()}), relaying(server))
    access.install(server)
    app = LiveApp()
    app.install(server)
    http_app = LiveHttp(app, server, play_check=access.check_http_play, play_done=access.notify_http_play_done)
    http = serve_live_http(http_app, "127.0.0.1", 0)
    base = f"http://127.0.0.1:{http.address[1]}"
    publisher = ffmpeg_publish(url(origin, "live/x"), 60, SOURCE)
    try:
        answer = http_get(http.address[1], "/live/gone.flv")
        assert answer.startswith(b"HTTP/1.1 502 Bad Gateway\r\n"), answer
        assert answer.endswith(b"502 on_play hook relay failed: [Errno 111] Connection refused"), answer
        players = [FrameCounter(f"{base}/live/tv.flv"), FrameCounter(url(server, "live/tv"))]  # HTTP-FLV and RTMP
        try:
            wait_for(lambda: all(player.frames >= 25 for player in players), 40)
            assert all(shows_the_color(player.last) for player in players)
            assert upstream == [True] and list(relaying.relays.pulls) == [("live", "tv")]
            players.pop().stop()  # the RTMP player leaves: the HTTP-FLV one keeps the pull
            before = players[0].frames
            wait_for(lambda: players[0].frames >= before + 25, 20)
            assert upstream == [True]
        finally:
            for player in players:
                player.stop()
        wait_for(lambda: not relaying.relays.pulls and upstream == [True, False], 20)
    finally:
        publisher.kill()
        publisher.wait(10)
        http_app.stop()
        http.stop(timeout=1)
