"""The console's home: the audit log's integrity at a glance, the open review items and emergency-override
alerts, and the charts of the last 30 days. Every figure comes from :class:`gateway.privacy_office.PrivacyOffice`
under the signed-in officer's organisation scoping, and each read is audited as the API's are."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from gateway.console.office import office_for, request_id
from gateway.console.rendering import render
from gateway.console.sessions import ConsoleSession, current_session

__all__ = ["router"]

router = APIRouter()


@router.get("/", summary="Console home")
async def home(request: Request, session: Annotated[ConsoleSession, Depends(current_session)]) -> Response:
    office, officer = office_for(request, session)
    queue = await office.review_queue(officer, request_id(request), limit=500, reviewed=False)
    integrity = await office.integrity()
    alerts = [item for item in queue if item["kind"] == "emergency"]
    return render(request, "home.html", {"integrity": integrity, "open_items": len(queue), "alerts": alerts[:10],
                                         "alert_count": len(alerts)}, page="home")
