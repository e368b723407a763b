#!/usr/bin/env python3
"""Consent decision latency with many consents on record, against a primary-key read on the same database.

Loads ``--consents`` consent versions (default 1,000,000) for ``--subjects`` subjects (default half as many)
straight into the store's ``subjects``, ``subject_identifiers`` (if the schema has it) and ``consents`` tables
(PostgreSQL ``COPY``, SQLite ``executemany`` in large batches), then times the decision path the intake runs
for every message, on random subjects:

* **gateway** — in one :meth:`Store.transaction`: look the subject up by the keyed hash of its identifier
  (:meth:`StoreTransaction.subject`), read every version of its consents (:meth:`StoreTransaction.consents_for`)
  and run :func:`gateway.policy.decide` for F1 (ALER -> FWA, ``microcredit-assessment``);
* **baseline, SQL** — one primary-key ``SELECT`` of one ``subjects`` row, through the raw driver (asyncpg or
  aiosqlite) and through SQLAlchemy Core on a plain engine, each in its own transaction;
* **gateway, in batches** — the intake's own path for a fetched batch of 200 messages: every subject and every
  consent of the batch read in one statement each (:meth:`StoreTransaction.prefetch_subjects`,
  :meth:`StoreTransaction.consents_for_many`), then :func:`decide` for each; the time of a batch divided by 200
  is the cost of one decision as the pipeline pays it;
* **baseline, in memory** — :func:`decide` alone on the consents read for the same subjects;
* **index** — what a worker does since it keeps a consent index (:mod:`gateway.consents.index`): the index is
  loaded from the store (its load time and the process's resident memory before and after are reported), then
  each decision reads the subject's consents from it and runs :func:`decide` (no database);
* **index, in batches** — the intake's path with the index: subjects read in one statement, the store's latest
  consent number read once (:meth:`ConsentIndex.current`), consents from the index, :func:`decide` for each.

Every latency is the wall time of one call, one call at a time (no concurrency). Ratios gateway/baseline are
printed and saved in ``bench/results/decision-latency-<backend>-<stamp>.json`` and
``latest-decision-latency-<backend>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import io
import os
import random
import sqlite3
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import orjson
import privacy_common as common
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.consents.index import ConsentIndex
from gateway.policy import DecisionRequest, decide, load_registry
from gateway.policy.consent import Capture, ConsentRecord, Notice, Withdrawal
from gateway.store import Store
from gateway.store.tables import consents, metadata, subjects

CF_SYSTEM = "cf"
"""The identifier system the intake looks people up by first."""
PURPOSE = "microcredit-assessment"
DECISION_BATCH = 200
"""Decisions per batch in the batch phase: what the inbound consumer fetches at a time."""
OTHER_PURPOSE = "social-support-coordination"
BATCH = 50_000


def identifier(i: int) -> str:
    """A synthetic identifier value for subject ``i`` (not a codice fiscale: only its keyed hash is stored)."""
    return f"BENCHSUBJ{i:09d}"


def pseudonym(i: int) -> str:
    return f"sbj_bench{i:012d}"


def consent_rows(i: int, versions: int, now: datetime) -> list[dict[str, Any]]:
    """``versions`` consent versions of subject ``i``: a permit for F1; the second version withdraws it for
    one subject in four (the decision then finds no applicable consent), else starts a second lineage for
    another purpose; any further versions alternate re-consent and withdrawal of the first lineage."""
    start = now - timedelta(days=30)
    end = now + timedelta(days=335)
    base = {"subject_pseudonym": pseudonym(i), "decision": "permit", "recipients": ["fwa"],
            "period_start": start, "period_end": end, "recorded_by": "aler"}
    lineage_a = f"cns-b{i:011d}-a"
    rows = [{**base, "consent_id": lineage_a, "version": 1, "status": "active", "purposes": [PURPOSE],
             "withdrawn": False, "recorded_at": start}]
    a_version = 1
    for v in range(2, versions + 1):
        if v == 2 and i % 4 != 0:
            rows.append({**base, "consent_id": f"cns-b{i:011d}-b", "version": 1, "status": "active",
                         "purposes": [OTHER_PURPOSE], "recipients": ["comune"], "withdrawn": False,
                         "recorded_at": start + timedelta(days=1)})
            continue
        a_version += 1
        withdrawn = a_version % 2 == 0
        rows.append({**base, "consent_id": lineage_a, "version": a_version,
                     "status": "inactive" if withdrawn else "active", "purposes": [PURPOSE],
                     "withdrawn": withdrawn, "recorded_at": start + timedelta(days=v)})
    return rows


NOTICE = Notice(uri="https://gateway.quartieri.example/notices/microcredito", version="2026.1",
                text_hash="sha256:" + "ab" * 32, language="it")
"""The current microcredit notice of the registry (``notices.yaml``): a retired one would make no consent apply."""


def with_document(row: dict[str, Any]) -> dict[str, Any]:
    """The row with the stored document the consent registry writes (what the gateway parses when it reads a
    consent): as a partner records it, with the notice shown and how it was captured (unique per consent)."""
    record = ConsentRecord(
        consent_id=row["consent_id"], version=row["version"], subject_pseudonym=row["subject_pseudonym"],
        status=row["status"], decision=row["decision"], purposes=frozenset(row["purposes"]),
        recipients=frozenset(row["recipients"]), period_start=row["period_start"], period_end=row["period_end"],
        recorded_at=row["recorded_at"], consent_type="express", notice=NOTICE, legal_basis="GDPR-6.1.a",
        controllers=frozenset({"aler"}),
        capture=Capture(method="assisted", channel="casa-centre", operator="op-17",
                        document_ref=f"modulo-{row['consent_id']}-{row['version']}"),
        withdrawal=Withdrawal(at=row["recorded_at"]) if row["withdrawn"] else None, withdrawn=row["withdrawn"],
    )
    return {**row, "consent_type": record.consent_type, "document": orjson.dumps(record.document()).decode()}


def plan(consent_count: int, subject_count: int) -> list[int]:
    """Versions per subject, summing to ``consent_count``, as even as possible."""
    per, extra = divmod(consent_count, subject_count)
    return [per + (1 if i < extra else 0) for i in range(subject_count)]


# --------------------------------------------------------------------------- loading


async def load(db: common.Database, store: Store, versions: list[int]) -> dict[str, Any]:
    """Bulk insert subjects and consents; only columns that exist in the tables are written."""
    now = datetime.now(UTC)
    subject_cols = [c.name for c in subjects.columns if c.name in ("pseudonym", "lookup_hash", "subject_key",
                                                                   "created_at")]
    identifiers = metadata.tables.get("subject_identifiers")  # identifiers linked to a subject, if the schema has it
    identifier_cols = ["lookup_hash", "pseudonym", "created_at"]
    consent_cols = [c.name for c in consents.columns]
    known_consent = {"consent_id", "version", "subject_pseudonym", "status", "decision", "purposes", "recipients",
                     "period_start", "period_end", "withdrawn", "recorded_at", "recorded_by", "consent_type",
                     "document"}
    extra = [c for c in consents.columns if c.name not in known_consent]
    missing = [c.name for c in extra if not c.nullable and c.default is None and c.server_default is None]
    if missing:
        raise SystemExit(f"error: consents has required columns this benchmark does not fill: {missing}")
    consent_cols = [c for c in consent_cols if c in known_consent]
    t0 = time.perf_counter()
    subject_total = consent_total = 0

    def subject_batch(lo: int, hi: int) -> list[dict[str, Any]]:
        return [{"pseudonym": pseudonym(i), "lookup_hash": store.lookup_hash(CF_SYSTEM, identifier(i)),
                 "subject_key": hashlib.sha256(b"k" + i.to_bytes(8, "big")).digest(), "created_at": now}
                for i in range(lo, hi)]

    def consent_batch(lo: int, hi: int) -> list[dict[str, Any]]:
        return [with_document(row) for i in range(lo, hi) for row in consent_rows(i, versions[i], now)]

    n = len(versions)
    if db.backend == "postgres":
        import asyncpg  # type: ignore[import-untyped]

        conn = await asyncpg.connect(db.asyncpg_dsn)
        try:
            for lo in range(0, n, BATCH):
                hi = min(n, lo + BATCH)
                srows = subject_batch(lo, hi)
                await conn.copy_records_to_table("subjects", records=[tuple(r[c] for c in subject_cols)
                                                                       for r in srows], columns=subject_cols)
                if identifiers is not None:
                    await conn.copy_records_to_table("subject_identifiers", columns=identifier_cols,
                                                     records=[tuple(r[c] for c in identifier_cols) for r in srows])
                crows = consent_batch(lo, hi)
                records = [tuple(orjson.dumps(r[c]).decode() if c in ("purposes", "recipients") else r[c]
                                 for c in consent_cols) for r in crows]
                await _copy_text(conn, "consents", consent_cols, records)
                subject_total += len(srows)
                consent_total += len(crows)
                if lo // BATCH % 4 == 0:
                    print(f"  loaded {subject_total:,} subjects, {consent_total:,} consents "
                          f"({time.perf_counter() - t0:.0f} s)", flush=True)
            await conn.execute("ANALYZE")
        finally:
            await conn.close()
    else:
        assert db.path is not None
        raw = sqlite3.connect(db.path)
        try:
            raw.execute("PRAGMA synchronous=OFF")  # loading only; the measurement uses the store's own pragmas
            s_sql = f"INSERT INTO subjects ({', '.join(subject_cols)}) VALUES ({', '.join('?' * len(subject_cols))})"  # noqa: S608 - column names from tables.py
            c_sql = f"INSERT INTO consents ({', '.join(consent_cols)}) VALUES ({', '.join('?' * len(consent_cols))})"  # noqa: S608 - column names from tables.py

            def sqlite_value(c: str, v: Any) -> Any:
                if c in ("purposes", "recipients"):
                    return orjson.dumps(v).decode()
                if isinstance(v, datetime):
                    return v.strftime("%Y-%m-%d %H:%M:%S.%f")
                return v

            for lo in range(0, n, BATCH):
                hi = min(n, lo + BATCH)
                srows = subject_batch(lo, hi)
                raw.executemany(s_sql, [tuple(sqlite_value(c, r[c]) for c in subject_cols) for r in srows])
                if identifiers is not None:
                    raw.executemany(_insert_sql("subject_identifiers", identifier_cols),
                                    [tuple(sqlite_value(c, r[c]) for c in identifier_cols) for r in srows])
                crows = consent_batch(lo, hi)
                raw.executemany(c_sql, [tuple(sqlite_value(c, r[c]) for c in consent_cols) for r in crows])
                raw.commit()
                subject_total += len(srows)
                consent_total += len(crows)
            raw.execute("ANALYZE")
            raw.commit()
        finally:
            raw.close()
    seconds = time.perf_counter() - t0
    print(f"loaded {subject_total:,} subjects and {consent_total:,} consent versions in {seconds:.1f} s", flush=True)
    written = {"subjects": subject_cols, "consents": consent_cols,
               "subject_identifiers": identifier_cols if identifiers is not None else None}
    return {"subjects": subject_total, "consent_versions": consent_total, "seconds": round(seconds, 1),
            "rows_per_s": round((subject_total + consent_total) / seconds), "columns_written": written,
            "method": "COPY (asyncpg)" if db.backend == "postgres" else "executemany (sqlite3), synchronous=OFF"}


def _insert_sql(table: str, columns: list[str]) -> str:
    """A positional INSERT; table and column names come from tables.py, never from input."""
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"  # noqa: S608


async def _copy_text(conn: Any, table: str, columns: list[str], records: list[tuple[Any, ...]]) -> None:
    """COPY in text format (JSON columns as text; asyncpg's binary COPY has no codec for ``json``)."""
    buffer = io.StringIO()
    for record in records:
        buffer.write("\t".join(_copy_field(v) for v in record))
        buffer.write("\n")
    data = buffer.getvalue().encode()
    await conn.copy_to_table(table, source=io.BytesIO(data), columns=columns, format="text")


def _copy_field(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


# --------------------------------------------------------------------------- measuring


async def measure(db: common.Database, store: Store, sample: list[int], warmup: int) -> dict[str, Any]:
    registry = load_registry()
    flow = next(f for f in registry.flows if f.sender == "aler" and f.recipient == "fwa" and f.purpose == PURPOSE)
    now = datetime.now(UTC)
    outcomes: dict[str, int] = {}
    read: dict[int, list[ConsentRecord]] = {}

    async def gateway_path(i: int) -> None:
        async with store.transaction() as tx:
            subject = await tx.subject(CF_SYSTEM, identifier(i), create=False)
            assert subject is not None
            found = await tx.consents_for(subject.pseudonym)
        decision = decide(DecisionRequest(sender="aler", sender_role="system", recipient="fwa",
                                          message_type=flow.message_type, purpose=PURPOSE,
                                          subject_pseudonym=subject.pseudonym), registry, found, now)
        read[i] = found
        key = "permit" if decision.permitted else f"deny:{decision.reason}"
        outcomes[key] = outcomes.get(key, 0) + 1

    async def gateway_batch(batch: list[int]) -> None:
        """The intake's path for a fetched batch: subjects and consents read once for all, then decide each."""
        async with store.transaction() as tx:
            await tx.prefetch_subjects([(CF_SYSTEM, identifier(i)) for i in batch])
            found_subjects = [await tx.subject(CF_SYSTEM, identifier(i), create=False) for i in batch]
            consents_of = await tx.consents_for_many({s.pseudonym for s in found_subjects if s is not None})
        for subject in found_subjects:
            assert subject is not None
            decide(DecisionRequest(sender="aler", sender_role="system", recipient="fwa",
                                   message_type=flow.message_type, purpose=PURPOSE,
                                   subject_pseudonym=subject.pseudonym), registry, consents_of[subject.pseudonym], now)

    plain = create_async_engine(db.url)

    async def core_pk(i: int) -> None:
        async with plain.begin() as conn:
            row = (await conn.execute(select(subjects.c.pseudonym, subjects.c.subject_key)
                                      .where(subjects.c.pseudonym == pseudonym(i)))).first()
        assert row is not None

    raw_pk, close_raw = await _raw_pk(db)

    try:
        # interleave the phases in two halves so drift in machine load hits all of them alike
        halves = (sample[: len(sample) // 2], sample[len(sample) // 2:])
        acc: dict[str, list[float]] = {"gateway": [], "raw_driver_pk_select": [], "sqlalchemy_core_pk_select": []}
        for half in halves:
            acc["raw_driver_pk_select"] += await _timed_each(raw_pk, half, warmup)
            acc["sqlalchemy_core_pk_select"] += await _timed_each(core_pk, half, warmup)
            acc["gateway"] += await _timed_each(gateway_path, half, warmup)
    finally:
        await close_raw()
        await plain.dispose()

    batches = [sample[k:k + DECISION_BATCH] for k in range(0, len(sample) - DECISION_BATCH + 1, DECISION_BATCH)]
    batch_times = await _timed_each(gateway_batch, batches[:1] + batches, 1)
    per_decision_in_batches = [t / DECISION_BATCH for t in batch_times[1:]]

    decide_times: list[float] = []
    pseudonyms = {i: pseudonym(i) for i in sample}
    for _ in range(3):  # three passes: decide() is microseconds, the first pass warms caches
        decide_times = []
        for i in sample:
            request = DecisionRequest(sender="aler", sender_role="system", recipient="fwa",
                                      message_type=flow.message_type, purpose=PURPOSE, subject_pseudonym=pseudonyms[i])
            found = read[i]
            t0 = time.perf_counter_ns()
            decide(request, registry, found, now)
            decide_times.append((time.perf_counter_ns() - t0) / 1e6)
    index_figures, index_times, index_batch_times = await _index_phase(store, sample, registry, flow.message_type, now,
                                                                       read)
    versions_read = [len(v) for v in read.values()]
    result = {name: common.percentiles(times) for name, times in acc.items()}
    result["index_load"] = index_figures
    result["index_decision"] = common.percentiles(index_times, digits=4)
    result["index_in_batches_per_decision"] = common.percentiles(index_batch_times, digits=4)
    result["index_in_batches_per_decision"]["batch"] = DECISION_BATCH
    result["decide_in_memory"] = common.percentiles(decide_times, digits=4)
    result["gateway_in_batches_per_decision"] = common.percentiles(per_decision_in_batches, digits=4)
    result["gateway_in_batches_per_decision"]["batch"] = DECISION_BATCH
    result["outcomes_including_warmup"] = outcomes
    result["consent_versions_read_per_decision"] = {"mean": round(sum(versions_read) / len(versions_read), 2),
                                                    "max": max(versions_read)}
    return result


def _rss_mb() -> float:
    """This process's resident memory (Linux ``/proc``), in MB."""
    gc.collect()
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise SystemExit("error: /proc/self/status has no VmRSS")


async def _index_phase(store: Store, sample: list[int], registry: Any, message_type: str, now: datetime,
                       read: dict[int, list[ConsentRecord]]) -> tuple[dict[str, Any], list[float], list[float]]:
    """Load a consent index from the store, then time decisions from it, one at a time and in batches; each
    decision must be the one the consents read from the store (``read``) gave."""
    before = _rss_mb()
    t0 = time.perf_counter()
    index = ConsentIndex()
    await index.load(store)
    seconds = time.perf_counter() - t0
    after = _rss_mb()
    figures = {"seconds": round(seconds, 1), "subjects": index.subjects, "lineages": len(index),
               "shapes": index.shapes, "rss_before_mb": round(before), "rss_after_mb": round(after),
               "rss_growth_mb": round(after - before)}
    print(f"index loaded in {seconds:.1f} s: {index.subjects:,} subjects, {len(index):,} lineages, "
          f"{index.shapes} shapes, resident memory {before:.0f} -> {after:.0f} MB", flush=True)

    def request(i: int) -> DecisionRequest:
        return DecisionRequest(sender="aler", sender_role="system", recipient="fwa", message_type=message_type,
                               purpose=PURPOSE, subject_pseudonym=pseudonym(i))

    def said(question: DecisionRequest, found: list[ConsentRecord]) -> tuple[str, str | None, str | None]:
        decision = decide(question, registry, found, now)
        return decision.outcome, decision.reason, decision.consent_ref

    seen: dict[str, int] = {}
    times: list[float] = []
    for _ in range(3):  # the first pass warms caches
        times = []
        seen = {}
        for i in sample:
            question = request(i)
            t = time.perf_counter_ns()
            decision = decide(question, registry, index.consents_of(question.subject_pseudonym), now)
            times.append((time.perf_counter_ns() - t) / 1e6)
            key = "permit" if decision.permitted else f"deny:{decision.reason}"
            seen[key] = seen.get(key, 0) + 1
    differ = [i for i in sample if said(request(i), index.consents_of(pseudonym(i))) != said(request(i), read[i])]
    if differ:
        raise SystemExit(f"error: the index and the store's consents decided differently for {len(differ)} subjects")

    async def batch_path(batch: list[int]) -> None:
        async with store.transaction() as tx:
            await tx.prefetch_subjects([(CF_SYSTEM, identifier(i)) for i in batch])
            found = [await tx.subject(CF_SYSTEM, identifier(i), create=False) for i in batch]
            consents_of = await index.current(tx, {s.pseudonym for s in found if s is not None})
        for subject in found:
            assert subject is not None
            decide(DecisionRequest(sender="aler", sender_role="system", recipient="fwa", message_type=message_type,
                                   purpose=PURPOSE, subject_pseudonym=subject.pseudonym), registry,
                   consents_of[subject.pseudonym], now)

    batches = [sample[k:k + DECISION_BATCH] for k in range(0, len(sample) - DECISION_BATCH + 1, DECISION_BATCH)]
    batch_times = await _timed_each(batch_path, batches[:1] + batches, 1)
    figures["outcomes"] = seen
    return figures, times, [t / DECISION_BATCH for t in batch_times[1:]]


async def _timed_each(fn: Any, items: list[int], warmup: int) -> list[float]:
    for i in items[:warmup]:
        await fn(i)
    times: list[float] = []
    for i in items:
        t0 = time.perf_counter_ns()
        await fn(i)
        times.append((time.perf_counter_ns() - t0) / 1e6)
    return times


async def _raw_pk(db: common.Database) -> tuple[Any, Any]:
    """One primary-key SELECT through the driver itself, in its own transaction."""
    if db.backend == "postgres":
        import asyncpg

        conn = await asyncpg.connect(db.asyncpg_dsn)
        statement = await conn.prepare("SELECT pseudonym, subject_key FROM subjects WHERE pseudonym = $1")

        async def pg(i: int) -> None:
            async with conn.transaction():
                row = await statement.fetchrow(pseudonym(i))
            assert row is not None

        return pg, conn.close
    import aiosqlite

    assert db.path is not None
    lite = await aiosqlite.connect(db.path)
    await lite.execute("PRAGMA journal_mode=WAL")

    async def sq(i: int) -> None:
        async with lite.execute("SELECT pseudonym, subject_key FROM subjects WHERE pseudonym = ?",
                                (pseudonym(i),)) as cursor:
            row = await cursor.fetchone()
        assert row is not None

    return sq, lite.close


async def main(args: argparse.Namespace) -> int:
    started, stamp = common.stamp_now()
    load_at_start = common.loadavg()
    subject_count = args.subjects or max(1, args.consents // 2)
    if not args.consents // 2 <= subject_count <= args.consents:
        raise SystemExit("--subjects must be between --consents/2 and --consents")
    versions = plan(args.consents, subject_count)
    print(f"decision latency {stamp}: {args.backend}, {args.consents:,} consent versions for {subject_count:,} "
          f"subjects, {args.samples:,} sampled decisions", flush=True)
    async with common.database(args.backend) as db:
        store = Store.connect(db.url, common.PSEUDONYM_KEY)
        try:
            await store.migrate()
            server = await common.server_settings(db)
            loaded = await load(db, store, versions)
            rng = random.Random(args.seed)
            sample = [rng.randrange(subject_count) for _ in range(args.samples)]
            print("measuring (raw driver, SQLAlchemy Core, gateway path; two interleaved halves) ...", flush=True)
            figures = await measure(db, store, sample, args.warmup)
        finally:
            await store.close()
        info = await common.machine(db)
    gw = figures["gateway"]
    ratios = {
        "gateway_p50_over_raw_pk_select_p50": common.ratio(gw["p50"], figures["raw_driver_pk_select"]["p50"]),
        "gateway_p99_over_raw_pk_select_p99": common.ratio(gw["p99"], figures["raw_driver_pk_select"]["p99"]),
        "gateway_p50_over_core_pk_select_p50": common.ratio(gw["p50"], figures["sqlalchemy_core_pk_select"]["p50"]),
        "gateway_p99_over_core_pk_select_p99": common.ratio(gw["p99"], figures["sqlalchemy_core_pk_select"]["p99"]),
        "decide_share_of_gateway_p50": common.ratio(figures["decide_in_memory"]["p50"], gw["p50"]),
        "index_decision_p99_over_raw_pk_select_p99": common.ratio(
            figures["index_decision"]["p99"], figures["raw_driver_pk_select"]["p99"]),
        "index_decision_p99_over_gateway_p99": common.ratio(figures["index_decision"]["p99"], gw["p99"]),
        "batched_p99_per_decision_over_raw_pk_select_p99": common.ratio(
            figures["gateway_in_batches_per_decision"]["p99"], figures["raw_driver_pk_select"]["p99"]),
    }
    print(f"\n{'':30}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for name in ("raw_driver_pk_select", "sqlalchemy_core_pk_select", "gateway", "decide_in_memory",
                 "gateway_in_batches_per_decision", "index_decision", "index_in_batches_per_decision"):
        f = figures[name]
        print(f"{name:30}{f['p50']:>10}{f['p90']:>10}{f['p99']:>10}{f['max']:>10}")
    print("ratios: " + ", ".join(f"{k}={v}" for k, v in ratios.items()))
    print(f"outcomes: {figures['outcomes_including_warmup']}")
    report = {
        "benchmark": "decision_latency",
        "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "machine": info,
        "contention": common.contention(load_at_start),
        "parameters": {"backend": args.backend, "consents": args.consents, "subjects": subject_count,
                       "samples": args.samples, "warmup": args.warmup, "seed": args.seed,
                       "path": "Store.transaction: subject(cf, create=False) + consents_for + decide (F1)"},
        "database": server,
        "load": loaded,
        "latency": figures,
        "ratios": ratios,
    }
    common.save_report(f"decision-latency-{args.backend}", report, stamp)
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backend", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--consents", type=int, default=1_000_000, help="consent versions on record (default 1M)")
    parser.add_argument("--subjects", type=int, default=0,
                        help="subjects they belong to, between consents/2 and consents (default consents/2)")
    parser.add_argument("--samples", type=int, default=5000, help="decisions timed, on random subjects")
    parser.add_argument("--warmup", type=int, default=200, help="untimed calls before each timed series")
    parser.add_argument("--seed", type=int, default=int(os.environ.get("BENCH_SEED", "7")))
    args = parser.parse_args(argv)
    if args.consents < 1 or args.samples < 2:
        parser.error("--consents >= 1 and --samples >= 2")
    return args


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
