"""Liveness and readiness (unauthenticated).

Liveness (``/health``) only says the process answers. Readiness (``/health/ready``) says whether this process
should receive traffic: the gateway has finished starting (its database and bus answered), the store answers
now, and, where workers run, every supervised task is running and the inbound consumer is a member of its
group. The answer names what is not ready and carries the consumer's group membership and progress; it is
503 when anything is not ready. Nothing in it is personal data.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from gateway.api.deps import GatewayDep
from gateway.errors import DependencyUnavailable

router = APIRouter(tags=["health"])


class Readiness(BaseModel):
    """The readiness answer (documentation of the body; 200 when ``status`` is ``ready``, 503 otherwise)."""

    status: str
    """``ready`` or ``not-ready``."""
    failing: list[str]
    """What is not ready: ``gateway-starting`` / ``gateway-stopping``, ``store``, ``worker:<task>``,
    ``consumer-not-in-group``."""
    store: str
    """The store's dialect (``postgresql``, ``sqlite``)."""
    store_status: str
    """``ok`` or ``unavailable``."""
    bus: str
    """``kafka`` or ``embedded``."""
    workers: dict[str, dict[str, Any]] | None = None
    """Per supervised task: ``state``, ``restarts``, ``last_error`` (a type name); absent without workers."""
    consumer: dict[str, Any] | None = None
    """The inbound consumer's group, membership, assigned partitions, batches, records, commits and commit
    failures, last fetch and last commit; absent without workers."""


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/health/ready", response_model=Readiness, responses={
    503: {"model": Readiness, "description": "Not ready; `failing` names what is not."}})
async def ready(gateway: GatewayDep) -> JSONResponse:
    """Ready when started, the store answers and every worker task runs; 503 naming what is not, otherwise."""
    failing: list[str] = []
    if gateway.state != "running":
        failing.append(f"gateway-{gateway.state}")
    store = "ok"
    try:
        async with gateway.store.transaction() as tx:
            await tx.conn.execute(text("select 1"))
    except DependencyUnavailable:
        store = "unavailable"
        failing.append("store")
    body: dict[str, Any] = {"store": gateway.store.dialect, "store_status": store, "bus": gateway.settings.bus}
    supervisor = gateway.supervisor
    if supervisor is not None:
        tasks = supervisor.health()
        body["workers"] = {name: task.as_dict() for name, task in tasks.items()}
        failing += [f"worker:{name}" for name, task in tasks.items() if task.state != "running"]
        progress = gateway.consumer.progress
        body["consumer"] = progress.as_dict()
        if not progress.member:
            failing.append("consumer-not-in-group")
    body = {"status": "not-ready" if failing else "ready", "failing": failing, **body}
    return JSONResponse(body, status_code=503 if failing else 200)
