"""Access control for a server: signed tokens, IP rules and HTTP hooks.

Built only on the public handler API: `AccessControl.install(server)` before the
application puts its checks first in line (see `neurtmp.access.control`).

- `tokens`: ``?expires=UNIX&sig=HEX`` HMAC-SHA256 tokens, for publish or for play;
- `rules`: allow / deny CIDR lists, first match wins, default open (nginx-rtmp's);
- `hooks`: on_connect / on_publish / on_play decide, the ``*_done`` ones notify, as
  nginx-rtmp's notify module (a form POST; 2xx allows, 3xx renames, or relays when its
  Location is an rtmp:// URL, else refused);
- `form`: the hook's form fields; `options`: `AccessOptions`.
"""

from __future__ import annotations

from neurtmp.access.control import AccessControl, RedirectRelaying
from neurtmp.access.hooks import DEFAULT_HOOK_TIMEOUT, HookAnswer, notify, post_form
from neurtmp.access.options import ANY_APP, HOOK_CALLS, AccessOptions
from neurtmp.access.rules import IpRule, IpRules, parse_rule
from neurtmp.access.tokens import PLAY, PUBLISH, check_token, sign, token_query

__all__ = [
    "ANY_APP",
    "DEFAULT_HOOK_TIMEOUT",
    "HOOK_CALLS",
    "PLAY",
    "PUBLISH",
    "AccessControl",
    "AccessOptions",
    "HookAnswer",
    "IpRule",
    "IpRules",
    "RedirectRelaying",
    "check_token",
    "notify",
    "parse_rule",
    "post_form",
    "sign",
    "token_query",
]
