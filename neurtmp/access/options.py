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
    #: Per-application publish rules: an app listed here uses its own instead of `publish_rules`.
    app_publish_rules: Mapping[str, tuple[IpRule, ...]] = field(default_factory=dict)
    #: Per-application play rules: an app listed here uses its own instead of `play_rules`.
    app_play_rules: Mapping[str, tuple[IpRule, ...]] = field(default_factory=dict)
    #: Per-application hooks (app → call → URL): a call set for an app replaces that call's
    #: server-wide hook for it.
    app_hooks: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.hook_timeout > 0:
            raise ConfigError(f"hook_timeout must be > 0 s, not {self.hook_timeout:g}")
        for app, hooks in ((ANY_APP, self.hooks), *self.app_hooks.items()):
            whose = f"app {app}: " if app else ""
            for call, url in hooks.items():
                if call not in HOOK_CALLS:
                    raise ConfigError(f"{whose}unknown hook {call!r} (known: {', '.join(HOOK_CALLS)})")
                parts = urllib.parse.urlsplit(url)
                if parts.scheme not in ("http", "https") or not parts.hostname:
                    raise ConfigError(f"{whose}on_{call} hook: {shown_url(url)!r} is not an http:// or https:// URL")
        for kind, secrets in (("publish", self.publish_secrets), ("play", self.play_secrets)):
            if any(not secret for secret in secrets.values()):
                raise ConfigError(f"an empty {kind} token secret")

    def secret(self, kind: str, app: str) -> str:
        """The `kind` ("publish" / "play") token secret for `app`; "" when none is needed."""
        secrets = self.publish_secrets if kind == "publish" else self.play_secrets
        return secrets.get(app, secrets.get(ANY_APP, ""))

    def rules(self, kind: str, app: str) -> tuple[IpRule, ...]:
        """The `kind` ("publish" / "play") IP rules that hold for `app`."""
        own, every = ((self.app_publish_rules, self.publish_rules) if kind == "publish"
                      else (self.app_play_rules, self.play_rules))
        return own.get(app, every)

    def hook(self, call: str, app: str) -> str:
        """The URL of `call`'s hook for `app` ("" when none is set)."""
        return self.app_hooks.get(app, {}).get(call) or self.hooks.get(call, "")

    def has_hook(self, call: str) -> bool:
        """Whether `call`'s hook is set for any application."""
        return call in self.hooks or any(call in hooks for hooks in self.app_hooks.values())

    @property
    def active(self) -> bool:
        """Whether any check or hook is set."""
        return bool(self.publish_secrets or self.play_secrets or self.publish_rules or self.play_rules
                    or self.hooks or self.app_publish_rules or self.app_play_rules or self.app_hooks)
