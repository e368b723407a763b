"""Partner client registrations and the authenticated principal of a request."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from gateway.auth.client_keys import registered_key_set
from gateway.auth.client_secrets import is_client_secret_hash
from gateway.auth.errors import InsufficientScope

__all__ = ["AuthMethod", "PartnerClient", "Principal", "is_valid_scope_token"]

AuthMethod = Literal["client_secret", "private_key_jwt"]
"""How a client authenticates at the token endpoint: a shared secret (HTTP Basic or form body), or RFC 7523
assertions signed with a key registered for it. Each client has exactly one."""

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


def is_valid_scope_token(value: str) -> bool:
    """Tell whether ``value`` is a syntactically valid OAuth 2 scope token."""
    return _SCOPE_TOKEN.fullmatch(value) is not None


@dataclass(frozen=True)
class PartnerClient:
    """A partner system allowed to obtain access tokens.

    A client authenticates either with a secret or with keys, never both: ``secret_hash`` comes from
    :func:`gateway.auth.hash_client_secret` (the plain secret is never kept); ``public_jwks`` is the JWK Set
    text from :func:`gateway.auth.client_keys.registered_key_set` (``private_key_jwt``). ``scopes`` is the
    most a token for this client may carry.
    """

    client_id: str
    secret_hash: str | None
    organisation: str
    role: str
    scopes: frozenset[str]
    public_jwks: str | None = None

    def __post_init__(self) -> None:
        if not self.client_id or not self.client_id.isprintable():
            raise ValueError("client_id must be a non-empty printable string")
        if (self.secret_hash is None) == (self.public_jwks is None):
            raise ValueError(f"client {self.client_id!r} needs either a secret hash or public keys, not both")
        if self.secret_hash is not None and not is_client_secret_hash(self.secret_hash):
            raise ValueError(f"secret_hash of client {self.client_id!r} is not a hash produced by hash_client_secret()")
        if self.public_jwks is not None:
            try:
                canonical = registered_key_set(json.loads(self.public_jwks))
            except ValueError as exc:  # json.JSONDecodeError included
                raise ValueError(f"public keys of client {self.client_id!r}: {exc}") from None
            object.__setattr__(self, "public_jwks", canonical)
        if not self.organisation:
            raise ValueError(f"organisation of client {self.client_id!r} is empty")
        if not self.role:
            raise ValueError(f"role of client {self.client_id!r} is empty")
        scopes = frozenset(self.scopes)
        invalid = sorted(s for s in scopes if not is_valid_scope_token(s))
        if invalid:
            raise ValueError(f"client {self.client_id!r} has invalid scopes: {invalid}")
        object.__setattr__(self, "scopes", scopes)

    @property
    def auth_method(self) -> AuthMethod:
        """``private_key_jwt`` when keys are registered, else ``client_secret``."""
        return "client_secret" if self.public_jwks is None else "private_key_jwt"

    def __repr__(self) -> str:
        return (
            f"PartnerClient(client_id={self.client_id!r}, "
            f"organisation={self.organisation!r}, role={self.role!r}, "
            f"scopes={sorted(self.scopes)!r}, auth_method={self.auth_method!r})"
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
