"""RFC 7807 problem+json responses for every error the HTTP API can return.

``instance`` names the route template (``/v1/consents/{consent_id}``), never the path as sent: a caller
may put a codice fiscale in a path, and an error answer must not hand it back (nor carry it into logs).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from gateway.auth import AuthError
from gateway.errors import PROBLEM_BASE, GatewayError, TooManyRequests
from gateway.logging import get_logger

__all__ = ["auth_problem", "install_problem_handlers", "problem_instance", "problem_response"]

log = get_logger(__name__)
MEDIA_TYPE = "application/problem+json"
_ALWAYS: dict[str, str] = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def problem_instance(request: Request) -> str | None:
    """The template of the route ``request`` is for, matched if routing has not run yet; None for no route."""
    route = request.scope.get("route")
    if route is None and "app" in request.scope:
        scope = {**request.scope, "type": "http"}
        route = next((r for r in request.scope["app"].router.routes if r.matches(scope)[0] is Match.FULL), None)
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else None


def problem_response(status: int, slug: str, title: str, detail: str, request: Request,
                     extra: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
    instance = problem_instance(request)
    if instance is not None:
        body["instance"] = instance
    request_id = getattr(request.state, "request_id", None)
    if request_id:
        body["request_id"] = request_id
    body.update(extra or {})
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers={**_ALWAYS, **(headers or {})})


async def _gateway_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, GatewayError)
    log.info("request-refused", problem_type=exc.slug, status_code=exc.status_code)
    extra = {"problems": [p.as_dict() for p in exc.problems]} if exc.problems else None
    headers = exc.headers() if isinstance(exc, TooManyRequests) else {"Retry-After": "5"} if exc.retriable else None
    return problem_response(exc.status_code, exc.slug, exc.title, exc.detail, request, extra, headers)


def auth_problem(request: Request, exc: AuthError) -> JSONResponse:
    """The problem+json answer to a failed authentication or authorisation, logged with the peer address."""
    client = request.scope.get("client")
    log.warning("request-unauthenticated", problem_type=exc.code, status_code=exc.status_code,
                host=client[0] if client else None, path=problem_instance(request))
    return problem_response(exc.status_code, exc.code, exc.title, exc.detail, request,
                            headers={"WWW-Authenticate": exc.www_authenticate()})


async def _auth_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AuthError)
    return auth_problem(request, exc)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [
        {"pointer": "/" + "/".join(str(p) for p in e["loc"]), "rule": e["type"], "message": e["msg"]}
        for e in exc.errors()
    ]
    return problem_response(422, "request-invalid", "Request parameters are invalid",
                            "fix the listed parameters and retry", request, {"problems": problems})


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
    # Keep the exception's headers: a 405 must name the allowed methods (RFC 9110 section 15.5.6).
    return problem_response(exc.status_code, slug, str(exc.detail), str(exc.detail), request,
                            headers=dict(exc.headers) if exc.headers else None)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("request-failed", exc_info=exc)
    return problem_response(500, "internal-error", "Internal error",
                            "the gateway failed to process the request; nothing was forwarded", request)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(GatewayError, _gateway_error)
    app.add_exception_handler(AuthError, _auth_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)


