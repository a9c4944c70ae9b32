"""Shared fixtures: servers on loopback port 0, and failing on any greenlet error."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

# As neurtmp ingest does: gRPC's fork handlers off, so processes the tests start after a
# gRPC server ran are not disturbed by them.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

import gevent
import pytest

import neurtmp


@pytest.fixture(autouse=True)
def greenlet_errors_fail_the_test() -> Iterator[list[Any]]:
    """Any exception that kills a greenlet unhandled fails the test that caused it."""
    hub = gevent.get_hub()
    errors: list[Any] = []
    original = hub.print_exception

    def record(context: Any, kind: Any, value: Any, tb: Any) -> None:
        errors.append((context, kind, value))
        original(context, kind, value, tb)

    hub.print_exception = record  # type: ignore[method-assign]
    try:
        yield errors
    finally:
        hub.print_exception = original  # type: ignore[method-assign]
    assert not errors, f"greenlet errors: {errors}"


@pytest.fixture
def make_server() -> Iterator[Callable[..., neurtmp.Server]]:
    """Start servers on 127.0.0.1:0 (options as keywords); all shut down afterwards."""
    servers: list[neurtmp.Server] = []

    def make(*handlers: Any, address: str = "127.0.0.1:0", **options: Any) -> neurtmp.Server:
        server = neurtmp.Factory().create_server(**options)
        for handler in handlers:
            server.install(handler)
        server.start(address)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.shutdown(grace=0)


def url(server: neurtmp.Server, path: str = "live") -> str:
    return f"rtmp://{server.get_listen_address()}/{path}"


def accept_all(is_create: bool, connection: Any, arguments: Any, user_arguments: Any) -> bool:
    """A connect handler (plain callable) that accepts every connection."""
    return True


def serve_streams(make_server: Any, on_stream: Any, **options: Any) -> neurtmp.Server:
    """A server whose connections hand every new stream to `on_stream(stream)`; an
    `on_stream` that returns False refuses the createStream."""
    def on_connect(is_create: bool, connection: Any, args: Any, user: Any) -> bool:
        if is_create:
            def streams(create: bool, stream: Any, arguments: Any) -> bool:
                return on_stream(stream) is not False if create else True
            connection.register_stream_event_handler(streams)
        return True

    return make_server(on_connect, **options)
