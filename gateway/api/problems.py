"""RFC 7807 problem+json responses for every error the HTTP API can return."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.auth import AuthError
from gateway.errors import PROBLEM_BASE, GatewayError
from gateway.logging import get_logger

__all__ = ["install_problem_handlers", "problem_response"]

log = get_logger(__name__)
MEDIA_TYPE = "application/problem+json"


def problem_response(status: int, slug: str, title: str, detail: str, request: Request,
                     extra: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    request_id = getattr(request.state, "request_id", None)
    if request_id:
        body["request_id"] = request_id
    body.update(extra or {})
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


async def _gateway_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, GatewayError)
    log.info("request-refused", problem_type=exc.slug, status_code=exc.status_code)
    extra = {"problems": [p.as_dict() for p in exc.problems]} if exc.problems else None
    headers = {"Retry-After": "5"} if exc.retriable else None
    return problem_response(exc.status_code, exc.slug, exc.title, exc.detail, request, extra, headers)


async def _auth_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AuthError)
    log.info("request-unauthenticated", problem_type=exc.code, status_code=exc.status_code)
    return problem_response(exc.status_code, exc.code, exc.title, exc.detail, request,
                            headers={"WWW-Authenticate": exc.www_authenticate(), "Cache-Control": "no-store"})


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


