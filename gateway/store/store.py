"""The store: the gateway's state in PostgreSQL (production) or SQLite (single machine), via SQLAlchemy.

One implementation over two engines; the same contract suite (``tests/contract/test_store_contract.py``)
runs against both. Every write of the pipeline happens inside :meth:`Store.transaction`, so a decision,
its audit records, its outgoing messages and the sender's status commit together or not at all.
Database failures surface as :class:`~gateway.errors.DependencyUnavailable` (retriable), never as a
half-written state.

This module holds the engine, the migrations and the keyed lookup hashes; a transaction is a
:class:`~gateway.store.unit_of_work.StoreTransaction`, which combines one repository per aggregate
(``subjects``, ``consents``, ``statuses``, ``audit_log``, ``outbox``, ...; each module says which tables it keeps).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gateway.errors import DependencyUnavailable
from gateway.policy.consent import ConsentRecord
from gateway.store import keyed
from gateway.store.base import _json_text
from gateway.store.unit_of_work import StoreTransaction

__all__ = ["Store", "StoreTransaction"]

_MIGRATIONS = Path(__file__).parent / "migrations"


class Store:
    """Connection pool plus schema management for one database."""

    def __init__(self, engine: AsyncEngine, pseudonym_key: bytes) -> None:
        self.engine = engine
        self.dialect: str = engine.dialect.name
        """``postgresql`` or ``sqlite``: asked before most statements, so read once."""
        self._pseudonym_key = pseudonym_key
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        """Clock of audit ``recorded_at`` times (replaceable in tests); see :meth:`StoreTransaction.append_audit`."""
        self.parsed_consents: OrderedDict[tuple[str, int, str], ConsentRecord] = OrderedDict()
        """Consent versions already parsed from their stored documents, by (id, version, record hash): versions
        are immutable, and a rewritten document changes its hash, so an entry never goes stale. Bounded LRU."""

    @classmethod
    def connect(cls, url: str, pseudonym_key: bytes) -> Store:
        """A store on ``url`` (``postgresql+asyncpg://`` or ``sqlite+aiosqlite:///``)."""
        # JSON columns (statuses' recipients, outbox headers, consent documents, the audit frontier) through
        # orjson: the standard library's encoder and decoder were 7 % of the gateway's CPU per referral.
        json_options: dict[str, Any] = {"json_serializer": _json_text, "json_deserializer": orjson.loads}
        if url.startswith("sqlite"):
            engine = create_async_engine(url, connect_args={"timeout": 30}, **json_options)
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
            event.listen(engine.sync_engine, "begin", _sqlite_begin)
        else:
            # No pre-ping: it cost a round trip per transaction. A connection broken since its last use fails
            # its first statement; SQLAlchemy then invalidates the pool and the caller's retry (every caller
            # retries DependencyUnavailable) gets a fresh connection.
            engine = create_async_engine(url, pool_size=10, max_overflow=10, **json_options)
        return cls(engine, pseudonym_key)

    async def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision."""
        async with self._guard(), self.engine.begin() as conn:
            await conn.run_sync(_upgrade)

    async def close(self) -> None:
        await self.engine.dispose()

    def lookup_hash(self, system: str, value: str) -> str:
        """Keyed hash under which a person's identifier is looked up; the identifier itself is not stored."""
        return keyed.lookup_hash(self._pseudonym_key, system, value)

    def activity_source_key(self, source: str, resource_type: str, resource_id: str) -> str:
        """Keyed hash that recognises a counted care record sent again (F6), under a key derived from the
        pseudonym key for this use only; the record's id itself is not stored."""
        return keyed.activity_source_key(self._pseudonym_key, source, resource_type, resource_id)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[StoreTransaction]:
        """One atomic unit of work."""
        async with self._guard(), self.engine.begin() as conn:
            yield StoreTransaction(conn, self)

    @asynccontextmanager
    async def _guard(self) -> AsyncIterator[None]:
        try:
            yield
        except IntegrityError:
            raise
        except (OperationalError, DBAPIError, OSError, ConnectionError, TimeoutError) as exc:
            raise DependencyUnavailable(f"the store is unavailable ({type(exc).__name__}); retry later") from exc


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The sqlite3 driver's own transaction handling breaks SAVEPOINTs and begins lazily; take over
    # (SQLAlchemy's documented recipe) so that transactions and nested savepoints behave as on PostgreSQL.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    # IMMEDIATE takes the write lock up front: writers queue on busy_timeout instead of failing when a
    # read lock cannot be upgraded, and the audit head read-then-write is serialised.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _upgrade(connection: Any) -> None:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
