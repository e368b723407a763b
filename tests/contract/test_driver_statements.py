"""The statements every batch runs on PostgreSQL go to the driver directly (``Repository._fetch``), past
SQLAlchemy's execution layer but inside its transaction: they must commit and roll back with it, fail as a
statement run through SQLAlchemy fails (integrity violation apart, the store is unavailable: the caller retries),
and leave the pool usable after a lost connection, as SQLAlchemy's own statements do."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, event, text
from sqlalchemy.exc import IntegrityError

from gateway.errors import DependencyUnavailable
from gateway.store import MessageStatus, OutboxRow, Store, StoreTransaction
from gateway.store.outbox import (
    _ALLOCATE_AND_QUEUE_POSTGRESQL,
    _CLAIM_DEQUEUED_BY_ID_POSTGRESQL,
    _CLAIM_DEQUEUED_POSTGRESQL,
    _SWEEP_POSTGRESQL,
)
from gateway.store.subjects import _PREFETCH_POSTGRESQL
from gateway.store.tables import outbox_queue
from tests.conftest import Backends
from tests.contract.conftest import sql_store

NOW = datetime(2026, 12, 6, tzinfo=UTC)


@pytest.fixture
async def postgres(settings_for: Callable[[Backends], object]) -> AsyncIterator[Store]:
    async with sql_store("postgres", settings_for) as made:
        yield made


def received(message_id: str) -> MessageStatus:
    return MessageStatus(sender="aler", message_id=message_id, correlation_id="c-1", message_type="tenancy.arrears",
                         state="received", reason_class=None, recipients=(), received_at=NOW, request_id="r-1")


async def stored(store: Store, message_id: str) -> bool:
    async with store.transaction() as tx:
        return await tx.message("aler", message_id) is not None


async def test_a_first_statement_on_the_driver_begins_the_transaction_and_rolls_back_with_it(postgres: Store) -> None:
    with pytest.raises(RuntimeError):
        async with postgres.transaction() as tx:
            assert await tx.claim_messages([received("drv-rolled-back")]) == {("aler", "drv-rolled-back")}
            raise RuntimeError("the caller fails after the claim")
    assert not await stored(postgres, "drv-rolled-back")
    async with postgres.transaction() as tx:
        await tx.claim_messages([received("drv-committed")])
    assert await stored(postgres, "drv-committed")


async def test_a_failing_statement_on_the_driver_fails_as_one_through_sqlalchemy(postgres: Store) -> None:
    with pytest.raises(DependencyUnavailable, match="DivisionByZeroError"):
        async with postgres.transaction() as tx:
            await tx._fetch("SELECT 1 / 0")
    with pytest.raises(IntegrityError):
        async with postgres.transaction() as tx:
            await tx._fetch("INSERT INTO consent_change_head (id, seq) VALUES (1, 0)")
    async with postgres.transaction() as tx:  # nothing half-done is left on the pooled connection
        assert await tx.consent_change_head() == 0


async def test_a_lost_connection_is_store_unavailable_and_the_pool_recovers(postgres: Store) -> None:
    async with postgres.engine.connect() as other:
        with pytest.raises(DependencyUnavailable):
            async with postgres.transaction() as tx:
                backend = await tx._fetch("SELECT pg_backend_pid()")
                await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend[0][0]})
                await tx.consent_change_head()
    async with postgres.transaction() as tx:  # a fresh connection: the dead one was not handed out again
        await tx.claim_messages([received("drv-after-loss")])
    assert await stored(postgres, "drv-after-loss")


async def generic_plan(store: Store, statement: str, *args: object) -> str:
    """The plan PostgreSQL keeps for ``statement`` once it has been run a few times: the generic plan of the
    prepared statement, for parameters it does not look at."""
    async with store.transaction() as tx:
        await tx._fetch("SET LOCAL plan_cache_mode = force_generic_plan")
        return "\n".join(row[0] for row in await tx._fetch(f"EXPLAIN {statement}", *args))


async def test_the_delivery_claim_finds_its_rows_through_the_unique_index_whatever_the_backlog(
        postgres: Store) -> None:
    """After an outage the outbox holds a backlog of undelivered rows that the table's statistics, taken while
    nearly every row was delivered, do not know of. The claim a worker makes after each commit must look its own
    rows up by (topic, message id), never walk the undelivered rows: through them it took half a second a batch
    behind a backlog of 100,000."""
    delivered = [OutboxRow(topic="out.fwa", recipient="fwa", message_id=f"d{n}", value=b"{}", key=b"k", headers=(),
                           created_at=NOW) for n in range(2_000)]
    async with postgres.transaction() as tx:
        await tx.enqueue(delivered)
        await tx.claim_undelivered(delivered, dequeue=True)
    async with postgres.engine.connect() as conn:
        await conn.execute(text("ANALYZE outbox"))
        await conn.commit()
    backlog = [replace(row, message_id=f"q{n}") for n, row in enumerate(delivered)]
    async with postgres.transaction() as tx:
        await tx.enqueue(backlog)
    plan = await generic_plan(postgres, _CLAIM_DEQUEUED_POSTGRESQL, ["out.fwa"], ["q1"])
    assert "uq_outbox_topic_message" in plan and "Seq Scan" not in plan and "Hash" not in plan, plan
    # rows given with their ids (as a worker delivers what it committed): the queue's primary key alone
    plan = await generic_plan(postgres, _CLAIM_DEQUEUED_BY_ID_POSTGRESQL, [1, 2])
    assert "pk_outbox_queue" in plan and "outbox_queue" in plan and "Seq Scan" not in plan, plan
    assert "uq_outbox_topic_message" not in plan and "Hash" not in plan, plan


async def test_the_delivery_claim_never_scans_the_queue_whatever_it_deleted_since_the_last_vacuum(
        postgres: Store) -> None:
    """Every delivery deletes its rows from the outbox's queue, and until a vacuum (a minute apart at most, by
    default) their dead versions stay in the table. A claim that joined the batch's rows to the queue with a hash
    join read the whole table, dead versions and all, on every batch: the queue's own rows are looked up by
    primary key, one by one, and deleted the same way, so neither the claim nor the queueing walks the table; the
    sweep reads the queue in order and each message by its primary key."""
    row = OutboxRow(topic="out.fwa", recipient="fwa", message_id="x", value=b"{}", key=b"k", headers=(),
                    created_at=NOW)
    async with postgres.engine.connect() as conn:  # statistics of a short queue, as between bursts
        await conn.execute(text("ANALYZE outbox_queue"))
        await conn.commit()
    for n in range(20):  # 8,000 rows queued and delivered, never vacuumed: half claimed by id, half by name
        batch = [replace(row, message_id=f"b{n}-{i}") for i in range(400)]
        async with postgres.transaction() as tx:
            queued = await tx.enqueue(batch)
        async with postgres.transaction() as tx:
            assert len(await tx.claim_undelivered(queued if n % 2 else batch, dequeue=True)) == 400
    plan = await generic_plan(postgres, _CLAIM_DEQUEUED_POSTGRESQL, ["out.fwa"], ["b0-1"])
    assert "Seq Scan" not in plan and "Hash" not in plan, plan
    plan = await generic_plan(postgres, _CLAIM_DEQUEUED_BY_ID_POSTGRESQL, [1, 2])
    assert "Seq Scan" not in plan and "Hash" not in plan, plan
    # queueing reads no table: ids drawn from the sequence go into the queue as they are
    plan = await generic_plan(postgres, _ALLOCATE_AND_QUEUE_POSTGRESQL, 400)
    assert "Scan on outbox" not in plan and "Seq Scan" not in plan and "Hash" not in plan, plan
    # the relay's sweep, every poll: the queue in order, each message by its primary key, never the whole outbox
    plan = await generic_plan(postgres, _SWEEP_POSTGRESQL, 200, NOW)
    assert "Seq Scan" not in plan and "Hash" not in plan and "pk_outbox_queue" in plan, plan


async def test_the_subject_lookup_tests_no_array_row_by_row(postgres: Store) -> None:
    """The batch's identifier hashes are joined to the identifiers, not tested with ``= ANY`` against each row
    read (which a generic plan does by walking the whole array)."""
    plan = await generic_plan(postgres, _PREFETCH_POSTGRESQL, ["h1", "h2"])
    assert "ANY" not in plan and "subject_identifiers" in plan


async def test_a_quoted_referral_is_looked_up_through_the_unique_index(postgres: Store) -> None:
    """An FWA outcome names the referral the gateway sent it; finding that referral's subject reads the unique
    index on (topic, message id) for the topics the partner receives on, not the whole outbox (the message id
    alone leads no index)."""
    async with postgres.transaction() as tx:
        await tx.enqueue([OutboxRow(topic=f"out.{partner}", recipient=partner, message_id=f"gw-{n}", value=b"{}",
                                    key=b"k", headers=(), created_at=NOW)
                          for n in range(1_000) for partner in ("fwa", "comune")])
    async with postgres.engine.connect() as conn:
        await conn.execute(text("ANALYZE outbox"))
        await conn.commit()

    async def lookup(tx: StoreTransaction) -> None:
        assert await tx.subject_of_disclosure("gw-1", ("out.fwa", "s4.out.fwa")) is None  # no subject named

    plan = await plan_of_outbox_read(postgres, lookup)
    looked_up = [line for line in plan.splitlines() if "Index Cond" in line]
    assert "Seq Scan on outbox" not in plan
    assert any("topic" in line and "message_id" in line for line in looked_up), plan


async def test_a_withdrawal_finds_what_was_disclosed_under_the_consent_through_its_index(postgres: Store) -> None:
    """Rule 10: a withdrawal notifies every recipient that received data under the consent. The outbox keeps
    every row it delivered, so the disclosures are looked up by consent id, not read from the whole table."""
    async with postgres.transaction() as tx:
        await tx.enqueue([OutboxRow(topic="out.fwa", recipient="fwa", message_id=f"gw-{n}", value=b"{}", key=b"k",
                                    headers=(), created_at=NOW, consent_id=f"c-{n % 500}") for n in range(2_000)])
        await tx.conn.execute(delete(outbox_queue))  # every row delivered
    async with postgres.engine.connect() as conn:
        await conn.execute(text("ANALYZE outbox"))
        await conn.commit()

    async def disclosures(tx: StoreTransaction) -> None:
        assert await tx.disclosures_under("c-7") == [("fwa", f"gw-{n}") for n in (7, 507, 1007, 1507)]

    plan = await plan_of_outbox_read(postgres, disclosures)
    assert "Seq Scan on outbox" not in plan and "ix_outbox_consent" in plan, plan


async def plan_of_outbox_read(store: Store, read: Callable[[StoreTransaction], Awaitable[None]]) -> str:
    """The generic plan of the one statement on the outbox that ``read`` runs through SQLAlchemy."""
    seen: list[tuple[str, tuple[object, ...]]] = []

    def capture(_conn: object, _cursor: object, statement: str, parameters: tuple[object, ...], *_: object) -> None:
        seen.append((statement, parameters))

    event.listen(store.engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with store.transaction() as tx:
            await read(tx)
    finally:
        event.remove(store.engine.sync_engine, "before_cursor_execute", capture)
    [(statement, parameters)] = [(s, p) for s, p in seen if "outbox" in s]
    return await generic_plan(store, statement, *parameters)
