"""The console's words in Italian (the default: the officers' working language) and English, from the message
catalogs ``messages/it.yaml`` and ``messages/en.yaml`` (one key per message, ``{name}`` placeholders). The
language is the ``console_lang`` cookie the language switch sets; a key missing in English falls back to Italian.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from importlib.resources import files
from typing import Any

import yaml
from starlette.requests import Request

__all__ = ["DEFAULT_LANGUAGE", "LANGUAGES", "LANGUAGE_COOKIE", "catalog", "language", "translator"]

LANGUAGES = ("it", "en")
DEFAULT_LANGUAGE = "it"
LANGUAGE_COOKIE = "console_lang"


@functools.cache
def catalog(lang: str) -> dict[str, str]:
    """Every message of ``lang``, by key."""
    text = files("gateway.console").joinpath("messages", f"{lang}.yaml").read_text(encoding="utf-8")
    loaded = yaml.safe_load(text) or {}
    return {str(k): str(v) for k, v in loaded.items()}


def language(request: Request) -> str:
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    return chosen if chosen in LANGUAGES else DEFAULT_LANGUAGE


def translator(lang: str) -> Callable[..., str]:
    """``t(key, **values)``: the message in ``lang`` with its placeholders filled."""
    own, fallback = catalog(lang), catalog(DEFAULT_LANGUAGE)

    def t(key: str, **values: Any) -> str:
        text = own.get(key) or fallback.get(key) or key
        return text.format(**values) if values else text

    return t
