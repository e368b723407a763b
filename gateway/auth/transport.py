"""Whether a request reached the gateway over a channel fit for client secrets: https, or the loopback.

Decided from the ASGI scope (the connection's own scheme and peer address), never from the ``Host``
header, which any caller writes. ``X-Forwarded-Proto`` and ``X-Forwarded-For`` count only when the peer is
one of the configured trusted proxies (``GATEWAY_TRUSTED_PROXIES``); a trusted proxy that does not say whose
request it forwards is not taken for the loopback.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import Any

__all__ = ["peer_address", "secure_transport"]

Network = IPv4Network | IPv6Network


def _ip(text: str | None) -> IPv4Address | IPv6Address | None:
    if not text:
        return None
    try:
        return ip_address(text.strip())
    except ValueError:
        return None


def _last(headers: Mapping[str, str], name: str) -> str | None:
    """The value the nearest proxy appended (the last of a comma-separated list)."""
    value = headers.get(name)
    return value.rsplit(",", 1)[-1].strip() if value else None


def _trusted(peer: IPv4Address | IPv6Address | None, proxies: Iterable[Network]) -> bool:
    return peer is not None and any(peer.version == net.version and peer in net for net in proxies)


def peer_address(scope: Mapping[str, Any], headers: Mapping[str, str], proxies: Iterable[Network] = ()) -> str | None:
    """The caller's address: the connection's peer, or what a trusted proxy says it forwarded for."""
    client = scope.get("client")
    peer = _ip(client[0]) if client else None
    if _trusted(peer, proxies):
        forwarded = _ip(_last(headers, "x-forwarded-for"))
        return str(forwarded) if forwarded else None
    return str(peer) if peer else None


def secure_transport(scope: Mapping[str, Any], headers: Mapping[str, str], proxies: Iterable[Network] = ()) -> bool:
    """https as the connection (or a trusted proxy) says, or a peer on the loopback."""
    proxies = tuple(proxies)
    client = scope.get("client")
    peer = _ip(client[0]) if client else None
    scheme = scope.get("scheme", "http")
    if _trusted(peer, proxies):
        scheme = (_last(headers, "x-forwarded-proto") or scheme).lower()
    address = _ip(peer_address(scope, headers, proxies))
    return scheme == "https" or (address is not None and address.is_loopback)
