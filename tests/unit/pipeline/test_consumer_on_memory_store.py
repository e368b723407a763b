"""The inbound consumer over the embedded bus and the in-memory store: partitions new to it make the intake claim
message ids first (their first records may have been decided by a member that did not commit their offsets)."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from gateway.bus import OutgoingRecord
from gateway.identity.synthetic import generate_tenants
from gateway.pipeline.consumer import InboundConsumer
from gateway.simulators import aler_arrears_message
from tests.pipeline_harness import Pipeline


async def test_partitions_new_to_the_consumer_make_the_intake_expect_replays(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch,
) -> None:
    person = next(t for t in generate_tenants("S", seed=3, limit=50) if t.arrears_cents > 0)
    expected: list[list[tuple[str, int]]] = []
    consumer = InboundConsumer(pipeline.intake, pipeline.bus, pipeline.topics, ["aler"], group_id="replays")
    monkeypatch.setattr(pipeline.intake, "expect_replays", lambda: expected.append(list(consumer.progress.assigned)))
    topic = pipeline.topics.name("in", "aler")

    async def publish(message_id: str) -> None:
        await pipeline.bus.publish([OutgoingRecord(topic=topic, value=orjson.dumps(
            aler_arrears_message(person, message_id)))])

    async def decided(message_id: str) -> None:
        for _ in range(500):
            if await pipeline.status("aler", message_id) is not None:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"{message_id} was not decided")

    stop = asyncio.Event()
    running = asyncio.create_task(consumer.run(stop))
    try:
        await publish("m-1")
        await decided("m-1")
        assert expected == [[]]  # told once, when the partition first came to it
        await publish("m-2")
        await decided("m-2")
        assert expected == [[]]  # the same partition: nothing new to expect
    finally:
        stop.set()
        await running
    assert consumer.progress.batches == 2
