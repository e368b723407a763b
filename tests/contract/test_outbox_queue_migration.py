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


def _outbox_schema(connection: Any) -> dict[str, Any]:
    """The outbox table as SQLite describes it: columns, foreign keys, and each index with its columns, whether
    it is unique, and its WHERE clause."""
    indexes = {}
    for row in connection.exec_driver_sql("PRAGMA index_list('outbox')").all():
        name, unique, origin = row[1], row[2], row[3]
        sql = connection.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = ?", (name,)).scalar()
        where = sql.split(" WHERE ", 1)[1].replace('"', "").strip() if sql and " WHERE " in sql else None
        columns = [r[2] for r in connection.exec_driver_sql(f"PRAGMA index_info('{name}')").all()]
        indexes[name if origin == "c" else f"{origin}:{columns}"] = (columns, unique, where)
    return {"columns": [tuple(r[1:]) for r in connection.exec_driver_sql("PRAGMA table_info('outbox')").all()],
            "foreign_keys": [tuple(r[2:]) for r in connection.exec_driver_sql(
                "PRAGMA foreign_key_list('outbox')").all()],
            "indexes": indexes}


async def test_an_sqlite_older_than_3_35_gets_the_same_outbox_from_a_copy_of_the_table(
        tmp_path: Any, monkeypatch: Any) -> None:
    """SQLite before 3.35 has no DROP COLUMN: the upgrade copies the table instead, and the outbox it leaves has
    the same columns, foreign keys and indexes (partial ones included) as the in-place drop's."""
    import sqlite3

    schemas = []
    for version, name in (((3, 40, 1), "in-place"), ((3, 34, 1), "copied")):
        monkeypatch.setattr(sqlite3, "sqlite_version_info", version)
        store = Store.connect(f"sqlite+aiosqlite:///{tmp_path / name}.db", b"k" * 32)
        try:
            async with store.engine.begin() as conn:
                await conn.run_sync(_to, "upgrade", "0018")
                await conn.execute(text(
                    "INSERT INTO outbox (topic, recipient, message_id, value, headers, created_at, published_at) "
                    "VALUES ('out.fwa', 'fwa', 'waiting', :v, '[]', :c, NULL)"), {"v": b"{}", "c": CREATED})
                await conn.run_sync(_to, "upgrade", "head")
                schemas.append(await conn.run_sync(_outbox_schema))
            async with store.transaction() as tx:
                assert [r.message_id for r in await tx.pending_outbox(10)] == ["waiting"]
        finally:
            await store.close()
    in_place, copied = schemas
    assert "published_at" not in [column[0] for column in copied["columns"]]
    assert any(where for _, _, where in in_place["indexes"].values())  # a partial index is among those compared
    assert copied == in_place
