"""Retention (D-08): what outlives its retention period, and removing it.

No table of its own: it empties the payloads of delivered or dropped ``outbox`` rows (those out of the queue)
and deletes ``messages`` statuses (both migration 0001) once their flow's retention has run out;
:mod:`gateway.retention` decides what is due.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import delete, exists, func, select, update

from gateway.store.base import Repository, _utc
from gateway.store.tables import messages, outbox, outbox_queue

__all__ = ["RetentionRepository"]


class RetentionRepository(Repository):
    """Expired outgoing payloads and message statuses."""

    async def expired_outbox_candidates(self, created_before: datetime, after_id: int,
                                        limit: int) -> list[tuple[int, str, tuple[tuple[str, str], ...], datetime]]:
        """(id, recipient, headers, created_at) of delivered or dropped rows after ``after_id`` created before
        ``created_before`` whose payload is still stored, in id order."""
        rows = await self.conn.execute(
            select(outbox.c.id, outbox.c.recipient, outbox.c.headers, outbox.c.created_at)
            .where(outbox.c.id > after_id, outbox.c.created_at < created_before, func.length(outbox.c.value) > 0,
                   ~exists().where(outbox_queue.c.id == outbox.c.id))  # delivered or dropped
            .order_by(outbox.c.id)
            .limit(limit)
        )
        return [(int(r.id), str(r.recipient), tuple((str(k), str(v)) for k, v in r.headers),
                 _utc(r.created_at) or datetime.now(UTC)) for r in rows]

    async def purge_outbox_payloads(self, ids: Sequence[int]) -> int:
        """Empty the payload (and Kafka key) of these outbox rows; their ids and routing metadata stay."""
        if not ids:
            return 0
        result = await self.conn.execute(
            update(outbox).where(outbox.c.id.in_(list(ids)), func.length(outbox.c.value) > 0)
            .values(value=b"", msg_key=None)
        )
        return int(result.rowcount)

    async def message_kinds_received_before(self, received_before: datetime) -> list[tuple[str, str]]:
        """Distinct (sender, message type) of message statuses received before ``received_before``."""
        rows = await self.conn.execute(
            select(messages.c.sender, messages.c.message_type).where(messages.c.received_at < received_before)
            .distinct()
        )
        return sorted((str(r.sender), str(r.message_type)) for r in rows)

    async def delete_messages(self, sender: str, message_type: str, received_before: datetime) -> int:
        """Delete the statuses of ``sender``'s messages of this type received before ``received_before``."""
        result = await self.conn.execute(
            delete(messages).where(messages.c.sender == sender, messages.c.message_type == message_type,
                                   messages.c.received_at < received_before)
        )
        return int(result.rowcount)
