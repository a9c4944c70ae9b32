"""Signed tokens: one implementation for ingest and serve; a play token never publishes
(nor the other way round); real ffmpeg publishers and players allowed and refused."""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from typing import Any

import pytest

from neurtmp.access import PLAY, PUBLISH, AccessOptions, check_token, parse_rule, sign, token_query
from neurtmp.access.tokens import split_name
from neurtmp.ingest import access as ingest_access
from neurtmp.live import LiveOptions

from ..conftest import url
from ..helpers import wait_for
from ..live.helpers import ffmpeg_publish
from .helpers import FrameCounter, access_server, play_refused, publish_refused


def test_publish_tokens_are_the_ones_ingest_and_neurtmp_token_always_made() -> None:
    expires = 1_900_000_000
    legacy = hmac.new(b"s3cret", f"cam:{expires}".encode(), hashlib.sha256).hexdigest()
    assert sign("s3cret", "cam", expires) == legacy == ingest_access.sign("s3cret", "cam", expires)
    assert ingest_access.check_token is check_token  # one implementation
    assert check_token("s3cret", "cam", {"expires": str(expires), "sig": legacy.upper()}, now=0) is None


def test_a_token_is_for_publishing_or_for_playing_never_both() -> None:
    expires = int(time.time()) + 60
    play = split_name(f"cam?{token_query('k', 'cam', expires, PLAY)}")[1]
    publish = split_name(f"cam?{token_query('k', 'cam', expires, PUBLISH)}")[1]
    assert check_token("k", "cam", play, kind=PLAY) is None
    assert check_token("k", "cam", publish, kind=PUBLISH) is None
    assert check_token("k", "cam", play, kind=PUBLISH) == "bad token signature"
    assert check_token("k", "cam", publish, kind=PLAY) == "bad token signature"
    # No name can make a publish message equal a play message: that would take a newline.
    assert check_token("k", "play\ncam", {"expires": str(expires), "sig": play["sig"]}) == \
        "no token is valid for a name with control characters"
    assert check_token("k", "cam", {}, kind=PLAY) == "playing needs a token (?expires=...&sig=...)"
    assert check_token("k", "cam", {"expires": "soon", "sig": "ab"}) == "bad token expiry"


def test_secrets_per_app_and_for_every_app() -> None:
    options = AccessOptions(publish_secrets={"": "all", "vip": "own"}, play_secrets={"vip": "p"})
    assert options.secret("publish", "live") == "all" and options.secret("publish", "vip") == "own"
    assert options.secret("play", "vip") == "p" and options.secret("play", "live") == ""


@pytest.mark.timeout(90)
def test_ffmpeg_publishes_and_plays_only_with_the_right_token(make_server: Any, caplog: Any) -> None:
    caplog.set_level(logging.INFO)
    server, app = access_server(make_server, AccessOptions(publish_secrets={"": "pub"}, play_secrets={"": "ply"}))
    now = int(time.time())
    base = url(server, "live/cam")
    # publish: missing, expired, a play token, then a valid one
    assert "403 publishing needs a token" in publish_refused(base)
    assert "403 token expired" in publish_refused(f"{base}?{token_query('pub', 'cam', now - 5)}")
    assert "403 bad token signature" in publish_refused(f"{base}?{token_query('pub', 'cam', now + 60, PLAY)}")
    assert app.registry.get("live", "cam") is None  # the live app never saw a refused publisher
    publisher = ffmpeg_publish(f"{base}?{token_query('pub', 'cam', now + 60)}", 8)
    wait_for(lambda: (s := app.registry.get("live", "cam")) is not None and s.is_live, 20)
    # play: missing, a publish token, then a valid play token (frames arrive)
    assert "403 playing needs a token" in play_refused(base)
    assert "403 bad token signature" in play_refused(f"{base}?{token_query('ply', 'cam', now + 60, PUBLISH)}")
    player = FrameCounter(f"{base}?{token_query('ply', 'cam', now + 60, PLAY)}")
    try:
        wait_for(lambda: player.frames >= 10, 20)
        # One line per refusal, with the peer, the name and the reason; no signature in any.
        refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
        assert len(refusals) == 5, refusals
        assert all(m.startswith("127.0.0.1:") and "'cam" in m and "403" in m for m in refusals), refusals
        for kind in (PUBLISH, PLAY):
            assert sign("pub", "cam", now + 60, kind) not in caplog.text
            assert sign("ply", "cam", now + 60, kind) not in caplog.text
    finally:
        player.stop()
        publisher.kill()
        publisher.wait(10)


@pytest.mark.timeout(90)
def test_with_takeover_only_a_publisher_with_a_token_takes_over(make_server: Any) -> None:
    server, app = access_server(make_server, AccessOptions(publish_secrets={"": "pub"}), LiveOptions(takeover=True))
    expires = int(time.time()) + 60
    base = url(server, "live/cam")
    first = ffmpeg_publish(f"{base}?{token_query('pub', 'cam', expires)}", 15)
    wait_for(lambda: (s := app.registry.get("live", "cam")) is not None and s.is_live, 20)
    live = app.registry.get("live", "cam")
    assert live is not None
    holder = live.publisher
    assert "403 publishing needs a token" in publish_refused(base)
    assert live.publisher is holder and first.poll() is None  # not displaced
    second = ffmpeg_publish(f"{base}?{token_query('pub', 'cam', expires)}", 15)
    try:
        wait_for(lambda: live.publisher is not holder and live.is_live, 20)
        assert first.wait(20) != 0  # the displaced publisher was disconnected
    finally:
        for process in (first, second):
            process.kill()
            process.wait(10)


@pytest.mark.timeout(60)
def test_a_push_relay_is_the_servers_own_player_and_needs_no_play_token(make_server: Any) -> None:
    import neurtmp
    from neurtmp.relay import Backoff, PushRelay

    from ..live.helpers import live_server
    from ..live.test_relay import send_and_receive

    server, _ = access_server(make_server, AccessOptions(play_secrets={"": "s3cret"},
                                                         play_rules=(parse_rule(False, "all"),)))
    remote, _ = live_server(make_server)
    push = PushRelay(server, "live", "cam", url(remote, "live/copy"), timeout=5, backoff=Backoff(0.2, 1)).start()
    watcher = neurtmp.connect(url(remote, "live"), timeout=5)
    watcher.play("copy")
    encoder = neurtmp.connect(url(server, "live"), timeout=5)
    encoder.publish("cam")
    try:
        assert send_and_receive(encoder, watcher)  # through the push relay, which no check stopped
        assert push.connected == 1
    finally:
        push.stop()
        for client in (encoder, watcher):
            client.close()
