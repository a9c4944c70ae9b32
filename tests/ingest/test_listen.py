"""What `neurtmp ingest` says it listens on is what it listens on; refusals log no secrets."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import time
from typing import Any

import psutil
import pytest

from neurtmp.cli import build_parser
from neurtmp.ingest import IngestConfig
from neurtmp.ingest.access import sign

from ..conftest import url
from .test_grpc import free_port
from .test_ingest import ingest, status_of_publish  # noqa: F401 (the fixture)


def listening(pid: int) -> set[tuple[str, int]]:
    """(address, port) of each listening socket (an IPv4-mapped IPv6 address as IPv4)."""
    return {(c.laddr.ip.removeprefix("::ffff:"), c.laddr.port)
            for c in psutil.Process(pid).net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN}


@pytest.mark.timeout(90)
def test_the_startup_lines_name_the_addresses_really_bound(tmp_path: Any) -> None:
    rtmp, http, grpc = free_port(), free_port(), free_port()
    env = {**os.environ, "RTMP_GRPC_HOST": "127.0.0.1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "neurtmp.cli", "ingest", "--host", "0.0.0.0", "--port", str(rtmp),
         "--http-port", str(http), "--grpc-port", str(grpc), "--output-dir", str(tmp_path), "--encoder", "x264"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline(), process.stdout.readline()]
        text = "".join(lines)
        shown_http = re.search(r"serving HLS and DASH on http://([^/]+)/", text)
        shown_grpc = re.search(r"gRPC ModuleService on (\S+)", text)
        shown_rtmp = re.search(r"listening on rtmp://(\S+)", text)
        assert shown_http and shown_grpc and shown_rtmp, lines
        assert (shown_http.group(1), shown_grpc.group(1), shown_rtmp.group(1)) == (
            f"0.0.0.0:{http}", f"127.0.0.1:{grpc}", f"0.0.0.0:{rtmp}"), lines
        bound = listening(process.pid)
        for shown in (shown_http, shown_grpc, shown_rtmp):
            host, _, port = shown.group(1).rpartition(":")
            assert (host, int(port)) in bound, (shown.group(1), bound)
        assert ("0.0.0.0", grpc) not in bound and ("::", grpc) not in bound, bound  # gRPC stays internal
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err


def test_the_grpc_host_is_a_flag_and_a_variable() -> None:
    args = build_parser().parse_args(["ingest", "--grpc-host", "10.1.2.3"])
    assert args.grpc_host == "10.1.2.3"
    assert IngestConfig.from_sources({"RTMP_GRPC_HOST": "127.0.0.1"}).grpc_host == "127.0.0.1"
    assert IngestConfig.from_sources({"RTMP_GRPC_HOST": "127.0.0.1"}, {"grpc_host": "::1"}).grpc_host == "::1"


def refused_with_a_bad_signature(app: Any, caplog: Any) -> tuple[str, str]:
    now = int(time.time())
    signature = sign("wrong secret", "cam", now + 60)
    with caplog.at_level(logging.DEBUG, logger="neurtmp"):
        refused = status_of_publish(url(app.server, "live"), f"cam?expires={now + 60}&sig={signature}")
    assert refused == "NetStream.Publish.Rejected 403 bad token signature"
    return signature, refused


@pytest.mark.timeout(30)
def test_a_refused_publish_is_logged_once_and_the_ingest_app_logs_no_token(ingest: Any,  # noqa: F811
                                                                          caplog: Any) -> None:
    app = ingest(auth_secret="s3cret")
    signature, _ = refused_with_a_bad_signature(app, caplog)
    lines = [r for r in caplog.records if "refused" in r.getMessage() and "'cam" in r.getMessage()]
    assert len(lines) == 1 and "403 bad token signature" in lines[0].getMessage(), [r.getMessage() for r in lines]
    ingest_lines = [r.getMessage() for r in caplog.records if r.name.startswith("neurtmp.ingest")]
    assert not [line for line in ingest_lines if signature in line or "sig=" in line], ingest_lines


@pytest.mark.timeout(30)
def test_no_log_line_carries_a_publish_token(ingest: Any, caplog: Any) -> None:  # noqa: F811
    app = ingest(auth_secret="s3cret")
    signature, _ = refused_with_a_bad_signature(app, caplog)
    carrying = [r.getMessage() for r in caplog.records if signature in r.getMessage()]
    assert not carrying, carrying


