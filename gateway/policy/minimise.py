"""Minimisation (rule 8): project a canonical envelope to exactly the fields a flow allows its recipient.

Allowed fields are dotted payload paths (``arrears.amount_cents``) and ``subject.<system>`` for the
identifier systems that may cross. Everything else is dropped; the result is re-validated as the flow's
outbound message type, so a flow that allows too little fails loudly instead of sending a broken message.
"""

from __future__ import annotations

from typing import Any

from gateway.policy.registry import Flow
from schemas.envelope import Envelope, SubjectRef

__all__ = ["minimise", "project"]


def project(payload: dict[str, Any], paths: tuple[str, ...]) -> dict[str, Any]:
    """The parts of ``payload`` named by dotted ``paths``; missing optional parts are skipped."""
    result: dict[str, Any] = {}
    for path in paths:
        keys = path.split(".")
        source: Any = payload
        for key in keys:
            if not isinstance(source, dict) or key not in source:
                source = _MISSING
                break
            source = source[key]
        if source is _MISSING:
            continue
        target = result
        for key in keys[:-1]:
            target = target.setdefault(key, {})
        target[keys[-1]] = source
    return result


_MISSING = object()


def minimise(envelope: Envelope, flow: Flow, message_id: str) -> Envelope:
    """The envelope ``flow.recipient`` receives: minimised payload, allowed identifiers only, new message id."""
    payload_paths = tuple(p for p in flow.allowed_fields if not p.startswith("subject."))
    systems = {p.removeprefix("subject.") for p in flow.allowed_fields if p.startswith("subject.")}
    identifiers = tuple(i for i in envelope.subject.identifiers if i.system in systems)
    if not identifiers:
        raise ValueError(f"flow {flow.id} allows none of the subject's identifiers to cross")
    return Envelope(
        message_id=message_id,
        correlation_id=envelope.correlation_id,
        message_type=flow.outbound_message_type,
        schema_version=envelope.schema_version,
        sender=envelope.sender,
        recipients=(flow.recipient,),
        subject=SubjectRef(identifiers=identifiers, pseudonym=envelope.subject.pseudonym),
        purpose=flow.purpose,
        sensitivity=(flow.sensitivity,),
        occurred_at=envelope.occurred_at,
        payload=project(envelope.payload, payload_paths),
    )
