"""A partner's W3C ``traceparent`` reaches the audit records of its message, over HTTP and over Kafka, so that a
privacy officer can line a decision up with the partner's own logs; a malformed one is ignored."""

from __future__ import annotations

import httpx
import orjson
import pytest

from gateway.bootstrap import Gateway
from gateway.bus import OutgoingRecord
from gateway.simulators import aler_arrears_message
from gateway.trace_context import trace_id_of
from tests.conftest import bearer
from tests.e2e.test_f1_microcredit_referral import audit_records, read_until, record_consent, tenant

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE}-00f067aa0ba902b7-01"


@pytest.mark.parametrize(("value", "expected"), [
    (TRACEPARENT, TRACE),
    (f" {TRACEPARENT} ", TRACE),
    (None, None), ("", None), ("garbage", None),
    (f"00-{'0' * 32}-00f067aa0ba902b7-01", None),  # all-zero trace id: invalid
    (f"00-{TRACE}-{'0' * 16}-01", None),  # all-zero parent id: invalid
    (f"ff-{TRACE}-00f067aa0ba902b7-01", None),  # version ff is forbidden
    (TRACEPARENT.upper(), None),  # lower-case hex only
])
def test_the_trace_id_is_read_from_a_valid_traceparent_only(value: str | None, expected: str | None) -> None:
    assert trace_id_of(value) == expected


async def test_an_http_submission_records_its_trace_id(gateway: Gateway, http: httpx.AsyncClient) -> None:
    traced, untraced = tenant(71), tenant(72)
    await record_consent(gateway, traced.cf)
    aler = await bearer(http, "aler-test")
    for person, message_id, header in ((traced, "tr-1", TRACEPARENT), (untraced, "tr-2", "00-nonsense")):
        response = await http.post("/v1/partners/aler/messages",
                                   content=orjson.dumps(aler_arrears_message(person, message_id)),
                                   headers={**aler, "content-type": "application/json", "traceparent": header})
        assert response.status_code == 202
    by_message = {}
    for record in await audit_records(gateway):
        for message_id in record.get("message_ids", ()):
            by_message.setdefault(message_id, set()).add(record.get("trace_id"))
    assert by_message["tr-1"] == {TRACE}  # its decision and its disclosure
    assert by_message["tr-2"] == {None}


async def test_a_kafka_submission_records_its_trace_id(gateway: Gateway) -> None:
    person = tenant(73)
    await record_consent(gateway, person.cf)
    await gateway.bus.publish([OutgoingRecord(
        topic=gateway.settings.topics.name("in", "aler"), value=orjson.dumps(aler_arrears_message(person, "tr-k")),
        headers=(("traceparent", TRACEPARENT.encode()),))])
    await read_until(gateway, "out", "fwa", 1)
    records = [r for r in await audit_records(gateway) if "tr-k" in r.get("message_ids", ())]
    assert [(r["event_type"], r.get("trace_id")) for r in records] == [("decision", TRACE), ("disclosure", TRACE)]
