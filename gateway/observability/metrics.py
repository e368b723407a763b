"""Prometheus metrics of one gateway process: what it received, decided, delivered and dead-lettered, and the
state of its outbox, consumer group, audit log and consents.

Every instrument lives in the process's own :class:`GatewayMetrics` registry (several gateways in one test
process never share counters). The pipeline reports through :mod:`gateway.observability.observer` once per
batch, so a message costs a few counter increments at most; the state gauges are sampled by
:class:`StateSampler` every ``metrics_sample_seconds`` from the database and the broker, and ages are
computed when Prometheus scrapes, so they never go stale between samples.

No label carries personal data: labels are partner and flow codes, outcomes and reason codes from closed
sets in the code, Kafka topic names and OAuth error codes. Message ids, request ids, client ids a caller
typed, pseudonyms and payloads never become labels. :func:`serve` exposes the registry on its own port
(``GATEWAY_METRICS_PORT``); docs/operations.md lists every metric.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from wsgiref.simple_server import WSGIServer

from fastapi import Response
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.bus.port import Bus
from gateway.logging import get_logger
from gateway.store import Store

__all__ = ["OAUTH_ERRORS", "BatchHistogram", "GatewayMetrics", "MetricsServer", "StateSampler", "oauth_error",
           "serve"]

log = get_logger(__name__)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
"""Seconds: a batch commits in tens of milliseconds when all is well, delivery waits minutes in an outage."""

OAUTH_ERRORS = frozenset({
    "invalid_request", "invalid_client", "invalid_grant", "unauthorized_client", "unsupported_grant_type",
    "invalid_scope", "insecure_transport", "rate_limited", "audit_unavailable",
})
"""Failure labels of ``gateway_token_failures_total``; any other error is counted as ``other``."""


def oauth_error(response: Response) -> str:
    """The OAuth error code of a refused token response, when it is one of :data:`OAUTH_ERRORS`; else
    ``other`` (a label never takes a value the caller chose)."""
    try:
        error = json.loads(bytes(response.body)).get("error")
    except (ValueError, AttributeError):
        return "other"
    return error if error in OAUTH_ERRORS else "other"


class BatchHistogram(Collector):
    """A histogram that takes a batch of observations under one lock and one label lookup (prometheus_client's
    ``Histogram`` takes one at a time: a label lookup, a lock and a bucket search per message). Exported as a
    standard histogram: ``_bucket`` (cumulative, ``le``), ``_sum``, ``_count``."""

    def __init__(self, name: str, documentation: str, labelnames: tuple[str, ...] = (),
                 buckets: Sequence[float] = LATENCY_BUCKETS, registry: CollectorRegistry | None = None) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, labelnames
        self._bounds = sorted(buckets)
        self._les = [repr(float(b)) for b in self._bounds] + ["+Inf"]  # as Prometheus writes them: 1.0, 0.005
        self._lock = threading.Lock()
        self._series: dict[tuple[str, ...], tuple[list[int], list[float]]] = {}
        """Per label values: (count per bucket, the last one +Inf; [sum])."""
        if registry is not None:
            registry.register(self)

    def observe_many(self, values: Iterable[float], labels: tuple[str, ...] = ()) -> None:
        """Add every value of ``values`` as one observation each."""
        counts = [0] * (len(self._bounds) + 1)
        total = 0.0
        for value in values:
            counts[bisect.bisect_left(self._bounds, value)] += 1
            total += value
        self._add(labels, counts, total)

    def observe_same(self, value: float, times: int, labels: tuple[str, ...] = ()) -> None:
        """Add ``times`` observations of one ``value`` (a batch committed together)."""
        if times <= 0:
            return
        counts = [0] * (len(self._bounds) + 1)
        counts[bisect.bisect_left(self._bounds, value)] = times
        self._add(labels, counts, value * times)

    def _add(self, labels: tuple[str, ...], counts: list[int], total: float) -> None:
        with self._lock:
            series = self._series.get(labels)
            if series is None:
                series = self._series[labels] = ([0] * len(counts), [0.0])
            for index, count in enumerate(counts):
                if count:
                    series[0][index] += count
            series[1][0] += total

    def describe(self) -> list[Metric]:
        return [HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)]

    def collect(self) -> list[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        with self._lock:
            snapshot = [(labels, list(counts), sums[0]) for labels, (counts, sums) in self._series.items()]
        for labels, counts, total in snapshot:
            cumulative = list(itertools.accumulate(counts))
            family.add_metric(list(labels), list(zip(self._les, cumulative, strict=True)), total)
        return [family]


class GatewayMetrics:
    """Every metric the gateway exports, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self.messages = Counter(
            "gateway_messages", "Partner messages taken in, by sender and outcome "
            "(forwarded, denied, replayed, dead_lettered).", ["partner", "outcome"], registry=registry)
        self.decisions = Counter(
            "gateway_decisions", "Decisions about one recipient of one message, by flow (none: no flow matched), "
            "outcome (permit, deny) and reason (permitted, or the denial reason code).",
            ["flow", "outcome", "reason"], registry=registry)
        self.commit_latency = BatchHistogram(
            "gateway_message_commit_seconds", "From a message reaching the intake to its decisions, audit records "
            "and outgoing messages being committed.", registry=registry)
        self.delivery_latency = BatchHistogram(
            "gateway_message_delivery_seconds", "From a message reaching the intake to an outgoing message of it "
            "being delivered to the bus, by topic kind (out, s4.out, status, gateway).", ("kind",),
            registry=registry)
        self.deliveries = Counter(
            "gateway_relay_deliveries", "Outgoing messages the relay delivered to the bus, by recipient.",
            ["recipient"], registry=registry)
        self.drops = Counter(
            "gateway_relay_drops", "Queued messages the relay dropped at delivery (consent no longer allows them), "
            "by recipient and reason.", ["recipient", "reason"], registry=registry)
        self.dead_letters = Counter(
            "gateway_dead_letters", "Inbound records written to dlq.<partner>, by partner and reason.",
            ["partner", "reason"], registry=registry)
        self.tokens_issued = Counter(
            "gateway_tokens_issued", "Access tokens issued, by the client's organisation.", ["organisation"],
            registry=registry)
        self.token_failures = Counter(
            "gateway_token_failures", "Token requests refused, by OAuth error code (rate_limited: throttled).",
            ["error"], registry=registry)
        self.outbox_backlog = Gauge(
            "gateway_outbox_backlog_messages", "Outgoing messages committed and not yet delivered or dropped.",
            registry=registry)
        self.outbox_oldest_age = Gauge(
            "gateway_outbox_oldest_undelivered_age_seconds", "Age of the oldest message waiting in the outbox "
            "(0 when none waits).", registry=registry)
        self.consumer_lag = Gauge(
            "gateway_consumer_lag_messages", "Records of an inbound topic the consumer group has not committed.",
            ["topic"], registry=registry)
        self.consumer_member = Gauge(
            "gateway_consumer_group_member", "1 while this process's inbound consumer is a member of its group.",
            registry=registry)
        self.audit_records = Gauge(
            "gateway_audit_records", "Records in the audit log (its tree size).", registry=registry)
        self.checkpoint_age = Gauge(
            "gateway_audit_checkpoint_age_seconds", "Seconds since the last signed audit checkpoint (since the "
            "process started when none was signed yet).", registry=registry)
        self.checkpoint_records = Gauge(
            "gateway_audit_checkpoint_records", "Audit records the last signed checkpoint covers (its tree size); "
            "gateway_audit_records minus this is what no checkpoint signs yet.", registry=registry)
        self.consents = Gauge(
            "gateway_consent_records", "Consent records stored, every version counted.", registry=registry)
        self.sample_failures = Counter(
            "gateway_state_sample_failures", "State samples that failed (database or broker unavailable).",
            registry=registry)
        self._started = time.time()
        self._oldest_waiting: float | None = None
        self._last_checkpoint: float | None = None
        self.outbox_oldest_age.set_function(self._oldest_age)
        self.checkpoint_age.set_function(self._checkpoint_age)
        self.consumer_member.set(0)

    def _oldest_age(self) -> float:
        return 0.0 if self._oldest_waiting is None else max(0.0, time.time() - self._oldest_waiting)

    def _checkpoint_age(self) -> float:
        return max(0.0, time.time() - (self._last_checkpoint or self._started))

    def sampled(self, *, backlog: int, oldest: datetime | None, audit_size: int, checkpoint_at: datetime | None,
                checkpoint_size: int, consents: int, lag: dict[str, int]) -> None:
        """Take one sample of the state gauges (see :class:`StateSampler`)."""
        self.outbox_backlog.set(backlog)
        self._oldest_waiting = None if oldest is None else oldest.timestamp()
        self.audit_records.set(audit_size)
        self._last_checkpoint = None if checkpoint_at is None else checkpoint_at.timestamp()
        self.checkpoint_records.set(checkpoint_size)
        self.consents.set(consents)
        for topic, behind in lag.items():
            self.consumer_lag.labels(topic).set(behind)


@dataclass
class StateSampler:
    """Samples the state gauges every ``every_seconds`` until the gateway stops (a supervised task)."""

    metrics: GatewayMetrics
    store: Store
    bus: Bus
    group_id: str
    topics: Sequence[str]
    """The inbound topics whose lag is measured."""
    every_seconds: float = 15.0
    member: Callable[[], bool] | None = None
    """Whether the inbound consumer is in its group now (``lambda: consumer.progress.member``)."""

    async def sample(self) -> None:
        """One sample; a database or broker that does not answer leaves the previous values and is counted."""
        if self.member is not None:
            self.metrics.consumer_member.set(1 if self.member() else 0)
        async with self.store.transaction() as tx:
            backlog, oldest = await tx.outbox_backlog()
            head = await tx.audit_head()
            checkpoint = await tx.latest_audit_checkpoint()
            consents = await tx.consent_count()
        lag = await asyncio.wait_for(self.bus.group_lag(self.group_id, self.topics), timeout=10)
        self.metrics.sampled(backlog=backlog, oldest=oldest, audit_size=head.size,
                             checkpoint_at=checkpoint.signed_at if checkpoint else None,
                             checkpoint_size=checkpoint.tree_size if checkpoint else 0, consents=consents, lag=lag)

    async def run(self, stop: asyncio.Event) -> None:
        """Sample until ``stop`` is set; failures are counted and logged by type, never fatal."""
        while not stop.is_set():
            try:
                await self.sample()
            except Exception as exc:  # the next sample tries again; readiness reports the outage itself
                self.metrics.sample_failures.inc()
                log.warning("metrics-sample-failed", error_type=type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.every_seconds)


@dataclass
class MetricsServer:
    """The ``/metrics`` endpoint serving one registry from a thread of its own."""

    server: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve(metrics: GatewayMetrics, host: str, port: int) -> MetricsServer:
    """Serve ``metrics`` in the Prometheus text format at ``http://host:port/metrics`` (0: any free port)."""
    server, thread = start_http_server(port, addr=host, registry=metrics.registry)
    return MetricsServer(server, thread)
