"""The pipeline's one-line hooks into metrics and traces.

The intake, the relay and the inbound consumer each hold a :class:`PipelineObserver` (``observer``; the
composition root gives them the gateway's) and call it once per batch:

- the intake, just before writing its outgoing messages, :meth:`PipelineObserver.batch` (which starts the
  messages' spans and stamps their ``traceparent`` on the outgoing rows when tracing is on), then, after the
  commit, :meth:`ObservedBatch.committed` (messages by partner and outcome, decisions by flow and reason, the
  commit latency; the spans end);
- the relay, after committing a batch, :meth:`PipelineObserver.delivered`, and :meth:`PipelineObserver.dropped`
  per message dropped at delivery;
- the consumer, after publishing dead letters, :meth:`PipelineObserver.dead_lettered`.

Counts are aggregated per batch before they touch a counter, so a batch of 200 messages costs a handful of
labelled increments, not 200. The default observer of a pipeline part built alone (a test, a CLI command
without a gateway) counts into a registry nobody serves and traces nothing.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from opentelemetry.trace import Span

from gateway.audit.record import AuditRecord
from gateway.bus.port import OutgoingRecord
from gateway.observability.metrics import GatewayMetrics
from gateway.observability.tracing import MessageTracer
from gateway.store.models import MessageStatus, OutboxRow

if TYPE_CHECKING:
    from gateway.pipeline.intake import Submission
    from schemas.envelope import Envelope

__all__ = ["ObservedBatch", "PipelineObserver"]


def _now() -> datetime:
    return datetime.now(UTC)


class PipelineObserver:
    """Where the pipeline reports what it did (see the module docstring)."""

    def __init__(self, metrics: GatewayMetrics | None = None, tracer: MessageTracer | None = None,
                 topic_prefix: str = "") -> None:
        self.metrics = metrics or GatewayMetrics()
        self.tracer = tracer
        """Traces nothing when None (the default: ``GATEWAY_TRACING`` off)."""
        self.topic_prefix = topic_prefix
        self._kinds: dict[str, str] = {}

    # --- intake ----------------------------------------------------------------------------------------------

    def batch(self, items: Sequence[tuple[Envelope, Submission]], rows: list[OutboxRow],
              received_at: datetime) -> ObservedBatch:
        """A batch decided and about to be written: with tracing on, start one span per submission and stamp
        its ``traceparent`` on the outgoing rows of it (``rows`` is changed in place)."""
        observed = ObservedBatch(self, received_at)
        if self.tracer is None or not items:
            return observed
        spans: dict[str, Span] = {}
        for _, submission in items:
            if submission.request_id not in spans:
                spans[submission.request_id] = self.tracer.intake_span(
                    submission.sender, submission.traceparent, submission.kafka is not None, received_at)
        parents = {rid: MessageTracer.traceparent(span) for rid, span in spans.items()}
        for index, row in enumerate(rows):
            request_id = next((v for k, v in row.headers if k == "request-id"), None)
            parent = parents.get(request_id) if request_id else None
            if parent is not None:
                rows[index] = replace(row, headers=(*row.headers, ("traceparent", parent)))
        observed.spans = spans
        observed.request_ids = [submission.request_id for _, submission in items]
        return observed

    # --- relay -----------------------------------------------------------------------------------------------

    def delivered(self, rows: Sequence[OutboxRow], at: datetime) -> None:
        """Rows published to the bus in one committed relay batch."""
        if not rows:
            return
        metrics = self.metrics
        by_recipient = Tally(row.recipient for row in rows)
        for recipient, count in by_recipient.items():
            metrics.deliveries.labels(recipient).inc(count)
        kinds = {row.topic: self.topic_kind(row.topic) for row in rows}
        latencies: dict[str, list[float]] = {}
        for row in rows:
            latencies.setdefault(kinds[row.topic], []).append(max(0.0, (at - row.created_at).total_seconds()))
        for kind, values in latencies.items():
            metrics.delivery_latency.observe_many(values, (kind,))
        if self.tracer is not None:
            self.tracer.delivered(rows, at, kinds)

    def dropped(self, row: OutboxRow, reason: str) -> None:
        """A queued row dropped at delivery (its consent no longer allows it)."""
        self.metrics.drops.labels(row.recipient, reason).inc()

    # --- consumer --------------------------------------------------------------------------------------------

    def dead_lettered(self, records: Sequence[OutgoingRecord]) -> None:
        """Dead-letter entries published to ``dlq.<partner>``."""
        tally: Tally[tuple[str, str]] = Tally()
        for record in records:
            reason = next((v.decode("utf-8", "replace") for k, v in record.headers if k == "reason"), "unknown")
            tally[(record.topic.rsplit(".", 1)[-1], reason)] += 1
        for (partner, reason), count in tally.items():
            self.metrics.dead_letters.labels(partner, reason).inc(count)
            self.metrics.messages.labels(partner, "dead_lettered").inc(count)

    def topic_kind(self, topic: str) -> str:
        """``out``, ``s4.out``, ``status``, ``dlq`` or ``gateway`` (consent events) for a topic name."""
        kind = self._kinds.get(topic)
        if kind is None:
            name = topic.removeprefix(self.topic_prefix)
            kind = self._kinds[topic] = name.rsplit(".", 1)[0] if "." in name else name
        return kind


@dataclass
class ObservedBatch:
    """One intake batch between :meth:`PipelineObserver.batch` and its commit."""

    observer: PipelineObserver
    received_at: datetime
    spans: dict[str, Span] = field(default_factory=dict)
    """Intake spans by request id (tracing on)."""
    request_ids: list[str] = field(default_factory=list)
    """The request id of each message of the batch, in order (tracing on)."""

    def committed(self, statuses: Sequence[MessageStatus], decided: Mapping[int, MessageStatus],
                  audit: Sequence[AuditRecord]) -> None:
        """The batch committed: ``statuses`` one per message, ``decided`` those decided now by index (the rest
        were replays), ``audit`` the records written."""
        metrics = self.observer.metrics
        outcomes: Tally[tuple[str, str]] = Tally()
        for index, status in enumerate(statuses):
            outcomes[(status.sender, status.state if index in decided else "replayed")] += 1
        for (partner, outcome), count in outcomes.items():
            metrics.messages.labels(partner, outcome).inc(count)
        reasons = Tally((r.flow_id or "none", r.outcome or "deny", r.reason or "permitted")
                        for r in audit if r.event_type == "decision")
        for labels, count in reasons.items():
            metrics.decisions.labels(*labels).inc(count)
        metrics.commit_latency.observe_same(max(0.0, (_now() - self.received_at).total_seconds()), len(statuses))
        if self.spans:
            self._end_spans(statuses, decided, audit)

    def _end_spans(self, statuses: Sequence[MessageStatus], decided: Mapping[int, MessageStatus],
                   audit: Sequence[AuditRecord]) -> None:
        by_request: dict[str, list[MessageStatus]] = {}
        replayed: Tally[str] = Tally()
        for index, (status, request_id) in enumerate(zip(statuses, self.request_ids, strict=True)):
            if index in decided:
                by_request.setdefault(request_id, []).append(status)
            else:
                replayed[request_id] += 1
        records_of: dict[str, list[AuditRecord]] = {}
        for record in audit:
            if record.message_ids:
                records_of.setdefault(record.message_ids[0], []).append(record)
        for request_id, span in self.spans.items():
            found = by_request.get(request_id, [])
            records = [r for status in found for r in records_of.get(status.message_id, ())]
            MessageTracer.committed(span, found, records, replayed[request_id])
        self.spans = {}
