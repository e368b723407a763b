"""The review queue (rule 11): denials, drops at delivery and emergency-override decisions waiting for a privacy
officer, and their closing with a resolution. Both are audited; an officer outside the data protection office
sees and closes only the items their organisation sent or received."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from gateway.privacy.officer import Officer, Question, aware

if TYPE_CHECKING:
    from gateway.store import Store, StoreTransaction

__all__ = ["close_review", "review_queue"]


async def review_queue(store: Store, question: Question, limit: int = 500,
                       reviewed: bool | None = False) -> list[dict[str, Any]]:
    """The queue, each item with its audit record's coded fields, newest first; open items by default
    (``reviewed`` True: closed ones, None: both)."""
    async with store.transaction() as tx:
        items = await _own_review_items(tx, question.officer, limit, reviewed)
        await tx.append_audit([question.audit("review-queue")])
    queue = []
    for item, record in items:
        queue.append({
            "log_index": item["audit_index"], "kind": item["kind"], "alert": bool(record.get("alert")),
            **{k: record.get(k) for k in (
                "event_type", "action", "outcome", "occurred_at", "reason", "purpose", "flow_id", "source_org",
                "recipient_org", "decision_id", "consent_ref", "policy_revision")},
            "reviewed_at": _iso(item["reviewed_at"]), "reviewed_by": item["reviewed_by"],
            "resolution": item["resolution"], "comment": item.get("comment"),
        })
    return queue


async def close_review(store: Store, audit_index: int, resolution: str, question: Question,
                       comment: str | None = None) -> None:
    """Close an open review item with a resolution (and a comment kept with the item, never in the log); the
    review is itself audited. An officer outside the data protection office closes only items their organisation
    sent or received (else: not found)."""
    from gateway.errors import NotFound

    officer = question.officer
    async with store.transaction() as tx:
        entry = await tx.audit_entry(audit_index)
        if entry is None or not officer.concerns(json.loads(entry["record"])):
            raise NotFound(f"no open review item for audit record {audit_index}")
        if not await tx.close_review_item(audit_index, officer.client_id, resolution, question.at, comment):
            raise NotFound(f"no open review item for audit record {audit_index}")
        await tx.append_audit([question.audit(f"review-{resolution}", None, f"audit-log/{audit_index}")])


async def _own_review_items(tx: StoreTransaction, officer: Officer, limit: int,
                            reviewed: bool | None) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Up to ``limit`` review items (with their parsed records) the officer may see, newest first; for an officer
    outside the data protection office, fetched in growing pages until enough concern them."""
    fetch = limit
    while True:
        items = await tx.review_items(fetch, reviewed=reviewed)
        own = [(item, record) for item in items
               if officer.concerns(record := json.loads(item["record"]))]
        if len(own) >= limit or len(items) < fetch:
            return own[:limit]
        fetch *= 4


def _iso(value: datetime | None) -> str | None:
    return None if value is None else aware(value).isoformat()
