"""The decision: may this message cross to this recipient, for this purpose, about this person?

Implements privacy.md rules 1-4, 6, 7 (labels a flow refuses), 12, 13, 15 (masked at source) and 16: deny
by default; purpose required and in the vocabulary; the sender entitled to claim it; a declared flow; data
not masked at source and without a label the flow refuses; where the flow requires it, an applicable active
consent (latest version per lineage, inside its period, for this purpose and recipient)
with deny winning across instruments.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from gateway.policy.consent import ConsentRecord
from gateway.policy.registry import Flow, PolicyRegistry

__all__ = ["Decision", "DecisionRequest", "DenialReason", "decide", "sender_reason_class"]

DenialReason = Literal[
    "purpose-missing",
    "purpose-not-permitted",
    "recipient-not-permitted",
    "no-applicable-consent",
    "consent-expired",
    "consent-withdrawn",
    "sensitive-label-denied",
    "masked-at-source",
    "policy-unavailable",
]
"""The closed list of denial reasons recorded in the audit log (privacy.md)."""

_CONSENT_REASONS = frozenset({"no-applicable-consent", "consent-expired", "consent-withdrawn"})


def sender_reason_class(reason: DenialReason) -> str:
    """What the sender is told (rule 13): consent-related reasons collapse into one class, so a denial never
    reveals whether a consent exists for that person."""
    return "not-authorised" if reason in _CONSENT_REASONS else reason


@dataclass(frozen=True, slots=True)
class DecisionRequest:
    """The question asked for one (message, recipient) pair."""

    sender: str
    sender_role: str
    recipient: str
    message_type: str
    purpose: str | None
    subject_pseudonym: str
    labels: frozenset[str] = frozenset()
    """Sensitivity labels of the message (envelope and payload security labels)."""
    masked_at_source: bool = False
    """The source marked the data "oscurato": it is never forwarded (rule 15)."""


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer, with everything rule 16 asks a decision to record."""

    decision_id: str
    recipient: str
    outcome: Literal["permit", "deny"]
    reason: DenialReason | None
    flow: Flow | None
    consent_ref: str | None
    legal_basis: str | None
    policy_revision: str
    combining_rule: str
    matched_provision: str | None

    @property
    def permitted(self) -> bool:
        return self.outcome == "permit"


def _deny(request: DecisionRequest, registry: PolicyRegistry, reason: DenialReason, flow: Flow | None = None,
          consent_ref: str | None = None, rule: str = "deny-by-default") -> Decision:
    return Decision(
        decision_id=str(uuid.uuid4()),
        recipient=request.recipient,
        outcome="deny",
        reason=reason,
        flow=flow,
        consent_ref=consent_ref,
        legal_basis=flow.legal_basis if flow else None,
        policy_revision=registry.revision,
        combining_rule=rule,
        matched_provision=None,
    )


def _latest_per_lineage(consents: Iterable[ConsentRecord]) -> list[ConsentRecord]:
    latest: dict[str, ConsentRecord] = {}
    for consent in consents:
        held = latest.get(consent.consent_id)
        if held is None or consent.version > held.version:
            latest[consent.consent_id] = consent
    return list(latest.values())


def _covers(consent: ConsentRecord, request: DecisionRequest) -> bool:
    return (
        consent.subject_pseudonym == request.subject_pseudonym
        and request.purpose in consent.purposes
        and (not consent.recipients or request.recipient in consent.recipients)
    )


def decide(
    request: DecisionRequest,
    registry: PolicyRegistry,
    consents: Iterable[ConsentRecord],
    now: datetime,
) -> Decision:
    """Decide one (message, recipient) pair. Pure: same inputs, same outcome (the id aside)."""
    if not request.purpose:
        return _deny(request, registry, "purpose-missing")
    if request.purpose not in registry.purposes:
        return _deny(request, registry, "purpose-not-permitted")
    if not registry.may_claim(request.sender, request.sender_role, request.purpose):
        return _deny(request, registry, "purpose-not-permitted")
    flow = next(
        (f for f in registry.flows_for(request.sender, request.message_type, request.purpose)
         if f.recipient == request.recipient),
        None,
    )
    if flow is None:
        return _deny(request, registry, "recipient-not-permitted")
    if request.masked_at_source:
        return _deny(request, registry, "masked-at-source", flow, rule="masked-at-source")
    if request.labels & set(flow.deny_labels):
        return _deny(request, registry, "sensitive-label-denied", flow, rule="sensitive-label")
    if not flow.consent.required:
        return Decision(
            decision_id=str(uuid.uuid4()), recipient=request.recipient, outcome="permit", reason=None, flow=flow,
            consent_ref=None, legal_basis=flow.legal_basis, policy_revision=registry.revision,
            combining_rule="flow-legal-basis", matched_provision=f"flow:{flow.id}",
        )
    relevant = [c for c in _latest_per_lineage(consents) if _covers(c, request)]
    active = [c for c in relevant if c.status == "active" and c.in_period(now)]
    denying = [c for c in active if c.decision == "deny"]
    if denying:
        return _deny(request, registry, "no-applicable-consent", flow, denying[0].ref, rule="deny-overrides")
    permitting = sorted((c for c in active if c.decision == "permit"), key=lambda c: c.ref)
    if permitting:
        consent = permitting[0]
        return Decision(
            decision_id=str(uuid.uuid4()), recipient=request.recipient, outcome="permit", reason=None, flow=flow,
            consent_ref=consent.ref, legal_basis=flow.legal_basis, policy_revision=registry.revision,
            combining_rule="deny-overrides", matched_provision=f"consent:{consent.ref}/provision",
        )
    if any(c.withdrawn for c in relevant):
        return _deny(request, registry, "consent-withdrawn", flow)
    if any(c.status == "active" and not c.in_period(now) for c in relevant):
        return _deny(request, registry, "consent-expired", flow)
    return _deny(request, registry, "no-applicable-consent", flow)
