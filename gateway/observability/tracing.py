"""OpenTelemetry traces: one trace per message, from the HTTP request or the ``in.<partner>`` record through the
decision and the commit to each delivery, continued from the partner's W3C ``traceparent`` when it sent one.

Spans (``gateway.intake`` from the intake taking the message to its commit; ``gateway.deliver`` per outgoing
message from that commit to its delivery to the bus, as a child) carry only codes: partner, message type,
purpose, flow ids, outcome and reason, topic and recipient. Never an identifier, a name, a message id chosen by
a partner or a payload. The outgoing Kafka records carry the ``traceparent`` of their message's intake span,
so a recipient's own trace continues the same one.

Off by default (``GATEWAY_TRACING``). When on, spans go through a batching processor to the OTLP exporter,
configured by the standard ``OTEL_EXPORTER_OTLP_*`` variables and named by ``OTEL_SERVICE_NAME`` (default
``quartieri-gateway``). Each gateway has its own tracer provider: nothing is set process-wide.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from gateway.audit.record import AuditRecord
from gateway.store.models import MessageStatus, OutboxRow

__all__ = ["MessageTracer", "otlp_provider"]

_PROPAGATOR = TraceContextTextMapPropagator()
SERVICE_NAME = "quartieri-gateway"


def otlp_provider() -> TracerProvider:
    """A tracer provider exporting over OTLP/HTTP as the ``OTEL_*`` variables say."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    resource = Resource.create()
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": SERVICE_NAME}))
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def _ns(at: datetime) -> int:
    return int(at.timestamp() * 1_000_000_000)


class MessageTracer:
    """Starts and ends the spans of messages; see the module docstring."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("gateway")

    def intake_span(self, sender: str, traceparent: str | None, over_kafka: bool, received_at: datetime) -> Span:
        """The span of a message (or an HTTP submission's messages) from the intake taking it, continuing the
        partner's trace when ``traceparent`` is a valid one."""
        parent = _PROPAGATOR.extract({"traceparent": traceparent}) if traceparent else None
        return self.tracer.start_span(
            "gateway.intake", context=parent, kind=SpanKind.CONSUMER if over_kafka else SpanKind.SERVER,
            start_time=_ns(received_at),
            attributes={"gateway.partner": sender, "messaging.system": "kafka" if over_kafka else "http"},
        )

    @staticmethod
    def traceparent(span: Span) -> str | None:
        """The W3C ``traceparent`` naming ``span`` as the parent, for an outgoing record."""
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier, context=set_span_in_context(span))
        return carrier.get("traceparent")

    @staticmethod
    def committed(span: Span, statuses: Sequence[MessageStatus], audit: Sequence[AuditRecord],
                  replayed: int) -> None:
        """End an intake span at the commit, with what was decided (codes only)."""
        decisions = [r for r in audit if r.event_type == "decision"]
        span.set_attributes({
            "gateway.messages": len(statuses) + replayed,
            "gateway.replayed": replayed,
            "gateway.message_types": sorted({s.message_type for s in statuses}),
            "gateway.outcomes": sorted({s.state for s in statuses}),
            "gateway.flows": sorted({r.flow_id for r in decisions if r.flow_id}),
            "gateway.decisions": len(decisions),
            "gateway.denial_reasons": sorted({r.reason for r in decisions if r.reason}),
        })
        for record in decisions:
            span.add_event("decision", {"gateway.flow": record.flow_id or "none", "gateway.outcome": record.outcome,
                                        "gateway.reason": record.reason or "permitted",
                                        "gateway.recipient": record.recipient_org or "none"})
        span.end()

    @staticmethod
    def failed(span: Span, error: BaseException) -> None:
        span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        span.end()

    def delivered(self, rows: Sequence[OutboxRow], at: datetime, kind_of: Mapping[str, str]) -> None:
        """One ``gateway.deliver`` span per delivered row that carries a ``traceparent``, from its commit to
        ``at``; ``kind_of``: topic kind by topic name."""
        end = _ns(at)
        for row in rows:
            traceparent = next((v for k, v in row.headers if k == "traceparent"), None)
            if traceparent is None:
                continue
            span = self.tracer.start_span(
                "gateway.deliver", context=_PROPAGATOR.extract({"traceparent": traceparent}),
                kind=SpanKind.PRODUCER, start_time=_ns(row.created_at),
                attributes={"messaging.system": "kafka", "messaging.destination.name": row.topic,
                            "gateway.recipient": row.recipient, "gateway.topic_kind": kind_of.get(row.topic, "")},
            )
            span.end(end_time=end)

    def shutdown(self) -> None:
        """Export what is still buffered and stop."""
        self.provider.shutdown()
