"""The privacy officers' review queue (privacy.md rule 11): one item per audit record that calls for review.

Table ``review_items`` (migration 0009; the officer's ``comment`` from 0012). Items are opened by the audit
append (:meth:`~gateway.store.audit_log.AuditLogRepository.append_audit`) and closed here by an officer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from gateway.store.base import Repository
from gateway.store.tables import audit_log, review_items

__all__ = ["ReviewItemsRepository"]


class ReviewItemsRepository(Repository):
    """Open and closed review items, with their audit records."""

    async def review_items(self, limit: int, *, reviewed: bool | None = False) -> list[dict[str, Any]]:
        """Review items newest first with their audit record text: open ones (``reviewed=False``), closed
        ones (True) or both (None)."""
        query = (
            select(review_items, audit_log.c.record)
            .join(audit_log, audit_log.c.idx == review_items.c.audit_index)
            .order_by(review_items.c.audit_index.desc())
            .limit(limit)
        )
        if reviewed is not None:
            done = review_items.c.reviewed_at.is_not(None)
            query = query.where(done if reviewed else review_items.c.reviewed_at.is_(None))
        return [dict(r._mapping) for r in await self.conn.execute(query)]

    async def close_review_item(self, audit_index: int, reviewed_by: str, resolution: str, at: datetime,
                                comment: str | None = None) -> bool:
        """Close an open review item (with the officer's comment, if any); False if there is none at that index
        or it was closed already."""
        result = await self.conn.execute(
            update(review_items)
            .where(review_items.c.audit_index == audit_index, review_items.c.reviewed_at.is_(None))
            .values(reviewed_at=at, reviewed_by=reviewed_by, resolution=resolution, comment=comment)
        )
        return bool(result.rowcount)

    async def review_item(self, audit_index: int) -> dict[str, Any] | None:
        """The review item of one audit record (None: that record needs no review)."""
        row = (await self.conn.execute(select(review_items).where(review_items.c.audit_index == audit_index))).first()
        return None if row is None else dict(row._mapping)
