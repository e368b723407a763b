"""What only the in-memory store has to say for itself: misuse that would hang or corrupt a test fails loudly.

Its semantics (claims, subjects, consents, outbox, audit, all-or-nothing transactions) are held to the SQL
stores' by ``tests/contract``; these are the guards a database gives for free.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.store import MessageStatus
from gateway.store.memory import MemoryStore

NOW = datetime(2026, 11, 22, tzinfo=UTC)


def status(message_id: str) -> MessageStatus:
    return MessageStatus(sender="aler", message_id=message_id, correlation_id="c", message_type="t",
                         state="received", reason_class=None, recipients=(), received_at=NOW)


async def test_a_transaction_opened_inside_another_of_the_same_task_fails_instead_of_waiting_forever() -> None:
    store = MemoryStore(b"k" * 32)
    with pytest.raises(RuntimeError, match="inside another one"):
        async with store.transaction() as tx:
            await tx.claim_messages([status("m1")])
            async with store.transaction():
                pass
    async with store.transaction() as tx:  # the failed outer transaction left nothing, and the store still works
        assert await tx.message("aler", "m1") is None
        assert await tx.claim_messages([status("m1")]) == {("aler", "m1")}


async def test_a_transaction_that_has_ended_cannot_change_the_store_behind_its_back() -> None:
    store = MemoryStore(b"k" * 32)
    async with store.transaction() as tx:
        await tx.claim_messages([status("m1")])
    with pytest.raises(RuntimeError, match="has ended"):
        await tx.claim_messages([status("m2")])
    async with store.transaction() as tx:
        assert await tx.message("aler", "m2") is None and await tx.message("aler", "m1") is not None
