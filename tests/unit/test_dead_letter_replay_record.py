"""The ``dead-letter-replay`` audit record (issue 9 point 13): built by the ledger, it names who asked, the entry
and the source record, and no person; it exports as a valid FHIR R4 AuditEvent like every other record."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fhir.resources.R4B.auditevent import AuditEvent

from gateway.audit.fhir_export import to_fhir_audit_event
from gateway.audit.record import KafkaCoordinates
from gateway.pipeline import ledger
from tests.unit.test_audit_fhir import logged


@pytest.mark.parametrize(("outcome", "audited"), [("decided", "success"), ("already-decided", "success"),
                                                   ("still-invalid", "failure"), ("source-gone", "failure")])
def test_a_replay_record_names_the_requester_and_the_source_and_exports_as_an_audit_event(
        outcome: str, audited: str) -> None:
    source = KafkaCoordinates(topic="in.aler", partition=1, offset=17)
    record = ledger.dead_letter_replay_record("aler:0:3", "aler", "cli:operator", outcome, ["m-1"], source, "gw-1",
                                              "req-1", datetime(2026, 12, 6, tzinfo=UTC))
    assert (record.event_type, record.client_id, record.queried_ref, record.kafka) == (
        "dead-letter-replay", "cli:operator", "aler:0:3", source)
    assert (record.outcome, record.reason, record.subject_ref) == (audited, outcome, None)
    event = to_fhir_audit_event(logged(record))
    AuditEvent.model_validate(event)
    assert event["type"]["code"] == "110100"
