"""What the Comune sends, dispatched on ``tipo_messaggio``: one table row per native message kind."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from adapters._json import load_json_object
from adapters.comune.cases import case_event_from_document
from adapters.comune.emergency import emergency_event_from_document
from schemas.envelope import Envelope
from schemas.errors import DecodeError, FieldProblem

__all__ = ["INBOUND_KINDS", "decode"]

INBOUND_KINDS: dict[str, Callable[[dict[str, Any]], Envelope]] = {
    "evento-caso": case_event_from_document,
    "evento-emergenza": emergency_event_from_document,
}
"""``tipo_messaggio`` -> translation of that native message kind to a canonical envelope."""


def decode(raw: bytes, content_type: str = "application/json") -> list[Envelope]:
    """Comune message bytes -> one canonical envelope (``social.case-event`` or ``emergency.social-event``);
    raises DecodeError."""
    document = load_json_object(raw, content_type)
    kinds = ", ".join(INBOUND_KINDS)
    if "tipo_messaggio" not in document:
        raise DecodeError("contract", "message does not say which kind it is", [
            FieldProblem("/tipo_messaggio", "union_tag_not_found", f"add tipo_messaggio, one of: {kinds}")])
    kind = document["tipo_messaggio"]
    translate = INBOUND_KINDS.get(kind) if isinstance(kind, str) else None
    if translate is None:
        raise DecodeError("contract", "message is of a kind the Comune does not send", [
            FieldProblem("/tipo_messaggio", "union_tag_invalid", f"tipo_messaggio must be one of: {kinds}")])
    return [translate(document)]
