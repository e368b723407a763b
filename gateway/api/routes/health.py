"""Liveness and readiness (unauthenticated)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from gateway.api.deps import GatewayDep

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/health/ready")
async def ready(gateway: GatewayDep) -> dict[str, str]:
    """The store answers; 503 problem+json (from the store's own error translation) otherwise."""
    async with gateway.store.transaction() as tx:
        await tx.conn.execute(text("select 1"))
    return {"status": "ready", "store": gateway.store.dialect, "bus": gateway.settings.bus}
