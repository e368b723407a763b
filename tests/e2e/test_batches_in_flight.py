"""Two batches decided at once by one worker (gateway.pipeline.turns), on PostgreSQL.

The inbound consumer starts deciding the next fetched batch while the one before is still in its transaction. These
tests hold the first batch inside its transaction and check that the second one decides meanwhile but writes only
after the first has committed, that the audit log, the commits and the hand-offs to delivery keep fetch order, and
that when the first batch fails the second gives up at its turn and both are decided again, each message once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import orjson
import pytest

from gateway.auth import PartnerClient
from gateway.bootstrap import Gateway, build
from gateway.bus import BusRecord
from gateway.errors import DependencyUnavailable
from gateway.pipeline.consumer import _InFlight
from gateway.pipeline.delivery import DeliveryLane
from gateway.pipeline.turns import EarlierBatchNotCommitted, Turn
from gateway.simulators import aler_arrears_message
from gateway.store import OutboxRow, StoreTransaction
from tests.conftest import Backends
from tests.e2e.test_f1_microcredit_referral import audit_records, record_consent, tenant

POSTGRES = Backends("postgres", "embedded")


@pytest.fixture
async def gateway(settings_for: Callable[[Backends], object],
                  clients: tuple[PartnerClient, ...]) -> AsyncIterator[Gateway]:
    """A gateway on PostgreSQL whose workers are not running: the test drives its consumer's batches."""
    gw = build(await settings_for(POSTGRES), clients=clients)  # type: ignore[misc]
    await gw.start(workers=False)
    try:
        yield gw
    finally:
        await gw.stop()


def records(gateway: Gateway, first_offset: int, seeds: Sequence[int]) -> list[BusRecord]:
    topic = gateway.settings.topics.name("in", "aler")
    return [BusRecord(topic=topic, partition=0, offset=first_offset + n, key=None, timestamp_ms=0,
                      value=orjson.dumps(aler_arrears_message(tenant(seed), f"inflight-{first_offset + n}")),
                      headers=(("request-id", f"req-{first_offset + n}".encode()),))
            for n, seed in enumerate(seeds)]


class HandOffs:
    """Stands in for the delivery lane's queue: the batches handed over, in order (the rows stay queued)."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    async def deliver(self, rows: Sequence[OutboxRow]) -> None:
        self.batches.append(sorted({r.headers[2][1] for r in rows}))  # the request ids they answer


def held_first_append(monkeypatch: pytest.MonkeyPatch, release: asyncio.Event,
                      fail_once: bool = False) -> list[str]:
    """The first audit append waits for ``release`` (so its batch stays in its transaction), then fails once if
    ``fail_once``; every append's outcome is listed in order."""
    appended: list[str] = []
    original = StoreTransaction.append_audit

    async def append(self: StoreTransaction, audit: Sequence[Any]) -> Any:
        first = not appended
        appended.append("held" if first else "appended")
        if first:
            await release.wait()
            if fail_once:
                raise DependencyUnavailable("the store went away (test)")
        return await original(self, audit)

    monkeypatch.setattr(StoreTransaction, "append_audit", append)
    return appended


async def decision_request_ids(gateway: Gateway) -> list[str]:
    return [r["request_id"] for r in await audit_records(gateway) if r["event_type"] == "decision"]


async def test_the_next_batch_decides_while_the_first_is_in_its_transaction_and_writes_after_it(
        gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    for seed in range(1, 7):
        await record_consent(gateway, tenant(seed).cf)
    consumer, handed = gateway.consumer, HandOffs()
    consumer._lane = DeliveryLane(handed.deliver)  # not started: each hand-off goes straight to the recorder
    assert consumer.batches_in_flight == 2  # the gateway's setting on PostgreSQL
    release = asyncio.Event()
    appended = held_first_append(monkeypatch, release)
    waited: list[str] = []
    first_turn = Turn()
    second_turn = Turn(first_turn)
    wait_for_earlier = second_turn.wait_for_earlier

    async def second_waits() -> None:
        waited.append(f"second at its turn, the first {'held' if appended == ['held'] else 'not held'}")
        await wait_for_earlier()

    second_turn.wait_for_earlier = second_waits  # type: ignore[method-assign]

    first = asyncio.create_task(consumer._handle_in_turn(records(gateway, 0, [1, 2, 3]), first_turn))
    second = asyncio.create_task(consumer._handle_in_turn(records(gateway, 3, [4, 5, 6]), second_turn))
    for _ in range(500):  # the second batch identified, read consents and decided while the first was held
        if waited:
            break
        await asyncio.sleep(0.01)
    assert waited == ["second at its turn, the first held"]
    assert not second.done()
    release.set()
    await asyncio.gather(first, second)

    assert appended == ["held", "appended"]
    first_ids, second_ids = [f"req-{n}" for n in range(3)], [f"req-{n}" for n in range(3, 6)]
    assert await decision_request_ids(gateway) == first_ids + second_ids  # the audit log keeps fetch order
    assert handed.batches == [first_ids, second_ids]  # so does delivery


async def test_when_the_first_batch_fails_the_second_gives_up_and_both_are_decided_again_once(
        gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    for seed in range(1, 7):
        await record_consent(gateway, tenant(seed).cf)
    consumer, handed = gateway.consumer, HandOffs()
    consumer._lane = DeliveryLane(handed.deliver)
    release = asyncio.Event()
    appended = held_first_append(monkeypatch, release, fail_once=True)
    first_records, second_records = records(gateway, 0, [1, 2, 3]), records(gateway, 3, [4, 5, 6])
    first_turn = Turn()
    second_turn = Turn(first_turn)
    first = _InFlight(first_records, first_turn,
                      asyncio.create_task(consumer._handle_in_turn(first_records, first_turn)))
    second = _InFlight(second_records, second_turn,
                       asyncio.create_task(consumer._handle_in_turn(second_records, second_turn)))
    await asyncio.sleep(0.2)
    release.set()
    with pytest.raises(EarlierBatchNotCommitted):
        await asyncio.shield(second.task)  # it gave up at its turn: nothing of it was written
    assert await decision_request_ids(gateway) == []

    stop = asyncio.Event()
    await consumer._settle(first, stop)  # decided again, alone
    await consumer._settle(second, stop)

    first_ids, second_ids = [f"req-{n}" for n in range(3)], [f"req-{n}" for n in range(3, 6)]
    assert await decision_request_ids(gateway) == first_ids + second_ids  # once each, in fetch order
    assert handed.batches == [first_ids, second_ids]
    assert appended[0] == "held" and appended.count("held") == 1
    async with gateway.store.transaction() as tx:
        statuses = await tx.messages_many({("aler", f"inflight-{n}") for n in range(6)})
    assert {s.state for s in statuses.values()} == {"forwarded"} and len(statuses) == 6
