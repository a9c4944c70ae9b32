"""Pull and push relays between a local live server and remote RTMP servers.

A pull relay plays a remote stream and publishes it locally under another name; a push
relay republishes a local stream to a remote server while it is live (from an encoder
or from a pull); a forwarder pushes every locally published stream (the local proxy).
They reconnect with exponential backoff when the remote drops or
refuses, logging each attempt. Built on `neurtmp.client` and the live registry.
"""

from __future__ import annotations

import logging
import time

import gevent
import gevent.queue

import neurtmp
from neurtmp import Packet
from neurtmp.errors import NeurtmpError
from neurtmp.live.registry import Registry, split_query
from neurtmp.live.stream import LiveStream
from neurtmp.protocol import events as ev
from neurtmp.protocol.commands import StatusCode

__all__ = ["Backoff", "Forwarder", "PullRelay", "PushRelay", "parse_local_name"]

log = logging.getLogger(__name__)

#: Packets a push relay buffers for a slow remote before it reconnects.
PUSH_QUEUE_PACKETS = 4096

_MEDIA_TYPES = {ev.VideoReceived: neurtmp.MessageType.VIDEO, ev.AudioReceived: neurtmp.MessageType.AUDIO}


def parse_local_name(local: str, default_app: str = "live") -> tuple[str, str]:
    """ "app/name" -> (app, name); a bare "name" goes to `default_app`."""
    app, sep, name = local.lstrip("/").rpartition("/")
    if not name:
        raise neurtmp.ConfigError(f"empty local stream name in {local!r}")
    return (app if sep else default_app), name


class Backoff:
    """Delays 1, 2, 4 ... `maximum` seconds; `reset()` after a connection that held."""

    def __init__(self, initial: float = 1.0, maximum: float = 30.0) -> None:
        self.initial = initial
        self.maximum = maximum
        self.delay = initial

    def next(self) -> float:
        delay = self.delay
        self.delay = min(self.delay * 2, self.maximum)
        return delay

    def reset(self) -> None:
        self.delay = self.initial


class _Relay:
    def __init__(self, timeout: float, backoff: Backoff | None) -> None:
        self.timeout = timeout
        self.backoff = backoff or Backoff()
        self.attempts = 0
        self.connected = 0
        self._stopped = False
        self._greenlets: list[gevent.Greenlet] = []

    def stop(self) -> None:
        """Stop relaying and close the remote connection."""
        self._stopped = True
        gevent.killall(self._greenlets, block=True, timeout=3)
        self._greenlets.clear()

    def _wait_before_retry(self, what: str, error: BaseException | str) -> None:
        delay = self.backoff.next()
        log.warning("%s: %s; retrying in %g s (attempt %d)", what, error, delay, self.attempts + 1)
        gevent.sleep(delay)


class PullRelay(_Relay):
    """Play `url` on a remote server and publish it locally as `local_app/local_name`."""

    def __init__(self, registry: Registry, url: str, local_app: str, local_name: str, timeout: float = 10.0,
                 backoff: Backoff | None = None) -> None:
        super().__init__(timeout, backoff)
        self.registry = registry
        self.url = url
        self.local_app = split_query(local_app)
        self.local_name = split_query(local_name)
        self.peer = f"pull:{url}"

    def __repr__(self) -> str:
        return f"<PullRelay {self.url} -> {self.local_app}/{self.local_name}>"

    def start(self) -> PullRelay:
        self._greenlets.append(gevent.spawn(self._run))
        return self

    def _run(self) -> None:
        while not self._stopped:
            self.attempts += 1
            try:
                self._session()
                if not self._stopped:
                    self._wait_before_retry(repr(self), "remote closed the stream")
            except (OSError, NeurtmpError, TimeoutError) as exc:
                if not self._stopped:
                    self._wait_before_retry(repr(self), exc)

    def _session(self) -> None:
        client = neurtmp.connect(self.url, timeout=self.timeout)
        live: LiveStream | None = None
        try:
            client.play()
            self.connected += 1
            held_since = time.monotonic()
            log.info("%r: playing the remote stream", self)
            live = self._publish()
            while not self._stopped:
                try:
                    event = client.read(timeout=self.timeout)
                except TimeoutError:
                    continue  # the remote stream may simply not be live yet
                if event is None:
                    return
                if time.monotonic() - held_since > 10:
                    self.backoff.reset()
                live = self._on_event(event, live)
        finally:
            if live is not None:
                self.registry.unpublish(live, self)
            client.close()

    def _publish(self) -> LiveStream:
        live = self.registry.publish(self.local_app, self.local_name, self, self.peer)
        if live is None:
            raise neurtmp.CallError(f"local name {self.local_app}/{self.local_name} is already published")
        return live

    def _on_event(self, event: ev.Event, live: LiveStream | None) -> LiveStream | None:
        kind = _MEDIA_TYPES.get(type(event))
        if kind is not None:
            if live is None:
                live = self._publish()
            live.on_packet(Packet(kind, event.timestamp, event.payload))  # type: ignore[attr-defined]
        elif isinstance(event, ev.DataReceived):
            if live is not None:
                live.on_packet(Packet(neurtmp.MessageType.DATA_AMF0, event.timestamp, event.payload))
        elif isinstance(event, ev.StatusReceived) and event.code == StatusCode.PLAY_UNPUBLISH_NOTIFY:
            if live is not None:
                self.registry.unpublish(live, self)
            return None
        return live


class PushRelay(_Relay):
    """Republish local `local_app/local_name` to `url` whenever it is live."""

    def __init__(self, registry: Registry, local_app: str, local_name: str, url: str, timeout: float = 10.0,
                 backoff: Backoff | None = None) -> None:
        super().__init__(timeout, backoff)
        self.registry = registry
        self.local_app = split_query(local_app)
        self.local_name = split_query(local_name)
        self.url = url
        self.packets_sent = 0

    def __repr__(self) -> str:
        return f"<PushRelay {self.local_app}/{self.local_name} -> {self.url}>"

    def start(self) -> PushRelay:
        self.registry.on_publish.append(self._on_publish)
        live = self.registry.get(self.local_app, self.local_name)
        if live is not None and live.is_live:
            self._on_publish(live)
        return self

    def stop(self) -> None:
        if self._on_publish in self.registry.on_publish:
            self.registry.on_publish.remove(self._on_publish)
        super().stop()

    def _on_publish(self, live: LiveStream) -> None:
        if (live.app, live.name) != (self.local_app, self.local_name) or self._stopped:
            return
        self._greenlets = [g for g in self._greenlets if not g.dead]
        if not self._greenlets:
            self._greenlets.append(gevent.spawn(self._run, live))

    def _run(self, live: LiveStream) -> None:
        while not self._stopped and live.is_live:
            self.attempts += 1
            try:
                self._session(live)
            except (OSError, NeurtmpError, TimeoutError) as exc:
                if not self._stopped and live.is_live:
                    self._wait_before_retry(repr(self), exc)

    def _session(self, live: LiveStream) -> None:
        queue: gevent.queue.Queue = gevent.queue.Queue(PUSH_QUEUE_PACKETS)
        overflowed = []

        def sink(packet: Packet) -> None:  # runs in the publisher's greenlet: never raise there
            try:
                queue.put_nowait(packet)
            except gevent.queue.Full:
                overflowed.append(packet)

        client = neurtmp.connect(self.url, timeout=self.timeout)
        try:
            client.publish()
            # Snapshot and subscribe with no switch between: nothing is lost or sent twice.
            start = live.cached_start()
            live.add_sink(sink)
            self.connected += 1
            held_since = time.monotonic()
            log.info("%r: publishing to the remote server", self)
            try:
                for packet in start:
                    client.send_packet(packet)
                while not self._stopped and live.is_live:
                    if client.closed:
                        raise neurtmp.ConnectionClosed("remote server closed the connection")
                    if overflowed:
                        raise neurtmp.ConnectionClosed(f"remote is too slow: {PUSH_QUEUE_PACKETS} packets queued")
                    try:
                        packet = queue.get(timeout=1)
                    except gevent.queue.Empty:
                        continue
                    client.send_packet(packet)
                    self.packets_sent += 1
                    if time.monotonic() - held_since > 10:
                        self.backoff.reset()
            finally:
                live.remove_sink(sink)
        finally:
            client.close()


class Forwarder:
    """Forward every stream published locally to a remote server (the local proxy).

    A publisher of local APP/NAME is republished to `remote` + "/NAME" (or to `remote` as
    it is when it already names a stream), one `PushRelay` per name, with its reconnects.

    Args:
        registry: the local live registry.
        remote: rtmp://HOST[:PORT]/APP, or rtmp://HOST[:PORT]/APP/NAME for one fixed name.
    """

    def __init__(self, registry: Registry, remote: str, timeout: float = 10.0, backoff: Backoff | None = None) -> None:
        self.registry = registry
        self.remote = remote.rstrip("/")
        self.fixed_name = bool(neurtmp.parse_rtmp_url(self.remote).stream)
        self.timeout = timeout
        self.backoff = backoff
        self.relays: dict[tuple[str, str], PushRelay] = {}

    def start(self) -> Forwarder:
        self.registry.on_publish.append(self._on_publish)
        return self

    def stop(self) -> None:
        if self._on_publish in self.registry.on_publish:
            self.registry.on_publish.remove(self._on_publish)
        for relay in self.relays.values():
            relay.stop()
        self.relays.clear()

    def _on_publish(self, live: LiveStream) -> None:
        key = (live.app, live.name)
        if key in self.relays:
            return  # its PushRelay follows the name going live again by itself
        url = self.remote if self.fixed_name else f"{self.remote}/{live.name}"
        backoff = Backoff(self.backoff.initial, self.backoff.maximum) if self.backoff else None
        log.info("forwarding %s to %s", live.path, url)
        self.relays[key] = PushRelay(self.registry, live.app, live.name, url, self.timeout, backoff).start()
