#!/usr/bin/env python3
"""F1 (ALER -> FWA) end to end through a real Kafka broker and PostgreSQL server, against the raw ceiling.

Two phases in one run, on the same broker, with the same closed-loop load driver:

1. **raw** — aiokafka produce -> consume on a fresh 3-partition topic: the driver produces ALER-shaped
   messages (padded to ``--raw-bytes``) and consumes them back from the same topic. This is the ceiling a
   Python aiokafka client reaches on this machine and broker.
2. **gateway** — a gateway built with ``build(settings, clients=())`` runs in a child process (relay and
   inbound consumer in that process, as ``Gateway.start()`` wires them) on a fresh PostgreSQL database and a
   unique topic prefix. After consents are recorded for a pool of synthetic tenants, the driver produces native
   ALER arrears messages to ``in.aler`` and consumes the minimised referrals from ``out.fwa``, matching them
   by the ``correlation-id`` header (``corr-<message id>``).

The driver is a closed loop: at most ``--max-in-flight`` messages are submitted but not yet arrived, so the
figure is the sustained rate, not the growth of a queue. Latency is measured from the moment a message is
handed to the producer to the moment the driver's consumer receives it (one monotonic clock, one process).
Under a closed loop at saturation, latency is about ``max_in_flight / throughput`` (Little's law); run with a
small ``--max-in-flight`` for the latency of an unloaded pipeline.

The gateway runs in its own process so the driver does not share its event loop; CPU seconds per second of
the driver, the gateway, the broker and PostgreSQL are sampled over each measured window.

Needs ``GATEWAY_TEST_KAFKA_BOOTSTRAP`` and ``GATEWAY_TEST_POSTGRES_DSN``, as exported by
``scripts/realinfra.py run -- ...``. Results go to ``bench/results/f1-<UTC timestamp>.json`` and
``bench/results/latest-f1.json`` (profiled runs do not replace ``latest-f1.json``). See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib.metadata
import json
import multiprocessing
import os
import platform
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # runnable as ``python bench/f1_throughput.py`` from anywhere
    sys.path.insert(0, str(REPO_ROOT))

import orjson  # noqa: E402
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # noqa: E402
from pydantic import SecretStr  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402

from gateway.bus import KafkaSecurity  # noqa: E402
from gateway.identity.synthetic import SyntheticTenant, generate_tenants  # noqa: E402
from gateway.settings import GatewaySettings  # noqa: E402
from gateway.simulators.partners import aler_arrears_message  # noqa: E402

KAFKA_ENV = "GATEWAY_TEST_KAFKA_BOOTSTRAP"
KAFKA_CREDENTIALS_ENV = "GATEWAY_TEST_KAFKA_CREDENTIALS"
KAFKA_BENCH_USER = "admin"
"""Benchmarks log in as the test broker's super user: they measure throughput, not ACLs (those are proved by
tests/integration/test_kafka_acls.py)."""
POSTGRES_ENV = "GATEWAY_TEST_POSTGRES_DSN"
RESULTS_DIR = REPO_ROOT / "bench" / "results"
KAFKA_POM = REPO_ROOT / "infra" / "kafka" / "pom.xml"
PARTITIONS = 3
"""Partitions of every topic of a run, unless ``--partitions`` says otherwise."""
IN_FLIGHT_PER_WORKER = 8000
"""Default closed-loop bound per gateway worker. A worker holds a fetched batch, the batch it decides and the one it
delivers (200 records each by default), and the driver refills the topic only as referrals arrive: with 2,000 in
flight two workers were 1.63-1.73 cores busy on two cores and forwarded 3,046-3,117 referrals/s; with 8,000 and
16,000, 1.87 and 1.91 cores, 3,273 and 3,453 referrals/s (bench/README.md). The raw phase holds about 75 in flight
whatever the bound, so the bound changes only what the gateway is given to do."""
SEED = 20_240_601
ID_DIGITS = 10
"""Message ids have a fixed width so every message of a run has the same size."""
ID_PLACEHOLDER = "Z" * (8 + 1 + 1 + ID_DIGITS)
"""Stands for ``b<run id, 8>-<digits>`` in the pre-rendered payload templates (same width)."""
CONSENT_CONCURRENCY = 8


# --------------------------------------------------------------------------- payloads


@dataclass(frozen=True, slots=True)
class Template:
    """One tenant's pre-rendered ALER message with a fixed-width placeholder for the message id."""

    key: bytes
    value: bytes


def templates(tenants: list[SyntheticTenant], pad_to: int | None = None) -> list[Template]:
    """Pre-rendered ALER arrears messages, one per tenant; ``pad_to`` pads with JSON whitespace."""
    made = []
    for tenant in tenants:
        value = orjson.dumps(aler_arrears_message(tenant, ID_PLACEHOLDER))
        if pad_to is not None and len(value) < pad_to:
            value += b" " * (pad_to - len(value))
        made.append(Template(key=tenant.contract_id.encode(), value=value))
    return made


class MessageFactory:
    """Unique ALER messages cycling over the tenant pool: (key, value, correlation id, headers)."""

    def __init__(self, run_id: str, pool: list[Template]) -> None:
        self.run_id = run_id
        self.pool = pool
        self.placeholder = ID_PLACEHOLDER.encode()

    def __call__(self, n: int) -> tuple[bytes, bytes, str, list[tuple[str, bytes]]]:
        message_id = f"b{self.run_id}-{n:0{ID_DIGITS}d}"
        template = self.pool[n % len(self.pool)]
        value = template.value.replace(self.placeholder, message_id.encode())
        correlation_id = f"corr-{message_id}"
        headers = [
            ("content-type", b"application/json"),
            ("message-id", message_id.encode()),
            ("request-id", message_id.encode()),
            ("correlation-id", correlation_id.encode()),
        ]
        return template.key, value, correlation_id, headers


# --------------------------------------------------------------------------- CPU accounting


_CLK_TCK = os.sysconf("SC_CLK_TCK")


def _proc_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a process (all its threads), or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def _ppid(pid: int) -> int | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(text[text.rindex(")") + 2:].split()[1])


def _pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def listening_pid(port: int) -> int | None:
    """The process listening on TCP ``port`` (via /proc/net/tcp and the socket inodes of /proc/*/fd)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                cols = line.split()
                if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(cols[9])
    if not inodes:
        return None
    targets = {f"socket:[{i}]" for i in inodes}
    for pid in _pids():
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in targets:
                        return pid
    return None


def _system_busy_s() -> float:
    """Busy CPU seconds of the whole machine (all cores) since boot."""
    cols = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(c) for c in cols[:8]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / _CLK_TCK


@dataclass
class CpuProbe:
    """Samples CPU seconds of named process groups; ``cores`` = CPU seconds per wall second between samples."""

    groups: dict[str, Callable[[], list[int]]]
    _start: dict[str, float] = field(default_factory=dict)
    _t0: float = 0.0

    def _sample(self) -> dict[str, float]:
        sample = {"system": _system_busy_s()}
        for name, pids in self.groups.items():
            sample[name] = sum(c for c in (_proc_cpu_s(p) for p in pids()) if c is not None)
        return sample

    def start(self) -> None:
        self._start = self._sample()
        self._t0 = time.monotonic()

    def stop(self) -> dict[str, float]:
        end = self._sample()
        wall = max(time.monotonic() - self._t0, 1e-9)
        cores = {name: (end[name] - self._start.get(name, 0.0)) / wall for name in end}
        cores["other"] = max(0.0, cores["system"] - sum(v for k, v in cores.items() if k != "system"))
        return {name: round(value, 3) for name, value in cores.items()}


def _with_children(pid: int | None) -> Callable[[], list[int]]:
    def pids() -> list[int]:
        if pid is None:
            return []
        return [pid, *(p for p in _pids() if _ppid(p) == pid)]
    return pids


# --------------------------------------------------------------------------- closed-loop driver


def _percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return None
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def latency_summary(latencies_ns: list[int]) -> dict[str, float | int | None]:
    values = sorted(v / 1e6 for v in latencies_ns)

    def r(v: float | None) -> float | None:
        return None if v is None else round(v, 2)

    return {
        "count": len(values),
        "mean": r(sum(values) / len(values)) if values else None,
        "p50": r(_percentile(values, 50)),
        "p95": r(_percentile(values, 95)),
        "p99": r(_percentile(values, 99)),
        "max": r(values[-1]) if values else None,
    }


@dataclass
class DriverConfig:
    bootstrap: str
    produce_topic: str
    consume_topic: str
    partitions: int
    warmup_s: float
    duration_s: float
    max_in_flight: int
    drain_timeout_s: float
    max_warmup_s: float = 300.0


async def drive(config: DriverConfig, make: MessageFactory, probe: CpuProbe | None = None,
                on_window: Callable[[str], Any] | None = None) -> dict[str, Any]:
    """Produce to one topic and consume from another in a closed loop; measure a window in steady state.

    The window opens once ``warmup_s`` has passed *and* ``max_in_flight`` messages have arrived, i.e. the first
    full batch of in-flight messages (all submitted at once when the loop starts) is through, so the window sees
    the steady state of the closed loop and not the initial burst; it opens anyway after ``max_warmup_s``
    (``steady_state`` is then false). ``on_window`` is called with ``"start"`` and ``"stop"`` at its edges (it
    may return an awaitable).
    """
    producer = AIOKafkaProducer(bootstrap_servers=config.bootstrap, acks="all", enable_idempotence=True,
                                linger_ms=5, client_id="bench-driver", **kafka_client_options())
    consumer = AIOKafkaConsumer(bootstrap_servers=config.bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", client_id="bench-driver", **kafka_client_options())
    await consumer.start()
    await producer.start()
    partitions = [TopicPartition(config.consume_topic, p) for p in range(config.partitions)]
    consumer.assign(partitions)
    await consumer.seek_to_end(*partitions)  # only what this run sends from now on

    slots = asyncio.Semaphore(config.max_in_flight)
    sent: dict[str, int] = {}
    now = time.perf_counter_ns
    never = 2**63
    t_start = now()
    t_window = t_end = never  # set when the window opens
    stop_producing = asyncio.Event()
    warm = asyncio.Event()
    counters = {"sent": 0, "sent_in_window": 0, "acked": 0, "send_errors": 0, "arrived": 0,
                "arrived_in_window": 0, "unmatched": 0, "arrived_after_window": 0}
    out_bytes = 0
    window_latencies: list[int] = []
    per_second: dict[int, int] = {}
    window_seconds: dict[int, int] = {}
    in_flight_samples: list[int] = []

    def on_ack(future: asyncio.Future[Any]) -> None:
        if future.cancelled() or future.exception() is not None:
            counters["send_errors"] += 1
        else:
            counters["acked"] += 1

    async def produce() -> None:
        n = 0
        while not stop_producing.is_set():
            await slots.acquire()
            if stop_producing.is_set():
                slots.release()
                return
            key, value, correlation_id, headers = make(n)
            n += 1
            t = now()
            sent[correlation_id] = t
            counters["sent"] += 1
            if t_window <= t < t_end:
                counters["sent_in_window"] += 1
            future = await producer.send(config.produce_topic, value, key=key, headers=headers)
            future.add_done_callback(on_ack)
            if n % 64 == 0:
                await asyncio.sleep(0)

    async def consume(done: asyncio.Event, drained: asyncio.Event) -> None:
        nonlocal out_bytes
        while not done.is_set():
            batches = await consumer.getmany(timeout_ms=100, max_records=2000)
            t = now()
            second = (t - t_start) // 1_000_000_000
            for records in batches.values():
                for record in records:
                    correlation_id = next((bytes(v).decode() for k, v in record.headers if k == "correlation-id"),
                                          None)
                    t_sent = sent.pop(correlation_id, None) if correlation_id else None
                    if t_sent is None:
                        counters["unmatched"] += 1
                        continue
                    slots.release()
                    counters["arrived"] += 1
                    per_second[second] = per_second.get(second, 0) + 1
                    if t_window <= t < t_end:
                        counters["arrived_in_window"] += 1
                        window_latencies.append(t - t_sent)
                        out_bytes += len(record.value or b"")
                        into = (t - t_window) // 1_000_000_000
                        window_seconds[into] = window_seconds.get(into, 0) + 1
                    elif t >= t_end:
                        counters["arrived_after_window"] += 1
            if counters["arrived"] >= config.max_in_flight:
                warm.set()
            if not sent:
                drained.set()

    async def sample_in_flight() -> None:
        while now() < t_end:
            if now() >= t_window:
                in_flight_samples.append(len(sent))
            await asyncio.sleep(0.1)

    async def call(hook: str) -> None:
        if on_window is not None:
            result = on_window(hook)
            if asyncio.iscoroutine(result):
                await result

    done = asyncio.Event()
    drained = asyncio.Event()
    tasks = [asyncio.create_task(produce(), name="produce"),
             asyncio.create_task(consume(done, drained), name="consume"),
             asyncio.create_task(sample_in_flight(), name="in-flight")]
    cpu: dict[str, float] = {}
    try:
        await asyncio.sleep(config.warmup_s)
        remaining = config.max_warmup_s - (now() - t_start) / 1e9
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(warm.wait(), max(remaining, 0.001))
        await call("start")
        if probe is not None:
            probe.start()
        t_window = now()
        t_end = t_window + int(config.duration_s * 1e9)
        await asyncio.sleep(config.duration_s)
        if probe is not None:
            cpu = probe.stop()
        await call("stop")
        stop_producing.set()
        slots.release()  # wake the producer if it waits for a slot
        await tasks[0]
        await producer.flush()
        if sent:
            drained.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(drained.wait(), config.drain_timeout_s)
        done.set()
        await tasks[1]
        await tasks[2]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await producer.stop()
        await consumer.stop()

    window = config.duration_s
    arrived = counters["arrived_in_window"]
    full_seconds = [window_seconds.get(s, 0) for s in range(int(window))]
    throughput = arrived / window
    mean_in_flight = sum(in_flight_samples) / len(in_flight_samples) if in_flight_samples else None
    return {
        "produce_topic": config.produce_topic,
        "consume_topic": config.consume_topic,
        "window_s": window,
        "window_opened_after_s": round((t_window - t_start) / 1e9, 2),
        "steady_state": warm.is_set(),
        "throughput_per_s": round(throughput, 1),
        "submitted_per_s": round(counters["sent_in_window"] / window, 1),
        "latency_ms": latency_summary(window_latencies),
        "littles_law_latency_ms": round(mean_in_flight / throughput * 1000, 1)
        if mean_in_flight is not None and throughput else None,
        "per_second_in_window": {"min": min(full_seconds) if full_seconds else None,
                                 "max": max(full_seconds) if full_seconds else None},
        "in_flight": {"bound": config.max_in_flight,
                      "mean": round(mean_in_flight, 1) if mean_in_flight is not None else None,
                      "max": max(in_flight_samples) if in_flight_samples else None},
        "counts": {**counters, "not_arrived_after_drain": len(sent)},
        "bytes": {"produced_mean": round(sum(len(t.value) for t in make.pool) / len(make.pool), 1),
                  "consumed_mean": round(out_bytes / arrived, 1) if arrived else None},
        "cpu_cores": cpu,
        "cpu_ms_per_message": {k: round(v * 1000 / throughput, 3) for k, v in cpu.items()} if arrived else {},
        "timeline_per_s": [per_second.get(s, 0) for s in range(max(per_second, default=-1) + 1)],
    }


async def probe_latency(config: DriverConfig, make: MessageFactory, duration_s: float) -> dict[str, Any]:
    """Latency of one message at a time (no queueing): the pipeline's own delay."""
    probe_config = DriverConfig(config.bootstrap, config.produce_topic, config.consume_topic, config.partitions,
                                warmup_s=1.0, duration_s=duration_s, max_in_flight=1,
                                drain_timeout_s=config.drain_timeout_s, max_warmup_s=30.0)
    result = await drive(probe_config, make)
    keep = ("window_s", "throughput_per_s", "latency_ms", "counts")
    return {k: result[k] for k in keep}


# --------------------------------------------------------------------------- infrastructure


def kafka_login() -> dict[str, str]:
    """GatewaySettings fields, as strings (environment variables or a child process's arguments), that log in to
    the broker of ``scripts/realinfra.py``; none for a broker without authentication."""
    raw = os.environ.get(KAFKA_CREDENTIALS_ENV, "").strip()
    if not raw:
        return {}
    credentials = json.loads(raw)
    login = {"kafka_security_protocol": credentials["security_protocol"],
             "kafka_sasl_mechanism": credentials["sasl_mechanism"], "kafka_sasl_username": KAFKA_BENCH_USER,
             "kafka_sasl_password": credentials["users"][KAFKA_BENCH_USER]}
    if credentials.get("ssl_cafile"):
        login["kafka_ssl_cafile"] = credentials["ssl_cafile"]
    return login


def kafka_client_options() -> dict[str, Any]:
    """aiokafka keyword arguments for the same login."""
    login = kafka_login()
    if not login:
        return {}
    cafile = login.get("kafka_ssl_cafile")
    security = KafkaSecurity(login["kafka_security_protocol"], login["kafka_sasl_mechanism"],  # type: ignore[arg-type]
                             login["kafka_sasl_username"], SecretStr(login["kafka_sasl_password"]),
                             Path(cafile) if cafile else None)
    return security.client_options()



async def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-admin", **kafka_client_options())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
        for _ in range(100):
            described = await admin.describe_topics([name])
            parts = described[0].get("partitions") or []
            if len(parts) == partitions and all(p.get("leader", -1) >= 0 for p in parts):
                return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"topic {name} has no leaders")
    finally:
        await admin.close()


async def delete_topics(bootstrap: str, prefix: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-admin", **kafka_client_options())
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()


async def fresh_database(dsn: str) -> tuple[str, Callable[[], Any]]:
    """A new empty database on the server; returns its URL and an async dropper."""
    url = make_url(dsn)
    name = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    await admin.dispose()

    async def drop() -> None:
        engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await engine.dispose()

    return url.set(database=name).render_as_string(hide_password=False), drop


async def postgres_settings(dsn: str) -> dict[str, str | None]:
    """The server's version and whether its commits are durable (``fsync``, ``synchronous_commit``): the test
    launcher turns both off for speed, ``REALINFRA_POSTGRES_DURABLE=1`` keeps them on."""
    engine = create_async_engine(make_url(dsn))
    try:
        async with engine.connect() as conn:
            return {name: str((await conn.exec_driver_sql(f"SHOW {name}")).scalar())
                    for name in ("server_version", "fsync", "synchronous_commit")}
    except Exception:
        return {"server_version": None, "fsync": None, "synchronous_commit": None}
    finally:
        await engine.dispose()


def machine_info() -> dict[str, Any]:
    def version(dist: str) -> str | None:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return None

    kafka = None
    with contextlib.suppress(OSError):
        match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", KAFKA_POM.read_text(encoding="utf-8"))
        kafka = match.group(1) if match else None
    cpu_model = None
    with contextlib.suppress(OSError):
        cpu_model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                          if line.startswith("model name")), None)
    mem_gib = None
    with contextlib.suppress(OSError, ValueError, StopIteration):
        line = next(li for li in Path("/proc/meminfo").read_text().splitlines() if li.startswith("MemTotal"))
        mem_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model,
        "mem_gib": mem_gib,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "kafka_version": kafka,
        "kafka_jvm_extra_opts": os.environ.get("REALINFRA_KAFKA_JVM_OPTS", ""),
        "packages": {d: version(d) for d in ("aiokafka", "sqlalchemy", "asyncpg", "orjson", "pydantic")},
        "git_commit": _git_commit(),
    }


def _loadavg() -> list[float] | None:
    try:
        return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]
    except (OSError, ValueError):
        return None


def _git_commit() -> str | None:
    """HEAD's commit, read from .git without running git."""
    git = REPO_ROOT / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head
        ref = head[5:]
        path = git / ref
        if path.exists():
            return path.read_text().strip()
        for line in (git / "packed-refs").read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split()[0]
    except OSError:
        return None
    return None


# --------------------------------------------------------------------------- the gateway process


def gateway_process(conn: Any, settings_kwargs: dict[str, Any], consents: int, log_level: str,
                    log_file: str, profile: str, profile_out: str) -> None:
    """Child process: build and start the gateway, record consents, serve until told to stop."""
    try:
        asyncio.run(_gateway_main(conn, settings_kwargs, consents, log_level, log_file, profile, profile_out))
    except BaseException as exc:
        with contextlib.suppress(Exception):
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
        raise


async def _gateway_main(conn: Any, settings_kwargs: dict[str, Any], consents: int, log_level: str,
                        log_file: str, profile: str, profile_out: str) -> None:
    from sqlalchemy import text

    from gateway.bootstrap import build
    from gateway.logging import configure_logging
    from gateway.settings import GatewaySettings, TopicSettings
    from gateway.simulators.partners import fhir_consent

    with open(log_file, "a", encoding="utf-8") as log_stream:  # noqa: ASYNC230 - once, before the loop is busy
        configure_logging(log_level, stream=log_stream)
        topics = TopicSettings(**settings_kwargs.pop("topics"))
        settings = GatewaySettings(topics=topics, **settings_kwargs)
        gw = build(settings, clients=())
        t0 = time.perf_counter()
        await gw.start()
        started_s = time.perf_counter() - t0

        tenants = list(generate_tenants("S", SEED, consents))
        gate = asyncio.Semaphore(CONSENT_CONCURRENCY)

        async def record(i: int, tenant: SyntheticTenant) -> None:
            async with gate:
                await gw.consents.record(fhir_consent(tenant.cf), "aler", "bench-operator", f"bench-consent-{i}")

        t0 = time.perf_counter()
        await asyncio.gather(*(record(i, t) for i, t in enumerate(tenants)))
        consent_s = time.perf_counter() - t0
        conn.send(("ready", {"start_s": round(started_s, 2), "consents": len(tenants),
                             "consent_s": round(consent_s, 2),
                             "consents_per_s": round(len(tenants) / consent_s, 1) if consent_s else None}))

        sql = SqlCounter(gw.store.engine.sync_engine)
        collector = GcClock()
        profiler: Any = None
        processed_at_start = records_at_start = 0
        while True:
            command = await asyncio.to_thread(conn.recv)
            reply: Any = None
            if command == "window-start":
                processed_at_start = await _processed(gw)
                records_at_start = gw.consumer.progress.records
                sql.reset()
                collector.reset()
                profiler = _start_profiler(profile)
            elif command == "window-stop":
                if profiler is not None:
                    _save_profile(profiler, profile, profile_out)
                    profiler = None
                sql.paused = True  # the count below is the benchmark's own read, not the gateway's
                processed = await _processed(gw) - processed_at_start
                reply = {**sql.summary(processed), **collector.summary(processed), **_memory(),
                         "records_decided": gw.consumer.progress.records - records_at_start}
            elif command == "stop":
                break
            conn.send(("ok", reply))

        stats: dict[str, Any] = {}
        async with gw.store.engine.connect() as db:
            rows = await db.execute(text("SELECT state, count(*) FROM messages GROUP BY state"))
            stats["messages_by_state"] = {r[0]: r[1] for r in rows}
            stats["outbox_pending"] = (await db.execute(
                text("SELECT count(*) FROM outbox_queue"))).scalar()
            stats["outbox_total"] = (await db.execute(text("SELECT count(*) FROM outbox"))).scalar()
            stats["audit_records"] = (await db.execute(text("SELECT count(*) FROM audit_log"))).scalar()
        await gw.stop()
        conn.send(("stopped", stats))


def _memory() -> dict[str, float]:
    """This gateway process's resident memory now and at its peak, in MB (``VmRSS`` and ``VmHWM`` of
    ``/proc/self/status``). Not ``getrusage``'s ``ru_maxrss``: Linux carries it across ``exec`` from the process
    that forked, so a spawned gateway process would report the driver's size (which grows with the raw phase's
    length) as its own peak."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)

    def megabytes(name: str) -> float:
        return round(int(fields[name].split()[0]) / 1024, 1)  # the kernel gives kB

    return {"rss_mb": megabytes("VmRSS"), "peak_rss_mb": megabytes("VmHWM")}


async def _processed(gw: Any) -> int:
    """Messages the gateway has decided so far (rows of the messages table)."""
    from sqlalchemy import text

    async with gw.store.engine.connect() as db:
        return int((await db.execute(text("SELECT count(*) FROM messages"))).scalar() or 0)


_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE)\s+(\w+)", re.IGNORECASE)


class SqlCounter:
    """Counts the SQL statements and transactions an engine runs (read-only): SQLAlchemy's events for what goes
    through it, and on PostgreSQL the driver's query loggers (``asyncpg`` ``add_query_logger``, added to every
    connection as it is checked out) for the statements the store runs on the driver directly
    (``Repository._fetch``). COPY is counted by neither."""

    def __init__(self, engine: Any) -> None:
        from sqlalchemy import event

        self.statements: dict[str, int] = {}
        self.commits = 0
        self.rollbacks = 0
        self.paused = False
        """Set while the benchmark reads the store itself (its read ends in a rollback): nothing is counted."""
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "commit", self._commit)
        event.listen(engine, "rollback", self._rollback)
        event.listen(engine, "checkout", self._checkout)

    def reset(self) -> None:
        self.statements.clear()
        self.commits = self.rollbacks = 0
        self.paused = False

    def _checkout(self, dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        driver = getattr(dbapi_connection, "driver_connection", None)
        if hasattr(driver, "add_query_logger"):
            driver.add_query_logger(self._driver_statement)  # a set: added once per connection

    def _driver_statement(self, logged: Any) -> None:
        if logged.query.split(None, 1)[0].rstrip(";").upper() not in ("BEGIN", "COMMIT", "ROLLBACK"):
            self._count(logged.query, False)  # the driver's transaction control: counted as commits, as before

    def _statement(self, _conn: Any, _cursor: Any, statement: str, _params: Any, _context: Any,
                   executemany: bool) -> None:
        self._count(statement, executemany)

    def _count(self, statement: str, executemany: bool) -> None:
        if self.paused:
            return
        words = statement.split(None, 2)
        verb = words[0].upper() if words else "?"
        if verb in ("RELEASE", "ROLLBACK") and len(words) > 1:
            verb = f"{verb} {words[1].upper()}"
        table = _TABLE.search(statement)
        key = f"{verb} {table.group(1)}" if table and verb in ("SELECT", "INSERT", "UPDATE", "DELETE") else verb
        if "FOR UPDATE" in statement.upper():
            key += " FOR UPDATE"
        if executemany:
            key += " (executemany)"
        self.statements[key] = self.statements.get(key, 0) + 1

    def _commit(self, _conn: Any) -> None:
        if not self.paused:
            self.commits += 1

    def _rollback(self, _conn: Any) -> None:
        if not self.paused:
            self.rollbacks += 1

    def summary(self, processed: int) -> dict[str, Any]:
        total = sum(self.statements.values())

        def per(n: int) -> float | None:
            return round(n / processed, 2) if processed else None

        return {
            "messages_processed": processed,
            "sql_statements": total,
            "sql_statements_per_message": per(total),
            "commits_per_message": per(self.commits),
            "rollbacks": self.rollbacks,
            "statements_per_message_by_kind": {k: per(v) for k, v in sorted(self.statements.items(),
                                                                             key=lambda kv: -kv[1])},
        }


class GcClock:
    """Time the gateway process spends in the garbage collector (``gc.callbacks``), per generation."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = [0, 0, 0]
        self.by_generation = [0.0, 0.0, 0.0]
        self._started: float | None = None
        gc.callbacks.append(self._callback)

    def reset(self) -> None:
        self.seconds, self.collections, self.by_generation = 0.0, [0, 0, 0], [0.0, 0.0, 0.0]

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started is not None:
            spent = time.perf_counter() - self._started
            self.seconds += spent
            self.collections[info["generation"]] += 1
            self.by_generation[info["generation"]] += spent
            self._started = None

    def summary(self, processed: int) -> dict[str, Any]:
        return {"gc_ms_per_message": round(self.seconds * 1000 / processed, 4) if processed else None,
                "gc_collections": list(self.collections),
                "gc_ms_by_generation": [round(g * 1000, 1) for g in self.by_generation]}


def _start_profiler(kind: str) -> Any:
    if kind == "cprofile":
        import cProfile

        cpu_profiler = cProfile.Profile(time.process_time)  # CPU time: contention does not inflate it
        cpu_profiler.enable()
        return cpu_profiler
    if kind == "pyinstrument":
        from pyinstrument import Profiler

        wall_profiler = Profiler(interval=0.001, async_mode="disabled")  # wall time of the event-loop thread
        wall_profiler.start()
        return wall_profiler
    return None


def _save_profile(profiler: Any, kind: str, out: str) -> None:
    if kind == "cprofile":
        import io
        import pstats

        profiler.disable()
        profiler.dump_stats(out + ".pstats")
        for sort in ("tottime", "cumulative"):
            buffer = io.StringIO()
            pstats.Stats(profiler, stream=buffer).sort_stats(sort).print_stats(60)
            with open(f"{out}.{sort}.txt", "w", encoding="utf-8") as f:
                f.write(buffer.getvalue())
        with open(f"{out}.by-package.txt", "w", encoding="utf-8") as f:
            f.write(_by_package(pstats.Stats(profiler)))
    else:
        profiler.stop()
        with open(out + ".txt", "w", encoding="utf-8") as f:
            f.write(profiler.output_text(unicode=False, color=False, show_all=False))
        with open(out + ".html", "w", encoding="utf-8") as f:
            f.write(profiler.output_html())


_PACKAGES = ("sqlalchemy", "asyncpg", "aiokafka", "rfc8785", "pydantic", "pydantic_core", "structlog", "greenlet",
             "orjson", "fhir", "joserfc", "alembic")


def _package_of(filename: str, function: str) -> str:
    for name in _PACKAGES:
        if f"/site-packages/{name}/" in filename:
            return name
    for part, label in (("/gateway/audit/", "gateway.audit"), ("/gateway/store/", "gateway.store"),
                        ("/gateway/pipeline/", "gateway.pipeline"), ("/gateway/", "gateway (other)"),
                        ("/adapters/", "adapters"), ("/schemas/", "schemas"), ("/bench/", "bench instrumentation")):
        if part in filename:
            return label
    if filename == "~":  # built-ins: name the interesting ones
        for word, label in (("socket", "socket syscalls"), ("epoll", "epoll (idle)"), ("greenlet", "greenlet"),
                            ("pydantic", "pydantic_core")):
            if word in function:
                return label
        return "built-ins"
    if "/asyncio/" in filename or filename.endswith("selectors.py"):
        return "asyncio"
    if "/logging/" in filename:
        return "logging"
    return "stdlib (other)"


def _by_package(stats: Any) -> str:
    """Own (tottime) CPU grouped by package: which layer the gateway's CPU goes to."""
    own: dict[str, float] = {}
    calls: dict[str, int] = {}
    for (filename, _line, function), (_cc, ncalls, tottime, _ct, _callers) in stats.stats.items():
        name = _package_of(filename, function)
        own[name] = own.get(name, 0.0) + tottime
        calls[name] = calls.get(name, 0) + ncalls
    total = sum(own.values()) or 1.0
    lines = [f"{'package':28}{'own CPU s':>11}{'share':>8}{'calls':>11}"]
    for name, seconds in sorted(own.items(), key=lambda kv: -kv[1]):
        lines.append(f"{name:28}{seconds:>11.3f}{seconds / total:>8.1%}{calls[name]:>11,}")
    lines.append(f"{'total':28}{total:>11.3f}")
    return "\n".join(lines) + "\n"


class GatewayChild:
    """The gateway's process and the pipe to talk to it."""

    def __init__(self, settings_kwargs: dict[str, Any], consents: int, log_level: str, log_file: Path,
                 profile: str, profile_out: Path) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child_conn = ctx.Pipe()
        self.process = ctx.Process(
            target=gateway_process, name="gateway",
            args=(child_conn, settings_kwargs, consents, log_level, str(log_file), profile, str(profile_out)),
        )

    def start(self) -> None:
        self.process.start()

    @property
    def pid(self) -> int | None:
        return self.process.pid

    async def receive(self, within_s: float) -> tuple[str, Any]:
        deadline = time.monotonic() + within_s
        while True:
            if await asyncio.to_thread(self.conn.poll, 0.2):
                kind, payload = self.conn.recv()
                if kind == "error":
                    raise RuntimeError(f"gateway process failed: {payload}")
                return kind, payload
            if not self.process.is_alive():
                raise RuntimeError(f"gateway process exited with code {self.process.exitcode}")
            if time.monotonic() > deadline:
                raise TimeoutError("gateway process did not answer in time")

    async def command(self, command: str, within_s: float = 60) -> Any:
        self.conn.send(command)
        return (await self.receive(within_s))[1]

    async def close(self) -> None:
        if self.process.is_alive():
            await asyncio.to_thread(self.process.join, 30)
        if self.process.is_alive():
            self.process.terminate()
            await asyncio.to_thread(self.process.join, 10)


# --------------------------------------------------------------------------- phases


async def run_raw(args: argparse.Namespace, bootstrap: str, prefix: str, run_id: str,
                  pool_tenants: list[SyntheticTenant], kafka_pid: int | None, pg_pid: int | None) -> dict[str, Any]:
    topic = f"{prefix}raw"
    await create_topic(bootstrap, topic, args.partitions)
    pool = templates(pool_tenants, pad_to=args.raw_bytes or None)
    probe = CpuProbe({"driver": lambda: [os.getpid()], "kafka": lambda: [kafka_pid] if kafka_pid else [],
                      "postgres": _with_children(pg_pid)})
    config = DriverConfig(bootstrap, topic, topic, args.partitions, args.warmup, args.duration, args.max_in_flight,
                          args.drain_timeout, args.max_warmup)
    result = await drive(config, MessageFactory("r" + run_id[1:], pool), probe)
    if args.probe_duration > 0:
        result["unloaded"] = await probe_latency(config, MessageFactory("q" + run_id[1:], pool),
                                                 args.probe_duration)
    return result


async def run_gateway(args: argparse.Namespace, bootstrap: str, database_url: str, prefix: str, run_id: str,
                      pool_tenants: list[SyntheticTenant], data_dir: Path, stamp: str, kafka_pid: int | None,
                      pg_pid: int | None, proxy_pid: int | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The gateway phase with ``--workers`` gateway processes sharing the database and the consumer group; the
    first records the consents before the others start."""
    settings_kwargs: dict[str, Any] = {
        "bus": "kafka", "database_url": database_url, "kafka_bootstrap_servers": bootstrap,
        "topics": {"prefix": prefix, "partitions": args.partitions}, "data_dir": str(data_dir),
        "instance_id": "bench-gateway-1", "intake_batch_size": args.intake_batch_size, **kafka_login(),
    }
    profile_out = RESULTS_DIR / f"f1-profile-{stamp}"
    children: list[GatewayChild] = []
    try:
        setup: dict[str, Any] = {}
        for n in range(args.workers):
            kwargs = {**settings_kwargs, "instance_id": f"bench-gateway-{n + 1}"}
            child = GatewayChild(kwargs, args.consents if n == 0 else 0, args.log_level,
                                 data_dir / f"gateway-{n + 1}.log", args.profile if n == 0 else "none", profile_out)
            child.start()
            children.append(child)
            _, ready = await child.receive(within_s=600)
            if n == 0:
                setup = ready
                print(f"gateway ready in {setup['start_s']} s; {setup['consents']} consents recorded in "
                      f"{setup['consent_s']} s ({setup['consents_per_s']}/s)", flush=True)
        setup["workers"] = args.workers
        pool = templates(pool_tenants)
        probe = CpuProbe({"driver": lambda: [os.getpid()],
                          "gateway": lambda: [c.pid for c in children if c.pid],
                          "kafka": lambda: [kafka_pid] if kafka_pid else [], "postgres": _with_children(pg_pid),
                          **({"proxy": lambda: [proxy_pid]} if proxy_pid else {})})
        config = DriverConfig(bootstrap, f"{prefix}in.aler", f"{prefix}out.fwa", args.partitions, args.warmup,
                              args.duration, args.max_in_flight, args.drain_timeout, args.max_warmup)

        window: dict[str, Any] = {}

        async def on_window(edge: str) -> None:
            replies = [await c.command(f"window-{edge}", within_s=120) for c in children]
            if edge == "stop":
                window.update(_merged_window_stats(replies))

        result = await drive(config, MessageFactory(run_id, pool), probe, on_window)
        if args.probe_duration > 0:
            result["unloaded"] = await probe_latency(config, MessageFactory("p" + run_id[1:], pool),
                                                     args.probe_duration)
        for child in children[1:]:  # the first one stops last and counts what is in the store
            await child.command("stop", within_s=120)
        store = await children[0].command("stop", within_s=120)
    finally:
        for child in children:
            await child.close()
    result["store"] = store
    result["window_stats"] = window
    result["setup"] = setup
    result["checks"] = count_checks(result, setup["consents"])
    if args.profile != "none":
        result["profile_files"] = sorted(str(p.relative_to(REPO_ROOT))
                                         for p in RESULTS_DIR.glob(f"f1-profile-{stamp}*"))
    settings_kwargs["database_url"] = "postgresql+asyncpg://<fresh database on the test server>"
    settings_kwargs["data_dir"] = "<temporary directory>"
    settings_kwargs["instance_id"] = f"bench-gateway-1..{args.workers}"
    return result, settings_kwargs


def count_checks(result: dict[str, Any], consents: int) -> dict[str, Any]:
    """Nothing lost, nothing duplicated, every decision audited, from the driver's counts and the store's rows.

    Every message the driver sent (loaded phase and unloaded probe) is decided exactly once (one status row per
    message id); each F1 message leaves two outbox rows (the referral to FWA, the status to ALER), all delivered;
    the audit log holds one decision and one disclosure record per message plus one record per consent given;
    every referral reached the driver exactly once (a second copy would arrive unmatched)."""
    sent = result["counts"]["sent"] + result.get("unloaded", {}).get("counts", {}).get("sent", 0)
    arrived = result["counts"]["arrived"] + result.get("unloaded", {}).get("counts", {}).get("arrived", 0)
    unmatched = result["counts"]["unmatched"] + result.get("unloaded", {}).get("counts", {}).get("unmatched", 0)
    store = result["store"]
    decided = sum(store["messages_by_state"].values())
    expected = {
        "decided_once": (decided, sent),
        "forwarded": (store["messages_by_state"].get("forwarded", 0), sent),
        "outbox_rows": (store["outbox_total"], 2 * sent),
        "outbox_undelivered": (store["outbox_pending"], 0),
        "audit_records": (store["audit_records"], 2 * sent + consents),
        "referrals_arrived": (arrived, sent),
        "arrived_twice": (unmatched, 0),
    }
    failed = {name: {"found": found, "expected": want} for name, (found, want) in expected.items() if found != want}
    return {"ok": not failed, "failed": failed, "sent": sent}


def _merged_window_stats(replies: list[dict[str, Any]]) -> dict[str, Any]:
    """The SQL counts of every gateway process together; each reply counts the same messages (the store's)."""
    if len(replies) == 1:
        return replies[0]
    processed = max(r["messages_processed"] for r in replies)
    kinds: dict[str, float] = {}
    for reply in replies:
        for kind, per_message in reply["statements_per_message_by_kind"].items():
            kinds[kind] = round(kinds.get(kind, 0.0) + (per_message or 0.0), 2)
    commits = sum((r["commits_per_message"] or 0.0) for r in replies)
    return {
        "records_decided": sum(r.get("records_decided") or 0 for r in replies),
        "gc_ms_per_message": round(sum((r.get("gc_ms_per_message") or 0.0) for r in replies), 4),
        "rss_mb": round(sum(r.get("rss_mb", 0.0) for r in replies), 1),
        "peak_rss_mb": max(r.get("peak_rss_mb", 0.0) for r in replies),
        "messages_processed": processed,
        "sql_statements": sum(r["sql_statements"] for r in replies),
        "sql_statements_per_message": round(sum((r["sql_statements_per_message"] or 0.0) for r in replies), 2),
        "commits_per_message": round(commits, 2),
        "rollbacks": sum(r["rollbacks"] for r in replies),
        "statements_per_message_by_kind": dict(sorted(kinds.items(), key=lambda kv: -kv[1])),
        "per_process": replies,
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 4) if a is not None and b else None


def _get(result: dict[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(result, dict) or key not in result:
            return None
        result = result[key]
    return result


def ratios_of(raw: dict[str, Any], gw: dict[str, Any]) -> dict[str, float | None]:
    ratios = {"throughput": _ratio(gw["throughput_per_s"], raw["throughput_per_s"])}
    for q in ("p50", "p95", "p99"):
        ratios[f"latency_{q}"] = _ratio(gw["latency_ms"][q], raw["latency_ms"][q])
    for q in ("p50", "p99"):
        ratios[f"unloaded_latency_{q}"] = _ratio(_get(gw, "unloaded", "latency_ms", q),
                                                 _get(raw, "unloaded", "latency_ms", q))
    return ratios


def print_table(raw: dict[str, Any], gw: dict[str, Any], ratios: dict[str, float | None]) -> None:
    bound = raw["in_flight"]["bound"]
    rows: list[tuple[str, Any, Any, Any]] = [
        ("throughput (msg/s)", raw["throughput_per_s"], gw["throughput_per_s"], ratios["throughput"]),
        ("per-second min..max", f"{raw['per_second_in_window']['min']}..{raw['per_second_in_window']['max']}",
         f"{gw['per_second_in_window']['min']}..{gw['per_second_in_window']['max']}", None),
    ]
    for q in ("p50", "p95", "p99", "max"):
        rows.append((f"latency {q} (ms)", raw["latency_ms"][q], gw["latency_ms"][q], ratios.get(f"latency_{q}")))
    rows += [
        ("Little's law (ms)", raw["littles_law_latency_ms"], gw["littles_law_latency_ms"], None),
        ("mean in flight", raw["in_flight"]["mean"], gw["in_flight"]["mean"], None),
        ("arrived in window", raw["counts"]["arrived_in_window"], gw["counts"]["arrived_in_window"], None),
        ("window opened at (s)", raw["window_opened_after_s"], gw["window_opened_after_s"], None),
        ("not arrived (drain)", raw["counts"]["not_arrived_after_drain"],
         gw["counts"]["not_arrived_after_drain"], None),
    ]
    for q in ("p50", "p99"):
        rows.append((f"1 in flight {q} (ms)", _get(raw, "unloaded", "latency_ms", q),
                     _get(gw, "unloaded", "latency_ms", q), ratios.get(f"unloaded_latency_{q}")))

    def cell(v: Any) -> str:
        return "-" if v is None else f"{v:,}" if isinstance(v, int) else f"{v:,.2f}" if isinstance(v, float) else v

    print(f"\nclosed loop, at most {bound:,} in flight; last rows: one message at a time")
    print(f"{'':22}{'raw aiokafka':>16}{'gateway F1':>16}{'gateway/raw':>14}")
    for name, a, b, r in rows:
        print(f"{name:22}{cell(a):>16}{cell(b):>16}{cell(r):>14}")
    print("\nCPU cores busy in the window (CPU s per wall s):")
    for phase, res in (("raw", raw), ("gateway", gw)):
        print(f"  {phase:8}" + "  ".join(f"{k}={v}" for k, v in res["cpu_cores"].items()))
    print("CPU ms per message in the window:")
    for phase, res in (("raw", raw), ("gateway", gw)):
        print(f"  {phase:8}" + "  ".join(f"{k}={v}" for k, v in res["cpu_ms_per_message"].items()))
    stats = gw.get("window_stats") or {}
    if stats:
        print(f"gateway SQL per message: {stats.get('sql_statements_per_message')} statements, "
              f"{stats.get('commits_per_message')} commits (intake and relay); "
              f"garbage collector {stats.get('gc_ms_per_message')} ms (all gateway processes)")
        print(f"gateway memory at the window's end: {stats.get('rss_mb')} MB resident (all gateway processes), "
              f"peak {stats.get('peak_rss_mb')} MB (largest process)")
        decided = [r.get("records_decided") for r in stats.get("per_process", [stats])]
        print(f"records decided in the window, by gateway process: {decided} "
              f"({stats.get('messages_processed')} messages in the store)")
    busy = max(raw["cpu_cores"].get("other", 0.0), gw["cpu_cores"].get("other", 0.0))
    if busy > 0.25:
        print(f"warning: processes outside the benchmark used up to {busy} cores during a window; "
              "the figures are contended", file=sys.stderr)
    if not (raw["steady_state"] and gw["steady_state"]):
        print("warning: a window opened before the closed loop reached steady state (see --max-warmup)",
              file=sys.stderr)


async def main(args: argparse.Namespace) -> int:
    bootstrap = os.environ.get(KAFKA_ENV, "").strip()
    dsn = os.environ.get(POSTGRES_ENV, "").strip()
    missing = [name for name, value in ((KAFKA_ENV, bootstrap), (POSTGRES_ENV, dsn)) if not value]
    if missing:
        print(f"error: {' and '.join(missing)} not set. Run through the real-infrastructure launcher:\n"
              "  REALINFRA_KAFKA_JVM_OPTS=-XX:TieredStopAtLevel=4 python3 scripts/realinfra.py run -- "
              ".venv/bin/python bench/f1_throughput.py", file=sys.stderr)
        return 2
    if args.profile == "pyinstrument":
        try:
            import pyinstrument  # noqa: F401
        except ImportError:
            print("error: --profile pyinstrument needs pyinstrument (.venv/bin/pip install pyinstrument)",
                  file=sys.stderr)
            return 2

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    run_id = "b" + uuid.uuid4().hex[:7]
    prefix = f"bench{run_id}."
    kafka_port = int(bootstrap.split(",")[0].rsplit(":", 1)[1])
    kafka_pid = listening_pid(kafka_port)
    pg_pid = listening_pid(make_url(dsn).port or 5432)
    tenants = list(generate_tenants("S", SEED, args.consents))
    machine = machine_info()
    server = await postgres_settings(dsn)
    machine["postgres_version"] = server["server_version"]
    machine["postgres_durable"] = server["fsync"] == "on" and server["synchronous_commit"] == "on"
    machine["postgres_settings"] = server
    machine["loadavg_at_start"] = _loadavg()
    print(f"F1 benchmark {stamp}: {machine['nproc']} CPUs, Python {machine['python']}, "
          f"Kafka {machine['kafka_version']}, PostgreSQL {machine['postgres_version']} "
          f"({'durable' if machine['postgres_durable'] else 'NOT durable: fsync or synchronous_commit off'}); "
          f"warm-up {args.warmup} s, "
          f"window {args.duration} s, max in flight {args.max_in_flight}", flush=True)

    database_url, drop = await fresh_database(dsn)
    proxy: asyncio.subprocess.Process | None = None
    try:
        if args.database_round_trip_ms is not None:
            proxy, database_url = await start_delay_proxy(database_url, args.database_round_trip_ms)
        print("raw aiokafka produce -> consume ...", flush=True)
        raw = await run_raw(args, bootstrap, prefix, run_id, tenants, kafka_pid, pg_pid)
        print(f"  {raw['throughput_per_s']} msg/s, p50 {raw['latency_ms']['p50']} ms", flush=True)
        print("gateway F1 in.aler -> out.fwa ...", flush=True)
        with tempfile.TemporaryDirectory(prefix="bench-f1-") as tmp:
            gw, settings = await run_gateway(args, bootstrap, database_url, prefix, run_id, tenants, Path(tmp),
                                             stamp, kafka_pid, pg_pid, proxy.pid if proxy else None)
        print(f"  {gw['throughput_per_s']} referrals/s, p50 {gw['latency_ms']['p50']} ms", flush=True)
    finally:
        if proxy is not None:
            proxy.terminate()
            await proxy.wait()
        with contextlib.suppress(Exception):
            await drop()
        with contextlib.suppress(Exception):
            await delete_topics(bootstrap, prefix)

    ratios = ratios_of(raw, gw)
    print_table(raw, gw, ratios)
    report = {
        "benchmark": "f1_throughput",
        "flow": "F1 ALER -> FWA (microcredit-assessment), in.aler -> out.fwa",
        "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "loadavg_at_end": _loadavg(),
        "machine": machine,
        "parameters": {
            "duration_s": args.duration, "warmup_s": args.warmup, "consents": args.consents,
            "max_in_flight": args.max_in_flight, "raw_bytes": args.raw_bytes, "drain_timeout_s": args.drain_timeout,
            "max_warmup_s": args.max_warmup, "probe_duration_s": args.probe_duration,
            "partitions": args.partitions, "producer": {"acks": "all", "enable_idempotence": True, "linger_ms": 5},
            "workers": args.workers, "database_round_trip_ms": args.database_round_trip_ms,
            "log_level": args.log_level, "profile": args.profile, "order": ["raw", "gateway"],
        },
        "settings": settings,
        "baseline": raw,
        "gateway": gw,
        "ratio_gateway_over_raw": ratios,
    }
    body = json.dumps(report, indent=2) + "\n"
    path = RESULTS_DIR / f"f1-{stamp}.json"
    path.write_text(body, encoding="utf-8")
    if args.profile == "none":
        (RESULTS_DIR / "latest-f1.json").write_text(body, encoding="utf-8")
    print(f"\nsaved {path.relative_to(REPO_ROOT)}" + ("" if args.profile != "none" else " and latest-f1.json"))
    problems = (gw["counts"]["not_arrived_after_drain"] + gw["counts"]["send_errors"]
                + raw["counts"]["not_arrived_after_drain"] + raw["counts"]["send_errors"])
    if problems:
        print(f"warning: {problems} messages not acknowledged or not arrived by the end of the drain; "
              "see counts in the JSON (store.messages_by_state tells processed from lost)", file=sys.stderr)
    checks = gw["checks"]
    if not checks["ok"]:
        print(f"counts check FAILED (lost, duplicated or unaudited messages): {checks['failed']}", file=sys.stderr)
        return 1
    print(f"counts check: {checks['sent']:,} messages each decided, delivered and audited exactly once")
    return 0


async def start_delay_proxy(database_url: str, round_trip_ms: float) -> tuple[asyncio.subprocess.Process, str]:
    """``bench/delay_proxy.py`` in its own process, delaying each way by half of ``round_trip_ms``, and the URL
    of the database through it (the gateway phase only: the raw phase does not use the database)."""
    url = make_url(database_url)
    proxy = await asyncio.create_subprocess_exec(
        sys.executable, str(Path(__file__).with_name("delay_proxy.py")),
        "--upstream", f"{url.host}:{url.port or 5432}", "--one-way-ms", str(round_trip_ms / 2),
        stdout=asyncio.subprocess.PIPE)
    assert proxy.stdout is not None
    port = int((await asyncio.wait_for(proxy.stdout.readline(), 30)).strip())
    print(f"database behind a proxy adding {round_trip_ms} ms per round trip (port {port})", flush=True)
    return proxy, url.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=30.0, help="measured window in seconds (default 30)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of load before the window (default 5)")
    parser.add_argument("--consents", type=int, default=2000,
                        help="synthetic tenants with a recorded consent; messages cycle over them (default 2000)")
    parser.add_argument("--max-in-flight", type=int, default=None,
                        help="closed-loop bound on submitted-but-not-arrived messages (default "
                             f"{IN_FLIGHT_PER_WORKER} per gateway worker: enough that the bound is not what limits "
                             "a saturated run, see bench/README.md)")
    parser.add_argument("--raw-bytes", type=int, default=0,
                        help="pad the raw baseline's messages (the gateway's ALER input) with spaces to this size; "
                             "default 0: exactly the gateway's input messages")
    parser.add_argument("--max-warmup", type=float, default=300.0,
                        help="open the window after this many seconds even if the first --max-in-flight messages "
                             "have not all arrived yet (default 300; steady_state is then false)")
    parser.add_argument("--drain-timeout", type=float, default=120.0,
                        help="seconds to wait after the window for messages still in flight (default 120); "
                             "it only checks that nothing is lost, the figures come from the window")
    parser.add_argument("--probe-duration", type=float, default=10.0,
                        help="seconds of a one-message-in-flight latency probe after each phase (default 10; "
                             "0 skips it)")
    parser.add_argument("--workers", type=int, default=1,
                        help="gateway processes sharing the database and the inbound consumer group (default 1)")
    parser.add_argument("--partitions", type=int, default=PARTITIONS,
                        help=f"partitions of every topic, raw and gateway alike (default {PARTITIONS}); with "
                             "--workers N, a multiple of N gives each worker the same share")
    parser.add_argument("--intake-batch-size", type=int,
                        default=GatewaySettings.model_fields["intake_batch_size"].default,
                        help="records a gateway worker decides per transaction (GATEWAY_INTAKE_BATCH_SIZE; "
                             "default %(default)s, the gateway's)")
    parser.add_argument("--database-round-trip-ms", type=float, default=None,
                        help="put the gateway's database behind bench/delay_proxy.py, adding this many ms to every "
                             "round trip (0: the proxy without delay, the baseline to compare with)")
    parser.add_argument("--log-level", default="INFO", help="gateway log level; logs go to a temporary file")
    parser.add_argument("--profile", choices=("none", "cprofile", "pyinstrument"), default="none",
                        help="profile the gateway process during the window (results under bench/results/)")
    args = parser.parse_args(argv)
    if args.max_in_flight is None:
        args.max_in_flight = IN_FLIGHT_PER_WORKER * max(args.workers, 1)
    if args.duration <= 0 or args.warmup < 0 or args.consents < 1 or args.max_in_flight < 1 or args.workers < 1 \
            or args.partitions < 1:
        parser.error("--duration must be > 0, --warmup >= 0, --consents, --max-in-flight, --workers and "
                     "--partitions >= 1")
    return args


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
