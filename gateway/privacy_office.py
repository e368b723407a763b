"""What privacy officers ask of the gateway: per-person disclosure reports (GDPR art. 15), records of
processing (art. 30) generated from the flow registry, the review queue of denials and drops, all carrying
the integrity status of the audit log at the time of the query — and every such query is itself audited.

Reports are built from the audit log alone: a person is found through the keyed per-subject reference, so
after erasure (the subject's key destroyed) their records can no longer be attributed to them.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.audit.record import AuditRecord, subject_ref
from gateway.audit.verify import verify_log
from gateway.identity.codice_fiscale import InvalidPersonIdentifier, classify, validate
from gateway.policy.registry import PolicyRegistry
from gateway.store import Store
from schemas.errors import FieldProblem

__all__ = ["DisclosureLine", "IntegrityStatus", "PrivacyOffice", "to_csv"]


@dataclass(frozen=True, slots=True)
class IntegrityStatus:
    """The audit log's state when a report was produced."""

    verified: bool
    tree_size: int
    root_hex: str
    checked_at: str
    first_bad_index: int | None = None


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


class PrivacyOffice:
    """Queries of the privacy-officer API; each one appends a ``privacy-query`` audit record."""

    def __init__(self, store: Store, registry: PolicyRegistry, instance_id: str,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.store = store
        self.registry = registry
        self.instance_id = instance_id
        self.clock = clock

    async def integrity(self) -> IntegrityStatus:
        async with self.store.transaction() as tx:
            head = await tx.audit_head()
            entries = await tx.audit_entries(0, head.size + 1)
        report = verify_log(entries, head)
        return IntegrityStatus(report.ok, report.size, report.root_hex, self.clock().isoformat(),
                               report.first_bad_index)

    async def disclosure_report(self, identifier: str, since: datetime | None, until: datetime | None,
                                officer: str, request_id: str) -> tuple[list[DisclosureLine], IntegrityStatus]:
        """Every decision, disclosure and drop about the person identified by a codice fiscale (or STP/ENI)."""
        system, value = _person(identifier)
        async with self.store.transaction() as tx:
            subject = await tx.subject(system, value, create=False)
            rows = await tx.audit_records_for(subject.subject_key) if subject and subject.subject_key else []
            await tx.append_audit([self._query_record("disclosure-report", officer, request_id,
                                                      subject_ref(subject.subject_key)
                                                      if subject and subject.subject_key else None)])
        lines = [self._line(row["idx"], json.loads(row["record"])) for row in rows]
        lines = [line for line in lines
                 if (since is None or line.occurred_at >= since.isoformat())
                 and (until is None or line.occurred_at < until.isoformat())]
        return lines, await self.integrity()

    async def review_queue(self, officer: str, request_id: str, limit: int = 500) -> list[dict[str, Any]]:
        """Denials, drops at delivery and emergency-flow decisions, newest first, for a privacy officer to
        review (rule 11)."""
        async with self.store.transaction() as tx:
            head = await tx.audit_head()
            entries = await tx.audit_entries(max(0, head.size - 20_000), 20_000)
            await tx.append_audit([self._query_record("review-queue", officer, request_id, None)])
        queue = []
        for entry in reversed(entries):
            record = json.loads(entry["record"])
            if record.get("outcome") == "deny" or "EMERGENCY" in record.get("labels", ()):
                queue.append({k: record.get(k) for k in (
                    "log_index", "event_type", "action", "outcome", "occurred_at", "reason", "purpose", "flow_id",
                    "source_org", "recipient_org", "decision_id", "consent_ref", "policy_revision")})
                if len(queue) >= limit:
                    break
        return queue

    def records_of_processing(self) -> list[dict[str, Any]]:
        """Art. 30 records, one per declared flow, straight from the flow registry."""
        partners = self.registry.partners
        return [
            {
                "flow": flow.id,
                "title": flow.title,
                "controller": partners[flow.sender].name,
                "recipient": partners[flow.recipient].name,
                "purpose": flow.purpose,
                "purpose_label_it": self.registry.purposes[flow.purpose].label_it,
                "legal_basis": flow.legal_basis,
                "consent_required": flow.consent.required,
                "categories_of_data": list(flow.allowed_fields),
                "sensitivity": flow.sensitivity,
                "retention_days": flow.retention_days,
                "policy_revision": self.registry.revision,
            }
            for flow in self.registry.flows
        ]

    async def audit_query(self, query: str, officer: str, request_id: str) -> None:
        async with self.store.transaction() as tx:
            await tx.append_audit([self._query_record(query, officer, request_id, None)])

    def _line(self, index: int, record: dict[str, Any]) -> DisclosureLine:
        recipient = record.get("recipient_org")
        partner = self.registry.partners.get(recipient) if recipient else None
        return DisclosureLine(
            log_index=index, event_type=record["event_type"], outcome=record["outcome"],
            occurred_at=record["occurred_at"], recipient=recipient, recipient_name=partner.name if partner else None,
            purpose=record.get("purpose"), legal_basis=record.get("legal_basis"),
            consent_ref=record.get("consent_ref"), flow_id=record.get("flow_id"),
            data_categories=tuple(record.get("data_categories", ())), reason=record.get("reason"),
        )

    def _query_record(self, query: str, officer: str, request_id: str, subject: str | None) -> AuditRecord:
        return AuditRecord(
            event_type="privacy-query", action=query, occurred_at=self.clock(), outcome="success",
            purpose="privacy-oversight", client_id=officer, requesting_org="gateway-privacy",
            instance=self.instance_id, subject_ref=subject, request_id=request_id,
        )


def _person(identifier: str) -> tuple[str, str]:
    from gateway.errors import ContractViolation

    try:
        kind = classify(identifier)
    except InvalidPersonIdentifier as exc:
        raise ContractViolation("the identifier is not a codice fiscale, STP or ENI code",
                                [FieldProblem("/identifier", "identifier", exc.reason)]) from None
    return kind, validate(identifier) if kind == "cf" else identifier.strip().upper()


def to_csv(rows: Sequence[dict[str, Any]], integrity: IntegrityStatus | None) -> str:
    """Rows as CSV; the integrity status goes in leading ``#`` comment lines."""
    out = io.StringIO()
    if integrity is not None:
        for key, value in asdict(integrity).items():
            out.write(f"# audit_{key}: {value}\n")
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ";".join(v) if isinstance(v, list | tuple) else v for k, v in row.items()})
    return out.getvalue()
