"""Faults under steady load (issue 9, point 5): two ``gateway worker`` processes on a Kafka broker and a PostgreSQL
server of this test's own, while ALER sends a steady stream of arrears messages (some sent twice), are killed
with ``kill -9`` again and again (each replaced at once by a fresh process, as systemd or Kubernetes would),
and the broker and the database are each restarted once (``scripts/realinfra.py up``: SIGUSR1 kills and
restarts the broker, SIGUSR2 stops PostgreSQL at once and starts it again). Every kill and restart makes the
consumer group rebalance, commits included. The database keeps PostgreSQL's durable defaults (``fsync``,
``synchronous_commit``), as production does: the gateway commits a Kafka offset only after the store said its
decisions were committed, and a database that forgets acknowledged commits in a crash would lose them.

Afterwards, and whatever the timing of the faults:

- every message has exactly one final status (forwarded or denied), and the outbox is empty;
- exactly the permitted referrals reached FWA, told apart by their source message (a referral may arrive more
  than once — delivery is at least once — but always with the same message id), and nothing denied did;
- one decision record per message; the audit log verifies;
- no worker process stayed alive outside its consumer group for more than a few seconds (read from its
  ``gateway_consumer_group_member`` metric, which a worker whose consumer task died would report as 0).

The test takes about three minutes: its own broker starts in 30-60 s, the load runs for 60 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from gateway.audit.verify import verify_log
from gateway.auth import PartnerClient
from gateway.bootstrap import Gateway, build
from gateway.bus import BusRecord, BusUnavailable, OutgoingRecord
from gateway.identity.synthetic import SyntheticTenant, generate_tenants
from gateway.settings import GatewaySettings, TopicSettings
from gateway.simulators import aler_arrears_message, fhir_consent
from tests.conftest import _fresh_postgres_database, harness_grants
from tests.integration.test_worker_supervision import free_port
from tests.kafka_access import CREDENTIALS_ENV, GATEWAY, KafkaAccess, access_from, login_env

ROOT = Path(__file__).resolve().parents[2]
LOAD_SECONDS = 60.0
MESSAGES_PER_TICK = 4
TICK_SECONDS = 0.5
KILL_EVERY_SECONDS = 7.0
BROKER_RESTART_AT = 18.0
DATABASE_RESTART_AT = 40.0
OUTSIDE_GROUP_LIMIT_S = 10.0
"""How long a live worker may report itself outside its consumer group (a restart takes a few seconds)."""
SETTLE_DEADLINE_S = 120.0


@dataclass
class OwnInfra:
    """A broker and a database server of this test's own, and the launcher that restarts them on request."""

    launcher: subprocess.Popen[bytes]
    state_file: Path
    access: KafkaAccess
    postgres_dsn: str

    def state(self) -> dict[str, Any]:
        for _ in range(50):
            with contextlib.suppress(ValueError):
                return json.loads(self.state_file.read_text(encoding="utf-8"))  # type: ignore[no-any-return]
            time.sleep(0.05)  # caught mid-write
        raise AssertionError("the launcher's state file stays unreadable")

    async def restart(self, service: str) -> float:
        """Restart ``kafka`` or ``postgres`` and wait until it is back; returns how long it took."""
        key = f"{service}_restarts"
        before = self.state().get(key, 0)
        started = time.monotonic()
        self.launcher.send_signal(signal.SIGUSR1 if service == "kafka" else signal.SIGUSR2)
        while self.state().get(key, 0) == before:
            assert self.launcher.poll() is None, "the launcher died while restarting " + service
            assert time.monotonic() - started < 180, f"{service} did not come back"
            await asyncio.sleep(0.2)
        return time.monotonic() - started


@pytest.fixture
def own_infra(tmp_path: Path) -> Iterator[OwnInfra]:
    if os.environ.get("CI") != "true" and not os.environ.get("GATEWAY_TEST_KAFKA_BOOTSTRAP"):
        pytest.skip("fault injection starts its own broker and database: run through the test command")
    state = tmp_path / "infra.json"
    # Durable commits: the database is stopped in immediate mode (a crash). With the test command's usual
    # synchronous_commit=off, a commit the gateway was told had succeeded (and whose Kafka offset it then
    # committed) could vanish in that crash, a loss production settings never allow.
    launcher = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "realinfra.py"), "up", "--state-file",
                                 str(state)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env={**os.environ, "REALINFRA_POSTGRES_DURABLE": "1"})
    try:
        deadline = time.monotonic() + 300
        while not state.exists():
            assert launcher.poll() is None, "the launcher exited before its services were up"
            assert time.monotonic() < deadline, "the services did not start in time"
            time.sleep(0.5)
        env = json.loads(state.read_text(encoding="utf-8"))["env"]
        yield OwnInfra(launcher, state, access_from(env["GATEWAY_TEST_KAFKA_BOOTSTRAP"], env.get(CREDENTIALS_ENV, "")),
                       env["GATEWAY_TEST_POSTGRES_DSN"])
    finally:
        if launcher.poll() is None:
            launcher.send_signal(signal.SIGTERM)
        launcher.wait(timeout=180)


@dataclass
class Worker:
    """One ``gateway worker`` process and what was seen of it."""

    name: str
    process: subprocess.Popen[bytes]
    metrics_port: int
    started: float = field(default_factory=time.monotonic)
    joined: bool = False
    outside_since: float | None = None
    longest_outside: float = 0.0


class Workers:
    """Keeps two workers running: a killed or exited one is replaced at once."""

    def __init__(self, settings: GatewaySettings, log_dir: Path) -> None:
        self.settings = settings
        self.log_dir = log_dir
        self.live: list[Worker] = []
        self.ended: list[tuple[Worker, int]] = []
        self.kills = 0
        self._count = 0

    def env(self, name: str, port: int) -> dict[str, str]:
        s = self.settings
        assert s.database_url is not None
        return {
            **os.environ, **login_env(s),
            "GATEWAY_INSTANCE_ID": name, "GATEWAY_DATA_DIR": str(s.data_dir), "GATEWAY_DATABASE_URL": s.database_url,
            "GATEWAY_BUS": "kafka", "GATEWAY_KAFKA_BOOTSTRAP_SERVERS": s.kafka_bootstrap_servers,
            "GATEWAY_TOPICS__PREFIX": s.topics.prefix, "GATEWAY_TOPICS__PARTITIONS": str(s.topics.partitions),
            "GATEWAY_METRICS_PORT": str(port), "GATEWAY_METRICS_SAMPLE_SECONDS": "0.5",
            "GATEWAY_STARTUP_WAIT_SECONDS": "180", "GATEWAY_TASK_RESTART_BACKOFF_MAX_SECONDS": "2",
            "GATEWAY_AUDIT_CHECKPOINT_EVERY_SECONDS": "2", "GATEWAY_LOG_LEVEL": "WARNING",
        }

    def start(self) -> Worker:
        self._count += 1
        name, port = f"worker-{self._count}", free_port()
        with (self.log_dir / f"{name}.log").open("wb") as log:
            process = subprocess.Popen([sys.executable, "-m", "gateway.cli", "worker"], env=self.env(name, port),
                                       stdout=log, stderr=subprocess.STDOUT)
        worker = Worker(name, process, port)
        self.live.append(worker)
        return worker

    def kill_one(self, rng: random.Random) -> None:
        if not self.live:
            return
        victim = rng.choice(self.live)
        victim.process.send_signal(signal.SIGKILL)
        victim.process.wait()
        self.kills += 1
        self.live.remove(victim)
        self.ended.append((victim, victim.process.returncode))
        self.start()

    async def watch(self) -> None:
        """Replace exited workers; track each live one's group membership from its metrics."""
        async with httpx.AsyncClient() as client:
            for worker in list(self.live):
                if worker not in self.live:
                    continue  # killed while this round awaited another worker
                if worker.process.poll() is not None:
                    self.live.remove(worker)
                    self.ended.append((worker, worker.process.returncode))
                    self.start()
                    continue
                try:
                    response = await client.get(f"http://127.0.0.1:{worker.metrics_port}/metrics", timeout=2)
                except httpx.HTTPError:
                    continue  # not serving yet: still starting
                member = next((s.value for f in text_string_to_metric_families(response.text)
                               for s in f.samples if s.name == "gateway_consumer_group_member"), 0.0)
                now = time.monotonic()
                if member == 1:
                    worker.joined, worker.outside_since = True, None
                elif worker.joined:
                    worker.outside_since = worker.outside_since or now
                    worker.longest_outside = max(worker.longest_outside, now - worker.outside_since)

    def stop(self) -> list[int]:
        codes = []
        for worker in self.live:
            worker.process.send_signal(signal.SIGTERM)
        for worker in self.live:
            try:
                codes.append(worker.process.wait(timeout=90))
            except subprocess.TimeoutExpired:
                worker.process.kill()
                codes.append(worker.process.wait())
        return codes


@pytest.fixture
async def harness(own_infra: OwnInfra, tmp_path: Path, clients: tuple[PartnerClient, ...]) -> AsyncIterator[
        tuple[Gateway, OwnInfra]]:
    """The test's own gateway (no workers) on the test's own services: it migrates, creates the topics, records
    consents, plays ALER and FWA, and reads the store afterwards."""
    url, drop = await _fresh_postgres_database(own_infra.postgres_dsn)
    topics = TopicSettings(prefix="fault.", partitions=4)
    await own_infra.access.grant(harness_grants(topics.prefix))
    settings = GatewaySettings(data_dir=tmp_path / "var", database_url=url, bus="kafka", topics=topics,
                               startup_wait_seconds=120, **own_infra.access.settings(GATEWAY))  # type: ignore[arg-type]
    gateway = build(settings, clients=clients)
    await gateway.start(workers=False)
    try:
        durability = dict(await store_query(gateway, "SELECT name, setting FROM pg_settings WHERE name IN "
                                                     "('fsync', 'synchronous_commit')"))
        assert durability == {"fsync": "on", "synchronous_commit": "on"}, durability
        yield gateway, own_infra
    finally:
        with contextlib.suppress(Exception):
            await gateway.stop()
        with contextlib.suppress(Exception):
            await drop()  # type: ignore[operator]


async def publish_until_done(gateway: Gateway, records: list[OutgoingRecord]) -> None:
    """ALER's producer retries while the broker restarts (a retry may write a record twice: a replay)."""
    deadline = time.monotonic() + 180
    while True:
        try:
            await gateway.bus.publish(records)
            return
        except BusUnavailable:
            assert time.monotonic() < deadline, "the broker never came back"
            await asyncio.sleep(0.5)


async def store_query(gateway: Gateway, sql: str) -> list[Any]:
    deadline = time.monotonic() + 60
    while True:
        try:
            async with gateway.store.transaction() as tx:
                return list((await tx.conn.execute(text(sql))).all())
        except Exception:
            assert time.monotonic() < deadline, "the database never came back"
            await asyncio.sleep(0.5)


async def read_fwa(gateway: Gateway, expected: set[str]) -> list[BusRecord]:
    """Everything on out.fwa, once every expected correlation id arrived (and two quiet seconds more)."""
    consumer = gateway.bus.consumer("fault-fwa-reader", [gateway.settings.topics.name("out", "fwa")])
    await consumer.start()
    records: list[BusRecord] = []
    try:
        deadline = time.monotonic() + SETTLE_DEADLINE_S
        while not expected <= {r.header("correlation-id") for r in records}:
            assert time.monotonic() < deadline, "permitted referrals never reached FWA"
            records += await consumer.fetch(timeout_s=0.5)
        quiet_until = time.monotonic() + 2
        while time.monotonic() < quiet_until:
            records += await consumer.fetch(timeout_s=0.5)
    finally:
        await consumer.stop()
    return records


@pytest.fixture
def workers(harness: tuple[Gateway, OwnInfra], tmp_path: Path) -> Iterator[Workers]:
    """The test's worker processes; whatever is still alive when the test ends (a failed assertion included) is
    killed, so that no worker outlives its broker and database."""
    started = Workers(harness[0].settings, tmp_path)
    try:
        yield started
    finally:
        for worker in started.live:
            if worker.process.poll() is None:
                worker.process.kill()
                worker.process.wait()


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_kills_and_restarts_under_load_lose_nothing_and_deliver_nothing_denied(
        harness: tuple[Gateway, OwnInfra], workers: Workers) -> None:
    gateway, infra = harness
    rng = random.Random(9)  # the schedule of faults, not a secret
    test_started = time.monotonic()
    people: list[SyntheticTenant] = [t for t in generate_tenants("S", seed=9, limit=400) if t.arrears_cents > 0][:120]
    consenting = people[::2]
    for person in consenting:
        await gateway.consents.record(fhir_consent(person.cf), "aler", "aler-test", "req-fault-consent")
    permitted_cfs = {p.cf for p in consenting}

    workers.start()
    workers.start()
    topic = gateway.settings.topics.name("in", "aler")
    sent: dict[str, bool] = {}  # message id -> permitted
    restarts: dict[str, float] = {}
    started = time.monotonic()

    def elapsed() -> float:
        return time.monotonic() - started

    async def load() -> None:
        """ALER's steady stream: a few messages every tick, now and then one sent twice."""
        tick = 0
        while elapsed() < LOAD_SECONDS:
            batch = []
            for _ in range(MESSAGES_PER_TICK):
                person = rng.choice(people)
                message_id = f"m-fault-{tick}-{len(batch)}"
                sent[message_id] = person.cf in permitted_cfs
                batch.append(OutgoingRecord(topic=topic, key=message_id.encode(),
                                            value=orjson.dumps(aler_arrears_message(person, message_id))))
            if tick % 10 == 3:
                batch.append(batch[0])  # an exact duplicate: a replay the intake must absorb
            await publish_until_done(gateway, batch)
            tick += 1
            await asyncio.sleep(TICK_SECONDS)

    async def kills() -> None:
        while elapsed() < LOAD_SECONDS - KILL_EVERY_SECONDS / 2:
            await asyncio.sleep(KILL_EVERY_SECONDS)
            workers.kill_one(rng)

    async def restart(service: str, at: float) -> None:
        await asyncio.sleep(at)
        restarts[service] = await infra.restart(service)

    async def watch(until: asyncio.Event) -> None:
        while not until.is_set():
            await workers.watch()
            await asyncio.sleep(0.3)

    faults_over = asyncio.Event()
    watcher = asyncio.create_task(watch(faults_over))
    await asyncio.gather(load(), kills(), restart("kafka", BROKER_RESTART_AT),
                         restart("postgres", DATABASE_RESTART_AT))
    load_seconds = elapsed()

    # settle: every message decided, the outbox empty, while the workers keep being watched
    deadline = time.monotonic() + SETTLE_DEADLINE_S
    while True:
        [(decided,)] = await store_query(
            gateway, "SELECT count(*) FROM messages WHERE sender = 'aler' AND message_id LIKE 'm-fault-%' "
                     "AND state IN ('forwarded', 'denied')")
        [(waiting,)] = await store_query(
            gateway, "SELECT count(*) FROM outbox_queue")
        if decided == len(sent) and waiting == 0:
            break
        if time.monotonic() >= deadline:  # say which messages and where they stand, for whoever reads the failure
            states = dict(await store_query(gateway, "SELECT message_id, state FROM messages WHERE sender = 'aler' "
                                                     "AND message_id LIKE 'm-fault-%'"))
            stuck = {m: states.get(m, "never claimed") for m in sent if states.get(m) not in ("forwarded", "denied")}
            raise AssertionError(f"{decided} of {len(sent)} messages decided, {waiting} undelivered; not decided: "
                                 f"{stuck}; worker kills {workers.kills}, restarts {restarts}")
        await asyncio.sleep(0.5)
    permitted = {f"corr-{m}" for m, ok in sent.items() if ok}
    denied = {f"corr-{m}" for m, ok in sent.items() if not ok}
    referrals = await read_fwa(gateway, permitted)
    # a worker started by the last kill may still be starting: stop them once every live one is in the group,
    # so that each must stop cleanly (SIGTERM, exit 0)
    deadline = time.monotonic() + 90
    while not all(worker.joined for worker in workers.live):
        assert time.monotonic() < deadline, [(w.name, w.joined) for w in workers.live]
        await asyncio.sleep(0.3)
    faults_over.set()
    await watcher
    for worker in workers.live:
        assert worker.longest_outside < OUTSIDE_GROUP_LIMIT_S, (worker.name, worker.longest_outside)
    for worker, _ in workers.ended:
        assert worker.longest_outside < OUTSIDE_GROUP_LIMIT_S, (worker.name, worker.longest_outside)
    exits = workers.stop()

    # one final status per message
    statuses = await store_query(gateway, "SELECT message_id, state FROM messages WHERE sender = 'aler' "
                                          "AND message_id LIKE 'm-fault-%'")
    assert sorted(m for m, _ in statuses) == sorted(sent)
    assert {m: s == "forwarded" for m, s in statuses} == sent
    # exactly the permitted referrals, each under one outgoing message id however often it was delivered
    by_source: dict[str, set[str]] = {}
    for record in referrals:
        by_source.setdefault(record.header("correlation-id") or "", set()).add(record.header("message-id") or "")
    assert set(by_source) == permitted
    assert not set(by_source) & denied
    assert all(len(ids) == 1 for ids in by_source.values()), {k: v for k, v in by_source.items() if len(v) > 1}
    # one decision record per message, and the audit log verifies
    async with gateway.store.transaction() as tx:
        head = await tx.audit_head()
        # the records the head counts: a running gateway may append after the head was read
        entries = await tx.audit_entries(0, head.size)
    report = verify_log(entries, head)
    assert report.ok, report
    decisions = Counter(json.loads(e["record"])["message_ids"][0] for e in entries
                        if json.loads(e["record"])["event_type"] == "decision")
    assert {m: decisions[m] for m in sent} == dict.fromkeys(sent, 1)
    # the faults really happened
    assert workers.kills >= 6 and set(restarts) == {"kafka", "postgres"}
    print(f"fault injection: {len(sent)} messages in {load_seconds:.0f} s, {len(permitted)} permitted, "
          f"{workers.kills} worker kills, "
          f"{len(workers.ended) - workers.kills} worker exits, broker back in {restarts['kafka']:.1f} s, "
          f"database back in {restarts['postgres']:.1f} s, {len(referrals)} referrals delivered "
          f"({len(referrals) - len(permitted)} repeats), longest outside the group "
          f"{max(w.longest_outside for w in [*workers.live, *(w for w, _ in workers.ended)]):.1f} s; "
          f"{time.monotonic() - test_started:.0f} s after the services were up")
    assert all(code == 0 for code in exits), exits
