"""The audit log for the officer: records newest first with keyset pagination (as fast at the millionth record
as at the first), one record with its FHIR AuditEvent and an inclusion proof to download, and the signed
checkpoints with the signing keys, current and retired.

The officer's browser checks what the server says (``static/verify.js``, WebCrypto): the latest checkpoint's
Ed25519 signature against the verifier keys, and a record's inclusion proof from the record's own bytes up to
the signed root. Every read goes through the privacy office or the audit API's own functions, under the same
scoping, and is audited as a ``privacy-query`` record.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from gateway.api.routes import audit as audit_api
from gateway.audit.fhir_export import to_fhir_audit_event
from gateway.audit.stored import StoredSigningKey
from gateway.console.office import office_for, request_id
from gateway.console.rendering import render
from gateway.console.sessions import ConsoleSession, current_session
from gateway.errors import GatewayError, NotFound

__all__ = ["router"]

router = APIRouter()
INDEX = Annotated[int, Path(ge=0, le=2**63 - 1)]
PAGE = 50
EVENT_TYPES = ("decision", "disclosure", "delivery-dropped", "consent-change", "privacy-query", "erasure",
               "retention", "token-issued", "dead-letter-replay", "console-session")


@router.get("/audit", summary="Audit log, newest first")
async def audit_log(request: Request, session: Annotated[ConsoleSession, Depends(current_session)],
                    before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None, type: str = "") -> Response:
    office, officer = office_for(request, session)
    types = (type,) if type in EVENT_TYPES else ()
    rows, next_before = await office.audit_page(officer, request_id(request), before, PAGE, types)
    return render(request, "audit.html", {"rows": rows, "next_before": next_before, "before": before,
                                          "type": type if types else "", "event_types": EVENT_TYPES}, page="audit")


async def _proof(request: Request, session: ConsoleSession, index: int) -> Any:
    """The inclusion proof of record ``index`` from the audit API's own function (latest signed size when it
    covers the record), or None when no checkpoint covers it yet."""
    _, officer = office_for(request, session)
    gateway = request.app.state.gateway
    async with gateway.store.transaction() as tx:
        latest = await tx.latest_audit_checkpoint()
    if latest is None or index >= latest.tree_size:
        return None
    return await audit_api.inclusion(officer, gateway, request_id(request), index, latest.tree_size)


async def _vkeys(request: Request, session: ConsoleSession) -> list[StoredSigningKey]:
    office, officer = office_for(request, session)
    async with request.app.state.gateway.store.transaction() as tx:
        stored: list[StoredSigningKey] = await tx.audit_signing_keys()
    await office.audit_query("read-keys", officer, request_id(request), queried_ref="audit-keys")
    return stored


@router.get("/audit/checkpoints", summary="Signed checkpoints and signing keys")
async def checkpoints(request: Request, session: Annotated[ConsoleSession, Depends(current_session)]) -> Response:
    office, officer = office_for(request, session)
    gateway = request.app.state.gateway
    async with gateway.store.transaction() as tx:
        latest = await tx.latest_audit_checkpoint()
        recent = await tx.audit_checkpoints(max(0, latest.id - 50), None) if latest else []
    await office.audit_query("read-checkpoints", officer, request_id(request), queried_ref="audit-checkpoints")
    keys = await _vkeys(request, session)
    listed = sorted(recent, key=lambda c: c.tree_size, reverse=True)[:50]
    verify = {"note": latest.note if latest else None, "vkeys": [k.to_vkey() for k in keys]}
    return render(request, "checkpoints.html", {
        "latest": latest, "checkpoints": listed, "keys": keys, "verify_json": _script_json(verify)}, page="audit")


@router.get("/audit/{index}", summary="One audit record, as FHIR AuditEvent too")
async def audit_record(request: Request, index: INDEX,
                       session: Annotated[ConsoleSession, Depends(current_session)]) -> Response:
    office, officer = office_for(request, session)
    gateway = request.app.state.gateway
    try:
        record, canonical, item = await office.audit_record(index, officer, request_id(request))
    except NotFound:
        return render(request, "error.html", {"message": "error.not_found"}, 404, page="audit")
    purposes = {code: p.v3 for code, p in gateway.registry.purposes.items()}
    event = to_fhir_audit_event(record, purposes=purposes, site=gateway.settings.audit_origin)
    proof = await _proof(request, session, index)
    keys = await _vkeys(request, session) if proof is not None else []
    verify = None if proof is None else {
        "record": canonical, "index": proof.index, "tree_size": proof.tree_size, "proof": proof.proof,
        "note": proof.checkpoint, "vkeys": [k.to_vkey() for k in keys]}
    return render(request, "audit_record.html", {
        "index": index, "record": record, "item": item, "fhir": json.dumps(event, indent=2, ensure_ascii=False),
        "verify_json": _script_json(verify) if verify else None}, page="audit")


@router.get("/audit/{index}/proof", summary="Inclusion proof of one record (JSON download)")
async def inclusion_proof(request: Request, index: INDEX,
                          session: Annotated[ConsoleSession, Depends(current_session)]) -> Response:
    office, officer = office_for(request, session)
    try:
        await office.audit_record(index, officer, request_id(request))  # scoping: as if absent when not theirs
        proof = await _proof(request, session, index)
    except (NotFound, GatewayError):
        return render(request, "error.html", {"message": "error.not_found"}, 404, page="audit")
    if proof is None:
        return render(request, "error.html", {"message": "audit.not_signed_yet"}, 404, page="audit")
    return Response(proof.model_dump_json(indent=2), media_type="application/json", headers={
        "Content-Disposition": f'attachment; filename="inclusion-proof-{index}.json"'})


def _script_json(value: Any) -> str:
    """JSON for a ``<script type="application/json">`` block: no ``</`` can end the block early."""
    return json.dumps(value).replace("</", "<\\/")
