"""Validation of partner access tokens presented to the gateway's API.

:class:`TokenValidator` checks a ``Authorization: Bearer`` header against
the issuer's public keys and returns the :class:`Principal` behind it.
It accepts only RFC 9068 JWT access tokens (``typ: at+jwt``) signed with
an allowed algorithm (``Ed25519`` or ``ES256``; never ``none``, HMAC or
RSA), from the expected issuer, for the expected audience, not expired,
and carrying the claims the gateway relies on.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from joserfc import jwt
from joserfc.errors import InvalidClaimError, JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from gateway.auth.errors import ExpiredToken, InvalidToken, MissingToken
from gateway.auth.keys import SUPPORTED_ALGORITHMS, SigningKey, load_verification_keys
from gateway.auth.models import Principal

__all__ = ["REQUIRED_CLAIMS", "TokenValidator"]

#: Claims every access token must carry.
REQUIRED_CLAIMS: tuple[str, ...] = ("iss", "sub", "aud", "exp", "iat", "jti", "client_id", "org", "role")

_ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
_MAX_TOKEN_LENGTH = 4096
# RFC 6750 §2.1 b64token
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


class _AccessTokenClaims(JWTClaimsRegistry):
    """Claim checks; expiry is checked last, by the validator, so that an
    expired token is reported as such only when everything else is right."""

    def validate_exp(self, value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidClaimError("exp")

    def _validate_text(self, name: str, value: object) -> None:
        if not isinstance(value, str) or not value:
            raise InvalidClaimError(name)

    def validate_client_id(self, value: object) -> None:
        self._validate_text("client_id", value)

    def validate_org(self, value: object) -> None:
        self._validate_text("org", value)

    def validate_role(self, value: object) -> None:
        self._validate_text("role", value)

    def validate_scope(self, value: object) -> None:
        if not isinstance(value, str):
            raise InvalidClaimError("scope")


def _bearer_token(authorization_header: str | None) -> str:
    if authorization_header is None or not authorization_header.strip():
        raise MissingToken()
    scheme, _, credentials = authorization_header.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise MissingToken(
            "The Authorization header does not use the Bearer scheme. "
            "Send the access token as 'Authorization: Bearer <token>'."
        )
    credentials = credentials.strip()
    if not credentials:
        raise MissingToken()
    if len(credentials) > _MAX_TOKEN_LENGTH or not _B64TOKEN.fullmatch(credentials):
        raise InvalidToken(
            "The Authorization header is malformed. Send exactly one access token as 'Authorization: Bearer <token>'."
        )
    return credentials


def _claim_error_detail(claim: str, claims: dict[str, Any]) -> str:
    if claim == "iss":
        return "The access token was issued by another authority. Use a token from the gateway."
    if claim == "aud":
        return "The access token is meant for another service. Use a token issued for this gateway."
    if claim in ("iat", "nbf") and isinstance(claims.get(claim), int | float):
        return "The access token is not valid yet. Check the clock of the calling system."
    return f"The access token has an invalid '{claim}' claim. Request a new token."


class TokenValidator:
    """Checks bearer tokens issued by :class:`gateway.auth.issuer.TokenIssuer`.

    :param public_keys: JWK set dict (``{"keys": [...]}``), single JWK dict,
        joserfc key or :class:`joserfc.jwk.KeySet`; see ``TokenIssuer.public_jwks()``.
    :param issuer: expected ``iss``.
    :param audience: expected ``aud`` (this gateway's API).
    :param clock: returns the current Unix time; injectable for tests.
    :param leeway_seconds: tolerated clock skew for ``exp``, ``iat`` and ``nbf``.
    """

    def __init__(
        self,
        public_keys: dict[str, Any] | KeySet | SigningKey,
        issuer: str,
        audience: str,
        clock: Callable[[], float] = time.time,
        leeway_seconds: int = 0,
    ) -> None:
        if not issuer or not audience:
            raise ValueError("issuer and audience must be non-empty")
        if leeway_seconds < 0:
            raise ValueError("leeway_seconds must not be negative")
        self._keys = load_verification_keys(public_keys)
        self.issuer = issuer
        self.audience = audience
        self._clock = clock
        self._leeway = leeway_seconds

    def use_keys(self, public_keys: dict[str, Any] | KeySet | SigningKey) -> None:
        """Verify with these keys from now on (a rotation: the new key and those retired but still valid)."""
        self._keys = load_verification_keys(public_keys)

    def _now(self) -> int:
        return int(self._clock())

    def validate(self, authorization_header: str | None) -> Principal:
        """Return the principal of an ``Authorization`` header value, or raise an ``AuthError``."""
        return self.validate_token(_bearer_token(authorization_header))

    def validate_token(self, token: str) -> Principal:
        """Return the principal of a bare access token, or raise an ``AuthError``."""
        if len(token) > _MAX_TOKEN_LENGTH:
            raise InvalidToken()
        try:
            decoded = jwt.decode(token, self._keys, algorithms=SUPPORTED_ALGORITHMS)
        except (JoseError, ValueError, TypeError, KeyError) as error:
            raise InvalidToken() from error

        typ = decoded.header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in _ACCESS_TOKEN_TYPES:
            raise InvalidToken("The token is not an access token. Use a token from the token endpoint.")

        claims = decoded.claims
        missing = [name for name in REQUIRED_CLAIMS if claims.get(name) is None]
        if missing:
            raise InvalidToken(
                "The access token is missing required claims: " + ", ".join(missing) + ". Request a new token."
            )

        registry = _AccessTokenClaims(
            now=self._now,
            leeway=self._leeway,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.audience},
            sub={"essential": True},
            jti={"essential": True},
        )
        try:
            registry.validate(claims)
        except InvalidClaimError as error:
            raise InvalidToken(_claim_error_detail(error.claim, claims)) from error
        except JoseError as error:
            raise InvalidToken() from error

        if claims["sub"] != claims["client_id"]:
            raise InvalidToken("The access token was not issued to a partner client.")

        exp = claims["exp"]
        if exp <= self._now() - self._leeway:
            raise ExpiredToken()
        try:
            expires_at = datetime.fromtimestamp(exp, tz=UTC)
        except (OverflowError, OSError, ValueError) as error:
            raise InvalidToken(_claim_error_detail("exp", claims)) from error

        return Principal(
            client_id=claims["client_id"],
            organisation=claims["org"],
            role=claims["role"],
            scopes=frozenset(claims.get("scope", "").split()),
            token_id=claims["jti"],
            expires_at=expires_at,
        )
