"""OAuth 2 client-credentials token endpoint and the public keys that verify its tokens."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from gateway.api.deps import GatewayDep

router = APIRouter(tags=["auth"])


@router.post("/oauth/token", summary="Obtain an access token (client credentials, RFC 6749 §4.4)")
async def token(request: Request, gateway: GatewayDep) -> Response:
    return await gateway.issuer.token_response(request)


@router.get("/.well-known/jwks.json", summary="Public keys that verify access tokens")
async def jwks(gateway: GatewayDep) -> dict[str, Any]:
    return gateway.issuer.public_jwks()
