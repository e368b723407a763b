"""The consent registry: a FHIR Consent in, an immutable consent version stored; withdrawal and re-consent
as new versions of the same lineage.

Parsing and producing FHIR is :mod:`gateway.consent_fhir`; the record is
:class:`gateway.policy.consent.ConsentRecord`. Subjects are matched by codice fiscale under either Italian
system URI (or STP/ENI); the consent is stored under the subject's pseudonym. Every change is audited with
the hash of the version it created.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import orjson

from gateway.audit.record import AuditRecord, subject_ref
from gateway.consent_fhir import (
    CF_SYSTEMS,
    ORGANISATION_SYSTEM,
    PURPOSE_SYSTEM,
    STP_ENI_SYSTEM,
    FhirVersion,
    parse_consent,
)
from gateway.errors import NotFound
from gateway.policy.consent import ConsentRecord, GrantorRole, Withdrawal
from gateway.policy.registry import PolicyRegistry
from gateway.settings import TopicSettings
from gateway.store import OutboxRow, Store

__all__ = ["CF_SYSTEMS", "ORGANISATION_SYSTEM", "PURPOSE_SYSTEM", "STP_ENI_SYSTEM", "ConsentService",
           "WithdrawalRequest", "parse_fhir_consent"]


def parse_fhir_consent(document: dict[str, Any], registry: PolicyRegistry,
                       fhir_version: FhirVersion = "4.0") -> tuple[tuple[str, str], ConsentRecord]:
    """A FHIR R4 (or R5) Consent -> ((identifier kind, value), consent record without pseudonym or id)."""
    return parse_consent(document, registry, fhir_version)


@dataclass(frozen=True, slots=True)
class WithdrawalRequest:
    """Who withdraws, through which channel, on which evidence (all optional: the person by default)."""

    by: GrantorRole = "subject"
    channel: str | None = None
    evidence: str | None = None


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
                     request_id: str, fhir_version: FhirVersion = "4.0") -> ConsentRecord:
        (system, value), draft = parse_consent(document, self.registry, fhir_version)
        now = self.clock()
        async with self.store.transaction() as tx:
            subject = await tx.subject(system, value, create=True)
            assert subject is not None
            record = replace(draft, consent_id=f"cns-{uuid.uuid4()}", version=1,
                             subject_pseudonym=subject.pseudonym, recorded_at=now)
            await tx.add_consent(record, organisation)
            await tx.append_audit([self._audit("record-consent", record, subject.subject_key, organisation,
                                               client_id, request_id)])
        return record

    async def withdraw(self, consent_id: str, organisation: str, client_id: str, request_id: str,
                       how: WithdrawalRequest | None = None) -> ConsentRecord:
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
            await tx.hold_pending_under(consent_id)
            how = how or WithdrawalRequest()
            record = latest.next_version(status="inactive", recorded_at=now, withdrawn=True, withdrawal=Withdrawal(
                at=now, by=how.by, channel=how.channel, evidence=how.evidence))
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
            record = latest.next_version(status="active", recorded_at=now, withdrawn=False, withdrawal=None)
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
                value=orjson.dumps(body), key=record.consent_id.encode(),  # never the pseudonym: shared by all
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
            consent_hash=record.record_hash if message_id is None else None,
            requesting_org=organisation, instance=self.instance_id, recipient_org=recipient,
            message_ids=(message_id,) if message_id else (),
            subject_ref=subject_ref(key) if key else None, request_id=request_id,
        )


