"""The OAuth 2 token endpoint: client-credentials grant issuing RFC 9068 JWTs.

:class:`TokenIssuer` wraps an authlib authorisation server. Partners
authenticate with ``client_secret_basic`` or ``client_secret_post``, or, when
registered with public keys, with ``private_key_jwt`` (RFC 7523 assertions,
:mod:`gateway.auth.client_assertion`), and receive a short-lived JWT access token limited to their registered
scopes. Tokens are not stored; they are checked by
:class:`gateway.auth.validator.TokenValidator`.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from authlib.oauth2.rfc6749 import InsecureTransportError, InvalidRequestError, OAuth2Error
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from gateway.auth._authlib_server import (
    PartnerAuthorizationServer,
    PartnerTokenGenerator,
    TokenRequest,
    basic_credentials,
)
from gateway.auth.client_assertion import CLIENT_ASSERTION_TYPE, ClaimAssertion, PrivateKeyJWTAuthentication
from gateway.auth.client_secrets import hash_client_secret
from gateway.auth.directory import ClientDirectory
from gateway.auth.keys import SigningKey, copy_private_key, public_key_set
from gateway.auth.models import PartnerClient
from gateway.auth.transport import Network, peer_address, secure_transport

__all__ = ["MAX_TOKEN_REQUEST_BYTES", "IssuedToken", "RecordIssuance", "TokenIssuer"]

#: Largest token request body accepted; real requests are a few hundred bytes.
MAX_TOKEN_REQUEST_BYTES = 8192
_MAX_FORM_FIELDS = 16
_FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """What an audit record of an issued token says (never the token itself)."""

    client_id: str
    organisation: str
    role: str
    scopes: tuple[str, ...]
    token_id: str
    """The token's ``jti``."""
    expires_at: datetime


RecordIssuance = Callable[[IssuedToken], Awaitable[None]]
"""Writes the audit record of an issued token; if it raises, the token is not handed out (fail closed)."""


def _issued(body: bytes) -> IssuedToken:
    """The claims of the access token in a successful token response the issuer just built."""
    token = json.loads(body)["access_token"]
    segment = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return IssuedToken(client_id=claims["client_id"], organisation=claims["org"], role=claims["role"],
                       scopes=tuple(claims["scope"].split()), token_id=claims["jti"],
                       expires_at=datetime.fromtimestamp(claims["exp"], UTC))


class _BadTokenRequest(Exception):
    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class TokenIssuer:
    """Issues access tokens to registered partner clients.

    :param clients: the partner registrations (``client_id`` unique), or the :class:`ClientDirectory` that
        knows the current ones.
    :param signing_key: private Ed25519 (preferred) or P-256 joserfc key.
        A copy is kept; a ``kid`` (RFC 7638 thumbprint) is added if absent.
    :param issuer: value of the ``iss`` claim.
    :param audience: value of the ``aud`` claim (the gateway's API).
    :param ttl_seconds: token lifetime.
    :param clock: returns the current Unix time; injectable for tests.
    :param token_endpoint: this endpoint's URL, the ``aud`` a client assertion must name; by default
        ``issuer`` followed by ``oauth/token``.
    :param claim_assertion: records an assertion's ``jti`` (shared by every process on the store); without it
        no client assertion is accepted.
    :param assertion_max_lifetime_seconds: how far ahead an assertion's ``exp`` may be.
    :param assertion_leeway_seconds: clock skew allowed on an assertion's ``exp``, ``iat`` and ``nbf``.
    """

    def __init__(
        self,
        clients: Sequence[PartnerClient] | ClientDirectory,
        signing_key: SigningKey,
        issuer: str,
        audience: str,
        ttl_seconds: int = 300,
        clock: Callable[[], float] = time.time,
        *,
        token_endpoint: str | None = None,
        claim_assertion: ClaimAssertion | None = None,
        assertion_max_lifetime_seconds: int = 300,
        assertion_leeway_seconds: int = 30,
    ) -> None:
        if not issuer or not audience:
            raise ValueError("issuer and audience must be non-empty")
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        self._key = copy_private_key(signing_key)
        self._retired: tuple[SigningKey, ...] = ()
        self.issuer = issuer
        self.audience = audience
        self.ttl_seconds = ttl_seconds
        self.token_endpoint = token_endpoint or issuer.rstrip("/") + "/oauth/token"
        generator = PartnerTokenGenerator(
            issuer=issuer,
            audience=audience,
            key=self._key,
            ttl_seconds=ttl_seconds,
            clock=clock,
        )
        # Unknown client ids are checked against this hash so that they cost
        # the same time as a wrong secret.
        self._generator = generator
        dummy_hash = hash_client_secret("unknown-client")
        directory = clients if isinstance(clients, ClientDirectory) else ClientDirectory(clients)
        assertions = PrivateKeyJWTAuthentication(
            self.token_endpoint, max_lifetime_seconds=assertion_max_lifetime_seconds,
            leeway_seconds=assertion_leeway_seconds, claim=claim_assertion, clock=clock)
        self._server = PartnerAuthorizationServer(directory, generator, dummy_hash, assertions)

    def public_jwks(self) -> dict[str, Any]:
        """The public JWK set (RFC 7517) that verifies the issued tokens, those of retired keys included."""
        return public_key_set(self._key, *self._retired)

    def use_keys(self, signing_key: SigningKey, retired: Sequence[SigningKey] = ()) -> None:
        """Sign from now on with ``signing_key``; keep publishing ``retired`` (a key rotation, no restart)."""
        key = copy_private_key(signing_key)
        self._generator.use_key(key)
        self._key, self._retired = key, tuple(retired)

    async def token_response(self, request: Request, *, record_issuance: RecordIssuance | None = None,
                             trusted_proxies: Iterable[Network] = ()) -> Response:
        """Handle a token request (RFC 6749 §4.4) and build the JSON response.

        Success gives the §5.1 token response; failures give the §5.2 error
        object (``invalid_client`` with 401 and ``WWW-Authenticate``,
        ``invalid_request``, ``unsupported_grant_type``, ``invalid_scope``...).
        Every response carries ``Cache-Control: no-store``.

        The request must come over https or from the loopback, as the ASGI scope says
        (:mod:`gateway.auth.transport`; forwarded headers only from ``trusted_proxies``). With
        ``record_issuance`` every token is recorded before it is handed out, and an error there is raised
        instead of a token (the gateway's route always passes it).
        """
        proxies = tuple(trusted_proxies)
        try:
            if not secure_transport(request.scope, request.headers, proxies):
                raise InsecureTransportError()
            items = await _read_form(request)
            _check_parameters(request, items)
            token_request = TokenRequest(
                method=request.method,
                uri=str(request.url.replace(scheme="https")),  # the transport was judged above, from the scope
                headers=request.headers,
                form_items=items,
                peer=peer_address(request.scope, request.headers, proxies),
            )
        except _BadTokenRequest as error:
            return self._error_response(InvalidRequestError(error.description))
        except InsecureTransportError as error:
            error.description = "The token endpoint must be called over https."
            return self._error_response(error)
        # Client authentication runs scrypt: keep it off the event loop.
        response: Response = await run_in_threadpool(self._server.create_token_response, token_request)
        if response.status_code == 200 and record_issuance is not None:
            await record_issuance(_issued(bytes(response.body)))
        return response

    def _error_response(self, error: OAuth2Error) -> Response:
        return self._server.handle_response(*error())


async def _read_form(request: Request) -> list[tuple[str, str]]:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != _FORM_MEDIA_TYPE:
        raise _BadTokenRequest(f"The request body must be {_FORM_MEDIA_TYPE}.")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_TOKEN_REQUEST_BYTES:
            raise _BadTokenRequest("The request body is too large.")
    try:
        return parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=False,
            errors="strict",
            max_num_fields=_MAX_FORM_FIELDS,
        )
    except ValueError as error:  # includes UnicodeDecodeError
        raise _BadTokenRequest("The request body is not a valid form.") from error


def _check_parameters(request: Request, items: Sequence[tuple[str, str]]) -> None:
    names = [name for name, _ in items]
    if len(names) != len(set(names)):
        # RFC 6749 §3.2: parameters MUST NOT be included more than once.
        raise _BadTokenRequest("Request parameters must not be repeated.")
    params = dict(items)
    if not params.get("grant_type"):
        raise _BadTokenRequest("Missing 'grant_type' parameter.")
    basic_id, _ = basic_credentials(request.headers)
    if basic_id and ("client_secret" in params or params.get("client_id", basic_id) != basic_id):
        # RFC 6749 §2.3: use only one client authentication method per request.
        # A client_id repeated in the body is tolerated, as some client libraries send it.
        raise _BadTokenRequest("Send client credentials either in the Authorization header or in the body.")
    if "client_assertion" in params or "client_assertion_type" in params:
        if basic_id or "client_secret" in params:
            raise _BadTokenRequest("Send either a client assertion or a client secret, not both.")
        if params.get("client_assertion_type") != CLIENT_ASSERTION_TYPE or not params.get("client_assertion"):
            raise _BadTokenRequest(f"A client assertion needs client_assertion_type={CLIENT_ASSERTION_TYPE}.")
