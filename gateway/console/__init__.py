"""The privacy officers' console: server-rendered pages under ``/console`` on the gateway's HTTP API, built on
the same privacy office, scoping and audit as the privacy-officer API (``docs/console.md``).

:func:`mount_console` adds it to the FastAPI app. Sign-in ends in :mod:`gateway.console.sessions`, whatever the
method (local officer accounts here, OpenID Connect elsewhere).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

__all__ = ["CONSOLE_PREFIX", "mount_console"]

CONSOLE_PREFIX = "/console"


def mount_console(app: FastAPI) -> None:
    """Add the console's pages, its static files and its answers to an unsigned or forged request."""
    # imported here: the pages use the audit API's functions, whose package imports this one
    from gateway.console import audit_log, erasure, home, oidc, person, records, review, sign_in
    from gateway.console.office import RoleMissing
    from gateway.console.rendering import render
    from gateway.console.sessions import CsrfRefused, SignInRequired, sign_in_required_answer

    router = APIRouter(prefix=CONSOLE_PREFIX, include_in_schema=False)
    for module in (sign_in, oidc, home, person, review, audit_log, records, erasure):
        router.include_router(module.router)
    app.include_router(router)
    app.mount(f"{CONSOLE_PREFIX}/static", StaticFiles(directory=Path(__file__).parent / "static"),
              name="console-static")

    async def sign_in_required(request: Request, _exc: Exception) -> Response:
        return sign_in_required_answer(request)

    async def csrf_refused(request: Request, _exc: Exception) -> Response:
        return render(request, "error.html", {"message": "error.csrf"}, status_code=403)

    async def role_missing(request: Request, _exc: Exception) -> Response:
        return render(request, "error.html", {"message": "error.forbidden"}, status_code=403)

    app.add_exception_handler(SignInRequired, sign_in_required)
    app.add_exception_handler(RoleMissing, role_missing)
    app.add_exception_handler(CsrfRefused, csrf_refused)
