"""The audit log: hash-chained records appended under one locked head row, and the reads of them.

Tables ``audit_log`` and ``audit_head`` (migration 0001). Appends are serialised on the head row, so indexes
never gap or repeat and ``recorded_at`` never goes backwards; an append also writes the Merkle subtrees its
records complete (:mod:`gateway.store.audit_tree`, which this repository extends), a review item for each
record a privacy officer must review (table ``review_items``, read in :mod:`gateway.store.reviews`) and, while the
officers' overview is caught up with the log, what its records add to the overview's counts (tables
``audit_activity_counts`` and ``audit_activity_cursor``: :mod:`gateway.privacy.activity`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from gateway.audit.chain import ChainedEntry, ChainHead, extend
from gateway.audit.merkle import STORED_NODE_LEVEL, MerkleAccumulator
from gateway.audit.overview import OverviewKey, tally
from gateway.audit.record import AuditRecord, review_kind, subject_ref
from gateway.store.audit_tree import _ADD_NODES_POSTGRESQL, AuditTreeRepository
from gateway.store.base import _json_text, _utc
from gateway.store.tables import audit_activity_counts, audit_activity_cursor, audit_head, audit_log, review_items

__all__ = ["AuditLogRepository"]

# The statements of every append, built once: building them per call cost more than running them.
_LOCKED_HEAD = (
    select(audit_head, select(audit_log.c.recorded_at).where(audit_log.c.idx == audit_head.c.size - 1)
           .scalar_subquery().label("last_recorded_at"))
    .where(audit_head.c.id == 1).with_for_update(of=audit_head)
)
"""The head, locked, and the time of its last record (on PostgreSQL, the text below, run on the driver)."""
_LOCKED_HEAD_POSTGRESQL = """
SELECT size, chain_hash, frontier,
       (SELECT recorded_at FROM audit_log WHERE audit_log.idx = audit_head.size - 1) AS last_recorded_at
FROM audit_head WHERE id = 1 FOR UPDATE OF audit_head
"""
_ADVANCE_HEAD = (update(audit_head).where(audit_head.c.id == 1)
                 .values(size=bindparam("size"), chain_hash=bindparam("chain_hash"), frontier=bindparam("frontier")))
_ADVANCE_POSTGRESQL = (  # constants joined: nothing from outside goes into the text
    "WITH nodes AS (" + _ADD_NODES_POSTGRESQL + "), "  # noqa: S608
    # the overview's cursor, if it stands at the log's end before this append and no refresh holds it
    "caught_up AS (SELECT id FROM audit_activity_cursor WHERE id = 1 AND next_index = $7 FOR UPDATE SKIP LOCKED), "
    "advanced AS (UPDATE audit_activity_cursor SET next_index = $4 FROM caught_up "
    "WHERE audit_activity_cursor.id = caught_up.id RETURNING 1), "
    "added AS (INSERT INTO audit_activity_counts "
    "(day, kind, flow, series, source_org, recipient_org, requesting_org, n) "
    "SELECT * FROM unnest($8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], "
    "$15::bigint[]) WHERE EXISTS (SELECT FROM advanced) "
    "ON CONFLICT (day, kind, flow, series, source_org, recipient_org, requesting_org) "
    "DO UPDATE SET n = audit_activity_counts.n + excluded.n) "
    "UPDATE audit_head SET size = $4, chain_hash = $5, frontier = $6::json WHERE id = 1"
)
"""The Merkle subtrees an append completed (as :meth:`AuditTreeRepository.add_audit_nodes` writes them), what its
records add to the officers' overview when the overview's cursor stood at the log's end (the cursor moves to the
new end with them), and the new head, in one statement. ``SKIP LOCKED``: a refresh counting meanwhile holds the
cursor, and counts these records itself once this commits; the append does not wait for it."""
_ADVANCE_CURSOR = (update(audit_activity_cursor)
                   .where(audit_activity_cursor.c.id == 1, audit_activity_cursor.c.next_index == bindparam("start"))
                   .values(next_index=bindparam("end")))
"""SQLite: the overview's cursor moved over an append's records if it stood at the log's end before them (one
writer at a time: no refresh can hold it meanwhile)."""


class AuditLogRepository(AuditTreeRepository):
    """Appends to the audit log and reads of its records and head."""

    async def append_audit(self, records: Sequence[AuditRecord]) -> list[ChainedEntry]:
        """Append records to the audit log, serialised on the head row so indexes never gap or repeat.

        ``recorded_at`` is the store's clock, but never earlier than the previous record's (read under the
        same lock): the log's times are monotonic by construction even if the wall clock steps back (T-13).
        The hashes of the Merkle subtrees the records complete are written too, in one more statement (proofs
        read them instead of every leaf hash; see :meth:`audit_tree_nodes`), and a review item for every
        record a privacy officer must review (:func:`gateway.audit.record.review_kind`).
        """
        if not records:
            return []
        head, previous = await self._locked_head()
        head.tree.track_completed(STORED_NODE_LEVEL)
        # in UTC, as the overview counts it by day, on SQLite too (which keeps the wall time it is given)
        now = self._store.clock().astimezone(UTC)
        if head.size and previous is None:
            # The head's row was locked after a wait for another append, whose records the locking statement's
            # snapshot does not see (READ COMMITTED re-reads only the locked row): read the last one again.
            previous = _utc((await self.conn.execute(
                select(audit_log.c.recorded_at).where(audit_log.c.idx == head.size - 1))).scalar_one_or_none())
        if previous is not None and previous > now:
            now = previous
        start = head.size
        entries = extend(head, records, now)
        counts = tally(records, now.date().isoformat())
        columns = ("idx", "record_id", "event_type", "record", "leaf_hash", "chain_hash", "subject_ref", "recorded_at")
        values = [(e.index, r.record_id, r.event_type, e.canonical.decode("utf-8"), e.leaf_hash, e.chain_hash,
                   r.subject_ref, now) for e, r in zip(entries, records, strict=True)]
        if not await self._copy(audit_log.name, columns, values):
            await self.conn.execute(insert(audit_log), [dict(zip(columns, v, strict=True)) for v in values])
        to_review = [
            {"audit_index": e.index, "kind": kind, "flow_id": r.flow_id, "created_at": now}
            for e, r in zip(entries, records, strict=True) if (kind := review_kind(r)) is not None
        ]
        if to_review:
            await self.conn.execute(insert(review_items), to_review)
        nodes = head.tree.take_completed()
        frontier = [h.hex() for h in head.tree.frontier]
        if self._store.dialect == "postgresql":
            # the subtrees and the new head in one statement: one round trip fewer on every append
            await self._fetch(
                _ADVANCE_POSTGRESQL, [level for (level, _), _ in nodes], [index for (_, index), _ in nodes],
                [value for _, value in nodes], head.size, head.chain_hash, _json_text(frontier), start,
                *_count_columns(counts))
            return entries
        await self.add_audit_nodes(nodes)
        await self.conn.execute(_ADVANCE_HEAD, {"size": head.size, "chain_hash": head.chain_hash, "frontier": frontier})
        if (await self.conn.execute(_ADVANCE_CURSOR, {"start": start, "end": head.size})).rowcount == 1:
            await self.add_overview_counts(counts)
        return entries

    async def add_overview_counts(self, counts: Counter[OverviewKey]) -> None:
        """Add ``counts`` to the officers' overview (``audit_activity_counts``): the caller has moved the
        overview's cursor over the records they count, in this transaction."""
        if not counts:
            return
        dialect_insert = postgresql_insert if self._store.dialect == "postgresql" else sqlite_insert
        rows = [dict(zip(_COUNT_COLUMNS, row, strict=True)) for row in _count_rows(counts)]
        statement = dialect_insert(audit_activity_counts)
        await self.conn.execute(statement.on_conflict_do_update(
            index_elements=list(audit_activity_counts.primary_key.columns),
            set_={"n": audit_activity_counts.c.n + statement.excluded.n}), rows)

    async def _locked_head(self) -> tuple[ChainHead, datetime | None]:
        """The head, locked, and when its last record was recorded (None if not seen: read it again), in one
        round trip."""
        row = await self._locked_head_row()
        if row is None:
            head = ChainHead.genesis()
            try:
                async with self.conn.begin_nested():
                    await self.conn.execute(
                        insert(audit_head).values(id=1, size=0, chain_hash=head.chain_hash, frontier=[])
                    )
            except IntegrityError:
                pass
            row = await self._locked_head_row()
            assert row is not None
        size, chain_hash, frontier, last_recorded_at = row
        tree = MerkleAccumulator.from_frontier(size, [bytes.fromhex(h) for h in frontier])
        return ChainHead(size=size, chain_hash=chain_hash, tree=tree), _utc(last_recorded_at)

    async def _locked_head_row(self) -> tuple[int, bytes, list[str], datetime | None] | None:
        """(size, chain hash, frontier, time of the last record) of the head, locked; None before the first
        append."""
        if self._store.dialect == "postgresql":
            found = await self._fetch(_LOCKED_HEAD_POSTGRESQL)
            return None if not found else tuple(found[0])
        row = (await self.conn.execute(_LOCKED_HEAD)).first()
        return None if row is None else (row.size, row.chain_hash, row.frontier, row.last_recorded_at)

    async def audit_head(self) -> ChainHead:
        row = (await self.conn.execute(select(audit_head).where(audit_head.c.id == 1))).first()
        if row is None:
            return ChainHead.genesis()
        tree = MerkleAccumulator.from_frontier(row.size, [bytes.fromhex(h) for h in row.frontier])
        return ChainHead(size=row.size, chain_hash=row.chain_hash, tree=tree)

    async def audit_entries(self, start: int = 0, limit: int = 10_000) -> list[dict[str, Any]]:
        rows = await self.conn.execute(
            select(audit_log).where(audit_log.c.idx >= start).order_by(audit_log.c.idx).limit(limit)
        )
        return [dict(r._mapping) for r in rows]

    async def audit_record_past_head(self) -> tuple[int, int] | None:
        """(index, head size) of the first record at or past the head's size, which the head does not count
        (None: there is none). One statement, so one snapshot even under READ COMMITTED: a record appended by
        a running gateway always comes with its head, and is never one of these."""
        size = func.coalesce(select(audit_head.c.size).where(audit_head.c.id == 1).scalar_subquery(), 0)
        row = (await self.conn.execute(
            select(audit_log.c.idx, size.label("size")).where(audit_log.c.idx >= size)
            .order_by(audit_log.c.idx).limit(1))).first()
        return None if row is None else (int(row.idx), int(row.size))

    async def audit_entries_before(self, before: int | None, limit: int,
                                   event_types: Collection[str] = ()) -> list[dict[str, Any]]:
        """Up to ``limit`` records newest first, all below index ``before`` (None: from the newest): keyset
        pagination on the primary key, as fast on the millionth page as on the first; ``event_types`` filters."""
        query = select(audit_log.c.idx, audit_log.c.event_type, audit_log.c.record, audit_log.c.recorded_at)
        if before is not None:
            query = query.where(audit_log.c.idx < before)
        if event_types:
            query = query.where(audit_log.c.event_type.in_(list(event_types)))
        rows = await self.conn.execute(query.order_by(audit_log.c.idx.desc()).limit(limit))
        return [dict(r._mapping) for r in rows]

    async def first_audit_index_recorded_since(self, since: datetime) -> int:
        """The index of the first record recorded at or after ``since`` (the log size if none): a binary search
        on the primary key, since ``recorded_at`` never goes backwards along the log (T-13)."""
        head = await self.audit_head()
        low, high = 0, head.size
        while low < high:
            middle = (low + high) // 2
            at = _utc((await self.conn.execute(
                select(audit_log.c.recorded_at).where(audit_log.c.idx == middle))).scalar_one_or_none())
            if at is not None and at >= since:
                high = middle
            else:
                low = middle + 1
        return low

    async def audit_entry(self, index: int) -> dict[str, Any] | None:
        """The stored audit entry at ``index`` (``idx``, ``record``, hashes, ``recorded_at``), if any."""
        row = (await self.conn.execute(select(audit_log).where(audit_log.c.idx == index))).first()
        return None if row is None else dict(row._mapping)

    async def audit_records_for(self, subject_key: bytes) -> list[dict[str, Any]]:
        rows = await self.conn.execute(
            select(audit_log.c.idx, audit_log.c.record)
            .where(audit_log.c.subject_ref == subject_ref(subject_key))
            .order_by(audit_log.c.idx)
        )
        return [dict(r._mapping) for r in rows]


_CountRow = tuple[str, str, str, str, str, str, str, int]
_COUNT_COLUMNS = ("day", "kind", "flow", "series", "source_org", "recipient_org", "requesting_org", "n")


def _count_rows(counts: Counter[OverviewKey]) -> list[_CountRow]:
    """The overview's counts as rows of ``audit_activity_counts`` (an organisation not named is '')."""
    return [(day, kind, flow, series, source or "", recipient or "", requesting or "", n)
            for (day, kind, flow, series, source, recipient, requesting), n in counts.items()]


def _count_columns(counts: Counter[OverviewKey]) -> list[list[object]]:
    """:func:`_count_rows` column by column, as the arrays the append's statement unnests."""
    rows = _count_rows(counts)
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in _COUNT_COLUMNS]
