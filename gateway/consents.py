"""Recording and withdrawing consent: a FHIR R4 Consent in, an immutable consent version stored.

Minimal consent registry of the foundation: one provision level (purposes, recipients, period), permit or
deny, withdrawal as a new version. Subjects are matched by codice fiscale under either Italian system URI
(or STP/ENI); the consent is stored under the subject's pseudonym. Every change is audited.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from fhir.resources.R4B.consent import Consent
from pydantic import ValidationError

from gateway.audit.record import AuditRecord, subject_ref
from gateway.errors import ContractViolation, NotFound
from gateway.identity.codice_fiscale import InvalidPersonIdentifier, classify, validate
from gateway.policy.consent import ConsentRecord, ConsentStatus
from gateway.policy.registry import PolicyRegistry
from gateway.settings import TopicSettings
from gateway.store import OutboxRow, Store
from schemas.errors import FieldProblem, problems_from_validation

__all__ = ["CF_SYSTEMS", "ORGANISATION_SYSTEM", "PURPOSE_SYSTEM", "ConsentService", "parse_fhir_consent"]

CF_SYSTEMS = frozenset({"http://hl7.it/sid/codiceFiscale", "urn:oid:2.16.840.1.113883.2.9.4.3.2"})
STP_ENI_SYSTEM = "https://gateway.quartieri.example/fhir/sid/stp-eni"
PURPOSE_SYSTEM = "https://gateway.quartieri.example/fhir/CodeSystem/purpose"
ORGANISATION_SYSTEM = "https://gateway.quartieri.example/fhir/sid/organisation"

_STATUS: dict[str, ConsentStatus] = {
    "active": "active", "draft": "draft", "proposed": "draft", "inactive": "inactive", "rejected": "inactive",
    "entered-in-error": "entered-in-error",
}


def _problem(pointer: str, rule: str, message: str) -> ContractViolation:
    return ContractViolation("the Consent cannot be recorded", [FieldProblem(pointer, rule, message)])


def parse_fhir_consent(document: dict[str, Any], registry: PolicyRegistry) -> tuple[tuple[str, str], ConsentRecord]:
    """A FHIR R4 Consent -> ((identifier system, value), consent record without pseudonym or id)."""
    if document.get("resourceType") != "Consent":
        raise _problem("/resourceType", "resource-type", "send a FHIR R4 Consent resource")
    try:
        consent = Consent.model_validate(document)
    except ValidationError as exc:
        raise ContractViolation("the Consent is not valid FHIR R4", problems_from_validation(exc)) from None
    identifier = _subject_identifier(consent)
    provision = consent.provision
    if provision is None or provision.type not in ("permit", "deny"):
        raise _problem("/provision/type", "required", "state provision.type: permit or deny")
    purposes = frozenset(c.code for c in provision.purpose or [] if c.system == PURPOSE_SYSTEM and c.code)
    if not purposes:
        raise _problem("/provision/purpose", "required", f"name at least one purpose in system {PURPOSE_SYSTEM}")
    unknown = [i for i, c in enumerate(provision.purpose or []) if c.system == PURPOSE_SYSTEM
               and c.code not in registry.purposes]
    if unknown:
        raise _problem(f"/provision/purpose/{unknown[0]}/code", "code-list",
                       "not a purpose of the gateway's vocabulary (see the records of processing)")
    recipients = frozenset(
        a.reference.identifier.value
        for a in provision.actor or []
        if a.reference and a.reference.identifier and a.reference.identifier.system == ORGANISATION_SYSTEM
        and a.reference.identifier.value
    )
    if any(r not in registry.partners for r in recipients):
        raise _problem("/provision/actor", "code-list", "an actor names an organisation that is not a partner")
    period = provision.period
    decision: Literal["permit", "deny"] = "permit" if provision.type == "permit" else "deny"
    if consent.status not in _STATUS:
        raise _problem("/status", "code-list", f"status must be one of: {', '.join(sorted(_STATUS))}")
    record = ConsentRecord(
        consent_id="", version=1, subject_pseudonym="", status=_STATUS[str(consent.status)],
        decision=decision, purposes=purposes, recipients=recipients,
        period_start=_aware(period.start) if period and period.start else None,
        period_end=_aware(period.end) if period and period.end else None,
    )
    return identifier, record


def _aware(value: Any) -> datetime:
    """A FHIR dateTime as an aware datetime; partial dates ("2026", "2026-01") start at their first day."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if hasattr(value, "day"):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    text = str(value)
    parts = [int(p) for p in text.split("-")[:2]]
    return datetime(parts[0], parts[1] if len(parts) > 1 else 1, 1, tzinfo=UTC)


def _subject_identifier(consent: Consent) -> tuple[str, str]:
    patient = consent.patient
    ident = patient.identifier if patient else None
    if ident is None or not ident.value:
        raise _problem("/patient/identifier", "required", "identify the person by codice fiscale, STP or ENI code")
    if ident.system not in CF_SYSTEMS and ident.system != STP_ENI_SYSTEM:
        systems = ", ".join(sorted([*CF_SYSTEMS, STP_ENI_SYSTEM]))
        raise _problem("/patient/identifier/system", "identifier-system", f"use one of: {systems}")
    try:
        kind = classify(ident.value)
    except InvalidPersonIdentifier as exc:
        raise _problem("/patient/identifier/value", "identifier", exc.reason) from None
    return kind, validate(ident.value) if kind == "cf" else ident.value.upper()


class ConsentService:
    """Records, withdraws and reads consents; each change commits with its audit record."""

    def __init__(self, store: Store, registry: PolicyRegistry, instance_id: str, topics: TopicSettings,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.store = store
        self.registry = registry
        self.instance_id = instance_id
        self.topics = topics
        self.clock = clock
        self.on_enqueued: Callable[[], None] | None = None
        """Called after a withdrawal queued its event and notices (the relay's wake-up)."""

    async def record(self, document: dict[str, Any], organisation: str, client_id: str,
                     request_id: str) -> ConsentRecord:
        (system, value), draft = parse_fhir_consent(document, self.registry)
        now = self.clock()
        async with self.store.transaction() as tx:
            subject = await tx.subject(system, value, create=True)
            assert subject is not None
            record = ConsentRecord(
                consent_id=f"cns-{uuid.uuid4()}", version=1, subject_pseudonym=subject.pseudonym,
                status=draft.status, decision=draft.decision, purposes=draft.purposes,
                recipients=draft.recipients, period_start=draft.period_start, period_end=draft.period_end,
                recorded_at=now,
            )
            await tx.add_consent(record, organisation)
            await tx.append_audit([self._audit("record-consent", record, subject.subject_key, organisation,
                                               client_id, request_id)])
        return record

    async def withdraw(self, consent_id: str, organisation: str, client_id: str, request_id: str) -> ConsentRecord:
        """Withdraw a consent (rule 10): a new, inactive version; one ``consent.withdrawn`` event on the
        consent-events topic; an art. 19 restriction notice to every recipient that received data under it
        (found from the disclosures); all in one transaction with their audit records. Withdrawing again
        changes nothing and emits nothing."""
        now = self.clock()
        async with self.store.transaction() as tx:
            versions = await tx.consent_versions(consent_id)
            if not versions or await tx.consent_recorded_by(consent_id) != organisation:
                raise NotFound("no consent with this id was recorded by your organisation")
            latest = versions[-1]
            if latest.withdrawn:
                return latest
            record = replace(latest, version=latest.version + 1, status="inactive", recorded_at=now, withdrawn=True)
            await tx.add_consent(record, organisation)
            subject = await tx.subject_by_pseudonym(latest.subject_pseudonym)
            key = subject.subject_key if subject else None
            disclosures = await tx.disclosures_under(consent_id)
            notices = self._restriction_notices(record, disclosures, now, request_id)
            await tx.enqueue([self._withdrawn_event(record, now, request_id), *notices])
            await tx.append_audit([
                self._audit("withdraw-consent", record, key, organisation, client_id, request_id),
                *(self._audit("restriction-notice", record, key, organisation, client_id, request_id,
                              recipient=n.recipient, message_id=n.message_id) for n in notices),
            ])
        if self.on_enqueued is not None:
            self.on_enqueued()
        return record

    async def reconsent(self, consent_id: str, organisation: str, client_id: str, request_id: str) -> ConsentRecord:
        """The person consents again: a new active version of the same lineage (earlier versions unchanged)."""
        now = self.clock()
        async with self.store.transaction() as tx:
            versions = await tx.consent_versions(consent_id)
            if not versions or await tx.consent_recorded_by(consent_id) != organisation:
                raise NotFound("no consent with this id was recorded by your organisation")
            latest = versions[-1]
            record = replace(latest, version=latest.version + 1, status="active", recorded_at=now, withdrawn=False)
            await tx.add_consent(record, organisation)
            subject = await tx.subject_by_pseudonym(latest.subject_pseudonym)
            await tx.append_audit([self._audit("reconsent", record, subject.subject_key if subject else None,
                                               organisation, client_id, request_id)])
        return record

    def _withdrawn_event(self, record: ConsentRecord, now: datetime, request_id: str) -> OutboxRow:
        body = {"event": "consent.withdrawn", "consent_ref": record.ref, "withdrawn_at": now.isoformat(),
                "purposes": sorted(record.purposes), "recipients": sorted(record.recipients)}
        return OutboxRow(
            topic=self.topics.consent_events(), recipient="gateway", message_id=f"withdrawn-{record.ref}",
            value=orjson.dumps(body), key=record.consent_id.encode(),
            headers=(("message-type", "consent.withdrawn"), ("request-id", request_id)), created_at=now,
        )

    def _restriction_notices(self, record: ConsentRecord, disclosures: list[tuple[str, str]], now: datetime,
                             request_id: str) -> list[OutboxRow]:
        by_recipient: dict[str, list[str]] = {}
        for recipient, message_id in disclosures:
            by_recipient.setdefault(recipient, []).append(message_id)
        notices = []
        for recipient, message_ids in sorted(by_recipient.items()):
            notice_id = f"notice-{uuid.uuid4()}"
            body = {
                "message_type": "consent.restriction-notice", "notice_id": notice_id, "consent_ref": record.ref,
                "withdrawn_at": now.isoformat(), "legal_reference": "GDPR art. 7(3), art. 19",
                "action": "stop-processing-and-erase-unless-another-basis-applies",
                "disclosures": sorted(message_ids),
                "acknowledge": f"POST /v1/partners/{recipient}/notices/{notice_id}/ack",
            }
            notices.append(OutboxRow(
                topic=self.topics.name("out", recipient), recipient=recipient, message_id=notice_id,
                value=orjson.dumps(body), key=record.subject_pseudonym.encode(),
                headers=(("message-id", notice_id), ("message-type", "consent.restriction-notice"),
                         ("request-id", request_id)),
                created_at=now, subject_pseudonym=record.subject_pseudonym,
            ))
        return notices

    async def acknowledge_notice(self, notice_id: str, organisation: str, client_id: str, request_id: str) -> None:
        """A recipient confirms it acted on a restriction notice; the acknowledgement is audited."""
        async with self.store.transaction() as tx:
            notice = await tx.outbox_message(organisation, notice_id)
            if notice is None or not notice_id.startswith("notice-"):
                raise NotFound("no restriction notice with this id was sent to your organisation")
            subject = await tx.subject_by_pseudonym(notice.subject_pseudonym) if notice.subject_pseudonym else None
            await tx.append_audit([AuditRecord(
                event_type="consent-change", action="notice-acknowledged", occurred_at=self.clock(),
                outcome="success", client_id=client_id, requesting_org=organisation, instance=self.instance_id,
                recipient_org=organisation, message_ids=(notice_id,), request_id=request_id,
                subject_ref=subject_ref(subject.subject_key) if subject and subject.subject_key else None,
            )])

    async def history(self, consent_id: str, organisation: str) -> list[ConsentRecord]:
        async with self.store.transaction() as tx:
            if await tx.consent_recorded_by(consent_id) != organisation:
                raise NotFound("no consent with this id was recorded by your organisation")
            return await tx.consent_versions(consent_id)

    def _audit(self, action: str, record: ConsentRecord, key: bytes | None, organisation: str, client_id: str,
               request_id: str, recipient: str | None = None, message_id: str | None = None) -> AuditRecord:
        return AuditRecord(
            event_type="consent-change", action=action, occurred_at=self.clock(), outcome="success",
            purpose=",".join(sorted(record.purposes)), consent_ref=record.ref, client_id=client_id,
            requesting_org=organisation, instance=self.instance_id, recipient_org=recipient,
            message_ids=(message_id,) if message_id else (),
            subject_ref=subject_ref(key) if key else None, request_id=request_id,
        )


