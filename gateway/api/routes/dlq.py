"""Dead-letter re-drive over HTTP for operators (scope ``admin:dlq``), the same as ``gateway dlq``: list entries,
show one, replay one or all of a partner's (:mod:`gateway.pipeline.redrive`). Each replay is audited with the
calling client as who asked (``api:<client id>``); errors are problem+json (an unknown entry is 404
``dead-letter-not-found``, a token without the scope 403).

* ``GET /v1/admin/dlq?partner=P``: the entries, oldest first per partition.
* ``GET /v1/admin/dlq/{id}``: one entry (id ``<partner>:<partition>:<offset>``).
* ``POST /v1/admin/dlq/{id}/replay?dry_run=false``: replay one entry.
* ``POST /v1/admin/dlq/replay?partner=P&dry_run=false``: replay every entry of ``P``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from gateway.api.deps import GatewayDep, IdInPath, PrincipalDep
from gateway.bootstrap import Gateway
from gateway.pipeline.redrive import Redrive

__all__ = ["DLQ_SCOPE", "router"]

DLQ_SCOPE = "admin:dlq"
router = APIRouter(prefix="/v1/admin/dlq", tags=["operations"])

PartnerQuery = Annotated[str, Query(min_length=1, max_length=64, pattern=r"^[a-z0-9-]+$")]


def _redrive(gateway: Gateway) -> Redrive:
    return Redrive(gateway.bus, gateway.intake, gateway.settings.topics, sorted(gateway.intake.decoders),
                   gateway.settings.instance_id)


@router.get("", summary="Dead-letter entries (reason and source coordinates; no payload is kept)")
async def list_entries(gateway: GatewayDep, principal: PrincipalDep,
                       partner: Annotated[str | None, Query(min_length=1, max_length=64, pattern=r"^[a-z0-9-]+$")]
                       = None) -> list[dict[str, Any]]:
    principal.require(DLQ_SCOPE)
    return [entry.as_dict() for entry in await _redrive(gateway).entries(partner)]


@router.get("/{entry_id}", summary="One dead-letter entry")
async def show_entry(entry_id: IdInPath, gateway: GatewayDep, principal: PrincipalDep) -> dict[str, Any]:
    principal.require(DLQ_SCOPE)
    return (await _redrive(gateway).entry(entry_id)).as_dict()


@router.post("/replay", summary="Replay every dead letter of a partner through the intake (audited)")
async def replay_all(partner: PartnerQuery, gateway: GatewayDep, principal: PrincipalDep,
                     dry_run: bool = False) -> list[dict[str, Any]]:
    principal.require(DLQ_SCOPE)
    results = await _redrive(gateway).replay_all(partner, f"api:{principal.client_id}", dry_run=dry_run)
    return [result.as_dict() for result in results]


@router.post("/{entry_id}/replay", summary="Replay one dead letter through the intake (audited)")
async def replay_one(entry_id: IdInPath, gateway: GatewayDep, principal: PrincipalDep,
                     dry_run: bool = False) -> dict[str, Any]:
    principal.require(DLQ_SCOPE)
    return (await _redrive(gateway).replay(entry_id, f"api:{principal.client_id}", dry_run=dry_run)).as_dict()
