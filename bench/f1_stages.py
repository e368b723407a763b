#!/usr/bin/env python3
"""Where one F1 message's time goes: per-stage costs of the intake and the relay, without a profiler.

Companion of ``bench/f1_throughput.py``: that one measures the pipeline end to end; this one splits a message's
cost into parts, each timed in wall time (``perf_counter``) and CPU time of this process (``process_time``), so
the figures hold on a machine shared with other work (CPU time is not inflated by waiting for a core):

* **cpu stages** — pure Python, no I/O: ALER decode, policy decision, minimise + encode, audit chaining
  (canonical JSON, hashes) of the message's two audit records, status message;
* **sql statement** — one primary-key ``SELECT`` through SQLAlchemy Core (as the store issues it) and the same
  statement through the asyncpg connection underneath, in one open transaction: the cost of the SQL layer;
* **intake** — ``Intake.submit`` of whole messages on PostgreSQL, one after another (what the inbound
  consumer does), with the SQL statements and commits per message counted through SQLAlchemy events;
* **intake concurrency** — the same with several submissions in flight at once, to show how far one process
  would scale if the consumer processed records concurrently (the audit head row lock serialises appends);
* **relay** — ``Relay.drain`` of the outbox rows those messages left, publishing to Kafka;
* **intake batch** (``--batch N``) — ``Intake.process`` of decoded batches of N messages in one transaction each,
  as the inbound consumer decides them: CPU per message of the whole batch (decode reported apart), and each store
  call of the batch timed where the intake makes it (CPU and wall of this process while the call is awaited),
  per message of the batch, with the commit and the rest (pure Python) as the remainder.

Needs ``GATEWAY_TEST_KAFKA_BOOTSTRAP`` and ``GATEWAY_TEST_POSTGRES_DSN`` (``scripts/realinfra.py run -- ...``).
Saves ``bench/results/f1-stages-<UTC timestamp>.json`` and ``bench/results/latest-f1-stages.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
for entry in (str(REPO_ROOT), str(REPO_ROOT / "bench")):
    if entry not in sys.path:
        sys.path.insert(0, entry)

import orjson  # noqa: E402
from f1_throughput import (  # noqa: E402
    KAFKA_ENV,
    POSTGRES_ENV,
    RESULTS_DIR,
    SEED,
    SqlCounter,
    delete_topics,
    fresh_database,
    kafka_login,
    machine_info,
)
from sqlalchemy import select  # noqa: E402

from gateway.audit.chain import ChainHead, extend  # noqa: E402
from gateway.bootstrap import build  # noqa: E402
from gateway.identity.synthetic import generate_tenants  # noqa: E402
from gateway.logging import configure_logging  # noqa: E402
from gateway.pipeline import ledger  # noqa: E402
from gateway.pipeline.intake import Submission  # noqa: E402
from gateway.pipeline.status import status_message  # noqa: E402
from gateway.policy import DecisionRequest, decide  # noqa: E402
from gateway.settings import GatewaySettings, TopicSettings  # noqa: E402
from gateway.simulators.partners import aler_arrears_message, fhir_consent  # noqa: E402
from gateway.store.models import MessageStatus  # noqa: E402
from gateway.store.tables import subjects  # noqa: E402
from schemas.envelope import SubjectRef  # noqa: E402


def _per(total_s: float, n: int) -> float:
    return round(total_s * 1000 / n, 4)


ROUNDS = 5
"""Every timing is split into this many rounds and the fastest round is kept (per wall and per CPU time), as
``timeit`` does: other work on the machine can only make a round slower, never faster."""


def _best(rounds: list[tuple[float, float]], per_round: int) -> dict[str, float]:
    return {"wall_ms": _per(min(w for w, _ in rounds), per_round),
            "cpu_ms": _per(min(c for _, c in rounds), per_round)}


def timed_sync(fn: Callable[[], Any], n: int) -> dict[str, float]:
    per_round = max(1, n // ROUNDS)
    rounds = []
    for _ in range(ROUNDS):
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(per_round):
            fn()
        rounds.append((time.perf_counter() - wall, time.process_time() - cpu))
    return _best(rounds, per_round)


async def timed_round(fn: Callable[[int], Awaitable[Any]], per_round: int) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(per_round):
        await fn(i)
    return time.perf_counter() - wall, time.process_time() - cpu


async def timed_async(fn: Callable[[int], Awaitable[Any]], n: int) -> dict[str, float]:
    per_round = max(1, n // ROUNDS)
    return _best([await timed_round(fn, per_round) for _ in range(ROUNDS)], per_round)


async def main(args: argparse.Namespace) -> int:
    bootstrap = os.environ.get(KAFKA_ENV, "").strip()
    dsn = os.environ.get(POSTGRES_ENV, "").strip()
    if not bootstrap or not dsn:
        print(f"error: set {KAFKA_ENV} and {POSTGRES_ENV}: run through "
              "python3 scripts/realinfra.py run -- .venv/bin/python bench/f1_stages.py", file=sys.stderr)
        return 2
    started = datetime.now(UTC)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    prefix = f"stages{uuid.uuid4().hex[:8]}."
    database_url, drop = await fresh_database(dsn)
    results: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-f1-stages-") as tmp:
            settings = GatewaySettings(bus="kafka", database_url=database_url, kafka_bootstrap_servers=bootstrap,
                                       topics=TopicSettings(prefix=prefix, partitions=3), data_dir=Path(tmp),
                                       instance_id="bench-stages", **kafka_login())
            gw = build(settings, clients=())
            await gw.start(workers=False)
            try:
                results = await measure(gw, args)
            finally:
                await gw.stop()
    finally:
        with contextlib.suppress(Exception):
            await drop()
        with contextlib.suppress(Exception):
            await delete_topics(bootstrap, prefix)

    print_report(results)
    report = {
        "benchmark": "f1_stages",
        "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "machine": machine_info(),
        "parameters": {"messages": args.messages, "tenants": args.tenants, "cpu_iterations": args.iterations,
                       "store_iterations": args.store_iterations,
                       "concurrency": args.concurrency, "batch": args.batch, "batches": args.batches,
                       "batch_rounds": args.batch_rounds},
        **results,
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    body = json.dumps(report, indent=2) + "\n"
    path = RESULTS_DIR / f"f1-stages-{stamp}.json"
    path.write_text(body, encoding="utf-8")
    (RESULTS_DIR / "latest-f1-stages.json").write_text(body, encoding="utf-8")
    print(f"\nsaved {path.relative_to(REPO_ROOT)} and latest-f1-stages.json")
    return 0


async def measure(gw: Any, args: argparse.Namespace) -> dict[str, Any]:
    tenants = list(generate_tenants("S", SEED, args.tenants))
    for i, tenant in enumerate(tenants):
        await gw.consents.record(fhir_consent(tenant.cf), "aler", "bench-operator", f"bench-consent-{i}")
    run = uuid.uuid4().hex[:8]

    def submission(n: int) -> Submission:
        raw = orjson.dumps(aler_arrears_message(tenants[n % len(tenants)], f"s{run}-{n:010d}"))
        return Submission(sender="aler", sender_role="system", raw=raw, content_type="application/json",
                          request_id=f"s{run}-{n}", client_id="kafka:aler")

    # --- pure CPU stages on one representative message --------------------------------------------------------
    intake, registry = gw.intake, gw.registry
    sample = submission(0)
    envelope = intake.decode(sample)[0]
    async with gw.store.transaction() as tx:
        subject = await tx.subject(envelope.subject.identifiers[0].system, envelope.subject.identifiers[0].value,
                                   create=False)
        assert subject is not None
        consents = await tx.consents_for(subject.pseudonym)
    envelope = envelope.model_copy(update={"subject": SubjectRef(identifiers=envelope.subject.identifiers,
                                                                 pseudonym=subject.pseudonym)})
    now = datetime.now(UTC)
    request = DecisionRequest(sender="aler", sender_role="system", recipient="fwa",
                              message_type=envelope.message_type, purpose=envelope.purpose,
                              subject_pseudonym=subject.pseudonym)
    decision = decide(request, registry, consents, now)
    assert decision.permitted, decision.reason
    records = [ledger.decision_record(envelope, sample, subject, decision, "bench"),
               ledger.decision_record(envelope, sample, subject, decision, "bench", disclosed_as="gw-x")]
    status = MessageStatus(sender="aler", message_id=envelope.message_id, correlation_id=envelope.correlation_id,
                           message_type=envelope.message_type, state="forwarded", reason_class=None,
                           recipients=("fwa",), received_at=now, request_id="r")
    n = args.iterations
    cpu_stages = {
        "json_build_and_dump (driver side, for scale)": timed_sync(
            lambda: orjson.dumps(aler_arrears_message(tenants[0], "x")), n),
        "decode (ALER adapter, pydantic)": timed_sync(lambda: intake.decode(sample), n),
        "decide (policy)": timed_sync(lambda: decide(request, registry, consents, now), n),
        "minimise + encode (disclosure row)": timed_sync(
            lambda: intake._disclosure(envelope, subject, decision, sample, now), n),
        "audit records x2 (build)": timed_sync(
            lambda: [ledger.decision_record(envelope, sample, subject, decision, "bench"),
                     ledger.decision_record(envelope, sample, subject, decision, "bench", disclosed_as="gw-x")], n),
        "audit chain x2 (canonical JSON + hashes)": timed_sync(
            lambda: extend(ChainHead.genesis(), records, now), n),
        "status message": timed_sync(lambda: status_message(status), n),
    }
    cpu_stages_total = round(sum(v["cpu_ms"] for k, v in cpu_stages.items() if not k.startswith("json_build")), 4)

    # --- one SQL statement: SQLAlchemy Core vs asyncpg underneath -----------------------------------------------
    lookup = gw.store.lookup_hash("cf", tenants[0].cf)
    query = select(subjects.c.pseudonym, subjects.c.subject_key).where(subjects.c.lookup_hash == lookup)
    sql_stage: dict[str, Any] = {}
    async with gw.store.engine.connect() as conn:
        await conn.begin()
        sql_stage["sqlalchemy_core_select"] = await timed_async(lambda _i: conn.execute(query), n)
        sql_stage["sqlalchemy_core_select_built_each_time"] = await timed_async(
            lambda _i: conn.execute(select(subjects.c.pseudonym, subjects.c.subject_key)
                                    .where(subjects.c.lookup_hash == lookup)), n)
        raw_conn = await conn.get_raw_connection()
        driver = raw_conn.driver_connection
        assert driver is not None
        text = "SELECT pseudonym, subject_key FROM subjects WHERE lookup_hash = $1"
        sql_stage["asyncpg_fetchrow_same_select"] = await timed_async(lambda _i: driver.fetchrow(text, lookup), n)
        await conn.rollback()

    # --- store operations of one intake transaction, each in its own transaction -----------------------------------
    store_ops = await measure_store_ops(gw, intake, envelope, sample, subject, decision, now, args.store_iterations)

    # --- whole intake, sequential, then concurrent -------------------------------------------------------------
    counter = SqlCounter(gw.store.engine.sync_engine)
    next_n = iter(range(1, 10**9))
    messages = args.messages

    async def submit(_i: int) -> None:
        statuses = await intake.submit(submission(next(next_n)))
        assert statuses[0].state == "forwarded", statuses[0]

    for _ in range(20):  # warm the statement caches
        await submit(0)
    counter.reset()
    intake_seq = await timed_async(submit, messages)
    intake_seq["per_s"] = round(1000 / intake_seq["wall_ms"], 1)
    intake_seq.update({k: v for k, v in counter.summary(max(1, messages // ROUNDS) * ROUNDS).items()
                       if k in ("sql_statements_per_message", "commits_per_message",
                                "statements_per_message_by_kind")})

    concurrency: dict[str, Any] = {}
    for k in args.concurrency:
        gate = asyncio.Semaphore(k)

        async def one(gate: asyncio.Semaphore = gate) -> None:
            async with gate:
                await submit(0)

        wall, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(one() for _ in range(messages)))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        concurrency[str(k)] = {"per_s": round(messages / wall, 1), "wall_ms": _per(wall, messages),
                               "cpu_ms": _per(cpu, messages)}

    # --- relay: drain what the intake left ---------------------------------------------------------------------
    counter.reset()
    wall, cpu = time.perf_counter(), time.process_time()
    rows = await gw.relay.drain()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    relay = {"rows": rows, "per_s": round(rows / wall, 1) if wall else None, "wall_ms_per_row": _per(wall, rows),
             "cpu_ms_per_row": _per(cpu, rows), "batch_size": gw.relay.batch_size,
             "sql_statements_per_row": counter.summary(rows)["sql_statements_per_message"]}

    batch = await measure_batches(gw, submission, counter, args) if args.batch else None
    return {"cpu_stages_per_message": cpu_stages, "cpu_stages_total_cpu_ms": cpu_stages_total,
            "sql_statement": sql_stage, "store_operations": store_ops, "intake_sequential": intake_seq,
            "intake_concurrent": concurrency, "relay_drain": relay, "intake_batch": batch}


class _TimedTransaction:
    """A store transaction whose awaited calls are timed, by method name: wall time and CPU time of this
    process while the call is awaited (nothing else runs on the loop in this benchmark, so the CPU is the
    call's own: SQLAlchemy, the driver, the repository's Python)."""

    def __init__(self, tx: Any, totals: dict[str, list[float]]) -> None:
        self._tx = tx
        self._totals = totals

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._tx, name)
        if not inspect.iscoroutinefunction(attr):
            return attr
        totals = self._totals

        async def timed(*args: Any, **kwargs: Any) -> Any:
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return await attr(*args, **kwargs)
            finally:
                figures = totals.setdefault(name, [0.0, 0.0, 0])
                figures[0] += time.perf_counter() - wall
                figures[1] += time.process_time() - cpu
                figures[2] += 1

        return timed


class _TimedStore:
    """The store, handing out :class:`_TimedTransaction`; opening the transaction and its commit are timed too."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.totals: dict[str, list[float]] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def _add(self, name: str, wall: float, cpu: float) -> None:
        figures = self.totals.setdefault(name, [0.0, 0.0, 0])
        figures[0] += wall
        figures[1] += cpu
        figures[2] += 1

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        wall, cpu = time.perf_counter(), time.process_time()
        async with contextlib.AsyncExitStack() as stack:
            tx = await stack.enter_async_context(self._store.transaction())
            self._add("begin (pool checkout + pre-ping)", time.perf_counter() - wall, time.process_time() - cpu)
            yield _TimedTransaction(tx, self.totals)
            wall, cpu = time.perf_counter(), time.process_time()
        self._add("commit", time.perf_counter() - wall, time.process_time() - cpu)


async def measure_batches(gw: Any, submission: Callable[[int], Submission], counter: Any,
                          args: argparse.Namespace) -> dict[str, Any]:
    """``Intake.process`` on batches of ``--batch`` decoded messages, ``--batch-rounds`` rounds of
    ``--batches`` batches each; for every figure the fastest round is kept (as for the other stages). The
    consent index is loaded first, as the gateway's workers keep it, so a batch reads only the consent change
    head (``consent_change_head``)."""
    intake, size = gw.intake, args.batch
    first = 2 * 10**8  # message numbers of their own, never claimed by the sections above

    def decoded(k: int) -> list[Any]:
        subs = [submission(first + k * size + i) for i in range(size)]
        return [(envelope, sub) for sub in subs for envelope in intake.decode(sub)]

    await intake.consent_index.load(gw.store)  # as the gateway's workers keep it: decisions read no consent row
    timed_store = _TimedStore(intake.store)
    original, intake.store = intake.store, timed_store
    batch_no = iter(range(10**6))
    rounds: list[dict[str, Any]] = []
    try:
        for _ in range(2):  # warm the statement caches with the batch's own sizes
            await intake.process(decoded(next(batch_no)))
        for _ in range(args.batch_rounds):
            timed_store.totals = {}
            counter.reset()
            decode: list[float] = [0.0, 0.0]
            spent: list[float] = [0.0, 0.0]
            forwarded = 0
            for _ in range(args.batches):
                wall, cpu = time.perf_counter(), time.process_time()
                items = decoded(next(batch_no))
                decode[0] += time.perf_counter() - wall
                decode[1] += time.process_time() - cpu
                wall, cpu = time.perf_counter(), time.process_time()
                statuses = await intake.process(items)
                spent[0] += time.perf_counter() - wall
                spent[1] += time.process_time() - cpu
                forwarded += sum(s.state == "forwarded" for s in statuses)
            assert forwarded == args.batches * size, forwarded
            rounds.append({"decode": decode, "whole": spent, "calls": timed_store.totals,
                           "sql": counter.summary(args.batches)})
    finally:
        intake.store = original
    messages = args.batches * size

    def best(select_figures: Callable[[dict[str, Any]], list[float] | None]) -> dict[str, float]:
        present = [f for f in (select_figures(r) for r in rounds) if f is not None]
        return {"wall_ms": _per(min(f[0] for f in present), messages),
                "cpu_ms": _per(min(f[1] for f in present), messages)}

    names = list(rounds[0]["calls"])
    calls: dict[str, dict[str, float]] = {}
    for name in names:
        calls[name] = {**best(lambda r, name=name: r["calls"].get(name)),  # type: ignore[misc]
                       "calls_per_batch": round(rounds[0]["calls"][name][2] / args.batches, 2)}
    whole = best(lambda r: r["whole"])
    in_calls = round(sum(v["cpu_ms"] for v in calls.values()), 4)
    sql = min(rounds, key=lambda r: r["whole"][1])["sql"]
    return {"batch": size, "batches_per_round": args.batches, "rounds": args.batch_rounds,
            "decode_per_message": best(lambda r: r["decode"]),
            "process_per_message": {**whole, "per_s": round(1000 / whole["wall_ms"], 1)},
            "store_calls_per_message": calls,
            "store_calls_total_cpu_ms": in_calls,
            "rest_cpu_ms (pure Python of the batch, outside store calls)": round(whole["cpu_ms"] - in_calls, 4),
            "sql_statements_per_batch": sql["sql_statements_per_message"],
            "statements_per_batch_by_kind": sql["statements_per_message_by_kind"]}


async def measure_store_ops(gw: Any, intake: Any, envelope: Any, sample: Submission, subject: Any, decision: Any,
                            now: datetime, n: int) -> dict[str, Any]:
    """The intake's store calls, added one at a time to a transaction in the intake's order.

    Step k runs steps 1..k in one transaction; its ``marginal`` figures are step k minus step k-1, so each call
    is costed in context (SQLAlchemy sends BEGIN lazily with the first statement: it lands on the first step).
    """
    ident = envelope.subject.identifiers[0]
    run = uuid.uuid4().hex[:8]
    counter = iter(range(10**9))

    def status(message_id: str) -> MessageStatus:
        return MessageStatus(sender="aler", message_id=message_id, correlation_id="c", message_type="t",
                             state="received", reason_class=None, recipients=(), received_at=now, request_id="r")

    async def claim(tx: Any, ctx: dict[str, str]) -> None:
        ctx["id"] = f"op{run}-{next(counter)}"
        await tx.claim_messages([status(ctx["id"])])

    async def lookup(tx: Any, _ctx: dict[str, str]) -> None:
        await tx.subject(ident.system, ident.value, create=True)

    async def consents(tx: Any, _ctx: dict[str, str]) -> None:
        await tx.consents_for(subject.pseudonym)

    async def update(tx: Any, ctx: dict[str, str]) -> None:
        await tx.update_messages([replace(status(ctx["id"]), state="forwarded", recipients=("fwa",))])

    async def audit(tx: Any, _ctx: dict[str, str]) -> None:
        await tx.append_audit([
            ledger.decision_record(envelope, sample, subject, decision, "bench"),
            ledger.decision_record(envelope, sample, subject, decision, "bench", disclosed_as="gw-x")])

    async def enqueue(tx: Any, ctx: dict[str, str]) -> None:
        await tx.enqueue([intake._disclosure(envelope, subject, decision, sample, now),
                          intake._status_row(status(ctx["id"]), subject, now)])

    steps: list[tuple[str, Callable[[Any, dict[str, str]], Awaitable[None]]]] = [
        ("BEGIN + claim_messages (INSERT messages ON CONFLICT DO NOTHING)", claim),
        ("subject lookup (SELECT subjects)", lookup),
        ("consents_for (SELECT consents)", consents),
        ("update_messages (UPDATE messages)", update),
        ("append_audit x2 (SELECT head FOR UPDATE, INSERT x2, UPDATE head; chaining)", audit),
        ("enqueue x2 (INSERT outbox executemany; minimise + encode)", enqueue),
    ]
    def runner(k: int) -> Callable[[int], Awaitable[None]]:
        chosen = [fn for _, fn in steps[:k]]

        async def one(_i: int) -> None:
            ctx: dict[str, str] = {}
            async with gw.store.transaction() as tx:
                for fn in chosen:
                    await fn(tx, ctx)

        return one

    runners = [runner(k) for k in range(len(steps) + 1)]
    for one in runners:
        for i in range(10):
            await one(i)
    per_round = max(1, n // ROUNDS)
    rounds: list[list[tuple[float, float]]] = [[] for _ in runners]
    for _ in range(ROUNDS):  # interleaved, so that a busy moment of the machine hits every step alike
        for k, one in enumerate(runners):
            rounds[k].append(await timed_round(one, per_round))
    out: dict[str, Any] = {}
    previous: dict[str, float] | None = None
    for k in range(len(runners)):
        figures = _best(rounds[k], per_round)
        name = "empty transaction (pool checkout + pre-ping, COMMIT)" if k == 0 else steps[k - 1][0]
        if previous is not None:
            figures["marginal_wall_ms"] = round(figures["wall_ms"] - previous["wall_ms"], 4)
            figures["marginal_cpu_ms"] = round(figures["cpu_ms"] - previous["cpu_ms"], 4)
        out[name] = figures
        previous = figures
    return out


def print_report(r: dict[str, Any]) -> None:
    print(f"\n{'stage (per message unless noted)':52}{'wall ms':>10}{'CPU ms':>10}")
    for name, v in r["cpu_stages_per_message"].items():
        print(f"  {name:50}{v['wall_ms']:>10.3f}{v['cpu_ms']:>10.3f}")
    print(f"  {'= pure-Python stages of one message':50}{'':>10}{r['cpu_stages_total_cpu_ms']:>10.3f}")
    for name, v in r["sql_statement"].items():
        print(f"  {name + ' (per statement)':50}{v['wall_ms']:>10.3f}{v['cpu_ms']:>10.3f}")
    print("  store calls in one transaction, each added in the intake's order (marginal cost):")
    for name, v in r["store_operations"].items():
        wall, cpu = v.get("marginal_wall_ms", v["wall_ms"]), v.get("marginal_cpu_ms", v["cpu_ms"])
        label = name if "marginal_wall_ms" not in v else "+ " + name
        print(f"    {label[:48]:48}{wall:>10.3f}{cpu:>10.3f}")
    last = list(r["store_operations"].values())[-1]
    print(f"    {'= the whole transaction':48}{last['wall_ms']:>10.3f}{last['cpu_ms']:>10.3f}")
    s = r["intake_sequential"]
    print(f"  {'intake, sequential (whole message)':50}{s['wall_ms']:>10.3f}{s['cpu_ms']:>10.3f}"
          f"   -> {s['per_s']}/s, {s['sql_statements_per_message']} statements, "
          f"{s['commits_per_message']} commits per message")
    for k, v in r["intake_concurrent"].items():
        print(f"  {'intake, ' + k + ' in flight':50}{v['wall_ms']:>10.3f}{v['cpu_ms']:>10.3f}   -> {v['per_s']}/s")
    rl = r["relay_drain"]
    print(f"  {'relay drain (per row, batch ' + str(rl['batch_size']) + ')':50}{rl['wall_ms_per_row']:>10.3f}"
          f"{rl['cpu_ms_per_row']:>10.3f}   -> {rl['per_s']} rows/s, {rl['sql_statements_per_row']} statements/row")
    b = r.get("intake_batch")
    if b:
        print(f"  intake.process on batches of {b['batch']} (per message of the batch):")
        d, p = b["decode_per_message"], b["process_per_message"]
        print(f"    {'decode (apart, not in the batch)':48}{d['wall_ms']:>10.3f}{d['cpu_ms']:>10.3f}")
        for name, v in b["store_calls_per_message"].items():
            print(f"    {'  ' + name + ' x' + str(v['calls_per_batch']):48}{v['wall_ms']:>10.3f}{v['cpu_ms']:>10.3f}")
        print(f"    {'  = store calls and commit':48}{'':>10}{b['store_calls_total_cpu_ms']:>10.3f}")
        rest = b["rest_cpu_ms (pure Python of the batch, outside store calls)"]
        print(f"    {'  + the rest (pure Python)':48}{'':>10}{rest:>10.3f}")
        print(f"    {'= Intake.process, whole batch':48}{p['wall_ms']:>10.3f}{p['cpu_ms']:>10.3f}"
              f"   -> {p['per_s']}/s, {b['sql_statements_per_batch']} statements per batch")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=500, help="messages per intake measurement (default 500)")
    parser.add_argument("--tenants", type=int, default=200, help="tenants with a consent (default 200)")
    parser.add_argument("--iterations", type=int, default=2000, help="iterations of each CPU stage (default 2000)")
    parser.add_argument("--store-iterations", type=int, default=500,
                        help="transactions per store operation (default 500)")
    parser.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[4, 16],
                        help="comma-separated numbers of concurrent submissions (default 4,16)")
    parser.add_argument("--batch", type=int, default=GatewaySettings.model_fields["intake_batch_size"].default,
                        help="messages per Intake.process batch (default %(default)s, the consumer's; 0 skips it)")
    parser.add_argument("--batches", type=int, default=2, help="batches per round (default 2)")
    parser.add_argument("--batch-rounds", type=int, default=ROUNDS,
                        help=f"rounds of batches; the fastest is kept (default {ROUNDS})")
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args()
    with open(os.devnull, "w", encoding="utf-8") as sink:
        configure_logging("INFO", stream=sink)  # the gateway's INFO logs cost what they cost in production
        sys.exit(asyncio.run(main(arguments)))
