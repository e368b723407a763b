"""OAuth 2 client-credentials token endpoint and the public keys that verify its tokens.

Partners authenticate with their secret or, when registered with public keys, with a ``private_key_jwt``
client assertion (:mod:`gateway.auth.client_assertion`). Token requests are rate-limited per client and per
address, and repeated failed authentications (either way) lock the client id and the address out for a while
(:mod:`gateway.api.throttle`). Every token handed out is audited
first (client, organisation, scopes, ``jti``, expiry: a ``token-issued`` record); when that record cannot be
written the caller gets a 503 problem and no token (fail closed, as PDND does).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response

from gateway.api.deps import GatewayDep, RequestIdDep
from gateway.api.throttle import Throttle
from gateway.auth._authlib_server import basic_credentials
from gateway.auth.client_assertion import assertion_subject
from gateway.auth.issuer import MAX_TOKEN_REQUEST_BYTES, IssuedToken
from gateway.auth.transport import peer_address
from gateway.observability.metrics import oauth_error
from gateway.pipeline import ledger

router = APIRouter(tags=["auth"])


async def _client_id_of(request: Request) -> str | None:
    """The client id a token request names (Basic header, else the form's ``client_id``, else the ``sub`` of its
    client assertion), unverified: it only keys limits."""
    basic_id, _ = basic_credentials(request.headers)
    if basic_id:
        return basic_id
    declared = request.headers.get("content-length", "")
    if not (declared.isdigit() and int(declared) <= MAX_TOKEN_REQUEST_BYTES):
        return None  # the issuer refuses such a request on its own
    body = await request.body()  # kept by the request, so the issuer reads the same bytes
    form = dict(parse_qsl(body.decode("utf-8", "replace")))
    return form.get("client_id") or assertion_subject(form.get("client_assertion", ""))


@router.post("/oauth/token", summary="Obtain an access token (client credentials, RFC 6749 §4.4)")
async def token(request: Request, gateway: GatewayDep, request_id: RequestIdDep) -> Response:
    async def record(issued: IssuedToken) -> None:
        try:
            async with gateway.store.transaction() as tx:
                await tx.append_audit([ledger.token_issued_record(
                    issued.client_id, issued.token_id, issued.organisation, issued.scopes, issued.expires_at,
                    gateway.settings.instance_id, request_id, datetime.now(UTC))])
        except Exception:
            gateway.metrics.token_failures.labels("audit_unavailable").inc()
            raise
        gateway.metrics.tokens_issued.labels(issued.organisation).inc()

    throttle: Throttle = request.app.state.throttle
    client_id = await _client_id_of(request)
    address = peer_address(request.scope, request.headers, gateway.settings.trusted_proxies)
    try:
        throttle.token_request(client_id, address)
    except Exception:
        gateway.metrics.token_failures.labels("rate_limited").inc()
        raise
    gateway.reload_token_keys()  # a rotated signing key is used at once
    await gateway.directory.refresh()  # a client disabled or given a new secret in the store counts within seconds
    response = await gateway.issuer.token_response(request, record_issuance=record,
                                                   trusted_proxies=gateway.settings.trusted_proxies)
    if response.status_code == 401:
        throttle.authentication_failed(client_id, address)
    if response.status_code != 200:
        gateway.metrics.token_failures.labels(oauth_error(response)).inc()
    return response


@router.get("/.well-known/jwks.json", summary="Public keys that verify access tokens")
async def jwks(gateway: GatewayDep) -> dict[str, Any]:
    gateway.reload_token_keys()
    return gateway.issuer.public_jwks()
