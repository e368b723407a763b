"""Tamper evidence of the stored audit log (privacy.md T-02..T-07, T-13), on SQLite and on PostgreSQL.

Each test writes records through the store, signs checkpoints with the gateway's checkpointer, then tampers
with the database directly in SQL, the way someone with write access to it could, and checks that the offline
verifier (what ``gateway audit verify`` runs) names the right index or checkpoint. Two kinds of attacker:

* a clumsy one edits rows and leaves the hashes alone: the hash chain names the exact index;
* a careful one recomputes every leaf hash, chain hash, stored Merkle subtree and the head after the edit: the
  chain verifies, and only the signed checkpoints catch it; the first bad index is then the size of the last
  checkpoint that still matches, since the records after it are the first that no signature vouches for. One
  who forgets the stored subtrees is named by them.

The module's ``gateway`` fixture replaces the shared one only to keep the background checkpointer quiet, so
that every checkpoint in a test is one the test signed.
"""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, insert, select, update

from gateway.audit.canonical import canonical_json
from gateway.audit.chain import ChainHead, chain_hash, extend
from gateway.audit.checkpoint import (
    Checkpoint,
    CheckpointError,
    InconsistentCheckpointError,
    SigningKey,
    VerifierKey,
    open_checkpoint,
    open_note,
    sign_checkpoint,
    verify_checkpoint_consistency,
)
from gateway.audit.checkpointer import AuditCheckpointer, CheckpointSigningError
from gateway.audit.keys import read_signing_keys, write_signing_keys
from gateway.audit.merkle import leaf_hash, root_from_leaf_hashes
from gateway.audit.offline import verify_stored_log
from gateway.audit.record import AuditRecord
from gateway.audit.stored import StoredCheckpoint
from gateway.audit.verify import AuditVerifier, VerificationReport
from gateway.bootstrap import Gateway
from gateway.store.tables import audit_checkpoints, audit_head, audit_log, audit_merkle_nodes
from tests.conftest import QUIET_CHECKPOINTER

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


pytestmark = QUIET_CHECKPOINTER


# --- helpers ---------------------------------------------------------------------------------------------------


def audit_record(n: int) -> AuditRecord:
    return AuditRecord(event_type="decision", action="deny", occurred_at=NOW, outcome="deny",
                       reason="no-applicable-consent", purpose="microcredit-assessment", instance="test",
                       message_ids=(f"m-{n}",))


async def append(gateway: Gateway, count: int) -> None:
    async with gateway.store.transaction() as tx:
        start = (await tx.audit_head()).size
        await tx.append_audit([audit_record(start + i) for i in range(count)])


async def verify(gateway: Gateway, trusted: list[VerifierKey] | None = None) -> VerificationReport:
    """The verifier's report, in blocks of 4 records; the same report, word for word, when worker processes
    check the blocks (as for a long log) as when this process does."""
    report = await verify_stored_log(gateway.store, gateway.settings.audit_origin, trusted, page_size=7, workers=0)
    in_workers = await verify_stored_log(gateway.store, gateway.settings.audit_origin, trusted, page_size=7,
                                         workers=2)
    assert in_workers == report
    return report


async def entry(gateway: Gateway, index: int) -> dict[str, Any]:
    async with gateway.store.transaction() as tx:
        found = await tx.audit_entry(index)
    assert found is not None
    return found


async def set_columns(gateway: Gateway, index: int, **values: Any) -> None:
    async with gateway.store.transaction() as tx:
        await tx.conn.execute(update(audit_log).where(audit_log.c.idx == index).values(**values))


async def bodies(gateway: Gateway) -> list[dict[str, Any]]:
    async with gateway.store.transaction() as tx:
        entries = await tx.audit_entries(0, 10**6)
    return [json.loads(e["record"]) for e in entries]


async def rewrite_log(gateway: Gateway, records: list[dict[str, Any]], *, nodes: bool = True) -> None:
    """What a careful attacker does: store ``records`` as the whole log, every hash and the head recomputed
    (the stored Merkle subtree hashes too, unless ``nodes`` is False)."""
    head = ChainHead.genesis()
    head.tree.track_completed()
    rows = []
    for index, body in enumerate(records):
        body = {**body, "log_index": index, "prev_chain_hash": head.chain_hash.hex()}
        text = canonical_json(body)
        leaf = leaf_hash(text)
        head.chain_hash = chain_hash(head.chain_hash, leaf)
        head.tree.append(leaf)
        head.size += 1
        rows.append({"idx": index, "record_id": body["record_id"], "event_type": body["event_type"],
                     "record": text.decode(), "leaf_hash": leaf, "chain_hash": head.chain_hash,
                     "subject_ref": body.get("subject_ref"),
                     "recorded_at": datetime.fromisoformat(body["recorded_at"])})
    async with gateway.store.transaction() as tx:
        await tx.conn.execute(delete(audit_log))
        if rows:
            await tx.conn.execute(insert(audit_log), rows)
        await tx.conn.execute(
            update(audit_head).where(audit_head.c.id == 1).values(
                size=head.size, chain_hash=head.chain_hash, frontier=[h.hex() for h in head.tree.frontier])
        )
        if nodes:
            await tx.conn.execute(delete(audit_merkle_nodes))
            await tx.add_audit_nodes(head.tree.take_completed())


async def store_checkpoint(gateway: Gateway, note: str, signer: VerifierKey,
                           signed_at: datetime | None = None) -> StoredCheckpoint:
    """Insert a signed note as a checkpoint row (the signer's key must be registered)."""
    checkpoint = Checkpoint.from_text(note[: note.index("\n\n") + 1])
    async with gateway.store.transaction() as tx:
        latest = await tx.latest_audit_checkpoint()
        at = signed_at or (latest.signed_at if latest else datetime.now(UTC))
        return await tx.add_audit_checkpoint(checkpoint, note, at, signer)


async def delete_checkpoint(gateway: Gateway, checkpoint_id: int) -> None:
    async with gateway.store.transaction() as tx:
        await tx.conn.execute(delete(audit_checkpoints).where(audit_checkpoints.c.id == checkpoint_id))


def flip_first_bit(value: bytes) -> bytes:
    return bytes([value[0] ^ 1]) + value[1:]


# --- T-02 one-byte edit --------------------------------------------------------------------------------------


async def test_T02_one_byte_edit_of_a_record_text_is_detected_at_its_index(gateway: Gateway) -> None:
    await append(gateway, 20)
    await gateway.checkpointer.checkpoint_now()
    assert (await verify(gateway)).ok
    for index in (0, 7, 19):
        original = (await entry(gateway, index))["record"]
        position = original.index('"action":"deny"') + len('"action":"')
        edited = original[:position] + "e" + original[position + 1 :]  # "deny" -> "eeny": one byte
        assert len(edited.encode()) == len(original.encode())
        await set_columns(gateway, index, record=edited)
        report = await verify(gateway)
        assert not report.ok
        assert report.first_bad_index == index, report
        assert report.problem is not None and "record text is not in canonical form" not in report.problem
        await set_columns(gateway, index, record=original)
    assert (await verify(gateway)).ok


@pytest.mark.parametrize("column", ["leaf_hash", "chain_hash"])
async def test_T02_one_byte_edit_of_a_stored_hash_is_detected_at_its_index(gateway: Gateway, column: str) -> None:
    await append(gateway, 20)
    await gateway.checkpointer.checkpoint_now()
    for index in (0, 7, 19):
        original = bytes((await entry(gateway, index))[column])
        await set_columns(gateway, index, **{column: flip_first_bit(original)})
        report = await verify(gateway)
        assert not report.ok and report.first_bad_index == index, report
        assert report.problem is not None and column.replace("_", " ") in report.problem
        await set_columns(gateway, index, **{column: original})
    assert (await verify(gateway)).ok


@pytest.mark.parametrize("column", ["subject_ref", "event_type", "record_id", "recorded_at"])
async def test_T02_an_edit_of_a_query_column_beside_the_text_is_detected_at_its_index(
    gateway: Gateway, column: str
) -> None:
    """The art. 15 report selects a person's records by the ``subject_ref`` column: moving a record to another
    reference (or retyping it) would hide it from the report while every hash still matches."""
    await append(gateway, 12)
    await gateway.checkpointer.checkpoint_now()
    for index in (0, 5, 11):
        original = (await entry(gateway, index))[column]
        edited: Any = {"subject_ref": "0" * 32, "event_type": "privacy-query", "record_id": f"forged-{index}",
                       "recorded_at": NOW + timedelta(seconds=1)}[column]
        await set_columns(gateway, index, **{column: edited})
        report = await verify(gateway)
        assert not report.ok and report.first_bad_index == index, report
        assert report.problem is not None and f"column {column}" in report.problem
        await set_columns(gateway, index, **{column: original})
    assert (await verify(gateway)).ok


async def test_T02_an_edit_with_every_hash_recomputed_is_caught_by_the_checkpoints(gateway: Gateway) -> None:
    await append(gateway, 10)
    await gateway.checkpointer.checkpoint_now()  # size 10
    await append(gateway, 10)
    second = await gateway.checkpointer.checkpoint_now()  # size 20
    await append(gateway, 5)  # 20..24 are not checkpointed yet

    records = await bodies(gateway)
    records[13]["outcome"] = "permit"
    await rewrite_log(gateway, records)
    async with gateway.store.transaction() as tx:
        head = await tx.audit_head()
        entries = await tx.audit_entries(0, head.size + 1)
    assert AuditVerifier().feed(entries)  # the hash chain alone is fooled

    report = await verify(gateway)
    assert not report.ok
    assert report.first_bad_index == 10, report  # 10..19: the records no matching checkpoint vouches for
    assert report.bad_checkpoint == second.id
    assert report.problem is not None and "rewritten after it was checkpointed, or the checkpoint is forked" in (
        report.problem)

    # The limit: records newer than the last checkpoint are only as safe as the database until the next one.
    records = await bodies(gateway)
    records[13]["outcome"] = "deny"
    records[22]["outcome"] = "permit"
    await rewrite_log(gateway, records)
    assert (await verify(gateway)).ok


async def test_T02_a_rewrite_that_leaves_the_stored_subtrees_is_named_by_them(gateway: Gateway) -> None:
    await append(gateway, 20)
    await gateway.checkpointer.checkpoint_now()
    await append(gateway, 5)  # 20..24 are not checkpointed yet

    records = await bodies(gateway)
    records[22]["outcome"] = "permit"
    await rewrite_log(gateway, records, nodes=False)

    report = await verify(gateway)
    assert not report.ok and report.chain_ok and report.first_bad_index is None
    # the subtree stored when record 23 was appended: 16..23 (smaller ones are not stored)
    assert report.bad_node == (3, 2)
    assert [p.split(" (")[0] for p in report.problems] == ["stored Merkle node at level 3, index 2"]


# --- T-03 truncation ---------------------------------------------------------------------------------------------


async def test_T03_truncation_is_detected(gateway: Gateway) -> None:
    await append(gateway, 12)
    checkpoint = await gateway.checkpointer.checkpoint_now()
    await append(gateway, 3)

    async with gateway.store.transaction() as tx:  # drop the tail, leave the head alone
        await tx.conn.execute(delete(audit_log).where(audit_log.c.idx >= 13))
    report = await verify(gateway)
    assert not report.ok and report.first_bad_index == 13, report
    assert report.problem == "the head says 15 records, the log holds 13"

    records = await bodies(gateway)  # now cut below the checkpoint and make the head agree
    await rewrite_log(gateway, records[:10])
    report = await verify(gateway)
    assert not report.ok and report.first_bad_index == 10, report
    assert report.bad_checkpoint == checkpoint.id
    assert report.problem is not None and "truncated" in report.problem


async def test_T03_a_record_the_head_does_not_count_is_detected(gateway: Gateway) -> None:
    await append(gateway, 12)
    async with gateway.store.transaction() as tx:
        tail = await tx.audit_entries(10, 2)
    await rewrite_log(gateway, (await bodies(gateway))[:10])  # the head and subtrees now say 10 records
    async with gateway.store.transaction() as tx:  # and the two records the head forgot are back, hashes intact
        await tx.conn.execute(insert(audit_log), tail)
    report = await verify(gateway)
    assert not report.ok and not report.chain_ok and report.first_bad_index == 10, report
    assert report.problem == "record 10 is past the head, which counts 10 records"


async def test_records_appended_while_the_log_is_verified_are_no_problem(gateway: Gateway) -> None:
    """A running gateway appends between the verifier's reads of the head and of the records."""
    await append(gateway, 40)
    stop = asyncio.Event()

    async def keep_appending() -> int:
        appended = 0
        while not stop.is_set():
            await append(gateway, 3)
            appended += 3
            await asyncio.sleep(0)
        return appended

    appender = asyncio.create_task(keep_appending())
    try:
        reports = [await verify_stored_log(gateway.store, gateway.settings.audit_origin, page_size=2, workers=0)
                   for _ in range(3)]
    finally:
        stop.set()
        appended = await appender
    async with gateway.store.transaction() as tx:
        size = (await tx.audit_head()).size
    assert [r.problem for r in reports] == [None] * 3 and all(r.ok for r in reports)
    assert reports[0].size < reports[-1].size < size == 40 + appended  # the log did grow under the verifier


# --- T-04 reordering ---------------------------------------------------------------------------------------------


async def test_T04_reordering_is_detected(gateway: Gateway) -> None:
    await append(gateway, 12)
    checkpoint = await gateway.checkpointer.checkpoint_now()

    async with gateway.store.transaction() as tx:  # swap the positions of records 3 and 8
        for old, new in ((3, -1), (8, 3), (-1, 8)):
            await tx.conn.execute(update(audit_log).where(audit_log.c.idx == old).values(idx=new))
    report = await verify(gateway)
    assert not report.ok and report.first_bad_index == 3, report

    async with gateway.store.transaction() as tx:  # put them back
        for old, new in ((3, -1), (8, 3), (-1, 8)):
            await tx.conn.execute(update(audit_log).where(audit_log.c.idx == old).values(idx=new))
    assert (await verify(gateway)).ok

    records = await bodies(gateway)  # the careful version: reorder and recompute everything
    records[3], records[8] = records[8], records[3]
    await rewrite_log(gateway, records)
    report = await verify(gateway)
    assert not report.ok and report.first_bad_index == 0 and report.bad_checkpoint == checkpoint.id, report


# --- T-05 forked checkpoint ------------------------------------------------------------------------------------


async def test_T05_a_forked_checkpoint_is_detected(gateway: Gateway) -> None:
    await append(gateway, 8)
    honest = await gateway.checkpointer.checkpoint_now()
    await append(gateway, 4)
    key = gateway.checkpointer.signing_keys()[0]

    # The log's own key signs a different history at the same size (another view shown to someone else).
    other_history = [leaf_hash(f"forged {i}".encode()) for i in range(8)]
    fork = Checkpoint(gateway.settings.audit_origin, 8, root_from_leaf_hashes(other_history))
    forked = await store_checkpoint(gateway, sign_checkpoint(fork, key), key.verifier)

    report = await verify(gateway)
    assert not report.ok
    assert report.bad_checkpoint == forked.id and report.first_bad_index == 0, report
    assert report.checkpoints == 1
    assert report.problem is not None and "forked" in report.problem

    # A witness holding the honest checkpoint needs nothing else: two roots for one size are proof of a fork.
    trusted = [key.verifier]
    with pytest.raises(InconsistentCheckpointError, match="two different roots for the same tree size 8"):
        verify_checkpoint_consistency(open_checkpoint(honest.note, trusted), open_checkpoint(forked.note, trusted), [])

    await delete_checkpoint(gateway, forked.id)
    assert (await verify(gateway)).ok


# --- T-06 wrong or unknown signing key -------------------------------------------------------------------------


async def test_T06_a_checkpoint_signed_by_a_wrong_or_unknown_key_is_rejected(gateway: Gateway) -> None:
    await append(gateway, 5)
    genuine = await gateway.checkpointer.checkpoint_now()
    real = gateway.checkpointer.signing_keys()[0]
    checkpoint = Checkpoint.from_text(genuine.note[: genuine.note.index("\n\n") + 1])
    impostor = SigningKey.generate(real.name)  # same name, another key

    # Signed by a key nobody registered, stored as if the real key had signed.
    stored = await store_checkpoint(gateway, sign_checkpoint(checkpoint, impostor), real.verifier)
    report = await verify(gateway)
    assert not report.ok and report.bad_checkpoint == stored.id and report.first_bad_index is None, report
    assert report.problem is not None and "no signature from a trusted key" in report.problem
    await delete_checkpoint(gateway, stored.id)

    # A signature line that claims the real key's name and ID, made with another key.
    forged_raw = real.key_id + impostor.sign(checkpoint.to_text().encode())
    forged_note = f"{checkpoint.to_text()}\n\u2014 {real.name} {base64.b64encode(forged_raw).decode()}\n"
    stored = await store_checkpoint(gateway, forged_note, real.verifier)
    report = await verify(gateway)
    assert not report.ok and report.bad_checkpoint == stored.id, report
    assert report.problem is not None and "invalid signature" in report.problem
    await delete_checkpoint(gateway, stored.id)

    # An attacker who can write the database can also register their key there: the database's keys then
    # accept their checkpoints, and only a witness's own copy of the verifier keys tells them apart.
    async with gateway.store.transaction() as tx:
        assert await tx.add_audit_signing_key(impostor.verifier, datetime.now(UTC))
    stored = await store_checkpoint(gateway, sign_checkpoint(checkpoint, impostor), impostor.verifier)
    assert (await verify(gateway)).ok
    report = await verify(gateway, trusted=[real.verifier])
    assert not report.ok and report.bad_checkpoint == stored.id, report
    assert report.problem is not None and f"signed by: {real.name}+{impostor.key_id.hex()}" in report.problem


# --- T-07 key rotation ------------------------------------------------------------------------------------------


async def test_T07_key_rotation_new_key_signs_and_old_checkpoints_still_verify(gateway: Gateway) -> None:
    checkpointer = gateway.checkpointer
    old = checkpointer.signing_keys()[0]
    await append(gateway, 3)
    before = await checkpointer.checkpoint_now()

    new = await checkpointer.rotate_key()  # overlap: the old key co-signs for now
    assert new.key_id != old.key_id and new.name == old.name
    assert [k.key_id for k in read_signing_keys(checkpointer.key_file)] == [new.key_id, old.key_id]
    await append(gateway, 3)
    during = await checkpointer.checkpoint_now()
    assert during.key_id == new.key_id.hex()
    assert open_note(during.note, [old.verifier, new.verifier]).verified_by == (new.verifier, old.verifier)
    assert open_checkpoint(during.note, [old.verifier]).tree_size == 6  # witnesses on the old key still follow

    retired = await checkpointer.finish_rotation()
    assert retired == [old.verifier]
    await append(gateway, 3)
    after = await checkpointer.checkpoint_now()
    assert open_checkpoint(after.note, [new.verifier]).tree_size == 9
    with pytest.raises(CheckpointError, match="no signature from a trusted key"):
        open_checkpoint(after.note, [old.verifier])
    assert open_checkpoint(before.note, [old.verifier]).tree_size == 3

    async with gateway.store.transaction() as tx:
        keys = {k.key_id: k for k in await tx.audit_signing_keys()}
    assert keys[old.key_id.hex()].retired_at is not None and keys[new.key_id.hex()].retired_at is None

    report = await verify(gateway)
    assert report.ok and report.checkpoints == 3, report
    assert (await verify(gateway, trusted=[old.verifier, new.verifier])).ok
    only_new = await verify(gateway, trusted=[new.verifier])
    assert not only_new.ok and only_new.bad_checkpoint == before.id  # old checkpoints need the retired key

    # A retired key signs no more: the checkpointer refuses a stale key file naming only it...
    write_signing_keys(checkpointer.key_file, [old])
    with pytest.raises(CheckpointSigningError, match="retired"):
        await checkpointer.checkpoint_now()
    write_signing_keys(checkpointer.key_file, [new])
    # ...and a checkpoint made with it after its retirement (a leaked old key) is flagged.
    late = Checkpoint(gateway.settings.audit_origin, 9, bytes.fromhex(report.root_hex))
    forged = await store_checkpoint(gateway, sign_checkpoint(late, old), old.verifier,
                                    signed_at=datetime.now(UTC) + timedelta(seconds=1))
    report = await verify(gateway)
    assert not report.ok and report.bad_checkpoint == forged.id, report
    assert report.problem is not None and "after that key was retired" in report.problem


async def test_T07_rotation_without_overlap_and_pickup_by_a_running_checkpointer(gateway: Gateway) -> None:
    cli = gateway.checkpointer
    worker = AuditCheckpointer(gateway.store, gateway.settings.audit_origin, cli.key_file)
    old = worker.signing_keys()[0]
    await append(gateway, 2)
    first = await worker.checkpoint_now()

    new = await cli.rotate_key(overlap=False)  # e.g. the old key leaked: it stops at once
    assert [k.key_id for k in read_signing_keys(cli.key_file)] == [new.key_id]
    await append(gateway, 2)
    second = await worker.checkpoint_now()  # the worker rereads the changed file
    assert open_note(second.note, [old.verifier, new.verifier]).verified_by == (new.verifier,)
    assert open_checkpoint(first.note, [old.verifier]).tree_size == 2
    assert (await verify(gateway)).ok


# --- T-13 clock monotonic -----------------------------------------------------------------------------------------


async def test_T13_record_times_and_checkpoint_sizes_never_go_back(gateway: Gateway) -> None:
    async def writer() -> None:
        for _ in range(5):
            await append(gateway, 3)

    async def signer() -> None:
        for _ in range(6):
            await gateway.checkpointer.checkpoint_now()
            await asyncio.sleep(0)

    await asyncio.gather(writer(), writer(), writer(), signer())

    async with gateway.store.transaction() as tx:
        entries = await tx.audit_entries(0, 1000)
        checkpoints = await tx.audit_checkpoints()
    assert [e["idx"] for e in entries] == list(range(45))
    recorded = [datetime.fromisoformat(json.loads(e["record"])["recorded_at"]) for e in entries]
    assert recorded == sorted(recorded)
    assert [c.tree_size for c in checkpoints] == sorted(c.tree_size for c in checkpoints)
    assert [c.signed_at for c in checkpoints] == sorted(c.signed_at for c in checkpoints)
    report = await verify(gateway)
    assert report.ok and report.warnings == () and report.checkpoints == 6, report


def test_T13_verifier_warns_when_the_clock_went_back_and_fails_when_checkpoint_sizes_do() -> None:
    head = ChainHead.genesis()
    chained = [e for batch, at in ((3, NOW), (2, NOW - timedelta(seconds=5)))
               for e in extend(head, [audit_record(i) for i in range(batch)], at)]
    entries = [{"idx": e.index, "record": e.canonical.decode(), "leaf_hash": e.leaf_hash, "chain_hash": e.chain_hash}
               for e in chained]
    key = SigningKey.generate("quartieri-gateway/audit")
    leaves = [e.leaf_hash for e in chained]

    def stored(checkpoint_id: int, size: int) -> StoredCheckpoint:
        checkpoint = Checkpoint("quartieri-gateway/audit", size, root_from_leaf_hashes(leaves[:size]))
        return StoredCheckpoint(checkpoint_id, size, checkpoint.root_hash, sign_checkpoint(checkpoint, key), NOW,
                                key.name, key.key_id.hex())

    good = AuditVerifier([3, 5])
    good.feed(entries)
    report = good.report(head, [stored(1, 3), stored(2, 5)], [key.verifier], origin="quartieri-gateway/audit")
    assert report.ok and report.checkpoints == 2
    assert len(report.warnings) == 1 and "record 3 was recorded at" in report.warnings[0]

    back = AuditVerifier([3, 5])
    back.feed(entries)
    report = back.report(head, [stored(1, 5), stored(2, 3)], [key.verifier], origin="quartieri-gateway/audit")
    assert not report.ok and report.bad_checkpoint == 2 and report.first_bad_index is None
    assert report.problem == "checkpoint 2 (size 3): signed after a checkpoint of size 5: checkpoint sizes went back"

    other_log = AuditVerifier([3])
    other_log.feed(entries)
    report = other_log.report(head, [stored(1, 3)], [key.verifier], origin="another/log")
    assert not report.ok and "not 'another/log'" in (report.problem or "")


# --- the checkpointer's schedule ------------------------------------------------------------------------------


async def test_a_checkpoint_is_signed_every_n_records(gateway: Gateway) -> None:
    checkpointer = AuditCheckpointer(gateway.store, gateway.settings.audit_origin, gateway.checkpointer.key_file,
                                     every_records=5, every_seconds=10**6)
    assert await checkpointer.maybe_checkpoint() is None  # empty log
    await append(gateway, 4)
    assert await checkpointer.maybe_checkpoint() is None
    await append(gateway, 1)
    signed = await checkpointer.maybe_checkpoint()
    assert signed is not None and signed.tree_size == 5
    assert await checkpointer.maybe_checkpoint() is None
    await append(gateway, 7)
    signed = await checkpointer.maybe_checkpoint()
    assert signed is not None and signed.tree_size == 12


async def test_a_checkpoint_is_signed_t_seconds_after_the_last_if_records_were_added(gateway: Gateway) -> None:
    now = [datetime.now(UTC)]
    checkpointer = AuditCheckpointer(gateway.store, gateway.settings.audit_origin, gateway.checkpointer.key_file,
                                     every_records=10**6, every_seconds=10, clock=lambda: now[0])
    await append(gateway, 2)
    assert await checkpointer.maybe_checkpoint() is None
    now[0] += timedelta(seconds=10)
    signed = await checkpointer.maybe_checkpoint()
    assert signed is not None and signed.tree_size == 2
    now[0] += timedelta(seconds=60)
    assert await checkpointer.maybe_checkpoint() is None  # nothing new: nothing to sign
    await append(gateway, 1)
    signed = await checkpointer.maybe_checkpoint()
    assert signed is not None and signed.tree_size == 3


async def test_the_background_task_signs_as_records_arrive_and_flushes_when_stopped(gateway: Gateway) -> None:
    checkpointer = AuditCheckpointer(gateway.store, gateway.settings.audit_origin, gateway.checkpointer.key_file,
                                     every_records=3, every_seconds=10**6)
    stop = asyncio.Event()
    task = asyncio.create_task(checkpointer.run(stop, poll_seconds=0.01))
    await append(gateway, 4)
    for _ in range(500):
        async with gateway.store.transaction() as tx:
            latest = await tx.latest_audit_checkpoint()
        if latest is not None:
            break
        await asyncio.sleep(0.01)
    assert latest is not None and latest.tree_size == 4
    await append(gateway, 1)
    stop.set()
    await asyncio.wait_for(task, timeout=30)
    async with gateway.store.transaction() as tx:
        latest = await tx.latest_audit_checkpoint()
    assert latest is not None and latest.tree_size == 5


async def test_checkpoint_rows_are_what_the_note_signs(gateway: Gateway) -> None:
    await append(gateway, 3)
    signed = await gateway.checkpointer.checkpoint_now()
    async with gateway.store.transaction() as tx:
        row = (await tx.conn.execute(select(audit_checkpoints))).one()._mapping
    checkpoint = open_checkpoint(row["note"], [gateway.checkpointer.signing_keys()[0].verifier],
                                 origin=gateway.settings.audit_origin)
    assert (row["tree_size"], bytes(row["root_hash"])) == (checkpoint.tree_size, checkpoint.root_hash)
    assert row["key_id"] == signed.key_id

    async with gateway.store.transaction() as tx:  # a stored root that differs from the signed one is caught
        await tx.conn.execute(update(audit_checkpoints).values(root_hash=flip_first_bit(checkpoint.root_hash)))
    report = await verify(gateway)
    assert not report.ok and report.bad_checkpoint == signed.id
    assert report.problem is not None and "differs from the signed note" in report.problem


async def test_T13_record_times_are_clamped_when_the_wall_clock_goes_back(gateway: Gateway) -> None:
    now = [NOW]
    gateway.store.clock = lambda: now[0]
    await append(gateway, 2)
    now[0] = NOW - timedelta(hours=1)  # an NTP step back
    await append(gateway, 2)
    now[0] = NOW + timedelta(seconds=1)
    await append(gateway, 1)

    async with gateway.store.transaction() as tx:
        entries = await tx.audit_entries(0, 100)
    recorded = [datetime.fromisoformat(json.loads(e["record"])["recorded_at"]) for e in entries]
    assert recorded == [NOW, NOW, NOW, NOW, NOW + timedelta(seconds=1)]  # never before the record before it
    assert [e["recorded_at"].replace(tzinfo=UTC) for e in entries] == recorded  # the indexed column agrees
    report = await verify(gateway)
    assert report.ok and report.warnings == (), report


# --- the checkpointer's schedule when the log goes quiet ------------------------------------------------------


async def test_records_followed_by_silence_are_signed_within_t_seconds(gateway: Gateway) -> None:
    """Drives the background task with a fake clock: no new record arrives, yet the last ones get signed as
    soon as T has passed on the clock, and a log that has not grown gets no further checkpoint."""
    now = [NOW]
    polls = [0]
    checkpointer = AuditCheckpointer(gateway.store, gateway.settings.audit_origin, gateway.checkpointer.key_file,
                                     every_records=10**6, every_seconds=10, clock=lambda: now[0])
    maybe_checkpoint = checkpointer.maybe_checkpoint

    async def counted(*, flush: bool = False) -> StoredCheckpoint | None:
        polls[0] += 1
        return await maybe_checkpoint(flush=flush)

    checkpointer.maybe_checkpoint = counted  # type: ignore[method-assign]
    await append(gateway, 2)
    first = await checkpointer.checkpoint_now()
    await append(gateway, 3)

    async def polls_pass(count: int) -> None:
        target = polls[0] + count
        for _ in range(2_000):
            if polls[0] >= target:
                return
            await asyncio.sleep(0.005)
        raise AssertionError("the checkpointer stopped polling")

    async def checkpoints() -> list[StoredCheckpoint]:
        async with gateway.store.transaction() as tx:
            return await tx.audit_checkpoints()

    stop = asyncio.Event()
    task = asyncio.create_task(checkpointer.run(stop, poll_seconds=0.005))
    try:
        now[0] = NOW + timedelta(seconds=9)  # quiet, but T has not passed yet
        await polls_pass(3)
        assert [c.id for c in await checkpoints()] == [first.id]
        now[0] = NOW + timedelta(seconds=10)  # T passed with no new record
        for _ in range(2_000):
            signed = await checkpoints()
            if len(signed) > 1:
                break
            await asyncio.sleep(0.005)
        assert [c.tree_size for c in signed] == [first.tree_size, first.tree_size + 3]
        now[0] = NOW + timedelta(hours=1)  # much later, still quiet: nothing new to sign
        await polls_pass(3)
        assert len(await checkpoints()) == 2
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)
    assert len(await checkpoints()) == 2  # the flush on stop has nothing to add either


async def test_records_are_signed_within_t_seconds_when_the_clock_is_behind_the_last_checkpoint(
    gateway: Gateway
) -> None:
    now, ticks = [NOW], [0.0]
    checkpointer = AuditCheckpointer(gateway.store, gateway.settings.audit_origin, gateway.checkpointer.key_file,
                                     every_records=10**6, every_seconds=10, clock=lambda: now[0],
                                     monotonic=lambda: ticks[0])
    await append(gateway, 1)
    await checkpointer.checkpoint_now()
    now[0] = NOW - timedelta(hours=2)  # the clock stepped back: T is measured on the monotonic clock instead
    await append(gateway, 1)
    assert await checkpointer.maybe_checkpoint() is None
    ticks[0] += 9.0
    assert await checkpointer.maybe_checkpoint() is None
    ticks[0] += 1.0
    signed = await checkpointer.maybe_checkpoint()
    assert signed is not None and signed.tree_size == 2 and signed.signed_at == NOW  # signing time never goes back
    await append(gateway, 1)  # still behind: the next records wait T again, not one poll
    assert await checkpointer.maybe_checkpoint() is None
    ticks[0] += 10.0
    signed = await checkpointer.maybe_checkpoint()
    assert signed is not None and signed.tree_size == 3
