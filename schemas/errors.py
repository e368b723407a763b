"""Errors that adapters raise when a partner message cannot be decoded, located by JSON pointer.

Adapters are pure and know nothing of HTTP or Kafka; the gateway maps :class:`DecodeError` to a
problem+json response or a dead-letter entry. Messages never echo the offending value: it may be a codice
fiscale or a name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import ValidationError

__all__ = ["DecodeError", "FieldProblem", "problems_from_validation"]


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One problem in a message, located by JSON pointer (RFC 6901)."""

    pointer: str
    """Where, e.g. ``/morosita/importo``; ``""`` for the whole document."""
    rule: str
    """Which rule was broken, e.g. ``int_parsing`` or ``extra_forbidden``."""
    message: str
    """What to change, in words."""

    def as_dict(self) -> dict[str, str]:
        return {"pointer": self.pointer, "rule": self.rule, "message": self.message}


class DecodeError(ValueError):
    """A partner message that cannot become a canonical envelope.

    ``kind`` is ``malformed`` when the bytes are not a document at all (not UTF-8, not JSON, not an object)
    and ``contract`` when the document breaks the partner's published contract.
    """

    def __init__(self, kind: Literal["malformed", "contract"], detail: str, problems: list[FieldProblem]):
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.problems = problems


def _pointer(loc: tuple[int | str, ...], prefix: str = "") -> str:
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in loc]
    return prefix + "".join("/" + p for p in parts)


def problems_from_validation(error: ValidationError, prefix: str = "") -> list[FieldProblem]:
    """Pydantic errors as :class:`FieldProblem` s, without the input values pydantic would echo."""
    try:
        errors = error.errors(include_url=False, include_context=False)
    except UnicodeError:
        # A custom error message that quotes the input (fhir.resources does) cannot be rendered when the input
        # holds a lone surrogate; pydantic then raises instead of returning the errors.
        return [FieldProblem(_pointer((), prefix), "string_unicode", "text must be valid Unicode (no lone surrogates)")]
    return [
        FieldProblem(pointer=_pointer(e["loc"], prefix), rule=e["type"], message=_withhold(e["msg"], e.get("input")))
        for e in errors
    ]


def _withhold(message: str, value: object) -> str:
    """``message`` without the input a custom error quoted in it (fhir.resources: "but got ``<value>``")."""
    if value is None or isinstance(value, bool | int | float):
        return message
    try:
        text = value if isinstance(value, str) else str(value)
    except RecursionError:  # too deep to print: pydantic could not quote it either
        return message
    if text:
        for quote in ("``", "'", '"'):
            message = message.replace(f"{quote}{text}{quote}", f"{quote}(value withheld){quote}")
    return message
