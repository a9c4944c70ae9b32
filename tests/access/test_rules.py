"""IP rules: parsing (IPv4, IPv6, all), order (first match wins, none allows), and
ffmpeg clients from 127.0.0.1 refused or let through."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest

from neurtmp.access import AccessOptions, IpRules, parse_rule
from neurtmp.access.rules import parse_peer_host
from neurtmp.errors import ConfigError

from ..conftest import url
from ..helpers import wait_for
from ..live.helpers import ffmpeg_publish
from .helpers import FrameCounter, access_server, play_refused, publish_refused


def ip(text: str) -> Any:
    return ipaddress.ip_address(text)


def test_rules_parse_ipv4_ipv6_and_all() -> None:
    assert str(parse_rule(True, "10.1.2.3/8")) == "allow 10.0.0.0/8"  # its network, as nginx-rtmp reads it
    assert str(parse_rule(False, "ALL")) == "deny all"
    assert str(parse_rule(True, "2001:db8::1/32")) == "allow 2001:db8::/32"
    assert str(parse_rule(True, "[::1]")) == "allow ::1/128"
    for bad in ("", "10.0.0.0/33", "example.com", "2001:db8::/129", "1.2.3"):
        with pytest.raises(ConfigError):
            parse_rule(True, bad)


def test_the_first_matching_rule_decides_and_no_match_allows() -> None:
    rules = IpRules([parse_rule(True, "10.0.0.0/8"), parse_rule(False, "10.9.0.0/16"),
                     parse_rule(False, "2001:db8::/32"), parse_rule(True, "::/0")])
    assert rules.allows(ip("10.9.1.1"))  # the allow comes first
    assert not rules.allows(ip("2001:db8::5"))
    assert rules.allows(ip("2001:dead::5"))
    assert rules.allows(ip("192.168.1.1"))  # no rule matches: open
    deny_all = IpRules([parse_rule(True, "127.0.0.1"), parse_rule(False, "all")])
    assert deny_all.allows(ip("127.0.0.1")) and not deny_all.allows(ip("127.0.0.2"))
    assert not deny_all.allows(None)  # an unknown address matches "all" alone
    v6_only = IpRules([parse_rule(False, "::/0")])
    assert v6_only.allows(ip("1.2.3.4"))  # an IPv6 rule never matches an IPv4 client


def test_peer_addresses_as_the_framework_writes_them() -> None:
    assert parse_peer_host("127.0.0.1:5000") == ip("127.0.0.1")
    assert parse_peer_host("[::1]:5000") == ip("::1")
    assert parse_peer_host("[::ffff:10.0.0.1]:5000") == ip("10.0.0.1")  # IPv4 on an IPv6 listener
    assert parse_peer_host("[fe80::1%eth0]:5000") == ip("fe80::1")
    assert parse_peer_host("local:0") is None


@pytest.mark.timeout(90)
def test_ffmpeg_from_loopback_against_allow_and_deny_rules(make_server: Any) -> None:
    denied, _ = access_server(make_server, AccessOptions(
        publish_rules=(parse_rule(True, "10.0.0.0/8"), parse_rule(False, "all")),
        play_rules=(parse_rule(False, "127.0.0.0/8"),)))
    assert "403 publish not allowed from 127.0.0.1 (deny all)" in publish_refused(url(denied, "live/cam"))
    assert "403 play not allowed from 127.0.0.1 (deny 127.0.0.0/8)" in play_refused(url(denied, "live/cam"))
    allowed, app = access_server(make_server, AccessOptions(
        publish_rules=(parse_rule(True, "127.0.0.1"), parse_rule(False, "all")),
        play_rules=(parse_rule(False, "::1"), parse_rule(True, "127.0.0.0/8"), parse_rule(False, "all"))))
    publisher = ffmpeg_publish(url(allowed, "live/cam"), 8)
    player = FrameCounter(url(allowed, "live/cam"))
    try:
        wait_for(lambda: player.frames >= 10, 20)
        live = app.registry.get("live", "cam")
        assert live is not None and live.is_live
    finally:
        player.stop()
        publisher.kill()
        publisher.wait(10)


@pytest.mark.timeout(90)
def test_a_trusted_listener_and_in_process_relays_pass_the_rules(make_server: Any) -> None:
    from neurtmp.relay import PushRelay

    options = AccessOptions(publish_rules=(parse_rule(False, "all"),), play_rules=(parse_rule(False, "all"),))
    server, app = access_server(make_server, options)
    with socket.socket() as probe:  # a free port for an internal listener (as the workers' origin)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server.start(f"127.0.0.1:{port}", trusted=True)
    internal = f"rtmp://127.0.0.1:{port}/live"
    assert "403 publish not allowed" in publish_refused(url(server, "live/cam"))
    # through the trusted listener the same client is let through, and a push relay plays
    # the stream in-process past the play rule that refuses every network player
    target, target_app = access_server(make_server, AccessOptions())
    relay = PushRelay(server, "live", "cam", url(target, "live/cam")).start()
    publisher = ffmpeg_publish(f"{internal}/cam", 8)
    player = FrameCounter(url(target, "live/cam"))
    try:
        wait_for(lambda: player.frames >= 10, 30, "frames pushed past the deny-play rule")
        connections = server.get_connections()
        assert any(c.trusted and not c.local for c in connections)  # the publisher
        assert any(c.local for c in connections)  # the relay's player
        assert "403 play not allowed" in play_refused(url(server, "live/cam"))
    finally:
        relay.stop()
        player.stop()
        publisher.kill()
        publisher.wait(10)
