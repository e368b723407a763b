"""The stores the contract suites run against.

``store``: a migrated SQL store on SQLite and on a real PostgreSQL server, for what only SQL has (schema,
migrations, a second process on the same database, raw statements). ``any_store``: those two and the in-memory
store (:class:`gateway.store.memory.MemoryStore`), for tests that use only the unit of work of
:mod:`gateway.store.ports`: the fake is held to the same answers as the real stores.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from gateway.store import Store
from gateway.store.memory import MemoryStore
from gateway.store.ports import InspectableStore
from tests.conftest import Backends

PSEUDONYM_KEY = b"k" * 32


@asynccontextmanager
async def sql_store(backend: str, settings_for: Callable[[Backends], object]) -> AsyncIterator[Store]:
    """A migrated store on ``sqlite`` or ``postgres`` (a fresh database, dropped afterwards)."""
    settings = await settings_for(Backends(backend, "embedded"))  # type: ignore[misc]
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    made = Store.connect(settings.resolved_database_url(), PSEUDONYM_KEY)
    await made.migrate()
    try:
        yield made
    finally:
        await made.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, settings_for: Callable[[Backends], object]) -> AsyncIterator[Store]:
    async with sql_store(request.param, settings_for) as made:
        yield made


@pytest.fixture(params=["sqlite", "postgres", "memory"])
async def any_store(request: pytest.FixtureRequest,
                    settings_for: Callable[[Backends], object]) -> AsyncIterator[InspectableStore]:
    if request.param == "memory":
        yield MemoryStore(PSEUDONYM_KEY)
        return
    async with sql_store(request.param, settings_for) as made:
        yield made
