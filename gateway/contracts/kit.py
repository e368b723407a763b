"""The contract kit for integrators: check a partner message against the published contract, and explain
what the gateway would do with it — which flows, which fields would cross to whom, which would be dropped,
whether consent would be needed — without forwarding, storing or auditing anything.

The explanation never says whether a consent exists for the person: only whether the flow needs one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from gateway.partners import BUILT_IN
from gateway.policy.registry import Flow, PolicyRegistry
from gateway.routing import decoder_for, screen_identifiers
from schemas.envelope import Envelope
from schemas.errors import DecodeError, FieldProblem

__all__ = ["CheckReport", "FlowPreview", "check_message", "preview"]


@dataclass(frozen=True, slots=True)
class FlowPreview:
    """What one recipient would receive under one flow."""

    recipient: str
    flow: str | None
    outcome: str
    """``would-forward-if-permitted`` or ``would-deny``."""
    reason: str | None
    purpose: str | None
    legal_basis: str | None
    consent_required: bool
    explicit_consent: bool
    crossing: list[str] = field(default_factory=list)
    tokenised: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    topic_kind: str = "out"


@dataclass(frozen=True, slots=True)
class CheckReport:
    """Result of checking one message: valid or not, its problems, and per message what would happen."""

    valid: bool
    problems: list[dict[str, str]]
    messages: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _leaves(document: Any, prefix: str = "") -> list[str]:
    if isinstance(document, dict) and document:
        return [p for k, v in document.items() for p in _leaves(v, f"{prefix}{k}.")]
    return [prefix.rstrip(".")]


def _covered(path: str, allowed: set[str]) -> str | None:
    return next((a for a in allowed if path == a or path.startswith(a + ".")), None)


def _preview_flow(envelope: Envelope, flow: Flow) -> FlowPreview:
    plain = {p for p in flow.allowed_fields if not p.startswith("subject.") and not p.endswith(" as token")}
    tokens = {p.removesuffix(" as token") for p in flow.allowed_fields if p.endswith(" as token")}
    systems = {p.removeprefix("subject.") for p in flow.allowed_fields if p.startswith("subject.")}
    leaves = [p for p in _leaves(envelope.payload) if p]
    identifiers = [f"subject.{i.system}" for i in envelope.subject.identifiers]
    masked = envelope.payload.get("masked_at_source") is True
    labels = set(envelope.sensitivity) | set(envelope.payload.get("security_labels") or ())
    refused = sorted(labels & set(flow.deny_labels))
    reason = "masked-at-source" if masked else ("sensitive-label-denied" if refused else None)
    return FlowPreview(
        recipient=flow.recipient, flow=flow.id,
        outcome="would-deny" if reason else "would-forward-if-permitted", reason=reason,
        purpose=flow.purpose, legal_basis=flow.legal_basis, consent_required=flow.consent.required,
        explicit_consent=flow.consent.explicit,
        crossing=sorted([p for p in leaves if _covered(p, plain)] + [i for i in identifiers
                                                                        if i.removeprefix("subject.") in systems]),
        tokenised=sorted([p for p in leaves if _covered(p, tokens)] + (["subject"] if "token" in systems else [])),
        dropped=sorted([p for p in leaves if not _covered(p, plain | tokens)]
                       + [i for i in identifiers if i.removeprefix("subject.") not in systems]),
        topic_kind="s4.out" if flow.restricted_topic else "out",
    )


def preview(envelope: Envelope, registry: PolicyRegistry) -> list[FlowPreview]:
    """What the gateway would do with a decoded message, per recipient."""
    if not envelope.purpose or envelope.purpose not in registry.purposes:
        reason = "purpose-missing" if not envelope.purpose else "purpose-not-permitted"
        return [FlowPreview(recipient=r, flow=None, outcome="would-deny", reason=reason, purpose=envelope.purpose,
                            legal_basis=None, consent_required=False, explicit_consent=False)
                for r in envelope.recipients or ("",)]
    flows = registry.flows_for(envelope.sender, envelope.message_type, envelope.purpose)
    recipients = list(envelope.recipients) or [f.recipient for f in flows]
    previews = []
    for recipient in recipients or [""]:
        flow = next((f for f in flows if f.recipient == recipient), None)
        if flow is None:
            previews.append(FlowPreview(recipient=recipient, flow=None, outcome="would-deny",
                                        reason="recipient-not-permitted", purpose=envelope.purpose,
                                        legal_basis=None, consent_required=False, explicit_consent=False))
        else:
            previews.append(_preview_flow(envelope, flow))
    return previews


def check_message(partner: str, raw: bytes, content_type: str, registry: PolicyRegistry) -> CheckReport:
    """Validate ``raw`` as a message from ``partner`` and preview what would happen to it."""
    decoder = decoder_for(partner)
    if decoder is None:
        senders = sorted(p for p in BUILT_IN if decoder_for(p) is not None)
        problem = FieldProblem("", "unknown-partner", f"partners that send messages: {', '.join(senders)}")
        return CheckReport(False, [problem.as_dict()], [])
    try:
        envelopes = screen_identifiers(decoder(raw, content_type))
    except DecodeError as exc:
        return CheckReport(False, [p.as_dict() for p in exc.problems], [])
    return CheckReport(True, [], [
        {"message_id": e.message_id, "message_type": e.message_type, "purpose": e.purpose,
         "recipients": [asdict(p) for p in preview(e, registry)]}
        for e in envelopes
    ])
