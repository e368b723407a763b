#!/usr/bin/env python3
"""Publishing one delivered batch through the gateway's Kafka bus, with the gateway's producer batch size against
aiokafka's default (16 KiB): wall and CPU milliseconds per publish.

A worker delivers what it decided in one call of ``KafkaBus.publish``: for a batch of 200 F1 referrals, 400 records
(the referral to FWA, the status to ALER) of about 800 bytes over two topics of three partitions. aiokafka sends one
produce request at a time to a broker, with one record batch per partition, so with 16 KiB batches such a publish
waits for several request round trips in turn, each acknowledged by all in-sync replicas (``acks=all``). The two
configurations alternate (``--rounds`` times each) on one broker, so the baseline is measured in the same run.

Needs ``GATEWAY_TEST_KAFKA_BOOTSTRAP`` (``scripts/realinfra.py run --kafka-only -- ...``). Saves
``bench/results/publish-batch-<UTC timestamp>.json`` and ``latest-publish-batch.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
for entry in (str(REPO_ROOT), str(REPO_ROOT / "bench")):
    if entry not in sys.path:
        sys.path.insert(0, entry)

from privacy_common import loadavg, machine, percentiles, ratio, save_report, stamp_now  # noqa: E402

from gateway.bus.kafka import _MAX_BATCH_BYTES, KafkaBus  # noqa: E402
from gateway.bus.port import OutgoingRecord  # noqa: E402
from tests.conftest import GATEWAY, harness_grants  # noqa: E402
from tests.kafka_access import kafka_access  # noqa: E402

AIOKAFKA_DEFAULT = 16_384


def delivered_batch(topics: list[str], records: int, size: int, people: int) -> list[OutgoingRecord]:
    """``records`` records of ``size`` bytes alternating over ``topics``, keyed by ``people`` record keys."""
    return [OutgoingRecord(topic=topics[i % len(topics)], value=b"x" * size, key=f"key-{i % people}".encode(),
                           headers=(("message-id", f"m{i}".encode()),)) for i in range(records)]


async def measure(bootstrap: str, security: Any, topics: list[str], batch: list[OutgoingRecord],
                  max_batch_bytes: int, publishes: int) -> tuple[list[float], float]:
    """Wall ms of each publish after a warm-up, and CPU ms per publish of this process."""
    bus = KafkaBus(bootstrap, client_id="bench-publish", partitions=3, security=security,
                   max_batch_bytes=max_batch_bytes)
    await bus.start()
    try:
        await bus.ensure_topics(topics)
        for _ in range(5):
            await bus.publish(batch)
        walls: list[float] = []
        cpu_start = time.process_time()
        for _ in range(publishes):
            start = time.perf_counter()
            await bus.publish(batch)
            walls.append((time.perf_counter() - start) * 1000)
        return walls, (time.process_time() - cpu_start) * 1000 / publishes
    finally:
        await bus.stop()


async def main(args: argparse.Namespace) -> int:
    bootstrap = os.environ.get("GATEWAY_TEST_KAFKA_BOOTSTRAP", "").strip()
    if not bootstrap:
        print("GATEWAY_TEST_KAFKA_BOOTSTRAP is not set: run under scripts/realinfra.py", file=sys.stderr)
        return 2
    started, stamp = stamp_now()
    start_load = loadavg()
    access = kafka_access(bootstrap)
    prefix = f"benchpub{uuid.uuid4().hex[:6]}."
    await access.grant(harness_grants(prefix))
    topics = [prefix + "out.fwa", prefix + "status.aler"]
    batch = delivered_batch(topics, args.records, args.bytes, args.people)
    configurations = {"aiokafka_default": AIOKAFKA_DEFAULT, "gateway": _MAX_BATCH_BYTES}
    walls: dict[str, list[float]] = {name: [] for name in configurations}
    cpus: dict[str, list[float]] = {name: [] for name in configurations}
    for round_ in range(args.rounds):
        for name, size in configurations.items():
            wall, cpu = await measure(bootstrap, access.security(GATEWAY), topics, batch, size, args.publishes)
            walls[name] += wall
            cpus[name].append(cpu)
            print(f"round {round_ + 1} {name:16} ({size:>7} B batches): median {sorted(wall)[len(wall) // 2]:.2f} "
                  f"ms wall, {cpu:.2f} ms CPU per publish", flush=True)
    results = {name: {"max_batch_bytes": configurations[name], "wall_ms": percentiles(walls[name]),
                      "cpu_ms_per_publish": round(sorted(cpus[name])[len(cpus[name]) // 2], 3)}
               for name in configurations}
    ratios = {"wall_p50": ratio(results["gateway"]["wall_ms"]["p50"], results["aiokafka_default"]["wall_ms"]["p50"]),
              "cpu": ratio(results["gateway"]["cpu_ms_per_publish"], results["aiokafka_default"]["cpu_ms_per_publish"])}
    print(f"\n{args.records} records of {args.bytes} B per publish: gateway/aiokafka default, wall p50 "
          f"{ratios['wall_p50']}, CPU {ratios['cpu']}")
    save_report("publish-batch", {
        "benchmark": "publish_batch", "started_at": started.isoformat(), "machine": await machine(),
        "parameters": vars(args), "results": results, "ratio_gateway_over_default": ratios,
        "loadavg_at_start": start_load, "loadavg_at_end": loadavg(),
    }, stamp)
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=400, help="records per publish (default 400)")
    parser.add_argument("--bytes", type=int, default=800, help="bytes per record (default 800)")
    parser.add_argument("--people", type=int, default=150, help="distinct record keys (default 150)")
    parser.add_argument("--publishes", type=int, default=40, help="timed publishes per round (default 40)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of both configurations (default 3)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
