"""Minimisation (rule 8): project a canonical envelope to exactly the fields a flow allows its recipient.

Allowed fields are dotted payload paths (``arrears.amount_cents``), ``subject.<system>`` for the identifier
systems that may cross, and ``<path> as token`` / ``subject.token`` where the recipient gets an opaque
per-recipient crosswalk token instead of another partner's identifier (ALER never sees a Comune case id).
A partner's own identifier system (``comune-case``, ``aler-contract``...) crosses only from or to the partner
that issues it (:data:`gateway.identity.crosswalk.OWNERS`), whatever a flow lists: the Comune gets its own case
id back when a partner quoted the token standing for it, and no one else does.
Everything else is dropped; the result is re-validated as the flow's outbound message type, so a flow that
allows too little fails loudly instead of sending a broken message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.identity.crosswalk import OWNERS
from gateway.policy.registry import Flow
from schemas.envelope import Envelope, Identifier, SubjectRef

Tokeniser = Callable[[str, str, str], str]
"""(recipient, identifier system, value) -> opaque token; see :class:`gateway.identity.crosswalk.Crosswalk`."""

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


def _tokenise_paths(payload: dict[str, Any], paths: tuple[str, ...], recipient: str,
                    tokenise: Tokeniser) -> None:
    for path in paths:
        keys = path.split(".")
        target: Any = payload
        for key in keys[:-1]:
            target = target.get(key) if isinstance(target, dict) else None
        if isinstance(target, dict) and keys[-1] in target:
            target[keys[-1]] = tokenise(recipient, path, str(target[keys[-1]]))


def minimise(envelope: Envelope, flow: Flow, message_id: str, tokenise: Tokeniser | None = None) -> Envelope:
    """The envelope ``flow.recipient`` receives: minimised payload, allowed identifiers only, new message id."""
    plain = [p for p in flow.allowed_fields if not p.startswith("subject.") and not p.endswith(" as token")]
    as_token = tuple(p.removesuffix(" as token") for p in flow.allowed_fields if p.endswith(" as token"))
    systems = {p.removeprefix("subject.") for p in flow.allowed_fields if p.startswith("subject.")}
    identifiers = tuple(i for i in envelope.subject.identifiers
                        if i.system in systems and OWNERS.get(i.system, flow.recipient) in (flow.recipient,
                                                                                          envelope.sender))
    if (as_token or "token" in systems) and tokenise is None:
        raise ValueError(f"flow {flow.id} needs crosswalk tokens but no tokeniser was given")
    if "token" in systems and envelope.subject.pseudonym and tokenise is not None:
        token = tokenise(flow.recipient, "subject", envelope.subject.pseudonym)
        identifiers = (*identifiers, Identifier(system="gateway-token", value=token))
    if not identifiers:
        raise ValueError(f"flow {flow.id} allows none of the subject's identifiers to cross")
    payload_paths = (*plain, *as_token)
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
        payload=_projected(envelope.payload, payload_paths, as_token, flow.recipient, tokenise),
    )


def _projected(payload: dict[str, Any], paths: tuple[str, ...], as_token: tuple[str, ...], recipient: str,
               tokenise: Tokeniser | None) -> dict[str, Any]:
    projected = project(payload, paths)
    if as_token and tokenise is not None:
        _tokenise_paths(projected, as_token, recipient, tokenise)
    return projected
