"""The privacy-officer API (scope ``privacy:audit``): per-person reports, records of processing, review
queue. JSON by default, CSV with ``?format=csv``; every answer carries the audit log's integrity status and
every query is itself audited. Person identifiers travel in request bodies, never in URLs (access logs)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict

from gateway.api.deps import GatewayDep, PrincipalDep, RequestIdDep
from gateway.privacy_office import PrivacyOffice, to_csv

router = APIRouter(prefix="/v1/privacy", tags=["privacy officers"])
Format = Annotated[Literal["json", "csv"], Query(description="json (default) or csv")]


class DisclosureReportIn(BaseModel):
    """Whose data, over which period."""

    model_config = ConfigDict(extra="forbid")
    identifier: str
    since: datetime | None = None
    until: datetime | None = None


def _office(gateway: Any) -> PrivacyOffice:
    return PrivacyOffice(gateway.store, gateway.registry, gateway.settings.instance_id)


@router.post("/disclosure-report", summary="Everything audited about one person (GDPR art. 15)")
async def disclosure_report(body: DisclosureReportIn, principal: PrincipalDep, gateway: GatewayDep,
                            request_id: RequestIdDep, format: Format = "json") -> Any:
    principal.require("privacy:audit")
    lines, integrity = await _office(gateway).disclosure_report(body.identifier, body.since, body.until,
                                                                principal.client_id, request_id)
    rows = [asdict(line) for line in lines]
    if format == "csv":
        return PlainTextResponse(to_csv(rows, integrity), media_type="text/csv")
    return {"integrity": asdict(integrity), "events": rows}


@router.get("/records-of-processing", summary="Records of processing (GDPR art. 30) from the flow registry")
async def records_of_processing(principal: PrincipalDep, gateway: GatewayDep, request_id: RequestIdDep,
                                format: Format = "json") -> Any:
    principal.require("privacy:audit")
    office = _office(gateway)
    await office.audit_query("records-of-processing", principal.client_id, request_id)
    rows, integrity = office.records_of_processing(), await office.integrity()
    if format == "csv":
        return PlainTextResponse(to_csv(rows, integrity), media_type="text/csv")
    return {"integrity": asdict(integrity), "records": rows}


@router.get("/review-queue", summary="Denials and drops at delivery, newest first")
async def review_queue(principal: PrincipalDep, gateway: GatewayDep, request_id: RequestIdDep,
                       format: Format = "json", limit: Annotated[int, Query(ge=1, le=5000)] = 500) -> Any:
    principal.require("privacy:audit")
    office = _office(gateway)
    queue, integrity = await office.review_queue(principal.client_id, request_id, limit), await office.integrity()
    if format == "csv":
        return PlainTextResponse(to_csv(queue, integrity), media_type="text/csv")
    return {"integrity": asdict(integrity), "queue": queue}
