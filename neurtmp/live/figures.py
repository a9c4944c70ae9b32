"""ApiFigures: the JSON API's answers as snapshots, built about once a second.

Gathering the figures of a thousand clients and serializing them takes ~10 ms of the
hub; done per request, every request would walk the connections while players' flushes
wait, and allocate enough to set off full garbage collections (40+ ms with a thousand
connections). So the answers of ``/api/v1/server``, ``/streams`` and ``/clients`` are built
once, as JSON bytes, and served to every request in between:

* the server and stream figures are rebuilt each second by the HTTP side's sampler (the
  tick that samples the byte counters for the bandwidth and bitrate figures);
* the client list is rebuilt by that tick only while someone reads it (asked for in the
  last `WATCHED` seconds); the first request after a quiet spell builds it itself;
* an answer older than `MAX_AGE` is rebuilt by the request that finds it so.

A figure is therefore at most about a second old (a client that just left may still be
listed, one that just came not yet). Walks over the connections let the hub run every
`CHUNK` clients, so building never holds the hub for long.
"""

from __future__ import annotations

import json
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import gevent
import gevent.event

import neurtmp
from neurtmp.codec import flv
from neurtmp.live.app import LiveApp
from neurtmp.live.stream import LivePlayer, LiveStream
from neurtmp.names import redact_query

__all__ = ["MAX_AGE", "ApiFigures", "HttpSide"]

#: Seconds an answer may be served after it was built.
MAX_AGE = 1.0
#: Seconds after the last ``/clients`` request during which the sampler keeps the list fresh.
WATCHED = 10.0
#: Clients gathered between two turns given to the hub.
CHUNK = 100
#: A turn for the hub: a timer already due, so it polls for I/O and runs what that woke
#: before the walk goes on (``gevent.sleep(0)`` would resume before the poll).
HUB_TURN = 1e-6
#: Seconds over which the bandwidth and bitrate figures are averaged.
RATE_WINDOW = 10.0
_AUDIO_FORMATS = {2: "mp3", 10: "aac", 11: "speex", 9: "enhanced"}


class HttpSide(Protocol):
    """What the figures read of the HTTP side (`neurtmp.live.http.LiveHttp`)."""

    app: LiveApp
    server: neurtmp.Server
    started: float

    @property
    def players(self) -> Mapping[int, neurtmp.FlvPlayer]:
        """The HTTP-FLV players now, by client id."""

    @property
    def flv_bytes_out(self) -> int:
        """Bytes sent to HTTP-FLV players, those that left included."""


class _Rates:
    """Counters sampled once a second, rates over the last `RATE_WINDOW` seconds."""

    def __init__(self) -> None:
        self._samples: dict[Any, deque[tuple[float, int]]] = {}

    def sample(self, key: Any, total: int, now: float) -> None:
        samples = self._samples.setdefault(key, deque())
        samples.append((now, total))
        while samples and now - samples[0][0] > RATE_WINDOW:
            samples.popleft()

    def per_second(self, key: Any) -> float:
        """How fast the counter grew over the window (0 before two samples)."""
        samples = self._samples.get(key)
        if not samples or len(samples) < 2:
            return 0.0
        (t0, b0), (t1, b1) = samples[0], samples[-1]
        return (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0

    def bits_per_second(self, key: Any) -> float:
        """A byte counter's rate, in bits per second."""
        return self.per_second(key) * 8

    def forget_except(self, keys: set[Any]) -> None:
        for key in set(self._samples) - keys:
            del self._samples[key]


def player_bytes_out(player: LivePlayer) -> int:
    """Bytes sent to a live player: an HTTP-FLV player's own, an RTMP player's connection's."""
    if isinstance(player, neurtmp.FlvPlayer):
        return player.bytes_out
    if isinstance(player, neurtmp.Stream):
        return player.get_connection().bytes_out
    return 0


class _SentToPlayers:
    """Bytes a stream sent to its players, a total that never goes down: each sample adds
    what every player got since the last one (a player that leaves takes at most its
    last second with it)."""

    def __init__(self) -> None:
        self.total = 0
        self._seen: dict[LivePlayer, int] = {}

    def sample(self, players: list[LivePlayer]) -> int:
        seen, total = {}, self.total
        last = self._seen
        for player in players:
            sent = seen[player] = player_bytes_out(player)
            total += max(0, sent - last.get(player, 0))
        self._seen, self.total = seen, total
        return total


class _Answer:
    """One JSON answer: its bytes, when they were built, and a build in progress."""

    def __init__(self, build: Callable[[], bytes]) -> None:
        self._build = build
        self.body: bytes | None = None
        self.built_at = float("-inf")
        self._building: gevent.event.Event | None = None

    def refresh(self) -> bytes:
        """Build it now (or wait for the build under way)."""
        if self._building is not None:
            self._building.wait()
            assert self.body is not None
            return self.body
        self._building = building = gevent.event.Event()
        try:
            self.body = self._build()
            self.built_at = time.monotonic()
        finally:
            self._building = None
            building.set()
        return self.body

    def get(self, max_age: float) -> bytes:
        """The bytes, built at most `max_age` seconds ago (the last ones while a build
        is under way)."""
        body = self.body
        if body is not None and (time.monotonic() - self.built_at <= max_age or self._building is not None):
            return body
        return self.refresh()


class ApiFigures:
    """The API's answers for one HTTP side (see the module docstring).

    Example (what `neurtmp.live.http.LiveHttp` does):
        figures = ApiFigures(http)
        figures.tick()                  # once a second
        figures.body("streams")         # per request: JSON bytes, at most MAX_AGE old
    """

    def __init__(self, http: HttpSide) -> None:
        self.http = http
        self._rates = _Rates()
        self._sent: dict[str, _SentToPlayers] = {}
        self._totals: dict[str, int] = {}
        self._sampled_at = float("-inf")
        self._summary: dict[str, Any] = {}
        self._streams: list[dict[str, Any]] = []
        self._answers = {"server": _Answer(self._build_server), "streams": _Answer(self._build_streams),
                         "clients": _Answer(self._build_clients)}
        self._clients_asked = float("-inf")

    # -- the sampler's tick ---------------------------------------------------------

    def tick(self) -> None:
        """Sample the byte counters, rebuild the server and stream answers, and the client
        list while someone reads it (once a second)."""
        self.sample()
        self._answers["server"].refresh()
        self._answers["streams"].refresh()
        if time.monotonic() - self._clients_asked < WATCHED:
            self._answers["clients"].refresh()

    def sample(self) -> None:
        """Record the byte counters now (for rates) and the figures they feed."""
        now = time.monotonic()
        http = self.http
        stats = http.server.get_statistics()
        totals = {"bytes_in": int(stats.get("bytes_in", 0)),
                  "bytes_out": int(stats.get("bytes_out", 0)) + http.flv_bytes_out}
        self._rates.sample("in", totals["bytes_in"], now)
        self._rates.sample("out", totals["bytes_out"], now)
        keys: set[Any] = {"in", "out"}
        sent: dict[str, _SentToPlayers] = {}
        for live in http.app.streams():
            path = live.path
            counter = sent[path] = self._sent.get(path) or _SentToPlayers()
            self._rates.sample(path, live.bytes, now)
            self._rates.sample((path, "out"), counter.sample(live.players()), now)
            self._rates.sample((path, "frames"), live.video_frames, now)
            keys.update((path, (path, "out"), (path, "frames")))
        self._sent = sent
        self._rates.forget_except(keys)
        self._totals = totals
        self._sampled_at = now

    def _sample_if_stale(self) -> None:
        """A request rebuilds an answer: sample first unless the sampler just did."""
        if time.monotonic() - self._sampled_at > MAX_AGE:
            self.sample()

    # -- answers --------------------------------------------------------------------

    def body(self, what: str) -> bytes:
        """The JSON answer `what` ("server", "streams", "clients"), at most `MAX_AGE` old."""
        if what == "clients":
            self._clients_asked = time.monotonic()
        return self._answers[what].get(MAX_AGE)

    def summary(self) -> dict[str, Any]:
        """The server's figures of the last snapshot (``/api/v1/server``)."""
        self._answers["server"].get(MAX_AGE)
        return self._summary

    def streams(self) -> list[dict[str, Any]]:
        """Every stream's figures of the last snapshot (``/api/v1/streams``)."""
        self._answers["streams"].get(MAX_AGE)
        return self._streams

    def _build_server(self) -> bytes:
        self._sample_if_stale()
        http = self.http
        self._summary = {
            "version": neurtmp.__version__,
            "uptime": round(time.monotonic() - http.started, 1),
            "connections": len(http.server.get_connections()),
            "http_flv_players": len(http.players),
            "streams": sum(1 for live in http.app.streams() if live.is_live),
            "bytes_in": self._totals["bytes_in"],
            "bytes_out": self._totals["bytes_out"],
            "bandwidth_in_bps": round(self._rates.bits_per_second("in")),
            "bandwidth_out_bps": round(self._rates.bits_per_second("out")),
        }
        return json.dumps(self._summary).encode()

    def _build_streams(self) -> bytes:
        self._sample_if_stale()
        self._streams = [self._describe(live) for live in self.http.app.streams()]
        return json.dumps({"streams": self._streams}).encode()

    def _describe(self, live: LiveStream) -> dict[str, Any]:
        stats = live.statistics()
        metadata = live.metadata.metadata if isinstance(live.metadata, neurtmp.DataPacket) else None
        metadata = metadata or {}
        by_protocol = {"rtmp": 0, "http-flv": 0}
        for player in live.players():
            by_protocol["http-flv" if isinstance(player, neurtmp.FlvPlayer) else "rtmp"] += 1
        video = flv.video_codec(live.video_header.payload) if live.video_header is not None else None
        audio = None
        if live.audio_header is not None and live.audio_header.payload:
            sound_format = live.audio_header.payload[0] >> 4
            audio = _AUDIO_FORMATS.get(sound_format, f"format{sound_format}")
        sent = self._sent.get(live.path)
        return {
            **stats,
            "uptime": round(stats["uptime"], 1),
            "video_codec": video,
            "audio_codec": audio,
            "width": _integer(metadata.get("width")),
            "height": _integer(metadata.get("height")),
            "fps": _rounded(metadata.get("framerate")),
            "fps_measured": round(self._rates.per_second((live.path, "frames")), 2),
            "bitrate_in_bps": round(self._rates.bits_per_second(live.path)),
            "bytes_out": sent.total if sent is not None else 0,
            "bitrate_out_bps": round(self._rates.bits_per_second((live.path, "out"))),
            "players_by_protocol": by_protocol,
            "gop_packets": len(live.gop),
            "gop_bytes": live.gop.nbytes,
        }

    def _build_clients(self) -> bytes:
        """The client list, serialized a chunk at a time, the hub running in between."""
        parts: list[str] = []
        connections = self.http.server.get_connections()
        for start in range(0, len(connections), CHUNK):
            if start:
                gevent.sleep(HUB_TURN)
            chunk = [_rtmp_client(c) for c in connections[start:start + CHUNK] if not c.closed]
            if chunk:
                parts.append(json.dumps(chunk)[1:-1])
        now = time.monotonic()
        players = [_flv_client(player, now) for player in list(self.http.players.values()) if not player.closed]
        if players:
            parts.append(json.dumps(players)[1:-1])
        return b'{"clients": [' + ", ".join(parts).encode() + b"]}"


def _rtmp_client(connection: neurtmp.Connection) -> dict[str, Any]:
    streams = [s for s in connection.get_streams() if s.publishing or s.playing]
    return {
        "id": str(connection.connection_id), "address": connection.get_peer_address(), "protocol": "rtmp",
        "app": connection.app_name, "roles": sorted({"publish" if s.publishing else "play" for s in streams}),
        "streams": [redact_query(s.get_stream_name()) for s in streams],
        "bytes_in": connection.bytes_in, "bytes_out": connection.bytes_out,
        "since": round(time.monotonic() - connection.started, 1),
    }


def _flv_client(player: neurtmp.FlvPlayer, now: float) -> dict[str, Any]:
    return {
        "id": str(player.player_id), "address": player.peer, "protocol": "http-flv", "app": player.app,
        "roles": ["play"], "streams": [player.name], "bytes_in": 0, "bytes_out": player.bytes_out,
        "since": round(now - player.started, 1),
    }


def _number(value: Any) -> float | None:
    """A metadata number (AMF numbers are floats); None when absent or not a finite number."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _integer(value: Any) -> int | None:
    number = _number(value)
    return None if number is None else round(number)


def _rounded(value: Any) -> float | None:
    number = _number(value)
    return None if number is None else round(number, 3)
