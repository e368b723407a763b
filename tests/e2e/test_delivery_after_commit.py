"""Delivery straight after the commit: the worker that decided a batch delivers it, the relay sweeps up the rest.

On both pairs of backends. A worker commits a batch (decisions, audit, outbox rows) and then hands its rows to
:meth:`Relay.deliver`, which locks them, re-checks their consents against the store and publishes them. These
tests stop the worker at the moments in between: a crash after the commit leaves rows the relay's sweep sends;
a crash after the publish but before the rows are marked sends them twice with one message id (delivery is at
least once, recipients deduplicate on ``message-id``); a withdrawal that commits between the intake's commit and
the delivery, in another gateway process, is honoured (privacy.md W-01).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from sqlalchemy import and_, exists, select

from gateway.auth import PartnerClient
from gateway.bootstrap import Gateway, build
from gateway.bus import OutgoingRecord
from gateway.errors import DependencyUnavailable
from gateway.pipeline import Submission
from gateway.pipeline import intake as intake_module
from gateway.simulators import aler_arrears_message
from gateway.store import OutboxRow
from gateway.store.tables import outbox, outbox_queue
from tests.conftest import Backends
from tests.e2e.test_f1_microcredit_referral import audit_records, read_until, record_consent, tenant


@pytest.fixture
async def idle_pair(backends: Backends, settings_for: Callable[[Backends], object],
                    clients: tuple[PartnerClient, ...]) -> AsyncIterator[tuple[Gateway, Gateway]]:
    """Two gateway processes' worth of gateway on one store and bus, workers not started: the test decides
    when each step of a delivery runs."""
    settings = await settings_for(backends)  # type: ignore[misc]
    first = build(settings, clients=clients)
    second = build(settings.model_copy(update={"instance_id": "second-worker"}), clients=clients)
    await first.start(workers=False)
    await second.start(workers=False)
    try:
        yield first, second
    finally:
        await second.stop()
        await first.stop()


def submission(message_id: str, seed: int, occurred_at: datetime | None = None) -> Submission:
    return Submission(sender="aler", sender_role="system",
                      raw=orjson.dumps(aler_arrears_message(tenant(seed), message_id, occurred_at=occurred_at)),
                      content_type="application/json", request_id=f"req-{message_id}")


async def outbox_rows(gateway: Gateway) -> list[dict[str, Any]]:
    async with gateway.store.engine.connect() as db:
        return [dict(r._mapping) for r in await db.execute(
            select(outbox.c.recipient, outbox.c.message_id, outbox.c.dropped_reason,
                   and_(outbox.c.dropped_reason.is_(None), ~exists().where(outbox_queue.c.id == outbox.c.id))
                   .label("delivered")))]


async def test_the_worker_delivers_its_batch_itself_without_the_relay(
        idle_pair: tuple[Gateway, Gateway]) -> None:
    gateway, _ = idle_pair
    await record_consent(gateway, tenant(21).cf)
    gateway.intake.deliver = gateway.relay.deliver  # as start_workers wires it; the relay's loop never runs
    [status] = await gateway.intake.submit(submission("m-direct", 21))

    assert status.state == "forwarded"
    rows = await outbox_rows(gateway)
    assert {r["recipient"] for r in rows} == {"fwa", "aler"}
    assert all(r["delivered"] for r in rows), rows  # delivered before submit returned
    [referral] = await read_until(gateway, "out", "fwa", 1, settle_s=0.5)
    assert referral.header("correlation-id") == "corr-m-direct"
    assert await gateway.relay.drain() == 0  # nothing left for the sweep


async def test_a_crash_between_commit_and_delivery_leaves_rows_the_relay_sends(
        idle_pair: tuple[Gateway, Gateway]) -> None:
    gateway, other = idle_pair
    await record_consent(gateway, tenant(22).cf)

    async def crashed(rows: Sequence[OutboxRow]) -> int:
        raise DependencyUnavailable("the worker went away after its commit")

    gateway.intake.deliver = crashed
    [status] = await gateway.intake.submit(submission("m-crash", 22))
    assert status.state == "forwarded"  # decided and committed: the crash came after
    assert not any(r["delivered"] for r in await outbox_rows(gateway))

    # the sweep of another process leaves rows younger than its grace to their worker, then sends them
    assert await other.relay.relay_once(min_age_seconds=3600) == 0
    assert await other.relay.relay_once(min_age_seconds=0) == 2
    [referral] = await read_until(gateway, "out", "fwa", 1, settle_s=0.5)
    assert referral.header("correlation-id") == "corr-m-crash"
    assert all(r["delivered"] for r in await outbox_rows(gateway))


async def test_a_crash_after_publishing_sends_again_with_the_same_message_id(
        idle_pair: tuple[Gateway, Gateway]) -> None:
    """Published but not marked: the transaction rolls back and the sweep publishes the rows again. That is the
    documented at-least-once delivery: the copies carry one ``message-id`` and the store marks the row once."""
    gateway, other = idle_pair
    await record_consent(gateway, tenant(23).cf)
    real_publish = gateway.bus.publish

    async def publish_then_crash(records: Sequence[Any]) -> None:
        await real_publish(records)
        raise DependencyUnavailable("the worker went away after publishing, before marking")

    gateway.bus.publish = publish_then_crash  # type: ignore[method-assign]
    gateway.intake.deliver = gateway.relay.deliver
    await gateway.intake.submit(submission("m-twice", 23))
    gateway.bus.publish = real_publish  # type: ignore[method-assign]

    assert not any(r["delivered"] for r in await outbox_rows(gateway))
    assert await other.relay.drain() == 2
    copies = await read_until(gateway, "out", "fwa", 2, settle_s=0.5)
    assert len(copies) == 2
    assert len({c.header("message-id") for c in copies}) == 1
    assert [r["delivered"] for r in await outbox_rows(gateway)] == [True, True]
    assert await other.relay.drain() == 0  # once marked, never again


async def test_W01_a_withdrawal_in_one_process_stops_the_next_batch_of_another_deciding_from_its_index(
        idle_pair: tuple[Gateway, Gateway]) -> None:
    """Each process decides from its own consent index. The consent is recorded, then withdrawn, then given
    again through the first process; the second, whose index was loaded before any of it, decides each
    referral as the store stands at that moment, without waiting for any event."""
    recording, deciding = idle_pair
    await deciding.intake.consent_index.load(deciding.store)
    assert deciding.intake.consent_index.ready and len(deciding.intake.consent_index) == 0
    consent_id = await record_consent(recording, tenant(26).cf)
    [permitted] = await deciding.intake.submit(submission("m-index-1", 26))
    await recording.consents.withdraw(consent_id, "aler", "aler-test", "req-withdraw-index")
    [refused] = await deciding.intake.submit(submission("m-index-2", 26))
    await recording.consents.reconsent(consent_id, "aler", "aler-test", "req-reconsent-index")
    [again] = await deciding.intake.submit(submission("m-index-3", 26))

    assert [s.state for s in (permitted, refused, again)] == ["forwarded", "denied", "forwarded"]
    assert refused.reason_class == "not-authorised"  # the sender never learns a consent exists
    decisions = [r for r in await audit_records(deciding) if r["event_type"] == "decision"
                 and r.get("recipient_org") == "fwa"]
    assert [(d["outcome"], d.get("reason"), d.get("consent_ref")) for d in decisions] == [
        ("permit", None, f"{consent_id}@1"), ("deny", "consent-withdrawn", None), ("permit", None, f"{consent_id}@3")]
    assert deciding.intake.consent_index.seq == 3


async def test_W01_withdrawal_committed_between_commit_and_delivery_is_honoured(
        idle_pair: tuple[Gateway, Gateway]) -> None:
    """Another gateway process commits a withdrawal after this worker committed its batch and before it
    delivers: the delivery re-checks the consent against the store and drops the referral, audited."""
    gateway, other = idle_pair
    consent_id = await record_consent(gateway, tenant(24).cf)
    withdrawn: list[str] = []

    async def withdraw_then_deliver(rows: Sequence[OutboxRow]) -> int:
        await other.consents.withdraw(consent_id, "aler", "aler-test", "req-withdraw-between")
        withdrawn.append(consent_id)
        return await gateway.relay.deliver(rows)

    gateway.intake.deliver = withdraw_then_deliver
    [status] = await gateway.intake.submit(submission("m-withdrawn-between", 24))

    assert status.state == "forwarded" and withdrawn  # permitted when decided; withdrawn before delivery
    rows = {r["recipient"]: r for r in await outbox_rows(gateway)}
    assert rows["fwa"]["dropped_reason"] == "consent-withdrawn"
    assert not rows["fwa"]["delivered"]
    assert rows["aler"]["delivered"]  # ALER's own status still goes
    assert await read_until(gateway, "out", "fwa", 0, settle_s=1.0) == []
    [dropped] = [r for r in await audit_records(gateway) if r["event_type"] == "delivery-dropped"]
    assert (dropped["reason"], dropped["recipient_org"]) == ("consent-withdrawn", "fwa")


async def test_W01_a_withdrawal_waits_for_a_delivery_holding_the_rows(idle_pair: tuple[Gateway, Gateway]) -> None:
    """The other order: the worker has locked its rows and re-checked the consent when the withdrawal arrives
    in another process. The withdrawal waits for that delivery, so it still comes before the withdrawal's
    commit (and its art. 19 notice names it). On SQLite the withdrawal's transaction waits for the database
    lock the delivery holds instead of its rows' locks, to the same effect."""
    gateway, other = idle_pair
    consent_id = await record_consent(gateway, tenant(25).cf)
    real_publish = gateway.bus.publish
    withdrawal: list[asyncio.Task[Any]] = []

    async def publish_while_withdrawing(records: Sequence[Any]) -> None:
        withdrawal.append(asyncio.create_task(
            other.consents.withdraw(consent_id, "aler", "aler-test", "req-withdraw-during")))
        await asyncio.sleep(0.5)
        assert not withdrawal[0].done()  # held by this delivery's row locks
        await real_publish(records)

    gateway.bus.publish = publish_while_withdrawing  # type: ignore[method-assign]
    gateway.intake.deliver = gateway.relay.deliver
    await gateway.intake.submit(submission("m-during", 25))
    gateway.bus.publish = real_publish  # type: ignore[method-assign]
    await asyncio.wait_for(withdrawal[0], timeout=10)

    [referral_row] = [r for r in await outbox_rows(gateway) if r["message_id"].startswith("gw-")]
    assert referral_row["delivered"]
    await other.relay.drain()  # the withdrawal's notice to FWA
    records = [orjson.loads(r.value) for r in await read_until(gateway, "out", "fwa", 2, settle_s=0.5)]
    [notice] = [r for r in records if r.get("message_type") == "consent.restriction-notice"]
    [referral] = [r for r in records if r.get("message_type") != "consent.restriction-notice"]
    assert notice["disclosures"] == [referral["id_segnalazione"]]


async def test_offsets_commit_batched_and_at_once_when_the_partition_runs_dry(
        backends: Backends, settings_for: Callable[[Backends], object], clients: tuple[PartnerClient, ...]) -> None:
    """Many small batches share one offset commit; once a fetch comes back empty, what was decided is
    committed without waiting for the interval."""
    settings = await settings_for(backends)  # type: ignore[misc]
    # GATEWAY_INTAKE_BATCH_SIZE=1: one record per batch, from the first fetch on: thirty batches back to back
    gateway = build(settings.model_copy(update={"intake_batch_size": 1}), clients=clients)
    gateway.consumer.commit_interval_s = 3600.0  # so only a dry fetch commits
    await gateway.start()
    try:
        await _offsets_commit_batched(gateway)
    finally:
        await gateway.stop()


async def _offsets_commit_batched(gateway: Gateway) -> None:
    topic = gateway.settings.topics.name("in", "aler")
    await gateway.bus.publish([
        OutgoingRecord(topic=topic, value=orjson.dumps(aler_arrears_message(tenant(26), f"m-offsets-{i}")),
                       key=b"one-tenancy")  # one partition, in order
        for i in range(30)])
    progress = gateway.consumer.progress
    deadline = time.monotonic() + 60
    while not (progress.records >= 30 and progress.commits >= 1):
        assert time.monotonic() < deadline, progress.as_dict()
        await asyncio.sleep(0.1)
    assert progress.batches >= 30
    assert 1 <= progress.commits <= progress.batches // 3, progress.as_dict()
    assert progress.commit_failures == 0


async def test_one_question_asked_twice_in_a_batch_is_decided_once_with_an_id_per_message(
        idle_pair: tuple[Gateway, Gateway]) -> None:
    """Two messages of one batch about one person, at one time: the batch decides the question once, and
    each message's decision still has its own id in the audit log."""
    gateway, _ = idle_pair
    await record_consent(gateway, tenant(27).cf)
    decided: list[Any] = []
    real_decide = intake_module.decide

    def counting_decide(*args: Any) -> Any:
        decided.append(args[0])
        return real_decide(*args)

    intake_module.decide = counting_decide  # type: ignore[assignment]
    try:
        at = datetime.now(UTC)  # the time the data arose is part of the question
        items = [(envelope, sub) for sub in (submission("m-same-1", 27, at), submission("m-same-2", 27, at))
                 for envelope in gateway.intake.decode(sub)]
        statuses = await gateway.intake.process(items)
    finally:
        intake_module.decide = real_decide  # type: ignore[assignment]

    assert [s.state for s in statuses] == ["forwarded", "forwarded"]
    assert len(decided) == 1
    records = [r for r in await audit_records(gateway) if r["event_type"] in ("decision", "disclosure")]
    by_message = {r["message_ids"][0]: r["decision_id"] for r in records if r["event_type"] == "decision"}
    assert sorted(by_message) == ["m-same-1", "m-same-2"]
    assert len(set(by_message.values())) == 2
