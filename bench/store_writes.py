#!/usr/bin/env python3
"""What two choices in the intake's writes cost PostgreSQL, each against its alternative in the same run.

**Ids** (``--only ids``): random ids (UUID version 4) against time-ordered ones (version 7, what
:func:`gateway.uuids.uuid7_text` mints), as keys of the unique indexes every referral writes to.

Each referral writes two audit records (``audit_log``, unique on ``record_id``) and two outbox rows (``outbox``,
unique on ``(topic, message_id)``, the referral's id minted by the gateway, the status's derived from the partner's
own). This copies ``--rows`` rows of each table, shaped as the gateway writes them (about 1 KB of audit record,
an 800-byte referral), in batches of ``--batch`` rows with one commit each, as the intake does, into the tables of
a freshly migrated gateway database (every index the gateway has), once with version 4 ids and once with version
7, alternating ``--rounds`` times. It reports the CPU the PostgreSQL backend spent per row (from ``/proc``: the
server must run on this machine) and the wall time, and the ratio of version 7 over version 4 of the same run.

**Statuses** (``--only statuses``): a batch's message statuses, decided without claiming their ids first, written
with ``INSERT ... SELECT FROM unnest(...) ON CONFLICT DO NOTHING RETURNING`` (what ``claim_messages`` runs)
against ``COPY`` (what ``insert_messages`` runs), ``--rows`` statuses in batches of 500: the CPU of the backend
and of this process (which encodes the rows) per status.

**Activity** (``--only activity``): F13 decision rows (one per decision of every message, no source key) copied
into ``statistics_activity`` in batches of 500, with the unique index on (kind, source key) holding every row (as
before migration 0020) against holding the care rows only (``WHERE source_key IS NOT NULL``, since 0020).

Needs ``GATEWAY_TEST_POSTGRES_DSN`` (``scripts/realinfra.py run --postgres-only -- ...``). Saves
``bench/results/store-writes-<UTC timestamp>.json`` and ``latest-store-writes.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import asyncpg
import privacy_common as common

from gateway.store.statuses import _CLAIM_POSTGRESQL
from gateway.store.store import Store
from gateway.uuids import uuid7_text

KINDS: dict[str, Callable[[], str]] = {"uuid4": lambda: str(uuid.uuid4()), "uuid7": uuid7_text}
AUDIT_COLUMNS = ("idx", "record_id", "event_type", "record", "leaf_hash", "chain_hash", "subject_ref", "recorded_at")
OUTBOX_COLUMNS = ("id", "topic", "recipient", "message_id", "msg_key", "value", "headers", "consent_id",
                  "consent_version", "subject_pseudonym", "created_at")
MESSAGE_COLUMNS = ("sender", "message_id", "correlation_id", "message_type", "state", "reason_class", "recipients",
                   "received_at", "request_id")
PEOPLE = 400
STATUS_BATCH = 500
ACTIVITY_COLUMNS = ("month", "kind", "source", "quartiere", "flow_id", "recipient", "outcome", "weight", "source_key",
                    "vaccine_group")


def backend_cpu_s(pid: int) -> float:
    """User and system CPU seconds of a process on this machine."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def audit_rows(count: int, new_id: Callable[[], str]) -> list[tuple[Any, ...]]:
    now = datetime.now(UTC)
    record = '{"event_type":"decision",' + '"x":"' + "y" * 950 + '"}'
    refs = [os.urandom(16).hex() for _ in range(PEOPLE)]
    return [(i, new_id(), "decision", record, os.urandom(32), os.urandom(32), refs[i % PEOPLE], now)
            for i in range(count)]


def outbox_rows(count: int, new_id: Callable[[], str]) -> list[tuple[Any, ...]]:
    """Referrals to FWA (ids minted by the gateway) and statuses to ALER (ids after the partner's), alternating."""
    now = datetime.now(UTC)
    headers = '[["message-id","gw-x"],["correlation-id","c"],["request-id","r"],["message-type","t"]]'
    rows: list[tuple[Any, ...]] = []
    for i in range(count):
        if i % 2:
            rows.append((i + 1, "status.aler", "aler", f"status-aler-{i // 2:09d}", os.urandom(16), b"s" * 200,
                         headers, None, None, None, now))
        else:
            rows.append((i + 1, "out.fwa", "fwa", f"gw-{new_id()}", os.urandom(16), b"r" * 800, headers,
                         f"consent-{i % PEOPLE}", 1, f"p{i % PEOPLE}", now))
    return rows


async def copy_all(dsn: str, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]],
                   batch: int) -> dict[str, float]:
    conn = await asyncpg.connect(dsn)
    try:
        pid = await conn.fetchval("SELECT pg_backend_pid()")
        cpu0, wall0 = backend_cpu_s(pid), time.perf_counter()
        for start in range(0, len(rows), batch):
            async with conn.transaction():
                await conn.copy_records_to_table(table, columns=columns, records=rows[start:start + batch])
        cpu, wall = backend_cpu_s(pid) - cpu0, time.perf_counter() - wall0
    finally:
        await conn.close()
    return {"postgres_cpu_us_per_row": round(cpu * 1e6 / len(rows), 2),
            "wall_us_per_row": round(wall * 1e6 / len(rows), 2)}


async def migrated(db: common.Database) -> None:
    store = Store.connect(db.url, common.PSEUDONYM_KEY)
    try:
        await store.migrate()
    finally:
        await store.close()


async def ids_run(kind: str, rows: int, batch: int) -> dict[str, Any]:
    async with common.database("postgres") as db:
        await migrated(db)
        audit = await copy_all(db.asyncpg_dsn, "audit_log", AUDIT_COLUMNS, audit_rows(rows, KINDS[kind]), batch)
        outbox = await copy_all(db.asyncpg_dsn, "outbox", OUTBOX_COLUMNS, outbox_rows(rows, KINDS[kind]), batch)
    return {"ids": kind, "audit_log": audit, "outbox": outbox}


async def statuses_run(kind: str, rows: int) -> dict[str, Any]:
    """``rows`` decided statuses written by ``insert`` (the claim's statement) or ``copy``, in batches of 500."""
    now = datetime.now(UTC)
    statuses = [("aler", f"m-{i // STATUS_BATCH}-{i % STATUS_BATCH}", f"c-{i}", "tenancy.arrears-referral",
                 "forwarded", None, '["fwa"]', now, f"r-{i}") for i in range(rows)]
    async with common.database("postgres") as db:
        await migrated(db)
        conn = await asyncpg.connect(db.asyncpg_dsn)
        try:
            pid = await conn.fetchval("SELECT pg_backend_pid()")
            cpu0, own0, wall0 = backend_cpu_s(pid), time.process_time(), time.perf_counter()
            for start in range(0, rows, STATUS_BATCH):
                chunk = statuses[start:start + STATUS_BATCH]
                async with conn.transaction():
                    if kind == "insert":
                        columns = [list(column) for column in zip(*chunk, strict=True)]
                        written = await conn.fetch(_CLAIM_POSTGRESQL, *columns)
                        assert len(written) == len(chunk)
                    else:
                        await conn.copy_records_to_table("messages", columns=MESSAGE_COLUMNS, records=chunk)
            cpu, own = backend_cpu_s(pid) - cpu0, time.process_time() - own0
            wall = time.perf_counter() - wall0
        finally:
            await conn.close()
    return {"statuses": kind, "postgres_cpu_us_per_row": round(cpu * 1e6 / rows, 2),
            "client_cpu_us_per_row": round(own * 1e6 / rows, 2), "wall_us_per_row": round(wall * 1e6 / rows, 2)}


async def activity_run(kind: str, rows: int) -> dict[str, Any]:
    """``rows`` decision rows copied with the care-key index over every row (``full``) or care rows (``partial``)."""
    decisions = [("2026-12", "decision", "aler", f"quartiere-{i % 30}", "F1", "fwa", "permit", 1, None, None)
                 for i in range(rows)]
    async with common.database("postgres") as db:
        await migrated(db)
        conn = await asyncpg.connect(db.asyncpg_dsn)
        try:
            if kind == "full":
                await conn.execute("DROP INDEX ux_statistics_activity_kind_source_key")
                await conn.execute("CREATE UNIQUE INDEX ux_statistics_activity_kind_source_key "
                                   "ON statistics_activity (kind, source_key)")
            pid = await conn.fetchval("SELECT pg_backend_pid()")
            cpu0 = backend_cpu_s(pid)
            for start in range(0, rows, STATUS_BATCH):
                async with conn.transaction():
                    await conn.copy_records_to_table("statistics_activity", columns=ACTIVITY_COLUMNS,
                                                     records=decisions[start:start + STATUS_BATCH])
            cpu = backend_cpu_s(pid) - cpu0
        finally:
            await conn.close()
    return {"care_key_index": kind, "postgres_cpu_us_per_row": round(cpu * 1e6 / rows, 2)}


async def alternated(rounds: int, kinds: tuple[str, ...], run_one: Callable[[str], Awaitable[dict[str, Any]]],
                     describe: Callable[[dict[str, Any]], str]) -> list[dict[str, Any]]:
    """``run_one`` for each of ``kinds`` in turn, ``rounds`` times, each run printed as ``describe`` words it."""
    runs: list[dict[str, Any]] = []
    for round_no in range(rounds):
        for kind in kinds:
            run = await run_one(kind)
            run["round"] = round_no + 1
            runs.append(run)
            print(f"round {round_no + 1} {describe(run)}", flush=True)
    return runs


async def main(args: argparse.Namespace) -> int:
    started, stamp = common.stamp_now()
    load_at_start = common.loadavg()
    runs: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    if args.only in (None, "ids"):
        runs += await alternated(
            args.rounds, tuple(KINDS), lambda kind: ids_run(kind, args.rows, args.batch),
            lambda run: (f"ids {run['ids']}: audit_log {run['audit_log']['postgres_cpu_us_per_row']:.2f} us/row, "
                         f"outbox {run['outbox']['postgres_cpu_us_per_row']:.2f} us/row of PostgreSQL CPU"))
        for table in ("audit_log", "outbox"):
            by_kind = {kind: statistics.median([r[table]["postgres_cpu_us_per_row"] for r in runs
                                                if r.get("ids") == kind]) for kind in KINDS}
            summary[table] = {"postgres_cpu_us_per_row_median": by_kind,
                              "ratio_uuid7_over_uuid4": common.ratio(by_kind["uuid7"], by_kind["uuid4"])}
            print(f"{table}: uuid4 {by_kind['uuid4']:.2f} us/row, uuid7 {by_kind['uuid7']:.2f} us/row, "
                  f"ratio {summary[table]['ratio_uuid7_over_uuid4']}")
    if args.only in (None, "statuses"):
        runs += await alternated(
            args.rounds, ("insert", "copy"), lambda kind: statuses_run(kind, args.rows),
            lambda run: (f"statuses {run['statuses']}: PostgreSQL {run['postgres_cpu_us_per_row']:.2f} us/row, "
                         f"gateway side {run['client_cpu_us_per_row']:.2f} us/row"))
        medians = {kind: {what: statistics.median([r[what] for r in runs if r.get("statuses") == kind])
                          for what in ("postgres_cpu_us_per_row", "client_cpu_us_per_row")}
                   for kind in ("insert", "copy")}
        summary["statuses"] = {"median": medians, "ratio_copy_over_insert": {
            what: common.ratio(medians["copy"][what], medians["insert"][what]) for what in medians["copy"]}}
        print(f"statuses: {summary['statuses']}")
    if args.only in (None, "activity"):
        runs += await alternated(
            args.rounds, ("full", "partial"), lambda kind: activity_run(kind, args.rows),
            lambda run: (f"activity, care-key index over "
                         f"{'every row' if run['care_key_index'] == 'full' else 'care rows only'}: "
                         f"PostgreSQL {run['postgres_cpu_us_per_row']:.2f} us/row"))
        by_index = {kind: statistics.median([r["postgres_cpu_us_per_row"] for r in runs
                                             if r.get("care_key_index") == kind]) for kind in ("full", "partial")}
        summary["activity"] = {"postgres_cpu_us_per_row_median": by_index,
                               "ratio_partial_over_full": common.ratio(by_index["partial"], by_index["full"])}
        print(f"activity: {summary['activity']}")
    report = {
        "benchmark": "store-writes", "started_at": started.isoformat(),
        "parameters": {"rows": args.rows, "batch": args.batch, "rounds": args.rounds, "only": args.only},
        "machine": {**await common.machine(), "loadavg_at_start": load_at_start},
        "runs": runs, "summary": summary,
    }
    common.save_report("store-writes", report, stamp)
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000, help="rows per table and run (default 200,000)")
    parser.add_argument("--batch", type=int, default=1_000, help="rows per transaction (default 1,000)")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each alternative, alternating (default 2)")
    parser.add_argument("--only", choices=("ids", "statuses", "activity"), help="one experiment only (default: both)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
