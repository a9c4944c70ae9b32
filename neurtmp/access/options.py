"""AccessOptions: who may connect, publish and play, as settings."""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field

from neurtmp.access.hooks import DEFAULT_HOOK_TIMEOUT, shown_url
from neurtmp.access.rules import IpRule
from neurtmp.errors import ConfigError

__all__ = ["ANY_APP", "HOOK_CALLS", "AccessOptions"]

#: The app key of a secret that holds for every application.
ANY_APP = ""

#: The hook calls, in nginx-rtmp's names (`AccessOptions.hooks` keys).
HOOK_CALLS = ("connect", "publish", "play", "publish_done", "play_done", "record_done")


@dataclass
class AccessOptions:
    """Access-control settings (all empty: everyone may do everything).

    Checks run in this order, the first refusal winning: IP rules, tokens, hooks.
    """

    #: Publish-token secrets by application name (`ANY_APP`: every app without its own).
    publish_secrets: Mapping[str, str] = field(default_factory=dict)
    #: Play-token secrets by application name (`ANY_APP`: every app without its own).
    play_secrets: Mapping[str, str] = field(default_factory=dict)
    #: Publish IP rules, in order (first match decides; none matching allows).
    publish_rules: tuple[IpRule, ...] = ()
    #: Play IP rules, in order.
    play_rules: tuple[IpRule, ...] = ()
    #: Hook URLs by call (`HOOK_CALLS`): connect, publish and play decide; the others notify.
    hooks: Mapping[str, str] = field(default_factory=dict)
    #: Seconds a deciding hook has to answer before the client is refused.
    hook_timeout: float = DEFAULT_HOOK_TIMEOUT

    def __post_init__(self) -> None:
        if not self.hook_timeout > 0:
            raise ConfigError(f"hook_timeout must be > 0 s, not {self.hook_timeout:g}")
        for call, url in self.hooks.items():
            if call not in HOOK_CALLS:
                raise ConfigError(f"unknown hook {call!r} (known: {', '.join(HOOK_CALLS)})")
            parts = urllib.parse.urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError(f"on_{call} hook: {shown_url(url)!r} is not an http:// or https:// URL")
        for kind, secrets in (("publish", self.publish_secrets), ("play", self.play_secrets)):
            if any(not secret for secret in secrets.values()):
                raise ConfigError(f"an empty {kind} token secret")

    def secret(self, kind: str, app: str) -> str:
        """The `kind` ("publish" / "play") token secret for `app`; "" when none is needed."""
        secrets = self.publish_secrets if kind == "publish" else self.play_secrets
        return secrets.get(app, secrets.get(ANY_APP, ""))

    @property
    def active(self) -> bool:
        """Whether any check or hook is set."""
        return bool(self.publish_secrets or self.play_secrets or self.publish_rules or self.play_rules
                    or self.hooks)
