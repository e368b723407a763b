"""Shared parts of the privacy benchmarks: the database under test, latency summaries, the JSON report.

The four privacy benchmarks (``decision_latency.py``, ``audit_append.py``, ``audit_verify.py``,
``withdrawal_latency.py``) run on PostgreSQL (a fresh database on the server named by
``GATEWAY_TEST_POSTGRES_DSN``, dropped at the end) or SQLite (a file in a temporary directory, with the store's
own pragmas), and save their results as ``bench/results/<name>-<UTC timestamp>.json`` plus
``bench/results/latest-<name>.json``, next to the machine description of ``f1_throughput.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
for _entry in (str(REPO_ROOT), str(REPO_ROOT / "bench")):
    if _entry not in sys.path:
        sys.path.insert(0, _entry)

from f1_throughput import (  # noqa: E402
    KAFKA_ENV,
    POSTGRES_ENV,
    RESULTS_DIR,
    _loadavg,
    fresh_database,
    machine_info,
    postgres_settings,
)
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402

__all__ = [
    "KAFKA_ENV",
    "POSTGRES_ENV",
    "RESULTS_DIR",
    "Database",
    "contention",
    "database",
    "loadavg",
    "machine",
    "percentiles",
    "ratio",
    "save_report",
    "server_settings",
    "stamp_now",
    "timed_ms",
]

PSEUDONYM_KEY = b"bench-pseudonym-key-not-for-production-0000"
"""Fixed key for the lookup hashes of benchmark subjects (no real person is ever involved)."""


@dataclass
class Database:
    """The database a benchmark runs on."""

    backend: str
    """``postgres`` or ``sqlite``."""
    url: str
    """SQLAlchemy async URL (``postgresql+asyncpg://`` or ``sqlite+aiosqlite:///``)."""
    path: Path | None = None
    """The SQLite file, if SQLite."""

    @property
    def asyncpg_dsn(self) -> str:
        """The URL in the form asyncpg.connect takes (PostgreSQL only)."""
        return make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextlib.asynccontextmanager
async def database(backend: str) -> AsyncIterator[Database]:
    """A fresh empty database on ``backend``, removed afterwards."""
    if backend == "postgres":
        dsn = os.environ.get(POSTGRES_ENV, "").strip()
        if not dsn:
            raise SystemExit(f"error: {POSTGRES_ENV} is not set; run through scripts/realinfra.py run -- ... "
                             "or use --backend sqlite")
        url, drop = await fresh_database(dsn)
        try:
            yield Database("postgres", url)
        finally:
            with contextlib.suppress(Exception):
                await drop()
    else:
        with tempfile.TemporaryDirectory(prefix="bench-privacy-") as tmp:
            path = Path(tmp) / "gateway.sqlite3"
            yield Database("sqlite", f"sqlite+aiosqlite:///{path}", path)


async def server_settings(db: Database) -> dict[str, Any]:
    """Durability-relevant settings of the database as the benchmark found them."""
    engine = create_async_engine(db.url)
    try:
        async with engine.connect() as conn:
            if db.backend == "postgres":
                names = ("server_version", "fsync", "synchronous_commit", "full_page_writes", "wal_level",
                         "shared_buffers", "max_connections")
                return {n: str((await conn.exec_driver_sql(f"SHOW {n}")).scalar()) for n in names}
            version = (await conn.exec_driver_sql("SELECT sqlite_version()")).scalar()
            return {"sqlite_version": str(version),
                    "store_pragmas": {"journal_mode": "WAL", "synchronous": "FULL", "busy_timeout_ms": 30000,
                                      "begin": "BEGIN IMMEDIATE"}}
    finally:
        await engine.dispose()


def percentiles(values: list[float], unit: str = "ms", digits: int = 3) -> dict[str, Any]:
    """count, mean, p50, p90, p99, max of ``values`` (already in ``unit``), nearest rank."""
    ordered = sorted(values)
    n = len(ordered)

    def rank(q: float) -> float | None:
        if not ordered:
            return None
        return round(ordered[max(1, min(n, round(q / 100 * n + 0.5))) - 1], digits)

    return {"unit": unit, "count": n, "mean": round(sum(ordered) / n, digits) if n else None,
            "p50": rank(50), "p90": rank(90), "p99": rank(99), "max": round(ordered[-1], digits) if n else None}


def loadavg() -> list[float] | None:
    """1, 5 and 15 minute load averages of the machine."""
    return _loadavg()


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def contention(started_load: list[float] | None) -> dict[str, Any]:
    """What else the machine was doing: the run shares 2 cores with other work, so figures are contended."""
    return {"contended": True, "nproc": os.cpu_count(), "loadavg_at_start": started_load,
            "loadavg_at_end": _loadavg(),
            "note": "run on a machine shared with other work; compare ratios to the same-run baseline, "
                    "not absolute figures"}


async def machine(db: Database | None = None) -> dict[str, Any]:
    info = machine_info()
    dsn = os.environ.get(POSTGRES_ENV, "").strip()
    if db is not None and db.backend == "postgres" and dsn:
        info["postgres_version"] = (await postgres_settings(dsn))["server_version"]
    return info


def save_report(name: str, report: dict[str, Any], stamp: str) -> Path:
    """Write ``<name>-<stamp>.json`` and ``latest-<name>.json`` under bench/results/."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    body = json.dumps(report, indent=2, default=str) + "\n"
    path = RESULTS_DIR / f"{name}-{stamp}.json"
    path.write_text(body, encoding="utf-8")
    (RESULTS_DIR / f"latest-{name}.json").write_text(body, encoding="utf-8")
    print(f"\nsaved {path.relative_to(REPO_ROOT)} and latest-{name}.json", flush=True)
    return path


def stamp_now() -> tuple[datetime, str]:
    started = datetime.now(UTC)
    return started, started.strftime("%Y%m%dT%H%M%SZ")


async def timed_ms(fn: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    """Wall milliseconds of one awaited call, and its result."""
    t0 = time.perf_counter_ns()
    result = await fn()
    return (time.perf_counter_ns() - t0) / 1e6, result
