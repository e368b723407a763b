"""Liveness and readiness (unauthenticated).

Liveness (``/health``) only says the process answers, and stays cheap. Readiness (``/health/ready``) says
whether this process should receive traffic, and when not, which part is unusable:

- ``gateway-starting`` / ``gateway-stopping``: it is still waiting for its dependencies, or shutting down;
- ``store``: the database does not answer a query now;
- ``bus``: no Kafka broker answers a metadata request (or the embedded log cannot be read) within 2 s;
- ``audit-signer``: where workers run, the checkpoint signing keys cannot be read, or the last attempt to sign
  a checkpoint failed (``signer_error`` gives the error type);
- ``worker:<task>``: a supervised task is restarting or was given up;
- ``consumer-not-in-group``: the inbound consumer is not a member of its consumer group.

The answer also carries each task's state and restarts and the consumer's group membership and progress; it
is 503 when anything is not ready. Nothing in it is personal data: error types, never messages.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from gateway.api.deps import GatewayDep
from gateway.audit.checkpoint import KeyFormatError
from gateway.audit.checkpointer import CheckpointSigningError
from gateway.bus import BusUnavailable
from gateway.errors import DependencyUnavailable

_BUS_CHECK_TIMEOUT_S = 2.0

router = APIRouter(tags=["health"])


class Readiness(BaseModel):
    """The readiness answer (documentation of the body; 200 when ``status`` is ``ready``, 503 otherwise)."""

    status: str
    """``ready`` or ``not-ready``."""
    failing: list[str]
    """What is not ready: ``gateway-starting`` / ``gateway-stopping``, ``store``, ``bus``, ``audit-signer``,
    ``worker:<task>``, ``consumer-not-in-group``."""
    store: str
    """The store's dialect (``postgresql``, ``sqlite``)."""
    store_status: str
    """``ok`` or ``unavailable``."""
    bus: str
    """``kafka`` or ``embedded``."""
    bus_status: str
    """``ok`` or ``unavailable``."""
    signer_status: str
    """``ok``, ``unusable`` (see ``signer_error``) or ``not-used`` (no workers: this process signs nothing)."""
    signer_error: str | None = None
    """Type of the error that makes the signer unusable."""
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
    bus = "ok"
    try:
        await gateway.bus.check(_BUS_CHECK_TIMEOUT_S)
    except BusUnavailable:
        bus = "unavailable"
        failing.append("bus")
    body: dict[str, Any] = {"store": gateway.store.dialect, "store_status": store, "bus": gateway.settings.bus,
                            "bus_status": bus, "signer_status": "not-used", "signer_error": None}
    supervisor = gateway.supervisor
    if supervisor is not None:
        signer_error = gateway.checkpointer.last_failure
        try:
            gateway.checkpointer.signing_keys()
        except (CheckpointSigningError, KeyFormatError, OSError) as exc:
            signer_error = type(exc).__name__
        body["signer_status"] = "unusable" if signer_error else "ok"
        body["signer_error"] = signer_error
        if signer_error:
            failing.append("audit-signer")
        tasks = supervisor.health()
        body["workers"] = {name: task.as_dict() for name, task in tasks.items()}
        failing += [f"worker:{name}" for name, task in tasks.items() if task.state != "running"]
        progress = gateway.consumer.progress
        body["consumer"] = progress.as_dict()
        if not progress.member:
            failing.append("consumer-not-in-group")
    body = {"status": "not-ready" if failing else "ready", "failing": failing, **body}
    return JSONResponse(body, status_code=503 if failing else 200)
