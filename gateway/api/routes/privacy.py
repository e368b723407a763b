"""The privacy-officer API (role ``privacy-officer``): per-person reports, consent history with the notice text
shown, records of processing and review queue (scope ``privacy:report``), erasure (scope ``privacy:erase``).
JSON by default, CSV with ``?format=csv``; every answer carries the audit log's integrity status
and every query is itself audited. Person identifiers travel in request bodies, never in URLs (access logs).

Reports cover only what the officer's own organisation sent, received or recorded, unless the officer belongs
to the gateway's data protection office (``GATEWAY_DATA_PROTECTION_OFFICE``), whose reports cover everything.

Erasure takes two officers (four eyes): ``POST /v1/privacy/subjects/erasure`` records a request and changes
nothing else; ``POST /v1/privacy/subjects/erasure/{request}/approval`` by a different officer, naming the same
person, within ``GATEWAY_ERASURE_APPROVAL_WINDOW_SECONDS``, destroys the subject's key and cannot be undone
(see :meth:`gateway.privacy.erasure.approve_erasure`). Both steps are audited."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict

from gateway.api.deps import INDEX_MAX, ErasingOfficerDep, GatewayDep, ReportingOfficerDep, RequestIdDep
from gateway.privacy.office import PrivacyOffice
from gateway.privacy.reports import to_csv

router = APIRouter(prefix="/v1/privacy", tags=["privacy officers"])
Format = Annotated[Literal["json", "csv"], Query(description="json (default) or csv")]


class DisclosureReportIn(BaseModel):
    """Whose data, over which period."""

    model_config = ConfigDict(extra="forbid")
    identifier: str
    since: datetime | None = None
    until: datetime | None = None


class ErasureIn(BaseModel):
    """Whom to erase: a codice fiscale, STP or ENI code."""

    model_config = ConfigDict(extra="forbid")
    identifier: str


class ErasureRequestOut(BaseModel):
    """An erasure request waiting for a second officer's approval; nothing has been erased yet."""

    status: Literal["pending-approval"] = "pending-approval"
    request_index: int
    """Log index of the ``request-erasure`` audit record: the ``{request}`` of the approval route."""
    expires_at: datetime
    """After this the request lapses and the erasure must be requested again."""


class ErasureOut(BaseModel):
    """What the erasure did. ``no-subject``: the gateway holds nothing linkable to this identifier (never seen,
    or erased before: after an erasure the identifier leads nowhere, so the two cannot be told apart)."""

    outcome: Literal["erased", "no-subject"]
    audit_index: int
    """Log index of the ``erasure`` audit record (which names no subject)."""
    payloads_purged: int
    """Stored outgoing payloads about the person that were emptied."""
    undelivered_dropped: int
    """Of those, messages not yet delivered, now dropped."""


def _office(gateway: Any) -> PrivacyOffice:
    return PrivacyOffice.for_gateway(gateway)


@router.post("/disclosure-report", summary="Everything audited about one person (GDPR art. 15)")
async def disclosure_report(body: DisclosureReportIn, officer: ReportingOfficerDep, gateway: GatewayDep,
                            request_id: RequestIdDep, format: Format = "json") -> Any:
    lines, integrity = await _office(gateway).disclosure_report(body.identifier, body.since, body.until,
                                                                officer, request_id)
    rows = [asdict(line) for line in lines]
    if format == "csv":
        return PlainTextResponse(to_csv(rows, integrity), media_type="text/csv")
    return {"integrity": asdict(integrity), "events": rows}


@router.get("/records-of-processing", summary="Records of processing (GDPR art. 30) from the flow registry")
async def records_of_processing(officer: ReportingOfficerDep, gateway: GatewayDep, request_id: RequestIdDep,
                                format: Format = "json") -> Any:
    office = _office(gateway)
    await office.audit_query("records-of-processing", officer, request_id)
    rows, integrity = office.records_of_processing(officer), await office.integrity()
    if format == "csv":
        return PlainTextResponse(to_csv(rows, integrity), media_type="text/csv")
    return {"integrity": asdict(integrity), "records": rows}


@router.get("/review-queue", summary="Denials, drops at delivery and emergency overrides to review, newest first")
async def review_queue(officer: ReportingOfficerDep, gateway: GatewayDep, request_id: RequestIdDep,
                       format: Format = "json", limit: Annotated[int, Query(ge=1, le=5000)] = 500,
                       status: Annotated[Literal["open", "reviewed", "all"], Query()] = "open") -> Any:
    office = _office(gateway)
    reviewed = {"open": False, "reviewed": True, "all": None}[status]
    queue = await office.review_queue(officer, request_id, limit, reviewed)
    integrity = await office.integrity()
    if format == "csv":
        return PlainTextResponse(to_csv(queue, integrity), media_type="text/csv")
    return {"integrity": asdict(integrity), "queue": queue}


class ReviewIn(BaseModel):
    """How the privacy officer closes a review item: ``confirmed`` (the decision stands) or ``escalated``
    (it needs follow-up outside the gateway)."""

    model_config = ConfigDict(extra="forbid")
    resolution: Literal["confirmed", "escalated"]


@router.post("/review-queue/{audit_index}", status_code=204, summary="Close a review item with a resolution")
async def close_review(audit_index: Annotated[int, Path(ge=0, le=INDEX_MAX)], body: ReviewIn,
                       officer: ReportingOfficerDep, gateway: GatewayDep, request_id: RequestIdDep) -> None:
    await _office(gateway).close_review(audit_index, body.resolution, officer, request_id)


class ConsentHistoryIn(BaseModel):
    """Whose consents: a codice fiscale, STP or ENI code."""

    model_config = ConfigDict(extra="forbid")
    identifier: str


@router.post("/consent-history", summary="Every version of every consent of one person, with the notice text shown")
async def consent_history(body: ConsentHistoryIn, officer: ReportingOfficerDep, gateway: GatewayDep,
                          request_id: RequestIdDep, format: Format = "json") -> Any:
    office = _office(gateway)
    history = await office.consent_history(body.identifier, officer, request_id)
    integrity = await office.integrity()
    if format == "csv":
        return PlainTextResponse(to_csv([{k: v for k, v in h.items() if k != "record"} for h in history], integrity),
                                 media_type="text/csv")
    return {"integrity": asdict(integrity), "versions": history}


@router.post("/subjects/erasure", response_model=ErasureRequestOut, status_code=202,
             summary="Request the erasure of one person (GDPR art. 17); a different officer must approve it")
async def request_erasure(body: ErasureIn, officer: ErasingOfficerDep, gateway: GatewayDep,
                          request_id: RequestIdDep) -> ErasureRequestOut:
    window = timedelta(seconds=gateway.settings.erasure_approval_window_seconds)
    pending = await _office(gateway).request_erasure(body.identifier, officer, request_id, window)
    return ErasureRequestOut(request_index=pending.request_index, expires_at=pending.expires_at)


@router.post("/subjects/erasure/{request_index}/approval", response_model=ErasureOut,
             summary="Approve another officer's erasure request: crypto-shredding, audited, irreversible")
async def approve_erasure(request_index: Annotated[int, Path(ge=0, le=INDEX_MAX)], body: ErasureIn,
                          officer: ErasingOfficerDep, gateway: GatewayDep, request_id: RequestIdDep) -> ErasureOut:
    window = timedelta(seconds=gateway.settings.erasure_approval_window_seconds)
    result = await _office(gateway).approve_erasure(request_index, body.identifier, officer, request_id, window)
    return ErasureOut(**asdict(result))
