"""The store contract: the same suite on SQLite, on a real PostgreSQL server and, for what the pipeline's unit of
work covers (``any_store``), on the in-memory store its fast unit tests use.

Schema from migrations, deduplication of message ids, subject creation under concurrency, audit appends
that never gap or repeat an index and store the Merkle subtrees they complete, all-or-nothing transactions,
outbox claims that concurrent relays do not share (PostgreSQL ``SKIP LOCKED``), and statistics activity that
a care record sent again replaces (``ON CONFLICT DO UPDATE``).
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, insert, inspect, update

from gateway.audit.merkle import STORED_NODE_LEVEL, MerkleAccumulator
from gateway.audit.offline import rebuild_stored_nodes
from gateway.audit.record import AuditRecord
from gateway.audit.verify import verify_log
from gateway.policy.consent import ConsentRecord
from gateway.statistics.counting import ActivityEvent
from gateway.store import MessageStatus, OutboxRow, PipelineTransaction, Store, Subject
from gateway.store.ports import InspectableStore
from gateway.store.statuses import COPY_FROM
from gateway.store.tables import audit_merkle_nodes, metadata, subject_identifiers, subjects

NOW = datetime(2026, 11, 22, tzinfo=UTC)


def audit(action: str = "deny") -> AuditRecord:
    return AuditRecord(event_type="decision", action=action, occurred_at=NOW, outcome="deny", instance="test")


def status(message_id: str) -> MessageStatus:
    return MessageStatus(sender="aler", message_id=message_id, correlation_id="c", message_type="t",
                         state="received", reason_class=None, recipients=(), received_at=NOW)


def outbox_row(n: int) -> OutboxRow:
    return OutboxRow(topic="out.fwa", recipient="fwa", message_id=f"m{n}", value=b"{}", key=b"k", headers=(),
                     created_at=NOW)


async def test_migrations_create_exactly_the_declared_schema(store: Store) -> None:
    async with store.engine.connect() as conn:
        tables = await conn.run_sync(lambda c: {t: {col["name"] for col in inspect(c).get_columns(t)}
                                                for t in inspect(c).get_table_names()})
    tables.pop("alembic_version")
    assert tables == {t.name: {c.name for c in t.columns} for t in metadata.sorted_tables}


async def test_migrating_twice_is_harmless(store: Store) -> None:
    await store.migrate()
    async with store.transaction() as tx:
        assert await tx.claim_messages([status("m1")]) == {("aler", "m1")}


async def test_a_message_id_is_claimed_once_per_sender(any_store: InspectableStore) -> None:
    async with any_store.transaction() as tx:
        assert await tx.claim_messages([status("m1")]) == {("aler", "m1")}
        assert await tx.claim_messages([status("m1"), status("m2"), status("m2")]) == {("aler", "m2")}
    async with any_store.transaction() as tx:
        assert await tx.claim_messages([status("m1"), status("m3")]) == {("aler", "m3")}
        found = await tx.message("aler", "m1")
    assert found is not None and found.state == "received"


@pytest.mark.parametrize("size", [2, COPY_FROM + 3], ids=["small-batch", "copied-batch"])
async def test_decided_statuses_are_written_all_or_none(any_store: InspectableStore, size: int) -> None:
    """``insert_messages`` writes a batch decided without claiming first when every message id is new; one seen
    before makes it answer False, and the transaction, rolled back, leaves none of the batch's statuses. A batch
    of ``COPY_FROM`` or more is copied on PostgreSQL, a smaller one inserted."""
    decided = replace(status("m0"), state="forwarded", recipients=("fwa", "comune-milano"), request_id="r-1")
    batch = [decided, *(replace(status(f"m{n}"), state="denied", reason_class="x") for n in range(1, size))]
    async with any_store.transaction() as tx:
        assert await tx.insert_messages(batch)
    later = [status(f"later-{n}") for n in range(size - 1)]
    with pytest.raises(LookupError):
        async with any_store.transaction() as tx:
            assert not await tx.insert_messages([*later, replace(status(f"m{size - 1}"), state="forwarded")])
            raise LookupError  # what the intake does: the transaction is rolled back
    async with any_store.transaction() as tx:
        found = await tx.messages_many({(s.sender, s.message_id) for s in [*batch, *later]})
    assert set(found) == {(s.sender, s.message_id) for s in batch}
    m0 = found[("aler", "m0")]
    assert (m0.state, m0.recipients, m0.request_id, m0.received_at) == ("forwarded", ("fwa", "comune-milano"), "r-1",
                                                                         NOW)
    assert {(m.state, m.reason_class) for key, m in found.items() if key != ("aler", "m0")} == {("denied", "x")}


async def test_a_batch_of_outcomes_is_written_and_read_back_in_one_statement_each(any_store: InspectableStore) -> None:
    async with any_store.transaction() as tx:
        await tx.claim_messages([status("m1"), status("m2"), status("m3")])
        await tx.update_messages([replace(status("m1"), state="forwarded", recipients=("fwa",)),
                                  replace(status("m2"), state="denied", reason_class="purpose-missing")])
        found = await tx.messages_many({("aler", "m1"), ("aler", "m2"), ("aler", "m3"), ("aler", "unknown")})
    assert set(found) == {("aler", "m1"), ("aler", "m2"), ("aler", "m3")}
    assert (found[("aler", "m1")].state, found[("aler", "m1")].recipients) == ("forwarded", ("fwa",))
    assert (found[("aler", "m2")].state, found[("aler", "m2")].reason_class) == ("denied", "purpose-missing")
    assert found[("aler", "m3")].state == "received"


async def test_a_batch_keeps_the_first_copy_of_a_message_and_the_last_outcome_written(
        any_store: InspectableStore) -> None:
    """The claim keeps what the first copy of a replayed message said; an outcome written twice in one call
    ends as the last one; several recipients and the received time (timezone-aware) read back as written."""
    later = datetime(2026, 11, 22, 10, 30, 15, 123456, tzinfo=UTC)
    first = replace(status("m1"), correlation_id="c-first", received_at=later, request_id="r-1")
    async with any_store.transaction() as tx:
        claimed = await tx.claim_messages([first, replace(first, correlation_id="c-second"), status("m2")])
        assert claimed == {("aler", "m1"), ("aler", "m2")}
        await tx.update_messages([replace(first, state="denied", reason_class="not-authorised"),
                                  replace(first, state="forwarded", recipients=("fwa", "comune-milano")),
                                  replace(status("unknown"), state="forwarded", recipients=("fwa",))])
    async with any_store.transaction() as tx:
        found = await tx.messages_many({("aler", "m1"), ("aler", "m2"), ("aler", "unknown")})
    assert set(found) == {("aler", "m1"), ("aler", "m2")}
    m1 = found[("aler", "m1")]
    assert (m1.correlation_id, m1.request_id, m1.state, m1.reason_class, m1.recipients) == (
        "c-first", "r-1", "forwarded", None, ("fwa", "comune-milano"))
    assert m1.received_at == later and m1.received_at.utcoffset() is not None
    assert (found[("aler", "m2")].state, found[("aler", "m2")].recipients) == ("received", ())


async def test_subjects_prefetched_for_a_batch_are_the_ones_later_lookups_find(any_store: InspectableStore) -> None:
    async with any_store.transaction() as tx:
        known = await tx.subject("cf", "RSSMRA85T10A562S", create=True)
        assert known is not None
    async with any_store.transaction() as tx:
        await tx.prefetch_subjects([("cf", "RSSMRA85T10A562S"), ("cf", "BNCGNN80A01F205X")])
        assert await tx.subject("cf", "RSSMRA85T10A562S", create=False) == known
        assert await tx.subject("cf", "BNCGNN80A01F205X", create=False) is None
        created = await tx.subject("cf", "BNCGNN80A01F205X", create=True)  # known absent, so created
        assert created is not None and created != known
        assert await tx.link_identifier(created, "stp", "STP0300000001234")
        assert not await tx.link_identifier(created, "cf", "RSSMRA85T10A562S")  # someone else's: never merged
    async with any_store.transaction() as tx:
        assert await tx.subject("stp", "STP0300000001234", create=False) == created
        assert await tx.subject("cf", "BNCGNN80A01F205X", create=False) == created


async def test_people_seen_first_in_a_batch_are_written_together_and_found_by_any_identifier(
    any_store: InspectableStore,
) -> None:
    async with any_store.transaction() as tx:
        await tx.prefetch_subjects([("cf", "RSSMRA85T10A562S"), ("stp", "STP0300000001234"),
                                    ("cf", "BNCGNN80A01F205X")])
        tx.defer_new_subjects()
        first = await tx.subject("cf", "RSSMRA85T10A562S", create=True)
        assert first is not None
        assert await tx.link_identifier(first, "stp", "STP0300000001234")
        assert await tx.subject("stp", "STP0300000001234", create=False) == first  # seen within the batch
        second = await tx.subject("cf", "BNCGNN80A01F205X", create=True)
        assert await tx.write_new_subjects()
    async with any_store.transaction() as tx:
        assert await tx.subject("stp", "STP0300000001234", create=False) == first
        assert await tx.subject("cf", "BNCGNN80A01F205X", create=False) == second != first


async def test_a_person_another_writer_saw_first_is_not_created_twice(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.prefetch_subjects([("cf", "RSSMRA85T10A562S")])  # not known yet, as far as this batch knows
        tx.defer_new_subjects()
        mine = await tx.subject("cf", "RSSMRA85T10A562S", create=True)
        theirs = Subject("sbj_theirs", b"t" * 32)  # meanwhile another worker wrote the same person
        await tx.conn.execute(insert(subjects).values(pseudonym=theirs.pseudonym, lookup_hash="other",
                                                      subject_key=theirs.subject_key, created_at=NOW))
        await tx.conn.execute(insert(subject_identifiers).values(
            lookup_hash=store.lookup_hash("cf", "RSSMRA85T10A562S"), pseudonym=theirs.pseudonym, created_at=NOW))
        assert not await tx.write_new_subjects()
        assert await tx.subject("cf", "RSSMRA85T10A562S", create=True) == theirs != mine
    async with store.transaction() as tx:
        assert await tx.subject_by_pseudonym(mine.pseudonym if mine else "") is None  # nothing of it was written


async def test_consents_of_a_batch_and_the_latest_version_of_each_lineage(any_store: InspectableStore) -> None:
    async with any_store.transaction() as tx:
        a = await tx.subject("cf", "RSSMRA85T10A562S", create=True)
        b = await tx.subject("cf", "BNCGNN80A01F205X", create=True)
        assert a is not None and b is not None
        base = ConsentRecord(consent_id="cns-1", version=1, subject_pseudonym=a.pseudonym, status="active",
                             decision="permit", purposes=frozenset({"microcredit-assessment"}), recorded_at=NOW)
        other = replace(base, consent_id="cns-2", subject_pseudonym=b.pseudonym)
        await tx.add_consent(base, "aler")
        await tx.add_consent(other, "aler")
    async with any_store.transaction() as tx:  # parsed once, then from the process's cache: the same answers
        for _ in range(2):
            found = await tx.consents_for_many([a.pseudonym, b.pseudonym, "sbj_none"])
            assert found == {a.pseudonym: [base], b.pseudonym: [other], "sbj_none": []}
        await tx.add_consent(base.next_version(status="inactive"), "aler")
    async with any_store.transaction() as tx:
        latest = await tx.latest_consent_versions({"cns-1", "cns-2", "cns-unknown"})
        assert (latest["cns-1"].version, latest["cns-1"].status) == (2, "inactive")
        assert latest["cns-2"] == other and "cns-unknown" not in latest
        assert [r.version for r in await tx.consent_versions("cns-1")] == [1, 2]


async def test_concurrent_first_sightings_of_a_person_share_one_pseudonym(any_store: InspectableStore) -> None:
    async def resolve() -> str:
        async with any_store.transaction() as tx:
            subject = await tx.subject("cf", "RSSMRA85T10A562S", create=True)
            assert subject is not None
            return subject.pseudonym

    pseudonyms = await asyncio.gather(*(resolve() for _ in range(8)), return_exceptions=True)
    ok = {p for p in pseudonyms if isinstance(p, str)}
    assert len(ok) == 1
    async with any_store.transaction() as tx:
        assert (await tx.subject("cf", "RSSMRA85T10A562S", create=False)) is not None
        assert (await tx.subject("cf", "BNCGNN80A01F205X", create=False)) is None


async def test_T08_concurrent_audit_appends_leave_no_gap_or_duplicate(any_store: InspectableStore) -> None:
    async def append(n: int) -> None:
        async with any_store.transaction() as tx:
            await tx.append_audit([audit(f"a{n}"), audit(f"b{n}")])

    await asyncio.gather(*(append(n) for n in range(10)))
    async with any_store.transaction() as tx:
        head = await tx.audit_head()
        entries = await tx.audit_entries()
    assert [e["idx"] for e in entries] == list(range(20))
    assert head.size == 20
    assert verify_log(entries, head).ok


async def test_T08_a_failed_transaction_leaves_nothing_behind(any_store: InspectableStore) -> None:
    async with any_store.transaction() as tx:
        await tx.append_audit([audit()])

    class Crash(Exception):
        pass

    with pytest.raises(Crash):
        async with any_store.transaction() as tx:
            await tx.claim_messages([status("m-crash")])
            await tx.append_audit([audit(), audit()])
            await tx.enqueue([outbox_row(1)])
            raise Crash
    async with any_store.transaction() as tx:
        head = await tx.audit_head()
        assert head.size == 1
        assert await tx.message("aler", "m-crash") is None
        assert await tx.pending_outbox(10) == []
        await tx.append_audit([audit()])
        entries = await tx.audit_entries()
    assert [e["idx"] for e in entries] == [0, 1]


_APPENDER = """
import asyncio, sys
from dataclasses import replace
from datetime import UTC, datetime
from gateway.audit.record import AuditRecord
from gateway.store import Store

async def main() -> None:
    store = Store.connect(sys.argv[1], b"k" * 32)
    while True:
        async with store.transaction() as tx:
            await tx.append_audit([AuditRecord(event_type="decision", action="deny", outcome="deny",
                                               occurred_at=datetime.now(UTC), instance="crash") for _ in range(3)])
        async with store.transaction() as tx:
            print((await tx.audit_head()).size, flush=True)

asyncio.run(main())
"""


async def test_T08_a_process_killed_while_appending_leaves_no_gap_duplicate_or_partial_batch(store: Store) -> None:
    """A real crash: another process appends batches of three records in a loop and is killed with SIGKILL
    mid-stream; what it committed is whole and verifies, what it had not committed left nothing."""
    url = store.engine.url.render_as_string(hide_password=False)
    child = await asyncio.create_subprocess_exec(sys.executable, "-c", _APPENDER, url,
                                                 stdout=asyncio.subprocess.PIPE)
    assert child.stdout is not None
    seen = 0
    try:
        while seen < 15:
            line = await asyncio.wait_for(child.stdout.readline(), timeout=60)
            assert line, "the appender stopped on its own"
            seen = int(line)
    finally:
        child.kill()
        await child.wait()
    assert child.returncode == -signal.SIGKILL
    async with store.transaction() as tx:
        head = await tx.audit_head()
        entries = await tx.audit_entries(0, 10_000)
    assert head.size >= seen and head.size % 3 == 0
    assert [e["idx"] for e in entries] == list(range(head.size))
    assert verify_log(entries, head).ok
    async with store.transaction() as tx:  # and the log goes on from where the crash left it
        await tx.append_audit([audit()])
        assert (await tx.audit_head()).size == head.size + 1


async def test_outbox_rows_are_delivered_once_in_order(any_store: InspectableStore) -> None:
    full = replace(outbox_row(0), headers=(("message-id", "m0"), ("purpose", "microcredit-assessment")),
                   consent_id="c-1", consent_version=2, subject_pseudonym="p-1", value=b'{"a": 1}', key=None)
    async with any_store.transaction() as tx:
        queued = await tx.enqueue([full if n == 0 else outbox_row(n) for n in (3, 0, 4, 1, 2)])  # numbered in order
    assert [r.message_id for r in queued] == ["m3", "m0", "m4", "m1", "m2"]  # returned with their ids, as given
    ids = [r.id for r in queued]
    assert None not in ids and ids == sorted(ids) and len(set(ids)) == 5
    async with any_store.transaction() as tx:
        pending = await tx.pending_outbox(3)
        assert [r.message_id for r in pending] == ["m3", "m0", "m4"]
        assert [r.id for r in pending] == ids[:3]  # the ids enqueue returned are the stored ones
        assert pending[1] == replace(full, id=pending[1].id) == queued[1]  # every field as queued
        await tx.mark_delivered([r.id for r in pending if r.id])
    async with any_store.transaction() as tx:
        assert [r.message_id for r in await tx.pending_outbox(10)] == ["m1", "m2"]
        assert [r.message_id for r in await tx.inbox("fwa", 0, 10)] == ["m3", "m0", "m4"]


@pytest.mark.parametrize("with_ids", [True, False], ids=["rows-with-ids", "rows-without-ids"])
async def test_a_claim_that_takes_rows_out_of_the_queue_is_undone_by_a_rollback_or_a_drop(
        any_store: InspectableStore, with_ids: bool) -> None:
    """A worker delivering its own batch locks its rows and takes them out of the queue in one statement: the
    rows it publishes are delivered, one it drops at delivery is dropped and not delivered, and a failed publish
    (the transaction rolls back) leaves every row queued for the sweep. Alike whether the rows are handed over
    as ``enqueue`` returned them (with their ids: how a worker delivers) or as they were queued (without)."""
    async with any_store.transaction() as tx:
        queued = await tx.enqueue([outbox_row(n) for n in range(4)])

    def rows(*numbers: int) -> list[OutboxRow]:
        return [queued[n] if with_ids else outbox_row(n) for n in numbers]

    with pytest.raises(RuntimeError):
        async with any_store.transaction() as tx:
            claimed = await tx.claim_undelivered(rows(2, 0), dequeue=True)
            assert [r.message_id for r in claimed] == ["m0", "m2"]  # in id order
            assert [r.id for r in claimed] == [queued[0].id, queued[2].id]
            assert [r.message_id for r in await tx.pending_outbox(10)] == ["m1", "m3"]
            raise RuntimeError("the bus refused the batch")
    async with any_store.transaction() as tx:
        assert [r.message_id for r in await tx.pending_outbox(10)] == ["m0", "m1", "m2", "m3"]
        claimed = await tx.claim_undelivered(rows(0, 2), dequeue=True)
        assert claimed[1].id is not None
        await tx.mark_dropped(claimed[1].id, "consent-withdrawn")
    async with any_store.transaction() as tx:
        assert [r.message_id for r in await tx.pending_outbox(10)] == ["m1", "m3"]
        assert [r.message_id for r in await tx.inbox("fwa", 0, 10)] == ["m0"]
        assert await tx.claim_undelivered(rows(0, 2), dequeue=True) == []
        assert [r.message_id for r in await tx.claim_undelivered(rows(3, 2, 1))] == ["m1", "m3"]  # without dequeue
    async with any_store.transaction() as tx:
        assert [r.message_id for r in await tx.pending_outbox(10)] == ["m1", "m3"]  # still queued


async def sweep_of_the_rest(tx: PipelineTransaction, _queued: list[OutboxRow]) -> list[OutboxRow]:
    """A second relay's sweep."""
    return await tx.pending_outbox(10)


async def worker_delivery(tx: PipelineTransaction, queued: list[OutboxRow]) -> list[OutboxRow]:
    """A worker's claim of the batch it has just committed, handed over out of order, taking it out of the queue:
    the rows as ``enqueue`` returned them, with their ids."""
    return await tx.claim_undelivered([queued[n] for n in (5, 1, 4, 0, 3, 2)], dequeue=True)


async def claim_by_name(tx: PipelineTransaction, _queued: list[OutboxRow]) -> list[OutboxRow]:
    """The same claim of rows handed over without their ids."""
    return await tx.claim_undelivered([outbox_row(n) for n in (5, 1, 4, 0, 3, 2)], dequeue=True)


@pytest.mark.parametrize("second", [sweep_of_the_rest, worker_delivery, claim_by_name],
                         ids=["sweep", "worker-delivery", "claim-without-ids"])
async def test_a_relay_or_worker_never_claims_the_rows_a_sweep_holds(
        any_store: InspectableStore,
        second: Callable[[PipelineTransaction, list[OutboxRow]], Awaitable[list[OutboxRow]]]) -> None:
    """PostgreSQL: a second sweep, or a worker delivering its own batch, skips the rows a sweep holds (SKIP LOCKED)
    and takes the others at once, in id order. SQLite and the in-memory store: it waits for the first transaction
    to end (one writer at a time), so it never sees rows mid-claim either."""
    async with any_store.transaction() as tx:
        queued = await tx.enqueue([outbox_row(n) for n in range(6)])
    first_claimed = asyncio.Event()
    release = asyncio.Event()

    async def hold() -> list[str]:
        async with any_store.transaction() as tx:
            rows = await tx.pending_outbox(3)
            first_claimed.set()
            await release.wait()
            await tx.mark_delivered([r.id for r in rows if r.id])
            return [r.message_id for r in rows]

    async def claim() -> list[str]:
        async with any_store.transaction() as tx:
            return [r.message_id for r in await second(tx, queued)]

    holder = asyncio.create_task(hold())
    await first_claimed.wait()
    claimer = asyncio.create_task(claim())
    if any_store.dialect == "postgresql":
        assert await claimer == ["m3", "m4", "m5"]
        release.set()
    else:
        await asyncio.sleep(0.3)
        assert not claimer.done()
        release.set()
        assert await claimer == ["m3", "m4", "m5"]
    assert await holder == ["m0", "m1", "m2"]


# --- stored Merkle subtrees (migration 0007) ----------------------------------------------------------------------


def completed_subtrees(leaves: list[bytes], from_level: int = 1) -> dict[tuple[int, int], bytes]:
    tree = MerkleAccumulator()
    tree.track_completed(from_level)
    tree.extend(leaves)
    return dict(tree.take_completed())


async def test_T08_appends_store_the_subtrees_they_complete_in_the_same_transaction(
    any_store: InspectableStore,
) -> None:
    for count in (1, 2, 3, 1, 5, 8, 1):  # 21 records in uneven batches
        async with any_store.transaction() as tx:
            await tx.append_audit([audit() for _ in range(count)])
    with pytest.raises(RuntimeError):
        async with any_store.transaction() as tx:
            await tx.append_audit([audit() for _ in range(11)])  # would complete (5, 0) among others
            raise RuntimeError
    async with any_store.transaction() as tx:
        leaves = await tx.audit_leaf_hashes(21)
        stored = await tx.audit_nodes_completed_within(0, 64)
        picked = await tx.audit_tree_nodes([(0, 20), (4, 0), (2, 4), (3, 1), (2, 5), (0, 21), (5, 0)])
        page = await tx.audit_nodes_completed_within(8, 16)
    every = completed_subtrees(leaves)
    expected = completed_subtrees(leaves, STORED_NODE_LEVEL)  # smaller subtrees are not stored
    assert stored == expected and set(expected) == {(3, 0), (3, 1), (4, 0)}
    # a smaller subtree is hashed from its leaves when all of them are there; (5, 0) was rolled back
    assert picked == {(0, 20): leaves[20], (4, 0): every[(4, 0)], (2, 4): every[(2, 4)], (3, 1): every[(3, 1)]}
    assert set(page) == {(3, 1), (4, 0)}


async def test_rebuilding_subtrees_fills_the_missing_ones_and_rewrites_none(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.append_audit([audit() for _ in range(37)])
        leaves = await tx.audit_leaf_hashes(37)
        await tx.conn.execute(delete(audit_merkle_nodes).where(audit_merkle_nodes.c.level == 4))
        await tx.conn.execute(update(audit_merkle_nodes).where(audit_merkle_nodes.c.level == 5)
                              .values(hash=b"\x00" * 32))
    expected = completed_subtrees(leaves, STORED_NODE_LEVEL)
    first = await rebuild_stored_nodes(store, page_size=10)
    assert (first.size, first.root_matches) == (37, True)
    assert first.added == 2  # (4, 0) and (4, 1), deleted above
    async with store.transaction() as tx:
        stored = await tx.audit_nodes_completed_within(0, 37)
    assert stored == {**expected, (5, 0): b"\x00" * 32}  # the wrong one stays, for `audit verify` to name
    assert (await rebuild_stored_nodes(store)).added == 0


def care(kind: str, record_id: str, weight: int, *, month: str = "2026-10", quartiere: str = "mazzini",
         retracted: bool = False, vaccine_group: str | None = None) -> ActivityEvent:
    resource_type = "Encounter" if kind == "visit" else "Immunization"
    return ActivityEvent(month, kind, "asst", quartiere, weight=weight, record=(resource_type, record_id),  # type: ignore[arg-type]
                         retracted=retracted, vaccine_group=vaccine_group)


async def test_a_care_record_sent_again_replaces_its_activity_row(store: Store) -> None:
    decision = ActivityEvent("2026-10", "decision", "asst", "mazzini", "F5", "aler", "permit")
    denial = replace(decision, outcome="deny")
    async with store.transaction() as tx:
        await tx.record_activity([care("visit", "e1", 50), care("visit", "e2", 20), decision,
                                  care("vaccination", "e1", 1), denial, decision])
    async with store.transaction() as tx:  # e1 corrected (moved to November, another quartiere) twice in a batch
        await tx.record_activity([care("visit", "e1", 40), decision,
                                  care("visit", "e1", 35, month="2026-11", quartiere="san-siro")])
    async with store.transaction() as tx:
        await tx.record_activity([care("visit", "e2", 0, retracted=True), care("visit", "e9", 0, retracted=True)])
    async with store.transaction() as tx:
        october = await tx.activity("2026-10", ["visit", "vaccination", "decision"])
        november = await tx.activity("2026-11", ["visit"])
    # decisions are never replaced: the alike ones of a batch are one row that weighs as many, every dimension as
    # recorded; those of another batch are rows of their own
    assert sorted(e.kind for e in october) == ["decision", "decision", "decision", "vaccination"]
    assert Counter(e for e in october if e.kind == "decision") == Counter(
        [replace(decision, weight=2), denial, decision])
    assert [(e.weight, e.quartiere) for e in november] == [(35, "san-siro")]
    async with store.engine.connect() as conn:
        indexes = await conn.run_sync(lambda c: inspect(c).get_indexes("statistics_activity"))
    assert {(i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in indexes} >= {
        ("ux_statistics_activity_kind_source_key", ("kind", "source_key"), True)}
    [care_key] = [i for i in indexes if i["name"] == "ux_statistics_activity_kind_source_key"]
    where = care_key["dialect_options"][f"{store.dialect}_where"]  # care rows only, not the decisions (0020)
    assert str(where).lower().replace('"', "").strip("()") == "source_key is not null"


async def test_a_vaccination_keeps_its_vaccine_group_and_a_correction_replaces_it(any_store: InspectableStore) -> None:
    async with any_store.transaction() as tx:
        await tx.record_activity([care("vaccination", "i1", 1, vaccine_group="influenza"),
                                  care("vaccination", "i2", 1, vaccine_group="zoster"), care("visit", "e1", 30)])
    async with any_store.transaction() as tx:  # i1 was a COVID-19 vaccine coded wrongly: the trust sends it again
        await tx.record_activity([care("vaccination", "i1", 1, vaccine_group="covid-19")])
    async with any_store.transaction() as tx:
        vaccinations = await tx.activity("2026-10", ["vaccination"])
        [visit] = await tx.activity("2026-10", ["visit"])
    assert sorted(e.vaccine_group or "" for e in vaccinations) == ["covid-19", "zoster"]
    assert visit.vaccine_group is None
