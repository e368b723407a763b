"""Partner messages over HTTP: submit, follow status by message or correlation id, read the inbox."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from gateway.api.deps import INDEX_MAX, GatewayDep, IdInPath, PartnerDep, PrincipalDep, RawBodyDep, RequestIdDep
from gateway.api.models import InboxMessageOut, InboxOut, StatusOut
from gateway.contracts.kit import preview
from gateway.errors import NotFound
from gateway.pipeline.intake import Submission
from gateway.trace_context import trace_id_of

router = APIRouter(prefix="/v1/partners/{partner}", tags=["messages"])


@router.post("/messages", status_code=202, response_model=list[StatusOut],
             summary="Submit a message in the partner's native format")
async def submit(request: Request, partner: PartnerDep, principal: PrincipalDep, body: RawBodyDep,
                 gateway: GatewayDep, request_id: RequestIdDep) -> JSONResponse:
    principal.require("messages:submit")
    statuses = await gateway.intake.submit(
        Submission(sender=partner, sender_role=principal.role, raw=body,
                   content_type=request.headers.get("content-type", ""), request_id=request_id,
                   client_id=principal.client_id, token_id=principal.token_id,
                   trace_id=trace_id_of(request.headers.get("traceparent")),
                   traceparent=request.headers.get("traceparent"))
    )
    return JSONResponse([StatusOut.of(s).model_dump(mode="json") for s in statuses], status_code=202)


@router.post("/messages/dry-run", summary="What the gateway would do with a message; nothing is forwarded")
async def dry_run(request: Request, partner: PartnerDep, principal: PrincipalDep, body: RawBodyDep,
                  gateway: GatewayDep, request_id: RequestIdDep) -> dict[str, Any]:
    """Decode the message as :func:`submit` would and preview, per recipient, the flow, the fields that would
    cross, be tokenised or be dropped, and whether consent would be needed — without storing, forwarding or
    auditing anything, and without saying whether a consent exists. Invalid messages get the same
    problem+json as on submit."""
    principal.require("messages:submit")
    envelopes = gateway.intake.decode(
        Submission(sender=partner, sender_role=principal.role, raw=body,
                   content_type=request.headers.get("content-type", ""), request_id=request_id)
    )
    return {"messages": [
        {"message_id": e.message_id, "message_type": e.message_type, "purpose": e.purpose,
         "recipients": [asdict(p) for p in preview(e, gateway.registry)]}
        for e in envelopes
    ]}


@router.get("/messages/{message_id}", response_model=StatusOut, summary="Status of one message")
async def message_status(message_id: IdInPath, partner: PartnerDep, principal: PrincipalDep,
                         gateway: GatewayDep) -> StatusOut:
    principal.require("status:read")
    async with gateway.store.transaction() as tx:
        status = await tx.message(partner, message_id)
    if status is None:
        raise NotFound("your organisation sent no message with this id")
    return StatusOut.of(status)


@router.get("/correlations/{correlation_id}", response_model=list[StatusOut],
            summary="Every message of a referral, by correlation id")
async def correlation(correlation_id: IdInPath, partner: PartnerDep, principal: PrincipalDep,
                      gateway: GatewayDep) -> list[StatusOut]:
    principal.require("status:read")
    async with gateway.store.transaction() as tx:
        statuses = await tx.messages_by_correlation(partner, correlation_id)
    if not statuses:
        raise NotFound("your organisation sent no message with this correlation id")
    return [StatusOut.of(s) for s in statuses]


@router.post("/notices/{notice_id}/ack", status_code=204, summary="Acknowledge an art. 19 restriction notice")
async def acknowledge_notice(notice_id: IdInPath, partner: PartnerDep, principal: PrincipalDep, gateway: GatewayDep,
                             request_id: RequestIdDep) -> None:
    principal.require("inbox:read")
    await gateway.consents.acknowledge_notice(notice_id, partner, principal.client_id, request_id)


@router.get("/inbox", response_model=InboxOut, summary="Messages delivered to the partner, oldest first")
async def inbox(partner: PartnerDep, principal: PrincipalDep, gateway: GatewayDep,
                after: Annotated[int, Query(ge=0, le=INDEX_MAX)] = 0,
                limit: Annotated[int, Query(ge=1, le=500)] = 100) -> InboxOut:
    principal.require("inbox:read")
    async with gateway.store.transaction() as tx:
        rows = await tx.inbox(partner, after, limit)
    messages = [
        InboxMessageOut(cursor=r.id or 0, topic=r.topic, message_id=r.message_id, headers=dict(r.headers),
                        body=orjson.loads(r.value))
        for r in rows
    ]
    return InboxOut(messages=messages, next_after=messages[-1].cursor if messages else after)
