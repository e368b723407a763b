"""The consent index each process decides from, against the store it mirrors, on SQLite and on PostgreSQL (and,
where no second process or raw statement is needed, on the in-memory store of the pipeline's unit tests).

It must answer every decision exactly as the store's consents would (rule 4: latest version per lineage), see
what another process recorded, withdrew or renewed as soon as its own transaction could read it (W-01 has a
second safeguard in the relay, but a decision itself must never lag the store), and keep consents given on one
form in one shared shape (the memory bound of a million consents rests on it).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from gateway.consents.index import ConsentIndex
from gateway.policy import DecisionRequest, PolicyRegistry, decide, load_registry
from gateway.policy.consent import ConsentRecord, Grantor, Notice, Provision, Withdrawal
from gateway.store import Store
from gateway.store.ports import InspectableStore
from gateway.store.tables import consents

NOW = datetime(2026, 11, 22, tzinfo=UTC)
F1 = "microcredit-assessment"
OTHER = "housing-support"
"""F9-fwa's purpose: ALER -> FWA, a consent-based flow like F1."""
SOCIAL = "social-case-management"
"""F2's purpose: ALER -> Comune on its legal basis, which an objection the person recorded stops."""


@pytest.fixture(scope="module")
def registry() -> PolicyRegistry:
    return load_registry()


def permit(consent_id: str, pseudonym: str, **changes: object) -> ConsentRecord:
    record = ConsentRecord(
        consent_id=consent_id, version=1, subject_pseudonym=pseudonym, status="active", decision="permit",
        purposes=frozenset({F1}), recipients=frozenset({"fwa"}), period_start=NOW - timedelta(days=30),
        period_end=NOW + timedelta(days=300), recorded_at=NOW - timedelta(days=30),
    )
    return replace(record, **changes)  # type: ignore[arg-type]


async def subjects(store: InspectableStore, count: int) -> list[str]:
    async with store.transaction() as tx:
        made = [await tx.subject("cf", f"INDEXSUBJ{i:07d}", create=True) for i in range(count)]
    return [s.pseudonym for s in made if s is not None]


def requests(pseudonym: str) -> list[DecisionRequest]:
    """F1 and questions around it: sensitive data, another consent-based flow (F9-fwa), one on its legal basis
    (F2)."""
    return [
        DecisionRequest(sender="aler", sender_role="system", recipient=recipient, message_type=message_type,
                        purpose=purpose, subject_pseudonym=pseudonym, labels=labels)
        for recipient, message_type, purpose, labels in (
            ("fwa", "tenancy.arrears-referral", F1, frozenset()),
            ("fwa", "tenancy.arrears-referral", F1, frozenset({"PSY"})),
            ("fwa", "tenancy.eviction-milestone", OTHER, frozenset()),
            ("comune", "tenancy.fragility-signal", SOCIAL, frozenset()),
        )
    ]


def outcome(request: DecisionRequest, registry: PolicyRegistry, found: list[ConsentRecord]) -> tuple[object, ...]:
    d = decide(request, registry, found, NOW)
    return d.outcome, d.reason, d.consent_ref, d.matched_provision, d.obligations, d.refrains, d.permitted_labels


async def test_the_index_decides_every_question_as_the_store_consents_do(any_store: InspectableStore,
                                                                         registry: PolicyRegistry) -> None:
    people = await subjects(any_store, 7)
    notice = Notice(uri="https://example.org/informativa", version="1", text_hash="sha256:" + "0" * 64, language="it")
    async with any_store.transaction() as tx:
        await tx.add_consent(permit("ix-plain", people[0]), "aler")
        withdrawn = permit("ix-withdrawn", people[1])
        await tx.add_consent(withdrawn, "aler")
        await tx.add_consent(withdrawn.next_version(status="inactive", withdrawn=True,
                                                    withdrawal=Withdrawal(at=NOW - timedelta(days=1))), "aler")
        await tx.add_consent(permit("ix-expired", people[2], period_end=NOW - timedelta(days=1)), "aler")
        await tx.add_consent(permit("ix-nested", people[3], provisions=(Provision(recipients=frozenset({"fwa"}),
                                                                                   purposes=frozenset({F1})),)), "aler")
        await tx.add_consent(permit("ix-explicit", people[4], consent_type="explicit", notice=notice,
                                    security_labels=frozenset({"PSY"}), obligations=frozenset({"NORDSCLCD"})),
                             "aler")
        await tx.add_consent(permit("ix-objection", people[5], decision="deny", purposes=frozenset({SOCIAL}),
                                    recipients=frozenset(), consent_type="opt-out"), "aler")
        await tx.add_consent(permit("ix-both-a", people[6]), "aler")
        await tx.add_consent(permit("ix-both-b", people[6], purposes=frozenset({OTHER}),
                                    grantor=Grantor(role="guardian", evidence="decree-1")), "aler")
    index = ConsentIndex()
    await index.load(any_store)
    assert index.ready and index.subjects == 7 and len(index) == 8  # latest versions only
    async with any_store.transaction() as tx:
        from_store = await tx.consents_for_many(people)
        from_index = await index.current(tx, people)
    compared = 0
    for pseudonym in people:
        assert sorted(r.ref for r in from_index[pseudonym]) == sorted(
            {r.consent_id: r for r in sorted(from_store[pseudonym], key=lambda r: r.version)}[c].ref
            for c in {r.consent_id for r in from_store[pseudonym]})
        for request in requests(pseudonym):
            assert outcome(request, registry, from_index[pseudonym]) == outcome(request, registry,
                                                                                from_store[pseudonym])
            compared += 1
    outcomes = {outcome(r, registry, from_index[p])[:2] for p in people for r in requests(p)}
    assert ("permit", None) in outcomes and ("deny", "consent-withdrawn") in outcomes  # the cases differ
    assert ("deny", "consent-expired") in outcomes and ("deny", "objection-upheld") in outcomes
    assert compared == 28


async def test_a_second_process_sees_what_the_first_recorded_withdrew_and_renewed(store: Store,
                                                                                  registry: PolicyRegistry) -> None:
    (person,) = await subjects(store, 1)
    other_process = Store.connect(str(store.engine.url.render_as_string(hide_password=False)), b"k" * 32)
    index = ConsentIndex()
    try:
        await index.load(other_process)
        assert index.seq == 0

        async def decided() -> tuple[object, ...]:
            async with other_process.transaction() as tx:
                found = await index.current(tx, [person])
            return outcome(requests(person)[0], registry, found[person])[:3]

        assert await decided() == ("deny", "no-applicable-consent", None)
        given = permit("ix-lineage", person)
        async with store.transaction() as tx:
            await tx.add_consent(given, "aler")
        assert await decided() == ("permit", None, "ix-lineage@1") and index.seq == 1
        withdrawn = given.next_version(status="inactive", withdrawn=True, withdrawal=Withdrawal(at=NOW))
        async with store.transaction() as tx:
            await tx.add_consent(withdrawn, "aler")
        assert await decided() == ("deny", "consent-withdrawn", None) and index.seq == 2
        async with store.transaction() as tx:
            await tx.add_consent(withdrawn.next_version(status="active", withdrawn=False, withdrawal=None), "aler")
        assert await decided() == ("permit", None, "ix-lineage@3") and index.seq == 3
    finally:
        await other_process.close()


async def test_consent_versions_are_numbered_in_commit_order(store: Store) -> None:
    people = await subjects(store, 12)
    index = ConsentIndex()
    await index.load(store)

    async def record(i: int) -> None:
        async with store.transaction() as tx:
            await tx.add_consent(permit(f"ix-order-{i}", people[i]), "aler")

    await asyncio.gather(*(record(i) for i in range(12)))
    async with store.transaction() as tx:
        head = await tx.consent_change_head()
        numbered = dict((await tx.conn.execute(select(consents.c.change_seq, consents.c.subject_pseudonym))).all())
        changed_late = await tx.subjects_with_consent_changes(6)
    numbers = sorted(numbered)
    assert changed_late == {numbered[n] for n in range(7, 13)} and len(changed_late) == 6
    assert head == 12 and numbers == list(range(1, 13))  # no gap, no repeat, whatever the interleaving
    if store.dialect == "postgresql":
        # While a version is written but not committed, others still read the head before it: no one can see
        # a number whose version they cannot read yet.
        async with store.transaction() as writing:
            await writing.add_consent(permit("ix-order-late", people[0]), "aler")
            async with store.transaction() as reading:
                assert await reading.consent_change_head() == 12
        async with store.transaction() as reading:
            assert await reading.consent_change_head() == 13


async def test_consents_given_on_one_form_share_one_shape(any_store: InspectableStore) -> None:
    people = await subjects(any_store, 60)
    async with any_store.transaction() as tx:
        for i, pseudonym in enumerate(people):
            await tx.add_consent(permit(f"ix-form-{i}", pseudonym, recorded_at=NOW + timedelta(seconds=i)), "aler")
        await tx.add_consent(permit("ix-form-other", people[0], purposes=frozenset({OTHER})), "aler")
    index = ConsentIndex()
    await index.load(any_store)
    assert (index.subjects, len(index), index.shapes) == (60, 61, 2)


async def test_until_it_has_loaded_a_batch_reads_its_consents_from_the_store(any_store: InspectableStore) -> None:
    (person,) = await subjects(any_store, 1)
    async with any_store.transaction() as tx:
        await tx.add_consent(permit("ix-unloaded", person), "aler")
    index = ConsentIndex()
    async with any_store.transaction() as tx:
        found = await index.current(tx, [person])
    assert not index.ready and [r.ref for r in found[person]] == ["ix-unloaded@1"]


async def test_latest_of_reads_each_lineage_as_the_store_does_and_catches_up_first(any_store: InspectableStore) -> None:
    """The relay's re-check at delivery (rule 9) reads the index where the store's latest versions were read:
    for every field that re-check looks at, the same answer, including what was written after the index
    loaded."""
    people = await subjects(any_store, 3)
    index = ConsentIndex()
    async with any_store.transaction() as tx:
        assert await index.latest_of(tx, people) is None  # not loaded: the caller reads the store
        plain = permit("ix-latest-plain", people[0])
        renewed = permit("ix-latest-renewed", people[1])
        await tx.add_consent(plain, "aler")
        await tx.add_consent(renewed, "aler")
        withdrawn = renewed.next_version(status="inactive", withdrawn=True, withdrawal=Withdrawal(at=NOW))
        await tx.add_consent(withdrawn, "aler")
        await tx.add_consent(withdrawn.next_version(status="active", withdrawn=False, withdrawal=None), "aler")
        await tx.add_consent(permit("ix-latest-ended", people[2], period_end=NOW - timedelta(days=1)), "aler")
    await index.load(any_store)
    async with any_store.transaction() as tx:  # written after the load: found through the head number
        await tx.add_consent(plain.next_version(status="inactive", withdrawn=True, withdrawal=Withdrawal(at=NOW)),
                             "aler")

    def relay_view(records: dict[str, ConsentRecord]) -> dict[str, tuple[object, ...]]:
        return {consent_id: (r.version, r.status, r.decision, r.withdrawn, r.period_start, r.period_end, r.grantor,
                             r.notice, r.subject_pseudonym) for consent_id, r in records.items()}

    async with any_store.transaction() as tx:
        from_index = await index.latest_of(tx, people)
        from_store = await tx.latest_consent_versions(
            {"ix-latest-plain", "ix-latest-renewed", "ix-latest-ended"})
    assert from_index is not None and index.seq == 6
    assert relay_view(from_index) == relay_view(from_store)
    assert {k: (r.version, r.withdrawn) for k, r in from_index.items()} == {
        "ix-latest-plain": (2, True), "ix-latest-renewed": (3, False), "ix-latest-ended": (1, False)}


async def test_records_rebuilt_for_a_subject_are_handed_out_again_until_their_consents_change(
        any_store: InspectableStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch's decisions and the relay's re-check at delivery ask about the same people: their records are
    built once and kept, but never past a change of their consents, and never for more than a bounded number."""
    import gateway.consents.index as index_module

    people = await subjects(any_store, 3)
    given = [permit(f"ix-built-{i}", pseudonym) for i, pseudonym in enumerate(people)]
    async with any_store.transaction() as tx:
        for record in given:
            await tx.add_consent(record, "aler")
    index = ConsentIndex()
    await index.load(any_store)
    first = index.consents_of(people[0])
    assert index.consents_of(people[0]) is first and [r.ref for r in first] == ["ix-built-0@1"]

    async with any_store.transaction() as tx:
        await tx.add_consent(given[0].next_version(status="inactive", withdrawn=True, withdrawal=Withdrawal(at=NOW)),
                             "aler")
    async with any_store.transaction() as tx:
        found = await index.current(tx, [people[0]])
    after = index.consents_of(people[0])
    assert found[people[0]] is after and [(r.ref, r.withdrawn) for r in after] == [("ix-built-0@2", True)]

    monkeypatch.setattr(index_module, "_BUILT_MAX", 2)
    index.consents_of(people[1])
    index.consents_of(people[2])  # the oldest kept (people[0]) makes room
    again = index.consents_of(people[0])
    assert again is not after and again == after and len(index._built) <= 2
