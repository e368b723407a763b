"""The last days of the audit log, counted for the privacy officers' overview: decisions per flow and day
(permitted, or denied by reason class), deliveries dropped at delivery, and consents given and withdrawn.

:class:`ActivityTally` keeps the counts in the store (``audit_activity_counts``, migration 0015) with a cursor
saying up to which record they count. The first refresh reads the records of the window once (found by a binary
search on the log, whose ``recorded_at`` never goes backwards), every later one only the records appended since.
Each worker refreshes them every few seconds (:mod:`gateway.privacy.overview`), so that an officer's look reads only
the last moments of the log, in milliseconds at any log size; a look reads at most a bounded number of records
itself and says how many are still to count. The counts keep the organisations each record names (sender,
recipient, requester) so that :meth:`ActivityTally.view` shows an officer only what their organisation is party
to, by the same rule as every other answer (:meth:`gateway.privacy.officer.Officer.concerns`). Recomputable,
never the only copy of anything: the audit log stays the evidence.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol

import orjson
from sqlalchemy import delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from gateway.store.tables import audit_activity_counts, audit_activity_cursor

if TYPE_CHECKING:
    from gateway.store import StoreTransaction

__all__ = ["BATCH", "DENIAL_CLASSES", "LOOK_LIMIT", "OVERVIEW_DAYS", "ActivityTally", "ActivityView", "Viewer",
           "reason_class"]

DENIAL_CLASSES = ("deny-consent", "deny-policy", "deny-sensitive", "deny-other")
_CONSENT = frozenset({"no-applicable-consent", "consent-expired", "consent-withdrawn", "objection-upheld"})
_POLICY = frozenset({"purpose-missing", "purpose-not-permitted", "recipient-not-permitted", "policy-unavailable"})
_SENSITIVE = frozenset({"sensitive-label-denied", "masked-at-source"})
BATCH = 10_000
OVERVIEW_DAYS = 30
"""Days the officers' overview counts (the console's home charts)."""
LOOK_LIMIT = 20_000
"""Most records one officer's look counts itself; the rest is left to the workers' refresh (the view says so)."""

Kind = Literal["decision", "drop", "consent"]


class Viewer(Protocol):
    """Who looks at the counts: an officer, who may see a record if :meth:`concerns` says so
    (:class:`gateway.privacy.officer.Officer`)."""

    def concerns(self, record: dict[str, Any]) -> bool: ...

_Key = tuple[str, str, str, str, str | None, str | None, str | None]
"""(day, kind, flow, series, source organisation, recipient organisation, requesting organisation)."""


def reason_class(reason: str | None) -> str:
    """The chart's class of a denial reason: consent, policy (purpose, recipient, registry), sensitive data."""
    if reason in _CONSENT:
        return "deny-consent"
    if reason in _POLICY:
        return "deny-policy"
    if reason in _SENSITIVE:
        return "deny-sensitive"
    return "deny-other"


def _counted(record: dict[str, object], day: str) -> _Key | None:
    event, flow = record.get("event_type"), str(record.get("flow_id") or "-")
    orgs = (record.get("source_org"), record.get("recipient_org"), record.get("requesting_org"))
    source, recipient, requesting = (str(o) if o else None for o in orgs)
    if event == "decision":
        series = "permit" if record.get("outcome") == "permit" else reason_class(str(record.get("reason") or ""))
        return day, "decision", flow, series, source, recipient, requesting
    if event == "delivery-dropped":
        return day, "drop", flow, "drop", source, recipient, requesting
    if event == "consent-change" and record.get("action") in ("record-consent", "withdraw-consent"):
        series = "given" if record.get("action") == "record-consent" else "withdrawn"
        return day, "consent", "-", series, source, recipient, requesting
    return None


@dataclass(frozen=True, slots=True)
class ActivityView:
    """What one officer may see of the window: counts by (kind, flow, series, day)."""

    days: tuple[str, ...]
    counts: dict[tuple[str, str, str, str], int]
    records_read: int
    """Records the tally read to bring itself up to date for this view (0 when nothing was appended)."""
    backlog: int = 0
    """Records of the log not counted yet (the workers count them within seconds)."""

    def series(self, kind: str, flow: str | None = None) -> dict[str, dict[str, int]]:
        """``{series: {day: count}}`` of ``kind``, for one flow or all of them."""
        found: dict[str, dict[str, int]] = {}
        for (k, f, s, day), n in self.counts.items():
            if k == kind and (flow is None or f == flow):
                found.setdefault(s, {}).setdefault(day, 0)
                found[s][day] += n
        return found

    def flows(self, kind: str = "decision") -> list[str]:
        return sorted({f for (k, f, _, _) in self.counts if k == kind})


class ActivityTally:
    """Counts of the last ``days`` days of the audit log, kept in the store (module docstring)."""

    def __init__(self, days: int = OVERVIEW_DAYS) -> None:
        self.days = days

    async def refresh(self, tx: StoreTransaction, now: datetime, limit: int | None = None) -> int:
        """Count the records appended since the last refresh (the whole window the first time), at most
        ``limit`` of them (None: all); returns how many were read. The cursor row is locked meanwhile, so two
        processes never count the same record twice."""
        start_day = (now - timedelta(days=self.days - 1)).date()
        oldest = start_day.isoformat()
        cursor = await _locked_cursor(tx)
        if cursor is None:
            since = datetime.combine(start_day, datetime.min.time(), tzinfo=now.tzinfo)
            cursor = await _new_cursor(tx, await tx.first_audit_index_recorded_since(since), oldest)
        next_index = cursor
        read = 0
        counts: Counter[_Key] = Counter()
        while limit is None or read < limit:
            batch = BATCH if limit is None else min(BATCH, limit - read)
            entries = await tx.audit_entries(next_index, batch)
            for entry in entries:
                day = entry["recorded_at"].date().isoformat()
                key = _counted(orjson.loads(entry["record"]), day) if day >= oldest else None
                if key is not None:
                    counts[key] += 1
            next_index += len(entries)
            read += len(entries)
            if len(entries) < batch:
                break
        await _add_counts(tx, counts)
        await tx.conn.execute(delete(audit_activity_counts).where(audit_activity_counts.c.day < oldest))
        await tx.conn.execute(update(audit_activity_cursor).where(audit_activity_cursor.c.id == 1)
                              .values(next_index=next_index, window_start=oldest))
        return read

    async def counts(self, tx: StoreTransaction, now: datetime) -> Counter[_Key]:
        """The stored counts of the window ending ``now``."""
        first = (now - timedelta(days=self.days - 1)).date().isoformat()
        c = audit_activity_counts.c
        rows = await tx.conn.execute(select(c.day, c.kind, c.flow, c.series, c.source_org, c.recipient_org,
                                            c.requesting_org, c.n).where(c.day >= first))
        return Counter({(day, kind, flow, series, source or None, recipient or None, requesting or None): n
                        for day, kind, flow, series, source, recipient, requesting, n in rows})

    async def backlog(self, tx: StoreTransaction) -> int:
        """Records appended since the counts were last brought up to date (the whole log before the first time)."""
        head = await tx.audit_head()
        cursor = (await tx.conn.execute(select(audit_activity_cursor.c.next_index))).scalar_one_or_none()
        return head.size - (cursor or 0)

    async def view(self, tx: StoreTransaction, officer: Viewer, now: datetime, records_read: int = 0) -> ActivityView:
        """The window as ``officer`` may see it."""
        first = (now - timedelta(days=self.days - 1)).date()
        days = tuple((first + timedelta(days=i)).isoformat() for i in range(self.days))
        counts: Counter[tuple[str, str, str, str]] = Counter()
        for (day, kind, flow, series, source, recipient, requesting), n in (await self.counts(tx, now)).items():
            if officer.concerns({"source_org": source, "recipient_org": recipient, "requesting_org": requesting}):
                counts[(kind, flow, series, day)] += n
        return ActivityView(days, dict(counts), records_read, await self.backlog(tx))


async def _locked_cursor(tx: StoreTransaction) -> int | None:
    query = select(audit_activity_cursor.c.next_index).where(audit_activity_cursor.c.id == 1).with_for_update()
    return (await tx.conn.execute(query)).scalar_one_or_none()


async def _new_cursor(tx: StoreTransaction, next_index: int, oldest: str) -> int:
    """Start counting at ``next_index``; if another process started meanwhile, its cursor (locked) wins."""
    try:
        async with tx.conn.begin_nested():
            await tx.conn.execute(insert(audit_activity_cursor).values(id=1, next_index=next_index,
                                                                       window_start=oldest))
        return next_index
    except IntegrityError:
        cursor = await _locked_cursor(tx)
        assert cursor is not None
        return cursor


async def _add_counts(tx: StoreTransaction, counts: Counter[_Key]) -> None:
    if not counts:
        return
    dialect_insert = postgresql_insert if tx.conn.dialect.name == "postgresql" else sqlite_insert
    rows = [{"day": day, "kind": kind, "flow": flow, "series": series, "source_org": source or "",
             "recipient_org": recipient or "", "requesting_org": requesting or "", "n": n}
            for (day, kind, flow, series, source, recipient, requesting), n in counts.items()]
    statement = dialect_insert(audit_activity_counts)
    await tx.conn.execute(statement.on_conflict_do_update(
        index_elements=[c for c in audit_activity_counts.primary_key.columns],
        set_={"n": audit_activity_counts.c.n + statement.excluded.n}), rows)
