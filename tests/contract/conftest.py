"""The store both contract suites run against: a migrated store on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from gateway.store import Store
from tests.conftest import Backends


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, settings_for: Callable[[Backends], object]) -> AsyncIterator[Store]:
    settings = await settings_for(Backends(request.param, "embedded"))  # type: ignore[misc]
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    made = Store.connect(settings.resolved_database_url(), b"k" * 32)
    await made.migrate()
    try:
        yield made
    finally:
        await made.close()
