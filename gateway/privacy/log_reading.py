"""An officer's reads of the audit log itself: one record with its review item, a page of records (keyset
pagination, newest first), and the last days' decisions, drops and consent changes counted per flow and day. Each
read is audited and shows only the records the officer may see (:meth:`gateway.privacy.officer.Officer.concerns`);
a record they may not see is answered as absent."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gateway.privacy.activity import LOOK_LIMIT, ActivityTally, ActivityView
from gateway.privacy.officer import Question

if TYPE_CHECKING:
    from gateway.store import Store

__all__ = ["audit_page", "audit_record", "daily_activity"]


async def audit_record(store: Store, index: int, question: Question
                       ) -> tuple[dict[str, Any], str, dict[str, Any] | None]:
    """One audit record the officer may see (else not found, as if absent): the record, its stored canonical text
    (what the log hashed) and its review item, if it has one. Audited as a ``read-audit-record``."""
    from gateway.errors import NotFound

    async with store.transaction() as tx:
        entry = await tx.audit_entry(index)
        record = json.loads(entry["record"]) if entry is not None else None
        if entry is None or record is None or not question.officer.concerns(record):
            raise NotFound(f"no audit record at index {index}")
        item = await tx.review_item(index)
        await tx.append_audit([question.audit("read-audit-record", record.get("subject_ref"),
                                              f"audit-log/{index}")])
    return record, str(entry["record"]), item


async def audit_page(store: Store, question: Question, before: int | None, limit: int = 50,
                     event_types: Sequence[str] = ()) -> tuple[list[tuple[int, dict[str, Any]]], int | None]:
    """One page of the audit log, newest first, of records the officer may see, below index ``before`` (keyset
    pagination); with the ``before`` of the next page (None at the end). Audited."""
    found: list[tuple[int, dict[str, Any]]] = []
    cursor, fetch, ended = before, limit, False
    async with store.transaction() as tx:
        while len(found) < limit and not ended:
            rows = await tx.audit_entries_before(cursor, fetch, event_types)
            ended = len(rows) < fetch
            for row in rows:
                cursor = row["idx"]
                record = json.loads(row["record"])
                if question.officer.concerns(record):
                    found.append((row["idx"], record))
                    if len(found) == limit:
                        break
            fetch = min(fetch * 4, 10_000)
        await tx.append_audit([question.audit(
            "audit-log-page", None, f"audit-log/<{before}" if before is not None else "audit-log/latest")])
    next_before = found[-1][0] if found and len(found) == limit and (found[-1][0] > 0) else None
    return found, next_before


async def daily_activity(store: Store, question: Question, tally: ActivityTally) -> ActivityView:
    """The last days of decisions, drops and consent changes the officer may see, counted per flow and day
    (:mod:`gateway.privacy.activity`); the look is audited like every other."""
    async with store.transaction() as tx:
        read = await tally.refresh(tx, question.at, limit=LOOK_LIMIT)
        view = await tally.view(tx, question.officer, question.at, read)
        await tx.append_audit([question.audit("daily-activity")])
    return view
