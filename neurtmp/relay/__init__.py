"""Relays: pull remote streams in, push local streams out, forward local publishers
to a remote server (see `relays`)."""

from __future__ import annotations

from neurtmp.relay.relays import Backoff, Edge, Forwarder, PullRelay, PushRelay, Relay, local_url, parse_local_name

__all__ = ["Backoff", "Edge", "Forwarder", "PullRelay", "PushRelay", "Relay", "local_url", "parse_local_name"]
