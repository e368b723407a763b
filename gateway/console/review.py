"""The review queue: denials, drops at delivery and emergency-override decisions the officer's organisation is
party to (:meth:`gateway.privacy.office.PrivacyOffice.review_queue`), filtered by flow, kind and state; one item
opened with its audit record; closed as confirmed or escalated with a comment (kept with the item, never in the
log). Reads and closes are audited as the API's are."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import RedirectResponse, Response

from gateway.console.office import office_for, request_id
from gateway.console.rendering import render
from gateway.console.sessions import ConsoleSession, csrf_checked, current_session
from gateway.errors import NotFound

__all__ = ["router"]

router = APIRouter()
KINDS = ("denial", "drop-at-delivery", "emergency")
STATES = {"open": False, "reviewed": True, "all": None}
INDEX = Annotated[int, Path(ge=0, le=2**63 - 1)]


@router.get("/review", summary="The review queue")
async def review_queue(request: Request, session: Annotated[ConsoleSession, Depends(current_session)],
                       flow: str = "", kind: str = "", state: str = "open") -> Response:
    office, officer = office_for(request, session)
    state = state if state in STATES else "open"
    queue = await office.review_queue(officer, request_id(request), limit=500, reviewed=STATES[state])
    flows = sorted({item["flow_id"] for item in queue if item["flow_id"]})
    shown = [item for item in queue if (not flow or item["flow_id"] == flow) and (not kind or item["kind"] == kind)]
    context = {"queue": shown, "flows": flows, "kinds": KINDS, "states": tuple(STATES), "flow": flow, "kind": kind,
               "state": state}
    if request.headers.get("hx-request") and request.headers.get("hx-target") == "queue":
        return render(request, "_review_table.html", context)
    return render(request, "review.html", context, page="review")


@router.get("/review/{index}", summary="One review item with its audit record")
async def review_item(request: Request, index: INDEX,
                      session: Annotated[ConsoleSession, Depends(current_session)]) -> Response:
    office, officer = office_for(request, session)
    try:
        record, _, item = await office.audit_record(index, officer, request_id(request))
    except NotFound:
        return render(request, "error.html", {"message": "error.not_found"}, 404, page="review")
    return render(request, "review_item.html", {"index": index, "record": record, "item": item}, page="review")


@router.post("/review/{index}", summary="Close a review item")
async def close_review_item(request: Request, index: INDEX,
                            session: Annotated[ConsoleSession, Depends(csrf_checked)]) -> Response:
    office, officer = office_for(request, session)
    form = await request.form()
    resolution = str(form.get("resolution") or "")
    comment = str(form.get("comment") or "").strip()[:2000] or None
    if resolution not in ("confirmed", "escalated"):
        return render(request, "error.html", {"message": "review.error.resolution"}, 422, page="review")
    try:
        await office.close_review(index, resolution, officer, request_id(request), comment)
    except NotFound:
        return render(request, "error.html", {"message": "error.not_found"}, 404, page="review")
    return RedirectResponse(f"/console/review/{index}?closed=1", status_code=303)
