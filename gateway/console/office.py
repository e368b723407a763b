"""The console's way to the privacy office: the signed-in officer, turned into the
:class:`gateway.privacy.officer.Officer` the API's answers are scoped and audited by, and the office itself.

Every console page goes through :func:`office_for`, which also checks the console role the page needs
(``privacy-officer`` for every page, ``erasure-officer`` as well for erasure), as the API checks its scopes.
"""

from __future__ import annotations

from fastapi import Request

from gateway.console.sessions import ConsoleSession, as_privacy_officer
from gateway.privacy.office import PrivacyOffice
from gateway.privacy.officer import Officer

__all__ = ["ERASURE_ROLE", "PRIVACY_ROLE", "RoleMissing", "office_for", "request_id"]

PRIVACY_ROLE = "privacy-officer"
ERASURE_ROLE = "erasure-officer"


class RoleMissing(Exception):
    """The signed-in officer lacks the console role a page needs: answered 403, nothing read or done."""


def office_for(request: Request, session: ConsoleSession,
               role: str = PRIVACY_ROLE) -> tuple[PrivacyOffice, Officer]:
    if PRIVACY_ROLE not in session.officer.roles or role not in session.officer.roles:
        raise RoleMissing(role)
    gateway = request.app.state.gateway
    return PrivacyOffice.for_gateway(gateway), as_privacy_officer(session.officer, gateway.settings, session.ref)


def request_id(request: Request) -> str:
    return str(request.state.request_id)
