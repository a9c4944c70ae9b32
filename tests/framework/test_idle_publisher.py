"""Stale publishers (`ServerOptions.publisher_idle_timeout`): a publisher that sends no
audio or video for that long is closed, whatever else it sends; media keeps it."""

from __future__ import annotations

import logging
import time
from typing import Any

import gevent
import pytest

import neurtmp

from ..conftest import accept_all, serve_streams, url
from ..helpers import assert_stays, wait_for

#: A short idle timeout for these tests (seconds).
IDLE = 1.0
#: What the close may take beyond the timeout on a loaded machine.
MARGIN = 3.0


def idle_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records
            if record.name == "neurtmp.connection" and "no audio or video" in record.getMessage()]


def test_the_option_is_checked() -> None:
    with pytest.raises(neurtmp.ConfigError, match="publisher_idle_timeout must be >= 0"):
        neurtmp.ServerOptions(publisher_idle_timeout=-1)
    assert neurtmp.ServerOptions(publisher_idle_timeout=0).publisher_idle_timeout == 0  # 0: off


@pytest.mark.timeout(30)
def test_a_publisher_that_never_sends_media_is_closed_from_its_publish(make_server: Any,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="neurtmp.connection")
    server = serve_streams(make_server, lambda stream: None, publisher_idle_timeout=IDLE, ping_interval=0.2)
    client = neurtmp.connect(url(server, "app"), timeout=5)
    wait_for(lambda: len(server.get_connections()) == 1)
    [connection] = server.get_connections()
    wait_for(lambda: connection.rtt_ms is not None, 3, "the client answers pings: only the media rule applies")
    client.publish("quiet?token=x")
    published = time.monotonic()
    wait_for(lambda: client.closed, IDLE + MARGIN, "the silent publisher is closed")
    assert time.monotonic() - published >= IDLE * 0.9  # the clock starts at the publish
    wait_for(lambda: not server.get_connections(), 2)
    [line] = idle_lines(caplog)
    assert line.startswith(connection.get_peer_address() + ": publisher idle for 1 s: no audio or video on ")
    assert "'app/quiet'" in line and "token" not in line


@pytest.mark.timeout(30)
def test_audio_alone_keeps_a_publisher_and_metadata_alone_does_not(make_server: Any,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="neurtmp.connection")
    server = serve_streams(make_server, lambda stream: None, publisher_idle_timeout=IDLE)
    sound = neurtmp.connect(url(server, "app"), timeout=5)
    sound.publish("sound")
    meta = neurtmp.connect(url(server, "app"), timeout=5)
    meta.publish("meta")
    published = time.monotonic()

    def feed(client: neurtmp.Client, send: Any) -> None:
        tick = 0
        while not client.closed:
            try:
                send(client, tick * 50)
            except (neurtmp.ConnectionClosed, OSError):
                return
            tick += 1
            gevent.sleep(0.05)

    feeders = [
        gevent.spawn(feed, sound, lambda client, ms: client.send_audio(b"\xaf\x01" + bytes(16), ms)),
        gevent.spawn(feed, meta, lambda client, ms: client.send_data("@setDataFrame", "onMetaData",
                                                                     {"width": 320.0}, timestamp=ms)),
    ]
    wait_for(lambda: meta.closed, IDLE + MARGIN, "a publisher of metadata alone is closed")
    assert time.monotonic() - published >= IDLE * 0.9
    assert_stays(lambda: not sound.closed, IDLE * 1.5, "audio keeps its publisher")
    assert [line for line in idle_lines(caplog) if "'app/meta'" in line]
    assert not [line for line in idle_lines(caplog) if "'app/sound'" in line]
    sound.close()
    gevent.joinall(feeders, timeout=3)


@pytest.mark.timeout(30)
def test_an_in_process_publisher_is_judged_by_the_media_it_hands_over(make_server: Any) -> None:
    server = make_server(accept_all, publisher_idle_timeout=IDLE)
    publisher = server.publish_local("app", "relayed")
    video = neurtmp.Packet(neurtmp.MessageType.VIDEO, 0, b"\x27\x01\x00\x00\x00" + bytes(20))
    fed_until = time.monotonic() + IDLE * 2
    while time.monotonic() < fed_until:  # media through send_packet, never over the socket pair
        publisher.send_packet(video)
        gevent.sleep(0.05)
    assert not publisher.closed
    stopped = time.monotonic()
    wait_for(lambda: publisher.closed, IDLE + MARGIN, "closed once its media stops")
    assert time.monotonic() - stopped >= IDLE * 0.9
    publisher.close()
