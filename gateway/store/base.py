"""What every repository of the store shares: the transaction's connection and the store it works for.

Each repository module (``subjects``, ``consents``, ``statuses``, ...) holds one class with the reads and writes
of one aggregate; :class:`~gateway.store.unit_of_work.StoreTransaction` combines them over one connection. This
module is the bottom of the package: it imports none of the repositories, and knows the store only through
:class:`StoreContext` (what the repositories use of it), so that the store, which builds transactions, is not
imported back. It owns no table.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import asyncpg
import orjson
from sqlalchemy import any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.errors import DependencyUnavailable
from gateway.policy.consent import ConsentRecord

__all__ = ["Repository", "StoreContext"]


def _utc(value: datetime | None) -> datetime | None:
    """SQLite hands datetimes back naive; every datetime in the gateway is UTC-aware."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode("utf-8")


class StoreContext(Protocol):
    """What the repositories use of the :class:`~gateway.store.store.Store` whose transaction they work in."""

    _pseudonym_key: bytes
    clock: Callable[[], datetime]
    parsed_consents: OrderedDict[tuple[str, int, str], ConsentRecord]

    @property
    def dialect(self) -> str: ...

    def lookup_hash(self, system: str, value: str) -> str: ...

    def activity_source_key(self, source: str, resource_type: str, resource_id: str) -> str: ...


class Repository:
    """The connection of one transaction, the store it belongs to, and the statement helpers every repository
    uses; a repository adds the reads and writes of its own tables."""

    def __init__(self, conn: AsyncConnection, store: StoreContext) -> None:
        self.conn = conn
        self._store = store

    def _among(self, column: Any, values: Iterable[Any]) -> Any:
        """``column`` is one of ``values``: on PostgreSQL one array parameter (``= ANY($1)``), so the statement
        is the same text for any number of values (compiled and prepared once) instead of an ``IN`` list that
        SQLAlchemy renders again, one parameter per value, for every batch; an ``IN`` list on SQLite."""
        if self._store.dialect == "postgresql":
            return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
        return column.in_(list(values))

    async def _copy(self, table: str, columns: Sequence[str], values: list[tuple[Any, ...]]) -> bool:
        """Write rows with PostgreSQL's COPY through the driver, inside this transaction: for a batch's audit
        records and outgoing messages it costs a fraction of an INSERT built and bound by SQLAlchemy. False on
        SQLite, where the caller inserts through SQLAlchemy (JSON columns are passed as JSON text)."""
        if self._store.dialect != "postgresql":
            return False
        raw = await self.conn.get_raw_connection()
        adapted: Any = raw.dbapi_connection
        if getattr(adapted, "_transaction", None) is None:
            # The driver begins the transaction with the first statement: COPY must not run before it.
            await self.conn.exec_driver_sql("SELECT 1")
        try:
            await adapted.driver_connection.copy_records_to_table(table, columns=list(columns), records=values)
        except (asyncpg.InterfaceError, asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError,
                asyncpg.AdminShutdownError) as exc:
            raise DependencyUnavailable(f"the store is unavailable ({type(exc).__name__}); retry later") from exc
        return True
