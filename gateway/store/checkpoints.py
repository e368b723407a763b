"""Signed checkpoints of the audit log and the public halves of the keys that sign them.

Tables ``audit_checkpoints`` and ``audit_signing_keys`` (migration 0002). A checkpoint is signed over the
settled log, under the audit head lock (so this repository extends :mod:`gateway.store.audit_log`'s); private
signing keys never reach the database (:mod:`gateway.audit.keys`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from gateway.audit.chain import ChainHead
from gateway.audit.checkpoint import Checkpoint, VerifierKey
from gateway.audit.stored import StoredCheckpoint, StoredSigningKey
from gateway.store.audit_log import AuditLogRepository
from gateway.store.base import _utc
from gateway.store.tables import audit_checkpoints, audit_signing_keys

__all__ = ["CheckpointsRepository"]


class CheckpointsRepository(AuditLogRepository):
    """Signed checkpoints and signing keys."""

    async def locked_audit_head(self) -> ChainHead:
        """The audit head, locked until the transaction ends: appends wait, so a checkpoint signs a settled log."""
        return (await self._locked_head())[0]

    async def add_audit_checkpoint(self, checkpoint: Checkpoint, note: str, signed_at: datetime,
                                   signer: VerifierKey) -> StoredCheckpoint:
        """Store a signed checkpoint; ``signer`` is the key that signed first and must be registered."""
        values = {
            "tree_size": checkpoint.tree_size, "root_hash": checkpoint.root_hash, "note": note,
            "signed_at": signed_at, "key_name": signer.name, "key_id": signer.key_id.hex(),
        }
        result = await self.conn.execute(insert(audit_checkpoints).values(**values))
        assert result.inserted_primary_key is not None
        return StoredCheckpoint(
            id=int(result.inserted_primary_key[0]), tree_size=checkpoint.tree_size, root_hash=checkpoint.root_hash,
            note=note, signed_at=signed_at, key_name=signer.name, key_id=signer.key_id.hex(),
        )

    async def latest_audit_checkpoint(self) -> StoredCheckpoint | None:
        """The most recently signed checkpoint, or None before the first."""
        row = (
            await self.conn.execute(select(audit_checkpoints).order_by(audit_checkpoints.c.id.desc()).limit(1))
        ).first()
        return None if row is None else self._stored_checkpoint(row._mapping)

    async def audit_checkpoint_at(self, tree_size: int) -> StoredCheckpoint | None:
        """The most recent checkpoint signed at exactly ``tree_size`` records, if any."""
        row = (
            await self.conn.execute(
                select(audit_checkpoints)
                .where(audit_checkpoints.c.tree_size == tree_size)
                .order_by(audit_checkpoints.c.id.desc())
                .limit(1)
            )
        ).first()
        return None if row is None else self._stored_checkpoint(row._mapping)

    async def audit_checkpoints(self, after_id: int = 0, limit: int | None = None) -> list[StoredCheckpoint]:
        """Checkpoints in signing order, after ``after_id``."""
        query = select(audit_checkpoints).where(audit_checkpoints.c.id > after_id).order_by(audit_checkpoints.c.id)
        if limit is not None:
            query = query.limit(limit)
        return [self._stored_checkpoint(r._mapping) for r in await self.conn.execute(query)]

    async def add_audit_signing_key(self, key: VerifierKey, created_at: datetime) -> bool:
        """Register the public half of a signing key; False if it was registered already."""
        try:
            async with self.conn.begin_nested():
                await self.conn.execute(
                    insert(audit_signing_keys).values(
                        key_name=key.name, key_id=key.key_id.hex(), public_key=key.public_key, created_at=created_at,
                    )
                )
        except IntegrityError:
            return False
        return True

    async def retire_audit_signing_keys(self, keys: Sequence[VerifierKey], at: datetime) -> None:
        """Mark ``keys`` as no longer signing from ``at`` on; they keep verifying older checkpoints.

        Takes the audit head lock first, so no checkpoint is being signed with them while they are retired, and
        never dates the retirement before the latest checkpoint (clocks of two machines may differ).
        """
        await self._locked_head()
        latest = await self.latest_audit_checkpoint()
        if latest is not None and latest.signed_at > at:
            at = latest.signed_at
        for key in keys:
            await self.conn.execute(
                update(audit_signing_keys)
                .where(
                    audit_signing_keys.c.key_name == key.name,
                    audit_signing_keys.c.key_id == key.key_id.hex(),
                    audit_signing_keys.c.retired_at.is_(None),
                )
                .values(retired_at=at)
            )

    async def audit_signing_keys(self) -> list[StoredSigningKey]:
        """Every registered signing key, oldest first, retired ones included."""
        rows = await self.conn.execute(
            select(audit_signing_keys).order_by(
                audit_signing_keys.c.created_at, audit_signing_keys.c.key_name, audit_signing_keys.c.key_id
            )
        )
        return [
            StoredSigningKey(
                key_name=m["key_name"], key_id=m["key_id"], public_key=bytes(m["public_key"]),
                created_at=_utc(m["created_at"]) or datetime.now(UTC), retired_at=_utc(m["retired_at"]),
            )
            for m in (r._mapping for r in rows)
        ]

    @staticmethod
    def _stored_checkpoint(m: Any) -> StoredCheckpoint:
        return StoredCheckpoint(
            id=int(m["id"]), tree_size=int(m["tree_size"]), root_hash=bytes(m["root_hash"]), note=m["note"],
            signed_at=_utc(m["signed_at"]) or datetime.now(UTC), key_name=m["key_name"], key_id=m["key_id"],
        )
