"""Records of processing (GDPR art. 30), one per declared flow, from the flow registry through
:meth:`gateway.privacy.office.PrivacyOffice.records_of_processing` (an officer outside the data protection
office sees the flows their organisation sends or receives), with CSV and JSON exports. Audited."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from gateway.console.office import office_for, request_id
from gateway.console.rendering import render
from gateway.console.sessions import ConsoleSession, current_session
from gateway.privacy.reports import to_csv

__all__ = ["router"]

router = APIRouter()


@router.get("/records", summary="Records of processing (art. 30)")
async def records(request: Request, session: Annotated[ConsoleSession, Depends(current_session)],
                  format: str = "html") -> Response:
    office, officer = office_for(request, session)
    await office.audit_query("records-of-processing", officer, request_id(request))
    rows = office.records_of_processing(officer)
    if format == "csv":
        return Response(to_csv(rows, await office.integrity()), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="records-of-processing.csv"'})
    if format == "json":
        body = {"integrity": asdict(await office.integrity()), "records": rows}
        return Response(json.dumps(body, ensure_ascii=False, indent=2), media_type="application/json",
                        headers={"Content-Disposition": 'attachment; filename="records-of-processing.json"'})
    return render(request, "records.html", {"records": rows}, page="records")
