"""Minimisation (rule 8): project a canonical envelope to exactly the fields a flow allows its recipient.

Allowed fields are dotted payload paths (``arrears.amount_cents``), ``subject.<system>`` for the identifier
systems that may cross, and ``<path> as token`` / ``subject.token`` where the recipient gets an opaque
per-recipient crosswalk token instead of another partner's identifier (ALER never sees a Comune case id).
A partner's own identifier system (``comune-case``, ``aler-contract``...) crosses only from or to the partner
that issues it (:data:`gateway.identity.crosswalk.OWNERS`), whatever a flow lists: the Comune gets its own case
id back when a partner quoted the token standing for it, and no one else does.
Everything else is dropped; the result is re-validated as the flow's outbound message type, so a flow that
allows too little fails loudly instead of sending a broken message.

Sensitive elements (rule 7): of what the flow allows, every coded value whose code carries a sensitive label
(code list ``labels``) that the decision did not permit is redacted. Which fields hold codes of which list comes
from the outbound payload model (:func:`schemas.codelists.coded_fields`), once per message type. When redaction
leaves nothing the message is about — no coded value at all, or a field the message cannot go without —
the message is only sensitive data: :class:`OnlySensitiveData` is raised and the intake denies it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from gateway.identity.crosswalk import OWNERS
from gateway.policy.registry import Flow
from schemas.codelists import ITEM, CodedField, coded_fields, load_codelist
from schemas.envelope import Envelope, Identifier, SubjectRef
from schemas.messages import MESSAGE_TYPES, validate_payload

Tokeniser = Callable[[str, str, str], str]
"""(recipient, identifier system, value) -> opaque token; see :class:`gateway.identity.crosswalk.Crosswalk`."""

__all__ = ["Minimised", "OnlySensitiveData", "minimise", "minimise_with_redactions", "project"]


class OnlySensitiveData(Exception):
    """Redacting the sensitive elements the decision did not permit left nothing to send (rule 7)."""

    def __init__(self, flow_id: str, labels: tuple[str, ...]) -> None:
        super().__init__(f"flow {flow_id}: the message is only data labelled {', '.join(labels)}")
        self.labels = labels


@dataclass(frozen=True, slots=True)
class Minimised:
    """The outgoing envelope, and the sensitive labels whose elements were redacted from it (sorted)."""

    envelope: Envelope
    redacted: tuple[str, ...] = ()


@cache
def _split(paths: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    """Each dotted path as its steps: a flow's paths are few and fixed, so they are split once per process."""
    return tuple(tuple(path.split(".")) for path in paths)


def project(payload: dict[str, Any], paths: tuple[str, ...]) -> dict[str, Any]:
    """The parts of ``payload`` named by dotted ``paths``; missing optional parts are skipped."""
    result: dict[str, Any] = {}
    for keys in _split(tuple(paths)):
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
    for path, keys in zip(paths, _split(paths), strict=True):
        target: Any = payload
        for key in keys[:-1]:
            target = target.get(key) if isinstance(target, dict) else None
        if isinstance(target, dict) and keys[-1] in target:
            target[keys[-1]] = tokenise(recipient, path, str(target[keys[-1]]))


def minimise(envelope: Envelope, flow: Flow, message_id: str, tokenise: Tokeniser | None = None,
             permitted_labels: frozenset[str] = frozenset()) -> Envelope:
    """The envelope ``flow.recipient`` receives: minimised payload, allowed identifiers only, new message id,
    no element coded with a sensitive label outside ``permitted_labels``."""
    return minimise_with_redactions(envelope, flow, message_id, tokenise, permitted_labels).envelope


def minimise_with_redactions(envelope: Envelope, flow: Flow, message_id: str, tokenise: Tokeniser | None = None,
                             permitted_labels: frozenset[str] = frozenset()) -> Minimised:
    """:func:`minimise`, also saying which sensitive labels were redacted; raises :class:`OnlySensitiveData`
    when nothing but redacted elements would be left."""
    plain, as_token, systems = _allowed(flow.allowed_fields)
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
    projected = _projected(envelope.payload, payload_paths, as_token, flow.recipient, tokenise)
    payload, redacted = _redacted(projected, flow, permitted_labels)
    # The payload is validated once, as the flow's outbound message type (a flow that allows too little fails
    # here, loudly); the header comes from the validated inbound envelope and the registry, so the envelope is
    # built without validating anything again, and the encoder gets the validated payload model back.
    outgoing = Envelope.from_validated(
        validate_payload(flow.outbound_message_type, payload),
        SubjectRef(identifiers=identifiers),  # the internal pseudonym never leaves: it would link recipients
        message_id=message_id,
        correlation_id=envelope.correlation_id,
        message_type=flow.outbound_message_type,
        schema_version=envelope.schema_version,
        sender=envelope.sender,
        recipients=(flow.recipient,),
        purpose=flow.purpose,
        sensitivity=(flow.sensitivity,),
        occurred_at=envelope.occurred_at,
    )
    return Minimised(outgoing, redacted)


@cache
def _allowed(allowed_fields: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...], frozenset[str]]:
    """A flow's allowed fields read once per process: the plain payload paths, the paths that cross as tokens,
    and the identifier systems that may cross (``subject.<system>``)."""
    plain = tuple(p for p in allowed_fields if not p.startswith("subject.") and not p.endswith(" as token"))
    as_token = tuple(p.removesuffix(" as token") for p in allowed_fields if p.endswith(" as token"))
    systems = frozenset(p.removeprefix("subject.") for p in allowed_fields if p.startswith("subject."))
    return plain, as_token, systems


def _projected(payload: dict[str, Any], paths: tuple[str, ...], as_token: tuple[str, ...], recipient: str,
               tokenise: Tokeniser | None) -> dict[str, Any]:
    projected = project(payload, paths)
    if as_token and tokenise is not None:
        _tokenise_paths(projected, as_token, recipient, tokenise)
    return projected


_GONE = object()
"""What a redacted value (or a holder that cannot go without it) becomes."""


@dataclass(frozen=True, slots=True)
class _CodedFields:
    labelled: tuple[CodedField, ...]
    """The fields whose code list labels some code: the only ones redaction looks at."""
    every: tuple[CodedField, ...]


@cache
def _coded(message_type: str) -> _CodedFields:
    model = MESSAGE_TYPES.get(message_type)
    every = coded_fields(model) if model is not None else ()
    return _CodedFields(tuple(f for f in every if load_codelist(f.codelist).labels), every)


@dataclass(slots=True)
class _Redaction:
    permitted: frozenset[str]
    labels: set[str] = field(default_factory=set)
    """The sensitive labels whose elements were redacted."""


def _redacted(payload: dict[str, Any], flow: Flow, permitted: frozenset[str]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """``payload`` without the coded values whose labels are not all permitted, and the labels redacted."""
    fields = _coded(flow.outbound_message_type)
    redaction = _Redaction(permitted)
    result: Any = payload
    for coded in fields.labelled:
        result = _redact(result, coded.path, coded, redaction)
        if result is _GONE:
            raise OnlySensitiveData(flow.id, tuple(sorted(redaction.labels)))
    if not redaction.labels:
        return payload, ()
    if not any(_codes_at(result, coded.path) for coded in fields.every):
        raise OnlySensitiveData(flow.id, tuple(sorted(redaction.labels)))
    return result, tuple(sorted(redaction.labels))


def _redact(node: Any, steps: tuple[str, ...], coded: CodedField, redaction: _Redaction) -> Any:
    """``node`` with the codes at ``steps`` redacted (new containers where something changed); ``_GONE`` when
    ``node`` itself is a redacted code, or holds a field it cannot go without that was redacted."""
    if not steps:
        if not isinstance(node, str):
            return node
        refused = load_codelist(coded.codelist).labels_of(node) - redaction.permitted
        redaction.labels |= refused
        return _GONE if refused else node
    step, rest = steps[0], steps[1:]
    if step == ITEM:
        if not isinstance(node, list):
            return node
        items = [_redact(item, rest, coded, redaction) for item in node]
        return [item for item in items if item is not _GONE]
    if not isinstance(node, dict) or step not in node:
        return node
    value = _redact(node[step], rest, coded, redaction)
    if value is _GONE:
        return _GONE if coded.required else {k: v for k, v in node.items() if k != step}
    if value is node[step]:
        return node
    return {**node, step: value}


def _codes_at(node: Any, steps: tuple[str, ...]) -> int:
    """How many codes ``node`` holds at ``steps``."""
    if not steps:
        return 1 if isinstance(node, str) else 0
    if steps[0] == ITEM:
        return sum(_codes_at(item, steps[1:]) for item in node) if isinstance(node, list) else 0
    return _codes_at(node[steps[0]], steps[1:]) if isinstance(node, dict) and steps[0] in node else 0
