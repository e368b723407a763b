"""What privacy officers ask of the gateway: per-person disclosure reports (GDPR art. 15), records of
processing (art. 30) generated from the flow registry, the review queue of denials and drops, all carrying
the integrity status of the audit log at the time of the query — and every such query is itself audited —
and erasure (art. 17) of a person, which is audited too.

Reports are built from the audit log alone: a person is found through the keyed per-subject reference, so
after erasure (the subject's key destroyed) their records can no longer be attributed to them.

Integrity status (D-07): the same check as ``gateway audit verify --keys``: every record's hashes, the head,
and every signed checkpoint, whose signatures count only from the trusted keys — the public halves of the
signing keys this gateway is configured with, plus the keys the database lists as retired (each of those
verifies only checkpoints signed before its retirement). Where no signing key is configured (an API-only
process), the keys registered in the database are trusted instead, and the status says so.

Erasure takes two officers (:meth:`PrivacyOffice.request_erasure`, then :meth:`PrivacyOffice.approve_erasure`
by another one within a window); the request is an audit record carrying the person's keyed reference and
changes nothing else. :meth:`PrivacyOffice.erase` is the single step the operator's command uses.

Erasure (crypto-shredding): the subject's key is destroyed, so their audit references resolve to no one while
the log still verifies; their lookup hash is replaced, so their identifier no longer leads to them; the
payloads of the messages about them are emptied, and those not yet delivered are dropped. One ``erasure``
audit record says that it happened, by whom and how much was removed, and names no subject. An identifier the
gateway cannot link to anyone gets the answer ``no-subject``: after an erasure the identifier leads nowhere,
so "never seen" and "already erased" are the same state, and the officer is told that nothing linkable is
held (an ``erasure`` record with outcome ``failure`` and reason ``no-subject`` is written all the same).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol

from sqlalchemy import delete, insert, select

from gateway.audit.checkpoint import CheckpointError, KeyFormatError, VerifierKey, open_note
from gateway.audit.checkpointer import CheckpointSigningError
from gateway.audit.offline import verify_stored_log
from gateway.audit.record import AuditRecord, subject_ref
from gateway.identity.codice_fiscale import InvalidPersonIdentifier, classify, validate
from gateway.logging import get_logger
from gateway.pipeline import ledger
from gateway.policy.registry import PolicyRegistry
from gateway.privacy.activity import LOOK_LIMIT, ActivityTally, ActivityView
from gateway.store import Store, StoreTransaction
from gateway.store.tables import audit_integrity_checks
from schemas.errors import FieldProblem

if TYPE_CHECKING:
    from gateway.audit.checkpointer import AuditCheckpointer
    from gateway.settings import GatewaySettings

__all__ = [
    "DisclosureLine", "ErasureRequest", "ErasureResult", "IntegrityCache", "IntegrityStatus", "LatestCheckpoint",
    "Officer", "PrivacyOffice", "latest_integrity", "store_integrity", "to_csv",
]

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class LatestCheckpoint:
    """The most recent signed checkpoint, as the integrity check found it."""

    tree_size: int
    root_hex: str
    signed_at: str
    signed_by: tuple[str, ...]
    """``name+keyid`` of each trusted key whose signature on it verified (empty if none did)."""


@dataclass(frozen=True, slots=True)
class IntegrityStatus:
    """The audit log's state when a report was produced."""

    verified: bool
    """Chain and every signed checkpoint sound."""
    tree_size: int
    root_hex: str
    checked_at: str
    chain: Literal["ok", "broken"] = "ok"
    """Every record's hashes and the head recompute."""
    checkpoints: Literal["ok", "none", "broken"] = "none"
    """Every checkpoint's signatures verify with the trusted keys and its root is the records' root."""
    checkpoints_verified: int = 0
    trusted_keys: Literal["configured", "database"] = "database"
    """Where the trusted verifier keys came from (see the module docstring)."""
    latest_checkpoint: LatestCheckpoint | None = None
    unsigned_records: int = 0
    """Records appended after the latest checkpoint, which no signature vouches for yet."""
    first_bad_index: int | None = None
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class ErasureResult:
    """What an erasure request did."""

    outcome: Literal["erased", "no-subject"]
    audit_index: int
    """Log index of the ``erasure`` audit record."""
    payloads_purged: int = 0
    undelivered_dropped: int = 0


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


class IntegrityCache:
    """The last integrity status, shared by the answers of one process.

    Every full verification is kept in the store (:func:`store_integrity`), so that any process answers with the
    newest one at once: one younger than ``max_age_seconds`` as is; an older one as is too (its ``checked_at``
    says when it was made) while a new verification runs in the background, one at a time, for the next
    answers. Only when none was ever stored, or with ``max_age_seconds`` 0, does an answer wait for a
    verification; answers asked meanwhile wait for that one instead of each running their own. Recomputable,
    never the only copy of anything."""

    def __init__(self, max_age_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age_seconds = max_age_seconds
        self._clock = clock
        self._lock = asyncio.Lock()
        self._status: IntegrityStatus | None = None
        self._at = 0.0
        self._refreshing: asyncio.Task[None] | None = None

    async def get(self, verify: Callable[[], Awaitable[IntegrityStatus]],
                  stored: Callable[[], Awaitable[tuple[IntegrityStatus, float] | None]] | None = None,
                  ) -> IntegrityStatus:
        """The status to answer with; ``stored`` gives the newest stored one and its age in seconds."""
        async with self._lock:
            if self.max_age_seconds <= 0:
                return await verify()
            if self._status is not None and self._clock() - self._at < self.max_age_seconds:
                return self._status
            found = await stored() if stored is not None else None
            if found is None:
                status = await verify()
                self._status, self._at = status, self._clock()
                return status
            status, age = found
            self._status, self._at = status, self._clock() - age
            if age >= self.max_age_seconds and (self._refreshing is None or self._refreshing.done()):
                self._refreshing = asyncio.create_task(self._refresh(verify))
            return status

    async def _refresh(self, verify: Callable[[], Awaitable[IntegrityStatus]]) -> None:
        try:
            status = await verify()
        except Exception as exc:  # the stored status stays; the next stale answer tries again
            log.warning("integrity-refresh-failed", error_type=type(exc).__name__)
            return
        self._status, self._at = status, self._clock()


async def store_integrity(tx: StoreTransaction, status: IntegrityStatus, at: datetime, keep: int = 500) -> None:
    """Keep a full verification's outcome (the report only, which names no person), and the last ``keep``."""
    c = audit_integrity_checks.c
    await tx.conn.execute(insert(audit_integrity_checks).values(checked_at=at, tree_size=status.tree_size,
                                                                verified=status.verified, report=asdict(status)))
    oldest_kept = (await tx.conn.execute(select(c.id).order_by(c.id.desc()).offset(keep).limit(1))).scalar()
    if oldest_kept is not None:
        await tx.conn.execute(delete(audit_integrity_checks).where(c.id <= oldest_kept))


async def latest_integrity(tx: StoreTransaction) -> tuple[IntegrityStatus, datetime] | None:
    """The newest stored verification and when it was made, if any."""
    c = audit_integrity_checks.c
    row = (await tx.conn.execute(select(c.report, c.checked_at).order_by(c.id.desc()).limit(1))).first()
    if row is None:
        return None
    report, at = dict(row.report), row.checked_at
    latest = report.pop("latest_checkpoint", None)
    status = IntegrityStatus(**report, latest_checkpoint=LatestCheckpoint(
        latest["tree_size"], latest["root_hex"], latest["signed_at"], tuple(latest["signed_by"]))
        if latest else None)
    return status, at if at.tzinfo is not None else at.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Officer:
    """Who asks: recorded in the ``privacy-query`` audit record of every question."""

    client_id: str
    organisation: str
    token_id: str | None = None
    sees_all: bool = False
    """An officer of the gateway's data protection office: reports cover every organisation. Any other
    officer's reports cover only what their own organisation sent, received or recorded."""

    def concerns(self, record: dict[str, Any]) -> bool:
        """Whether this officer may see an audit record (as stored JSON): always for the data protection office,
        else only if the officer's organisation sent, received or recorded what it is about."""
        return self.sees_all or self.organisation in (
            record.get("source_org"), record.get("recipient_org"), record.get("requesting_org"))


@dataclass(frozen=True, slots=True)
class ErasureRequest:
    """A pending erasure: nothing is changed until a different officer approves it before ``expires_at``."""

    request_index: int
    """Log index of the ``request-erasure`` audit record; the approval names it."""
    expires_at: datetime


class WiredGateway(Protocol):
    """What :meth:`PrivacyOffice.for_gateway` reads of a wired :class:`gateway.bootstrap.Gateway` (named by
    its shape, so that this module does not import the bootstrap that imports it)."""

    @property
    def settings(self) -> GatewaySettings: ...
    @property
    def registry(self) -> PolicyRegistry: ...
    @property
    def store(self) -> Store: ...
    @property
    def checkpointer(self) -> AuditCheckpointer: ...
    @property
    def integrity(self) -> IntegrityCache: ...


class PrivacyOffice:
    """Queries of the privacy-officer API; each one appends a ``privacy-query`` audit record."""

    def __init__(self, store: Store, registry: PolicyRegistry, instance_id: str,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC), *, origin: str | None = None,
                 configured_keys: Sequence[VerifierKey] | None = None,
                 integrity_cache: IntegrityCache | None = None) -> None:
        self.store = store
        self.integrity_cache = integrity_cache
        """Shares recent integrity statuses between answers; None: verify for each one."""
        self.registry = registry
        self.instance_id = instance_id
        self.clock = clock
        self.origin = origin
        """The only log name checkpoints may carry (any, if None)."""
        self.configured_keys = tuple(configured_keys) if configured_keys else None
        """Public halves of the configured checkpoint signing keys; None: trust the database's keys."""

    @classmethod
    def for_gateway(cls, gateway: WiredGateway) -> PrivacyOffice:
        """The privacy office of a wired gateway, trusting the public halves of its checkpoint signing keys."""
        try:
            configured: list[VerifierKey] | None = [k.verifier for k in gateway.checkpointer.signing_keys()]
        except (CheckpointSigningError, KeyFormatError, OSError):  # no key here: trust the database's keys
            configured = None
        return cls(gateway.store, gateway.registry, gateway.settings.instance_id,
                   origin=gateway.settings.audit_origin, configured_keys=configured,
                   integrity_cache=gateway.integrity)

    async def integrity(self) -> IntegrityStatus:
        """The log's integrity status: the newest stored verification (:class:`IntegrityCache` says when one is
        made anew), else verified now."""
        if self.integrity_cache is None:
            return await self.verify_integrity()
        return await self.integrity_cache.get(self.verify_integrity, self.stored_integrity)

    async def stored_integrity(self) -> tuple[IntegrityStatus, float] | None:
        """The newest stored verification and its age in seconds, if any."""
        async with self.store.transaction() as tx:
            found = await latest_integrity(tx)
        if found is None:
            return None
        status, at = found
        return status, max(0.0, (self.clock() - at).total_seconds())

    async def verify_integrity(self) -> IntegrityStatus:
        """Recompute the log and check its signed checkpoints (the module docstring says with which keys); the
        outcome is stored for every process's answers."""
        status = await self._verify_integrity()
        async with self.store.transaction() as tx:
            await store_integrity(tx, status, self.clock())
        return status

    async def _verify_integrity(self) -> IntegrityStatus:
        async with self.store.transaction() as tx:
            stored_keys = await tx.audit_signing_keys()
        trusted: list[VerifierKey] | None = None
        if self.configured_keys is not None:
            trusted = list(self.configured_keys)
            trusted += [k.verifier for k in stored_keys if k.retired_at is not None and k.verifier not in trusted]
        report = await verify_stored_log(self.store, self.origin, trusted)
        async with self.store.transaction() as tx:
            latest = await tx.latest_audit_checkpoint()
        latest_status = None
        if latest is not None:
            try:
                signers = open_note(latest.note, trusted or [k.verifier for k in stored_keys]).verified_by
            except CheckpointError:
                signers = ()
            latest_status = LatestCheckpoint(latest.tree_size, latest.root_hash.hex(), latest.signed_at.isoformat(),
                                             tuple(f"{k.name}+{k.key_id.hex()}" for k in signers))
        if report.bad_checkpoint is not None or (report.first_bad_index is not None and report.chain_ok):
            checkpoints: Literal["ok", "none", "broken"] = "broken"
        else:
            checkpoints = "ok" if latest is not None else "none"
        return IntegrityStatus(
            verified=report.ok, tree_size=report.size, root_hex=report.root_hex, checked_at=self.clock().isoformat(),
            chain="ok" if report.chain_ok else "broken", checkpoints=checkpoints,
            checkpoints_verified=report.checkpoints,
            trusted_keys="configured" if self.configured_keys is not None else "database",
            latest_checkpoint=latest_status,
            unsigned_records=max(0, report.size - latest.tree_size) if latest is not None else report.size,
            first_bad_index=report.first_bad_index, problem=report.problem,
        )

    async def erase(self, identifier: str, officer: Officer, request_id: str) -> ErasureResult:
        """Erase the person with this codice fiscale (or STP/ENI code) by crypto-shredding; always audited."""
        system, value = _person(identifier)
        async with self.store.transaction() as tx:
            subject = await tx.subject(system, value, create=False)
            counts: dict[str, int] | None = None
            if subject is not None:
                purged, dropped = await tx.purge_subject_payloads(subject.pseudonym)
                await tx.erase_subject(subject.pseudonym)
                counts = {"outbox-payloads": purged, "undelivered-dropped": dropped}
            [entry] = await tx.append_audit([ledger.erasure_record(
                subject is not None, counts, officer.client_id, officer.token_id, officer.organisation,
                self.instance_id, request_id, self.clock())])
        if counts is None:
            return ErasureResult("no-subject", entry.index)
        return ErasureResult("erased", entry.index, counts["outbox-payloads"], counts["undelivered-dropped"])

    async def request_erasure(self, identifier: str, officer: Officer, request_id: str,
                              window: timedelta) -> ErasureRequest:
        """First step of an erasure: record the request (audited, with the person's keyed reference) and change
        nothing else. A different officer approves it with :meth:`approve_erasure` within ``window``."""
        system, value = _person(identifier)
        now = self.clock()
        async with self.store.transaction() as tx:
            subject = await tx.subject(system, value, create=False)
            ref = subject_ref(subject.subject_key) if subject and subject.subject_key else None
            [entry] = await tx.append_audit([ledger.erasure_request_record(
                officer.client_id, officer.token_id, officer.organisation, self.instance_id, request_id, now, ref)])
        return ErasureRequest(entry.index, now + window)

    async def approve_erasure(self, request_index: int, identifier: str, officer: Officer, request_id: str,
                              window: timedelta) -> ErasureResult:
        """Second step: a different officer names the request and the same person again; the erasure happens
        only if the request exists, is younger than ``window``, was made by someone else, and the identifier
        leads to the person it was made for (so a request is spent once the person is erased)."""
        from gateway.errors import Conflict, NotFound, SameOfficer

        system, value = _person(identifier)
        async with self.store.transaction() as tx:
            entry = await tx.audit_entry(request_index)
            request = json.loads(entry["record"]) if entry is not None else {}
            if (request.get("event_type"), request.get("action")) != ("erasure", "request-erasure"):
                raise NotFound(f"no erasure request at audit record {request_index}")
            if request.get("client_id") == officer.client_id:
                raise SameOfficer("the officer who requested an erasure cannot approve it; another officer must")
            if self.clock() - _aware(datetime.fromisoformat(request["occurred_at"])) > window:
                raise Conflict("the erasure request has lapsed; request the erasure again")
            subject = await tx.subject(system, value, create=False)
            ref = subject_ref(subject.subject_key) if subject and subject.subject_key else None
            if ref != request.get("subject_ref"):
                raise Conflict("the identifier does not lead to the person of the erasure request (another person, "
                               "or the request was carried out already)",
                               [FieldProblem("/identifier", "mismatch", "give the identifier the request was for")])
            counts: dict[str, int] | None = None
            if subject is not None:
                purged, dropped = await tx.purge_subject_payloads(subject.pseudonym)
                await tx.erase_subject(subject.pseudonym)
                counts = {"outbox-payloads": purged, "undelivered-dropped": dropped}
            [done] = await tx.append_audit([ledger.erasure_record(
                subject is not None, counts, officer.client_id, officer.token_id, officer.organisation,
                self.instance_id, request_id, self.clock(), approves=request_index)])
        if counts is None:
            return ErasureResult("no-subject", done.index)
        return ErasureResult("erased", done.index, counts["outbox-payloads"], counts["undelivered-dropped"])

    async def disclosure_report(self, identifier: str, since: datetime | None, until: datetime | None,
                                officer: Officer, request_id: str) -> tuple[list[DisclosureLine], IntegrityStatus]:
        """Every decision, disclosure and drop about the person identified by a codice fiscale (or STP/ENI)."""
        system, value = _person(identifier)
        async with self.store.transaction() as tx:
            subject = await tx.subject(system, value, create=False)
            rows = await tx.audit_records_for(subject.subject_key) if subject and subject.subject_key else []
            await tx.append_audit([self._query_record("disclosure-report", officer, request_id,
                                                      subject_ref(subject.subject_key)
                                                      if subject and subject.subject_key else None)])
        records = [(row["idx"], json.loads(row["record"])) for row in rows]
        lines = [self._line(index, record) for index, record in records if officer.concerns(record)]
        lines = [line for line in lines if _within(line.occurred_at, since, until)]
        return lines, await self.integrity()

    async def consent_history(self, identifier: str, officer: Officer, request_id: str) -> list[dict[str, Any]]:
        """Every version of every consent of the person (D-06), oldest first, each with the notice text the
        person was shown (from the notice registry, checked against the hash the consent recorded) and whether
        the stored version still hashes to what the audit log recorded when it was written."""
        system, value = _person(identifier)
        async with self.store.transaction() as tx:
            subject = await tx.subject(system, value, create=False)
            versions = await tx.consents_for(subject.pseudonym) if subject else []
            logged = await tx.audit_records_for(subject.subject_key) if subject and subject.subject_key else []
            await tx.append_audit([self._query_record("consent-history", officer, request_id,
                                                      subject_ref(subject.subject_key)
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
            notice = self.registry.notice(shown.uri, shown.version) if shown else None
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

    async def review_queue(self, officer: Officer, request_id: str, limit: int = 500,
                           reviewed: bool | None = False) -> list[dict[str, Any]]:
        """The review queue (rule 11): denials, drops at delivery and emergency-override decisions, each with
        its audit record's coded fields, newest first; open items by default (``reviewed`` True: closed ones,
        None: both)."""
        async with self.store.transaction() as tx:
            items = await self._own_review_items(tx, officer, limit, reviewed)
            await tx.append_audit([self._query_record("review-queue", officer, request_id, None)])
        queue = []
        for item, record in items:
            queue.append({
                "log_index": item["audit_index"], "kind": item["kind"], "alert": bool(record.get("alert")),
                **{k: record.get(k) for k in (
                    "event_type", "action", "outcome", "occurred_at", "reason", "purpose", "flow_id", "source_org",
                    "recipient_org", "decision_id", "consent_ref", "policy_revision")},
                "reviewed_at": _iso(item["reviewed_at"]), "reviewed_by": item["reviewed_by"],
                "resolution": item["resolution"], "comment": item.get("comment"),
            })
        return queue

    @staticmethod
    async def _own_review_items(tx: StoreTransaction, officer: Officer, limit: int,
                                reviewed: bool | None) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """Up to ``limit`` review items (with their parsed records) the officer may see, newest first; for an
        officer outside the data protection office, fetched in growing pages until enough concern them."""
        fetch = limit
        while True:
            items = await tx.review_items(fetch, reviewed=reviewed)
            own = [(item, record) for item in items
                   if officer.concerns(record := json.loads(item["record"]))]
            if len(own) >= limit or len(items) < fetch:
                return own[:limit]
            fetch *= 4

    async def close_review(self, audit_index: int, resolution: str, officer: Officer, request_id: str,
                           comment: str | None = None) -> None:
        """Close an open review item with a resolution (and a comment kept with the item, never in the log); the
        review is itself audited. An officer outside the data protection office closes only items their
        organisation sent or received (else: not found)."""
        from gateway.errors import NotFound

        async with self.store.transaction() as tx:
            entry = await tx.audit_entry(audit_index)
            if entry is None or not officer.concerns(json.loads(entry["record"])):
                raise NotFound(f"no open review item for audit record {audit_index}")
            if not await tx.close_review_item(audit_index, officer.client_id, resolution, self.clock(), comment):
                raise NotFound(f"no open review item for audit record {audit_index}")
            await tx.append_audit([self._query_record(f"review-{resolution}", officer, request_id, None,
                                                      f"audit-log/{audit_index}")])

    def records_of_processing(self, officer: Officer | None = None) -> list[dict[str, Any]]:
        """Art. 30 records, one per declared flow, straight from the flow registry; for an officer outside the
        data protection office, only the flows their organisation sends or receives."""
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
            if officer is None or officer.sees_all or officer.organisation in (flow.sender, flow.recipient)
        ]

    async def audit_record(self, index: int, officer: Officer, request_id: str
                           ) -> tuple[dict[str, Any], str, dict[str, Any] | None]:
        """One audit record the officer may see (else not found, as if absent): the record, its stored canonical
        text (what the log hashed) and its review item, if it has one. Audited as a ``read-audit-record``."""
        from gateway.errors import NotFound

        async with self.store.transaction() as tx:
            entry = await tx.audit_entry(index)
            record = json.loads(entry["record"]) if entry is not None else None
            if entry is None or record is None or not officer.concerns(record):
                raise NotFound(f"no audit record at index {index}")
            item = await tx.review_item(index)
            await tx.append_audit([self._query_record("read-audit-record", officer, request_id,
                                                      record.get("subject_ref"), f"audit-log/{index}")])
        return record, str(entry["record"]), item

    async def daily_activity(self, officer: Officer, request_id: str, tally: ActivityTally) -> ActivityView:
        """The last days of decisions, drops and consent changes the officer may see, counted per flow and day
        (:mod:`gateway.privacy.activity`); the look is audited like every other."""
        now = self.clock()
        async with self.store.transaction() as tx:
            read = await tally.refresh(tx, now, limit=LOOK_LIMIT)
            view = await tally.view(tx, officer, now, read)
            await tx.append_audit([self._query_record("daily-activity", officer, request_id, None)])
        return view

    async def audit_page(self, officer: Officer, request_id: str, before: int | None, limit: int = 50,
                         event_types: Sequence[str] = ()) -> tuple[list[tuple[int, dict[str, Any]]], int | None]:
        """One page of the audit log, newest first, of records the officer may see, below index ``before``
        (keyset pagination); with the ``before`` of the next page (None at the end). Audited."""
        found: list[tuple[int, dict[str, Any]]] = []
        cursor, fetch, ended = before, limit, False
        async with self.store.transaction() as tx:
            while len(found) < limit and not ended:
                rows = await tx.audit_entries_before(cursor, fetch, event_types)
                ended = len(rows) < fetch
                for row in rows:
                    cursor = row["idx"]
                    record = json.loads(row["record"])
                    if officer.concerns(record):
                        found.append((row["idx"], record))
                        if len(found) == limit:
                            break
                fetch = min(fetch * 4, 10_000)
            await tx.append_audit([self._query_record(
                "audit-log-page", officer, request_id, None,
                f"audit-log/<{before}" if before is not None else "audit-log/latest")])
        next_before = found[-1][0] if found and len(found) == limit and (found[-1][0] > 0) else None
        return found, next_before

    async def audit_query(self, query: str, officer: Officer, request_id: str, queried_ref: str | None = None,
                          subject: str | None = None) -> None:
        """Record a question asked elsewhere (records of processing, audit-log reads) in its own transaction."""
        async with self.store.transaction() as tx:
            await tx.append_audit([self._query_record(query, officer, request_id, subject, queried_ref)])

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

    def _query_record(self, query: str, officer: Officer, request_id: str, subject: str | None,
                      queried_ref: str | None = None) -> AuditRecord:
        return ledger.privacy_query_record(query, officer.client_id, officer.token_id, officer.organisation,
                                           self.instance_id, request_id, self.clock(), subject, queried_ref)


def _within(occurred_at: str, since: datetime | None, until: datetime | None) -> bool:
    """Whether a record's time falls in [since, until), compared as instants (partners send their own UTC
    offsets; a bound without one is UTC)."""
    at = _aware(datetime.fromisoformat(occurred_at))
    return (since is None or at >= _aware(since)) and (until is None or at < _aware(until))


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else _aware(value).isoformat()


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
