#!/usr/bin/env python3
"""Where one F1 referral's time goes when it is alone in flight: a timestamp at every stage boundary.

A gateway built with ``build()`` and started with its workers (inbound consumer, relay, checkpointer) runs in
this process on a fresh PostgreSQL database and a fresh topic prefix; consents are recorded for ``--tenants``
synthetic tenants. Then ``--messages`` ALER arrears messages are sent one at a time: the next one is produced
only once the referral of the previous one has arrived on ``out.fwa`` (and ``--gap-ms`` has passed).

The stage boundaries are taken by wrapping the gateway's own methods (no change to the code under test): the
driver's ``send``, the Kafka consumer's ``fetch`` returning the record, ``Intake.process`` start and its commit
(when it hands the rows to ``Relay.deliver``), the outgoing publish (``Bus.publish`` of the referral) start and
end, the offset commit start and end, and the driver's consumer receiving the referral. For each message it prints
the gap between consecutive boundaries; the summary gives the median of each gap and of the CPU time the process
spent per message (``time.process_time``: driver and gateway together, one process).

Needs ``GATEWAY_TEST_KAFKA_BOOTSTRAP`` and ``GATEWAY_TEST_POSTGRES_DSN`` (``scripts/realinfra.py``). Saves
``bench/results/f1-trace-<UTC timestamp>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: E402

from bench.f1_throughput import (  # noqa: E402
    KAFKA_ENV,
    PARTITIONS,
    POSTGRES_ENV,
    RESULTS_DIR,
    SEED,
    MessageFactory,
    _loadavg,
    delete_topics,
    fresh_database,
    kafka_client_options,
    kafka_login,
    templates,
)
from gateway.identity.synthetic import generate_tenants  # noqa: E402

STAGES = ("send", "fetched", "decide_start", "committed", "publish_start", "published", "arrived")


class Marks:
    """Stage timestamps (``perf_counter``) of the message in flight; the first mark of a kind wins."""

    def __init__(self) -> None:
        self.current: dict[str, float] = {}
        self.offset_commits: list[tuple[float, float]] = []
        self.gc_ms = 0.0
        """Wall milliseconds spent in the garbage collector while a message is traced."""
        self._gc_start = 0.0
        self.sql: dict[str, list[float]] = {}
        """Wall milliseconds of every SQL statement, by its first words and table, while a message is traced."""
        self.tracing = False

    def watch_gc(self) -> None:
        import gc

        def on_gc(phase: str, _info: dict[str, Any]) -> None:
            if phase == "start":
                self._gc_start = time.perf_counter()
            elif self.tracing:
                self.gc_ms += (time.perf_counter() - self._gc_start) * 1000

        gc.callbacks.append(on_gc)

    def watch_sql(self, sync_engine: Any) -> None:
        from sqlalchemy import event

        @event.listens_for(sync_engine, "before_cursor_execute")
        def before(_conn: Any, _cursor: Any, statement: str, _p: Any, context: Any, _many: bool) -> None:
            context._trace_start = time.perf_counter()

        @event.listens_for(sync_engine, "after_cursor_execute")
        def after(_conn: Any, _cursor: Any, statement: str, _p: Any, context: Any, _many: bool) -> None:
            self.statement_ran(statement, (time.perf_counter() - context._trace_start) * 1000)

        @event.listens_for(sync_engine, "checkout")
        def checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
            # statements the store runs on the driver directly (Repository._fetch), past SQLAlchemy's events
            driver = getattr(dbapi_connection, "driver_connection", None)
            if hasattr(driver, "add_query_logger"):
                driver.add_query_logger(on_driver)  # a set: added once per connection

        def on_driver(logged: Any) -> None:
            self.statement_ran(logged.query, logged.elapsed * 1000)

    def statement_ran(self, statement: str, elapsed_ms: float) -> None:
        if self.tracing:
            words = " ".join(statement.split()[:6])[:70]
            self.sql.setdefault(words, []).append(elapsed_ms)

    def mark(self, stage: str, into: dict[str, float] | None = None) -> None:
        """Mark ``stage`` for the message in flight, or into ``into``: the marks of the message a call began
        with (a call may end after that message arrived and the next one was sent)."""
        (self.current if into is None else into).setdefault(stage, time.perf_counter())


def instrument(gw: Any, marks: Marks, out_topic: str) -> None:
    """Wrap the gateway's stage methods so that they mark ``marks`` (behaviour unchanged)."""
    consumer = gw.consumer
    make_consumer = gw.bus.consumer

    def consumer_factory(*args: Any, **kwargs: Any) -> Any:
        bus_consumer = make_consumer(*args, **kwargs)
        fetch, commit = bus_consumer.fetch, bus_consumer.commit

        async def traced_fetch(*a: Any, **k: Any) -> Any:
            records = await fetch(*a, **k)
            if records:
                marks.mark("fetched")
            return records

        async def traced_commit() -> None:
            start = time.perf_counter()
            await commit()
            marks.offset_commits.append((start, time.perf_counter()))

        bus_consumer.fetch, bus_consumer.commit = traced_fetch, traced_commit
        return bus_consumer

    gw.bus.consumer = consumer_factory
    process = gw.intake.process

    async def traced_process(items: Any, **kwargs: Any) -> Any:
        current = marks.current
        marks.mark("decide_start", current)
        result = await process(items, **kwargs)
        marks.mark("committed", current)  # when nothing delivered it first (the intake's deliver marks it)
        return result

    gw.intake.process = traced_process
    deliver = getattr(gw.relay, "deliver", None)  # absent before delivery after the commit (then the relay sends)
    if deliver is not None:

        async def traced_deliver(rows: Any) -> int:
            marks.mark("committed")  # the intake hands its rows over right after its commit
            return int(await deliver(rows))

        gw.relay.deliver = traced_deliver
    consumer.intake = gw.intake
    publish = gw.bus.publish

    async def traced_publish(records: Any) -> None:
        carries = any(r.topic == out_topic for r in records)
        current = marks.current
        if carries:
            marks.mark("publish_start", current)
        await publish(records)
        if carries:
            marks.mark("published", current)

    gw.bus.publish = traced_publish


async def run(args: argparse.Namespace) -> int:
    bootstrap, dsn = os.environ.get(KAFKA_ENV), os.environ.get(POSTGRES_ENV)
    if not bootstrap or not dsn:
        print(f"set {KAFKA_ENV} and {POSTGRES_ENV} (scripts/realinfra.py)", file=sys.stderr)
        return 2
    from gateway.bootstrap import build
    from gateway.logging import configure_logging
    from gateway.settings import GatewaySettings, TopicSettings
    from gateway.simulators.partners import fhir_consent

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_id = "t" + uuid.uuid4().hex[:7]
    prefix = f"trace{run_id}."
    database_url, drop = await fresh_database(dsn)
    tenants = list(generate_tenants("S", SEED, args.tenants))
    marks = Marks()
    rows: list[dict[str, float]] = []
    explain: list[str] = []
    cpu_ms: list[float] = []
    loadavg_start = _loadavg()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-trace-") as tmp, open(os.devnull, "w") as sink:  # noqa: ASYNC230
            configure_logging("INFO", stream=sink)
            settings = GatewaySettings(bus="kafka", database_url=database_url, kafka_bootstrap_servers=bootstrap,
                                       topics=TopicSettings(prefix=prefix, partitions=PARTITIONS), data_dir=tmp,
                                       instance_id="trace-gateway", **kafka_login())  # type: ignore[arg-type]
            gw = build(settings, clients=())
            out_topic = settings.topics.name("out", "fwa")
            instrument(gw, marks, out_topic)
            marks.watch_sql(gw.store.engine.sync_engine)
            marks.watch_gc()
            await gw.start()
            for i, tenant in enumerate(tenants):
                await gw.consents.record(fhir_consent(tenant.cf), "aler", "bench-operator", f"trace-consent-{i}")
            producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                                        linger_ms=0, client_id="trace-driver", **kafka_client_options())
            reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                      auto_offset_reset="latest", client_id="trace-driver", **kafka_client_options())
            await producer.start()
            await reader.start()
            partitions = [TopicPartition(out_topic, p) for p in range(PARTITIONS)]
            reader.assign(partitions)
            await reader.seek_to_end(*partitions)
            make = MessageFactory(run_id, templates(tenants))
            try:
                if args.backlog:
                    await backlog(producer, reader, settings.topics.name("in", "aler"), make, args.backlog)
                for n in range(args.backlog, args.backlog + args.warmup + args.messages):
                    key, value, correlation, headers = make(n)
                    marks.current = {}
                    cpu0 = time.process_time()
                    marks.mark("send")
                    await producer.send_and_wait(settings.topics.name("in", "aler"), value, key=key,
                                                 headers=headers)
                    while True:
                        got = await reader.getmany(timeout_ms=5000)
                        found = [m for batch in got.values() for m in batch
                                 if dict(m.headers).get("correlation-id") == correlation.encode()]
                        if found:
                            marks.mark("arrived")
                            break
                        if not got:
                            raise RuntimeError(f"message {n} did not arrive within 5 s")
                    marks.tracing = n >= args.backlog + args.warmup
                    if marks.tracing:
                        cpu_ms.append((time.process_time() - cpu0) * 1000)
                        rows.append(dict(marks.current))
                    await asyncio.sleep(args.gap_ms / 1000)
                explain = await explain_pending(gw)
            finally:
                await producer.stop()
                await reader.stop()
                await gw.stop()
    finally:
        with contextlib.suppress(Exception):
            await drop()
        with contextlib.suppress(Exception):
            await delete_topics(bootstrap, prefix)

    gaps: dict[str, list[float]] = {}
    for row in rows:
        present = [s for s in STAGES if s in row]
        for before, after in itertools.pairwise(present):
            gaps.setdefault(f"{before}->{after}", []).append((row[after] - row[before]) * 1000)
        gaps.setdefault("total", []).append((row["arrived"] - row["send"]) * 1000)
    summary = {name: {"p50": round(statistics.median(v), 2), "max": round(max(v), 2), "n": len(v)}
               for name, v in gaps.items()}
    commits = [(e - s) * 1000 for s, e in marks.offset_commits]
    report: dict[str, Any] = {
        "benchmark": "f1_trace", "started_at": stamp, "messages": args.messages, "backlog": args.backlog,
        "gap_ms": args.gap_ms,
        "loadavg_at_start": loadavg_start, "loadavg_at_end": _loadavg(),
        "stage_gaps_ms": summary,
        "offset_commit_ms": {"p50": round(statistics.median(commits), 2), "n": len(commits)} if commits else None,
        "sql_ms_per_message": {k: round(sum(v) / len(rows), 2) for k, v in
                               sorted(marks.sql.items(), key=lambda kv: -sum(kv[1]))} if rows else None,
        "pending_outbox_plan": explain,
        "gc_ms_per_message": round(marks.gc_ms / len(rows), 3) if rows else None,
        "process_cpu_ms_per_message_p50": round(statistics.median(cpu_ms), 2) if cpu_ms else None,
    }
    for words, ms in (report["sql_ms_per_message"] or {}).items():
        print(f"  sql {ms:7.2f} ms/message  {words}")
    for name, s in summary.items():
        print(f"{name:28s} p50 {s['p50']:8.2f} ms   max {s['max']:8.2f} ms   (n={s['n']})")
    print(f"offset commit: {report['offset_commit_ms']}; process CPU per message p50 "
          f"{report['process_cpu_ms_per_message_p50']} ms; GC {report['gc_ms_per_message']} ms per message; "
          f"load {loadavg_start} -> {report['loadavg_at_end']}")
    path = RESULTS_DIR / f"f1-trace-{stamp}.json"
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print("\n".join(explain))
    print(f"saved {path.relative_to(REPO_ROOT)}")
    return 0


async def explain_pending(gw: Any) -> list[str]:
    """The plan PostgreSQL chose for the relay's read of pending rows, run once more at the end."""
    from sqlalchemy import select, text

    from gateway.store.tables import outbox, outbox_queue

    query = (select(outbox).join(outbox_queue, outbox_queue.c.id == outbox.c.id)
             .order_by(outbox_queue.c.id).limit(200).with_for_update(of=outbox_queue, skip_locked=True))
    async with gw.store.engine.connect() as db:
        compiled = str(query.compile(db.sync_connection, compile_kwargs={"literal_binds": True}))
        plan = await db.execute(text("EXPLAIN (ANALYZE, BUFFERS) " + compiled))
        return [row[0] for row in plan]


async def backlog(producer: Any, reader: Any, topic: str, make: MessageFactory, count: int) -> None:
    """Send ``count`` messages at once and wait for their referrals: the state a loaded gateway is left in."""
    for n in range(count):
        key, value, _, headers = make(n)
        await producer.send(topic, value, key=key, headers=headers)
    await producer.flush()
    arrived = 0
    deadline = time.monotonic() + 120 + count / 50
    while arrived < count and time.monotonic() < deadline:
        got = await reader.getmany(timeout_ms=1000)
        arrived += sum(len(batch) for batch in got.values())
    print(f"backlog: {arrived} of {count} referrals arrived", flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=100, help="messages timed, one at a time (default 100)")
    parser.add_argument("--warmup", type=int, default=10, help="messages sent first and not timed (default 10)")
    parser.add_argument("--tenants", type=int, default=50, help="tenants with a consent (default 50)")
    parser.add_argument("--gap-ms", type=float, default=0.0,
                        help="pause between a referral's arrival and the next send (default 0, as the probe)")
    parser.add_argument("--backlog", type=int, default=0,
                        help="messages sent as one burst before the trace, as a loaded gateway (default 0)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(run(parse_args())))
