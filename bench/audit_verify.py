#!/usr/bin/env python3
"""Full verification of a long audit log, against raw SHA-256 over the same bytes; proof sizes and latencies.

1. **Build** ``--records`` audit records (default 1,000,000) the way the store appends them — decision and
   disclosure records chained by :func:`gateway.audit.chain.extend` (RFC 8785 canonical JSON, RFC 6962 leaf
   hash, chain hash, Merkle frontier) in batches of ``--batch`` records per ``recorded_at`` — and bulk insert
   them (PostgreSQL ``COPY``, SQLite ``executemany``) with the head row, a registered Ed25519 key and a signed
   checkpoint (C2SP note) every ``--checkpoint-every`` records, as the checkpointer would have signed them.
2. **Verify** with the code of ``gateway audit verify``: :func:`gateway.audit.offline.verify_stored_log` in this
   process (records/s), and the command itself as a subprocess on the same database (``--cli``).
3. **Baselines** in the same run: SHA-256 of the same canonical bytes (the leaf hashes alone, timed while
   building), and reading every stored record page by page through the raw driver with no checking.
4. **Proofs**: inclusion and consistency proof lengths (hashes and bytes) at sizes 1k, 10k, 100k and 1M (those
   not above ``--records``), and the latency of ``GET /v1/audit/proof/inclusion`` and ``/consistency``
   through the API in process, twice: first as the log is built (no stored Merkle subtrees, like a log
   written before migration 0007: the endpoints fall back to reading every leaf hash up to the tree size),
   then after :func:`gateway.audit.offline.rebuild_stored_nodes` (``gateway audit rebuild-nodes``, timed),
   when they read only the O(log n) stored subtrees a proof needs. The two passes must return the same bytes.
   ``--proofs-only`` skips steps 2 and 3.

Saves ``bench/results/audit-verify-<backend>-<stamp>.json`` and ``latest-audit-verify-<backend>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import privacy_common as common
from audit_append import sample_record
from sqlalchemy import insert
from sqlalchemy.engine import make_url

from gateway.audit.chain import ChainHead, extend
from gateway.audit.checkpoint import Checkpoint, SigningKey, sign_checkpoint
from gateway.audit.merkle import consistency_proof, inclusion_proof
from gateway.audit.offline import rebuild_stored_nodes, verify_stored_log
from gateway.store import Store, StoreTransaction
from gateway.store.tables import audit_checkpoints, audit_head

ORIGIN = "quartieri-gateway/audit"
PROOF_SIZES = (1_000, 10_000, 100_000, 1_000_000)
LOG_COLUMNS = ["idx", "record_id", "event_type", "record", "leaf_hash", "chain_hash", "subject_ref", "recorded_at"]
REPO_ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- building the log


async def build_log(db: common.Database, store: Store, records: int, batch: int, checkpoint_every: int,
                    key: SigningKey | None = None, origin: str = ORIGIN, span: timedelta | None = None,
                    ) -> dict[str, Any]:
    """Chain, hash and bulk insert ``records`` records; returns timings, leaf hashes and the SHA-256 baseline.
    Checkpoints are signed with ``key`` for log ``origin`` (a new key by default); the records are recorded
    one millisecond apart from 30 days ago, or spread evenly over ``span`` up to now."""
    template = sample_record()
    disclosure = template.model_copy(update={"event_type": "disclosure", "data_categories": ("isee_band",),
                                             "obligations": ("NORDSLCD",)})
    key = key or SigningKey.generate(origin)
    head = ChainHead.genesis()
    leaves: list[bytes] = []
    checkpoints: list[dict[str, Any]] = []
    start = datetime.now(UTC) - (span or timedelta(days=30))
    sha_ns = chain_ns = insert_ns = 0
    sha_bytes = 0

    writer = await _bulk_writer(db)
    t_total = time.perf_counter()
    try:
        for lo in range(0, records, batch):
            hi = min(records, lo + batch)
            recorded_at = start + (span * lo / records if span is not None else timedelta(milliseconds=lo))
            made = []
            for i in range(lo, hi):
                base = disclosure if i % 2 else template
                made.append(base.model_copy(update={
                    "record_id": str(uuid.uuid4()), "subject_ref": f"{i // 2:032x}",
                    "message_ids": (f"aler-{i // 2}",) if i % 2 == 0 else (f"aler-{i // 2}", f"gw-{i}"),
                    "correlation_id": f"corr-aler-{i // 2}"}))
            t0 = time.perf_counter_ns()
            entries = []
            # one extend per checkpoint interval inside the batch, so the root at every checkpoint size is read
            cut = lo
            while cut < hi:
                nxt = min(hi, (cut // checkpoint_every + 1) * checkpoint_every)
                entries += extend(head, made[cut - lo:nxt - lo], recorded_at)
                cut = nxt
                if cut % checkpoint_every == 0 or cut == records:
                    checkpoint = Checkpoint(origin, head.size, head.root())
                    checkpoints.append({"tree_size": head.size, "root_hash": head.root(),
                                        "note": sign_checkpoint(checkpoint, key),
                                        "signed_at": recorded_at + timedelta(milliseconds=cut - lo),
                                        "key_name": key.verifier.name, "key_id": key.verifier.key_id.hex()})
            chain_ns += time.perf_counter_ns() - t0
            t0 = time.perf_counter_ns()
            for e in entries:  # the baseline: SHA-256 over the same canonical bytes, as the leaf hash takes them
                hashlib.sha256(b"\x00" + e.canonical).digest()
            sha_ns += time.perf_counter_ns() - t0
            sha_bytes += sum(len(e.canonical) for e in entries)
            leaves += [e.leaf_hash for e in entries]
            rows = [(e.index, r.record_id, r.event_type, e.canonical.decode(), e.leaf_hash, e.chain_hash,
                     r.subject_ref, recorded_at) for e, r in zip(entries, made, strict=True)]
            t0 = time.perf_counter_ns()
            await writer(rows)
            insert_ns += time.perf_counter_ns() - t0
            if (lo // batch) % 20 == 0:
                print(f"  built {hi:,} records ({time.perf_counter() - t_total:.0f} s)", flush=True)
    finally:
        await writer(None)
    async with store.transaction() as tx:
        await tx.add_audit_signing_key(key.verifier, start)
        await tx.conn.execute(insert(audit_head).values(id=1, size=head.size, chain_hash=head.chain_hash,
                                                        frontier=[h.hex() for h in head.tree.frontier]))
        for lo in range(0, len(checkpoints), 5000):
            await tx.conn.execute(insert(audit_checkpoints), checkpoints[lo:lo + 5000])
    total = time.perf_counter() - t_total
    print(f"built and stored {records:,} records and {len(checkpoints):,} checkpoints in {total:.0f} s", flush=True)
    return {
        "leaves": leaves,
        "head": head,
        "build": {"records": records, "checkpoints": len(checkpoints), "seconds": round(total, 1),
                  "chain_s": round(chain_ns / 1e9, 1), "insert_s": round(insert_ns / 1e9, 1),
                  "mean_record_bytes": round(sha_bytes / records, 1), "batch": batch,
                  "checkpoint_every": checkpoint_every,
                  "method": "extend() + COPY" if db.backend == "postgres" else "extend() + executemany"},
        "sha256_baseline": {"records_per_s": round(records / (sha_ns / 1e9)), "seconds": round(sha_ns / 1e9, 3),
                            "mb_per_s": round(sha_bytes / 1e6 / (sha_ns / 1e9), 1)},
    }


async def _bulk_writer(db: common.Database) -> Any:
    """A function that appends rows to audit_log (None closes it)."""
    if db.backend == "postgres":
        import asyncpg  # type: ignore[import-untyped]

        conn = await asyncpg.connect(db.asyncpg_dsn)

        async def pg(rows: list[tuple[Any, ...]] | None) -> None:
            if rows is None:
                await conn.execute("ANALYZE audit_log")
                await conn.close()
                return
            await conn.copy_records_to_table("audit_log", records=rows, columns=LOG_COLUMNS)

        return pg
    assert db.path is not None
    lite = sqlite3.connect(db.path)
    lite.execute("PRAGMA synchronous=OFF")  # loading only
    sql = (f"INSERT INTO audit_log ({', '.join(LOG_COLUMNS)}) "  # noqa: S608 - fixed column names
           f"VALUES ({', '.join('?' * len(LOG_COLUMNS))})")

    async def sq(rows: list[tuple[Any, ...]] | None) -> None:
        if rows is None:
            lite.close()
            return
        lite.executemany(sql, [(*r[:7], r[7].strftime("%Y-%m-%d %H:%M:%S.%f")) for r in rows])
        lite.commit()

    return sq


# --------------------------------------------------------------------------- verifying


def postgres_cpu_s(db: common.Database) -> float | None:
    """CPU seconds used so far by the PostgreSQL server of ``db``: the postmaster, the backends it has reaped
    (its children's time) and the backends still running. None for SQLite or if the server is not local."""
    if db.backend != "postgres":
        return None
    from f1_throughput import _CLK_TCK, _pids, _ppid, listening_pid

    port = make_url(db.url).port or 5432
    postmaster = listening_pid(port)
    if postmaster is None:
        return None
    try:
        text = Path(f"/proc/{postmaster}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    total = sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    for pid in _pids():
        if _ppid(pid) == postmaster:
            try:
                child = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            child_fields = child[child.rindex(")") + 2:].split()
            total += int(child_fields[11]) + int(child_fields[12])
    return total / _CLK_TCK


async def verify_in_process(store: Store, workers: int | None, db: common.Database) -> dict[str, Any]:
    """``verify_stored_log`` as ``gateway audit verify`` calls it (``workers`` None: its own choice).

    CPU is counted in this process, in the worker processes (children, once reaped) and in the PostgreSQL
    server (all its processes: with ``postgres`` from ``scripts/realinfra.py`` that is this run's work alone)."""
    server0 = postgres_cpu_s(db)
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    report = await verify_stored_log(store, ORIGIN, workers=workers)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    server1 = postgres_cpu_s(db)
    server = None if server0 is None or server1 is None else round(server1 - server0, 2)
    workers_cpu = (children1.ru_utime + children1.ru_stime) - (children0.ru_utime + children0.ru_stime)
    if not report.ok:
        raise RuntimeError(f"the benchmark log does not verify: {report.problem}")
    return {"ok": report.ok, "records": report.size, "checkpoints_verified": report.checkpoints,
            "workers": "default" if workers is None else workers,
            "seconds": round(wall, 2), "cpu_s": round(cpu, 2), "workers_cpu_s": round(workers_cpu, 2),
            "postgres_cpu_s": server,
            "cores_busy": round((cpu + workers_cpu + (server or 0)) / wall, 2),
            "cpu_us_per_record": round((cpu + workers_cpu) / max(1, report.size) * 1e6, 2),
            "records_per_s": round(report.size / wall),
            "records_per_s_over_sha256_records_per_s": None, "warnings": len(report.warnings)}


def verify_cli(db: common.Database, records: int) -> dict[str, Any]:
    """``gateway audit verify`` as an operator runs it, on the same database."""
    with tempfile.TemporaryDirectory(prefix="bench-verify-") as tmp:
        env = {**os.environ, "GATEWAY_DATABASE_URL": db.url, "GATEWAY_DATA_DIR": tmp,
               "GATEWAY_AUDIT_ORIGIN": ORIGIN, "GATEWAY_LOG_LEVEL": "WARNING"}
        t0 = time.perf_counter()
        done = subprocess.run([str(REPO_ROOT / ".venv" / "bin" / "gateway"), "audit", "verify"], env=env,  # noqa: S603
                              capture_output=True, text=True, check=False, timeout=3600)
        wall = time.perf_counter() - t0
    line = " ".join(done.stdout.split()) if done.stdout.strip() else done.stderr.strip()[-300:]
    return {"exit_code": done.returncode, "seconds": round(wall, 2), "records_per_s": round(records / wall),
            "output": line}


async def raw_read(db: common.Database, records: int, page: int) -> dict[str, Any]:
    """Baseline: read every stored record page by page through the raw driver, without checking anything."""
    t0 = time.perf_counter()
    if db.backend == "postgres":
        import asyncpg

        conn = await asyncpg.connect(db.asyncpg_dsn)
        try:
            statement = await conn.prepare("SELECT idx, record, leaf_hash, chain_hash, recorded_at FROM audit_log "
                                           "WHERE idx >= $1 ORDER BY idx LIMIT $2")
            start = 0
            while start < records:
                rows = await statement.fetch(start, page)
                if not rows:
                    break
                start = rows[-1]["idx"] + 1
        finally:
            await conn.close()
    else:
        assert db.path is not None
        lite = sqlite3.connect(db.path)
        try:
            start = 0
            while start < records:
                rows = lite.execute("SELECT idx, record, leaf_hash, chain_hash, recorded_at FROM audit_log "
                                    "WHERE idx >= ? ORDER BY idx LIMIT ?", (start, page)).fetchall()
                if not rows:
                    break
                start = rows[-1][0] + 1
        finally:
            lite.close()
    wall = time.perf_counter() - t0
    return {"seconds": round(wall, 2), "records_per_s": round(records / wall), "page": page}


# --------------------------------------------------------------------------- proofs


def proof_sizes(leaves: list[bytes]) -> list[dict[str, Any]]:
    sizes = [s for s in PROOF_SIZES if s <= len(leaves)]
    if len(leaves) not in sizes:
        sizes.append(len(leaves))
    out = []
    for size in sizes:
        tree = leaves[:size]
        inclusion = {str(i): len(inclusion_proof(tree, i)) for i in sorted({0, size // 2, size - 1})}
        consistency = {str(m): len(consistency_proof(tree, m)) for m in sorted({1, size // 2, size - 1}) if m > 0}
        out.append({"tree_size": size,
                     "inclusion_hashes_by_index": inclusion,
                     "inclusion_bytes_max": 32 * max(inclusion.values()),
                     "consistency_hashes_by_old_size": consistency,
                     "consistency_bytes_max": 32 * max(consistency.values()) if consistency else 0})
    return out


async def rebuild_nodes(store: Store) -> dict[str, Any]:
    """``gateway audit rebuild-nodes``: store every complete subtree's hash, from the leaf hashes."""
    t0 = time.perf_counter()
    done = await rebuild_stored_nodes(store)
    wall = time.perf_counter() - t0
    if not done.root_matches:
        raise RuntimeError("the rebuilt subtrees do not lead to the head's root")
    print(f"  rebuilt {done.added:,} subtree hashes for {done.size:,} records in {wall:.1f} s", flush=True)
    return {"nodes_added": done.added, "records": done.size, "seconds": round(wall, 2)}


async def proof_api(db: common.Database, leaves: list[bytes], repeats: int, path: str,
                    bodies: dict[str, bytes]) -> list[dict[str, Any]]:
    """Latency and response size of the proof endpoints, through the API in this process.

    ``path`` labels the pass (``leaves`` or ``nodes``); ``bodies`` maps each URL to the response of an earlier
    pass, which this one must equal byte for byte (filled in when empty). Leaf-hash reads are counted.
    """
    import httpx

    from gateway.api import create_app
    from gateway.auth import PartnerClient, hash_client_secret
    from gateway.bootstrap import build
    from gateway.settings import GatewaySettings

    secret = "bench-secret-not-for-production"  # noqa: S105 - a throwaway client of a throwaway database
    client = PartnerClient("dpo-bench", hash_client_secret(secret), "gateway-privacy", "privacy-officer",
                           frozenset({"audit:verify", "privacy:report", "privacy:erase"}))
    out: list[dict[str, Any]] = []
    leaf_reads = _LeafReads()
    with tempfile.TemporaryDirectory(prefix="bench-proof-") as tmp:
        settings = GatewaySettings(database_url=db.url, data_dir=Path(tmp), audit_origin=ORIGIN,
                                   bus="embedded", log_level="WARNING")
        gw = build(settings, clients=(client,))
        app = create_app(gw, manage_lifecycle=False)
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                         base_url="https://testserver", timeout=600) as http:
                token = await http.post("/oauth/token", data={"grant_type": "client_credentials"},
                                        auth=("dpo-bench", secret))
                token.raise_for_status()
                headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
                sizes = [s for s in PROOF_SIZES if s <= len(leaves)]
                for size in sizes:
                    for kind, url in (("inclusion", f"/v1/audit/proof/inclusion?index={size // 2}&tree_size={size}"),
                                      ("consistency", f"/v1/audit/proof/consistency?first={size // 2}&second={size}")):
                        times: list[float] = []
                        body = b""
                        (await http.get(url, headers=headers)).raise_for_status()  # untimed: warms the path
                        reads = leaf_reads.count
                        for _ in range(repeats):
                            t0 = time.perf_counter_ns()
                            response = await http.get(url, headers=headers)
                            times.append((time.perf_counter_ns() - t0) / 1e6)
                            response.raise_for_status()
                            body = response.content
                        if bodies.setdefault(url, body) != body:
                            raise RuntimeError(f"{url}: the {path} pass answered differently from the first pass")
                        proof = response.json()["proof"]
                        out.append({"path": path, "kind": kind, "tree_size": size,
                                    "latency": common.percentiles(times), "proof_hashes": len(proof),
                                    "response_bytes": len(body), "leaf_hash_reads": leaf_reads.count - reads})
                        print(f"  {kind:11} proof at {size:>9,} from {path:6}: {len(proof)} hashes, {len(body)} "
                              f"bytes, p50 {common.percentiles(times)['p50']} ms "
                              f"({leaf_reads.count - reads} reads of every leaf)", flush=True)
        finally:
            leaf_reads.restore()
            await gw.store.close()
    return out


class _LeafReads:
    """Counts ``StoreTransaction.audit_leaf_hashes`` calls (the proof endpoints' fallback) while installed."""

    def __init__(self) -> None:
        self.count = 0
        self._original = StoreTransaction.audit_leaf_hashes
        original = self._original

        async def counted(tx: StoreTransaction, tree_size: int, start: int = 0) -> list[bytes]:
            self.count += 1
            return await original(tx, tree_size, start)

        StoreTransaction.audit_leaf_hashes = counted  # type: ignore[method-assign, assignment]

    def restore(self) -> None:
        StoreTransaction.audit_leaf_hashes = self._original  # type: ignore[method-assign]


async def main(args: argparse.Namespace) -> int:
    started, stamp = common.stamp_now()
    load_at_start = common.loadavg()
    print(f"audit verify {stamp}: {args.backend}, {args.records:,} records", flush=True)
    async with common.database(args.backend) as db:
        store = Store.connect(db.url, common.PSEUDONYM_KEY)
        try:
            await store.migrate()
            server = await common.server_settings(db)
            built = await build_log(db, store, args.records, args.batch, args.checkpoint_every)
            bodies: dict[str, bytes] = {}
            api = []
            if args.api_repeats > 0:
                print("proofs from every leaf hash (no stored subtrees yet) ...", flush=True)
                api += await proof_api(db, built["leaves"], args.api_repeats, "leaves", bodies)
            print("rebuilding the stored subtrees (gateway audit rebuild-nodes) ...", flush=True)
            rebuilt = await rebuild_nodes(store)
            verified = read = cli = None
            compared: list[dict[str, Any]] = []
            if not args.proofs_only:
                print("verifying (verify_stored_log, in process) ...", flush=True)
                verified = await verify_in_process(store, args.workers, db)
                verified["records_per_s_over_sha256_records_per_s"] = common.ratio(
                    verified["records_per_s"], built["sha256_baseline"]["records_per_s"])
                print(f"  {verified['records']:,} records in {verified['seconds']} s: "
                      f"{verified['records_per_s']:,}/s ({verified['records_per_s_over_sha256_records_per_s']}x "
                      f"SHA-256 of the same bytes); {verified['checkpoints_verified']:,} checkpoints verified; "
                      f"CPU {verified['cpu_s']} s here + {verified['workers_cpu_s']} s in worker processes "
                      f"({verified['cpu_us_per_record']} us per record) + {verified['postgres_cpu_s']} s in "
                      f"PostgreSQL, {verified['cores_busy']} cores busy; load {common.loadavg()}", flush=True)
                if args.compare_workers:
                    for count in args.compare_workers:
                        extra = await verify_in_process(store, count, db)
                        extra["records_per_s_over_sha256_records_per_s"] = common.ratio(
                            extra["records_per_s"], built["sha256_baseline"]["records_per_s"])
                        compared.append(extra)
                        print(f"  workers={count}: {extra['seconds']} s, {extra['records_per_s']:,}/s, CPU "
                              f"{extra['cpu_s']} + {extra['workers_cpu_s']} + PostgreSQL {extra['postgres_cpu_s']} s; "
                              f"load {common.loadavg()}", flush=True)
                read = await raw_read(db, args.records, 5000)
                print(f"  raw read of every record: {read['seconds']} s ({read['records_per_s']:,}/s)", flush=True)
                if args.cli:
                    print("verifying (gateway audit verify, subprocess) ...", flush=True)
                    cli = await asyncio.to_thread(verify_cli, db, args.records)
                    print(f"  exit {cli['exit_code']} in {cli['seconds']} s: {cli['output']}", flush=True)
            proofs = proof_sizes(built["leaves"])
            if args.api_repeats > 0:
                print("proofs from the stored subtrees ...", flush=True)
                api += await proof_api(db, built["leaves"], args.api_repeats, "nodes", bodies)
        finally:
            await store.close()
        info = await common.machine(db)
    sha = built["sha256_baseline"]
    ratios = {} if verified is None or read is None else {
        "verify_records_per_s_over_sha256_records_per_s": common.ratio(verified["records_per_s"],
                                                                       sha["records_per_s"]),
        "verify_seconds_over_raw_read_seconds": common.ratio(verified["seconds"], read["seconds"]),
    }
    if verified is not None:
        print(f"\nverify {verified['records_per_s']:,} records/s; SHA-256 alone {sha['records_per_s']:,} "
              f"records/s; ratios {ratios}")
    for p in proofs:
        print(f"  tree {p['tree_size']:>9,}: inclusion {p['inclusion_hashes_by_index']} hashes, consistency "
              f"{p['consistency_hashes_by_old_size']} hashes")
    report = {
        "benchmark": "audit_verify",
        "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "machine": info,
        "contention": common.contention(load_at_start),
        "parameters": {"backend": args.backend, "records": args.records, "batch": args.batch,
                       "checkpoint_every": args.checkpoint_every, "cli": args.cli, "api_repeats": args.api_repeats,
                       "proofs_only": args.proofs_only},
        "database": server,
        "build": built["build"],
        "verify_in_process": verified,
        "verify_other_worker_counts": compared,
        "verify_cli": cli,
        "baseline_sha256_same_bytes": sha,
        "baseline_raw_read": read,
        "ratios": ratios,
        "proof_sizes": proofs,
        "rebuild_nodes": rebuilt,
        "proof_api": api,
    }
    common.save_report(f"audit-verify-{args.backend}", report, stamp)
    return 0 if cli is None or cli["exit_code"] == 0 else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backend", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--records", type=int, default=1_000_000, help="audit records in the log (default 1M)")
    parser.add_argument("--batch", type=int, default=10_000, help="records chained and inserted per batch")
    parser.add_argument("--checkpoint-every", type=int, default=1000,
                        help="a signed checkpoint every N records (the settings' default, 1000)")
    parser.add_argument("--cli", action=argparse.BooleanOptionalAction, default=True,
                        help="also time `gateway audit verify` as a subprocess")
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes of verify_stored_log (default: its own choice; 0: in process)")
    parser.add_argument("--compare-workers", type=lambda v: [int(x) for x in v.split(",") if x], default=[],
                        help="also time verify_stored_log with these worker counts, e.g. 0,1,3")
    parser.add_argument("--api-repeats", type=int, default=5, help="requests per proof endpoint and size (0: skip)")
    parser.add_argument("--proofs-only", action="store_true",
                        help="skip the full verification and its baselines: build, proofs, rebuild, proofs")
    args = parser.parse_args(argv)
    if args.records < 2 or args.batch < 1 or args.checkpoint_every < 1:
        parser.error("--records >= 2, --batch and --checkpoint-every >= 1")
    return args


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
