"""Console sessions: who is signed in, kept on the server, named to the browser by an opaque cookie.

Whatever signed the officer in (a local account with password and TOTP, or an OpenID Connect provider) ends
in :func:`start_session`, which stores the session (the cookie's SHA-256, never the cookie), writes the
``console-session`` audit record in the same transaction and answers with the cookie set and a redirect to the
console's home. :func:`current_officer` is the dependency of every console page: the signed-in officer, or a
redirect to the sign-in page once the session is unknown, idle longer than ``GATEWAY_CONSOLE_SESSION_IDLE_SECONDS``
or older than ``GATEWAY_CONSOLE_SESSION_ABSOLUTE_SECONDS``. :func:`end_session` ends it and audits the sign-out;
:func:`record_failed_sign_in` audits a failed attempt with a coded reason and nothing the person typed.

The cookie is ``HttpOnly``, ``SameSite=Strict``, ``Path=/console`` and ``Secure`` (unless
``GATEWAY_CONSOLE_PLAIN_HTTP`` is set for a console on plain http on a developer's machine). Every form carries
the session's synchronizer token (:func:`csrf_checked` refuses a POST without it).

:func:`as_privacy_officer` turns the signed-in officer into the :class:`gateway.privacy.officer.Officer` the
privacy office answers, so the console reads through the same scoping and the same audit as the API.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import Depends, Request, Response
from fastapi.responses import RedirectResponse

from gateway.console import store as console_store
from gateway.logging import get_logger
from gateway.pipeline import ledger
from gateway.privacy.officer import Officer
from gateway.settings import GatewaySettings

if TYPE_CHECKING:
    from gateway.bootstrap import Gateway

__all__ = [
    "CONSOLE_HOME",
    "COOKIE_PATH",
    "LOGIN_PAGE",
    "SESSION_COOKIE",
    "ConsoleOfficer",
    "ConsoleSession",
    "CsrfRefused",
    "SignInRequired",
    "as_privacy_officer",
    "clear_session_cookie",
    "csrf_checked",
    "current_officer",
    "current_session",
    "end_session",
    "record_failed_sign_in",
    "start_session",
]

SESSION_COOKIE = "console_session"
COOKIE_PATH = "/console"
CONSOLE_HOME = "/console/"
LOGIN_PAGE = "/console/login"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
_TOUCH_AFTER = timedelta(seconds=15)
"""A session's last use is written at most this often (each page would otherwise be a write)."""

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ConsoleOfficer:
    """A person signed in to the console, however they signed in."""

    subject: str
    """Stable id of the person at the provider (``local:<username>`` for local accounts); never a codice fiscale."""
    display_name: str
    organisation: str
    """A partner id (aler, asst, comune, fwa, ...) or the gateway's data protection office id."""
    roles: frozenset[str]
    """Console roles, e.g. ``{"privacy-officer"}`` or ``{"privacy-officer", "erasure-officer"}``."""
    sign_in_method: Literal["local", "oidc"]
    id_token_hint: str | None = None
    """The provider's ID token, handed back at logout to end the provider's session too (OpenID Connect)."""

    def as_stored(self) -> dict[str, Any]:
        return {"subject": self.subject, "display_name": self.display_name, "organisation": self.organisation,
                "roles": sorted(self.roles), "sign_in_method": self.sign_in_method,
                "id_token_hint": self.id_token_hint}

    @classmethod
    def from_stored(cls, stored: dict[str, Any]) -> ConsoleOfficer:
        return cls(str(stored["subject"]), str(stored["display_name"]), str(stored["organisation"]),
                   frozenset(stored["roles"]), stored["sign_in_method"], stored.get("id_token_hint"))


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    """The signed-in officer with their session's audit reference and CSRF token."""

    officer: ConsoleOfficer
    ref: str
    """Names the session in audit records (``token_id``); not the cookie, which cannot be derived from it."""
    csrf_token: str
    signed_in_at: datetime


class SignInRequired(Exception):
    """No valid session: the console answers with a redirect to the sign-in page."""


class CsrfRefused(Exception):
    """A console POST without the session's synchronizer token: refused with 403, nothing done."""


def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


def _now(request: Request) -> datetime:
    clock = getattr(request.app.state, "console_clock", None)
    return clock() if clock is not None else datetime.now(UTC)


def _request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", "") or secrets.token_hex(8))


def _hash(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


def as_privacy_officer(officer: ConsoleOfficer, settings: GatewaySettings, session_ref: str | None = None) -> Officer:
    """The officer the privacy office answers: the same organisation scoping as the API (every organisation for
    the gateway's data protection office, ``GATEWAY_DATA_PROTECTION_OFFICE``), recorded in each ``privacy-query``
    audit record under the officer's subject (hashed if longer than the store's 64 characters)."""
    client_id = officer.subject if len(officer.subject) <= 64 else \
        "console:" + hashlib.sha256(officer.subject.encode()).hexdigest()[:48]
    return Officer(client_id, officer.organisation, session_ref,
                   sees_all=officer.organisation == settings.data_protection_office)


async def start_session(request: Request, officer: ConsoleOfficer) -> Response:
    """Sign ``officer`` in: a new server-side session and its ``console-session`` audit record (one
    transaction), answered with the session cookie and a redirect (303) to the console's home."""
    gateway = _gateway(request)
    settings = gateway.settings
    now = _now(request)
    cookie = secrets.token_urlsafe(32)
    stored = console_store.StoredSession(_hash(cookie), secrets.token_hex(16), officer.as_stored(),
                                         secrets.token_urlsafe(32), now, now)
    async with gateway.store.transaction() as tx:
        await console_store.delete_stale_sessions(
            tx, now - timedelta(seconds=settings.console_session_idle_seconds),
            now - timedelta(seconds=settings.console_session_absolute_seconds))
        await console_store.add_session(tx, stored)
        await tx.append_audit([ledger.console_session_record(
            "sign-in", officer.sign_in_method, settings.instance_id, _request_id(request), now,
            as_privacy_officer(officer, settings).client_id, officer.organisation, stored.ref)])
    log.info("console sign-in", method=officer.sign_in_method, organisation=officer.organisation,
             session=stored.ref)
    response = RedirectResponse(CONSOLE_HOME, status_code=303)
    response.set_cookie(SESSION_COOKIE, cookie, path=COOKIE_PATH, httponly=True, samesite="strict",
                        secure=not settings.console_plain_http, max_age=settings.console_session_absolute_seconds)
    return response


def clear_session_cookie(request: Request, response: Response) -> None:
    """Tell the browser to forget the session cookie (after :func:`end_session`)."""
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict",
                           secure=not _gateway(request).settings.console_plain_http)


async def end_session(request: Request) -> ConsoleOfficer | None:
    """End the request's session (if any) and audit the sign-out; who it was, or None if no session was open.
    The caller answers with :func:`clear_session_cookie` applied (and, for OpenID Connect, the provider's
    logout with the officer's ``id_token_hint``)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    gateway = _gateway(request)
    settings = gateway.settings
    async with gateway.store.transaction() as tx:
        stored = await console_store.session(tx, _hash(cookie))
        if stored is None or not await console_store.delete_session(tx, stored.id_hash):
            return None
        officer = ConsoleOfficer.from_stored(stored.officer)
        await tx.append_audit([ledger.console_session_record(
            "sign-out", officer.sign_in_method, settings.instance_id, _request_id(request), _now(request),
            as_privacy_officer(officer, settings).client_id, officer.organisation, stored.ref)])
    log.info("console sign-out", method=officer.sign_in_method, session=stored.ref)
    return officer


async def record_failed_sign_in(request: Request, method: str, reason: str) -> None:
    """Audit a failed sign-in: the method (``local``, ``oidc``) and a coded reason (e.g. ``bad-credentials``,
    ``locked-out``, ``provider-error``); never a username, password, code or anything else the person typed."""
    gateway = _gateway(request)
    async with gateway.store.transaction() as tx:
        await tx.append_audit([ledger.console_session_record(
            "sign-in", method, gateway.settings.instance_id, _request_id(request), _now(request),
            failure=reason)])
    log.warning("console sign-in failed", method=method, reason=reason)


async def current_session(request: Request) -> ConsoleSession:
    """The request's valid session (FastAPI dependency); :class:`SignInRequired` (a redirect to the sign-in
    page) when there is none, it idled out or it is too old, in which case it is deleted too."""
    cached: ConsoleSession | None = getattr(request.state, "console_session", None)
    if cached is not None:
        return cached
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise SignInRequired
    gateway = _gateway(request)
    settings = gateway.settings
    now = _now(request)
    async with gateway.store.transaction() as tx:
        stored = await console_store.session(tx, _hash(cookie))
        if stored is None:
            raise SignInRequired
        if (now - stored.last_seen_at > timedelta(seconds=settings.console_session_idle_seconds)
                or now - stored.created_at > timedelta(seconds=settings.console_session_absolute_seconds)):
            await console_store.delete_session(tx, stored.id_hash)
            ended = True
        else:
            ended = False
            if now - stored.last_seen_at > _TOUCH_AFTER:
                await console_store.touch_session(tx, stored.id_hash, now)
    if ended:
        log.info("console session expired", session=stored.ref)
        raise SignInRequired
    found = ConsoleSession(ConsoleOfficer.from_stored(stored.officer), stored.ref, stored.csrf_token,
                           stored.created_at)
    request.state.console_session = found
    return found


async def current_officer(session: Annotated[ConsoleSession, Depends(current_session)]) -> ConsoleOfficer:
    """The signed-in officer (FastAPI dependency), or a redirect to ``/console/login``."""
    return session.officer


async def csrf_checked(request: Request,
                       session: Annotated[ConsoleSession, Depends(current_session)]) -> ConsoleSession:
    """The session, once the POST carries its synchronizer token (form field ``csrf_token`` or header
    ``X-CSRF-Token``); :class:`CsrfRefused` otherwise."""
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not sent or not hmac.compare_digest(sent.encode(), session.csrf_token.encode()):
        log.warning("console form refused: missing or wrong CSRF token", session=session.ref)
        raise CsrfRefused
    return session


def sign_in_required_answer(request: Request) -> Response:
    """Where an unsigned request goes: the sign-in page (htmx requests are told to navigate there)."""
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": LOGIN_PAGE})
    response = RedirectResponse(LOGIN_PAGE, status_code=303)
    if request.cookies.get(SESSION_COOKIE):
        clear_session_cookie(request, response)
    return response
