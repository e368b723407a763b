"""Erasure (GDPR art. 17) by two officers, as the API does it: one officer requests it
(:meth:`gateway.privacy.office.PrivacyOffice.request_erasure`, which changes nothing), a different one approves
it within ``GATEWAY_ERASURE_APPROVAL_WINDOW_SECONDS`` naming the same person
(:meth:`~gateway.privacy.office.PrivacyOffice.approve_erasure`). Both steps need the ``erasure-officer`` console
role and pass through a confirmation page that names what will be destroyed; the identifier travels only in
POST bodies. Both are audited."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from gateway.console.office import ERASURE_ROLE, office_for, request_id
from gateway.console.rendering import render
from gateway.console.sessions import ConsoleSession, csrf_checked, current_session
from gateway.errors import GatewayError, InputError, NotFound, NotPermitted

__all__ = ["router"]

router = APIRouter()


def _window(request: Request) -> timedelta:
    return timedelta(seconds=request.app.state.gateway.settings.erasure_approval_window_seconds)


@router.get("/erasure", summary="Erasure: request or approve")
async def erasure_page(request: Request, session: Annotated[ConsoleSession, Depends(current_session)]) -> Response:
    office_for(request, session, ERASURE_ROLE)
    return render(request, "erasure.html", {}, page="erasure")


@router.post("/erasure", summary="Request or approve an erasure, after a confirmation")
async def erasure(request: Request, session: Annotated[ConsoleSession, Depends(csrf_checked)]) -> Response:
    office, officer = office_for(request, session, ERASURE_ROLE)
    form = await request.form()
    identifier = str(form.get("identifier") or "").strip()[:64]
    step = str(form.get("step") or "request")
    raw_index = str(form.get("request_index") or "").strip()
    confirmed = form.get("confirm") == "yes"
    index = int(raw_index) if raw_index.isdigit() and len(raw_index) < 19 else None
    context = {"identifier": identifier, "step": step, "request_index": index}
    if not identifier or (step == "approve" and index is None):
        return render(request, "erasure.html", {**context, "error": "erasure.error.missing"}, 422, page="erasure")
    if not confirmed:
        return render(request, "erasure_confirm.html", context, page="erasure")
    try:
        if step == "approve" and index is not None:
            result = await office.approve_erasure(index, identifier, officer, request_id(request), _window(request))
            return render(request, "erasure.html", {"done": result}, page="erasure")
        pending = await office.request_erasure(identifier, officer, request_id(request), _window(request))
        return render(request, "erasure.html", {"pending": pending}, page="erasure")
    except InputError:
        return render(request, "erasure.html", {"error": "person.error.identifier"}, 422, page="erasure")
    except NotPermitted:
        return render(request, "erasure.html", {"error": "erasure.error.same_officer"}, 403, page="erasure")
    except NotFound:
        return render(request, "erasure.html", {"error": "erasure.error.no_request"}, 404, page="erasure")
    except GatewayError as exc:
        return render(request, "erasure.html", {"error": "erasure.error.conflict", "detail": exc.detail}, 409,
                      page="erasure")
