"""The outbox: outgoing messages queued in the transaction that decided them, until a relay or their worker
delivers them to Kafka.

Table ``outbox`` (migration 0001; the partial index of undelivered rows from 0014). Rows are delivered in id
order and never rewritten except to mark them delivered or dropped, or to empty their payload at erasure (here)
or at retention (:mod:`gateway.store.retention`). Published rows are the disclosures art. 19 notices reach.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import func, insert, select, update

from gateway.store.base import Repository, _json_text, _utc
from gateway.store.models import OutboxRow, Subject
from gateway.store.tables import outbox, subjects

__all__ = ["OutboxRepository"]

_CLAIM_MARKED_POSTGRESQL = """
WITH locked AS (
    SELECT found.id, found.published_at, found.dropped_reason
    FROM unnest($1::text[], $2::text[]) AS queued(topic, message_id)
    CROSS JOIN LATERAL (SELECT id, published_at, dropped_reason FROM outbox
                        WHERE outbox.topic = queued.topic AND outbox.message_id = queued.message_id
                        FOR UPDATE SKIP LOCKED) AS found
)
UPDATE outbox SET published_at = $3
FROM locked
WHERE outbox.id = locked.id AND locked.published_at IS NULL AND locked.dropped_reason IS NULL
RETURNING outbox.id, outbox.topic, outbox.message_id
"""
"""What :meth:`OutboxRepository.claim_undelivered` runs with ``published_at`` on PostgreSQL, after every batch a
worker commits. Each queued (topic, message id) pair is locked through the unique index on the pair, and whether it
is still undelivered is read from the locked row, so the cost is that of the batch alone. Testing ``= ANY`` of
both columns against the undelivered rows instead (the partial index the planner prefers, since it believes that
almost every row is delivered) walked the whole backlog for every pair: after an outage left 100,000 rows queued,
each batch's claim took half a second instead of 6 ms."""


class OutboxRepository(Repository):
    """Queued, delivered and dropped outgoing messages."""

    async def enqueue(self, rows: Sequence[OutboxRow]) -> None:
        """Queue outgoing messages; they get ids in the order given (the relay publishes in id order)."""
        if not rows:
            return
        columns = ("topic", "recipient", "message_id", "msg_key", "value", "headers", "consent_id",
                   "consent_version", "subject_pseudonym", "created_at")
        values = [(r.topic, r.recipient, r.message_id, r.key, r.value, _json_text([list(h) for h in r.headers]),
                   r.consent_id, r.consent_version, r.subject_pseudonym, r.created_at) for r in rows]
        if not await self._copy(outbox.name, columns, values):
            await self.conn.execute(insert(outbox), [
                {**dict(zip(columns, v, strict=True)), "headers": [list(h) for h in r.headers]}
                for v, r in zip(values, rows, strict=True)
            ])

    async def pending_outbox(self, limit: int, queued_before: datetime | None = None) -> list[OutboxRow]:
        """Oldest unpublished rows, locked so that concurrent relays (PostgreSQL) skip each other's rows;
        with ``queued_before``, only rows queued before then (older than their worker's own delivery)."""
        query = (
            select(outbox)
            .where(outbox.c.published_at.is_(None), outbox.c.dropped_reason.is_(None),
                   *(() if queued_before is None else (outbox.c.created_at < queued_before,)))
            .order_by(outbox.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [_outbox(r._mapping) for r in await self.conn.execute(query)]

    async def claim_undelivered(self, rows: Sequence[OutboxRow], published_at: datetime | None = None
                                ) -> list[OutboxRow]:
        """``rows`` (as queued, without ids) that are still undelivered, with their ids, in id order, locked
        like :meth:`pending_outbox` locks its rows: one a relay or a withdrawal holds now is skipped (its holder
        sees it through), and one delivered or dropped meanwhile is not returned. The worker that queued them
        delivers them this way straight after its commit.

        With ``published_at`` the rows are marked published at that time by the same statement that locks
        them (an ``UPDATE ... RETURNING``): one write per row instead of a lock and then an update. The caller
        publishes them before its transaction commits; if publishing fails, the rollback unmarks them, and a
        row the caller drops instead is unmarked by :meth:`mark_dropped`."""
        if not rows:
            return []
        topics, message_ids = [r.topic for r in rows], [r.message_id for r in rows]
        found: list[Any]
        if published_at is not None and self._store.dialect == "postgresql":  # the statement below, as text
            found = await self._fetch(_CLAIM_MARKED_POSTGRESQL, topics, message_ids, published_at)
        else:
            topics = sorted(set(topics))
            undelivered = (self._among(outbox.c.topic, topics), self._among(outbox.c.message_id, message_ids),
                           outbox.c.published_at.is_(None), outbox.c.dropped_reason.is_(None))
            locked = select(outbox.c.id).where(*undelivered).order_by(outbox.c.id).with_for_update(skip_locked=True)
            found = list(await self.conn.execute(
                locked.add_columns(outbox.c.topic, outbox.c.message_id) if published_at is None else
                update(outbox).where(outbox.c.id.in_(locked.scalar_subquery())).values(published_at=published_at)
                .returning(outbox.c.id, outbox.c.topic, outbox.c.message_id)))
        found.sort(key=itemgetter(0))  # on the id alone: comparing whole rows converts them on every comparison
        queued = {(r.topic, r.message_id): r for r in rows}
        return [_with_id(row, row_id) for row_id, topic, message_id in found
                if (row := queued.get((topic, message_id))) is not None]

    async def outbox_backlog(self) -> tuple[int, datetime | None]:
        """How many outbox rows wait to be delivered, and when the oldest of them was queued (for metrics)."""
        waiting = outbox.c.published_at.is_(None) & outbox.c.dropped_reason.is_(None)
        count = (await self.conn.execute(select(func.count()).select_from(outbox).where(waiting))).scalar_one()
        oldest = (await self.conn.execute(
            select(outbox.c.created_at).where(waiting).order_by(outbox.c.id).limit(1))).scalar_one_or_none()
        return int(count), _utc(oldest)

    async def hold_pending_under(self, consent_id: str) -> int:
        """Lock the rows still queued under any version of a consent, waiting for a relay that holds them.

        A withdrawal calls this before writing its version. A relay that already claimed such a row publishes
        and commits first (the delivery came before the withdrawal, and is then among
        :meth:`disclosures_under`); any other row stays locked, so relays skip it until the withdrawal has
        committed and then drop it at delivery (rule 9). SQLite transactions are serial: there is nothing to
        wait for. Returns how many rows are held."""
        rows = await self.conn.execute(
            select(outbox.c.id)
            .where(outbox.c.consent_id == consent_id, outbox.c.published_at.is_(None),
                   outbox.c.dropped_reason.is_(None))
            .order_by(outbox.c.id)
            .with_for_update()
        )
        return len(rows.all())

    async def disclosures_under(self, consent_id: str) -> list[tuple[str, str]]:
        """(recipient, message id) of every outgoing message published under any version of a consent; rows
        still queued are not disclosures (a withdrawal has them dropped at delivery)."""
        rows = await self.conn.execute(
            select(outbox.c.recipient, outbox.c.message_id)
            .where(outbox.c.consent_id == consent_id, outbox.c.published_at.is_not(None))
            .order_by(outbox.c.id)
        )
        return [(r.recipient, r.message_id) for r in rows]

    async def outbox_message(self, recipient: str, message_id: str) -> OutboxRow | None:
        row = (
            await self.conn.execute(
                select(outbox).where(outbox.c.recipient == recipient, outbox.c.message_id == message_id)
            )
        ).first()
        return None if row is None else _outbox(row._mapping)

    async def subject_of_disclosure(self, message_id: str, topics: Collection[str]) -> Subject | None:
        """The subject of an outgoing message the gateway minted and sent on one of ``topics``: a recipient quoting
        it back names the topics it receives on, so it finds only what it was sent, through the unique index on
        (topic, message id) (the message id alone is in no index: it was a scan of the whole outbox)."""
        row = (
            await self.conn.execute(
                select(subjects.c.pseudonym, subjects.c.subject_key)
                .join(outbox, outbox.c.subject_pseudonym == subjects.c.pseudonym)
                .where(self._among(outbox.c.topic, sorted(topics)), outbox.c.message_id == message_id)
                .limit(1)
            )
        ).first()
        return None if row is None else Subject(row.pseudonym, row.subject_key)

    async def mark_published(self, ids: Sequence[int], at: datetime) -> None:
        if ids:
            await self.conn.execute(update(outbox).where(self._among(outbox.c.id, ids)).values(published_at=at))

    async def mark_dropped(self, row_id: int, reason: str) -> None:
        """Drop a row at delivery; never published, even when :meth:`claim_undelivered` had marked it."""
        await self.conn.execute(update(outbox).where(outbox.c.id == row_id)
                                .values(dropped_reason=reason, published_at=None))

    async def inbox(self, recipient: str, after_id: int, limit: int) -> list[OutboxRow]:
        """Published messages for ``recipient`` after ``after_id`` (status messages and referrals alike)."""
        rows = await self.conn.execute(
            select(outbox)
            .where(outbox.c.recipient == recipient, outbox.c.id > after_id, outbox.c.published_at.is_not(None),
                   func.length(outbox.c.value) > 0)  # a payload purged at retention or erasure is gone
            .order_by(outbox.c.id)
            .limit(limit)
        )
        return [_outbox(r._mapping) for r in rows]

    async def purge_subject_payloads(self, pseudonym: str) -> tuple[int, int]:
        """For an erasure: empty every outgoing payload about the subject, and drop those not yet delivered.

        Returns (payloads emptied, undelivered rows dropped). The rows' ids, recipients and consent references
        stay, so that art. 19 notices can still reach past recipients; the payload (which may name the person)
        does not.
        """
        about = (outbox.c.subject_pseudonym == pseudonym, func.length(outbox.c.value) > 0)
        dropped = await self.conn.execute(
            update(outbox)
            .where(*about, outbox.c.published_at.is_(None), outbox.c.dropped_reason.is_(None))
            .values(dropped_reason="subject-erased")
        )
        emptied = await self.conn.execute(update(outbox).where(*about).values(value=b"", msg_key=None))
        return int(emptied.rowcount), int(dropped.rowcount)


def _with_id(row: OutboxRow, row_id: int) -> OutboxRow:
    """``row`` with the id it was stored under: ``dataclasses.replace(row, id=row_id)``, spelled out because it
    runs for every delivered row and the generic ``replace`` costs twice the direct constructor call (a test
    checks that every field is carried over)."""
    return OutboxRow(row.topic, row.recipient, row.message_id, row.value, row.key, row.headers, row.created_at,
                     row.consent_id, row.consent_version, row.subject_pseudonym, row_id, row.published_at)


def _outbox(m: Any) -> OutboxRow:
    return OutboxRow(
        id=m["id"], topic=m["topic"], recipient=m["recipient"], message_id=m["message_id"], value=m["value"],
        key=m["msg_key"], headers=tuple((str(k), str(v)) for k, v in m["headers"]),
        created_at=_utc(m["created_at"]) or datetime.now(UTC), consent_id=m["consent_id"],
        consent_version=m["consent_version"], subject_pseudonym=m["subject_pseudonym"],
        published_at=_utc(m["published_at"]),
    )
