"""Message statuses: what happened to each inbound message, as its sender may see it, and the referral
lifecycle the recipient reports on it.

Table ``messages`` (migration 0001; ``lifecycle`` and ``lifecycle_at`` from 0003), one row per (sender, message
id): the intake writes a batch's statuses here only where their message ids were never seen (decided, or claimed
before deciding after replays), so that a replayed message is recognised and never decided twice. Statuses are
deleted at retention (:mod:`gateway.store.retention`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy import bindparam, select, tuple_, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from gateway.policy.registry import FINAL_LIFECYCLE_STATES
from gateway.store.base import Repository, _json_text, _utc
from gateway.store.models import MessageStatus
from gateway.store.tables import messages

__all__ = ["COPY_FROM", "StatusesRepository"]

COPY_FROM = 32
"""Statuses in a batch from which :meth:`StatusesRepository.insert_messages` copies them (PostgreSQL)."""


class StatusesRepository(Repository):
    """Statuses of inbound messages and their referral lifecycle."""

    async def message(self, sender: str, message_id: str) -> MessageStatus | None:
        row = (
            await self.conn.execute(
                select(messages).where(messages.c.sender == sender, messages.c.message_id == message_id)
            )
        ).first()
        return None if row is None else _status(row._mapping)

    async def messages_by_correlation(self, sender: str, correlation_id: str) -> list[MessageStatus]:
        rows = await self.conn.execute(
            select(messages)
            .where(messages.c.sender == sender, messages.c.correlation_id == correlation_id)
            .order_by(messages.c.received_at)
        )
        return [_status(r._mapping) for r in rows]

    async def claim_messages(self, statuses: Sequence[MessageStatus]) -> set[tuple[str, str]]:
        """Insert the statuses of a batch in one statement (as received, or already decided); returns the
        (sender, message id) of those that were new. The others were seen before (replays), or appear twice in
        ``statuses`` (the first counts)."""
        if not statuses:
            return set()
        first: dict[tuple[str, str], MessageStatus] = {}
        for s in statuses:
            first.setdefault((s.sender, s.message_id), s)
        if self._store.dialect == "postgresql":
            # One array per column, unnested into rows by PostgreSQL: the statement is the same text for any
            # batch size, and the only Python work per row is building the arrays.
            rows = list(first.values())
            result = await self._fetch(
                _CLAIM_POSTGRESQL, [r.sender for r in rows], [r.message_id for r in rows],
                [r.correlation_id for r in rows], [r.message_type for r in rows], [r.state for r in rows],
                [r.reason_class for r in rows], [_json_text(r.recipients) for r in rows],
                [r.received_at for r in rows], [r.request_id for r in rows])
            return {(sender, message_id) for sender, message_id in result}
        values = [{
            "sender": s.sender, "message_id": s.message_id, "correlation_id": s.correlation_id,
            "message_type": s.message_type, "state": s.state, "reason_class": s.reason_class,
            "recipients": list(s.recipients), "received_at": s.received_at, "request_id": s.request_id,
        } for s in first.values()]
        # Parameters as a list (SQLAlchemy's "insertmanyvalues"): one statement compiled once, not a VALUES
        # clause compiled anew for every batch size.
        statement = (sqlite_insert(messages)
                     .on_conflict_do_nothing(index_elements=["sender", "message_id"])
                     .returning(messages.c.sender, messages.c.message_id))
        return {(r.sender, r.message_id) for r in await self.conn.execute(statement, values)}

    async def insert_messages(self, statuses: Sequence[MessageStatus]) -> bool:
        """Write the statuses of a batch decided without claiming its message ids first, all or none: True
        when every (sender, message id) was new; False when one was seen before (a replay, or a message another
        worker decided meanwhile), after which nothing may run in the transaction but its rollback. Each
        (sender, message id) must appear once in ``statuses``.

        On PostgreSQL a batch of :data:`COPY_FROM` statuses or more is copied (``COPY``), which has no ``ON
        CONFLICT``: a message id seen before fails the copy on the table's primary key, and the transaction is
        then aborted. For the rows of a batch the copy costs the database 4.5-5.0 us of CPU per row where
        :meth:`claim_messages`' insert costs 7.4-8.5, and the gateway 1.5-1.8 us where it costs 3.8-4.3
        (``bench/store_writes.py --only statuses``, batches of 500). A smaller batch goes through the claim's
        insert: for a few rows the copy's lower cost per row matters little."""
        if not statuses:
            return True
        if self._store.dialect != "postgresql" or len(statuses) < COPY_FROM:
            return len(await self.claim_messages(statuses)) == len(statuses)
        columns = ("sender", "message_id", "correlation_id", "message_type", "state", "reason_class", "recipients",
                   "received_at", "request_id")
        values = [(r.sender, r.message_id, r.correlation_id, r.message_type, r.state, r.reason_class,
                   _json_text(r.recipients), r.received_at, r.request_id) for r in statuses]
        try:
            await self._copy(messages.name, columns, values)
        except IntegrityError as exc:
            if isinstance(exc.orig, asyncpg.UniqueViolationError):
                return False
            raise
        return True

    async def messages_many(self, keys: Collection[tuple[str, str]]) -> dict[tuple[str, str], MessageStatus]:
        """The statuses of these (sender, message id), in one statement; unknown ones are absent."""
        if not keys:
            return {}
        rows = await self.conn.execute(
            select(messages).where(tuple_(messages.c.sender, messages.c.message_id).in_(sorted(keys))))
        return {(r.sender, r.message_id): _status(r._mapping) for r in rows}

    async def update_messages(self, statuses: Sequence[MessageStatus]) -> None:
        """Record the outcome (state, reason class, recipients) of many messages in one round trip."""
        if not statuses:
            return
        if self._store.dialect == "postgresql":
            # One statement over arrays; a message listed twice gets its last outcome, as one UPDATE per
            # status in the list's order would leave it.
            latest = list({(st.sender, st.message_id): st for st in statuses}.values())
            await self._fetch(
                _UPDATE_POSTGRESQL, [st.sender for st in latest], [st.message_id for st in latest],
                [st.state for st in latest], [st.reason_class for st in latest],
                [_json_text(st.recipients) for st in latest])
            return
        await self.conn.execute(
            update(messages)
            .where(messages.c.sender == bindparam("b_sender"), messages.c.message_id == bindparam("b_message_id"))
            .values(state=bindparam("b_state"), reason_class=bindparam("b_reason"),
                    recipients=bindparam("b_recipients")),
            [{"b_sender": s.sender, "b_message_id": s.message_id, "b_state": s.state, "b_reason": s.reason_class,
              "b_recipients": list(s.recipients)} for s in statuses],
        )

    async def advance_lifecycle(self, sender: str, correlation_id: str, state: str, at: datetime, *,
                                reported_by: str, message_types: Collection[str]) -> list[MessageStatus]:
        """Record the state ``reported_by`` reported on the referrals ``sender`` sent it under ``correlation_id``:
        the messages of ``message_types`` forwarded to ``reported_by``; returns the statuses that moved.
        One correlation id may follow a household across services, so a message denied, or forwarded only to
        another partner or under another purpose, does not move. ``completed`` and ``rejected`` are final, and
        a state already recorded is not recorded again."""
        current = await self.messages_by_correlation(sender, correlation_id)
        movable = [m.message_id for m in current
                   if m.state == "forwarded" and reported_by in m.recipients and m.message_type in message_types
                   and m.lifecycle not in (*FINAL_LIFECYCLE_STATES, state)]
        if not movable:
            return []
        await self.conn.execute(
            update(messages)
            .where(messages.c.sender == sender, messages.c.message_id.in_(movable))
            .values(lifecycle=state, lifecycle_at=at)
        )
        return [m for m in await self.messages_by_correlation(sender, correlation_id) if m.message_id in movable]


_CLAIM_POSTGRESQL = """
INSERT INTO messages (sender, message_id, correlation_id, message_type, state, reason_class, recipients,
                      received_at, request_id)
SELECT sender, message_id, correlation_id, message_type, state, reason_class, recipients::json, received_at,
       request_id
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
            $8::timestamptz[], $9::text[])
     AS claimed(sender, message_id, correlation_id, message_type, state, reason_class, recipients, received_at,
                request_id)
ON CONFLICT (sender, message_id) DO NOTHING
RETURNING sender, message_id
"""
"""``claim_messages`` on PostgreSQL: one row per array position, in the batch's order; ``recipients`` arrives as
JSON text."""

_UPDATE_POSTGRESQL = """
UPDATE messages
SET state = outcome.state, reason_class = outcome.reason_class, recipients = outcome.recipients::json
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
     AS outcome(sender, message_id, state, reason_class, recipients)
WHERE messages.sender = outcome.sender AND messages.message_id = outcome.message_id
"""
"""``update_messages`` on PostgreSQL: the outcomes of a batch joined to their statuses in one statement."""


def _status(m: Any) -> MessageStatus:
    return MessageStatus(
        sender=m["sender"], message_id=m["message_id"], correlation_id=m["correlation_id"],
        message_type=m["message_type"], state=m["state"], reason_class=m["reason_class"],
        recipients=tuple(m["recipients"]), received_at=_utc(m["received_at"]) or datetime.now(UTC),
        request_id=m["request_id"], lifecycle=m["lifecycle"], lifecycle_at=_utc(m["lifecycle_at"]),
    )
