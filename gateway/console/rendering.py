"""Server-rendered pages: the Jinja2 environment of the console's templates and the one way a page is rendered
(with the officer's language, the session's CSRF token and the navigation every page shares)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse

from gateway.console.i18n import LANGUAGES, language, translator

__all__ = ["NAVIGATION", "render", "templates"]

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.autoescape = True

NAVIGATION: tuple[tuple[str, str, str], ...] = (
    ("home", "/console/", "nav.home"),
    ("person", "/console/person", "nav.person"),
    ("review", "/console/review", "nav.review"),
    ("audit", "/console/audit", "nav.audit"),
    ("records", "/console/records", "nav.records"),
    ("erasure", "/console/erasure", "nav.erasure"),
)
"""(page id, path, message key) of the console's main pages, in the order the navigation shows them."""


def render(request: Request, template: str, context: dict[str, Any] | None = None, status_code: int = 200,
           page: str | None = None) -> HTMLResponse:
    """Render ``template`` for this request: ``t`` (the messages in the officer's language), ``lang``,
    ``session`` (None before sign-in), ``csrf_token`` and the navigation, marked at ``page``."""
    lang = language(request)
    session = getattr(request.state, "console_session", None)
    values: dict[str, Any] = {
        "t": translator(lang), "lang": lang, "languages": LANGUAGES, "session": session,
        "officer": session.officer if session else None,
        "csrf_token": session.csrf_token if session else context.get("csrf_token") if context else None,
        "navigation": NAVIGATION, "page": page, "here": request.url.path,
        "sign_in_options": getattr(request.app.state, "console_sign_in_options", ()),
    }
    values.update(context or {})
    return templates.TemplateResponse(request, template, values, status_code=status_code)
