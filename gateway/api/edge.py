"""The HTTP edge: what every request meets before a route reads it, and every answer before it leaves.

:class:`EdgeGuard` (innermost of the two) protects the gateway from bodies it never asked for:

* a body larger than ``GATEWAY_MAX_BODY_BYTES`` is refused with 413 while it streams in (a declared
  ``Content-Length`` is refused before a byte is read), on every route;
* a request that carries a body to anything but the token endpoint or the privacy officers' console must
  present a valid bearer token of a client still enabled first: without one it gets 401 and its body is never
  read or parsed (the console's forms are authenticated by its session and CSRF token instead,
  :mod:`gateway.console.sessions`);
* a JSON body nesting deeper than ``GATEWAY_MAX_JSON_DEPTH`` or repeating a member name is refused (400,
  with the pointer) before any parser keeps the last of two members (:mod:`gateway.strict_json`);
* the consent, privacy and notice routes take JSON only: another media type gets 415.

:class:`SecurityHeaders` (outermost) adds to every answer ``X-Content-Type-Options: nosniff``, a
Content-Security-Policy that forbids framing, and ``Cache-Control: no-store`` unless a route chose
otherwise: answers carry personal data (reports, CSV, inbox, consents) and no cache may keep them.

Both are plain ASGI middleware: they see the byte stream, not a parsed request.
"""

from __future__ import annotations

import re
from typing import Final

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api.problems import auth_problem, problem_response
from gateway.auth import AuthError
from gateway.errors import MalformedMessage, PayloadTooLarge, UnsupportedMediaType
from gateway.strict_json import check_strict_json
from schemas.errors import DecodeError, FieldProblem

__all__ = ["API_CSP", "CONSOLE_CSP", "DOCS_CSP", "EdgeGuard", "SecurityHeaders"]

_PUBLIC_WITH_BODY: Final = frozenset({"/oauth/token"})
"""Routes that take a body from a caller without a bearer token (the client authenticates in the body)."""
_JSON_ONLY: Final = re.compile(r"^/v1/(consents|privacy)(/|$)|^/v1/partners/[^/]+/notices/")
_JSON_MEDIA: Final = re.compile(r"^application/([a-z0-9.+-]+\+)?json$")

API_CSP: Final = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
DOCS_CSP: Final = ("default-src 'none'; frame-ancestors 'none'; base-uri 'none'; img-src 'self' data: "
                   "https://fastapi.tiangolo.com; style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
                   "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; connect-src 'self'")
"""The interactive documentation pages (served in demo deployments only) load Swagger UI and ReDoc."""
_DOCS: Final = frozenset({"/docs", "/redoc", "/docs/oauth2-redirect"})
CONSOLE_PREFIX: Final = "/console"
CONSOLE_CSP: Final = ("default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; "
                      "script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'")
"""The privacy officers' console: its own scripts, styles and forms only; no inline script or style."""


def _in_console(path: str) -> bool:
    return path == CONSOLE_PREFIX or path.startswith(CONSOLE_PREFIX + "/")


def _console_csp(scope: Scope) -> str:
    """The console's policy: ``app.state.console_csp`` when the deployment set one (single sign-on lets the sign-out
    form lead on to the identity provider, :mod:`gateway.console.oidc`), else :data:`CONSOLE_CSP`."""
    policy = getattr(getattr(scope.get("app"), "state", None), "console_csp", None)
    return policy if isinstance(policy, str) else CONSOLE_CSP


def _media_type(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return str(value.decode("latin-1")).split(";", 1)[0].strip().lower()
    return ""


def _header(scope: Scope, wanted: bytes) -> str | None:
    for name, value in scope["headers"]:
        if name == wanted:
            return str(value.decode("latin-1"))
    return None


class EdgeGuard:
    """Size, authentication-first and strict-JSON checks before any route reads a body (module docs)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        gateway = scope["app"].state.gateway
        settings = gateway.settings
        request = Request(scope)
        limit: int = settings.max_body_bytes
        declared = _header(scope, b"content-length")
        if declared is not None and not declared.isdigit():
            await self._refuse(MalformedMessage("Content-Length must be a number of bytes"), request, send)
            return
        if declared is not None and int(declared) > limit:
            await self._refuse(PayloadTooLarge(f"the body may be at most {limit} bytes"), request, send)
            return
        carries_body = (declared not in (None, "0")) or _header(scope, b"transfer-encoding") is not None
        if not carries_body:
            await self.app(scope, _counted(receive, limit), send)
            return
        if scope["path"] not in _PUBLIC_WITH_BODY and not _in_console(scope["path"]):
            try:
                await gateway.authenticate(_header(scope, b"authorization"))
            except AuthError as exc:
                await auth_problem(request, exc)(scope, receive, send)
                return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > limit:
                await self._refuse(PayloadTooLarge(f"the body may be at most {limit} bytes"), request, send)
                return
        media_type = _media_type(scope)
        if body and _JSON_ONLY.match(scope["path"]) and not _JSON_MEDIA.match(media_type):
            await self._refuse(UnsupportedMediaType(
                "this route takes JSON: send Content-Type application/json (consents: application/fhir+json)",
                [FieldProblem("", "media-type", "use application/json or application/fhir+json")]), request, send)
            return
        if body and ("json" in media_type or not media_type):
            try:
                check_strict_json(bytes(body), settings.max_json_depth)
            except DecodeError as exc:
                await self._refuse(MalformedMessage(exc.detail, exc.problems), request, send)
                return
        await self.app(scope, _replay(bytes(body), receive), send)

    @staticmethod
    async def _refuse(error: PayloadTooLarge | MalformedMessage | UnsupportedMediaType, request: Request,
                      send: Send) -> None:
        extra = {"problems": [p.as_dict() for p in error.problems]} if error.problems else None
        response = problem_response(error.status_code, error.slug, error.title, error.detail, request, extra)
        await response(request.scope, _no_body, send)


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the already read body once, then waits on the real one (disconnects)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _counted(receive: Receive, limit: int) -> Receive:
    """A ``receive`` that refuses a body the request did not announce, should one arrive anyway."""
    size = 0

    async def counted() -> Message:
        nonlocal size
        message = await receive()
        size += len(message.get("body", b""))
        if size > limit:
            raise PayloadTooLarge(f"the body may be at most {limit} bytes")
        return message

    return counted


class SecurityHeaders:
    """Headers every answer carries (module docs)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        csp = (DOCS_CSP if path in _DOCS else _console_csp(scope) if _in_console(path) else API_CSP).encode()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"server"]
                present = {k.lower() for k, _ in headers}
                for name, value in ((b"x-content-type-options", b"nosniff"), (b"content-security-policy", csp),
                                    (b"cache-control", b"no-store"), (b"referrer-policy", b"no-referrer"),
                                    (b"x-frame-options", b"DENY")):
                    if name not in present:
                        headers.append((name, value))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
