"""The gRPC ModuleService, grpc.health.v1 and /metrics of the ingest app, with real clients."""

from __future__ import annotations

import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

import gevent
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

import neurtmp
from neurtmp.codec import gpu
from neurtmp.ingest.proto import module_pb2, module_pb2_grpc

from ..helpers import wait_for
from .test_ingest import Ingest, publish

ROOT = pathlib.Path(__file__).resolve().parents[2]
SEED_CLIENT = '''
import grpc
from neurtmp.ingest.proto import module_pb2, module_pb2_grpc

def get_status():
    with grpc.insecure_channel('localhost:50053') as channel:
        stub = module_pb2_grpc.ModuleServiceStub(channel)
        response = stub.GetStatus(module_pb2.Empty())
        return response

if __name__ == '__main__':
    status = get_status()
    print(f"Module: {status.module_name}")
    print(f"Status: {status.status}")
    print(f"Active streams: {status.active_streams}")
'''


def call(function: Any, *args: Any) -> Any:
    """A blocking gRPC call from a worker thread, so the hub (the server) keeps running."""
    def guarded() -> tuple[bool, Any]:
        try:
            return True, function(*args)
        except grpc.RpcError as exc:
            return False, exc

    ok, result = gevent.get_hub().threadpool.apply(guarded)
    if not ok:
        raise result
    return result


class Served(Ingest):
    """An in-process ingest app with its monitor and gRPC endpoint on a free port."""

    def __init__(self, make_server: Any, tmp_path: pathlib.Path, **settings: Any) -> None:
        from neurtmp.ingest.monitor import Monitor
        from neurtmp.ingest.service import metrics_text, start_grpc

        super().__init__(make_server, tmp_path, **settings)
        http_app = self.http.application
        self.monitor = Monitor(self.app, self.server, http_app, "rtmp://127.0.0.1/live", interval=0.2)
        http_app.metrics = lambda: metrics_text(self.monitor)
        self.monitor.start()
        self.grpc = start_grpc(self.monitor, "127.0.0.1", 0)
        self.monitor.on_sample = self.grpc.follow
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.grpc.port}")
        self.stub = module_pb2_grpc.ModuleServiceStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)

    def rpc(self, name: str) -> Any:
        return call(getattr(self.stub, name), module_pb2.Empty())

    def health_status(self) -> int:
        return int(call(self.health.Check, health_pb2.HealthCheckRequest(service="marchproxy.ModuleService")).status)

    def close(self) -> None:
        self.channel.close()
        self.monitor.stop()
        self.grpc.stop(0)
        super().close()


@pytest.fixture
def served(make_server: Any, tmp_path: pathlib.Path) -> Iterator[Served]:
    instance = Served(make_server, tmp_path)
    yield instance
    instance.close()


@pytest.mark.timeout(90)
def test_all_four_rpcs_report_a_live_360p_stream(served: Served) -> None:
    encoder = publish(served.rtmp("cam"), "640x360", 15)
    try:
        wait_for(lambda: served.rpc("GetRoutes").routes and served.rpc("GetRoutes").routes[0].profiles, 20)
        wait_for(lambda: served.rpc("GetMetrics").streams and served.rpc("GetMetrics").streams[0].fps > 0, 20)
        first = served.rpc("GetStatus")
        assert first.module_name == "rtmp-proxy" and first.version == neurtmp.__version__
        assert first.status == "healthy" and first.active_streams == 1
        assert re.fullmatch(r"(\d+h)?(\d+m)?\d+s", first.uptime)
        wait_for(lambda: served.rpc("GetStatus").total_bytes_in > first.total_bytes_in, 5)
        [route] = served.rpc("GetRoutes").routes
        assert (route.stream_key, route.status, route.encoder, route.input_resolution) == ("cam", "active", "x264",
                                                                                           360)
        assert route.source == "rtmp://127.0.0.1/live/cam" and route.bytes_processed > 0 and route.input_bitrate > 0
        assert [(p.name, p.codec, p.bitrate, p.resolution, p.status, p.encoder) for p in route.profiles] == [
            ("360p", "h264", 800, 360, "encoding", "x264")]
        assert not route.keyframes_misaligned
        wait_for(lambda: served.rpc("GetMetrics").streams[0].duration > 7, 15)  # past the start's burst
        metrics = served.rpc("GetMetrics")
        [stream] = metrics.streams
        assert stream.stream_key == "cam" and 20 <= stream.fps <= 45, stream  # the input is 30 fps
        assert stream.duration > 0 and stream.dropped_frames >= 0 and metrics.memory_mb > 0
        if not gpu.gpu_count():
            assert metrics.gpu_percent == 0  # no GPU: 0, and no error
        health = served.rpc("HealthCheck")
        assert (health.status, health.message, list(health.errors)) == ("healthy", "All systems operational", [])
        assert health.response_time_ms >= 0
        assert served.health_status() == health_pb2.HealthCheckResponse.SERVING
        # Prometheus: the same figures, labelled by stream.
        text = served.get("/metrics")[2].decode()
        families = {family.name: family for family in text_string_to_metric_families(text)}
        assert families["neurtmp_ingest_active_streams"].samples[0].value == 1
        [sample] = families["neurtmp_stream_input_height"].samples
        assert sample.labels == {"stream_key": "cam", "encoder": "x264"} and sample.value == 360
        assert families["neurtmp_stream_fps"].samples[0].value > 0
    finally:
        encoder.kill()
        encoder.wait()


@pytest.mark.timeout(90)
def test_health_degrades_while_a_transcoder_restarts_and_recovers(served: Served) -> None:
    encoder = publish(served.rtmp("cam"), "640x360", 30)
    try:
        wait_for(lambda: served.rpc("GetRoutes").routes and served.rpc("GetRoutes").routes[0].status == "active", 20)
        transcoder = served.app.streams["cam"].transcoder
        pid = transcoder.pid
        assert pid is not None and served.rpc("HealthCheck").status == "healthy"
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: served.rpc("HealthCheck").status == "degraded", 10)
        health = served.rpc("HealthCheck")
        assert list(health.errors) == ["transcoder for cam restarting"] and health.message == health.errors[0]
        assert served.rpc("GetStatus").status == "degraded"
        assert served.health_status() == health_pb2.HealthCheckResponse.SERVING  # degraded still serves
        wait_for(lambda: served.rpc("HealthCheck").status == "healthy", 20)
        assert transcoder.restarts == 1
    finally:
        encoder.kill()
        encoder.wait()
    served.monitor.stop()  # shutting down: UNAVAILABLE, and the health service says so
    with pytest.raises(grpc.RpcError) as info:
        served.rpc("GetStatus")
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert served.health_status() == health_pb2.HealthCheckResponse.NOT_SERVING


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.timeout(90)
def test_the_seeds_python_client_runs_against_neurtmp_ingest() -> None:
    with tempfile.TemporaryDirectory() as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "neurtmp.cli", "ingest", "--host", "127.0.0.1", "--port", str(free_port()),
             "--http-port", str(free_port()), "--output-dir", out],  # gRPC on the default port, 50053
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert process.stdout is not None
            lines = [process.stdout.readline(), process.stdout.readline()]
            assert "gRPC ModuleService on 127.0.0.1:50053" in lines[0], lines
            client = subprocess.run([sys.executable, "-c", SEED_CLIENT], capture_output=True, text=True, timeout=30)
            assert client.returncode == 0, client.stderr
            assert client.stdout.splitlines() == ["Module: rtmp-proxy", "Status: healthy", "Active streams: 0"]
        finally:
            process.send_signal(signal.SIGTERM)
            _, err = process.communicate(timeout=30)
        assert process.returncode == 0, err


def test_the_committed_grpc_modules_are_generated_from_the_proto(tmp_path: pathlib.Path) -> None:
    sys.path.insert(0, str(ROOT / "proto"))
    try:
        import generate
    finally:
        sys.path.pop(0)
    for path in generate.generate(tmp_path):
        committed = ROOT / "neurtmp" / "ingest" / "proto" / path.name
        assert committed.read_text() == path.read_text(), f"{committed.name} is stale: run python proto/generate.py"


def test_time_is_reported_as_the_seed_writes_it() -> None:
    from neurtmp.ingest.monitor import format_uptime

    assert [format_uptime(s) for s in (0, 59, 61, 9930, 36000.7)] == ["0s", "59s", "1m1s", "2h45m30s", "10h0m0s"]
