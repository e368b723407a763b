"""Publishing on a real broker builds one record batch per partition (:meth:`gateway.bus.KafkaBus.publish`): every
record lands where Kafka's default partitioner puts its key, in order per key, also when a partition's records
fill more than one batch."""

from __future__ import annotations

import os
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiokafka.partitioner import murmur2

from gateway.bus import BusConsumer, BusRecord, KafkaBus, OutgoingRecord
from tests.kafka_access import ADMIN, kafka_access

KAFKA_ENV = "GATEWAY_TEST_KAFKA_BOOTSTRAP"


@pytest.fixture
async def small_batches() -> AsyncIterator[KafkaBus]:
    """A bus whose record batches hold at most 16 KiB, so that a few hundred records fill several."""
    bootstrap = os.environ.get(KAFKA_ENV)
    if not bootstrap:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{KAFKA_ENV} is not set: the Kafka tests must run in CI")
        pytest.skip(f"set {KAFKA_ENV} to run the Kafka tests")
    bus = KafkaBus(bootstrap, client_id=f"batches-{uuid.uuid4().hex[:8]}", partitions=3, request_timeout_ms=15000,
                   security=kafka_access(bootstrap).security(ADMIN), max_batch_bytes=16_384)
    await bus.start()
    try:
        yield bus
    finally:
        await bus.stop()


async def test_records_land_on_their_keys_partition_in_order_across_several_batches(small_batches: KafkaBus) -> None:
    topic = f"contract.batches.{uuid.uuid4().hex[:12]}"
    await small_batches.ensure_topics([topic])
    keys = [f"subject-{n}".encode() for n in range(7)]
    sent = [OutgoingRecord(topic=topic, key=keys[n % 7], value=f'{{"n":{n},"pad":"{"x" * 400}"}}'.encode(),
                           headers=(("message-id", f"m-{n}".encode()),)) for n in range(600)]
    sent.append(OutgoingRecord(topic=topic, key=None, value=b'{"n":"keyless"}', headers=()))
    await small_batches.publish(sent)  # about 260 KiB: several 16 KiB batches for every partition

    received: list[BusRecord] = []
    async with _consumer(small_batches, topic) as consumer:
        deadline = time.monotonic() + 60
        while len(received) < len(sent):
            assert time.monotonic() < deadline, f"only {len(received)} of {len(sent)} records arrived"
            received += await consumer.fetch(timeout_s=0.5)
    assert len(received) == len(sent)
    for record in received:
        if record.key is not None:
            assert record.partition == (murmur2(record.key) & 0x7FFFFFFF) % 3, "not where Kafka's partitioner puts it"
    in_order: dict[bytes | None, list[bytes]] = defaultdict(list)
    for record in sorted(received, key=lambda r: (r.partition, r.offset)):
        in_order[record.key].append(record.value)
    expected: dict[bytes | None, list[bytes]] = defaultdict(list)
    for outgoing in sent:
        expected[outgoing.key].append(outgoing.value)
    assert in_order == expected


@asynccontextmanager
async def _consumer(bus: KafkaBus, topic: str) -> AsyncIterator[BusConsumer]:
    consumer = bus.consumer(f"batches-{uuid.uuid4().hex[:8]}", [topic])
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()
