"""A worker never dies silently (issue 9, points 1-3), on a real Kafka broker and a real PostgreSQL server.

- a commit the consumer group refuses because it rebalanced is absorbed: the consumer keeps consuming, the
  batch is read again and no message is decided twice;
- a long-running task that ends is restarted with back-off, and readiness says so; one that keeps failing
  makes the gateway give up (the command then exits non-zero) instead of lingering half-alive;
- ``Gateway.stop()`` closes the bus and the store even when a task fails while stopping, then reports it;
- a gateway started before PostgreSQL and Kafka answer waits for them (not ready meanwhile), and gives up
  naming the one it could not reach once the configured wait is over.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.api import create_app
from gateway.auth import PartnerClient
from gateway.bootstrap import DependencyTimeout, Gateway, GatewayStopError, build
from gateway.bus import BusUnavailable, OutgoingRecord
from gateway.pipeline import Submission
from gateway.settings import GatewaySettings
from gateway.simulators import aler_arrears_message
from schemas.envelope import Envelope
from tests.conftest import POSTGRES_ENV, REAL, require_env
from tests.e2e.test_f1_microcredit_referral import audit_records, tenant

DEADLINE_S = 60.0


async def real_settings(settings_for: Callable[..., Any], **updates: Any) -> GatewaySettings:
    settings: GatewaySettings = await settings_for(REAL)
    return settings.model_copy(update=updates)


async def submit(gateway: Gateway, ids: list[str], seed: int) -> None:
    person = tenant(seed)
    topic = gateway.settings.topics.name("in", "aler")
    await gateway.bus.publish([OutgoingRecord(topic=topic, value=orjson.dumps(aler_arrears_message(person, i)),
                                              key=i.encode()) for i in ids])


async def decisions_until(gateway: Gateway, count: int) -> list[str]:
    """Message ids of the decision records, once there are at least ``count`` of them."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        decided = [i for r in await audit_records(gateway) if r["event_type"] == "decision" for i in r["message_ids"]]
        if len(decided) >= count:
            return decided
        assert time.monotonic() < deadline, f"{len(decided)} of {count} messages decided"
        await asyncio.sleep(0.2)


@pytest.fixture
async def started(settings_for: Callable[..., Any], clients: tuple[PartnerClient, ...]) -> AsyncIterator[
        Callable[..., Any]]:
    """Factory of started gateways on the real backends; every one is stopped afterwards."""
    made: list[Gateway] = []

    async def start(before_start: Callable[[Gateway], None] | None = None, **updates: Any) -> Gateway:
        gateway = build(await real_settings(settings_for, **updates), clients=clients)
        made.append(gateway)
        if before_start is not None:
            before_start(gateway)
        await gateway.start()
        return gateway

    yield start
    for gateway in made:
        if gateway.state != "stopped":
            await gateway.stop()


async def test_consumer_keeps_consuming_after_the_group_refuses_its_commit(started: Callable[..., Any]) -> None:
    """Two members share the group. One takes longer over a batch than its poll interval allows, so the group
    counts it gone, gives its partitions to the other and refuses its commit (aiokafka's CommitFailedError):
    it keeps consuming without a restart, its batch is read again and no message is decided twice."""
    slow: Gateway = await started(kafka_max_poll_interval_ms=1000)
    other = build(slow.settings.model_copy(update={"instance_id": "other-worker",
                                                   "kafka_max_poll_interval_ms": 300_000}), clients=slow.clients)
    await other.start()
    try:
        real_process = slow.intake.process
        held: list[int] = []

        async def slow_first_batch(items: list[tuple[Envelope, Submission]], **kwargs: Any) -> Any:
            result = await real_process(items, **kwargs)
            if items and not held:
                held.append(len(items))
                await asyncio.sleep(4)  # past max_poll_interval: the group drops this member before its commit
            return result

        slow.intake.process = slow_first_batch  # type: ignore[method-assign]
        deadline = time.monotonic() + DEADLINE_S
        while not (slow.consumer.progress.assigned and other.consumer.progress.assigned):
            assert time.monotonic() < deadline, "the two members never shared the partitions"
            await asyncio.sleep(0.2)

        first = [f"m-first-{i}" for i in range(10)]
        await submit(slow, first, seed=11)
        await decisions_until(slow, len(first))
        while not (held and slow.consumer.progress.commits + slow.consumer.progress.commit_failures >= 1):
            assert time.monotonic() < deadline, "the slow member never tried to commit"
            await asyncio.sleep(0.2)
        second = [f"m-second-{i}" for i in range(10)]
        await submit(slow, second, seed=12)
        decided = await decisions_until(slow, len(first) + len(second))

        progress = slow.consumer.progress
        assert held, "the slow member never got a batch"
        assert progress.commit_failures >= 1, progress
        assert sorted(decided) == sorted(first + second)  # nothing decided twice although read again
        assert progress.member
        assert slow.supervisor is not None
        consumer_task = slow.supervisor.health()["inbound-consumer"]
        assert (consumer_task.state, consumer_task.restarts) == ("running", 0)  # kept running, not restarted
    finally:
        await other.stop()


async def test_a_second_member_joining_mid_batch_decides_nothing_twice(started: Callable[..., Any]) -> None:
    """A rebalance while a batch is being decided: both members keep consuming, each message decided once."""
    first_gateway: Gateway = await started()
    real_process = first_gateway.intake.process
    release = asyncio.Event()
    held: list[int] = []

    async def held_first_batch(items: list[tuple[Envelope, Submission]], **kwargs: Any) -> Any:
        result = await real_process(items, **kwargs)
        if not held:
            held.append(len(items))
            await release.wait()
        return result

    first_gateway.intake.process = held_first_batch  # type: ignore[method-assign]
    first = [f"m-a-{i}" for i in range(6)]
    await submit(first_gateway, first, seed=13)
    await decisions_until(first_gateway, 1)
    # same database and topics, another process: its consumer joins the group while the first holds a batch
    second_gateway = build(first_gateway.settings.model_copy(update={"instance_id": "second-worker"}),
                           clients=first_gateway.clients)
    await second_gateway.start()
    try:
        release.set()
        second = [f"m-b-{i}" for i in range(6)]
        await submit(first_gateway, second, seed=14)
        decided = await decisions_until(first_gateway, len(first) + len(second))
        assert sorted(decided) == sorted(first + second)
        for gateway in (first_gateway, second_gateway):
            assert gateway.supervisor is not None
            assert gateway.supervisor.healthy(), gateway.supervisor.health()
            assert gateway.consumer.progress.member
    finally:
        await second_gateway.stop()


def members_failing(gateway: Gateway, monkeypatch: pytest.MonkeyPatch, failing_members: int) -> None:
    """The first ``failing_members`` consumers the gateway creates join the real group, then fail on their first
    fetch with a non-retriable bus error (as a broken broker connection would end the consumer task)."""
    real_consumer = gateway.bus.consumer
    made: list[int] = []

    def consumer(group_id: str, topics: list[str]) -> Any:
        member = real_consumer(group_id, topics)
        made.append(1)
        if len(made) <= failing_members:
            async def fetch(timeout_s: float, max_records: int = 500) -> Any:
                raise BusUnavailable("Kafka: connection broken (injected)", retriable=False)

            monkeypatch.setattr(member, "fetch", fetch)
        return member

    monkeypatch.setattr(gateway.bus, "consumer", consumer)


async def readiness(gateway: Gateway) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(gateway, manage_lifecycle=False)),
                                 base_url="https://testserver") as http:
        return await http.get("/health/ready")


async def test_a_consumer_task_that_dies_is_restarted_and_keeps_consuming(
        started: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    gateway: Gateway = await started(before_start=lambda gw: members_failing(gw, monkeypatch, 2))

    await submit(gateway, ["m-after-restarts"], seed=15)
    assert await decisions_until(gateway, 1) == ["m-after-restarts"]
    assert gateway.supervisor is not None
    health = gateway.supervisor.health()["inbound-consumer"]
    assert (health.state, health.restarts, health.last_error) == ("running", 2, "BusUnavailable")
    answer = await readiness(gateway)
    assert answer.status_code == 200, answer.text
    assert answer.json()["workers"]["inbound-consumer"]["restarts"] == 2
    assert answer.json()["consumer"]["member"] is True


async def test_a_task_that_keeps_failing_makes_the_gateway_give_up_and_readiness_name_it(
        started: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    gateway: Gateway = await started(task_restart_limit=1,
                                     before_start=lambda gw: members_failing(gw, monkeypatch, 10**6))
    assert gateway.failed is not None
    await asyncio.wait_for(gateway.failed.wait(), timeout=DEADLINE_S)  # the command exits non-zero on this
    assert gateway.supervisor is not None
    health = gateway.supervisor.health()
    assert health["inbound-consumer"].state == "failed"
    assert health["relay"].state == "running"
    answer = await readiness(gateway)
    assert answer.status_code == 503
    assert answer.json()["status"] == "not-ready"
    assert "worker:inbound-consumer" in answer.json()["failing"]


async def connections_closed(url: str, within_s: float = 5.0) -> bool:
    """Whether every connection on the database at ``url`` is gone within ``within_s``: a server process ends a
    moment after its client closed the connection, so a busy machine may still list it briefly."""
    deadline = time.monotonic() + within_s
    while await database_connections(url) > 0:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


async def database_connections(url: str) -> int:
    """Connections other than this one open on the database at ``url``."""
    database = make_url(url).database
    engine = create_async_engine(require_env(POSTGRES_ENV, "PostgreSQL"))
    try:
        async with engine.connect() as conn:
            result = await conn.execute(text("select count(*) from pg_stat_activity where datname = :d "
                                             "and pid <> pg_backend_pid()"), {"d": database})
            return int(result.scalar_one())
    finally:
        await engine.dispose()


async def test_stop_closes_bus_and_store_even_when_a_task_fails_while_stopping(
        started: Callable[..., Any]) -> None:
    def checkpointer_failing_on_stop(gateway: Gateway) -> None:
        async def run(stop: asyncio.Event, poll_seconds: float | None = None) -> None:
            await stop.wait()
            raise RuntimeError("injected: the last checkpoint could not be signed")

        gateway.checkpointer.run = run  # type: ignore[method-assign]

    gateway: Gateway = await started(before_start=checkpointer_failing_on_stop)
    await submit(gateway, ["m-stop"], seed=17)
    await decisions_until(gateway, 1)
    assert await database_connections(gateway.settings.resolved_database_url()) > 0

    with pytest.raises(GatewayStopError) as stopped:
        await gateway.stop()

    assert [type(e) for e in stopped.value.exceptions] == [RuntimeError]
    assert gateway.state == "stopped"
    with pytest.raises(RuntimeError, match="not started"):  # the producer was stopped, not left unclosed
        await gateway.bus.publish([OutgoingRecord(topic=gateway.settings.topics.name("in", "aler"), value=b"{}")])
    assert await connections_closed(gateway.settings.resolved_database_url())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def forward(port: int, target_host: str, target_port: int) -> asyncio.Server:
    """A TCP forwarder listening on ``port``: the dependency "comes up" when it starts listening."""
    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            target_reader, target_writer = await asyncio.open_connection(target_host, target_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(pipe(reader, target_writer), pipe(target_reader, writer))

    return await asyncio.start_server(handle, "127.0.0.1", port)


async def test_start_waits_for_postgres_and_kafka_that_come_up_late(
        settings_for: Callable[..., Any], clients: tuple[PartnerClient, ...]) -> None:
    settings = await real_settings(settings_for, startup_wait_seconds=60, startup_backoff_max_seconds=0.5)
    database = make_url(settings.resolved_database_url())
    kafka_host, kafka_port = settings.kafka_bootstrap_servers.split(",")[0].rsplit(":", 1)
    db_port, bus_port = free_port(), free_port()
    late = settings.model_copy(update={
        "database_url": database.set(host="127.0.0.1", port=db_port).render_as_string(hide_password=False),
        "kafka_bootstrap_servers": f"127.0.0.1:{bus_port}"})
    gateway = build(late, clients=clients)
    starting = asyncio.create_task(gateway.start())
    servers: list[asyncio.Server] = []
    try:
        await asyncio.sleep(1.5)
        assert not starting.done(), "gave up although the wait is 60 s"
        answer = await readiness(gateway)
        assert answer.status_code == 503
        assert answer.json()["failing"][0] == "gateway-starting"

        servers.append(await forward(db_port, str(database.host), int(database.port or 5432)))
        await asyncio.sleep(1.0)
        assert not starting.done(), "started without a bus"
        servers.append(await forward(bus_port, kafka_host, int(kafka_port)))
        await asyncio.wait_for(starting, timeout=DEADLINE_S)

        assert gateway.state == "running"
        await submit(gateway, ["m-late"], seed=18)
        assert await decisions_until(gateway, 1) == ["m-late"]
        assert (await readiness(gateway)).status_code == 200
    finally:
        if not starting.done():
            starting.cancel()
        await gateway.stop()
        for server in servers:
            server.close()


async def test_start_gives_up_naming_the_database_it_could_not_reach(
        settings_for: Callable[..., Any], clients: tuple[PartnerClient, ...]) -> None:
    settings = await real_settings(settings_for, startup_wait_seconds=1, startup_backoff_max_seconds=0.2)
    port = free_port()
    unreachable = settings.model_copy(update={"database_url": make_url(settings.resolved_database_url()).set(
        host="127.0.0.1", port=port).render_as_string(hide_password=False)})
    gateway = build(unreachable, clients=clients)
    try:
        with pytest.raises(DependencyTimeout) as gave_up:
            await gateway.start()
    finally:
        await gateway.stop()
    message = str(gave_up.value)
    assert gave_up.value.dependency == "database"
    assert f"127.0.0.1:{port}" in message
    assert "GATEWAY_STARTUP_WAIT_SECONDS" in message
    assert make_url(settings.resolved_database_url()).password not in message
