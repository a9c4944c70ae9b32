"""Relays: pull remote streams in, push local streams out, forward local publishers
to a remote server, serve as an edge of an origin, relay what access hooks redirect to
rtmp:// URLs (see `relays`, `edge`, `redirects`, `ondemand`)."""

from __future__ import annotations

from neurtmp.relay.edge import Edge, Forwarder
from neurtmp.relay.redirects import RedirectRelays
from neurtmp.relay.relays import Backoff, PullRelay, PushRelay, Relay, local_url, parse_local_name

__all__ = ["Backoff", "Edge", "Forwarder", "PullRelay", "PushRelay", "RedirectRelays", "Relay", "local_url",
           "parse_local_name"]
