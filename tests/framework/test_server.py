"""Server lifecycle: addresses, bind errors, several servers, timeouts, shutdown."""

from __future__ import annotations

import os
import socket
import time
from typing import Any

import gevent
import gevent.socket
import pytest

import neurtmp
from neurtmp.handlers import FrameEventHandler

from ..conftest import accept_all, url
from ..helpers import assert_stays, wait_for


def test_port_zero_reports_the_real_port(make_server: Any) -> None:
    server = make_server(accept_all)
    host, port = server.get_listen_address().rsplit(":", 1)
    assert host == "127.0.0.1" and int(port) > 0
    with neurtmp.connect(url(server), timeout=5) as client:
        assert client.connect_result is not None


def test_ipv6_loopback(make_server: Any) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        server = make_server(accept_all, address="[::1]:0")
    except neurtmp.ListenError as exc:
        pytest.skip(f"IPv6 loopback unavailable: {exc}")
    assert server.get_listen_address().startswith("[::1]:")
    with neurtmp.connect(url(server), timeout=5) as client:
        assert client.call("_checkbw") is None


def test_bind_failure_raises_a_clear_error(make_server: Any) -> None:
    server = make_server(accept_all)
    with pytest.raises(neurtmp.ListenError, match=f"cannot listen on {server.get_listen_address()}"):
        make_server(accept_all, address=server.get_listen_address())
    with pytest.raises(neurtmp.ConfigError):
        make_server(accept_all, address="no-port")


def test_unknown_or_bad_options_are_refused() -> None:
    with pytest.raises(neurtmp.ConfigError, match="unknown server option"):
        neurtmp.Factory().create_server(chunksize=4096)
    with pytest.raises(neurtmp.ConfigError, match="chunk_size"):
        neurtmp.Factory().create_server(chunk_size=0)


def test_several_servers_in_one_process(make_server: Any) -> None:
    servers = []
    for name in ("a", "b", "c"):
        def on_connect(is_create: bool, connection: Any, args: Any, user: Any, name: str = name) -> bool:
            if is_create:
                connection.register_remote_call_handler(lambda *a: (True, name), "whoami")
            return True
        servers.append(make_server(on_connect))
    clients = [neurtmp.connect(url(s), timeout=5) for s in servers]
    assert [c.call("whoami") for c in clients] == ["a", "b", "c"]
    for client in clients:
        client.close()


def test_handshake_and_connect_timeouts_close_the_connection(make_server: Any) -> None:
    server = make_server(accept_all, handshake_timeout=0.3, connect_timeout=0.6)
    host, port = server.get_listen_address().rsplit(":", 1)
    stalled = gevent.socket.create_connection((host, int(port)))
    stalled.sendall(b"\x03" + bytes(100))  # half a C1
    silent = neurtmp.Client(url(server), timeout=5)
    silent._sock = gevent.socket.create_connection((host, int(port)))
    silent._reader = gevent.spawn(silent._read_loop)
    silent._flush()  # handshake, but never connect
    started = time.monotonic()
    stalled.settimeout(3)
    assert stalled.recv(10) == b""  # closed by the server
    assert 0.25 <= time.monotonic() - started <= 2
    silent._reader.join(timeout=3)
    assert silent.closed
    assert 0.5 <= time.monotonic() - started <= 3
    stalled.close()


def test_idle_timeout_after_pings_go_unanswered(make_server: Any) -> None:
    server = make_server(accept_all, idle_timeout=0.8, ping_interval=0.2)
    client = neurtmp.connect(url(server), timeout=5)
    wait_for(lambda: len(server.get_connections()) == 1)
    [connection] = server.get_connections()
    # An answering client stays: the server's pings get answered automatically.
    wait_for(lambda: connection.rtt_ms is not None, 2, "a ping answered")
    assert_stays(lambda: len(server.get_connections()) == 1, 1.2, "an answering client stays past idle_timeout")
    # A client that stops reading (and answering) is dropped after idle_timeout.
    client._reader.kill()
    wait_for(lambda: not server.get_connections(), timeout=3)
    client._sock.close()


class Ticker(FrameEventHandler):
    def handle(self, stream: Any, outqueue_is_full: bool) -> bytes:
        return b"\x27\x01\x00\x00\x00" + bytes(20)


def test_shutdown_refuses_new_connections_and_lets_streams_finish(make_server: Any) -> None:
    def on_connect(is_create: bool, connection: Any, args: Any, user: Any) -> bool:
        if is_create:
            connection.register_stream_event_handler(
                lambda c, s, a: c and s.register_frame_event_handler(Ticker()) is None)
        return True

    server = make_server(on_connect)
    host, port = server.get_listen_address().rsplit(":", 1)
    player = neurtmp.connect(url(server), timeout=5)
    player.play("news")
    got: list[Any] = []

    def watch() -> None:
        while (event := player.read(timeout=2)) is not None:
            got.append(event)

    def refuses_connections() -> bool:
        try:
            probe = gevent.socket.create_connection((host, int(port)), timeout=1)
        except ConnectionRefusedError:
            return True
        probe.close()
        return False

    watcher = gevent.spawn(watch)
    wait_for(lambda: len(got) >= 3, 3, "the stream flows")
    stopper = gevent.spawn(server.shutdown, 5)
    wait_for(refuses_connections, 1, "the listener is gone at once")
    during = len(got)
    wait_for(lambda: len(got) >= during + 15, 3, "the stream keeps flowing during the grace period")
    assert not stopper.ready()  # still waiting for the player
    player.close()
    stopper.join(timeout=6)
    watcher.join(timeout=3)
    assert stopper.successful() and not server.get_connections()


def test_shutdown_grace_expiry_closes_lingering_connections(make_server: Any) -> None:
    closed = []

    def on_connect(is_create: bool, connection: Any, args: Any, user: Any) -> bool:
        if not is_create:
            closed.append(connection.get_peer_address())
        return True

    server = make_server(on_connect)
    client = neurtmp.connect(url(server), timeout=5)
    started = time.monotonic()
    server.shutdown(grace=0.3)
    assert time.monotonic() - started < 3
    assert len(closed) == 1 and not server.get_connections()
    client._reader.join(timeout=2)
    assert client.closed


def test_serve_forever_returns_after_shutdown() -> None:
    server = neurtmp.Factory().create_server()
    server.install(accept_all)
    runner = gevent.spawn(server.serve_forever, "127.0.0.1:0")
    wait_for(lambda: bool(server.get_listen_address()))
    gevent.spawn_later(0.2, server.shutdown, 0)
    runner.join(timeout=3)
    assert runner.successful()


def test_raw_io_logs_per_connection_and_direction(make_server: Any, tmp_path: Any) -> None:
    server = make_server(accept_all, log_io_dir=str(tmp_path))
    with neurtmp.connect(url(server), timeout=5) as client:
        client.call("_checkbw")
    wait_for(lambda: not server.get_connections())
    names = sorted(os.listdir(tmp_path))
    assert len(names) == 2 and names[0].endswith("-in.bin") and names[1].endswith("-out.bin")
    assert "conn00001-127.0.0.1_" in names[0]
    received = (tmp_path / names[0]).read_bytes()
    sent = (tmp_path / names[1]).read_bytes()
    assert received[0] == 3 and len(received) > 1 + 1536 * 2  # C0, C1, C2, then commands
    assert sent[0] == 3 and len(sent) > 1 + 1536 * 2  # S0, S1, S2, then replies
    assert b"connect" in received and b"NetConnection.Connect.Success" in sent


@pytest.mark.timeout(30)
def test_a_client_that_pipelines_connect_create_stream_and_play_is_served(make_server: Any) -> None:
    """Some clients (and the benchmark's players) send every command before any answer."""
    from neurtmp.protocol import ClientProtocol
    from neurtmp.protocol import events as ev

    server = make_server(accept_all)
    host, port = server.get_listen_address().rsplit(":", 1)
    sock = gevent.socket.create_connection((host, int(port)), timeout=5)
    protocol = ClientProtocol()
    sock.sendall(protocol.data_to_send())
    codes: list[str] = []
    while "NetStream.Play.Start" not in codes:
        data = sock.recv(65536)
        assert data, f"closed after {codes}"
        for event in protocol.receive_data(data):
            if isinstance(event, ev.HandshakeCompleted):
                protocol.connect("app", f"rtmp://{host}/app")
                protocol.create_stream()
                protocol.play(1, "scene")
            elif isinstance(event, ev.StatusReceived):
                codes.append(event.code)
        sock.sendall(protocol.data_to_send())
    sock.close()
    assert codes == ["NetStream.Play.Reset", "NetStream.Play.Start"]
