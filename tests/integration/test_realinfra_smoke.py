"""Smoke tests for the real test infrastructure started by ``scripts/realinfra.py``.

They prove that the Kafka broker and the PostgreSQL server exported through
``GATEWAY_TEST_KAFKA_BOOTSTRAP`` and ``GATEWAY_TEST_POSTGRES_DSN`` really work from Python:
a topic is created with aiokafka's admin client and one message makes a produce/consume round
trip through a consumer group, all logged in as the broker's super user with the SASL credentials of
``GATEWAY_TEST_KAFKA_CREDENTIALS``; asyncpg connects with the DSN and asks for the server version.

Without the variables the tests skip locally and fail in CI (``CI=true``), because CI must never
silently run without the real services.
"""

from __future__ import annotations

import asyncio
import os
import uuid

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.kafka_access import ADMIN, kafka_access

KAFKA_ENV_VAR = "GATEWAY_TEST_KAFKA_BOOTSTRAP"
POSTGRES_ENV_VAR = "GATEWAY_TEST_POSTGRES_DSN"
ROUND_TRIP_TIMEOUT_S = 60.0


def require_env(name: str) -> str:
    """Return the variable's value; fail in CI and skip elsewhere when it is missing."""
    value = os.environ.get(name, "").strip()
    if value:
        return value
    reason = f"{name} is not set; run through: python3 scripts/realinfra.py run -- pytest ..."
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


async def create_topic(bootstrap: str, topic: str) -> None:
    """Create a one-partition topic with aiokafka's admin client."""
    admin = AIOKafkaAdminClient(**kafka_access(bootstrap).client_options(ADMIN))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name=topic, num_partitions=1, replication_factor=1)])
        assert topic in await admin.list_topics()
    finally:
        await admin.close()


async def produce(bootstrap: str, topic: str, key: bytes, value: bytes) -> None:
    """Send one message with an idempotent producer and wait for the acknowledgement."""
    producer = AIOKafkaProducer(**kafka_access(bootstrap).client_options(ADMIN), enable_idempotence=True, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value=value, key=key)
    finally:
        await producer.stop()


async def consume_one(bootstrap: str, topic: str) -> tuple[bytes | None, bytes | None]:
    """Read the first message of the topic through a fresh consumer group."""
    consumer = AIOKafkaConsumer(
        topic,
        **kafka_access(bootstrap).client_options(ADMIN),
        group_id=f"smoke-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        record = await consumer.getone()
        await consumer.commit()
        return record.key, record.value
    finally:
        await consumer.stop()


async def kafka_round_trip(bootstrap: str) -> tuple[bytes | None, bytes | None]:
    """Create a topic, produce one message and consume it back."""
    topic = f"realinfra-smoke-{uuid.uuid4().hex}"
    await create_topic(bootstrap, topic)
    await produce(bootstrap, topic, key=b"smoke-key", value=b"\x00smoke \xe2\x9c\x93 payload\xff")
    return await asyncio.wait_for(consume_one(bootstrap, topic), timeout=ROUND_TRIP_TIMEOUT_S)


async def postgres_version(dsn: str) -> str:
    """Connect with asyncpg and return ``select version()``."""
    connection = await asyncpg.connect(dsn.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        version: str = await connection.fetchval("select version()")
        return version
    finally:
        await connection.close()


@pytest.mark.kafka
def test_kafka_topic_produce_consume_round_trip() -> None:
    bootstrap = require_env(KAFKA_ENV_VAR)

    key, value = asyncio.run(kafka_round_trip(bootstrap))

    assert key == b"smoke-key"
    assert value == b"\x00smoke \xe2\x9c\x93 payload\xff"


@pytest.mark.postgres
def test_postgres_select_version() -> None:
    dsn = require_env(POSTGRES_ENV_VAR)

    version = asyncio.run(postgres_version(dsn))

    assert "PostgreSQL" in version
