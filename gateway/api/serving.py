"""How the HTTP API is served by uvicorn: no ``Server`` banner, and no forwarded headers rewritten by uvicorn.

uvicorn adds ``Server: uvicorn`` below the application, where no middleware can remove it, and by default
believes ``X-Forwarded-*`` from the loopback before the gateway sees the request. :func:`server_config` turns
both off, so that the gateway's own setting (``GATEWAY_TRUSTED_PROXIES``, :mod:`gateway.auth.transport`)
alone decides which proxy is believed. ``gateway serve`` and the demo should build their server with it.
"""

from __future__ import annotations

from typing import Any

import uvicorn
from starlette.types import ASGIApp

__all__ = ["server_config"]


def server_config(app: ASGIApp, host: str, port: int, **options: Any) -> uvicorn.Config:
    """A uvicorn configuration for ``app`` without the server banner or uvicorn's own proxy-header handling;
    ``options`` are passed on (``log_config``, ``access_log``...)."""
    return uvicorn.Config(app, host=host, port=port, server_header=False, proxy_headers=False, **options)
