"""Flow F1 through the real intake, relay and consent registry over the in-memory store: the pipeline's logic
alone, in milliseconds, with no database server and no broker.

The intake here is wired as :func:`gateway.bootstrap.build` wires it (the packaged flow registry, the built-in
partners' decoders and encoders, the crosswalk's tokens), consents are recorded and withdrawn through
:class:`~gateway.consents.service.ConsentService`, and the relay publishes to the embedded bus (the gateway's own
single-machine log, in a temporary file). Only the store is :class:`~gateway.store.memory.MemoryStore`, which
``tests/contract`` holds to the same answers as SQLite and PostgreSQL. The same cases run end to end over both
real backends in ``tests/e2e/test_f1_microcredit_referral.py``; the wiring is :mod:`tests.pipeline_harness`'s.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

import orjson
import pytest

from gateway.consents.index import ConsentIndex
from gateway.identity.synthetic import SyntheticTenant, generate_tenants
from gateway.pipeline import Submission
from gateway.simulators import aler_arrears_message
from gateway.store import MessageStatus
from gateway.store.memory import MemoryTransaction
from schemas.envelope import Envelope
from tests.pipeline_harness import Pipeline

_CF = re.compile(r"[A-Z]{6}\d{2}[A-Z]\d{2}[A-Z]\d{3}[A-Z]")


async def submit(pipeline: Pipeline, person: SyntheticTenant, message_id: str) -> MessageStatus:
    """ALER's arrears message about ``person``, decided and left queued (the relay delivers when a test drains)."""
    [status] = await pipeline.submit("aler", aler_arrears_message(person, message_id), deliver=False)
    return status


async def consent(pipeline: Pipeline, person: SyntheticTenant) -> str:
    return (await pipeline.consent(person.cf)).consent_id


def aler_submission(message: dict[str, object]) -> Submission:
    return Submission(sender="aler", sender_role="system", raw=orjson.dumps(message),
                      content_type="application/json", request_id="req-unit")


def tenant(seed: int) -> SyntheticTenant:
    return next(t for t in generate_tenants("S", seed=seed, limit=50) if t.arrears_cents > 0)


async def test_C01_T10_a_consented_f1_referral_is_queued_for_fwa_with_one_decision_and_one_disclosure_audited(
    pipeline: Pipeline,
) -> None:
    person = tenant(1)
    consent_id = await consent(pipeline, person)
    status = await submit(pipeline, person, "m-permit")
    assert (status.state, status.recipients, status.reason_class) == ("forwarded", ("fwa",), None)

    async with pipeline.store.transaction() as tx:
        [referral] = [r for r in await tx.pending_outbox(10) if r.recipient == "fwa"]
        stored = await tx.message("aler", "m-permit")
    assert stored == status
    assert referral.topic == "out.fwa" and referral.consent_id == consent_id and referral.consent_version == 1
    body = orjson.loads(referral.value)
    assert body["riferimento_consenso"] == f"{consent_id}@1" and body["richiedente"] == {"codice_fiscale": person.cf}
    assert person.contract_id not in referral.value.decode()  # minimised: F1 does not carry ALER's contract
    f1 = [r for r in await pipeline.audit() if r.get("flow_id") == "F1"]
    assert [(r["event_type"], r["outcome"]) for r in f1] == [("decision", "permit"), ("disclosure", "permit")]
    assert {r["consent_ref"] for r in f1} == {f"{consent_id}@1"}


async def test_C15_M03_without_consent_f1_is_denied_audited_and_nothing_is_queued_for_fwa(
    pipeline: Pipeline,
) -> None:
    person = tenant(2)
    status = await submit(pipeline, person, "m-deny")
    assert (status.state, status.reason_class, status.recipients) == ("denied", "not-authorised", ())
    async with pipeline.store.transaction() as tx:
        queued = await tx.pending_outbox(10)
    assert [(r.recipient, r.topic) for r in queued] == [("aler", "status.aler")]  # only ALER hears, of a denial
    records = await pipeline.audit()
    [decision] = [r for r in records if r["event_type"] == "decision"]
    assert (decision["outcome"], decision["reason"], decision["flow_id"]) == ("deny", "no-applicable-consent", "F1")
    assert not [r for r in records if r["event_type"] == "disclosure"]
    text = json.dumps(records)
    assert person.cf not in text and not _CF.search(text)  # the log names no one


async def test_a_replayed_message_id_returns_the_first_status_and_forwards_nothing_more(pipeline: Pipeline) -> None:
    person = tenant(3)
    await consent(pipeline, person)
    first = await submit(pipeline, person, "m-replay")
    again = await submit(pipeline, person, "m-replay")
    assert again == first and first.state == "forwarded"
    async with pipeline.store.transaction() as tx:
        queued = await tx.pending_outbox(10)
    assert sorted(r.recipient for r in queued) == ["aler", "fwa"]  # one referral, one status: not two of each
    decisions = [r for r in await pipeline.audit() if r["event_type"] == "decision"]
    assert len(decisions) == 1


async def test_a_batch_decides_each_person_on_their_own_consents_and_a_copy_in_it_counts_once(
    pipeline: Pipeline,
) -> None:
    consented, other = tenant(4), tenant(5)
    await consent(pipeline, consented)
    decode = pipeline.intake.decode
    items: list[tuple[Envelope, Submission]] = []
    for person, message_id in ((consented, "m-a"), (other, "m-b"), (consented, "m-a"), (consented, "m-c")):
        submission = aler_submission(aler_arrears_message(person, message_id))
        items += [(envelope, submission) for envelope in decode(submission)]
    statuses = await pipeline.intake.process(items)
    assert [(s.message_id, s.state) for s in statuses] == [
        ("m-a", "forwarded"), ("m-b", "denied"), ("m-a", "forwarded"), ("m-c", "forwarded")]
    async with pipeline.store.transaction() as tx:
        referrals = [r for r in await tx.pending_outbox(20) if r.recipient == "fwa"]
        one = await tx.subject("cf", consented.cf, create=False)
    assert len(referrals) == 2 and one is not None
    assert {r.subject_pseudonym for r in referrals} == {one.pseudonym}  # both of the same person, one pseudonym
    assert len([r for r in await pipeline.audit() if r["event_type"] == "decision"]) == 3


def spy_on_status_writes(monkeypatch: pytest.MonkeyPatch, written_as: list[list[str]]) -> None:
    """Append to ``written_as`` the states each write of statuses wrote: ``received`` when their message ids were
    claimed before deciding (:meth:`claim_messages`), the outcomes when the statuses were written once, decided
    (:meth:`insert_messages`)."""
    claim, insert = MemoryTransaction.claim_messages, MemoryTransaction.insert_messages

    async def claimed(tx: MemoryTransaction, statuses: Sequence[MessageStatus]) -> set[tuple[str, str]]:
        written_as.append([s.state for s in statuses])
        return await claim(tx, statuses)

    async def inserted(tx: MemoryTransaction, statuses: Sequence[MessageStatus]) -> bool:
        written_as.append([s.state for s in statuses])
        return await insert(tx, statuses)

    monkeypatch.setattr(MemoryTransaction, "claim_messages", claimed)
    monkeypatch.setattr(MemoryTransaction, "insert_messages", inserted)


async def test_a_batch_with_a_replay_among_new_messages_decides_each_new_one_once_and_the_replay_never(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A batch is first decided without claiming its message ids; the replay in it rolls that attempt back (no
    record, row or status of it is left) and the batch is decided again, claiming first; the batch after it,
    without replays, is decided without claiming first again."""
    person = tenant(6)
    await consent(pipeline, person)
    first = await submit(pipeline, person, "m-seen")
    claimed_as: list[list[str]] = []  # the states each claim of message ids wrote: received = claimed first
    spy_on_status_writes(monkeypatch, claimed_as)
    decode = pipeline.intake.decode

    def batch(*message_ids: str) -> list[tuple[Envelope, Submission]]:
        submissions = [aler_submission(aler_arrears_message(person, message_id)) for message_id in message_ids]
        return [(envelope, submission) for submission in submissions for envelope in decode(submission)]

    statuses = await pipeline.intake.process(batch("m-new-1", "m-seen", "m-new-2"))
    assert [(s.message_id, s.state) for s in statuses] == [
        ("m-new-1", "forwarded"), ("m-seen", "forwarded"), ("m-new-2", "forwarded")]
    assert statuses[1] == first  # the status recorded the first time
    assert claimed_as == [["forwarded", "forwarded", "forwarded"], ["received", "received", "received"]]
    records = await pipeline.audit()
    decided = [r["message_ids"][0] for r in records if r["event_type"] == "decision"]
    assert sorted(decided) == ["m-new-1", "m-new-2", "m-seen"]  # one each: the attempt rolled back left none
    async with pipeline.store.transaction() as tx:
        referrals = [r for r in await tx.pending_outbox(20) if r.recipient == "fwa"]
    assert len(referrals) == 3

    claimed_as.clear()
    await pipeline.intake.process(batch("m-new-3"))  # claims first once more: the last batch had a replay
    await pipeline.intake.process(batch("m-new-4"))  # the last had none: decided, then written once
    assert claimed_as == [["received"], ["forwarded"]]


async def test_an_intake_claims_first_when_it_starts_and_when_told_to_expect_replays(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A process that starts, or a consumer given partitions, first reads records decided before whose offsets
    were not committed: the intake claims message ids first then, instead of deciding and rolling back."""
    person = tenant(6)
    await consent(pipeline, person)
    claimed_as: list[list[str]] = []
    spy_on_status_writes(monkeypatch, claimed_as)

    async def process(message_id: str) -> None:
        submission = aler_submission(aler_arrears_message(person, message_id))
        await pipeline.intake.process([(e, submission) for e in pipeline.intake.decode(submission)])

    await process("m-first")  # the intake has just started: claimed first
    await process("m-second")  # no replay came: decided, then written once
    pipeline.intake.expect_replays()
    await process("m-first")  # a replay, claimed first: nothing to roll back
    await process("m-third")
    assert claimed_as == [["received"], ["forwarded"], ["received"], ["received"]]


async def test_W01_a_referral_queued_before_the_withdrawal_is_dropped_at_delivery(pipeline: Pipeline) -> None:
    person, still_consenting = tenant(7), tenant(9)
    consent_id = await consent(pipeline, person)
    await consent(pipeline, still_consenting)
    assert (await submit(pipeline, person, "m-queued")).state == "forwarded"
    assert (await submit(pipeline, still_consenting, "m-other")).state == "forwarded"
    await pipeline.consents.withdraw(consent_id, "aler", "aler-test", "req-withdraw")

    # two referrals (one dropped), two statuses to ALER and the consent.withdrawn event; FWA received nothing
    # under the withdrawn consent, so it gets no restriction notice either
    assert await pipeline.relay.drain() == 5
    [delivered] = await pipeline.read("out", "fwa")
    assert delivered.header("correlation-id") == "corr-m-other"
    assert sorted(orjson.loads(r.value)["message_id"] for r in await pipeline.read("status", "aler")) == [
        "m-other", "m-queued"]
    records = await pipeline.audit()
    [dropped] = [r for r in records if r["event_type"] == "delivery-dropped"]
    assert (dropped["reason"], dropped["recipient_org"]) == ("consent-withdrawn", "fwa")
    assert dropped["consent_ref"] == f"{consent_id}@1"
    assert "restriction-notice" not in [r["action"] for r in records]
    async with pipeline.store.transaction() as tx:
        assert await tx.pending_outbox(10) == []
        assert [r.message_id for r in await tx.inbox("fwa", 0, 10)] == [delivered.header("message-id")]


async def test_W01_the_relay_re_checks_from_the_loaded_index_brought_up_to_date_after_its_lock(
    pipeline: Pipeline,
) -> None:
    person, still_consenting = tenant(7), tenant(9)
    consent_id = await consent(pipeline, person)
    await consent(pipeline, still_consenting)
    index = pipeline.relay.consent_index
    assert index is pipeline.intake.consent_index  # one index per process, as the gateway wires it
    await index.load(pipeline.store)
    assert (await submit(pipeline, person, "m-queued")).state == "forwarded"
    assert (await submit(pipeline, still_consenting, "m-other")).state == "forwarded"
    await pipeline.consents.withdraw(consent_id, "aler", "aler-test", "req-withdraw")
    assert index.seq == 2  # the withdrawal is version 3; only the relay's re-check can bring the index to it

    assert await pipeline.relay.drain() == 5
    assert index.seq == 3
    [delivered] = await pipeline.read("out", "fwa")
    assert delivered.header("correlation-id") == "corr-m-other"
    [dropped] = [r for r in await pipeline.audit() if r["event_type"] == "delivery-dropped"]
    assert (dropped["reason"], dropped["consent_ref"]) == ("consent-withdrawn", f"{consent_id}@1")


async def test_W01_a_loaded_consent_index_sees_the_withdrawal_before_the_next_batch(pipeline: Pipeline) -> None:
    person = tenant(8)
    consent_id = await consent(pipeline, person)
    index = pipeline.intake.consent_index = pipeline.relay.consent_index = ConsentIndex()
    await index.load(pipeline.store)
    assert (await submit(pipeline, person, "m-before")).state == "forwarded"
    await pipeline.consents.withdraw(consent_id, "aler", "aler-test", "req-withdraw")
    after = await submit(pipeline, person, "m-after")
    assert (after.state, after.reason_class) == ("denied", "not-authorised") and index.seq == 2
    reasons = [r.get("reason") for r in await pipeline.audit() if r["event_type"] == "decision"]
    assert reasons == [None, "consent-withdrawn"]
