"""The gRPC ModuleService (package marchproxy), the standard health service, reflection,
and the Prometheus text exposition, all answered from the `Monitor`'s latest snapshot.

grpcio runs its own threads here: the RPCs read the immutable snapshot the monitor swaps
in on the hub once a second, so they never touch live objects, never wait for the hub,
and need no gevent integration (the process is not monkey-patched).
"""

from __future__ import annotations

import concurrent.futures
import importlib
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

# grpcio's fork handlers are for processes that fork to run Python; ours only starts
# ffmpeg (with vfork/exec), and the handlers' messages would land in its stderr.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

import grpc  # noqa: E402
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

import neurtmp
from neurtmp.ingest.monitor import Monitor, Snapshot, StreamFigures, format_uptime
from neurtmp.names import host_port

# The generated modules (proto/generate.py) carry no type information.
module_pb2: Any = importlib.import_module("neurtmp.ingest.proto.module_pb2")
module_pb2_grpc: Any = importlib.import_module("neurtmp.ingest.proto.module_pb2_grpc")

__all__ = ["MODULE_NAME", "ModuleService", "metrics_text", "start_grpc"]

#: What GetStatus calls the module (as the proxy-rtmp API does).
MODULE_NAME = "rtmp-proxy"
SERVICE_NAME = module_pb2.DESCRIPTOR.services_by_name["ModuleService"].full_name


class ModuleService(module_pb2_grpc.ModuleServiceServicer):  # type: ignore[misc]
    """GetStatus, GetRoutes, GetMetrics and HealthCheck from the monitor's snapshots."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor

    def _snapshot(self, context: grpc.ServicerContext) -> Snapshot:
        snapshot = self.monitor.snapshot
        if self.monitor.state != "running":
            context.abort(grpc.StatusCode.UNAVAILABLE, f"neurtmp ingest is {self.monitor.state}")
        return snapshot

    def GetStatus(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802 (the proto's names)
        s = self._snapshot(context)
        return module_pb2.StatusResponse(
            module_name=MODULE_NAME, version=neurtmp.__version__, status=s.status, active_streams=s.active_streams,
            total_bytes_in=s.bytes_in, total_bytes_out=s.bytes_out, uptime=format_uptime(s.uptime))

    def GetRoutes(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        s = self._snapshot(context)
        return module_pb2.RoutesResponse(routes=[
            module_pb2.StreamRoute(
                stream_key=f.key, source=f.source, status=f.status, encoder=f.encoder, input_bitrate=f.input_kbps,
                input_resolution=f.input_height, bytes_processed=f.bytes_in, reconnecting=f.reconnecting,
                active_feed=f.active, switches=f.switches, backup_source=f.backup,
                keyframes_misaligned=f.keyframes_aligned is False,
                profiles=[module_pb2.TranscodeProfile(name=name, codec="h264", bitrate=kbps, resolution=height,
                                                      status=status, encoder=encoder)
                          for name, kbps, height, status, encoder in f.profiles])
            for f in s.streams])

    def GetMetrics(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        s = self._snapshot(context)
        return module_pb2.MetricsResponse(
            cpu_percent=round(s.cpu_percent), gpu_percent=round(s.gpu_percent), memory_mb=round(s.memory_mb),
            streams=[module_pb2.StreamMetrics(stream_key=f.key, fps=f.fps, duration=f.duration,
                                              dropped_frames=f.dropped_frames, encoder_speed=round(f.speed))
                     for f in s.streams])

    def HealthCheck(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        started = time.perf_counter()
        s = self._snapshot(context)
        elapsed = round((time.perf_counter() - started) * 1000)
        return module_pb2.HealthCheckResponse(status=s.status, message=s.message, response_time_ms=elapsed,
                                              errors=list(s.errors))


class GrpcEndpoint:
    """The running gRPC server: ModuleService, grpc.health.v1 and reflection."""

    def __init__(self, server: grpc.Server, host: str, port: int, health_servicer: health.HealthServicer) -> None:
        self.server = server
        self.host = host
        self.port = port
        self.health = health_servicer

    @property
    def address(self) -> str:
        """ "HOST:PORT" ("[V6]:PORT") it is bound to: the host asked for, the port bound."""
        return host_port(self.host, self.port)

    def follow(self, snapshot: Snapshot) -> None:
        """The health service's status follows the app's: NOT_SERVING when unhealthy."""
        serving = snapshot.state == "running" and snapshot.status != "unhealthy"
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in ("", SERVICE_NAME):
            self.health.set(name, status)

    def stop(self, grace: float = 1.0) -> None:
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait(grace + 1)


def start_grpc(monitor: Monitor, host: str, port: int) -> GrpcEndpoint:
    """Serve the ModuleService on host:port (0: any free port), plaintext.

    Raises:
        ListenError: the port cannot be bound.
    """
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="grpc"))
    module_pb2_grpc.add_ModuleServiceServicer_to_server(ModuleService(monitor), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME), server)
    address = host_port(host, port)
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise neurtmp.ListenError(f"cannot listen for gRPC on {address}: {exc}") from None
    if not bound:
        raise neurtmp.ListenError(f"cannot listen for gRPC on {address}")
    server.start()
    endpoint = GrpcEndpoint(server, host, bound, health_servicer)
    endpoint.follow(monitor.snapshot)
    return endpoint


class _Collector:
    """Prometheus figures from the monitor's latest snapshot."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor

    def collect(self) -> Iterator[Any]:
        s = self.monitor.snapshot
        yield GaugeMetricFamily("neurtmp_ingest_up", "1 when healthy or degraded, 0 when unhealthy",
                                value=0 if s.status == "unhealthy" else 1)
        yield GaugeMetricFamily("neurtmp_ingest_active_streams", "Streams being published", value=s.active_streams)
        yield CounterMetricFamily("neurtmp_ingest_received_bytes", "RTMP bytes received", value=s.bytes_in)
        yield CounterMetricFamily("neurtmp_ingest_sent_bytes", "RTMP and HTTP bytes sent", value=s.bytes_out)
        yield GaugeMetricFamily("neurtmp_ingest_cpu_percent", "CPU of the process and its ffmpeg children",
                                value=s.cpu_percent)
        yield GaugeMetricFamily("neurtmp_ingest_memory_bytes", "Resident memory of the process and its children",
                                value=s.memory_mb * 1e6)
        yield GaugeMetricFamily("neurtmp_ingest_gpu_percent", "GPU utilisation (0 without a GPU)",
                                value=s.gpu_percent)
        yield GaugeMetricFamily("neurtmp_connections", "RTMP connections", value=s.connections)
        yield GaugeMetricFamily("neurtmp_players", "RTMP players of live streams", value=s.players)
        yield CounterMetricFamily("neurtmp_player_dropped_messages", "Messages dropped for slow players",
                                  value=s.player_drops)
        per_stream: list[tuple[str, str, Any, Callable[[StreamFigures], float]]] = [
            ("neurtmp_stream_input_kbps", "Measured input bitrate", GaugeMetricFamily, lambda f: f.input_kbps),
            ("neurtmp_stream_input_height", "Input height", GaugeMetricFamily, lambda f: f.input_height),
            ("neurtmp_stream_received_bytes", "Bytes received", CounterMetricFamily, lambda f: f.bytes_in),
            ("neurtmp_stream_fps", "ffmpeg frames per second", GaugeMetricFamily, lambda f: f.fps),
            ("neurtmp_stream_encoder_speed", "ffmpeg speed, x real time", GaugeMetricFamily, lambda f: f.speed),
            ("neurtmp_stream_dropped_frames", "Frames ffmpeg dropped", CounterMetricFamily,
             lambda f: f.dropped_frames),
            ("neurtmp_stream_duplicated_frames", "Frames ffmpeg duplicated", CounterMetricFamily,
             lambda f: f.duplicated_frames),
            ("neurtmp_stream_transcoder_restarts", "ffmpeg restarts", CounterMetricFamily, lambda f: f.restarts),
            ("neurtmp_stream_duration_seconds", "Seconds since the publish started", GaugeMetricFamily,
             lambda f: f.duration),
            ("neurtmp_stream_players", "RTMP players of the stream", GaugeMetricFamily, lambda f: f.players),
            ("neurtmp_stream_reconnecting", "1 while within the reconnect grace (no publisher, the slate)",
             GaugeMetricFamily, lambda f: int(f.reconnecting)),
            ("neurtmp_stream_backup_active", "1 while the backup publisher is transcoded", GaugeMetricFamily,
             lambda f: int(f.active == "backup")),
            ("neurtmp_stream_feed_switches", "Switches between the primary and the backup publisher",
             CounterMetricFamily, lambda f: f.switches),
        ]
        for name, text, family_type, value_of in per_stream:
            family = family_type(name, text, labels=["stream_key", "encoder"])
            for figures in s.streams:
                family.add_metric([figures.key, figures.encoder], value_of(figures))
            yield family


def metrics_text(monitor: Monitor) -> bytes:
    """The Prometheus text exposition of the monitor's latest snapshot."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(monitor))
    return generate_latest(registry)
