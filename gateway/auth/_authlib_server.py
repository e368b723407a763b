"""Glue between authlib's generic OAuth 2 server classes and the gateway.

authlib ships ready-made servers only for Flask and Django. This module
supplies what its generic ``AuthorizationServer`` needs for the
client-credentials token endpoint: a request object built from an
already-read form body, a client model wrapping :class:`PartnerClient`
(authenticated by its secret or, for a client registered with keys, by a
``private_key_jwt`` assertion: :mod:`gateway.auth.client_assertion`),
a grant restricted to the client's scopes, an RFC 9068 JWT token
generator using the injected clock and key, and JSON responses for
Starlette.
"""

from __future__ import annotations

import json
import secrets
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import structlog
from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    ClientCredentialsGrant,
    ClientMixin,
    InvalidClientError,
    InvalidScopeError,
    OAuth2Payload,
    OAuth2Request,
    UnsupportedGrantTypeError,
)
from authlib.oauth2.rfc6749.hooks import hooked
from authlib.oauth2.rfc6749.util import (
    extract_basic_authorization,
)
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator
from joserfc import jwt
from starlette.responses import Response

from gateway.auth.client_assertion import PRIVATE_KEY_JWT, AssertionRefused, PrivateKeyJWTAuthentication
from gateway.auth.client_secrets import verify_client_secret
from gateway.auth.directory import ClientDirectory
from gateway.auth.keys import SigningKey, algorithm_for_key
from gateway.auth.models import PartnerClient, is_valid_scope_token

__all__ = [
    "ACCESS_JWT_TYP",
    "CLIENT_CREDENTIALS",
    "TOKEN_ENDPOINT_AUTH_METHODS",
    "PartnerAuthorizationServer",
    "PartnerTokenGenerator",
    "TokenRequest",
    "basic_credentials",
]

log = structlog.stdlib.get_logger(__name__)

CLIENT_CREDENTIALS = "client_credentials"
SECRET_AUTH_METHODS = ("client_secret_basic", "client_secret_post")
TOKEN_ENDPOINT_AUTH_METHODS = (*SECRET_AUTH_METHODS, PRIVATE_KEY_JWT)
ACCESS_JWT_TYP = "at+jwt"  # RFC 9068 §2.1 "typ" header value


def basic_credentials(headers: Mapping[str, str]) -> tuple[str | None, str | None]:
    """Client id and secret from an HTTP Basic ``Authorization`` header, if any.

    Wraps authlib's parser, which raises on credentials that are not UTF-8.
    """
    try:
        client_id, client_secret = extract_basic_authorization(headers)
    except ValueError:
        return None, None
    return client_id, client_secret


class _FormPayload(OAuth2Payload):  # type: ignore[misc]
    """Token request parameters taken from a parsed form body."""

    def __init__(self, items: Sequence[tuple[str, str]]) -> None:
        self._data: dict[str, str] = dict(items)
        datalist: defaultdict[str, list[str]] = defaultdict(list)
        for name, value in items:
            datalist[name].append(value)
        self._datalist = datalist

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class TokenRequest(OAuth2Request):  # type: ignore[misc]
    """An OAuth 2 token request whose form body was read asynchronously beforehand.

    Raises authlib's ``InsecureTransportError`` when ``uri`` is not https
    (loopback addresses excepted).
    """

    def __init__(
        self,
        method: str,
        uri: str,
        headers: Mapping[str, str],
        form_items: Sequence[tuple[str, str]],
        peer: str | None = None,
    ) -> None:
        super().__init__(method=method, uri=uri, headers=headers)
        self.payload = _FormPayload(form_items)
        self.peer = peer
        """The caller's address (logged with failed authentications)."""

    @property
    def form(self) -> dict[str, str]:
        return self.payload.data

    @property
    def args(self) -> dict[str, str]:
        return {}


class _Client(ClientMixin):  # type: ignore[misc]
    """authlib client model for a registered :class:`PartnerClient`."""

    def __init__(self, partner: PartnerClient) -> None:
        self.partner = partner

    def get_client_id(self) -> str:
        return self.partner.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == CLIENT_CREDENTIALS

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        """A client registered with keys authenticates only with assertions, any other only with its secret."""
        if endpoint != "token":
            return False
        if self.partner.auth_method == "private_key_jwt":
            return method == PRIVATE_KEY_JWT
        return method in SECRET_AUTH_METHODS

    def check_client_secret(self, client_secret: str) -> bool:
        return self.partner.secret_hash is not None and verify_client_secret(client_secret, self.partner.secret_hash)

    def get_allowed_scope(self, scope: str | None) -> str:
        """Granted scope: the requested scopes the client holds, or all of them."""
        if not scope:
            return " ".join(sorted(self.partner.scopes))
        requested = set(scope.split())
        return " ".join(sorted(requested & self.partner.scopes))


class _PartnerClientCredentialsGrant(ClientCredentialsGrant):  # type: ignore[misc]
    """Client-credentials grant limited to the scopes registered for the client."""

    TOKEN_ENDPOINT_AUTH_METHODS = list(TOKEN_ENDPOINT_AUTH_METHODS)

    def validate_requested_scope(self) -> None:
        requested = self.request.payload.scope
        if not requested:
            return
        tokens = requested.split()
        if not all(is_valid_scope_token(token) for token in tokens):
            raise InvalidScopeError("The scope parameter is malformed.")
        client: _Client = self.request.client
        refused = sorted(set(tokens) - client.partner.scopes)
        if refused:
            raise InvalidScopeError("These scopes are not allowed for this client: " + " ".join(refused))

    @hooked  # type: ignore[untyped-decorator]
    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        # Same as the parent, without its debug log line that prints the token.
        token = self.generate_token(scope=self.request.payload.scope, include_refresh_token=False)
        self.save_token(token)
        return 200, token, list(self.TOKEN_RESPONSE_HEADER)


class PartnerTokenGenerator(JWTBearerTokenGenerator):  # type: ignore[misc]
    """RFC 9068 JWT access tokens carrying the partner's organisation and role.

    authlib's generator reads ``time.time()`` directly and only allows the
    algorithms joserfc recommends by default (no Ed25519), so the token
    itself is built here; the claim hooks of the parent class are kept.
    """

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        key: SigningKey,
        ttl_seconds: int,
        clock: Callable[[], float],
    ) -> None:
        super().__init__(issuer=issuer, alg=algorithm_for_key(key), expires_generator=ttl_seconds)
        self._audience = audience
        self._key = key
        self._clock = clock

    def use_key(self, key: SigningKey) -> None:
        """Sign the next tokens with ``key`` (a rotation)."""
        self.alg = algorithm_for_key(key)
        self._key = key

    def get_jwks(self) -> SigningKey:
        return self._key

    def get_audiences(self, client: _Client, user: object, scope: str) -> str:
        return self._audience

    def get_jti(self, client: _Client, grant_type: str, user: object, scope: str) -> str:
        return secrets.token_urlsafe(18)

    def get_extra_claims(self, client: _Client, grant_type: str, user: object, scope: str) -> dict[str, str]:
        return {"org": client.partner.organisation, "role": client.partner.role}

    def access_token_generator(self, client: _Client, grant_type: str, user: object, scope: str) -> str:
        now = int(self._clock())
        client_id = client.get_client_id()
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": client_id,
            "aud": self.get_audiences(client, user, scope),
            "exp": now + int(self._get_expires_in(client, grant_type)),
            "iat": now,
            "jti": self.get_jti(client, grant_type, user, scope),
            "client_id": client_id,
            "scope": scope,
        }
        claims.update(self.get_extra_claims(client, grant_type, user, scope))
        header = {"alg": self.alg, "typ": ACCESS_JWT_TYP, "kid": self._key.kid}
        return jwt.encode(header, claims, key=self._key, algorithms=[self.alg])


class PartnerAuthorizationServer(AuthorizationServer):  # type: ignore[misc]
    """authlib authorisation server offering only the client-credentials grant."""

    def __init__(
        self,
        clients: ClientDirectory,
        generator: PartnerTokenGenerator,
        dummy_secret_hash: str,
        assertions: PrivateKeyJWTAuthentication,
    ) -> None:
        super().__init__(scopes_supported=sorted(clients.scopes()))
        self._directory = clients
        self._dummy_secret_hash = dummy_secret_hash
        self._assertions = assertions
        self.register_grant(_PartnerClientCredentialsGrant)
        self.register_token_generator("default", generator)
        self.register_client_auth_method("client_secret_basic", self._authenticate_basic)
        self.register_client_auth_method("client_secret_post", self._authenticate_post)
        self.register_client_auth_method(PRIVATE_KEY_JWT, self._authenticate_assertion)

    # -- client authentication -------------------------------------------------
    # Replacements for authlib's built-in methods: an unknown client is treated
    # like a wrong secret (same 401 answer, same scrypt cost) so that client ids
    # cannot be probed.

    def _client(self, client_id: str) -> _Client | None:
        """The enabled client with this id, as the directory's snapshot has it now (None if unknown or disabled)."""
        partner = self._directory.lookup(client_id)
        return None if partner is None else _Client(partner)

    def _check_credentials(self, client_id: str, client_secret: str, peer: str | None) -> _Client | None:
        client = self._client(client_id)
        if client is None:
            verify_client_secret(client_secret, self._dummy_secret_hash)
            # The presented id is not logged: it is unverified input.
            log.warning("token_request_rejected", reason="unknown-or-disabled-client", host=peer)
            return None
        if client.partner.secret_hash is None:  # registered with keys: a secret never authenticates it
            verify_client_secret(client_secret, self._dummy_secret_hash)
            log.warning("token_request_rejected", reason="secret-for-key-client", client_id=client_id, host=peer)
            return None
        if not client.check_client_secret(client_secret):
            log.warning("token_request_rejected", reason="wrong-secret", client_id=client_id, host=peer)
            return None
        return client

    def _authenticate_basic(self, query_client: object, request: TokenRequest) -> _Client | None:
        client_id, client_secret = basic_credentials(request.headers)
        if not client_id or not client_secret:
            return None
        return self._check_credentials(client_id, client_secret, request.peer)

    def _authenticate_post(self, query_client: object, request: TokenRequest) -> _Client | None:
        client_id = request.form.get("client_id")
        client_secret = request.form.get("client_secret")
        if not client_id or not client_secret:
            return None
        return self._check_credentials(client_id, client_secret, request.peer)

    def _authenticate_assertion(self, query_client: Any, request: TokenRequest) -> _Client | None:
        """``private_key_jwt``: None when the request carries no assertion; a refused one is logged here."""
        try:
            client: _Client | None = self._assertions(query_client, request)
        except InvalidClientError as error:
            reason = error.reason if isinstance(error, AssertionRefused) else "assertion-malformed-or-unknown-client"
            known = getattr(request, "client", None)  # set by authlib once the assertion's client exists
            client_id = known.get_client_id() if isinstance(known, _Client) else None
            log.warning("token_request_rejected", reason=reason, client_id=client_id, host=request.peer)
            raise
        named = request.form.get("client_id")
        if client is not None and named is not None and named != client.get_client_id():  # RFC 7521 §4.2
            log.warning("token_request_rejected", reason="assertion-client-id-mismatch",
                        client_id=client.get_client_id(), host=request.peer)
            raise AssertionRefused("assertion-client-id-mismatch")
        return client

    def authenticate_client(self, request: TokenRequest, methods: Sequence[str], endpoint: str = "token") -> Any:
        try:
            return super().authenticate_client(request, methods, endpoint)
        except InvalidClientError as error:
            error.status_code = 401  # whichever method failed, as with HTTP Basic (RFC 6749 §5.2)
            error.description = (
                "Client authentication failed. Send a valid client_id and client_secret (HTTP Basic or the "
                "form body), or a client assertion signed with your registered key (private_key_jwt)."
            )
            raise

    # -- authlib hooks ---------------------------------------------------------

    def query_client(self, client_id: str) -> _Client | None:
        return self._client(client_id)

    def save_token(self, token: dict[str, Any], request: TokenRequest) -> None:
        # Tokens are self-contained JWTs: nothing is stored.
        log.info("access_token_issued", client_id=request.client.get_client_id(), outcome="issued")

    def send_signal(self, name: str, *args: object, **kwargs: object) -> None:
        return None

    def get_token_grant(self, request: TokenRequest) -> Any:
        try:
            return super().get_token_grant(request)
        except UnsupportedGrantTypeError as error:
            error.description = "Only grant_type=client_credentials is supported."
            raise

    def create_oauth2_request(self, request: object) -> TokenRequest:
        if not isinstance(request, TokenRequest):
            raise TypeError("expected a TokenRequest")
        return request

    def create_json_request(self, request: object) -> Any:
        raise NotImplementedError("the gateway exposes no JSON OAuth endpoints")

    def handle_response(
        self,
        status_code: int,
        payload: dict[str, Any] | str,
        headers: Sequence[tuple[str, str]],
    ) -> Response:
        body = payload if isinstance(payload, str) else json.dumps(payload)
        response_headers = dict(headers)
        response_headers["Cache-Control"] = "no-store"
        response_headers["Pragma"] = "no-cache"
        response_headers.setdefault("Content-Type", "application/json")
        return Response(content=body, status_code=status_code, headers=response_headers)
