"""Relays: pull remote streams in, push local streams out (see `relays`)."""

from __future__ import annotations

from neurtmp.relay.relays import Backoff, PullRelay, PushRelay, parse_local_name

__all__ = ["Backoff", "PullRelay", "PushRelay", "parse_local_name"]
