"""Partner client registrations and the authenticated principal of a request."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from gateway.auth.client_secrets import is_client_secret_hash
from gateway.auth.errors import InsufficientScope

__all__ = ["PartnerClient", "Principal", "is_valid_scope_token"]

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


def is_valid_scope_token(value: str) -> bool:
    """Tell whether ``value`` is a syntactically valid OAuth 2 scope token."""
    return _SCOPE_TOKEN.fullmatch(value) is not None


@dataclass(frozen=True)
class PartnerClient:
    """A partner system allowed to obtain access tokens.

    ``secret_hash`` comes from :func:`gateway.auth.hash_client_secret`; the
    plain secret is never kept. ``scopes`` is the most a token for this
    client may carry.
    """

    client_id: str
    secret_hash: str
    organisation: str
    role: str
    scopes: frozenset[str]

    def __post_init__(self) -> None:
        if not self.client_id or not self.client_id.isprintable():
            raise ValueError("client_id must be a non-empty printable string")
        if not is_client_secret_hash(self.secret_hash):
            raise ValueError(f"secret_hash of client {self.client_id!r} is not a hash produced by hash_client_secret()")
        if not self.organisation:
            raise ValueError(f"organisation of client {self.client_id!r} is empty")
        if not self.role:
            raise ValueError(f"role of client {self.client_id!r} is empty")
        scopes = frozenset(self.scopes)
        invalid = sorted(s for s in scopes if not is_valid_scope_token(s))
        if invalid:
            raise ValueError(f"client {self.client_id!r} has invalid scopes: {invalid}")
        object.__setattr__(self, "scopes", scopes)

    def __repr__(self) -> str:
        return (
            f"PartnerClient(client_id={self.client_id!r}, "
            f"organisation={self.organisation!r}, role={self.role!r}, "
            f"scopes={sorted(self.scopes)!r})"
        )


@dataclass(frozen=True)
class Principal:
    """The partner client behind a validated access token."""

    client_id: str
    organisation: str
    role: str
    scopes: frozenset[str]
    token_id: str
    expires_at: datetime

    def has_scope(self, scope: str) -> bool:
        """Tell whether the token carries ``scope``."""
        return scope in self.scopes

    def require(self, scope: str) -> None:
        """Raise :class:`InsufficientScope` unless the token carries ``scope``."""
        if scope not in self.scopes:
            raise InsufficientScope(scope)
