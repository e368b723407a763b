"""Shared first step of every JSON adapter: bytes to a JSON object, with a clear reason when it is not one."""

from __future__ import annotations

import json
from typing import Any

from gateway.strict_json import MAX_EXPONENT, NumberOutOfRange, checked_document, parse_json_text
from schemas.errors import DecodeError, FieldProblem

__all__ = ["JSON_CONTENT_TYPES", "load_json_object"]

JSON_CONTENT_TYPES = ("application/json",)


def load_json_object(raw: bytes, content_type: str) -> dict[str, Any]:
    """Parse ``raw`` as one JSON object; numbers with a fraction become :class:`~decimal.Decimal`
    (:func:`gateway.strict_json.parse_json_text`). Behind the strict JSON check of every decoder
    (:func:`gateway.strict_json.strictly_read`) the bytes were parsed once already: that document is taken
    instead of parsing them again."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type not in JSON_CONTENT_TYPES:
        raise DecodeError(
            "malformed",
            f"content type {media_type or '(none)'} is not accepted; send application/json",
            [FieldProblem("", "content-type", "send the message as application/json")],
        )
    document = checked_document(raw)
    if document is None:
        document = _parse(raw)
    if not isinstance(document, dict):
        raise DecodeError(
            "malformed", "message must be a JSON object", [FieldProblem("", "type", "send a JSON object")]
        )
    return document


def _parse(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(
            "malformed", "message is not valid UTF-8", [FieldProblem("", "utf-8", f"invalid byte at {exc.start}")]
        ) from None
    try:
        return parse_json_text(text)
    except NumberOutOfRange:
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
