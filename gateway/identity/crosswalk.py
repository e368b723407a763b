"""The crosswalk: which identifiers each recipient may see, and the opaque tokens that stand for the rest.

A recipient that is not entitled to another partner's identifier (ALER never sees a raw Comune case id) gets
a gateway token instead: a keyed hash of (recipient, identifier system, value), so the same case always has
the same token for ALER — ALER can follow it over time — while another recipient gets a different token,
and nobody can turn a token back into the case id without the gateway's key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

__all__ = ["Crosswalk"]


class Crosswalk:
    """Mints per-recipient opaque tokens under the gateway's key."""

    def __init__(self, key: bytes) -> None:
        self._key = hashlib.sha256(b"crosswalk/v1\x00" + key).digest()

    def token(self, recipient: str, system: str, value: str) -> str:
        """The token ``recipient`` sees for identifier ``value`` of ``system`` (e.g. a Comune case id)."""
        digest = hmac.new(self._key, f"{recipient}\x00{system}\x00{value}".encode(), hashlib.sha256).digest()
        return "gwt_" + base64.b32encode(digest[:15]).decode("ascii").lower()
