"""OAuth 2 client-credentials token endpoint and the public keys that verify its tokens.

Every token handed out is audited first (client, organisation, scopes, ``jti``, expiry: a ``token-issued``
record); when that record cannot be written the caller gets a 503 problem and no token (fail closed, as
PDND does).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response

from gateway.api.deps import GatewayDep, RequestIdDep
from gateway.audit.record import AuditRecord
from gateway.auth.issuer import IssuedToken

router = APIRouter(tags=["auth"])


@router.post("/oauth/token", summary="Obtain an access token (client credentials, RFC 6749 §4.4)")
async def token(request: Request, gateway: GatewayDep, request_id: RequestIdDep) -> Response:
    async def record(issued: IssuedToken) -> None:
        async with gateway.store.transaction() as tx:
            await tx.append_audit([AuditRecord(
                event_type="token-issued", action="issue-token", occurred_at=datetime.now(UTC), outcome="success",
                client_id=issued.client_id, token_id=issued.token_id, requesting_org=issued.organisation,
                instance=gateway.settings.instance_id, request_id=request_id, scopes=issued.scopes,
                expires_at=issued.expires_at,
            )])

    return await gateway.issuer.token_response(request, record_issuance=record,
                                               trusted_proxies=gateway.settings.trusted_proxies)


@router.get("/.well-known/jwks.json", summary="Public keys that verify access tokens")
async def jwks(gateway: GatewayDep) -> dict[str, Any]:
    return gateway.issuer.public_jwks()
