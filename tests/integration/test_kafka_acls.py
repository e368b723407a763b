"""The broker, not good manners, decides who writes ``in.<partner>``: SASL/SCRAM logins and KRaft ACLs.

Runs against the real broker of ``scripts/realinfra.py`` (SASL/SCRAM-SHA-512, ``StandardAuthorizer``, users drawn
per run). Each test takes a fresh topic prefix, creates exactly the grants a deployment has
(:func:`gateway.bus.acls.kafka_grants`) for that prefix, and acts as ALER, FWA or the gateway with their own
credentials. Nothing here may skip in CI.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
)

from gateway.auth import PartnerClient
from gateway.bootstrap import Gateway, build
from gateway.bus import BusUnavailable, OutgoingRecord
from gateway.bus.acls import kafka_grants
from gateway.identity.synthetic import SyntheticTenant, generate_tenants
from gateway.policy import load_registry
from gateway.settings import GatewaySettings, TopicSettings
from gateway.simulators import aler_arrears_message, fhir_consent
from tests.conftest import KAFKA_ENV, require_env
from tests.kafka_access import CREDENTIALS_ENV, KafkaAccess, kafka_access

DEADLINE_S = 60.0


@pytest.fixture
def access() -> KafkaAccess:
    """The test broker; it must authenticate (the whole point of these tests)."""
    found = kafka_access(require_env(KAFKA_ENV, "Kafka"))
    if not found.authenticated:
        require_env("GATEWAY_TEST_KAFKA_CREDENTIALS_REQUIRED_BUT_MISSING", f"Kafka ACL ({CREDENTIALS_ENV})")
    return found


@pytest.fixture
async def topics(access: KafkaAccess) -> TopicSettings:
    """A fresh prefix with the deployment's grants (gateway and every partner) on it."""
    settings = TopicSettings(prefix=f"acl{uuid.uuid4().hex[:8]}.", partitions=1)
    registry = load_registry()
    restricted = {flow.recipient for flow in registry.flows if flow.restricted_topic}
    await access.grant(kafka_grants(registry.exchanging(), restricted, settings))
    return settings


@pytest.fixture
async def gateway(access: KafkaAccess, topics: TopicSettings, tmp_path: Path,
                  clients: tuple[PartnerClient, ...]) -> AsyncIterator[Gateway]:
    """A started gateway logged in as the ``gateway`` principal, holding the production grants only; it creates
    the prefix's topics itself."""
    settings = GatewaySettings(data_dir=tmp_path / "var", bus="kafka", topics=topics,  # type: ignore[arg-type]
                               **access.settings("gateway"))
    gw = build(settings, clients=clients)
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop()


async def produce(access: KafkaAccess, user: str, topic: str, value: bytes, password: str | None = None) -> None:
    """One acknowledged record written as ``user``."""
    producer = AIOKafkaProducer(**access.client_options(user, password), client_id=f"acl-{user}",
                                acks="all", enable_idempotence=True, request_timeout_ms=15000)
    try:
        await producer.start()
        await producer.send_and_wait(topic, value, headers=[("request-id", b"req-acl")])
    finally:
        await producer.stop()


async def consume(access: KafkaAccess, user: str, topic: str, group: str, count: int) -> list[Any]:
    """Read ``count`` records of ``topic`` from the start as ``user`` in consumer group ``group``."""
    consumer = AIOKafkaConsumer(topic, **access.client_options(user), client_id=f"acl-{user}", group_id=group,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    records: list[Any] = []
    try:
        await consumer.start()
        deadline = time.monotonic() + DEADLINE_S
        while len(records) < count:
            assert time.monotonic() < deadline, f"{len(records)} of {count} records on {topic}"
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records += batch
    finally:
        await consumer.stop()
    return records


def tenant(seed: int) -> SyntheticTenant:
    return next(t for t in generate_tenants("S", seed=seed, limit=50) if t.arrears_cents > 0)


async def test_aler_may_write_only_its_own_in_topic(access: KafkaAccess, gateway: Gateway,
                                                    topics: TopicSettings) -> None:
    with pytest.raises(TopicAuthorizationFailedError):
        await produce(access, "aler", topics.name("in", "comune"), b'{"posing-as": "comune"}')
    with pytest.raises(TopicAuthorizationFailedError):  # nor the gateway's own outgoing topics
        await produce(access, "aler", topics.name("out", "fwa"), b'{"posing-as": "gateway"}')
    await produce(access, "aler", topics.name("in", "aler"), b'{"not": "a valid message"}')
    # The gateway read it from in.aler and dead-lettered it to ALER's own dlq: ALER reads it with its own group.
    [dead] = await consume(access, "aler", topics.name("dlq", "aler"), "aler.dlq-reader", 1)
    assert dead.topic == topics.name("dlq", "aler")


async def test_aler_may_read_only_its_own_out_topics_with_its_own_groups(access: KafkaAccess, gateway: Gateway,
                                                                         topics: TopicSettings) -> None:
    await gateway.bus.publish([OutgoingRecord(topic=topics.name("out", "aler"), value=b"for aler")])
    [record] = await consume(access, "aler", topics.name("out", "aler"), "aler.inbox", 1)
    assert record.value == b"for aler"

    with pytest.raises(TopicAuthorizationFailedError):
        await consume(access, "aler", topics.name("out", "fwa"), "aler.snoop", 1)
    with pytest.raises(GroupAuthorizationFailedError):  # a group id that is not ALER's
        await consume(access, "aler", topics.name("out", "aler"), "fwa.inbox", 1)


async def test_a_wrong_password_is_refused(access: KafkaAccess, gateway: Gateway, topics: TopicSettings,
                                          caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(KafkaConnectionError):  # aiokafka reports the refused login as "unable to bootstrap"
        await produce(access, "aler", topics.name("in", "aler"), b"{}", password="not-the-password")
    assert "SaslAuthenticationFailed" in caplog.text, "refused at login by the broker, not unreachable"
    assert "not-the-password" not in caplog.text
    await produce(access, "aler", topics.name("in", "aler"), b"{}")  # the right password is let in


async def test_the_gateway_cannot_pose_as_a_partner(gateway: Gateway, topics: TopicSettings) -> None:
    with pytest.raises(BusUnavailable) as refused:
        await gateway.bus.publish([OutgoingRecord(topic=topics.name("in", "comune"), value=b"{}")])
    assert "TopicAuthorizationFailed" in str(refused.value) and not refused.value.retriable


async def test_f1_end_to_end_with_each_party_on_its_own_principal(access: KafkaAccess, gateway: Gateway,
                                                                  topics: TopicSettings) -> None:
    """ALER writes in.aler as ALER, the gateway (production grants only) forwards, FWA reads out.fwa as FWA."""
    person = tenant(11)
    consent = await gateway.consents.record(fhir_consent(person.cf), "aler", "aler-test", "req-consent")
    await produce(access, "aler", topics.name("in", "aler"), orjson.dumps(aler_arrears_message(person, "m-acl")))

    referral, status = await asyncio.gather(
        consume(access, "fwa", topics.name("out", "fwa"), "fwa.referrals", 1),
        consume(access, "aler", topics.name("status", "aler"), "aler.status", 1),
    )
    body = orjson.loads(referral[0].value)
    assert body["riferimento_consenso"] == f"{consent.consent_id}@1"
    assert body["richiedente"] == {"codice_fiscale": person.cf}
    assert orjson.loads(status[0].value)["state"] == "forwarded"
    assert orjson.loads(status[0].value)["message_id"] == "m-acl"
