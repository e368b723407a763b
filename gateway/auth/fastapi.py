"""Helpers for protecting FastAPI / Starlette routes with partner tokens.

Framework-light on purpose: the application decides how validators are
found and how :class:`AuthError` becomes a response. Typical wiring::

    def current_principal(request: Request) -> Principal:
        return principal_from_request(request, request.app.state.token_validator)

    @app.get("/status")
    def status(principal: Annotated[Principal, Depends(current_principal)]): ...

    app.add_exception_handler(AuthError, lambda request, exc: auth_error_response(exc))
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.auth.errors import AuthError
from gateway.auth.models import Principal
from gateway.auth.validator import TokenValidator

__all__ = ["auth_error_response", "bearer_principal_dependency", "principal_from_request"]


def principal_from_request(request: Request, validator: TokenValidator) -> Principal:
    """Validate the request's ``Authorization`` header; raise an ``AuthError`` if it fails."""
    return validator.validate(request.headers.get("authorization"))


def bearer_principal_dependency(
    validator_getter: Callable[[Request], TokenValidator],
) -> Callable[[Request], Principal]:
    """Build a FastAPI dependency returning the request's :class:`Principal`."""

    def dependency(request: Request) -> Principal:
        return principal_from_request(request, validator_getter(request))

    return dependency


def auth_error_response(error: AuthError) -> JSONResponse:
    """A JSON error response for ``error`` with the RFC 6750 ``WWW-Authenticate`` header."""
    return JSONResponse(
        {"code": error.code, "title": error.title, "detail": error.detail},
        status_code=error.status_code,
        headers={"WWW-Authenticate": error.www_authenticate(), "Cache-Control": "no-store"},
    )
