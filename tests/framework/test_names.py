"""Names and addresses: one helper each, and no secret in a log line."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import neurtmp
from neurtmp.names import host_port, redact_query, redact_text, split_query

from ..conftest import serve_streams, url


def test_host_port_brackets_ipv6_only() -> None:
    assert host_port("127.0.0.1", 1935) == "127.0.0.1:1935"
    assert host_port("::1", "1935") == "[::1]:1935"


def test_split_query() -> None:
    assert split_query("cam?key=1&x=2") == ("cam", "key=1&x=2")
    assert split_query("cam") == ("cam", "")


def test_redact_query_hides_secret_values_only() -> None:
    assert redact_query("cam?expires=99&sig=ab12cd") == "cam?expires=99&sig=***"
    assert redact_query("cam?token=t0k&user=bob&password=pw") == "cam?token=***&user=bob&password=***"
    assert redact_query("cam") == "cam"


def test_a_refused_publish_logs_no_signature(make_server: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="neurtmp")

    server = serve_streams(make_server, lambda stream: stream.register_publish_event_handler(
        lambda start, s, name, kind: not start))
    client = neurtmp.connect(url(server, "live"), timeout=5)
    with pytest.raises(neurtmp.CallError):
        client.publish("cam?expires=99&sig=deadbeef")
    client.close()
    lines = [r.getMessage() for r in caplog.records]
    refused = [line for line in lines if "refused" in line]
    assert len(refused) == 1 and "sig=***" in refused[0], lines
    assert not any("deadbeef" in line for line in lines)


def test_redact_text_hides_secret_values_in_messages() -> None:
    assert redact_text("play 'cam?key=k1&x=2' failed: rtmp://h/live/cam?token=t0k&sig=s gone") == \
        "play 'cam?key=***&x=2' failed: rtmp://h/live/cam?token=***&sig=*** gone"
    assert redact_text("no secrets: key=value alone, [Errno 111]") == "no secrets: key=value alone, [Errno 111]"
