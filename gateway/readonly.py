"""Opening the gateway's existing store for commands that only read it (``gateway audit verify``,
``gateway audit keys``).

Such a command never creates a store, a schema or a key: pointed at the wrong place, it would otherwise report
on a new empty database ("audit log intact: 0 records") while the real one sits elsewhere. It opens the store the
settings name (``GATEWAY_DATABASE_URL``, or the SQLite file under ``GATEWAY_DATA_DIR``), checks that it holds the
gateway's schema at the revision this code expects, and otherwise raises :class:`StoreNotFound` naming what it
looked for and what to run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

import gateway.store
from gateway.settings import GatewaySettings
from gateway.store import Store

__all__ = ["StoreNotFound", "describe_store", "open_existing_store"]

_NO_LOOKUPS = b"read-only command: no pseudonym lookups"
"""Stands in for the pseudonym key: reading the audit log never looks a person up, and no key is created."""


class StoreNotFound(Exception):
    """The store the settings name does not exist, cannot be reached or holds no (current) gateway schema."""


def describe_store(settings: GatewaySettings) -> str:
    """The store the settings name, as a person would look for it: a file path, or a URL without password."""
    url = make_url(settings.resolved_database_url())
    if url.get_backend_name() == "sqlite":
        return f"SQLite file {url.database}"
    return f"database {url.render_as_string(hide_password=True)}"


def _current_revision(connection: Any) -> str | None:
    revision: str | None = MigrationContext.configure(connection).get_current_revision()
    return revision


def _missing_file(settings: GatewaySettings) -> bool:
    """True when the settings name a SQLite file that does not exist (checked before anything opens it, since
    opening a SQLite file creates it)."""
    url = make_url(settings.resolved_database_url())
    return url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file()


async def open_existing_store(settings: GatewaySettings) -> Store:
    """The store the settings name, opened without creating or migrating anything; raises
    :class:`StoreNotFound` when it is missing, unreachable or not at the newest schema revision."""
    where = describe_store(settings)
    url = settings.resolved_database_url()
    if _missing_file(settings):
        raise StoreNotFound(f"no gateway store: the {where} does not exist (GATEWAY_DATA_DIR={settings.data_dir})")
    store = Store.connect(url, _NO_LOOKUPS)
    try:
        async with store.engine.connect() as conn:
            revision = await conn.run_sync(_current_revision)
    except (OSError, DBAPIError) as exc:
        await store.close()
        raise StoreNotFound(f"cannot read the {where} ({type(exc).__name__})") from exc
    expected = ScriptDirectory(str(Path(gateway.store.__file__).parent / "migrations")).get_current_head()
    if revision != expected:
        await store.close()
        state = "holds no gateway schema" if revision is None else f"is at schema revision {revision}"
        raise StoreNotFound(f"the {where} {state}, not {expected}: run `gateway migrate` if it is the right store")
    await store.engine.dispose()  # no pooled connection outlives this event loop; the engine reconnects on use
    return store
