"""Signing in and out of the console with a local officer account, and the language switch.

``GET /console/login`` shows the form (username, password, TOTP code) and any other ways in the deployment
offers (``app.state.console_sign_in_options``: (label message key or text, path) pairs, e.g. an OpenID Connect
provider). ``POST /console/login`` checks the account (:mod:`gateway.console.accounts`) and hands over to
:func:`gateway.console.sessions.start_session`; a failure is audited with a coded reason and answered with
one message that does not say which part was wrong. The form carries a CSRF token bound to a short-lived cookie
(there is no session yet to hold it). ``POST /console/logout`` ends the session; an officer signed in through
OpenID Connect is sent on to ``await app.state.console_logout_redirect(request, officer)`` (the provider's
sign-out, :mod:`gateway.console.oidc`) when the deployment sets it.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from gateway.console.accounts import AddressThrottle, check_sign_in
from gateway.console.i18n import LANGUAGE_COOKIE, LANGUAGES
from gateway.console.rendering import render
from gateway.console.sessions import (
    COOKIE_PATH,
    LOGIN_PAGE,
    ConsoleOfficer,
    ConsoleSession,
    clear_session_cookie,
    csrf_checked,
    end_session,
    record_failed_sign_in,
    start_session,
)

__all__ = ["router"]

router = APIRouter()
_LOGIN_CSRF_COOKIE = "console_login_csrf"
_FIELD_MAX = 256


def _throttle(request: Request) -> AddressThrottle:
    throttle: AddressThrottle | None = getattr(request.app.state, "console_throttle", None)
    if throttle is None:
        throttle = request.app.state.console_throttle = AddressThrottle(request.app.state.gateway.settings)
    return throttle


def _login_page(request: Request, error: str | None = None, status_code: int = 200) -> Response:
    token = secrets.token_urlsafe(32)
    response = render(request, "login.html", {"csrf_token": token, "error": error}, status_code, page="login")
    response.set_cookie(_LOGIN_CSRF_COOKIE, token, path=COOKIE_PATH, httponly=True, samesite="strict",
                        secure=not request.app.state.gateway.settings.console_plain_http, max_age=1800)
    return response


@router.get("/login", summary="Sign-in page")
async def login_page(request: Request) -> Response:
    return _login_page(request)


@router.post("/login", summary="Sign in with a local officer account")
async def login(request: Request) -> Response:
    form = await request.form()
    fields = {name: str(form.get(name) or "")[:_FIELD_MAX] for name in ("username", "password", "code",
                                                                      "csrf_token")}
    expected = request.cookies.get(_LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(fields["csrf_token"].encode(), expected.encode()):
        await record_failed_sign_in(request, "local", "csrf-refused")
        return _login_page(request, "login.error.expired", 403)
    address = request.client.host if request.client else "unknown"
    throttle = _throttle(request)
    if throttle.locked_out(address):
        await record_failed_sign_in(request, "local", "locked-out")
        return _login_page(request, "login.error.locked", 429)
    gateway = request.app.state.gateway
    outcome, account = await check_sign_in(gateway.store, gateway.settings, fields["username"].strip(),
                                           fields["password"], fields["code"], datetime.now(UTC))
    if account is None:
        throttle.failed(address)
        await record_failed_sign_in(request, "local", outcome)
        if outcome == "locked-out":
            return _login_page(request, "login.error.locked", 429)
        return _login_page(request, "login.error.invalid", 401)
    response = await start_session(request, ConsoleOfficer(
        subject=f"local:{account.username}", display_name=account.display_name,
        organisation=account.organisation, roles=account.roles, sign_in_method="local"))
    response.delete_cookie(_LOGIN_CSRF_COOKIE, path=COOKIE_PATH)
    return response


@router.post("/logout", summary="Sign out")
async def logout(request: Request, _session: Annotated[ConsoleSession, Depends(csrf_checked)]) -> Response:
    officer = await end_session(request)
    target = LOGIN_PAGE
    provider_logout = getattr(request.app.state, "console_logout_redirect", None)
    if officer is not None and officer.sign_in_method == "oidc" and provider_logout is not None:
        target = await provider_logout(request, officer) or LOGIN_PAGE
    response = RedirectResponse(target, status_code=303)
    clear_session_cookie(request, response)
    return response


@router.get("/language/{lang}", summary="Switch the console's language")
async def switch_language(request: Request, lang: str, next: str = "/console/") -> Response:
    if not next.startswith("/console/") or "//" in next or "\\" in next:
        next = "/console/"
    response = RedirectResponse(next, status_code=303)
    if lang in LANGUAGES:
        response.set_cookie(LANGUAGE_COOKIE, lang, path=COOKIE_PATH, samesite="strict", max_age=365 * 86_400,
                            secure=not request.app.state.gateway.settings.console_plain_http)
    return response
