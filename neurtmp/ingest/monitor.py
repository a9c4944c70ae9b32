"""Monitor: the ingest app's figures and health, sampled on the hub once a second.

Each sample is an immutable `Snapshot` swapped in whole, so readers on other threads
(the gRPC service's) always see one consistent sample without locks. CPU and memory are
this process's plus its ffmpeg children's (psutil); GPU utilisation comes from NVML when
a GPU is there (probed once, off the hub), 0 otherwise.

Health: "unhealthy" when the RTMP listener is down or no usable ffmpeg is configured;
"degraded" when CPU passes 90%, a transcoder is restarting, one encodes below real time,
GPU memory is nearly full, or the output disk is full (checked at each sample, logged
when it fills and when space is back); "healthy" otherwise.
"""

from __future__ import annotations

import collections
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gevent
import psutil

import neurtmp
from neurtmp.codec import gpu
from neurtmp.ingest.app import IngestApp
from neurtmp.ingest.disk import DiskSpace
from neurtmp.ingest.http import IngestHttp

__all__ = ["Monitor", "Snapshot", "StreamFigures", "format_uptime"]

log = logging.getLogger(__name__)

#: CPU percent (of all cores) above which, for `CPU_SAMPLES` samples in a row, the app
#: reports itself degraded (one busy second, such as the start, is not a problem).
CPU_DEGRADED = 90.0
CPU_SAMPLES = 3
#: ffmpeg speed below which a stream encodes too slowly (after warming up).
SLOW_SPEED = 0.95
#: Seconds of encoding before the speed counts.
SPEED_WARMUP = 10.0
#: GPU memory use (fraction) above which the GPU is under pressure.
GPU_MEMORY_PRESSURE = 0.9


def format_uptime(seconds: float) -> str:
    """2h45m30s; 5m3s; 12s."""
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


@dataclass(frozen=True)
class StreamFigures:
    """One published stream, as sampled."""

    key: str
    source: str
    status: str  # active | idle | error
    encoder: str
    input_kbps: int
    input_height: int
    bytes_in: int
    profiles: tuple[tuple[str, int, int, str, str], ...]  # (name, kbit/s, height, encoding|complete|error, encoder)
    fps: float
    duration: float
    dropped_frames: int
    duplicated_frames: int
    speed: float
    restarts: int
    players: int
    #: Within the reconnect grace: no publisher, the slate transcoded.
    reconnecting: bool = False
    #: The feed transcoded: "primary" or "backup".
    active: str = "primary"
    #: Switches between the primary and the backup.
    switches: int = 0
    #: The backup publisher's address ("" without one).
    backup: str = ""
    #: A multitrack input: whether its key frames were aligned across tracks (None:
    #: single-track, or not known yet).
    keyframes_aligned: bool | None = None


@dataclass(frozen=True)
class Snapshot:
    """One sample of the whole app."""

    state: str = "starting"  # starting | running | stopping
    status: str = "unhealthy"
    message: str = "starting"
    errors: tuple[str, ...] = ()
    active_streams: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    uptime: float = 0.0
    cpu_percent: float = 0.0
    memory_mb: float = 0.0
    gpu_percent: float = 0.0
    connections: int = 0
    players: int = 0
    player_drops: int = 0
    streams: tuple[StreamFigures, ...] = field(default_factory=tuple)


class Monitor:
    """Samples `app` (and its server and HTTP side) every `interval` seconds.

    Args:
        on_sample: called on the hub with each new snapshot (the gRPC health status
            follows it).
    """

    def __init__(self, app: IngestApp, server: neurtmp.Server, http: IngestHttp, source_base: str,
                 interval: float = 1.0, on_sample: Callable[[Snapshot], None] | None = None) -> None:
        self.app = app
        self.server = server
        self.http = http
        self.source_base = source_base.rstrip("/")
        self.interval = interval
        self.on_sample = on_sample
        self.disk = DiskSpace(app.output_dir)
        self.state = "starting"
        self.snapshot = Snapshot()
        self._process = psutil.Process()
        self._children: dict[int, psutil.Process] = {}
        self._gpus = 0
        self._greenlet: gevent.Greenlet | None = None
        self._recent_cpu: collections.deque[float] = collections.deque(maxlen=CPU_SAMPLES)
        self._process.cpu_percent(None)

    def start(self) -> None:
        """Probe the GPU (off the hub), take a first sample, then sample periodically."""
        self._gpus = gevent.get_hub().threadpool.apply(gpu.gpu_count)
        self.state = "running"
        self.sample()
        self._greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        """From now on the service answers UNAVAILABLE."""
        self.state = "stopping"
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
        self.sample()

    def _run(self) -> None:
        while True:
            gevent.sleep(self.interval)
            try:
                self.sample()
            except Exception:
                log.exception("sampling the ingest app failed")

    def sample(self) -> Snapshot:
        """Take a sample now, publish it as `snapshot`, and return it."""
        server_stats = self.server.get_statistics()
        cpu, memory = self._usage()
        gpu_percent, gpu_pressure = self._gpu()
        live = {(s.app, s.name): s.statistics() for s in self.app.live.streams()}
        streams = tuple(self._figures(entry, live.get((self.app.config.app, entry["key"]), {}))
                        for entry in self.app.describe(include_ended=False))
        errors = self._problems(cpu, gpu_pressure, streams)
        fatal = [e for e in errors if e in ("RTMP listener down", "no usable ffmpeg")]
        status = "unhealthy" if fatal or self.state != "running" else ("degraded" if errors else "healthy")
        message = {"healthy": "All systems operational"}.get(status, errors[0] if errors else self.state)
        snapshot = Snapshot(
            state=self.state, status=status, message=message, errors=tuple(errors),
            active_streams=len(streams),
            bytes_in=int(server_stats["bytes_in"]),
            bytes_out=int(server_stats["bytes_out"]) + self.http.bytes_sent,
            uptime=float(server_stats["uptime"]), cpu_percent=cpu, memory_mb=memory, gpu_percent=gpu_percent,
            connections=int(server_stats["connections"]),
            # (each stream's transcoder plays its live stream too: not counted)
            players=max(0, sum(int(stats.get("players", 0)) for stats in live.values()) - len(streams)),
            player_drops=sum(int(stats.get("dropped", 0)) for stats in live.values()),
            streams=streams,
        )
        self.snapshot = snapshot
        if self.on_sample is not None:
            self.on_sample(snapshot)
        return snapshot

    def _figures(self, entry: dict[str, Any], live: dict[str, Any]) -> StreamFigures:
        status = entry["status"]
        route_status = {"encoding": "active", "waiting": "idle"}.get(status, "error")
        profile_status = {"encoding": "encoding", "finished": "complete", "waiting": "encoding"}.get(status, "error")
        return StreamFigures(
            key=entry["key"], source=f"{self.source_base}/{entry['key']}", status=route_status,
            encoder=entry["encoder"], input_kbps=int(entry["bitrate_kbps"]),
            input_height=int(entry["input_height"] or 0), bytes_in=int(entry["bytes_in"]),
            profiles=tuple((r["name"], int(r["bitrate_kbps"]), int(r["height"]), profile_status,
                            str(r.get("encoder") or entry["encoder"])) for r in entry["rungs"]),
            keyframes_aligned=entry.get("keyframes_aligned"),
            fps=float(entry["fps"] or 0.0), duration=float(entry["uptime_s"]),
            dropped_frames=int(entry["dropped_frames"]), duplicated_frames=int(entry["duplicated_frames"]),
            speed=float(entry["speed"] or 0.0), restarts=int(entry["restarts"]),
            players=max(0, int(live.get("players", 0)) - 1),  # (the transcoder plays it too)
            reconnecting=bool(entry.get("reconnecting")), active=str(entry.get("active") or "primary"),
            switches=int(entry.get("switches") or 0), backup=str(entry.get("backup") or ""),
        )

    def _problems(self, cpu: float, gpu_pressure: bool, streams: tuple[StreamFigures, ...]) -> list[str]:
        errors = []
        if not self.server.listening:
            errors.append("RTMP listener down")
        ffmpeg = self.app.config.ffmpeg_path()
        if not (os.path.isfile(ffmpeg) and os.access(ffmpeg, os.X_OK)):
            errors.append("no usable ffmpeg")
        self._recent_cpu.append(cpu)
        if len(self._recent_cpu) == CPU_SAMPLES and min(self._recent_cpu) > CPU_DEGRADED:
            errors.append(f"CPU usage at {cpu:.0f}%")
        for figures in streams:
            if figures.status == "error":
                errors.append(f"transcoder for {figures.key} restarting")
            elif figures.status == "active" and figures.duration > SPEED_WARMUP and 0 < figures.speed < SLOW_SPEED:
                errors.append(f"{figures.key} encodes at {figures.speed:.2f}x real time")
        if gpu_pressure:
            errors.append("GPU memory pressure high")
        disk = self.disk.check()
        if disk is not None:
            errors.append(disk)
        return errors

    def _usage(self) -> tuple[float, float]:
        """CPU percent (of all cores) and resident MB of this process and its children."""
        processes = [self._process]
        try:
            children = self._process.children(recursive=True)
        except psutil.Error:
            children = []
        alive = set()
        for child in children:
            alive.add(child.pid)
            if child.pid not in self._children:
                self._children[child.pid] = child
                child.cpu_percent(None)  # starts its measurement
            processes.append(self._children[child.pid])
        for pid in list(self._children):
            if pid not in alive:
                del self._children[pid]
        cpu = memory = 0.0
        for process in processes:
            try:
                cpu += process.cpu_percent(None)
                memory += process.memory_info().rss
            except psutil.Error:
                continue
        return cpu / (psutil.cpu_count() or 1), memory / 1e6

    def _gpu(self) -> tuple[float, bool]:
        if not self._gpus:
            return 0.0, False
        devices = gevent.get_hub().threadpool.apply(gpu.gpus)
        if not devices:
            return 0.0, False
        utilization = sum(d.utilization for d in devices) / len(devices)
        pressure = any(d.memory_total and d.memory_used / d.memory_total > GPU_MEMORY_PRESSURE for d in devices)
        return utilization, pressure
