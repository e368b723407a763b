#!/usr/bin/env python3
"""Answer times of the privacy console's pages over an audit log of ``--records`` records (default 1,000,000).

Builds the log the way ``audit_verify.py`` does (decision and disclosure records chained, hashed and bulk inserted,
a signed checkpoint every ``--checkpoint-every`` records signed with the gateway's own key, spread over the last 29
days, so that the home page charts them all), stores the Merkle subtrees (``gateway audit rebuild-nodes``), wires a
gateway on that database (API and console in process, no background workers), runs once what every worker does in
the background (:mod:`gateway.privacy.overview`: count the 30-day tally of the home page into the store, verify the
whole log and store the outcome; both timed, as ``overview``, the count also in CPU seconds of this process), signs
a local officer of the data protection office in, and times each page through the ASGI app: the first answer of a
fresh process (cold: the integrity status and the tally are read from the store) and then ``--repeats`` answers
(warm).
Every answer is a real page: the session is checked in the store and each read appends its ``privacy-query``
audit record, as in production.

Saves ``bench/results/console-pages-<backend>-<stamp>.json`` and ``latest-console-pages-<backend>.json``.
Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import secrets
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
import privacy_common as common
import pyotp
from audit_verify import build_log

from gateway.api import create_app
from gateway.audit.offline import rebuild_stored_nodes
from gateway.bootstrap import Gateway, build
from gateway.console.accounts import new_account
from gateway.privacy.activity import ActivityTally
from gateway.privacy.office import PrivacyOffice
from gateway.privacy.overview import OverviewKeeper
from gateway.settings import GatewaySettings

PASSWORD = secrets.token_urlsafe(16)
PAGES: list[tuple[str, str, str]] = [
    ("home", "GET", "/console/"),
    ("audit-log, newest page", "GET", "/console/audit"),
    ("audit-log, page in the middle", "GET", "/console/audit?before={middle}"),
    ("audit-log, decisions only", "GET", "/console/audit?type=decision"),
    ("audit record with inclusion proof", "GET", "/console/audit/{middle}"),
    ("inclusion proof download", "GET", "/console/audit/{middle}/proof"),
    ("checkpoints and keys", "GET", "/console/audit/checkpoints"),
    ("review queue", "GET", "/console/review"),
    ("records of processing", "GET", "/console/records"),
    ("person (art. 15), unknown identifier", "POST", "/console/person"),
]


async def main(args: argparse.Namespace) -> int:
    started, stamp = common.stamp_now()
    load_at_start = common.loadavg()
    print(f"console pages {stamp}: {args.backend}, {args.records:,} audit records", flush=True)
    async with common.database(args.backend) as db:
        with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
            settings = GatewaySettings(data_dir=Path(tmp), database_url=db.url, bus="embedded",
                                       instance_id="bench-console")
            gateway = build(settings)
            await gateway.store.migrate()
            # checkpoints signed by the gateway's own key, records spread over the charts' 30 days
            built = await build_log(db, gateway.store, args.records, args.batch, args.checkpoint_every,
                                    key=gateway.checkpointer.signing_keys()[0], origin=settings.audit_origin,
                                    span=timedelta(days=29))
            print("storing the Merkle subtrees (gateway audit rebuild-nodes) ...", flush=True)
            await rebuild_stored_nodes(gateway.store)
            await gateway.start(workers=False)
            try:
                overview = await _catch_up(gateway)
                made = await new_account(gateway.store, "bench", "Bench officer", settings.data_protection_office,
                                         frozenset({"privacy-officer"}), PASSWORD, datetime.now(UTC))
                assert made is not None
                app = create_app(gateway, manage_lifecycle=False)
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="https://bench") as http:
                    token = await _sign_in(http, pyotp.TOTP(made.totp_secret))
                    pages = await _time_pages(http, token, args.records // 2, args.repeats)
            finally:
                await gateway.stop()
    report = {
        "benchmark": "console-pages", "started_at": started.isoformat(), "finished_at": datetime.now(UTC).isoformat(),
        "machine": await common.machine(None), "contention": {"loadavg_at_start": load_at_start,
                                                               "loadavg_at_end": common.loadavg()},
        "parameters": {"backend": args.backend, "records": args.records, "repeats": args.repeats,
                       "checkpoint_every": args.checkpoint_every},
        "build": built["build"], "overview": overview, "pages": pages,
    }
    common.save_report(f"console-pages-{args.backend}", report, stamp)
    return 0


async def _catch_up(gateway: Gateway) -> dict[str, float]:
    """What a worker does in the background before any officer looks: count the tally, verify the log."""
    keeper = OverviewKeeper(PrivacyOffice.for_gateway(gateway), ActivityTally(), 5, 3600)
    began, began_cpu = time.perf_counter(), time.process_time()
    counted = await keeper.count()
    count_s, count_cpu_s = time.perf_counter() - began, time.process_time() - began_cpu
    began = time.perf_counter()
    assert await keeper.verify_if_due()
    verify_s = time.perf_counter() - began
    found = await keeper.office.stored_integrity()
    assert found is not None
    verified = found[0].verified
    print(f"overview: tally of {counted:,} records counted in {count_s:.2f} s ({count_cpu_s:.2f} s of this "
          f"process's CPU), log verified in {verify_s:.1f} s "
          f"({'sound' if verified else 'NOT sound: ' + str(found[0].problem)})", flush=True)
    return {"records_counted": counted, "count_s": round(count_s, 2),
            "count_cpu_s": round(count_cpu_s, 2), "verify_s": round(verify_s, 2),
            "log_verified": verified}


async def _sign_in(http: httpx.AsyncClient, totp: pyotp.TOTP) -> str:
    page = await http.get("/console/login")
    token = _csrf(page.text)
    signed = await http.post("/console/login", data={"username": "bench", "password": PASSWORD,
                                                      "code": totp.now(), "csrf_token": token})
    assert signed.status_code == 303, signed.text[:500]
    return _csrf((await http.get("/console/records")).text)


def _csrf(text: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', text)
    assert found is not None
    return found.group(1)


async def _time_pages(http: httpx.AsyncClient, token: str, middle: int, repeats: int) -> list[dict[str, Any]]:
    results = []
    for name, method, template in PAGES:
        path = template.format(middle=middle)

        async def answer(method: str = method, path: str = path) -> httpx.Response:
            if method == "POST":
                return await http.post(path, data={"identifier": "RSSMRA85T10A562S", "csrf_token": token})
            return await http.get(path)

        t0 = time.perf_counter()
        first = await answer()
        cold_ms = (time.perf_counter() - t0) * 1000
        assert first.status_code == 200, (name, first.status_code, first.text[:500])
        warm = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            again = await answer()
            warm.append((time.perf_counter() - t0) * 1000)
            assert again.status_code == 200
        summary = common.percentiles(warm)
        results.append({"page": name, "path": template, "first_ms": round(cold_ms, 1), "warm_ms": summary,
                        "bytes": len(first.content)})
        print(f"  {name:40s} first {cold_ms:9.1f} ms   warm p50 {summary['p50']:7.1f} ms  p90 {summary['p90']:7.1f} ms"
              f"  max {summary['max']:7.1f} ms  ({len(first.content):,} bytes)", flush=True)
    return results


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backend", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--records", type=int, default=1_000_000, help="audit records in the log (default 1M)")
    parser.add_argument("--batch", type=int, default=10_000, help="records chained and inserted per batch")
    parser.add_argument("--checkpoint-every", type=int, default=1000, help="a signed checkpoint every N records")
    parser.add_argument("--repeats", type=int, default=20, help="warm answers timed per page")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
