"""``private_key_jwt`` client authentication (RFC 7523 §2.2, OpenID Connect Core §9), on authlib's
:class:`~authlib.oauth2.rfc7523.JWTBearerClientAssertion`.

A client registered with public keys (:mod:`gateway.auth.client_keys`) sends, instead of a secret,
``client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`` and a ``client_assertion``: a
JWT it signed with its private key, whose claims say

* ``iss`` = ``sub`` = its client id;
* ``aud`` = the gateway's token endpoint URL (``GATEWAY_TOKEN_ENDPOINT_URL``);
* ``exp`` in the future, and at most ``GATEWAY_CLIENT_ASSERTION_MAX_LIFETIME_SECONDS`` ahead (of now, and of
  ``iat`` when given); ``iat`` and ``nbf``, when given, not in the future; each with a small leeway for clock skew;
* ``jti``: a value never used before by this client. The gateway keeps it in the store until the assertion has
  expired (plus the leeway), so a replay is refused by every gateway process sharing that store.

Only the algorithms of :data:`~gateway.auth.client_keys.ASSERTION_ALGORITHMS` verify (never ``none`` nor HMAC,
whatever the header says). Any failure is authlib's ``invalid_client``; what failed is logged, never answered.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import anyio.from_thread
import structlog
from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from gateway.auth.client_keys import ASSERTION_ALGORITHMS, assertion_keys

__all__ = [
    "CLIENT_ASSERTION_TYPE",
    "PRIVATE_KEY_JWT",
    "AssertionRefused",
    "ClaimAssertion",
    "PrivateKeyJWTAuthentication",
    "assertion_subject",
]

log = structlog.stdlib.get_logger(__name__)

PRIVATE_KEY_JWT = "private_key_jwt"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_MAX_JTI_LENGTH = 128

ClaimAssertion = Callable[[str, str, datetime], Coroutine[Any, Any, bool]]
"""Records a client's assertion ``jti``, kept until the given time; False if that client used it already."""


def assertion_subject(assertion: str) -> str | None:
    """The ``sub`` an assertion names, read WITHOUT verifying it: only to key rate limits before it is checked."""
    if not assertion:
        return None
    try:
        claims = json.loads(jws.extract_compact(assertion.encode("ascii")).payload)
    except (JoseError, ValueError):
        return None
    sub = claims.get("sub") if isinstance(claims, dict) else None
    return sub if isinstance(sub, str) and sub.isprintable() and len(sub) <= 128 else None


class AssertionRefused(InvalidClientError):  # type: ignore[misc]
    """An assertion that does not authenticate its client; ``reason`` is a fixed slug for the log."""

    def __init__(self, reason: str, client_id: str | None = None) -> None:
        super().__init__(description="Client authentication failed.")
        self.reason = reason
        self.client_id = client_id
        """The client the assertion names, once it is known to exist (else None: unverified input)."""


class PrivateKeyJWTAuthentication(JWTBearerClientAssertion):  # type: ignore[misc]
    """authlib client-authentication method ``private_key_jwt`` with the gateway's checks (module docs).

    Runs in a worker thread (the token endpoint keeps authlib off the event loop); ``claim`` is awaited on the
    event loop through :func:`anyio.from_thread.run`.

    :param token_endpoint: the only ``aud`` accepted.
    :param max_lifetime_seconds: how far ahead ``exp`` may be.
    :param leeway_seconds: clock skew allowed on ``exp``, ``iat`` and ``nbf``.
    :param claim: records a ``jti`` (replay protection); None: no assertion is accepted (fail closed).
    :param clock: Unix time; injectable for tests.
    """

    CLIENT_AUTH_METHOD = PRIVATE_KEY_JWT

    def __init__(self, token_endpoint: str, *, max_lifetime_seconds: int, leeway_seconds: int,
                 claim: ClaimAssertion | None, clock: Callable[[], float] = time.time) -> None:
        super().__init__(validate_jti=True, leeway=leeway_seconds)
        self.token_endpoint = token_endpoint
        self.max_lifetime_seconds = max_lifetime_seconds
        self._claim = claim
        self._clock = clock

    def get_audiences(self) -> list[str]:
        return [self.token_endpoint]

    def resolve_client_public_key(self, client: Any) -> KeySet:
        registered = client.partner.public_jwks
        if registered is None:
            raise AssertionRefused("assertion-from-secret-client", client.get_client_id())
        return assertion_keys(registered)

    def process_assertion_claims(self, assertion: str, resolve_key: Any) -> dict[str, Any]:
        try:
            token = jwt.decode(assertion, resolve_key, algorithms=list(ASSERTION_ALGORITHMS))
        except (JoseError, ValueError) as exc:  # bad signature, unknown kid, algorithm not allowed, bad JSON...
            raise AssertionRefused(f"assertion-signature:{type(exc).__name__}") from None
        self.verify_claims(token.claims)
        return dict(token.claims)

    def verify_claims(self, claims: dict[str, Any]) -> None:
        now = int(self._clock())
        registry = jwt.JWTClaimsRegistry(
            now=now, leeway=self.leeway,
            iss={"essential": True}, sub={"essential": True}, exp={"essential": True},
            aud={"essential": True, "values": self.get_audiences()}, jti={"essential": True},
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            raise AssertionRefused(f"assertion-claims:{type(exc).__name__}") from None
        client_id, jti, exp = claims["sub"], claims["jti"], claims["exp"]
        if claims["iss"] != client_id:
            raise AssertionRefused("assertion-iss-not-sub")
        if exp - now > self.max_lifetime_seconds + self.leeway:
            raise AssertionRefused("assertion-lifetime")
        iat = claims.get("iat")
        if iat is not None and exp - iat > self.max_lifetime_seconds:
            raise AssertionRefused("assertion-lifetime")
        if not isinstance(jti, str) or not 0 < len(jti) <= _MAX_JTI_LENGTH:
            raise AssertionRefused("assertion-jti")
        if self._claim is None:
            raise AssertionRefused("assertion-without-replay-store", client_id)
        if not self.validate_jti(claims, jti):
            raise AssertionRefused("assertion-replayed", client_id)

    def validate_jti(self, claims: dict[str, Any], jti: str) -> bool:
        if self._claim is None:
            return False
        keep_until = datetime.fromtimestamp(int(claims["exp"]) + self.leeway, UTC)
        return bool(anyio.from_thread.run(self._claim, claims["sub"], jti, keep_until))

    def authenticate_client(self, client: Any) -> Any:
        if client.check_endpoint_auth_method(self.CLIENT_AUTH_METHOD, "token"):
            return client
        raise AssertionRefused("assertion-from-secret-client", client.get_client_id())
