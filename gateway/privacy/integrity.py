"""The audit log's integrity status that every privacy-officer answer carries (D-07): the same check as
``gateway audit verify --keys``, kept in the store so that any process answers with the newest one, and shared
within a process by :class:`IntegrityCache`.

The check covers every record's hashes, the head, and every signed checkpoint, whose signatures count only from
the trusted keys: the public halves of the signing keys this gateway is configured with, plus the keys the
database lists as retired (each of those verifies only checkpoints signed before its retirement). Where no
signing key is configured (an API-only process), the keys registered in the database are trusted instead, and
the status says so.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import delete, insert, select

from gateway.audit.checkpoint import CheckpointError, VerifierKey, open_note
from gateway.audit.offline import verify_stored_log
from gateway.logging import get_logger
from gateway.store import Store, StoreTransaction
from gateway.store.tables import audit_integrity_checks

__all__ = ["IntegrityCache", "IntegrityStatus", "LatestCheckpoint", "latest_integrity", "store_integrity",
           "verify_log_integrity"]

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class LatestCheckpoint:
    """The most recent signed checkpoint, as the integrity check found it."""

    tree_size: int
    root_hex: str
    signed_at: str
    signed_by: tuple[str, ...]
    """``name+keyid`` of each trusted key whose signature on it verified (empty if none did)."""


@dataclass(frozen=True, slots=True)
class IntegrityStatus:
    """The audit log's state when a report was produced."""

    verified: bool
    """Chain and every signed checkpoint sound."""
    tree_size: int
    root_hex: str
    checked_at: str
    chain: Literal["ok", "broken"] = "ok"
    """Every record's hashes and the head recompute."""
    checkpoints: Literal["ok", "none", "broken"] = "none"
    """Every checkpoint's signatures verify with the trusted keys and its root is the records' root."""
    checkpoints_verified: int = 0
    trusted_keys: Literal["configured", "database"] = "database"
    """Where the trusted verifier keys came from (see the module docstring)."""
    latest_checkpoint: LatestCheckpoint | None = None
    unsigned_records: int = 0
    """Records appended after the latest checkpoint, which no signature vouches for yet."""
    first_bad_index: int | None = None
    problem: str | None = None


class IntegrityCache:
    """The last integrity status, shared by the answers of one process.

    Every full verification is kept in the store (:func:`store_integrity`), so that any process answers with the
    newest one at once: one younger than ``max_age_seconds`` as is; an older one as is too (its ``checked_at``
    says when it was made) while a new verification runs in the background, one at a time, for the next
    answers. Only when none was ever stored, or with ``max_age_seconds`` 0, does an answer wait for a
    verification; answers asked meanwhile wait for that one instead of each running their own. Recomputable,
    never the only copy of anything."""

    def __init__(self, max_age_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age_seconds = max_age_seconds
        self._clock = clock
        self._lock = asyncio.Lock()
        self._status: IntegrityStatus | None = None
        self._at = 0.0
        self._refreshing: asyncio.Task[None] | None = None

    async def get(self, verify: Callable[[], Awaitable[IntegrityStatus]],
                  stored: Callable[[], Awaitable[tuple[IntegrityStatus, float] | None]] | None = None,
                  ) -> IntegrityStatus:
        """The status to answer with; ``stored`` gives the newest stored one and its age in seconds."""
        async with self._lock:
            if self.max_age_seconds <= 0:
                return await verify()
            if self._status is not None and self._clock() - self._at < self.max_age_seconds:
                return self._status
            found = await stored() if stored is not None else None
            if found is None:
                status = await verify()
                self._status, self._at = status, self._clock()
                return status
            status, age = found
            self._status, self._at = status, self._clock() - age
            if age >= self.max_age_seconds and (self._refreshing is None or self._refreshing.done()):
                self._refreshing = asyncio.create_task(self._refresh(verify))
            return status

    async def _refresh(self, verify: Callable[[], Awaitable[IntegrityStatus]]) -> None:
        try:
            status = await verify()
        except Exception as exc:  # the stored status stays; the next stale answer tries again
            log.warning("integrity-refresh-failed", error_type=type(exc).__name__)
            return
        self._status, self._at = status, self._clock()


async def store_integrity(tx: StoreTransaction, status: IntegrityStatus, at: datetime, keep: int = 500) -> None:
    """Keep a full verification's outcome (the report only, which names no person), and the last ``keep``."""
    c = audit_integrity_checks.c
    await tx.conn.execute(insert(audit_integrity_checks).values(checked_at=at, tree_size=status.tree_size,
                                                                verified=status.verified, report=asdict(status)))
    oldest_kept = (await tx.conn.execute(select(c.id).order_by(c.id.desc()).offset(keep).limit(1))).scalar()
    if oldest_kept is not None:
        await tx.conn.execute(delete(audit_integrity_checks).where(c.id <= oldest_kept))


async def latest_integrity(tx: StoreTransaction) -> tuple[IntegrityStatus, datetime] | None:
    """The newest stored verification and when it was made, if any."""
    c = audit_integrity_checks.c
    row = (await tx.conn.execute(select(c.report, c.checked_at).order_by(c.id.desc()).limit(1))).first()
    if row is None:
        return None
    report, at = dict(row.report), row.checked_at
    latest = report.pop("latest_checkpoint", None)
    status = IntegrityStatus(**report, latest_checkpoint=LatestCheckpoint(
        latest["tree_size"], latest["root_hex"], latest["signed_at"], tuple(latest["signed_by"]))
        if latest else None)
    return status, at if at.tzinfo is not None else at.replace(tzinfo=UTC)


async def verify_log_integrity(store: Store, origin: str | None, configured_keys: Sequence[VerifierKey] | None,
                               clock: Callable[[], datetime]) -> IntegrityStatus:
    """Recompute the log and check its signed checkpoints with the trusted keys (the module docstring says which:
    ``configured_keys``, or the database's when None); ``origin`` is the only log name checkpoints may carry
    (any, if None). The status is dated by ``clock`` when the check ends."""
    async with store.transaction() as tx:
        stored_keys = await tx.audit_signing_keys()
    trusted: list[VerifierKey] | None = None
    if configured_keys is not None:
        trusted = list(configured_keys)
        trusted += [k.verifier for k in stored_keys if k.retired_at is not None and k.verifier not in trusted]
    report = await verify_stored_log(store, origin, trusted)
    async with store.transaction() as tx:
        latest = await tx.latest_audit_checkpoint()
    latest_status = None
    if latest is not None:
        try:
            signers = open_note(latest.note, trusted or [k.verifier for k in stored_keys]).verified_by
        except CheckpointError:
            signers = ()
        latest_status = LatestCheckpoint(latest.tree_size, latest.root_hash.hex(), latest.signed_at.isoformat(),
                                         tuple(f"{k.name}+{k.key_id.hex()}" for k in signers))
    if report.bad_checkpoint is not None or (report.first_bad_index is not None and report.chain_ok):
        checkpoints: Literal["ok", "none", "broken"] = "broken"
    else:
        checkpoints = "ok" if latest is not None else "none"
    return IntegrityStatus(
        verified=report.ok, tree_size=report.size, root_hex=report.root_hex, checked_at=clock().isoformat(),
        chain="ok" if report.chain_ok else "broken", checkpoints=checkpoints,
        checkpoints_verified=report.checkpoints,
        trusted_keys="configured" if configured_keys is not None else "database",
        latest_checkpoint=latest_status,
        unsigned_records=max(0, report.size - latest.tree_size) if latest is not None else report.size,
        first_bad_index=report.first_bad_index, problem=report.problem,
    )
