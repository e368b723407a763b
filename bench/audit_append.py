#!/usr/bin/env python3
"""Audit append throughput with durable commits, against a plain INSERT + COMMIT on the same database.

Every configuration runs for ``--duration`` seconds after a short warm-up, in 1 or 2 writer processes at once
(``--writers``), with 1 or 100 records per transaction (``--batches``):

* **gateway** — :meth:`StoreTransaction.append_audit` in :meth:`Store.transaction`: lock the audit head row,
  chain the records (canonical JSON, leaf and chain hashes, Merkle frontier), insert them, update the head.
  The head row serialises every append, so a second writer process adds little or nothing;
* **baseline** — an ``INSERT`` of rows of the same size (the same canonical record text and two 32-byte
  hashes) into a plain table with a primary key, then ``COMMIT``, on the store's own engine.

Durable commits: on PostgreSQL every session runs with ``synchronous_commit = on``, but the throwaway server of
``scripts/realinfra.py`` starts with ``-c fsync=off`` (command-line options outrank ``ALTER SYSTEM``, and the
role is no superuser), so its commits wait for the WAL write, not for the disk: the JSON says
``"durable": false`` and the figures understate a durable commit. On SQLite the store's own pragmas apply (WAL,
``synchronous=FULL``, ``BEGIN IMMEDIATE``): those commits are flushed. The JSON records the settings in force
and the file system under the data.

Saves ``bench/results/audit-append-<backend>-<stamp>.json`` and ``latest-audit-append-<backend>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import multiprocessing
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import privacy_common as common
from f1_throughput import listening_pid
from sqlalchemy import BigInteger, Column, DateTime, LargeBinary, MetaData, Table, Text, event, insert
from sqlalchemy.engine import make_url

from gateway.audit.canonical import canonical_json
from gateway.audit.chain import GENESIS_CHAIN_HASH
from gateway.audit.record import AuditRecord, KafkaCoordinates
from gateway.store import Store

plain_metadata = MetaData()
plain = Table(
    "bench_plain_append",
    plain_metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("record", Text, nullable=False),
    Column("leaf_hash", LargeBinary(32), nullable=False),
    Column("chain_hash", LargeBinary(32), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)
"""The baseline's table: one row as large as an audit row, no chain, no head row."""


def sample_record() -> AuditRecord:
    """A decision record as the intake writes for F1 (pseudonymous references only)."""
    return AuditRecord(
        event_type="decision", action="forward", occurred_at=datetime.now(UTC), outcome="permit",
        purpose="microcredit-assessment", legal_basis="consent", flow_id="F1", decision_id=str(uuid.uuid4()),
        consent_ref=f"cns-{uuid.uuid4()}@1", policy_revision="r" + "0" * 12, combining_rule="deny-overrides",
        matched_provision="consent:cns-x@1/provision", client_id="aler-system", token_id=str(uuid.uuid4()),
        requesting_org="aler", instance="bench-writer", source_org="aler", recipient_org="fwa",
        subject_ref="0" * 32, message_ids=(f"bench-{uuid.uuid4()}",), correlation_id=f"corr-{uuid.uuid4()}",
        request_id=str(uuid.uuid4()), kafka=KafkaCoordinates(topic="in.aler", partition=0, offset=123456),
        labels=("S2",),
    )


def _durable_session(engine: Any, backend: str) -> None:
    if backend != "postgres":
        return

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("SET synchronous_commit TO on")
        cursor.close()

    event.listen(engine.sync_engine, "connect", on_connect)


# --------------------------------------------------------------------------- writer process


def writer_process(conn: Any, url: str, backend: str, mode: str, batch: int, writer: int, duration: float,
                   warmup: float, start_at: float, id_base: int) -> None:
    """Child: append for ``duration`` seconds from ``start_at`` (time.time) on; send back counts and latencies."""
    try:
        conn.send(("ok", asyncio.run(_writer(url, backend, mode, batch, writer, duration, warmup, start_at,
                                                  id_base))))
    except BaseException as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        raise


async def _writer(url: str, backend: str, mode: str, batch: int, writer: int, duration: float, warmup: float,
                  start_at: float, id_base: int) -> dict[str, Any]:
    store = Store.connect(url, common.PSEUDONYM_KEY)
    _durable_session(store.engine, backend)
    template = sample_record()
    text = canonical_json(template.for_log(0, GENESIS_CHAIN_HASH, datetime.now(UTC))).decode()
    next_id = id_base + writer * 10**10

    async def gateway_once() -> None:
        records = [template.model_copy(update={"record_id": str(uuid.uuid4())}) for _ in range(batch)]
        async with store.transaction() as tx:
            await tx.append_audit(records)

    async def baseline_once() -> None:
        nonlocal next_id
        now = datetime.now(UTC)
        rows = [{"id": next_id + k, "record": text, "leaf_hash": os.urandom(32), "chain_hash": os.urandom(32),
                 "recorded_at": now} for k in range(batch)]
        next_id += batch
        async with store.engine.begin() as db:
            await db.execute(insert(plain), rows)

    once = gateway_once if mode == "gateway" else baseline_once
    latencies: list[float] = []
    try:
        await asyncio.sleep(max(0.0, start_at - time.time()))
        end_warmup = time.monotonic() + warmup
        while time.monotonic() < end_warmup:
            await once()
        t_end = time.monotonic() + duration
        cpu0 = time.process_time()
        t0 = time.monotonic()
        while time.monotonic() < t_end:
            t1 = time.perf_counter_ns()
            await once()
            latencies.append((time.perf_counter_ns() - t1) / 1e6)
        wall = time.monotonic() - t0
        cpu = time.process_time() - cpu0
    finally:
        await store.close()
    return {"transactions": len(latencies), "records": len(latencies) * batch, "wall_s": wall,
            "cpu_s": cpu, "latencies_ms": latencies, "record_bytes": len(text)}


# --------------------------------------------------------------------------- orchestration

_CONFIG_SERIAL = itertools.count(1)
"""Numbers the configurations of a run, so the baseline's primary keys never repeat."""


async def run_config(db: common.Database, mode: str, batch: int, writers: int, duration: float,
                     warmup: float) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    start_at = time.time() + 3.0  # spawn and connect first; all writers start together
    children = []
    for w in range(writers):
        parent, child = ctx.Pipe()
        process = ctx.Process(target=writer_process, daemon=True,
                              args=(child, db.url, db.backend, mode, batch, w + 1, duration, warmup, start_at,
                                    next(_CONFIG_SERIAL) * 10**12))
        process.start()
        children.append((process, parent))
    results = []
    for process, parent in children:
        status, payload = await asyncio.to_thread(parent.recv)
        await asyncio.to_thread(process.join, 30)
        if status != "ok":
            raise RuntimeError(f"writer failed: {payload}")
        results.append(payload)
    records = sum(r["records"] for r in results)
    wall = max(r["wall_s"] for r in results)
    latencies = [v for r in results for v in r["latencies_ms"]]
    cpu = sum(r["cpu_s"] for r in results)
    return {
        "mode": mode, "batch": batch, "writers": writers,
        "records_per_s": round(records / wall, 1),
        "transactions_per_s": round(sum(r["transactions"] for r in results) / wall, 1),
        "records": records,
        "transaction_latency": common.percentiles(latencies),
        "writer_cpu_ms_per_record": round(cpu * 1000 / records, 4) if records else None,
        "per_writer_records_per_s": [round(r["records"] / r["wall_s"], 1) for r in results],
        "record_bytes": results[0]["record_bytes"],
    }


async def prepare(db: common.Database) -> None:
    store = Store.connect(db.url, common.PSEUDONYM_KEY)
    try:
        await store.migrate()
        async with store.engine.begin() as conn:
            await conn.run_sync(plain_metadata.create_all)
    finally:
        await store.close()


async def data_filesystem(db: common.Database) -> dict[str, Any]:
    """The file system the data lives on (tmpfs makes fsync free)."""
    if db.backend == "postgres":
        directory = _postgres_data_directory(make_url(db.url).port or 5432)
    else:
        directory = str(db.path.parent if db.path else "")
    mount, fstype = _mount_of(directory)
    return {"data_directory": directory or None, "mount": mount, "fstype": fstype}


def _postgres_data_directory(port: int) -> str:
    """The ``-D`` directory of the server listening on ``port`` (read from its command line, no privilege)."""
    pid = listening_pid(port)
    if pid is None:
        return ""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return ""
    for flag, value in itertools.pairwise(argv):
        if flag == b"-D":
            return value.decode()
    return ""


def _mount_of(directory: str) -> tuple[str | None, str]:
    best: tuple[str | None, str] = (None, "?")
    with contextlib.suppress(OSError):
        for line in Path("/proc/mounts").read_text().splitlines():
            _device, mount, fstype, *_ = line.split()
            if directory.startswith(mount) and len(mount) > len(best[0] or ""):
                best = (mount, fstype)
    return best


async def main(args: argparse.Namespace) -> int:
    started, stamp = common.stamp_now()
    load_at_start = common.loadavg()
    batches = [int(b) for b in args.batches.split(",")]
    writer_counts = [int(w) for w in args.writers.split(",")]
    print(f"audit append {stamp}: {args.backend}, batches {batches}, writers {writer_counts}, "
          f"{args.duration} s each", flush=True)
    results: list[dict[str, Any]] = []
    async with common.database(args.backend) as db:
        await prepare(db)
        server = await common.server_settings(db)
        filesystem = await data_filesystem(db)
        print(f"database: {server}; data on {filesystem['fstype']}", flush=True)
        if server.get("fsync") == "off":
            print("warning: the server runs with fsync=off (the test server of scripts/realinfra.py does): commits "
                  "wait for the WAL write but are not flushed to disk; the figures understate a durable commit",
                  file=sys.stderr)
        for batch in batches:
            for writers in writer_counts:
                for mode in ("baseline", "gateway"):
                    r = await run_config(db, mode, batch, writers, args.duration, args.warmup)
                    results.append(r)
                    print(f"  {mode:9} batch {batch:>4} writers {writers}: {r['records_per_s']:>10,.1f} records/s"
                          f"  tx p50 {r['transaction_latency']['p50']} ms p99 {r['transaction_latency']['p99']} ms",
                          flush=True)
        info = await common.machine(db)
    ratios: dict[str, Any] = {}
    for batch in batches:
        for writers in writer_counts:
            gw = next(r for r in results if (r["mode"], r["batch"], r["writers"]) == ("gateway", batch, writers))
            base = next(r for r in results if (r["mode"], r["batch"], r["writers"]) == ("baseline", batch, writers))
            ratios[f"batch{batch}_writers{writers}"] = {
                "throughput_gateway_over_baseline": common.ratio(gw["records_per_s"], base["records_per_s"]),
                "tx_p50_gateway_over_baseline": common.ratio(gw["transaction_latency"]["p50"],
                                                             base["transaction_latency"]["p50"]),
            }
        if 1 in writer_counts and 2 in writer_counts:
            one = next(r for r in results if (r["mode"], r["batch"], r["writers"]) == ("gateway", batch, 1))
            two = next(r for r in results if (r["mode"], r["batch"], r["writers"]) == ("gateway", batch, 2))
            ratios[f"batch{batch}_gateway_2_writers_over_1"] = common.ratio(two["records_per_s"], one["records_per_s"])
    print("ratios: " + ", ".join(f"{k}={v}" for k, v in ratios.items()))
    report = {
        "benchmark": "audit_append",
        "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "machine": info,
        "contention": common.contention(load_at_start),
        "parameters": {"backend": args.backend, "batches": batches, "writers": writer_counts,
                       "duration_s": args.duration, "warmup_s": args.warmup},
        "database": server,
        "durability": {"session": "SET synchronous_commit TO on" if args.backend == "postgres" else "store pragmas",
                       "server_fsync": server.get("fsync", "n/a (SQLite: synchronous=FULL, WAL)"),
                       "durable": args.backend == "sqlite" or server.get("fsync") == "on",
                       "filesystem": filesystem},
        "results": results,
        "ratios": ratios,
    }
    common.save_report(f"audit-append-{args.backend}", report, stamp)
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backend", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per configuration")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each")
    parser.add_argument("--batches", default="1,100", help="records per transaction, comma-separated")
    parser.add_argument("--writers", default="1,2", help="concurrent writer processes, comma-separated")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
