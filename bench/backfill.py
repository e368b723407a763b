#!/usr/bin/env python3
"""Backfill throughput (issue 9 point 14): records/s of ``gateway backfill`` against the raw decode rate of the
same files, measured in the same run.

Set-up: synthetic tenants (tier XL generator, fixed seed) give ALER's tenancy CSV export (``--tenancies`` rows)
and an ASST FHIR Bulk Data export (``Patient.ndjson``, one per tenant, and ``Encounter.ndjson``, ``--encounters``
lines) in a temporary directory (generation is not timed). Then, for each source:

* **decode** (the baseline): every record turned into its unit and decoded by the partner's decoder through
  :meth:`Intake.decode`, as the backfill does, with no store at all;
* **backfill**: :func:`gateway.pipeline.backfill.backfill` on a gateway built with ``build()`` on a fresh
  database (PostgreSQL from ``GATEWAY_TEST_POSTGRES_DSN``, or SQLite with ``--backend sqlite``) — decode,
  identify, decide, audit, outbox, one transaction per ``--batch-size`` records.

Prints records/s for both and their ratio, and how long the domain's target (150,000 tenancies plus 1,000,000
encounters, goal under 4 minutes on the reference 2-core machine) would take at the measured rates. Saves
``bench/results/backfill-<backend>-<stamp>.json`` and ``latest-backfill-<backend>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import privacy_common as common

from gateway.bootstrap import build
from gateway.identity.synthetic import generate_tenants
from gateway.logging import configure_logging
from gateway.pipeline.backfill import Source, backfill, units
from gateway.pipeline.intake import Intake, Submission
from gateway.settings import GatewaySettings
from gateway.simulators.bulk import aler_tenancy_export, asst_bulk_export

TARGET_TENANCIES = 150_000
TARGET_ENCOUNTERS = 1_000_000
TARGET_SECONDS = 240.0


def write_inputs(folder: Path, tenancies: int, encounters: int) -> dict[Source, list[Path]]:
    tenants = list(generate_tenants("XL", seed=2026, limit=tenancies))
    csv_path = folder / "tenancies.csv"
    csv_path.write_bytes(aler_tenancy_export(tenants))
    ndjson = []
    for name, content in asst_bulk_export(tenants, encounters).items():
        (folder / name).write_bytes(content)
        ndjson.append(folder / name)
    return {"aler": [csv_path], "asst": sorted(ndjson)}


def decode_rate(intake: Intake, source: Source, inputs: list[Path]) -> dict[str, Any]:
    started = time.perf_counter()
    records = envelopes = 0
    for raw, content_type in units(source, inputs):
        submission = Submission(sender=source, sender_role="system", raw=raw, content_type=content_type,
                                request_id="bench")
        envelopes += len(intake.decode(submission))
        records += 1
    seconds = time.perf_counter() - started
    return {"records": records, "envelopes": envelopes, "seconds": round(seconds, 3),
            "records_per_s": round(records / seconds, 1)}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    configure_logging("WARNING")
    results: dict[str, Any] = {}
    async with common.database(args.backend) as db:
        with tempfile.TemporaryDirectory(prefix="bench-backfill-") as tmp:
            folder = Path(tmp)
            t0 = time.perf_counter()
            inputs = write_inputs(folder, args.tenancies, args.encounters)
            print(f"inputs written in {time.perf_counter() - t0:.1f} s", flush=True)
            settings = GatewaySettings(database_url=db.url, bus="embedded", data_dir=folder / "var",
                                       instance_id="bench-backfill", log_level="WARNING")
            gateway = build(settings, clients=())
            await gateway.store.migrate()
            try:
                for source in ("aler", "asst"):
                    decoded = decode_rate(gateway.intake, source, inputs[source])
                    print(f"{source}: decode {decoded['records']} records at {decoded['records_per_s']:,.0f}/s",
                          flush=True)
                    summary = await backfill(gateway.intake, source, inputs[source], batch_size=args.batch_size,
                                             requested_by="bench")
                    rate = summary.done / summary.seconds if summary.seconds else None
                    print(f"{source}: backfill {summary.done} records in {summary.seconds:.1f} s at "
                          f"{rate or 0:,.0f}/s ({common.ratio(rate, decoded['records_per_s'])} of decode); "
                          f"outcomes {dict(summary.outcomes)}", flush=True)
                    results[source] = {"decode": decoded, "backfill": {
                        **summary.as_dict(), "records_per_s": round(rate, 1) if rate else None,
                        "ratio_to_decode": common.ratio(rate, decoded["records_per_s"])}}
            finally:
                await gateway.store.close()
        server = await common.server_settings(db)
        info = await common.machine(db)
    aler_rate = results["aler"]["backfill"]["records_per_s"]
    asst_rate = results["asst"]["backfill"]["records_per_s"]
    projected = TARGET_TENANCIES / aler_rate + TARGET_ENCOUNTERS / asst_rate if aler_rate and asst_rate else None
    return {"results": results, "server": server, "machine": info, "target": {
        "tenancies": TARGET_TENANCIES, "encounters": TARGET_ENCOUNTERS, "goal_seconds": TARGET_SECONDS,
        "projected_seconds_at_measured_rates": round(projected, 1) if projected else None}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backend", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--tenancies", type=int, default=2_000, help="ALER CSV rows (default 2,000)")
    parser.add_argument("--encounters", type=int, default=5_000, help="FHIR Encounters (default 5,000)")
    parser.add_argument("--batch-size", type=int, default=300, help="records per transaction (default 300)")
    args = parser.parse_args()
    if args.tenancies < 1 or args.encounters < 1:
        parser.error("--tenancies and --encounters must be at least 1")
    started, stamp = common.stamp_now()
    load = common.loadavg()
    print(f"backfill bench {stamp}: {args.tenancies} tenancies, {args.encounters} encounters, {args.backend}, "
          f"batch {args.batch_size}; load {load}", flush=True)
    report = asyncio.run(run(args))
    report = {"benchmark": "backfill", "started_at": started.isoformat(), "args": vars(args), **report,
              "contention": common.contention(load)}
    target = report["target"]
    print(f"\nprojected for {TARGET_TENANCIES:,} tenancies + {TARGET_ENCOUNTERS:,} encounters: "
          f"{target['projected_seconds_at_measured_rates']} s (goal {TARGET_SECONDS:.0f} s); "
          f"load at end {report['contention']['loadavg_at_end']}", flush=True)
    common.save_report(f"backfill-{args.backend}", report, stamp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
