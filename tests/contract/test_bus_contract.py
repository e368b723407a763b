"""The bus contract: one suite that both implementations of :class:`gateway.bus.Bus` must pass.

Every test runs against the embedded SQLite log and against a real Kafka broker named by
``GATEWAY_TEST_KAFKA_BOOTSTRAP`` (skipped without it, except in CI where a missing broker is a failure), logged in
as the broker's super user (the contract is about the bus, not ACLs: ``tests/integration/test_kafka_acls.py``).
Topic and group names carry a random suffix, so runs can share one broker.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from gateway.bus import (
    Bus,
    BusConsumer,
    BusRecord,
    EmbeddedBus,
    KafkaBus,
    OutgoingRecord,
    UnknownTopicError,
)
from tests.kafka_access import ADMIN, kafka_access

KAFKA_ENV = "GATEWAY_TEST_KAFKA_BOOTSTRAP"
DEADLINE_S = 60.0
"""Upper bound for records to arrive; Kafka group joins take a few seconds on a small machine."""


@pytest.fixture(params=["embedded", "kafka"])
async def bus(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Bus]:
    implementation: Bus
    if request.param == "embedded":
        implementation = EmbeddedBus(tmp_path / "bus.sqlite3", partitions=3)
    else:
        bootstrap = os.environ.get(KAFKA_ENV)
        if not bootstrap:
            if os.environ.get("CI") == "true":
                pytest.fail(f"{KAFKA_ENV} is not set: the Kafka contract tests must run in CI")
            pytest.skip(f"set {KAFKA_ENV} (host:port of a Kafka broker) to run the Kafka contract tests")
        implementation = KafkaBus(
            bootstrap, client_id=f"contract-{uuid.uuid4().hex[:8]}", partitions=3, request_timeout_ms=15000,
            security=kafka_access(bootstrap).security(ADMIN),
        )
    await implementation.start()
    try:
        yield implementation
    finally:
        await implementation.stop()


def unique(name: str) -> str:
    return f"contract.{name}.{uuid.uuid4().hex[:12]}"


@asynccontextmanager
async def running(consumer: BusConsumer) -> AsyncIterator[BusConsumer]:
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


async def drain(consumer: BusConsumer, expected: int, *, max_records: int = 500) -> list[BusRecord]:
    """Fetch until ``expected`` records have arrived (never more than that in one fetch)."""
    received: list[BusRecord] = []
    deadline = time.monotonic() + DEADLINE_S
    while len(received) < expected:
        assert time.monotonic() < deadline, f"only {len(received)} of {expected} records arrived"
        received += await consumer.fetch(timeout_s=0.5, max_records=min(max_records, expected - len(received)))
    assert len(received) == expected
    return received


async def assert_nothing_more(consumer: BusConsumer) -> None:
    assert await consumer.fetch(timeout_s=1.0) == []


def by_key(records: Sequence[BusRecord | OutgoingRecord]) -> dict[bytes | None, list[bytes]]:
    values: dict[bytes | None, list[bytes]] = defaultdict(list)
    for record in records:
        values[record.key].append(record.value)
    return dict(values)


async def test_round_trip_preserves_key_value_headers_and_order_within_a_key(bus: Bus) -> None:
    topic = unique("round-trip")
    await bus.ensure_topics([topic])
    headers = (
        ("message-id", b"m-1"),
        ("purpose", b"sostegno-abitativo"),
        ("binary", bytes(range(256))),
        ("repeated", b"first"),
        ("repeated", b"second"),
    )
    sent = [
        OutgoingRecord(topic=topic, key=f"subject-{n % 4}".encode(), value=f'{{"n":{n}}}'.encode(), headers=headers)
        for n in range(40)
    ]
    sent.append(OutgoingRecord(topic=topic, value=b"no key, no headers"))
    before_ms = time.time_ns() // 1_000_000
    await bus.publish(sent)

    async with running(bus.consumer(unique("group"), [topic])) as consumer:
        received = await drain(consumer, len(sent))
        await assert_nothing_more(consumer)

    assert by_key(received) == by_key(sent)
    for record in received:
        assert record.topic == topic
        assert record.headers == (() if record.key is None else headers)
        assert record.header("purpose") == ("sostegno-abitativo" if record.key else None)
        assert before_ms - 60_000 <= record.timestamp_ms <= time.time_ns() // 1_000_000 + 60_000
    partitions_of_key = defaultdict(set)
    for record in received:
        partitions_of_key[record.key].add(record.partition)
    assert all(len(partitions) == 1 for partitions in partitions_of_key.values())
    offsets = defaultdict(list)
    for record in received:
        offsets[record.partition].append(record.offset)
    assert all(values == sorted(values) and len(set(values)) == len(values) for values in offsets.values())


async def test_a_group_resumes_after_its_commit_and_redelivers_what_it_did_not_commit(bus: Bus) -> None:
    topic = unique("resume")
    group = unique("group")
    await bus.ensure_topics([topic])
    values = [f"record-{n}".encode() for n in range(10)]
    await bus.publish([OutgoingRecord(topic=topic, key=b"subject-1", value=value) for value in values])

    async with running(bus.consumer(group, [topic])) as first:
        handled = await drain(first, 6, max_records=6)
        await first.commit()
    assert [record.value for record in handled] == values[:6]

    async with running(bus.consumer(group, [topic])) as second:
        rest = await drain(second, 4)
        await assert_nothing_more(second)
        # Stopped without commit: a crash before the work was durable.
    assert [record.value for record in rest] == values[6:]

    async with running(bus.consumer(group, [topic])) as third:
        again = await drain(third, 4)
        await assert_nothing_more(third)
        await third.commit()
    assert [record.value for record in again] == values[6:]
    assert [record.offset for record in again] == [record.offset for record in rest]

    await bus.publish([OutgoingRecord(topic=topic, key=b"subject-1", value=b"later")])
    async with running(bus.consumer(group, [topic])) as fourth:
        latest = await drain(fourth, 1)
        await assert_nothing_more(fourth)
    assert [record.value for record in latest] == [b"later"]


async def test_group_lag_counts_what_the_group_has_not_committed(bus: Bus) -> None:
    """The consumer lag metric's source: records past the group's committed offsets, per topic (a group that never
    committed counts from the first record)."""
    topic, other = unique("lag"), unique("lag-other")
    group = unique("group")
    await bus.ensure_topics([topic, other])
    await bus.publish([OutgoingRecord(topic=topic, key=f"k-{n % 3}".encode(), value=b"v") for n in range(10)])
    await bus.publish([OutgoingRecord(topic=other, key=b"k", value=b"v") for _ in range(2)])
    assert await bus.group_lag(group, [topic, other]) == {topic: 10, other: 2}
    async with running(bus.consumer(group, [topic])) as consumer:
        await drain(consumer, 10)
        await consumer.commit()
    assert await bus.group_lag(group, [topic, other]) == {topic: 0, other: 2}
    await bus.publish([OutgoingRecord(topic=topic, key=b"k", value=b"later")])
    assert await bus.group_lag(group, [topic]) == {topic: 1}


async def test_commit_without_new_records_keeps_the_position(bus: Bus) -> None:
    topic = unique("idle-commit")
    group = unique("group")
    await bus.ensure_topics([topic])
    await bus.publish([OutgoingRecord(topic=topic, key=b"k", value=b"one")])
    async with running(bus.consumer(group, [topic])) as consumer:
        await drain(consumer, 1)
        await consumer.commit()
        await consumer.commit()
    await bus.publish([OutgoingRecord(topic=topic, key=b"k", value=b"two")])
    async with running(bus.consumer(group, [topic])) as consumer:
        assert [record.value for record in await drain(consumer, 1)] == [b"two"]


async def test_different_groups_each_see_every_record(bus: Bus) -> None:
    topic = unique("fan-out")
    await bus.ensure_topics([topic])
    sent = [OutgoingRecord(topic=topic, key=f"s-{n % 5}".encode(), value=str(n).encode()) for n in range(20)]
    await bus.publish(sent)

    async with running(bus.consumer(unique("audit"), [topic])) as audit:
        seen_by_audit = await drain(audit, 20)
        await audit.commit()
    async with running(bus.consumer(unique("relay"), [topic])) as relay:
        seen_by_relay = await drain(relay, 20)

    expected = sorted(record.value for record in sent)
    assert sorted(record.value for record in seen_by_audit) == expected
    assert sorted(record.value for record in seen_by_relay) == expected


async def test_one_consumer_reads_several_topics(bus: Bus) -> None:
    topics = [unique("out"), unique("status")]
    await bus.ensure_topics(topics)
    await bus.publish([OutgoingRecord(topic=topic, key=b"k", value=topic.encode()) for topic in topics])
    async with running(bus.consumer(unique("group"), topics)) as consumer:
        received = await drain(consumer, 2)
    assert sorted((record.topic, record.value) for record in received) == sorted((t, t.encode()) for t in topics)


async def test_publishing_to_an_unknown_topic_fails_and_creates_nothing(bus: Bus) -> None:
    missing = unique("missing")
    known = unique("known")
    await bus.ensure_topics([known])
    started = time.monotonic()
    with pytest.raises(UnknownTopicError) as raised:
        await bus.publish([OutgoingRecord(topic=missing, value=b"lost?")])
    assert raised.value.topics == (missing,)
    assert raised.value.retriable is False
    assert time.monotonic() - started < 10.0

    # A batch mixing a known and an unknown topic is refused too, and still nothing is created.
    with pytest.raises(UnknownTopicError):
        await bus.publish([OutgoingRecord(topic=known, value=b"a"), OutgoingRecord(topic=missing, value=b"b")])

    await bus.ensure_topics([missing])
    await bus.publish([OutgoingRecord(topic=missing, value=b"now it exists")])
    async with running(bus.consumer(unique("group"), [missing])) as consumer:
        received = await drain(consumer, 1)
        await assert_nothing_more(consumer)
    assert received[0].value == b"now it exists"


async def test_fetch_with_nothing_available_returns_empty_within_about_the_timeout(bus: Bus) -> None:
    topic = unique("quiet")
    await bus.ensure_topics([topic])
    async with running(bus.consumer(unique("group"), [topic])) as consumer:
        for timeout_s in (0.3, 1.0):
            started = time.monotonic()
            assert await consumer.fetch(timeout_s=timeout_s) == []
            elapsed = time.monotonic() - started
            assert timeout_s * 0.8 <= elapsed < timeout_s + 2.0
        started = time.monotonic()
        assert await consumer.fetch(timeout_s=0) == []
        assert time.monotonic() - started < 2.0


async def test_a_waiting_fetch_returns_as_soon_as_a_record_arrives(bus: Bus) -> None:
    topic = unique("wake")
    await bus.ensure_topics([topic])
    async with running(bus.consumer(unique("group"), [topic])) as consumer:
        await consumer.fetch(timeout_s=0.5)  # joins the group (Kafka)
        await bus.publish([OutgoingRecord(topic=topic, key=b"k", value=b"ping")])
        started = time.monotonic()
        received = await drain(consumer, 1)
        assert time.monotonic() - started < 10.0
    assert received[0].value == b"ping"


async def test_ensure_topics_is_idempotent(bus: Bus) -> None:
    topic = unique("idempotent")
    await bus.ensure_topics([topic])
    await bus.ensure_topics([topic, topic])
    await bus.ensure_topics([])
    await bus.publish([OutgoingRecord(topic=topic, key=b"k", value=b"v")])
    await bus.ensure_topics([topic])
    async with running(bus.consumer(unique("group"), [topic])) as consumer:
        received = await drain(consumer, 1)
        await assert_nothing_more(consumer)
    assert received[0].value == b"v"


async def test_a_batch_of_a_thousand_records_all_arrive_in_order_per_key(bus: Bus) -> None:
    topic = unique("batch")
    await bus.ensure_topics([topic])
    sent = [
        OutgoingRecord(
            topic=topic,
            key=f"subject-{n % 10}".encode(),
            value=f'{{"n":{n},"pad":"{"x" * 200}"}}'.encode(),
            headers=(("message-id", f"m-{n}".encode()),),
        )
        for n in range(1000)
    ]
    await bus.publish(sent)
    async with running(bus.consumer(unique("group"), [topic])) as consumer:
        received = await drain(consumer, 1000)
        await assert_nothing_more(consumer)
    assert by_key(received) == by_key(sent)
    assert sorted(record.header("message-id") or "" for record in received) == sorted(f"m-{n}" for n in range(1000))


async def test_read_returns_a_partition_from_an_offset_outside_any_group(bus: Bus) -> None:
    """Dead-letter re-drive reads a record back from its coordinates: what ``read`` returns is what a group
    member fetched at those offsets, and reading commits nothing (a group afterwards still sees everything)."""
    topic = unique("read-at")
    await bus.ensure_topics([topic])
    assert await bus.partitions(topic) == [0, 1, 2]
    sent = [OutgoingRecord(topic=topic, key=b"one-key", value=f"v{n}".encode(), headers=(("n", str(n).encode()),))
            for n in range(12)]
    await bus.publish(sent)
    async with running(bus.consumer(unique("group"), [topic])) as consumer:
        fetched = await drain(consumer, len(sent))
    partition = fetched[0].partition
    base = fetched[0].offset

    middle = await bus.read(topic, partition, base + 5, max_records=3)
    assert [(r.offset, r.value, r.header("n")) for r in middle] == [
        (base + n, f"v{n}".encode(), str(n)) for n in (5, 6, 7)]
    assert middle == [r for r in fetched if base + 5 <= r.offset <= base + 7]
    assert [r.value for r in await bus.read(topic, partition, base)] == [r.value for r in sent]
    assert await bus.read(topic, partition, base + len(sent)) == []  # the end of the partition
    other = next(p for p in await bus.partitions(topic) if p != partition)
    assert await bus.read(topic, other, 0) == []

    async with running(bus.consumer(unique("group"), [topic])) as consumer:
        assert len(await drain(consumer, len(sent))) == len(sent)


async def test_read_and_partitions_of_an_unknown_topic_fail(bus: Bus) -> None:
    topic = unique("never-created")
    with pytest.raises(UnknownTopicError):
        await bus.partitions(topic)
    with pytest.raises(UnknownTopicError):
        await bus.read(topic, 0, 0)
    known = unique("known")
    await bus.ensure_topics([known])
    with pytest.raises(UnknownTopicError):
        await bus.read(known, 7, 0)


async def test_embedded_log_survives_reopening_the_file(tmp_path: Path) -> None:
    path = tmp_path / "var" / "bus.sqlite3"
    topic, group = unique("durable"), unique("group")
    first = EmbeddedBus(path, partitions=2)
    await first.start()
    try:
        await first.ensure_topics([topic])
        await first.publish(
            [
                OutgoingRecord(topic=topic, key=b"subject", value=f"{n}".encode(), headers=(("n", b"%d" % n),))
                for n in range(5)
            ]
        )
        async with running(first.consumer(group, [topic])) as consumer:
            await drain(consumer, 3, max_records=3)
            await consumer.commit()
    finally:
        await first.stop()

    second = EmbeddedBus(path, partitions=2)
    await second.start()
    try:
        await second.publish([OutgoingRecord(topic=topic, key=b"subject", value=b"5", headers=(("n", b"5"),))])
        async with running(second.consumer(group, [topic])) as consumer:
            rest = await drain(consumer, 3)
            await assert_nothing_more(consumer)
    finally:
        await second.stop()
    assert [record.value for record in rest] == [b"3", b"4", b"5"]
    assert [record.header("n") for record in rest] == ["3", "4", "5"]
    assert [record.offset for record in rest] == [3, 4, 5]
    assert len({record.partition for record in rest}) == 1


async def test_embedded_second_member_of_a_group_reads_the_same_records(tmp_path: Path) -> None:
    """Documented behaviour: no partition assignment in the embedded bus, so members duplicate (at least once)."""
    bus = EmbeddedBus(tmp_path / "bus.sqlite3")
    await bus.start()
    try:
        topic, group = unique("members"), unique("group")
        await bus.ensure_topics([topic])
        await bus.publish([OutgoingRecord(topic=topic, key=b"k", value=b"%d" % n) for n in range(3)])
        async with running(bus.consumer(group, [topic])) as one, running(bus.consumer(group, [topic])) as two:
            assert [r.value for r in await drain(one, 3)] == [b"0", b"1", b"2"]
            assert [r.value for r in await drain(two, 3)] == [b"0", b"1", b"2"]
            await two.commit()
            await one.commit()
        async with running(bus.consumer(group, [topic])) as after:
            await assert_nothing_more(after)
    finally:
        await bus.stop()


PROJECT_ROOT = Path(__file__).resolve().parents[2]
WRITER = """
import asyncio, sys
from pathlib import Path
from gateway.bus import EmbeddedBus, OutgoingRecord

async def main() -> None:
    bus = EmbeddedBus(Path(sys.argv[1]), partitions=2)
    await bus.start()
    for n in range(50):
        await bus.publish([OutgoingRecord(topic=sys.argv[2], key=b"%d" % (n % 4), value=b"other-%d" % n)] * 4)
    await bus.stop()

asyncio.run(main())
"""


async def test_embedded_log_is_shared_by_several_processes(tmp_path: Path) -> None:
    """Two processes append to one file at once: every record lands once, offsets stay gap-free."""
    path = tmp_path / "bus.sqlite3"
    topic = unique("shared")
    bus = EmbeddedBus(path, partitions=2)
    await bus.start()
    try:
        await bus.ensure_topics([topic])
        pythonpath = [str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, pythonpath))}
        async with running(bus.consumer(unique("group"), [topic])) as consumer:
            writer = await asyncio.create_subprocess_exec(sys.executable, "-c", WRITER, str(path), topic, env=env)
            mine = 0
            while mine < 50 or (writer.returncode is None and mine < 5000):  # keep appending while it does
                await bus.publish([OutgoingRecord(topic=topic, key=b"%d" % (mine % 4), value=b"this-%d" % mine)] * 4)
                mine += 1
            assert await writer.wait() == 0
            received = await drain(consumer, 4 * (mine + 50))
            await assert_nothing_more(consumer)
    finally:
        await bus.stop()
    offsets = defaultdict(list)
    for record in received:
        offsets[record.partition].append(record.offset)
    assert all(values == list(range(len(values))) for values in offsets.values())
    values = [record.value for record in received]
    assert sorted(set(values)) == sorted({b"this-%d" % n for n in range(mine)} | {b"other-%d" % n for n in range(50)})


async def test_embedded_refuses_invalid_topic_names(tmp_path: Path) -> None:
    bus = EmbeddedBus(tmp_path / "bus.sqlite3")
    await bus.start()
    try:
        for name in ("", "in/aler", "..", "x" * 250, "spazio topic"):
            with pytest.raises(ValueError, match="invalid topic name"):
                await bus.ensure_topics([name])
    finally:
        await bus.stop()
