"""What every repository of the store shares: the transaction's connection and the store it works for.

Each repository module (``subjects``, ``consents``, ``statuses``, ...) holds one class with the reads and writes
of one aggregate; :class:`~gateway.store.unit_of_work.StoreTransaction` combines them over one connection. This
module is the bottom of the package: it imports none of the repositories, and knows the store only through
:class:`StoreContext` (what the repositories use of it), so that the store, which builds transactions, is not
imported back. It owns no table.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Protocol

import asyncpg
import orjson
from sqlalchemy import any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
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
        self._adapted: Any = None
        """SQLAlchemy's adapter of the driver's connection (PostgreSQL), once :meth:`_driver` has looked it up."""

    def _among(self, column: Any, values: Iterable[Any]) -> Any:
        """``column`` is one of ``values``: on PostgreSQL one array parameter (``= ANY($1)``), so the statement
        is the same text for any number of values (compiled and prepared once) instead of an ``IN`` list that
        SQLAlchemy renders again, one parameter per value, for every batch; an ``IN`` list on SQLite."""
        if self._store.dialect == "postgresql":
            return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
        return column.in_(list(values))

    async def _driver(self) -> asyncpg.Connection:
        """PostgreSQL: the driver's connection under this transaction, with the transaction begun. SQLAlchemy's
        adapter begins it lazily, with its first statement; a statement run on the driver directly must not
        come before it."""
        adapted = self._adapted
        if adapted is None:
            adapted = self._adapted = (await self.conn.get_raw_connection()).dbapi_connection
        if adapted._transaction is None:
            try:
                await adapted._start_transaction()
            except adapted.dbapi.Error as exc:  # the adapter's translation of the driver's error
                raise DependencyUnavailable(f"the store is unavailable ({type(exc).__name__}); retry later") from exc
        return adapted.driver_connection

    async def _fetch(self, statement: str, *parameters: Any) -> list[asyncpg.Record]:
        """PostgreSQL: run ``statement`` (``$1``... parameters) on the driver's connection inside this
        transaction, and return its rows. For the handful of statements every batch runs (its claim, lookups,
        outcomes, audit head, delivery claim): SQLAlchemy's execution layer cost as much CPU as the driver's own
        work, twice over for a batch of one. asyncpg prepares each text once per connection (its statement
        cache). Errors are those of a statement run through SQLAlchemy: an integrity violation is an
        :class:`~sqlalchemy.exc.IntegrityError`, any other database or connection failure
        :class:`DependencyUnavailable`."""
        with _as_store_errors(statement, parameters):
            rows: list[asyncpg.Record] = await (await self._driver()).fetch(statement, *parameters)
        return rows

    async def _copy(self, table: str, columns: Sequence[str], values: list[tuple[Any, ...]]) -> bool:
        """Write rows with PostgreSQL's COPY through the driver, inside this transaction: for a batch's audit
        records and outgoing messages it costs a fraction of an INSERT built and bound by SQLAlchemy. False on
        SQLite, where the caller inserts through SQLAlchemy (JSON columns are passed as JSON text)."""
        if self._store.dialect != "postgresql":
            return False
        driver = await self._driver()
        with _as_store_errors(f"COPY {table}", None):
            await driver.copy_records_to_table(table, columns=list(columns), records=values)
        return True


@contextmanager
def _as_store_errors(statement: str, parameters: Any) -> Iterator[None]:
    """The driver's errors of a statement run on it directly, as the store raises them for a statement run
    through SQLAlchemy: an integrity violation as :class:`~sqlalchemy.exc.IntegrityError`, any other failure in
    the database or of the connection (SQLAlchemy's ``DBAPIError``, which the store's guard turns into it) as
    :class:`DependencyUnavailable`."""
    try:
        yield
    except asyncpg.IntegrityConstraintViolationError as exc:
        raise IntegrityError(statement, parameters, exc) from exc
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise DependencyUnavailable(f"the store is unavailable ({type(exc).__name__}); retry later") from exc
