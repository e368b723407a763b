"""The FastAPI application factory: routes, problem+json handlers, request ids, the guarded edge.

Middleware, outermost first: security headers on every answer, the request id (the caller's only when it is
plain and names no person, :func:`gateway.identifiers.request_id_or_minted`), then the edge guard (body
size, authentication before any body is read, strict JSON; :mod:`gateway.api.edge`). The interactive
documentation pages (``/docs``, ``/redoc``) load Swagger UI from a CDN and are served in demo deployments
only; the OpenAPI document itself is always published.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI, Request, Response

from gateway.api.edge import EdgeGuard, SecurityHeaders
from gateway.api.openapi import enrich_openapi
from gateway.api.problems import install_problem_handlers
from gateway.api.routes import audit, auth, consents, dlq, health, messages, privacy
from gateway.api.throttle import Throttle
from gateway.bootstrap import Gateway
from gateway.console import mount_console
from gateway.console.oidc import configure_single_sign_on
from gateway.identifiers import request_id_or_minted

__all__ = ["create_app", "openapi_document"]


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

    app = _api(lifespan, docs=gateway.settings.environment != "production")
    app.state.gateway = gateway
    app.state.throttle = Throttle(gateway.settings.rate_limits)
    configure_single_sign_on(app, gateway.settings, gateway.registry.partners)
    return app


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of the HTTP API (no gateway needed), as published and served."""
    return _api(None).openapi()


def _api(lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None, docs: bool = True) -> FastAPI:
    app = FastAPI(
        title="Quartieri gateway",
        version="1.0",
        summary="Consent-aware interoperability gateway for the partners of Milan's public-housing neighbourhoods",
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
    )
    install_problem_handlers(app)
    app.add_middleware(EdgeGuard)  # added first: innermost, so its refusals carry the request id

    @app.middleware("http")
    async def request_id(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        rid = request_id_or_minted(request.headers.get("x-request-id"))
        request.state.request_id = rid
        structlog.contextvars.bind_contextvars(request_id=rid)
        try:
            response = await call_next(request)
        finally:
            structlog.contextvars.unbind_contextvars("request_id")
        response.headers["X-Request-ID"] = rid
        return response

    app.add_middleware(SecurityHeaders)

    for router in (health.router, auth.router, messages.router, consents.router, privacy.router, audit.router,
                   dlq.router):
        app.include_router(router)
    mount_console(app)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        """FastAPI's document with security, raw request bodies and problem+json answers declared, built once."""
        if app.openapi_schema is None:
            app.openapi_schema = enrich_openapi(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
