#!/usr/bin/env python3
"""Withdrawal to last delivery (plan W-02) with two gateway worker processes, against one F1 referral's latency.

Set-up on the real Kafka and PostgreSQL of ``scripts/realinfra.py``: a fresh database and a topic prefix
unique to the run; the API in this process (``create_app`` on a gateway built with ``build()`` and started
without workers: it migrates and creates the topics); two ``gateway worker`` processes (relay, inbound consumer
and checkpointer each, as ``docker-compose.yml`` runs them) configured through ``GATEWAY_*`` variables and
sharing one data directory (pseudonym key, audit signing key).

* **baseline** — for ``--baseline`` fresh tenants: record a consent over the API, produce one ALER arrears
  message on ``in.aler``, time until its referral arrives on ``out.fwa`` (one message at a time).
* **withdrawal** — ``--repetitions`` times, each for a fresh tenant: record a consent over the API, produce a
  backlog of ``--backlog`` ALER messages about them at once, and when ``--withdraw-after`` of their referrals
  have arrived, withdraw the consent over the API (``POST /v1/consents/{id}/withdraw``). Then wait until every
  message is decided and no outbox row under the consent is pending. The withdrawal committed between the
  request being sent (``t_request``) and its response (``t_commit``, used as the commit time: an upper bound).

For every repetition: referrals delivered in all, after ``t_request``, after ``t_commit`` (by the Kafka record
timestamp the relay's producer stamps when it publishes), the latency from
``t_commit`` to the last delivery under the consent (negative: none after the commit), rows dropped at
delivery, messages denied at intake, and deliveries later than ``t_commit + --in-flight-window-ms`` (the relay
checks consent for a batch of rows, then publishes them: a row checked just before the commit may still go
out; anything later than the window is a violation and makes the script exit 1).

Saves ``bench/results/withdrawal-latency-<stamp>.json`` and ``latest-withdrawal-latency.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
import orjson
import privacy_common as common
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from f1_throughput import SEED, MessageFactory, delete_topics, kafka_client_options, kafka_login, templates
from sqlalchemy import text

from gateway.api import create_app
from gateway.auth import PartnerClient, hash_client_secret
from gateway.bootstrap import build
from gateway.identity.synthetic import SyntheticTenant, generate_tenants
from gateway.settings import GatewaySettings, TopicSettings
from gateway.simulators.partners import fhir_consent

PARTITIONS = 3
SECRET = "bench-secret-not-for-production"  # noqa: S105 - a throwaway client of a throwaway database
REPO_ROOT = Path(__file__).resolve().parent.parent
REFERRAL_TYPE = "referral.microcredit"


class Deliveries:
    """Everything arriving on ``out.fwa``: (arrival time, producer timestamp, headers) by correlation id."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                         auto_offset_reset="earliest", client_id="bench-withdrawal",
                                         **kafka_client_options())
        self.topic = topic
        self.by_correlation: dict[str, list[tuple[float, float, dict[str, str]]]] = {}
        self.arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.consumer.start()
        partitions = [TopicPartition(self.topic, p) for p in range(PARTITIONS)]
        self.consumer.assign(partitions)
        await self.consumer.seek_to_beginning(*partitions)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            batches = await self.consumer.getmany(timeout_ms=50, max_records=1000)
            now = time.time()
            for records in batches.values():
                for r in records:
                    headers = {k: bytes(v).decode() for k, v in r.headers}
                    if headers.get("message-type") != REFERRAL_TYPE:
                        continue  # restriction notices and other traffic
                    self.by_correlation.setdefault(headers.get("correlation-id", ""), []).append(
                        (now, r.timestamp / 1000, headers))
            if batches:
                self.arrived.set()

    def referrals(self, correlation_ids: set[str]) -> list[tuple[float, float, dict[str, str]]]:
        return [d for c in correlation_ids for d in self.by_correlation.get(c, [])]

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.consumer.stop()


class Workers:
    """Two (or more) ``gateway worker`` processes on the run's settings."""

    def __init__(self, count: int, env: dict[str, str], log_dir: Path) -> None:
        self.count = count
        self.env = env
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        for n in range(1, self.count + 1):
            log = (self.log_dir / f"worker-{n}.log").open("wb")
            env = {**self.env, "GATEWAY_INSTANCE_ID": f"bench-worker-{n}"}
            self.processes.append(subprocess.Popen(  # noqa: S603 - the project's own command
                [str(REPO_ROOT / ".venv" / "bin" / "gateway"), "worker"], env=env, stdout=log,
                stderr=subprocess.STDOUT))

    async def ready(self, within_s: float = 180) -> None:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            for p in self.processes:
                if p.poll() is not None:
                    raise RuntimeError(f"a worker exited with {p.returncode}; see {self.log_dir}")
            logs = [(self.log_dir / f"worker-{n}.log").read_bytes() for n in range(1, self.count + 1)]
            if all(b"worker-started" in b for b in logs):
                return
            await asyncio.sleep(0.5)
        raise TimeoutError(f"workers not started within {within_s} s; see {self.log_dir}")

    async def stop(self) -> list[int]:
        for p in self.processes:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        codes = []
        for p in self.processes:
            try:
                codes.append(await asyncio.to_thread(p.wait, 60))
            except subprocess.TimeoutExpired:
                p.kill()
                codes.append(await asyncio.to_thread(p.wait, 10))
        return codes


async def record_consent(http: httpx.AsyncClient, headers: dict[str, str], tenant: SyntheticTenant) -> str:
    response = await http.post("/v1/consents", content=orjson.dumps(fhir_consent(tenant.cf)),
                               headers={**headers, "Content-Type": "application/fhir+json"})
    response.raise_for_status()
    return str(response.json()["consent_id"])


async def wait_for(predicate: Any, within_s: float, poll_s: float = 0.02) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(poll_s)
    return bool(predicate())


async def produce(producer: AIOKafkaProducer, topic: str, make: MessageFactory, start: int,
                  count: int) -> dict[str, float]:
    """Send ``count`` messages; returns send time by correlation id."""
    sent: dict[str, float] = {}
    futures = []
    for n in range(start, start + count):
        key, value, correlation_id, headers = make(n)
        sent[correlation_id] = time.time()
        futures.append(await producer.send(topic, value, key=key, headers=headers))
    await asyncio.gather(*futures)
    return sent


async def settled(gw: Any, consent_id: str, message_ids: list[str]) -> tuple[bool, dict[str, Any]]:
    """Whether every message is decided and no outbox row under the consent is pending; with the counts."""
    async with gw.store.engine.connect() as db:
        states = {r[0]: r[1] for r in await db.execute(
            text("SELECT state, count(*) FROM messages WHERE sender = 'aler' AND message_id = ANY(:ids) "
                 "GROUP BY state"), {"ids": message_ids})}
        outbox = (await db.execute(text(
            "SELECT count(*) FILTER (WHERE queued), "
            "count(*) FILTER (WHERE NOT queued AND dropped_reason IS NULL), "
            "count(*) FILTER (WHERE dropped_reason = 'consent-withdrawn'), "
            "count(*) FILTER (WHERE dropped_reason IS NOT NULL) "
            "FROM (SELECT dropped_reason, EXISTS (SELECT 1 FROM outbox_queue q WHERE q.id = o.id) AS queued "
            "      FROM outbox o WHERE consent_id = :c) AS rows"), {"c": consent_id})).one()
    decided = sum(v for k, v in states.items() if k != "received")
    counts = {"messages_by_state": states, "outbox_pending": outbox[0], "outbox_published": outbox[1],
              "outbox_dropped_consent_withdrawn": outbox[2], "outbox_dropped": outbox[3]}
    return decided == len(message_ids) and outbox[0] == 0, counts


async def run(args: argparse.Namespace, bootstrap: str, db: common.Database, data_dir: Path,
              prefix: str) -> dict[str, Any]:
    client = PartnerClient("aler-bench", hash_client_secret(SECRET), "aler", "system",
                           frozenset({"consent:write", "consent:read", "messages:submit", "status:read"}))
    settings = GatewaySettings(database_url=db.url, bus="kafka", kafka_bootstrap_servers=bootstrap,
                               topics=TopicSettings(prefix=prefix, partitions=PARTITIONS), data_dir=data_dir,
                               instance_id="bench-api", log_level="WARNING", **kafka_login())
    gw = build(settings, clients=(client,))
    await gw.start(workers=False)  # migrate, topics
    env = {**os.environ, "GATEWAY_DATABASE_URL": db.url, "GATEWAY_BUS": "kafka",
           "GATEWAY_KAFKA_BOOTSTRAP_SERVERS": bootstrap, "GATEWAY_TOPICS__PREFIX": prefix,
           "GATEWAY_TOPICS__PARTITIONS": str(PARTITIONS), "GATEWAY_DATA_DIR": str(data_dir),
           "GATEWAY_LOG_LEVEL": args.worker_log_level,
           **{f"GATEWAY_{name.upper()}": value for name, value in kafka_login().items()}}
    workers = Workers(args.workers, env, data_dir)
    deliveries = Deliveries(bootstrap, f"{prefix}out.fwa")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5,
                                client_id="bench-withdrawal", **kafka_client_options())
    tenants = list(generate_tenants("S", SEED + 17, args.baseline + 1 + args.repetitions))
    run_id = "w" + uuid.uuid4().hex[:7]
    baseline: list[float] = []
    reps: list[dict[str, Any]] = []
    app = create_app(gw, manage_lifecycle=False)
    try:
        workers.start()
        await workers.ready()
        print(f"{args.workers} workers started", flush=True)
        await deliveries.start()
        await producer.start()
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://testserver",
                                     timeout=60) as http:
            token = await http.post("/oauth/token", data={"grant_type": "client_credentials"},
                                    auth=("aler-bench", SECRET))
            token.raise_for_status()
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
            for b in range(args.baseline + 1):  # the first one warms the path and is not counted
                tenant = tenants[b]
                await record_consent(http, headers, tenant)
                make = MessageFactory(f"{run_id[:7]}b", templates([tenant]))
                sent = await produce(producer, f"{prefix}in.aler", make, b * 10, 1)
                [(correlation_id, t_sent)] = sent.items()
                if not await wait_for(lambda c=correlation_id: deliveries.referrals({c}), 60):
                    raise TimeoutError("a baseline referral did not arrive within 60 s")
                arrival = deliveries.referrals({correlation_id})[0][0]
                if b:
                    baseline.append((arrival - t_sent) * 1000)
            print(f"baseline: one F1 referral {common.percentiles(baseline)['p50']} ms (p50 of {len(baseline)})",
                  flush=True)
            for r in range(args.repetitions):
                tenant = tenants[args.baseline + 1 + r]
                consent_id = await record_consent(http, headers, tenant)
                make = MessageFactory(f"{run_id[:7]}{r % 10}", templates([tenant]))
                base = 1_000_000 * (r + 1)
                t_first_sent = time.time()
                sent = await produce(producer, f"{prefix}in.aler", make, base, args.backlog)
                ids = set(sent)
                threshold = max(1, args.withdraw_after)
                if not await wait_for(lambda i=ids, k=threshold: len(deliveries.referrals(i)) >= k, 120):
                    raise TimeoutError(f"{threshold} referrals did not arrive within 120 s")
                t_request = time.time()
                response = await http.post(f"/v1/consents/{consent_id}/withdraw", headers=headers)
                t_commit = time.time()
                response.raise_for_status()
                message_ids = [c.removeprefix("corr-") for c in ids]
                deadline = time.monotonic() + 180
                counts: dict[str, Any] = {}
                while time.monotonic() < deadline:
                    done, counts = await settled(gw, consent_id, message_ids)
                    if done:
                        break
                    await asyncio.sleep(0.1)
                await asyncio.sleep(args.settle)  # anything still on its way to the consumer
                delivered = deliveries.referrals(ids)
                stamps = sorted(d[1] for d in delivered)
                window_s = args.in_flight_window_ms / 1000
                rep = {
                    "backlog": args.backlog,
                    "referrals_before_withdrawal_request": sum(1 for t in stamps if t <= t_request),
                    "withdrawal_request_ms": round((t_commit - t_request) * 1000, 2),
                    "delivered": len(delivered),
                    "delivered_after_request": sum(1 for t in stamps if t > t_request),
                    "delivered_after_commit": sum(1 for t in stamps if t > t_commit),
                    "delivered_after_commit_plus_window": sum(1 for t in stamps if t > t_commit + window_s),
                    "last_delivery_after_commit_ms": round((stamps[-1] - t_commit) * 1000, 2) if stamps else None,
                    "last_delivery_after_request_ms": round((stamps[-1] - t_request) * 1000, 2) if stamps else None,
                    "backlog_span_ms": round((stamps[-1] - t_first_sent) * 1000, 1) if stamps else None,
                    "store": counts,
                }
                reps.append(rep)
                print(f"  repetition {r + 1}: {rep['referrals_before_withdrawal_request']} delivered before the "
                      f"withdrawal, {rep['delivered_after_commit']} after its commit; last delivery "
                      f"{rep['last_delivery_after_commit_ms']} ms after commit; dropped at delivery "
                      f"{counts['outbox_dropped_consent_withdrawn']}, denied at intake "
                      f"{counts['messages_by_state'].get('denied', 0)}", flush=True)
    finally:
        with contextlib.suppress(Exception):
            await producer.stop()
        with contextlib.suppress(Exception):
            await deliveries.stop()
        exit_codes = await workers.stop()
        await gw.stop()
    return {"baseline_ms": baseline, "repetitions": reps, "worker_exit_codes": exit_codes}


async def main(args: argparse.Namespace) -> int:
    started, stamp = common.stamp_now()
    load_at_start = common.loadavg()
    bootstrap = os.environ.get(common.KAFKA_ENV, "").strip()
    if not bootstrap or not os.environ.get(common.POSTGRES_ENV, "").strip():
        print("error: needs GATEWAY_TEST_KAFKA_BOOTSTRAP and GATEWAY_TEST_POSTGRES_DSN: run through "
              "python3 scripts/realinfra.py run -- .venv/bin/python bench/withdrawal_latency.py", file=sys.stderr)
        return 2
    if args.backend != "postgres":
        print("error: two worker processes share one store: --backend postgres only", file=sys.stderr)
        return 2
    prefix = f"benchw{uuid.uuid4().hex[:8]}."
    print(f"withdrawal latency {stamp}: {args.workers} workers, backlog {args.backlog}, withdraw after "
          f"{args.withdraw_after} referrals, {args.repetitions} repetitions", flush=True)
    async with common.database("postgres") as db:
        try:
            with tempfile.TemporaryDirectory(prefix="bench-withdrawal-") as tmp:
                measured = await run(args, bootstrap, db, Path(tmp), prefix)
        finally:
            with contextlib.suppress(Exception):
                await delete_topics(bootstrap, prefix)
        server = await common.server_settings(db)
        info = await common.machine(db)
    reps = measured["repetitions"]
    latencies = [r["last_delivery_after_commit_ms"] for r in reps if r["last_delivery_after_commit_ms"] is not None]
    from_request = [r["last_delivery_after_request_ms"] for r in reps
                    if r["last_delivery_after_request_ms"] is not None]
    baseline = common.percentiles(measured["baseline_ms"])
    summary = {
        "withdrawal_to_last_delivery_ms": common.percentiles(latencies),
        "withdrawal_request_to_last_delivery_ms": common.percentiles(from_request),
        "withdrawal_request_ms": common.percentiles([r["withdrawal_request_ms"] for r in reps]),
        "delivered_after_commit_total": sum(r["delivered_after_commit"] for r in reps),
        "delivered_after_commit_plus_window_total": sum(r["delivered_after_commit_plus_window"] for r in reps),
        "dropped_at_delivery_total": sum(r["store"]["outbox_dropped_consent_withdrawn"] for r in reps),
        "denied_at_intake_total": sum(r["store"]["messages_by_state"].get("denied", 0) for r in reps),
        "baseline_f1_referral_ms": baseline,
    }
    summary["ratio_max_withdrawal_to_last_delivery_over_baseline_p50"] = common.ratio(
        summary["withdrawal_to_last_delivery_ms"]["max"], baseline["p50"])
    summary["ratio_p50_withdrawal_to_last_delivery_over_baseline_p50"] = common.ratio(
        summary["withdrawal_to_last_delivery_ms"]["p50"], baseline["p50"])
    violations = summary["delivered_after_commit_plus_window_total"]
    print(f"\nwithdrawal -> last delivery under the consent: p50 {summary['withdrawal_to_last_delivery_ms']['p50']} "
          f"ms, max {summary['withdrawal_to_last_delivery_ms']['max']} ms after the commit (from the request: p50 "
          f"{summary['withdrawal_request_to_last_delivery_ms']['p50']}, max "
          f"{summary['withdrawal_request_to_last_delivery_ms']['max']} ms); baseline F1 referral p50 "
          f"{baseline['p50']} ms; delivered after commit {summary['delivered_after_commit_total']}, after commit + "
          f"{args.in_flight_window_ms} ms {violations}")
    report = {
        "benchmark": "withdrawal_latency",
        "plan_id": "W-02",
        "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "machine": info,
        "contention": common.contention(load_at_start),
        "parameters": {"workers": args.workers, "backlog": args.backlog, "withdraw_after": args.withdraw_after,
                       "repetitions": args.repetitions, "baseline": args.baseline,
                       "in_flight_window_ms": args.in_flight_window_ms, "settle_s": args.settle,
                       "partitions": PARTITIONS, "api": "in process (httpx ASGITransport)",
                       "delivery_time": "Kafka record timestamp (CreateTime, set by the relay's producer)"},
        "database": server,
        "summary": summary,
        "repetitions": reps,
        "baseline_ms": measured["baseline_ms"],
        "worker_exit_codes": measured["worker_exit_codes"],
    }
    common.save_report("withdrawal-latency", report, stamp)
    if violations:
        print(f"error: {violations} referrals under a withdrawn consent were delivered later than the in-flight "
              "window after the withdrawal committed", file=sys.stderr)
        return 1
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backend", choices=("postgres", "sqlite"), default="postgres",
                        help="postgres only: two worker processes share one store")
    parser.add_argument("--workers", type=int, default=2, help="gateway worker processes (default 2)")
    parser.add_argument("--backlog", type=int, default=200, help="ALER messages queued per repetition")
    parser.add_argument("--withdraw-after", type=int, default=20,
                        help="withdraw once this many of the backlog's referrals were delivered")
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--baseline", type=int, default=5, help="single F1 referrals timed for the baseline")
    parser.add_argument("--in-flight-window-ms", type=float, default=2000.0,
                        help="deliveries later than this after the commit count as violations (default 2000)")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds to wait after the store has settled")
    parser.add_argument("--worker-log-level", default="INFO",
                        help="INFO at least: readiness is read from the workers' worker-started line")
    args = parser.parse_args(argv)
    if args.backlog < 1 or args.withdraw_after >= args.backlog or args.repetitions < 1 or args.workers < 1:
        parser.error("--backlog >= 1, --withdraw-after < --backlog, --repetitions and --workers >= 1")
    return args


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
