"""Shared first step of every JSON adapter: bytes to a JSON object, with a clear reason when it is not one."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from schemas.errors import DecodeError, FieldProblem

__all__ = ["JSON_CONTENT_TYPES", "load_json_object"]

JSON_CONTENT_TYPES = ("application/json",)

MAX_EXPONENT = 1000
"""Largest decimal exponent (either sign) a JSON number may have: ``1e999999999`` is 11 bytes, but turning it
into an integer for an int field costs minutes of CPU. No partner field needs more than a few digits."""


class _NumberOutOfRange(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON")


def _parse_number(text: str) -> Decimal:
    value = Decimal(text)
    if abs(value.adjusted()) > MAX_EXPONENT:
        raise _NumberOutOfRange(text)
    return value


def load_json_object(raw: bytes, content_type: str) -> dict[str, Any]:
    """Parse ``raw`` as one JSON object; numbers with a fraction become :class:`~decimal.Decimal`."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type not in JSON_CONTENT_TYPES:
        raise DecodeError(
            "malformed",
            f"content type {media_type or '(none)'} is not accepted; send application/json",
            [FieldProblem("", "content-type", "send the message as application/json")],
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(
            "malformed", "message is not valid UTF-8", [FieldProblem("", "utf-8", f"invalid byte at {exc.start}")]
        ) from None
    try:
        document = json.loads(text, parse_float=_parse_number, parse_constant=_reject_constant)
    except _NumberOutOfRange:
        raise DecodeError(
            "malformed",
            "message has a number out of range",
            [FieldProblem("", "number-range", f"keep every number's exponent within -{MAX_EXPONENT}..{MAX_EXPONENT}")],
        ) from None
    except (ValueError, RecursionError) as exc:
        where = f"line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else "document"
        raise DecodeError(
            "malformed", f"message is not valid JSON ({where})", [FieldProblem("", "json", f"invalid JSON at {where}")]
        ) from None
    if not isinstance(document, dict):
        raise DecodeError(
            "malformed", "message must be a JSON object", [FieldProblem("", "type", "send a JSON object")]
        )
    return document
