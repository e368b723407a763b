"""Migration 0019 on SQLite and PostgreSQL: the rows an existing outbox still had to deliver are queued, the
others (delivered or dropped) are not, and the downgrade brings ``published_at`` back for the delivered ones."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from gateway.store import Store
from gateway.store.store import _MIGRATIONS

CREATED = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
PUBLISHED = datetime(2026, 12, 1, 8, 1, tzinfo=UTC)


def _to(connection: Any, direction: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    getattr(command, direction)(config, revision)


async def test_the_rows_still_to_deliver_are_queued_and_come_back_undelivered_on_downgrade(store: Store) -> None:
    async with store.engine.begin() as conn:
        await conn.run_sync(_to, "downgrade", "0018")
        for message_id, published_at, dropped in (("delivered", PUBLISHED, None), ("waiting", None, None),
                                                  ("dropped", None, "consent-withdrawn"), ("waiting-too", None, None)):
            await conn.execute(text(
                "INSERT INTO outbox (topic, recipient, message_id, value, headers, created_at, published_at, "
                "dropped_reason) VALUES ('out.fwa', 'fwa', :m, :v, '[]', :c, :p, :d)"),
                {"m": message_id, "v": b"{}", "c": CREATED, "p": published_at, "d": dropped})
        await conn.run_sync(_to, "upgrade", "head")

    async with store.transaction() as tx:
        assert [r.message_id for r in await tx.pending_outbox(10)] == ["waiting", "waiting-too"]
        assert [r.message_id for r in await tx.inbox("fwa", 0, 10)] == ["delivered"]
        claimed = await tx.claim_undelivered(await tx.pending_outbox(1), dequeue=True)
        assert [r.message_id for r in claimed] == ["waiting"]

    async with store.engine.begin() as conn:
        await conn.run_sync(_to, "downgrade", "0018")
        rows = {r.message_id: (r.published_at is not None, r.dropped_reason) for r in await conn.execute(text(
            "SELECT message_id, published_at, dropped_reason FROM outbox"))}
        await conn.run_sync(_to, "upgrade", "head")
    assert rows == {"delivered": (True, None), "waiting": (True, None), "dropped": (False, "consent-withdrawn"),
                    "waiting-too": (False, None)}
