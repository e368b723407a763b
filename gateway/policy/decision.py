"""The decision: may this message cross to this recipient, for this purpose, about this person?

Implements privacy.md rules 1-7, 12-16: deny by default; purpose required and in the vocabulary; the sender
entitled to claim it; a declared flow; data not masked at source and without a label the flow refuses; where
the flow requires it, an applicable consent (rule 4: latest version per lineage, active, inside its period,
grantor proven, notice not retired) whose provisions (rule 5: AND across elements, OR within, nested level
reversing) permit this purpose, recipient and data — explicit where the flow or a sensitive label (rule 7)
asks for it — with deny winning across instruments (rule 6). A flow that needs no consent rests on its
declared legal basis alone: losing or lacking consent never moves a consent-based flow onto another basis
(rule 14), and an objection the person recorded stops it unless the flow's basis excludes objection.
A permit names the sensitive labels it explicitly permits (:attr:`Decision.permitted_labels`): the elements
coded with any other sensitive label are redacted by the minimiser (rule 7, element level).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from gateway.policy.consent import ConsentRecord, Disclosure, Provision
from gateway.policy.registry import Flow, PolicyRegistry
from gateway.uuids import uuid7_text
from schemas.codelists import SENSITIVE_LABELS

__all__ = ["SENSITIVE_LABELS", "Decision", "DecisionRequest", "DenialReason", "applicable", "decide",
           "latest_per_lineage", "only_sensitive", "sender_reason_class"]

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
    "objection-upheld",
]
"""The closed list of denial reasons recorded in the audit log (privacy.md, plus ``objection-upheld`` for an
art. 21 objection to a flow that needs no consent, W-07)."""

_CONSENT_REASONS = frozenset({"no-applicable-consent", "consent-expired", "consent-withdrawn", "objection-upheld"})

# SENSITIVE_LABELS (schemas.codelists) — rule 7: violence, psychiatry / mental health, HIV, substance abuse,
# living arrangement. On a consent-based flow a message carrying one passes only with an explicit consent whose
# provision names it; an element coded with one is redacted unless the decision permits it.


def sender_reason_class(reason: DenialReason, flow: Flow | None = None) -> str:
    """What the sender is told (rule 13): consent-related reasons collapse into one class, so a denial never
    reveals whether a consent exists for that person. On a consent-based flow a sensitive-label denial collapses
    too: it is only reached once a consent permitted, so telling it apart would reveal that consent."""
    if reason in _CONSENT_REASONS or (reason == "sensitive-label-denied" and flow is not None
                                      and flow.consent.required):
        return "not-authorised"
    return reason


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
    occurred_at: datetime | None = None
    """When the data arose (a provision's data period is matched against it)."""

    @property
    def disclosure(self) -> Disclosure:
        return Disclosure(self.purpose, self.recipient, self.message_type, self.labels, self.occurred_at)


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
    consent_obligations: tuple[str, ...] = ()
    consent_refrains: tuple[str, ...] = ()
    """What the permitting consent asks of the recipient, on top of the flow's own labels."""
    permitted_labels: frozenset[str] = frozenset()
    """Sensitive labels explicitly permitted (rule 7): the ones the permitting explicit consent's matched
    provision names, or, on a flow that needs no consent, the ones the flow declares. Elements coded with any
    other sensitive label are redacted."""

    @property
    def permitted(self) -> bool:
        return self.outcome == "permit"

    @property
    def obligations(self) -> tuple[str, ...]:
        """Obligation labels the outgoing data carries: the flow's and the consent's (rule 8)."""
        declared = self.flow.obligations if self.flow else ()
        return tuple(dict.fromkeys((*declared, *self.consent_obligations)))

    @property
    def refrains(self) -> tuple[str, ...]:
        """Refrain labels the outgoing data carries: the flow's and the consent's (rule 8)."""
        declared = self.flow.refrains if self.flow else ()
        return tuple(dict.fromkeys((*declared, *self.consent_refrains)))


def _deny(request: DecisionRequest, registry: PolicyRegistry, reason: DenialReason, flow: Flow | None = None,
          consent_ref: str | None = None, rule: str = "deny-by-default", matched: str | None = None) -> Decision:
    return Decision(
        decision_id=uuid7_text(),
        recipient=request.recipient,
        outcome="deny",
        reason=reason,
        flow=flow,
        consent_ref=consent_ref,
        legal_basis=flow.legal_basis if flow else None,
        policy_revision=registry.revision,
        combining_rule=rule,
        matched_provision=matched,
    )


def latest_per_lineage(consents: Iterable[ConsentRecord]) -> list[ConsentRecord]:
    """The latest version of each consent lineage among ``consents`` (rule 4: only it counts)."""
    latest: dict[str, ConsentRecord] = {}
    for consent in consents:
        held = latest.get(consent.consent_id)
        if held is None or consent.version > held.version:
            latest[consent.consent_id] = consent
    return list(latest.values())


def applicable(consent: ConsentRecord, registry: PolicyRegistry, now: datetime) -> bool:
    """Rule 4: active, inside its period, given by someone proven entitled (C-22), on a notice version
    that is not retired (C-23)."""
    if consent.status != "active" or not consent.in_period(now) or not consent.grantor.proven:
        return False
    if consent.notice is None:
        return True
    notice = registry.notice(consent.notice.uri, consent.notice.version)
    return notice is not None and notice.status == "current"


@dataclass(frozen=True, slots=True)
class _Verdict:
    consent: ConsentRecord
    outcome: Literal["permit", "deny"]
    path: str
    provision: Provision

    @property
    def matched(self) -> str:
        return f"consent:{self.consent.ref}/{self.path}"


def _verdicts(consents: Iterable[ConsentRecord], request: DecisionRequest, now: datetime) -> list[_Verdict]:
    verdicts = []
    for consent in consents:
        if consent.subject_pseudonym != request.subject_pseudonym:
            continue
        said = consent.evaluate(request.disclosure, now)
        if said is not None:
            verdicts.append(_Verdict(consent, *said))
    return sorted(verdicts, key=lambda v: (v.consent.ref, v.path))


def _permits_sensitive(verdict: _Verdict, sensitive: frozenset[str], explicit_required: bool) -> bool:
    """Rule 7 and the flow's explicit requirement: an explicit consent whose matching provision names
    every sensitive label the message carries."""
    if (explicit_required or sensitive) and verdict.consent.consent_type != "explicit":
        return False
    return sensitive <= verdict.provision.security_labels


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
    latest = latest_per_lineage(consents)
    in_force = [c for c in latest if applicable(c, registry, now)]
    verdicts = _verdicts(in_force, request, now)
    denying = [v for v in verdicts if v.outcome == "deny"]
    if not flow.consent.required:
        if denying and flow.consent.objection:
            return _deny(request, registry, "objection-upheld", flow, denying[0].consent.ref, rule="objection",
                         matched=denying[0].matched)
        return _permit(request, registry, flow, None, "flow-legal-basis", f"flow:{flow.id}",
                       frozenset(flow.permitted_labels))
    if denying:
        return _deny(request, registry, "no-applicable-consent", flow, denying[0].consent.ref,
                     rule="deny-overrides", matched=denying[0].matched)
    sensitive = request.labels & SENSITIVE_LABELS
    permitting = [v for v in verdicts if v.outcome == "permit"]
    sufficient = [v for v in permitting if _permits_sensitive(v, sensitive, flow.consent.explicit)]
    if sufficient:
        verdict = sufficient[0]
        consent = verdict.consent
        named = verdict.provision.security_labels if consent.consent_type == "explicit" else frozenset()
        return _permit(request, registry, flow, consent.ref, "deny-overrides", verdict.matched, named,
                       consent_obligations=tuple(sorted(consent.obligations)),
                       consent_refrains=tuple(sorted(consent.refrains)))
    if permitting and sensitive:
        return _deny(request, registry, "sensitive-label-denied", flow, rule="sensitive-label")
    if permitting:
        return _deny(request, registry, "no-applicable-consent", flow, rule="explicit-consent-required")
    relevant = [c for c in latest if c.subject_pseudonym == request.subject_pseudonym
                and request.purpose in c.purposes]
    if any(c.withdrawn for c in relevant):
        return _deny(request, registry, "consent-withdrawn", flow)
    if any(c.status == "active" and not c.in_period(now) for c in relevant):
        return _deny(request, registry, "consent-expired", flow)
    return _deny(request, registry, "no-applicable-consent", flow)


def _permit(request: DecisionRequest, registry: PolicyRegistry, flow: Flow, consent_ref: str | None, rule: str,
            matched: str, explicit_labels: frozenset[str], consent_obligations: tuple[str, ...] = (),
            consent_refrains: tuple[str, ...] = ()) -> Decision:
    """A permit; of the labels explicitly permitted, the sensitive ones the flow does not refuse are kept, and
    the permitting consent's own obligation and refrain labels are carried (built in one go: a decision per
    message and recipient)."""
    return Decision(
        decision_id=uuid7_text(), recipient=request.recipient, outcome="permit", reason=None, flow=flow,
        consent_ref=consent_ref, legal_basis=flow.legal_basis, policy_revision=registry.revision,
        combining_rule=rule, matched_provision=matched, consent_obligations=consent_obligations,
        consent_refrains=consent_refrains,
        permitted_labels=(explicit_labels & SENSITIVE_LABELS) - set(flow.deny_labels),
    )


def only_sensitive(decision: Decision) -> Decision:
    """Rule 7: a permit turned into a denial because, once the elements coded with a label it does not permit
    were redacted, nothing the message is about was left (a message that is only sensitive data)."""
    return replace(decision, outcome="deny", reason="sensitive-label-denied", combining_rule="sensitive-element",
                   consent_obligations=(), consent_refrains=(), permitted_labels=frozenset())
