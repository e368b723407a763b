#!/usr/bin/env python3
"""Delivery behind a backlog: what a worker's claim of its own batch, and a sweep, cost when the outbox holds
many undelivered rows, against the same calls with none, in the same run on the same database.

A broker outage does not stop the intake: it keeps deciding and queueing, and the outbox fills with rows the
workers could not deliver. When the broker is back, every batch a worker commits is claimed and delivered at
once (:meth:`claim_undelivered` with ``dequeue``) while the relay's sweep (:meth:`pending_outbox`) works
through the backlog. Neither should cost more because the backlog is long. The table's statistics are taken
while every row is delivered, as they are in production between outages, so the planner does not know of the
backlog (the case that once made each claim walk it).

For each backlog (``--backlogs``), ``--repeats`` times: queue a batch of ``--batch`` rows in one transaction,
then claim it in another (timed, committed); then one sweep of 200 rows (timed, rolled back). Reports the p50 of
each call and its ratio to the p50 with no backlog. PostgreSQL only (SQLite has one writer and no planner
statistics of this kind).

Needs ``GATEWAY_TEST_POSTGRES_DSN`` (``scripts/realinfra.py run --postgres-only -- ...``). Saves
``bench/results/outbox-backlog-<stamp>.json`` and ``latest-outbox-backlog.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import privacy_common as common
from sqlalchemy import text

from gateway.store import OutboxRow, Store

VALUE = b'{"message_type": "microcredit.referral", "payload": "' + b"x" * 480 + b'"}'
"""About as large as an F1 referral to FWA."""


def queued(count: int, now: datetime) -> list[OutboxRow]:
    """``count`` outgoing rows, half referrals and half statuses, as a batch of F1 leaves them."""
    return [OutboxRow(topic="gw.out.fwa" if n % 2 else "gw.status.aler", recipient="fwa" if n % 2 else "aler",
                      message_id=f"gw-{uuid.uuid4()}", value=VALUE, key=b"record-key",
                      headers=(("message-id", "m"), ("message-type", "microcredit.referral")), created_at=now)
            for n in range(count)]


async def enqueue(store: Store, rows: list[OutboxRow], chunk: int = 5_000) -> None:
    for start in range(0, len(rows), chunk):
        async with store.transaction() as tx:
            await tx.enqueue(rows[start:start + chunk])


async def measure(store: Store, batch: int, repeats: int) -> dict[str, Any]:
    """p50 of a worker's claim of a fresh batch and of a 200-row sweep, at the current backlog."""
    claims, sweeps = [], []
    for _ in range(repeats):
        now = datetime.now(UTC)
        rows = queued(batch, now)
        await enqueue(store, rows)
        async with store.transaction() as tx:
            elapsed, claimed = await common.timed_ms(lambda tx=tx, rows=rows, now=now:
                                                     tx.claim_undelivered(rows, dequeue=True))
        if len(claimed) != batch:
            raise RuntimeError(f"claimed {len(claimed)} of {batch} rows")
        claims.append(elapsed)
        with contextlib.suppress(_Undo):
            async with store.transaction() as tx:
                elapsed, _ = await common.timed_ms(lambda tx=tx: tx.pending_outbox(200))
                sweeps.append(elapsed)
                raise _Undo
    return {"claim_ms": common.percentiles(claims), "sweep_ms": common.percentiles(sweeps)}


class _Undo(Exception):
    """Rolls the sweep's transaction back: the backlog stays as it was."""


async def main(args: argparse.Namespace) -> int:
    started, stamp = common.stamp_now()
    load_at_start = common.loadavg()
    backlogs = sorted({0, *(int(b) for b in args.backlogs.split(","))})
    print(f"outbox backlog {stamp}: backlogs {backlogs}, claims of {args.batch} rows, {args.repeats} each",
          flush=True)
    results: list[dict[str, Any]] = []
    async with common.database("postgres") as db:
        store = Store.connect(db.url, common.PSEUDONYM_KEY)
        try:
            await store.migrate()
            delivered = queued(args.delivered, datetime.now(UTC))
            await enqueue(store, delivered)
            async with store.transaction() as tx:
                await tx._fetch("DELETE FROM outbox_queue")  # every row delivered
            async with store.engine.connect() as conn:  # statistics of a table whose rows are all delivered
                await conn.execute(text("ANALYZE outbox"))
                await conn.execute(text("ANALYZE outbox_queue"))
                await conn.commit()
            undelivered = 0
            for backlog in backlogs:
                await enqueue(store, queued(backlog - undelivered, datetime.now(UTC)))
                undelivered = backlog
                figures = await measure(store, args.batch, args.repeats)
                results.append({"backlog": backlog, **figures})
                print(f"  backlog {backlog:>8,}: claim p50 {figures['claim_ms']['p50']:>8} ms, "
                      f"sweep p50 {figures['sweep_ms']['p50']:>8} ms", flush=True)
            server = await common.server_settings(db)
        finally:
            await store.close()
        info = await common.machine(db)
    base = results[0]
    ratios = {f"backlog_{r['backlog']}": {
        "claim_p50_over_none": common.ratio(r["claim_ms"]["p50"], base["claim_ms"]["p50"]),
        "sweep_p50_over_none": common.ratio(r["sweep_ms"]["p50"], base["sweep_ms"]["p50"]),
    } for r in results[1:]}
    print("ratios to no backlog: " + ", ".join(
        f"{k}: claim {v['claim_p50_over_none']}, sweep {v['sweep_p50_over_none']}" for k, v in ratios.items()))
    common.save_report("outbox-backlog", {
        "benchmark": "outbox_backlog", "started_at": started.isoformat(), "finished_at": datetime.now(UTC).isoformat(),
        "machine": info, "contention": common.contention(load_at_start), "database": server,
        "parameters": {"backlogs": backlogs, "batch": args.batch, "repeats": args.repeats,
                       "delivered": args.delivered},
        "results": results, "ratios": ratios,
    }, stamp)
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backlogs", default="2000,20000,100000",
                        help="undelivered rows to measure behind, comma-separated (none is always measured)")
    parser.add_argument("--batch", type=int, default=400, help="rows a worker claims (F1: 2 per referral)")
    parser.add_argument("--repeats", type=int, default=9, help="claims and sweeps measured per backlog")
    parser.add_argument("--delivered", type=int, default=50_000,
                        help="delivered rows in the table when its statistics are taken")
    args = parser.parse_args(argv)
    if args.batch < 1 or args.repeats < 1 or args.delivered < 0:
        parser.error("--batch and --repeats must be >= 1, --delivered >= 0")
    return args


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
