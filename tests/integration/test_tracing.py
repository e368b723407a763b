"""OpenTelemetry traces (issue 9, point 10) on a real Kafka broker and PostgreSQL, collected with the SDK's
in-memory exporter: one trace per message from ``in.<partner>`` or HTTP through the decision and the commit to
the delivery, continuing the partner's W3C ``traceparent``, carried on to the outgoing Kafka records; and no
span, attribute or event holds a codice fiscale, a name, a message id or a canary (privacy.md: no personal data
outside the store).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.api import create_app
from gateway.auth import PartnerClient
from gateway.bootstrap import Gateway, build
from gateway.bus import OutgoingRecord
from gateway.observability.tracing import MessageTracer
from gateway.simulators import aler_arrears_message
from gateway.trace_context import trace_id_of
from tests.conftest import REAL, Backends, bearer
from tests.e2e.test_f1_microcredit_referral import read_until, record_consent, tenant

DEADLINE_S = 60.0
PARTNER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARTNER_SPAN = "00f067aa0ba902b7"
HTTP_TRACE = "0af7651916cd43dd8448eb211c80319c"
HTTP_SPAN = "b7ad6b7169203331"
CANARY = "CANARYGIULIA"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    found = InMemorySpanExporter()
    yield found
    found.clear()


@pytest.fixture
async def traced(settings_for: Callable[[Backends], Any], clients: tuple[PartnerClient, ...],
                 exporter: InMemorySpanExporter) -> AsyncIterator[Gateway]:
    """A started gateway on the real backends whose spans go to ``exporter``."""
    gateway = build(await settings_for(REAL), clients=clients)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    gateway.observer.tracer = MessageTracer(provider)
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop()


async def spans_until(exporter: InMemorySpanExporter, ready: Callable[[list[ReadableSpan]], bool]) -> list[
        ReadableSpan]:
    deadline = time.monotonic() + DEADLINE_S
    while not ready(spans := list(exporter.get_finished_spans())):
        assert time.monotonic() < deadline, [(s.name, s.attributes) for s in spans]
        await asyncio.sleep(0.2)
    return spans


def trace_of(span: ReadableSpan) -> str:
    assert span.context is not None
    return format(span.context.trace_id, "032x")


def span_id_of(span: ReadableSpan) -> str:
    assert span.context is not None
    return format(span.context.span_id, "016x")


def everything_in(span: ReadableSpan) -> str:
    """A span as text: name, attributes, events and their attributes, status, resource."""
    parts = [span.name, repr(dict(span.attributes or {})), repr(span.status.description)]
    parts += [event.name + repr(dict(event.attributes or {})) for event in span.events]
    return " ".join(parts)


async def test_one_trace_per_message_continued_from_the_partner_and_carried_to_the_recipient(
        traced: Gateway, exporter: InMemorySpanExporter) -> None:
    gateway = traced
    permitted, refused, plain = tenant(41), tenant(42), tenant(43)
    await record_consent(gateway, permitted.cf)
    topic = gateway.settings.topics.name("in", "aler")
    partner_parent = f"00-{PARTNER_TRACE}-{PARTNER_SPAN}-01"
    await gateway.bus.publish([
        OutgoingRecord(topic=topic, value=orjson.dumps(aler_arrears_message(permitted, "m-trace-permit")),
                       headers=(("traceparent", partner_parent.encode()), ("request-id", b"req-trace-1"))),
        # a malformed traceparent carrying a canary: ignored, the message gets a trace of its own
        OutgoingRecord(topic=topic, value=orjson.dumps(aler_arrears_message(plain, "m-trace-plain")),
                       headers=(("traceparent", f"00-{CANARY}-zz-01".encode()), ("request-id", b"req-trace-2"))),
    ])
    app = create_app(gateway, manage_lifecycle=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://testserver") as http:
        headers = await bearer(http, "aler-test")
        response = await http.post("/v1/partners/aler/messages", json=aler_arrears_message(refused, "m-trace-http"),
                                   headers={**headers, "traceparent": f"00-{HTTP_TRACE}-{HTTP_SPAN}-01"})
    assert response.status_code == 202, response.text

    [referral] = await read_until(gateway, "out", "fwa", 1, settle_s=0.5)

    def complete(spans: list[ReadableSpan]) -> bool:
        return (sum(s.name == "gateway.intake" for s in spans) >= 3
                and sum(s.name == "gateway.deliver" for s in spans) >= 4)  # referral + three statuses

    spans = await spans_until(exporter, complete)
    intake = [s for s in spans if s.name == "gateway.intake"]
    deliver = [s for s in spans if s.name == "gateway.deliver"]

    # the Kafka message continues the partner's trace, as a child of the partner's span
    [from_partner] = [s for s in intake if trace_of(s) == PARTNER_TRACE]
    assert from_partner.parent is not None and format(from_partner.parent.span_id, "016x") == PARTNER_SPAN
    assert from_partner.attributes is not None
    assert from_partner.attributes["gateway.outcomes"] == ("forwarded",)
    assert from_partner.attributes["gateway.flows"] == ("F1",)
    assert [e.attributes["gateway.outcome"] for e in from_partner.events if e.attributes] == ["permit"]
    # the HTTP message continues the caller's trace; the one with a malformed traceparent starts its own
    [from_http] = [s for s in intake if trace_of(s) == HTTP_TRACE]
    assert from_http.attributes is not None and from_http.attributes["gateway.outcomes"] == ("denied",)
    others = [s for s in intake if trace_of(s) not in (PARTNER_TRACE, HTTP_TRACE)]
    assert len(others) == 1 and others[0].parent is None
    assert len({trace_of(s) for s in intake}) == 3  # one trace per message

    # the outgoing record carries the trace on, naming the intake span as its parent
    headers = {name: value.decode() for name, value in referral.headers}
    assert trace_id_of(headers["traceparent"]) == PARTNER_TRACE
    assert headers["traceparent"].split("-")[2] == span_id_of(from_partner)
    # delivery spans are children of the intake span of their message, in the same trace
    to_fwa = [s for s in deliver if s.attributes and s.attributes["gateway.recipient"] == "fwa"]
    assert [trace_of(s) for s in to_fwa] == [PARTNER_TRACE]
    assert to_fwa[0].parent is not None and format(to_fwa[0].parent.span_id, "016x") == span_id_of(from_partner)
    assert to_fwa[0].start_time is not None and from_partner.end_time is not None
    statuses_back = {trace_of(s) for s in deliver if s.attributes and s.attributes["gateway.topic_kind"] == "status"}
    assert statuses_back == {trace_of(s) for s in intake}

    # no person, no message id, no canary in any span
    for span in spans:
        text = everything_in(span)
        for secret in (permitted.cf, refused.cf, plain.cf, permitted.family_name, permitted.given_name,
                       refused.family_name, plain.family_name, CANARY, "m-trace-permit", "m-trace-http",
                       "m-trace-plain"):
            assert secret not in text, (span.name, secret)


async def test_tracing_is_off_by_default(settings_for: Callable[[Backends], Any],
                                         clients: tuple[PartnerClient, ...]) -> None:
    from tests.conftest import EMBEDDED

    gateway = build(await settings_for(EMBEDDED), clients=clients)
    assert gateway.settings.tracing is False
    assert gateway.observer.tracer is None
