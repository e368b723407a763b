"""The console's way to the privacy office: the signed-in officer, turned into the
:class:`gateway.privacy_office.Officer` the API's answers are scoped and audited by, and the office itself."""

from __future__ import annotations

from fastapi import Request

from gateway.console.sessions import ConsoleSession, as_privacy_officer
from gateway.privacy_office import Officer, PrivacyOffice

__all__ = ["office_for", "request_id"]


def office_for(request: Request, session: ConsoleSession) -> tuple[PrivacyOffice, Officer]:
    gateway = request.app.state.gateway
    return PrivacyOffice.for_gateway(gateway), as_privacy_officer(session.officer, gateway.settings, session.ref)


def request_id(request: Request) -> str:
    return str(request.state.request_id)
