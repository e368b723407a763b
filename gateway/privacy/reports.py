"""The reports privacy officers read: what was disclosed about a person (GDPR art. 15), the versions of their
consents with the notice they were shown (D-06), the records of processing (art. 30) generated from the flow
registry, and any of them as CSV.

Reports are built from the audit log alone: a person is found through the keyed per-subject reference, so after
erasure (the subject's key destroyed) their records can no longer be attributed to them. An officer outside the
data protection office sees only what their own organisation sent, received or recorded.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from gateway.audit.record import subject_ref
from gateway.policy.registry import PolicyRegistry
from gateway.privacy.officer import Officer, Question, aware, person_identifier

if TYPE_CHECKING:
    from gateway.privacy.integrity import IntegrityStatus
    from gateway.store import Store

__all__ = ["DisclosureLine", "consent_history", "disclosure_lines", "records_of_processing", "to_csv"]


@dataclass(frozen=True, slots=True)
class DisclosureLine:
    """One audited event about the person, as art. 15 asks: what, to whom, when, why, on which basis."""

    log_index: int
    event_type: str
    outcome: str
    occurred_at: str
    recipient: str | None
    recipient_name: str | None
    purpose: str | None
    legal_basis: str | None
    consent_ref: str | None
    flow_id: str | None
    data_categories: tuple[str, ...]
    reason: str | None


async def disclosure_lines(store: Store, registry: PolicyRegistry, identifier: str, since: datetime | None,
                           until: datetime | None, question: Question) -> list[DisclosureLine]:
    """Every decision, disclosure and drop about the person identified by a codice fiscale (or STP/ENI) that the
    officer may see, in [since, until); the question is audited."""
    system, value = person_identifier(identifier)
    async with store.transaction() as tx:
        subject = await tx.subject(system, value, create=False)
        rows = await tx.audit_records_for(subject.subject_key) if subject and subject.subject_key else []
        await tx.append_audit([question.audit("disclosure-report", subject_ref(subject.subject_key)
                                              if subject and subject.subject_key else None)])
    records = [(row["idx"], json.loads(row["record"])) for row in rows]
    lines = [_line(registry, index, record) for index, record in records if question.officer.concerns(record)]
    return [line for line in lines if _within(line.occurred_at, since, until)]


async def consent_history(store: Store, registry: PolicyRegistry, identifier: str,
                          question: Question) -> list[dict[str, Any]]:
    """Every version of every consent of the person (D-06), oldest first, each with the notice text the person
    was shown (from the notice registry, checked against the hash the consent recorded) and whether the stored
    version still hashes to what the audit log recorded when it was written; the question is audited."""
    officer = question.officer
    system, value = person_identifier(identifier)
    async with store.transaction() as tx:
        subject = await tx.subject(system, value, create=False)
        versions = await tx.consents_for(subject.pseudonym) if subject else []
        logged = await tx.audit_records_for(subject.subject_key) if subject and subject.subject_key else []
        await tx.append_audit([question.audit("consent-history", subject_ref(subject.subject_key)
                                              if subject and subject.subject_key else None)])
    logged_records = [json.loads(row["record"]) for row in logged]
    audited = {r.get("consent_ref"): r.get("consent_hash") for r in logged_records if r.get("consent_hash")}
    recorded_by = {r.get("consent_ref"): (r.get("requesting_org"), r.get("client_id")) for r in logged_records
                   if r.get("event_type") == "consent-change" and r.get("consent_hash")}
    if not officer.sees_all:  # only the versions the officer's own organisation recorded
        own = {r.get("consent_ref") for r in logged_records
               if r.get("event_type") == "consent-change" and r.get("requesting_org") == officer.organisation}
        versions = [v for v in versions if v.ref in own]
    history = []
    for record in sorted(versions, key=lambda r: (r.recorded_at or datetime.min.replace(tzinfo=UTC), r.ref)):
        shown = record.notice
        notice = registry.notice(shown.uri, shown.version) if shown else None
        history.append({
            "consent_ref": record.ref, "recorded_at": record.recorded_at.isoformat() if record.recorded_at
            else None, "status": record.status, "decision": record.decision,
            "consent_type": record.consent_type, "purposes": sorted(record.purposes),
            "recipients": sorted(record.recipients), "grantor": record.grantor.role,
            "withdrawn": record.withdrawn, "record_hash": record.record_hash,
            "recorded_by_org": recorded_by.get(record.ref, (None, None))[0],
            "recorded_by_client": recorded_by.get(record.ref, (None, None))[1],
            "matches_audit_log": audited.get(record.ref) == record.record_hash,
            "notice_uri": shown.uri if shown else None, "notice_version": shown.version if shown else None,
            "notice_status": notice.status if notice else None,
            "notice_text": notice.text if notice and shown and notice.text_hash == shown.text_hash else None,
            "record": {k: v for k, v in record.document().items() if k != "subject"},
        })
    return history


def records_of_processing(registry: PolicyRegistry, officer: Officer | None = None) -> list[dict[str, Any]]:
    """Art. 30 records, one per declared flow, straight from the flow registry; for an officer outside the data
    protection office, only the flows their organisation sends or receives."""
    partners = registry.partners
    return [
        {
            "flow": flow.id,
            "title": flow.title,
            "controller": partners[flow.sender].name,
            "recipient": partners[flow.recipient].name,
            "purpose": flow.purpose,
            "purpose_label_it": registry.purposes[flow.purpose].label_it,
            "legal_basis": flow.legal_basis,
            "consent_required": flow.consent.required,
            "categories_of_data": list(flow.allowed_fields),
            "sensitivity": flow.sensitivity,
            "retention_days": flow.retention_days,
            "policy_revision": registry.revision,
        }
        for flow in registry.flows
        if officer is None or officer.sees_all or officer.organisation in (flow.sender, flow.recipient)
    ]


def to_csv(rows: Sequence[dict[str, Any]], integrity: IntegrityStatus | None) -> str:
    """Rows as CSV; the integrity status goes in leading ``#`` comment lines."""
    out = io.StringIO()
    if integrity is not None:
        for key, value in asdict(integrity).items():
            if isinstance(value, dict):
                for part, inner in value.items():
                    out.write(f"# audit_{key}_{part}: {';'.join(inner) if isinstance(inner, tuple) else inner}\n")
            else:
                out.write(f"# audit_{key}: {value}\n")
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ";".join(v) if isinstance(v, list | tuple) else v for k, v in row.items()})
    return out.getvalue()


def _line(registry: PolicyRegistry, index: int, record: dict[str, Any]) -> DisclosureLine:
    recipient = record.get("recipient_org")
    partner = registry.partners.get(recipient) if recipient else None
    return DisclosureLine(
        log_index=index, event_type=record["event_type"], outcome=record["outcome"],
        occurred_at=record["occurred_at"], recipient=recipient, recipient_name=partner.name if partner else None,
        purpose=record.get("purpose"), legal_basis=record.get("legal_basis"),
        consent_ref=record.get("consent_ref"), flow_id=record.get("flow_id"),
        data_categories=tuple(record.get("data_categories", ())), reason=record.get("reason"),
    )


def _within(occurred_at: str, since: datetime | None, until: datetime | None) -> bool:
    """Whether a record's time falls in [since, until), compared as instants (partners send their own UTC
    offsets; a bound without one is UTC)."""
    at = aware(datetime.fromisoformat(occurred_at))
    return (since is None or at >= aware(since)) and (until is None or at < aware(until))
