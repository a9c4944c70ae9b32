"""IP rules: allow and deny lists for publish and play, as nginx-rtmp's access module.

Rules are read in order and the first whose network holds the client's address decides;
when none does, the client is allowed (an open server stays open until a rule says
otherwise). ``all`` matches every address; a network is IPv4 or IPv6 in CIDR form (a bare
address is one host). An IPv4 client reaching an IPv6 listener ("::ffff:10.0.0.1") is
matched as the IPv4 address it is.

Example (publish from the LAN only): ``allow 10.0.0.0/8``, then ``deny all``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from neurtmp.errors import ConfigError

__all__ = ["ALL", "IpRule", "IpRules", "parse_peer_host", "parse_rule"]

#: The network word that matches every address.
ALL = "all"

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class IpRule:
    """One rule: `allow` (True) or deny the addresses in `network` (None: all)."""

    allow: bool
    network: _Network | None

    def matches(self, address: _Address) -> bool:
        return self.network is None or (address.version == self.network.version and address in self.network)

    def __str__(self) -> str:
        return f"{'allow' if self.allow else 'deny'} {self.network or ALL}"


def parse_rule(allow: bool, text: str) -> IpRule:
    """An `IpRule` from "all", "10.0.0.0/8", "::1", "2001:db8::/32" ...

    Raises:
        ConfigError: not "all" nor an IPv4/IPv6 address or network.
    """
    text = text.strip()
    if text.lower() == ALL:
        return IpRule(allow, None)
    try:
        # strict=False: "10.1.2.3/8" means its network, as nginx-rtmp reads it.
        return IpRule(allow, ipaddress.ip_network(text.strip("[]"), strict=False))
    except ValueError:
        raise ConfigError(f"{text!r} is neither 'all' nor an IPv4/IPv6 address or CIDR network") from None


def parse_peer_host(peer: str) -> _Address | None:
    """The IP of a "host:port" / "[v6]:port" peer address (IPv4-mapped IPv6 as IPv4);
    None when it is not an IP address."""
    host = peer.rpartition(":")[0] if peer.count(":") == 1 or peer.startswith("[") else peer
    host = host.strip("[]").partition("%")[0]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class IpRules:
    """An ordered rule list: the first match decides, no match allows."""

    def __init__(self, rules: Iterable[IpRule] = ()) -> None:
        self.rules = tuple(rules)

    def __bool__(self) -> bool:
        return bool(self.rules)

    def decide(self, address: _Address | None) -> IpRule | None:
        """The rule that decides for `address` (None: no rule matched; allowed). An
        address that is not an IP (none known) matches only "all" rules."""
        for rule in self.rules:
            if rule.network is None or (address is not None and rule.matches(address)):
                return rule
        return None

    def allows(self, address: _Address | None) -> bool:
        rule = self.decide(address)
        return rule is None or rule.allow
