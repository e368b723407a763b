"""The consent registry: a FHIR Consent in, an immutable consent version stored; withdrawal and re-consent
as new versions of the same lineage.

Parsing and producing FHIR is :mod:`gateway.consents.fhir`; the record is
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

from gateway.audit.record import AuditRecord
from gateway.consents.fhir import (
    CF_SYSTEMS,
    ORGANISATION_SYSTEM,
    PURPOSE_SYSTEM,
    STP_ENI_SYSTEM,
    FhirVersion,
    parse_consent,
)
from gateway.errors import NotFound
from gateway.pipeline import ledger
from gateway.policy.consent import ConsentRecord, GrantorRole, Withdrawal
from gateway.policy.registry import PolicyRegistry
from gateway.settings import TopicSettings
from gateway.store.ports import ConsentStore

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

    def __init__(self, store: ConsentStore, registry: PolicyRegistry, instance_id: str, topics: TopicSettings,
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
            notices = ledger.restriction_notices(record, disclosures, self.topics, now, request_id)
            await tx.enqueue([ledger.consent_withdrawn_event(record, self.topics, now, request_id), *notices])
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

    async def acknowledge_notice(self, notice_id: str, organisation: str, client_id: str, request_id: str) -> None:
        """A recipient confirms it acted on a restriction notice; the acknowledgement is audited."""
        async with self.store.transaction() as tx:
            notice = await tx.outbox_message(organisation, notice_id)
            if notice is None or not notice_id.startswith("notice-"):
                raise NotFound("no restriction notice with this id was sent to your organisation")
            subject = await tx.subject_by_pseudonym(notice.subject_pseudonym) if notice.subject_pseudonym else None
            await tx.append_audit([ledger.notice_acknowledged_record(
                notice_id, organisation, client_id, subject.subject_key if subject else None, self.instance_id,
                request_id, self.clock())])

    async def history(self, consent_id: str, organisation: str) -> list[ConsentRecord]:
        async with self.store.transaction() as tx:
            if await tx.consent_recorded_by(consent_id) != organisation:
                raise NotFound("no consent with this id was recorded by your organisation")
            return await tx.consent_versions(consent_id)

    def _audit(self, action: str, record: ConsentRecord, key: bytes | None, organisation: str, client_id: str,
               request_id: str, recipient: str | None = None, message_id: str | None = None) -> AuditRecord:
        return ledger.consent_change_record(action, record, key, organisation, client_id, request_id,
                                            self.instance_id, self.clock(), recipient=recipient,
                                            message_id=message_id)


