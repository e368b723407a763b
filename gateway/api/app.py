"""The FastAPI application factory: routes, problem+json handlers, request ids."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI, Request, Response

from gateway.api.problems import install_problem_handlers
from gateway.api.routes import audit, auth, consents, health, messages, privacy
from gateway.bootstrap import Gateway

__all__ = ["create_app", "openapi_document"]

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")


def create_app(gateway: Gateway, *, manage_lifecycle: bool = True) -> FastAPI:
    """The HTTP API of ``gateway``; with ``manage_lifecycle`` the app starts and stops the gateway."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if manage_lifecycle:
            await gateway.start()
        try:
            yield
        finally:
            if manage_lifecycle:
                await gateway.stop()

    app = _api(lifespan)
    app.state.gateway = gateway
    return app


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of the HTTP API (no gateway needed)."""
    return _api(None).openapi()


def _api(lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None) -> FastAPI:
    app = FastAPI(
        title="Quartieri gateway",
        version="1.0",
        summary="Consent-aware interoperability gateway for the partners of Milan's public-housing neighbourhoods",
        lifespan=lifespan,
    )
    install_problem_handlers(app)

    @app.middleware("http")
    async def request_id(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        given = request.headers.get("x-request-id", "")
        rid = given if _REQUEST_ID.match(given) else str(uuid.uuid4())
        request.state.request_id = rid
        structlog.contextvars.bind_contextvars(request_id=rid)
        try:
            response = await call_next(request)
        finally:
            structlog.contextvars.unbind_contextvars("request_id")
        response.headers["X-Request-ID"] = rid
        return response

    for router in (health.router, auth.router, messages.router, consents.router, privacy.router, audit.router):
        app.include_router(router)
    return app
