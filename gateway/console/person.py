"""Art. 15 for one person: the officer types a codice fiscale, STP or ENI code into a form (POST), and the answer
is that POST's own page (no redirect), so the identifier never appears in a URL, a log line or the browser's
history. It lists every disclosure (when, to whom, which flow, purpose, legal basis, which fields crossed), every
decision and drop about the person, and every consent with its versions, from
:meth:`gateway.privacy.office.PrivacyOffice.disclosure_report` and :meth:`~gateway.privacy.office.PrivacyOffice.
consent_history` (the officer's organisation scoping, a ``privacy-query`` audit record per read).

Downloads are POSTs too (the identifier travels in the body): CSV, JSON, and a printable report in Italian naming
the controller and the data protection contact (``GATEWAY_CONTROLLER_NAME``, ``GATEWAY_DPO_CONTACT``), laid out
for paper by the print stylesheet. ``POST /console/consent`` shows one consent's versions as a timeline.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from gateway.console.i18n import translator
from gateway.console.office import office_for, request_id
from gateway.console.rendering import render
from gateway.console.sessions import ConsoleSession, csrf_checked, current_session
from gateway.errors import InputError
from gateway.privacy.reports import to_csv

__all__ = ["router"]

router = APIRouter()
_DOWNLOAD_HEADERS = {"Cache-Control": "no-store"}


async def _identifier(request: Request) -> str:
    form = await request.form()
    return str(form.get("identifier") or "").strip()[:64]


async def _answer(request: Request, session: ConsoleSession, identifier: str) -> dict[str, Any]:
    office, officer = office_for(request, session)
    rid = request_id(request)
    lines, integrity = await office.disclosure_report(identifier, None, None, officer, rid)
    consents = await office.consent_history(identifier, officer, rid)
    by_consent: dict[str, list[dict[str, Any]]] = {}
    for version in consents:
        by_consent.setdefault(version["consent_ref"].split("@")[0], []).append(version)
    return {"identifier": identifier, "integrity": integrity,
            "disclosures": [line for line in lines if line.event_type == "disclosure"],
            "decisions": [line for line in lines if line.event_type != "disclosure"],
            "consents": by_consent, "consent_versions": consents}


@router.get("/person", summary="Art. 15 search form")
async def person_form(request: Request, _session: Annotated[ConsoleSession, Depends(current_session)]) -> Response:
    return render(request, "person.html", {}, page="person")


@router.post("/person", summary="Everything about one person (art. 15)")
async def person(request: Request, session: Annotated[ConsoleSession, Depends(csrf_checked)]) -> Response:
    identifier = await _identifier(request)
    try:
        found = await _answer(request, session, identifier)
    except InputError:
        return render(request, "person.html", {"error": "person.error.identifier"}, 422, page="person")
    return render(request, "person.html", found, page="person")


@router.post("/person/export", summary="The art. 15 answer as CSV, JSON or a printable report")
async def person_export(request: Request, session: Annotated[ConsoleSession, Depends(csrf_checked)]) -> Response:
    identifier = await _identifier(request)
    wanted = str((await request.form()).get("format") or "report")
    try:
        found = await _answer(request, session, identifier)
    except InputError:
        return render(request, "person.html", {"error": "person.error.identifier"}, 422, page="person")
    if wanted == "csv":
        rows = [asdict(line) for line in (*found["disclosures"], *found["decisions"])]
        return Response(to_csv(rows, found["integrity"]), media_type="text/csv; charset=utf-8",
                        headers={**_DOWNLOAD_HEADERS, "Content-Disposition": 'attachment; filename="art15.csv"'})
    if wanted == "json":
        body = {"integrity": asdict(found["integrity"]),
                "disclosures": [asdict(line) for line in found["disclosures"]],
                "decisions": [asdict(line) for line in found["decisions"]],
                "consents": found["consent_versions"]}
        return Response(json.dumps(body, ensure_ascii=False, indent=2), media_type="application/json",
                        headers={**_DOWNLOAD_HEADERS, "Content-Disposition": 'attachment; filename="art15.json"'})
    settings = request.app.state.gateway.settings
    partners = request.app.state.gateway.registry.partners
    return render(request, "report.html", {
        **found, "t": translator("it"), "lang": "it", "controller": settings.controller_name,
        "dpo_contact": settings.dpo_contact,
        "produced_at": datetime.now(UTC).strftime("%d/%m/%Y %H:%M"), "partners": partners,
        "requesting": partners[session.officer.organisation].name if session.officer.organisation in partners
        else session.officer.organisation}, page="person")


@router.post("/consent", summary="One consent's versions as a timeline")
async def consent_timeline(request: Request, session: Annotated[ConsoleSession, Depends(csrf_checked)]) -> Response:
    identifier = await _identifier(request)
    consent_id = str((await request.form()).get("consent_id") or "")[:128]
    office, officer = office_for(request, session)
    try:
        history = await office.consent_history(identifier, officer, request_id(request))
    except InputError:
        return render(request, "person.html", {"error": "person.error.identifier"}, 422, page="person")
    versions = [v for v in history if v["consent_ref"].split("@")[0] == consent_id]
    return render(request, "consent.html", {"consent_id": consent_id, "versions": versions,
                                            "identifier": identifier}, page="person")
