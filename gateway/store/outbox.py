"""The outbox: outgoing messages queued in the transaction that decided them, until a relay or their worker
delivers them to Kafka.

Table ``outbox`` (migration 0001) keeps every outgoing message; table ``outbox_queue`` (0019) the ids of those
still to deliver. A row is queued with its message and leaves the queue when it is delivered or dropped, so it
is *delivered* when it is neither queued nor dropped: delivering deletes a narrow queue row instead of writing
a new version of the whole message. Rows are delivered in id order; an outbox row is never rewritten except to
mark it dropped, or to empty its payload at erasure (here) or at retention (:mod:`gateway.store.retention`).
Delivered rows are the disclosures art. 19 notices reach.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import delete, exists, func, insert, select, tuple_, update

from gateway.store.base import Repository, _json_text, _utc
from gateway.store.models import OutboxRow, Subject
from gateway.store.tables import outbox, outbox_queue, subjects

__all__ = ["OutboxRepository"]

_ALLOCATE_AND_QUEUE_POSTGRESQL = """
WITH allocated AS (SELECT nextval('outbox_id_seq') AS id FROM generate_series(1, $1::integer)),
     queued AS (INSERT INTO outbox_queue (id) SELECT allocated.id FROM allocated RETURNING outbox_queue.id)
SELECT queued.id FROM queued ORDER BY queued.id
"""
"""What :meth:`OutboxRepository.enqueue` runs on PostgreSQL before copying the rows: it draws their ids from the
outbox's own sequence (``outbox_id_seq``, the ``BIGSERIAL`` of migration 0001) and queues them, so that the copy
writes the ids it is given and nothing looks a row up again by (topic, message id) to find its id. The queue
rows and the outbox rows commit together; until then no other transaction sees either."""

_LOCKED = """
SELECT found.id, queued.topic, queued.message_id
FROM unnest($1::text[], $2::text[]) AS queued(topic, message_id)
CROSS JOIN LATERAL (SELECT outbox.id FROM outbox
                    WHERE outbox.topic = queued.topic AND outbox.message_id = queued.message_id) AS stored
CROSS JOIN LATERAL (SELECT outbox_queue.id FROM outbox_queue WHERE outbox_queue.id = stored.id
                    FOR UPDATE SKIP LOCKED) AS found
"""
_CLAIM_POSTGRESQL = _LOCKED
_CLAIM_DEQUEUED_POSTGRESQL = f"""
WITH locked AS MATERIALIZED ({_LOCKED}),
     dequeued AS (DELETE FROM outbox_queue WHERE outbox_queue.id = ANY(ARRAY(SELECT locked.id FROM locked)))
SELECT locked.id, locked.topic, locked.message_id FROM locked
"""  # noqa: S608 -- the text of a constant, no value in it
"""What :meth:`OutboxRepository.claim_undelivered` runs on PostgreSQL for rows given without their ids, with
``dequeue`` (without: ``_LOCKED`` alone). Each queued (topic, message id) pair is found through the unique index
on the pair, and then its queue row, locked, through the queue's primary key: each a lookup of one key in one
table, which no plan turns into a scan. The locked rows are deleted by id (``= ANY``): deleting them through a
join back to the queue (``DELETE ... USING``) got a hash join over a sequential scan of the queue, which reads
every row deleted since the last vacuum (a minute's worth at full load), and in a 2-worker run kept 0.57 of a
PostgreSQL backend busy. So the cost is that of the batch alone, however long the queue (a sweep of 100,000 rows
left by an outage once made each batch's claim half a second)."""

_LOCKED_BY_ID = """
SELECT outbox_queue.id FROM outbox_queue WHERE outbox_queue.id = ANY($1::bigint[])
FOR UPDATE SKIP LOCKED
"""
_CLAIM_BY_ID_POSTGRESQL = _LOCKED_BY_ID
_CLAIM_DEQUEUED_BY_ID_POSTGRESQL = f"""
WITH locked AS MATERIALIZED ({_LOCKED_BY_ID}),
     dequeued AS (DELETE FROM outbox_queue WHERE outbox_queue.id = ANY(ARRAY(SELECT locked.id FROM locked)))
SELECT locked.id FROM locked
"""  # noqa: S608 -- the text of a constant, no value in it
"""The same for rows given with their ids (as :meth:`OutboxRepository.enqueue` returns them, which is how a worker
delivers what it has just committed): the queue rows are locked and deleted through the queue's primary key
alone, with no lookup in the outbox."""

_SWEEP_POSTGRESQL = """
SELECT stored.* FROM outbox_queue
CROSS JOIN LATERAL (SELECT * FROM outbox WHERE outbox.id = outbox_queue.id OFFSET 0) AS stored
WHERE $2::timestamptz IS NULL OR stored.created_at < $2::timestamptz
ORDER BY outbox_queue.id
LIMIT $1
FOR UPDATE OF outbox_queue SKIP LOCKED
"""
"""What :meth:`OutboxRepository.pending_outbox` (the relay's sweep) runs on PostgreSQL: the queue in id order,
each row's message looked up by its primary key (``OFFSET 0`` keeps the lookup apart, so that no plan joins the
whole outbox to the queue: a plan that did read the outbox from disk on every sweep, twenty times a second)."""


class OutboxRepository(Repository):
    """Queued, delivered and dropped outgoing messages."""

    async def enqueue(self, rows: Sequence[OutboxRow]) -> list[OutboxRow]:
        """Queue outgoing messages; they get ids in the order given (the relay delivers in id order). Returns
        the rows with their ids, which :meth:`claim_undelivered` finds them by."""
        if not rows:
            return []
        columns = ("topic", "recipient", "message_id", "msg_key", "value", "headers", "consent_id",
                   "consent_version", "subject_pseudonym", "created_at")
        values = [(r.topic, r.recipient, r.message_id, r.key, r.value, _json_text(r.headers),
                   r.consent_id, r.consent_version, r.subject_pseudonym, r.created_at) for r in rows]
        if self._store.dialect == "postgresql":
            ids = [record[0] for record in await self._fetch(_ALLOCATE_AND_QUEUE_POSTGRESQL, len(rows))]
            await self._copy(outbox.name, ("id", *columns),
                             [(row_id, *v) for row_id, v in zip(ids, values, strict=True)])
            return [_with_id(row, row_id) for row, row_id in zip(rows, ids, strict=True)]
        await self.conn.execute(insert(outbox), [
            {**dict(zip(columns, v, strict=True)), "headers": [list(h) for h in r.headers]}
            for v, r in zip(values, rows, strict=True)
        ])
        pairs = [(r.topic, r.message_id) for r in rows]
        stored = {(topic, message_id): int(row_id) for row_id, topic, message_id in await self.conn.execute(
            select(outbox.c.id, outbox.c.topic, outbox.c.message_id)
            .where(tuple_(outbox.c.topic, outbox.c.message_id).in_(pairs)))}
        await self.conn.execute(insert(outbox_queue), [{"id": row_id} for row_id in sorted(stored.values())])
        return [_with_id(r, stored[(r.topic, r.message_id)]) for r in rows]

    async def pending_outbox(self, limit: int, queued_before: datetime | None = None) -> list[OutboxRow]:
        """Oldest queued rows, locked so that concurrent relays (PostgreSQL) skip each other's rows; with
        ``queued_before``, only rows queued before then (older than their worker's own delivery)."""
        if self._store.dialect == "postgresql":
            return [_outbox(r) for r in await self._fetch(_SWEEP_POSTGRESQL, limit, queued_before)]
        query = (
            select(outbox)
            .join(outbox_queue, outbox_queue.c.id == outbox.c.id)
            .where(*(() if queued_before is None else (outbox.c.created_at < queued_before,)))
            .order_by(outbox_queue.c.id)
            .limit(limit)
            .with_for_update(of=outbox_queue, skip_locked=True)
        )
        return [_outbox(r._mapping) for r in await self.conn.execute(query)]

    async def claim_undelivered(self, rows: Sequence[OutboxRow], *, dequeue: bool = False) -> list[OutboxRow]:
        """``rows`` (as :meth:`enqueue` returned them, with their ids, or as queued, without) that are still
        queued, with their ids, in id order, locked like :meth:`pending_outbox` locks its rows: one a relay or a
        withdrawal holds now is skipped (its holder sees it through), and one delivered or dropped meanwhile is
        not returned. The worker that queued them delivers them this way straight after its commit.

        With ``dequeue`` the rows also leave the queue in the same statement (a ``DELETE ... RETURNING``), which
        marks them delivered once the transaction commits: the caller publishes them before it commits; if
        publishing fails, the rollback queues them again, and a row the caller drops instead is marked so by
        :meth:`mark_dropped`."""
        if not rows:
            return []
        if self._store.dialect == "postgresql" and all(r.id is not None for r in rows):
            by_id = {r.id: r for r in rows}
            locked = await self._fetch(_CLAIM_DEQUEUED_BY_ID_POSTGRESQL if dequeue else _CLAIM_BY_ID_POSTGRESQL,
                                       list(by_id))
            return [by_id[row_id] for row_id in sorted(record[0] for record in locked)]
        topics, message_ids = [r.topic for r in rows], [r.message_id for r in rows]
        found: list[Any]
        if self._store.dialect == "postgresql":  # the statements above, as text
            found = await self._fetch(_CLAIM_DEQUEUED_POSTGRESQL if dequeue else _CLAIM_POSTGRESQL,
                                      topics, message_ids)
        else:
            wanted = {(r.topic, r.message_id) for r in rows}
            queued = (select(outbox_queue.c.id, outbox.c.topic, outbox.c.message_id)
                      .join(outbox, outbox.c.id == outbox_queue.c.id)
                      .where(self._among(outbox.c.topic, sorted(set(topics))),
                             self._among(outbox.c.message_id, message_ids))
                      .with_for_update(of=outbox_queue, skip_locked=True))
            found = [r for r in await self.conn.execute(queued) if (r[1], r[2]) in wanted]
            if dequeue:
                await self.mark_delivered([r[0] for r in found])
        found.sort(key=itemgetter(0))  # on the id alone: comparing whole rows converts them on every comparison
        queued_rows = {(r.topic, r.message_id): r for r in rows}
        return [_with_id(row, row_id) for row_id, topic, message_id in found
                if (row := queued_rows.get((topic, message_id))) is not None]

    async def outbox_backlog(self) -> tuple[int, datetime | None]:
        """How many outbox rows wait to be delivered, and when the oldest of them was queued (for metrics)."""
        count = (await self.conn.execute(select(func.count()).select_from(outbox_queue))).scalar_one()
        oldest = (await self.conn.execute(
            select(outbox.c.created_at).join(outbox_queue, outbox_queue.c.id == outbox.c.id)
            .order_by(outbox_queue.c.id).limit(1))).scalar_one_or_none()
        return int(count), _utc(oldest)

    async def hold_pending_under(self, consent_id: str) -> int:
        """Lock the rows still queued under any version of a consent, waiting for a relay that holds them.

        A withdrawal calls this before writing its version. A relay that already claimed such a row publishes
        and commits first (the delivery came before the withdrawal, and is then among
        :meth:`disclosures_under`); any other row stays locked, so relays skip it until the withdrawal has
        committed and then drop it at delivery (rule 9). SQLite transactions are serial: there is nothing to
        wait for. Returns how many rows are held."""
        rows = await self.conn.execute(
            select(outbox_queue.c.id)
            .join(outbox, outbox.c.id == outbox_queue.c.id)
            .where(outbox.c.consent_id == consent_id)
            .order_by(outbox_queue.c.id)
            .with_for_update(of=outbox_queue)
        )
        return len(rows.all())

    async def disclosures_under(self, consent_id: str) -> list[tuple[str, str]]:
        """(recipient, message id) of every outgoing message delivered under any version of a consent; rows
        still queued are not disclosures (a withdrawal has them dropped at delivery)."""
        rows = await self.conn.execute(
            select(outbox.c.recipient, outbox.c.message_id)
            .where(outbox.c.consent_id == consent_id, *_delivered())
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

    async def mark_delivered(self, ids: Sequence[int]) -> None:
        """Take delivered rows out of the queue."""
        if ids:
            await self.conn.execute(delete(outbox_queue).where(self._among(outbox_queue.c.id, ids)))

    async def mark_dropped(self, row_id: int, reason: str) -> None:
        """Drop a row at delivery: out of the queue, never delivered (even when :meth:`claim_undelivered` had
        taken it out of the queue)."""
        await self.conn.execute(update(outbox).where(outbox.c.id == row_id).values(dropped_reason=reason))
        await self.conn.execute(delete(outbox_queue).where(outbox_queue.c.id == row_id))

    async def inbox(self, recipient: str, after_id: int, limit: int) -> list[OutboxRow]:
        """Delivered messages for ``recipient`` after ``after_id`` (status messages and referrals alike)."""
        rows = await self.conn.execute(
            select(outbox)
            .where(outbox.c.recipient == recipient, outbox.c.id > after_id, *_delivered(),
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
        queued = [int(r.id) for r in await self.conn.execute(
            select(outbox_queue.c.id).join(outbox, outbox.c.id == outbox_queue.c.id).where(*about)
            .with_for_update(of=outbox_queue))]
        if queued:
            await self.conn.execute(update(outbox).where(self._among(outbox.c.id, queued))
                                    .values(dropped_reason="subject-erased"))
            await self.mark_delivered(queued)  # out of the queue; dropped, so never counted as delivered
        emptied = await self.conn.execute(update(outbox).where(*about).values(value=b"", msg_key=None))
        return int(emptied.rowcount), len(queued)


def _delivered() -> tuple[Any, ...]:
    """Conditions on ``outbox`` of a delivered row: neither queued nor dropped."""
    return (outbox.c.dropped_reason.is_(None), ~exists().where(outbox_queue.c.id == outbox.c.id))


def _with_id(row: OutboxRow, row_id: int) -> OutboxRow:
    """``row`` with the id it was stored under: ``dataclasses.replace(row, id=row_id)``, spelled out because it
    runs for every delivered row and the generic ``replace`` costs twice the direct constructor call (a test
    checks that every field is carried over)."""
    return OutboxRow(row.topic, row.recipient, row.message_id, row.value, row.key, row.headers, row.created_at,
                     row.consent_id, row.consent_version, row.subject_pseudonym, row_id)


def _outbox(m: Any) -> OutboxRow:
    return OutboxRow(
        id=m["id"], topic=m["topic"], recipient=m["recipient"], message_id=m["message_id"], value=m["value"],
        key=m["msg_key"], headers=tuple((str(k), str(v)) for k, v in m["headers"]),
        created_at=_utc(m["created_at"]) or datetime.now(UTC), consent_id=m["consent_id"],
        consent_version=m["consent_version"], subject_pseudonym=m["subject_pseudonym"],
    )
