"""The console's rows in the store: local officer accounts and server-side sessions (tables of migration 0012).

Plain statements on a :class:`~gateway.store.StoreTransaction`'s connection, so that a session written at
sign-in and the ``console-session`` audit record that says so commit together or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from gateway.store import StoreTransaction
from gateway.store.tables import console_officers, console_sessions

__all__ = ["LocalAccount", "StoredSession", "account", "add_account", "add_session", "delete_session",
           "delete_stale_sessions", "record_failure", "record_success", "session", "touch_session"]


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


@dataclass(frozen=True, slots=True)
class LocalAccount:
    """A local officer account as stored (``gateway officers add``)."""

    username: str
    display_name: str
    organisation: str
    roles: frozenset[str]
    password_hash: str
    totp_secret: str
    totp_last_step: int | None
    failed_sign_ins: int
    first_failed_at: datetime | None
    locked_until: datetime | None
    disabled_at: datetime | None


@dataclass(frozen=True, slots=True)
class StoredSession:
    """A signed-in session as stored: never the cookie itself, only its hash."""

    id_hash: str
    ref: str
    officer: dict[str, Any]
    csrf_token: str
    created_at: datetime
    last_seen_at: datetime


async def add_account(tx: StoreTransaction, username: str, display_name: str, organisation: str,
                      roles: frozenset[str], password_hash: str, totp_secret: str, at: datetime) -> bool:
    """Store a new local account; False (nothing changed) if the username is taken."""
    try:
        async with tx.conn.begin_nested():
            await tx.conn.execute(insert(console_officers).values(
                username=username, display_name=display_name, organisation=organisation,
                roles=" ".join(sorted(roles)), password_hash=password_hash, totp_secret=totp_secret,
                failed_sign_ins=0, created_at=at))
    except IntegrityError:
        return False
    return True


async def account(tx: StoreTransaction, username: str) -> LocalAccount | None:
    row = (await tx.conn.execute(select(console_officers).where(console_officers.c.username == username))).first()
    if row is None:
        return None
    m = row._mapping
    return LocalAccount(m["username"], m["display_name"], m["organisation"], frozenset(m["roles"].split()),
                        m["password_hash"], m["totp_secret"], m["totp_last_step"], m["failed_sign_ins"],
                        _utc(m["first_failed_at"]), _utc(m["locked_until"]), _utc(m["disabled_at"]))


async def record_failure(tx: StoreTransaction, username: str, failures: int, first_failed_at: datetime | None,
                         locked_until: datetime | None) -> None:
    await tx.conn.execute(update(console_officers).where(console_officers.c.username == username).values(
        failed_sign_ins=failures, first_failed_at=first_failed_at, locked_until=locked_until))


async def record_success(tx: StoreTransaction, username: str, totp_step: int, password_hash: str | None) -> None:
    """Reset the failure count, remember the TOTP step used (never accepted again) and, if the hash parameters
    changed since, the password's new hash."""
    values: dict[str, Any] = {"failed_sign_ins": 0, "first_failed_at": None, "locked_until": None,
                              "totp_last_step": totp_step}
    if password_hash is not None:
        values["password_hash"] = password_hash
    await tx.conn.execute(update(console_officers).where(console_officers.c.username == username).values(**values))


async def add_session(tx: StoreTransaction, stored: StoredSession) -> None:
    await tx.conn.execute(insert(console_sessions).values(
        id_hash=stored.id_hash, ref=stored.ref, officer=stored.officer, csrf_token=stored.csrf_token,
        created_at=stored.created_at, last_seen_at=stored.last_seen_at))


async def session(tx: StoreTransaction, id_hash: str) -> StoredSession | None:
    row = (await tx.conn.execute(select(console_sessions).where(console_sessions.c.id_hash == id_hash))).first()
    if row is None:
        return None
    m = row._mapping
    created, seen = _utc(m["created_at"]), _utc(m["last_seen_at"])
    assert created is not None and seen is not None
    return StoredSession(m["id_hash"], m["ref"], dict(m["officer"]), m["csrf_token"], created, seen)


async def touch_session(tx: StoreTransaction, id_hash: str, at: datetime) -> None:
    await tx.conn.execute(update(console_sessions).where(console_sessions.c.id_hash == id_hash)
                          .values(last_seen_at=at))


async def delete_session(tx: StoreTransaction, id_hash: str) -> bool:
    result = await tx.conn.execute(delete(console_sessions).where(console_sessions.c.id_hash == id_hash))
    return bool(result.rowcount)


async def delete_stale_sessions(tx: StoreTransaction, seen_before: datetime, created_before: datetime) -> int:
    """Forget sessions idle since ``seen_before`` or begun before ``created_before`` (they are refused anyway)."""
    result = await tx.conn.execute(delete(console_sessions).where(
        (console_sessions.c.last_seen_at < seen_before) | (console_sessions.c.created_at < created_before)))
    return int(result.rowcount or 0)
