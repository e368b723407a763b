"""The in-memory store answers as the SQL stores do: one sequence of the pipeline's calls, driven on SQLite, on a
real PostgreSQL server and on :class:`~gateway.store.memory.MemoryStore`, gives the same outcomes.

The sequence is what batches of the intake and the relay do (claims and replays, people found, created and
linked, tokens, consents and their change head, outbox rows queued, claimed, published and dropped, a
referral's lifecycle, audit appends) with a transaction that fails midway. Pseudonyms are random, so they are
compared by who they stand for (the first person seen is P0, and so on); everything else is compared as is, the
audit log down to its head, leaf hashes and root.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.audit.record import AuditRecord
from gateway.audit.verify import verify_log
from gateway.identity.crosswalk import MintedToken
from gateway.policy.consent import ConsentRecord, Withdrawal
from gateway.statistics.counting import ActivityEvent
from gateway.store import MessageStatus, OutboxRow
from gateway.store.memory import MemoryStore
from gateway.store.ports import InspectableStore
from tests.conftest import Backends
from tests.contract.conftest import PSEUDONYM_KEY, sql_store

NOW = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)
F1 = "microcredit-assessment"
CF_A, CF_B, STP_A = "RSSMRA85T10A562S", "BNCGNN80A01F205X", "STP0300000001234"


def status(message_id: str, correlation_id: str = "c", sender: str = "aler",
           message_type: str = "tenancy.arrears-referral") -> MessageStatus:
    return MessageStatus(sender=sender, message_id=message_id, correlation_id=correlation_id,
                         message_type=message_type, state="received", reason_class=None, recipients=(),
                         received_at=NOW)


def row(message_id: str, pseudonym: str | None, consent: str | None = None, recipient: str = "fwa") -> OutboxRow:
    return OutboxRow(topic=f"out.{recipient}", recipient=recipient, message_id=message_id,
                     value=f'{{"m":"{message_id}"}}'.encode(), key=b"k-" + message_id.encode(),
                     headers=(("message-id", message_id),), created_at=NOW, consent_id=consent,
                     consent_version=None if consent is None else 1, subject_pseudonym=pseudonym)


def audit(n: int, outcome: str = "deny") -> AuditRecord:
    return AuditRecord.model_validate({
        "record_id": f"rec-{n:03d}", "event_type": "decision", "action": "deny" if outcome == "deny" else "forward",
        "occurred_at": NOW, "outcome": outcome, "instance": "parity", "flow_id": "F1", "message_ids": (f"m{n}",)})


async def scenario(store: InspectableStore) -> dict[str, Any]:
    """Drive the sequence and return what it observed, pseudonyms named by order of appearance."""
    names: dict[str, str] = {}

    def name(pseudonym: str | None) -> str | None:
        return None if pseudonym is None else names.setdefault(pseudonym, f"P{len(names)}")

    def shown(r: OutboxRow) -> tuple[Any, ...]:
        return (r.id, r.topic, r.message_id, r.value, r.key, r.headers, r.consent_id, r.consent_version,
                name(r.subject_pseudonym))

    seen: dict[str, Any] = {}
    store.clock = lambda: NOW
    async with store.transaction() as tx:  # a first batch: three new messages (one twice), two new people
        seen["claimed"] = sorted(await tx.claim_messages([status("m1"), status("m2"), status("m2"),
                                                           status("m3", "c3")]))
        await tx.prefetch_subjects([("cf", CF_A), ("cf", CF_B), ("stp", STP_A)])
        tx.defer_new_subjects()
        a = await tx.subject("cf", CF_A, create=True)
        b = await tx.subject("cf", CF_B, create=True)
        assert a is not None and b is not None
        seen["linked"] = [await tx.link_identifier(a, "stp", STP_A), await tx.link_identifier(b, "stp", STP_A),
                          await tx.link_identifier(a, "cf", CF_A)]
        seen["written"] = await tx.write_new_subjects()
        seen["found_in_batch"] = name(getattr(await tx.subject("stp", STP_A, create=False), "pseudonym", None))
        await tx.update_messages([replace(status("m1"), state="forwarded", recipients=("fwa",)),
                                  replace(status("m2"), state="denied", reason_class="not-authorised"),
                                  replace(status("m3", "c3"), state="forwarded", recipients=("fwa",))])
        await tx.enqueue([row("gw-1", a.pseudonym, "cns-a"), row("st-1", a.pseudonym, recipient="aler"),
                          row("st-2", b.pseudonym, recipient="aler"), row("gw-3", a.pseudonym, "cns-a")])
        await tx.record_tokens([MintedToken("gwt_a", "fwa", "subject", None, a.pseudonym),
                                MintedToken("gwt_case", "aler", "comune-case", "CASE-7", a.pseudonym)])
        await tx.add_consent(ConsentRecord(consent_id="cns-a", version=1, subject_pseudonym=a.pseudonym,
                                           status="active", decision="permit", purposes=frozenset({F1}),
                                           recipients=frozenset({"fwa"}), recorded_at=NOW), "aler")
        await tx.record_activity([ActivityEvent("2026-11", "decision", "aler", flow_id="F1", recipient="fwa",
                                                outcome="permit")])
        seen["entries"] = [(e.index, e.leaf_hash, e.chain_hash) for e in await tx.append_audit(
            [audit(1, "permit"), audit(2), audit(3, "permit")])]
    async with store.transaction() as tx:  # a second batch replays m1 beside a new m4
        seen["replay_claimed"] = sorted(await tx.claim_messages([status("m1"), status("m4")]))
        statuses = await tx.messages_many({("aler", "m1"), ("aler", "m2"), ("aler", "m4"), ("aler", "nope")})
        seen["statuses"] = sorted((k, s.state, s.reason_class, s.recipients, s.received_at)
                                  for k, s in statuses.items())
        seen["subjects_again"] = [name(getattr(await tx.subject(*i, create=False), "pseudonym", None))
                                  for i in (("cf", CF_A), ("stp", STP_A), ("cf", CF_B), ("cf", "NONE"))]
        seen["consent_head"] = await tx.consent_change_head()
        seen["changed"] = sorted(n or "" for n in map(name, await tx.subjects_with_consent_changes(0)))
        consents = await tx.consents_for_many([a.pseudonym, b.pseudonym])
        seen["consents"] = {name(p): [r.ref for r in rs] for p, rs in consents.items()}
        await tx.add_consent(consents[a.pseudonym][0].next_version(
            status="inactive", withdrawn=True, withdrawal=Withdrawal(at=NOW)), "aler")
        seen["latest"] = {k: (r.ref, r.withdrawn) for k, r in
                          (await tx.latest_consent_versions({"cns-a", "cns-x"})).items()}
        seen["latest_streamed"] = [[r.ref for r in chunk] async for chunk in tx.latest_consents()]
        seen["tokens"] = [name(getattr(await tx.subject_of_token("gwt_a", "fwa"), "pseudonym", None)),
                          await tx.subject_of_token("gwt_a", "aler"),
                          await tx.token_identifier("gwt_case", "aler"), await tx.token_identifier("gwt_a", "fwa")]
        seen["disclosure"] = [name(getattr(await tx.subject_of_disclosure("gw-1", topics), "pseudonym", None))
                              for topics in (("out.fwa", "s4.out.fwa"), ("out.aler", "s4.out.aler"))]
        seen["by_pseudonym"] = name(getattr(await tx.subject_by_pseudonym(b.pseudonym), "pseudonym", None))
    with pytest.raises(RuntimeError):  # a batch that fails leaves nothing
        async with store.transaction() as tx:
            await tx.claim_messages([status("m9")])
            await tx.subject("cf", "GHOST00000000000", create=True)
            await tx.enqueue([row("gw-9", a.pseudonym)])
            await tx.append_audit([audit(9)])
            await tx.add_consent(ConsentRecord(consent_id="cns-9", version=1, subject_pseudonym=b.pseudonym,
                                               status="active", decision="permit", purposes=frozenset({F1}),
                                               recorded_at=NOW), "aler")
            raise RuntimeError
    async with store.transaction() as tx:  # the relay: pending rows in id order, one claimed by its worker
        pending = await tx.pending_outbox(2)
        seen["pending"] = [shown(r) for r in pending]
        claimed = await tx.claim_undelivered([row("gw-3", a.pseudonym, "cns-a"), row("gw-9", a.pseudonym)])
        seen["claimed_rows"] = [shown(r) for r in claimed]
        await tx.mark_delivered([r.id for r in pending if r.id is not None])
        assert claimed[0].id is not None
        await tx.mark_dropped(claimed[0].id, "consent-withdrawn")
        seen["pending_after"] = [shown(r) for r in await tx.pending_outbox(10)]
        seen["young"] = [shown(r) for r in await tx.pending_outbox(10, queued_before=NOW)]
        await tx.enqueue([row("gw-5", b.pseudonym)])
        after_failure = await tx.pending_outbox(10)
        # PostgreSQL's id sequence does not roll back with a failed transaction (an id may be skipped), so only
        # the order of the ids counts here
        seen["after_failure"] = [shown(r)[1:] for r in after_failure]
        seen["ids_rise"] = [r.id for r in after_failure] == sorted(r.id or 0 for r in after_failure)
        seen["lifecycle"] = [(s.message_id, s.lifecycle, s.lifecycle_at) for s in await tx.advance_lifecycle(
            "aler", "c", "accepted", NOW, reported_by="fwa", message_types={"tenancy.arrears-referral"})]
        seen["lifecycle_again"] = await tx.advance_lifecycle(
            "aler", "c", "accepted", NOW, reported_by="fwa", message_types={"tenancy.arrears-referral"})
        seen["append_after_failure"] = [e.index for e in await tx.append_audit([audit(4)])]
    async with store.transaction() as tx:
        head = await tx.audit_head()
        entries = await tx.audit_entries(0, 100)
        seen["ghost"] = await tx.subject("cf", "GHOST00000000000", create=False)
        seen["m9"] = await tx.message("aler", "m9")
        seen["inbox"] = [shown(r) for r in await tx.inbox("fwa", 0, 10)]
        seen["inbox_aler"] = [shown(r) for r in await tx.inbox("aler", 0, 10)]
        seen["activity"] = await tx.activity("2026-11", ["decision"])
        seen["nodes"] = await tx.audit_nodes_completed_within(0, head.size)
    assert verify_log(entries, head).ok
    seen["head"] = (head.size, head.chain_hash, head.root())
    seen["log"] = [(e["idx"], e["record_id"], e["event_type"], e["record"], bytes(e["leaf_hash"]),
                    bytes(e["chain_hash"]), e["subject_ref"]) for e in entries]
    seen["names"] = len(names)
    return seen


async def test_the_memory_store_answers_the_pipeline_as_sqlite_and_postgresql_do(
    settings_for: Callable[[Backends], object],
) -> None:
    outcomes: dict[str, dict[str, Any]] = {"memory": await scenario(MemoryStore(PSEUDONYM_KEY))}
    for backend in ("sqlite", "postgres"):
        async with sql_store(backend, settings_for) as store:
            outcomes[backend] = await scenario(store)
    memory = outcomes["memory"]
    for backend in ("sqlite", "postgres"):
        differing = sorted(k for k in memory if memory[k] != outcomes[backend][k])
        assert differing == [], {k: (memory[k], outcomes[backend][k]) for k in differing}
    # the sequence exercised what it means to (a run where everything came back empty would also agree)
    assert memory["claimed"] == [("aler", "m1"), ("aler", "m2"), ("aler", "m3")]
    assert memory["replay_claimed"] == [("aler", "m4")]
    assert memory["linked"] == [True, False, True] and memory["subjects_again"] == ["P0", "P0", "P1", None]
    assert memory["latest"] == {"cns-a": ("cns-a@2", True)} and memory["consent_head"] == 1
    assert [r[2] for r in memory["pending"]] == ["gw-1", "st-1"] and [r[2] for r in memory["claimed_rows"]] == [
        "gw-3"]
    assert [r[1] for r in memory["after_failure"]] == ["st-2", "gw-5"] and memory["ids_rise"]
    assert memory["lifecycle"] == [("m1", "accepted", NOW)] and memory["lifecycle_again"] == []
    assert memory["head"][0] == 4 and memory["append_after_failure"] == [3]
    assert memory["ghost"] is None and memory["m9"] is None
    assert memory["disclosure"] == ["P0", None]  # found only on the topics of the partner it was sent to
