"""The last days of the audit log, counted for the privacy officers' overview: decisions per flow and day
(permitted, or denied by reason class), deliveries dropped at delivery, and consents given and withdrawn.

:class:`ActivityTally` keeps the counts in the store (``audit_activity_counts``, migration 0015) with a cursor
saying up to which record they count (``audit_activity_cursor``). What counts as what is defined once, in
:mod:`gateway.audit.overview`. Two writers advance the cursor, never over the same record:

- **The append of each batch of records** counts them as it writes them, in the same transaction, when the cursor
  stands exactly at the log's end (:meth:`gateway.store.audit_log.AuditLogRepository.append_audit`). On
  PostgreSQL it skips the cursor row if a refresh holds it locked, and leaves its records to the refresh, so an
  append never waits for one. So while the tally is caught up, the counts are current with every commit and no
  record is read again to be counted.
- **A refresh** counts the records the appends left: the window of the log the first time (found by a binary
  search on the log, whose ``recorded_at`` never goes backwards), then whatever was appended while the cursor was
  locked or behind. Each worker refreshes every few seconds (:mod:`gateway.privacy.overview`), so that an
  officer's look reads only the last moments of the log, in milliseconds at any log size; a look reads at most a
  bounded number of records itself and says how many are still to count. The database does this counting: one
  grouped statement per batch extracts the few fields a count depends on from each record's JSON (PostgreSQL's
  ``json_to_record``, SQLite's ``json_extract``) and sends back one row per distinct combination of them, so
  neither the records nor their parsing reach the gateway's process; :func:`~gateway.audit.overview.counted`
  then turns those few rows into the chart's keys.

The counts keep the organisations each record names (sender, recipient, requester) so that
:meth:`ActivityTally.view` shows an officer only what their organisation is party to, by the same rule as every
other answer (:meth:`gateway.privacy.officer.Officer.concerns`). Recomputable, never the only copy of anything:
the audit log stays the evidence.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol

from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from gateway.audit.overview import COUNTED_FIELDS, DENIAL_CLASSES, OverviewKey, counted, reason_class
from gateway.store.tables import audit_activity_counts, audit_activity_cursor, audit_head

if TYPE_CHECKING:
    from gateway.store import StoreTransaction

__all__ = ["BATCH", "DENIAL_CLASSES", "LOOK_LIMIT", "OVERVIEW_DAYS", "ActivityTally", "ActivityView", "Viewer",
           "reason_class"]

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

# The first :batch records from index :start (the rows ``audit_entries(start, batch)`` reads), grouped by their
# day and COUNTED_FIELDS, with how many records each group holds. Only the JSON of the event types counted can count is
# read; other records are grouped by day alone (their fields NULL), so that they still add to the number read.
# The day is the date of ``recorded_at`` as the driver hands it back: asyncpg returns ``timestamptz`` in UTC, and
# SQLite keeps the wall time it was given (UTC, the store's clock) as text ``YYYY-MM-DD HH:MM:SS.ffffff``.
_GROUPED_POSTGRESQL = text("""
SELECT to_char(a.recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day,
       r.event_type, r.flow_id, r.outcome, r.reason, r.action, r.source_org, r.recipient_org, r.requesting_org,
       count(*) AS n
FROM (SELECT recorded_at,
             CASE WHEN event_type IN ('decision', 'delivery-dropped', 'consent-change') THEN record::json
                  ELSE '{}'::json END AS record
      FROM audit_log WHERE idx >= :start ORDER BY idx LIMIT :batch) AS a
CROSS JOIN LATERAL json_to_record(a.record) AS r(event_type text, flow_id text, outcome text, reason text,
                                                 action text, source_org text, recipient_org text,
                                                 requesting_org text)
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9
""")
_GROUPED_SQLITE = text("""
SELECT substr(a.recorded_at, 1, 10) AS day,
       json_extract(a.record, '$.event_type'), json_extract(a.record, '$.flow_id'),
       json_extract(a.record, '$.outcome'), json_extract(a.record, '$.reason'), json_extract(a.record, '$.action'),
       json_extract(a.record, '$.source_org'), json_extract(a.record, '$.recipient_org'),
       json_extract(a.record, '$.requesting_org'),
       count(*) AS n
FROM (SELECT recorded_at,
             CASE WHEN event_type IN ('decision', 'delivery-dropped', 'consent-change') THEN record END AS record
      FROM audit_log WHERE idx >= :start ORDER BY idx LIMIT :batch) AS a
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9
""")


async def _count_batch(tx: StoreTransaction, start: int, batch: int, oldest: str, counts: Counter[OverviewKey]) -> int:
    """Add to ``counts`` the first ``batch`` records from index ``start`` that fall on ``oldest`` or later;
    how many records there were (counted or not)."""
    statement = _GROUPED_POSTGRESQL if tx.conn.dialect.name == "postgresql" else _GROUPED_SQLITE
    read = 0
    for row in await tx.conn.execute(statement, {"start": start, "batch": batch}):
        day, n = row[0], row[-1]
        read += n
        key = counted(dict(zip(COUNTED_FIELDS, row[1:-1], strict=True)), day) if day >= oldest else None
        if key is not None:
            counts[key] += n
    return read


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
        processes never count the same record twice. A tally caught up with the log (and its window with the
        day) is left alone, unlocked: the appends are counting, and would skip their counting while it is locked."""
        start_day = (now - timedelta(days=self.days - 1)).date()
        oldest = start_day.isoformat()
        if await _caught_up(tx, oldest):
            return 0
        cursor = await _locked_cursor(tx)
        if cursor is None:
            since = datetime.combine(start_day, datetime.min.time(), tzinfo=now.tzinfo)
            cursor = await _new_cursor(tx, await tx.first_audit_index_recorded_since(since), oldest)
        next_index = cursor
        read = 0
        counts: Counter[OverviewKey] = Counter()
        while limit is None or read < limit:
            batch = BATCH if limit is None else min(BATCH, limit - read)
            found = await _count_batch(tx, next_index, batch, oldest, counts)
            next_index += found
            read += found
            if found < batch:
                break
        await tx.add_overview_counts(counts)
        await tx.conn.execute(delete(audit_activity_counts).where(audit_activity_counts.c.day < oldest))
        await tx.conn.execute(update(audit_activity_cursor).where(audit_activity_cursor.c.id == 1)
                              .values(next_index=next_index, window_start=oldest))
        return read

    async def counts(self, tx: StoreTransaction, now: datetime) -> Counter[OverviewKey]:
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


async def _caught_up(tx: StoreTransaction, oldest: str) -> bool:
    """Whether the cursor stands at the log's end with its window starting on ``oldest``, read in one statement
    (one snapshot) without locking anything."""
    head_size = select(audit_head.c.size).where(audit_head.c.id == 1).scalar_subquery()
    row = (await tx.conn.execute(
        select(audit_activity_cursor.c.next_index, audit_activity_cursor.c.window_start, head_size.label("size"))
        .where(audit_activity_cursor.c.id == 1))).first()
    return row is not None and row.size is not None and row.next_index >= row.size and row.window_start == oldest


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
