"""Prometheus figures of `neurtmp serve --http` (``GET /metrics``).

The same figures as the JSON API, labelled by app and name, plus the process (CPU, RSS,
garbage collections) and the event loop's lag: how late a one-second timer fires, the
time a greenlet that hogs the hub steals from every client; and the longest stretch a
flush of the players held the hub (it lets the hub run every couple of milliseconds).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import GC_COLLECTOR, PROCESS_COLLECTOR, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

if TYPE_CHECKING:
    from neurtmp.live.http import LiveHttp

__all__ = ["metrics_text"]


class _LiveCollector:
    def __init__(self, http: LiveHttp) -> None:
        self.http = http

    def collect(self) -> Iterator[Any]:
        http = self.http
        server = http.summary()
        yield GaugeMetricFamily("neurtmp_connections", "RTMP connections open", value=server["connections"])
        yield GaugeMetricFamily("neurtmp_http_flv_players", "HTTP-FLV players", value=server["http_flv_players"])
        yield CounterMetricFamily("neurtmp_bytes_in", "bytes received", value=server["bytes_in"])
        yield CounterMetricFamily("neurtmp_bytes_out", "bytes sent (RTMP and HTTP-FLV)", value=server["bytes_out"])
        yield GaugeMetricFamily("neurtmp_bandwidth_in_bps", "bits/s in over the last 10 s",
                                value=server["bandwidth_in_bps"])
        yield GaugeMetricFamily("neurtmp_bandwidth_out_bps", "bits/s out over the last 10 s",
                                value=server["bandwidth_out_bps"])
        yield GaugeMetricFamily("neurtmp_event_loop_lag_seconds", "how late the hub ran a one-second timer, last",
                                value=http.loop_lag)
        yield GaugeMetricFamily("neurtmp_flush_hold_seconds",
                                "the longest a flush held the hub without a break, over the last second",
                                value=http.flush_hold)
        labels = ["app", "name"]
        live = GaugeMetricFamily("neurtmp_stream_live", "1 while published", labels=labels)
        players = GaugeMetricFamily("neurtmp_stream_players", "players", labels=[*labels, "protocol"])
        bitrate = GaugeMetricFamily("neurtmp_stream_bitrate_in_bps", "bits/s published, last 10 s", labels=labels)
        received = CounterMetricFamily("neurtmp_stream_bytes_in", "payload bytes published", labels=labels)
        dropped = CounterMetricFamily("neurtmp_stream_dropped_messages", "messages dropped for slow players",
                                      labels=labels)
        gop = GaugeMetricFamily("neurtmp_stream_gop_bytes", "bytes in the GOP cache", labels=labels)
        reconnecting = GaugeMetricFamily("neurtmp_stream_reconnecting",
                                         "1 while the publisher is gone and the reconnect grace runs", labels=labels)
        backup = GaugeMetricFamily("neurtmp_stream_backup_active", "1 while players get the backup publisher",
                                   labels=labels)
        switches = CounterMetricFamily("neurtmp_stream_feed_switches", "switches between primary and backup",
                                       labels=labels)
        for stream in http.describe_streams():
            key = [stream["app"], stream["name"]]
            live.add_metric(key, 1 if stream["live"] else 0)
            for protocol, count in stream["players_by_protocol"].items():
                players.add_metric([*key, protocol], count)
            bitrate.add_metric(key, stream["bitrate_in_bps"])
            received.add_metric(key, stream["bytes"])
            dropped.add_metric(key, stream["dropped"])
            gop.add_metric(key, stream["gop_bytes"])
            reconnecting.add_metric(key, 1 if stream["reconnecting"] else 0)
            backup.add_metric(key, 1 if stream["active"] == "backup" else 0)
            switches.add_metric(key, stream["switches"])
        yield from (live, players, bitrate, received, dropped, gop, reconnecting, backup, switches)


def metrics_text(http: LiveHttp) -> bytes:
    """The exposition text: the live figures, the process and the garbage collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_LiveCollector(http))
    registry.register(PROCESS_COLLECTOR)
    registry.register(GC_COLLECTOR)
    return generate_latest(registry)
