"""The ``console-session`` audit record: sign-in (by method), sign-out and failed sign-in, built by the ledger;
a failure names no one and nothing typed; each exports as a valid FHIR R4 AuditEvent (User Authentication,
Login or Logout)."""

from __future__ import annotations

from datetime import UTC, datetime

from fhir.resources.R4B.auditevent import AuditEvent

from gateway.audit.fhir_export import to_fhir_audit_event
from gateway.pipeline import ledger
from tests.unit.test_audit_fhir import logged

AT = datetime(2026, 12, 6, tzinfo=UTC)


def test_sign_in_sign_out_and_failure_records_export_as_login_and_logout() -> None:
    signed_in = ledger.console_session_record("sign-in", "oidc", "gw-1", "req-1", AT, "oidc:5f1c", "asst", "ref-1")
    signed_out = ledger.console_session_record("sign-out", "oidc", "gw-1", "req-2", AT, "oidc:5f1c", "asst", "ref-1")
    failed = ledger.console_session_record("sign-in", "local", "gw-1", "req-3", AT, failure="bad-credentials")
    assert (signed_in.action, signed_in.outcome, signed_in.client_id, signed_in.token_id) == (
        "sign-in-oidc", "success", "oidc:5f1c", "ref-1")
    assert (signed_out.action, signed_out.outcome) == ("sign-out", "success")
    assert (failed.action, failed.outcome, failed.reason, failed.client_id, failed.requesting_org) == (
        "sign-in-local", "failure", "bad-credentials", None, None)
    codes = []
    for record in (signed_in, signed_out, failed):
        event = to_fhir_audit_event(logged(record))
        AuditEvent.model_validate(event)
        assert event["type"]["code"] == "110114"
        codes.append(event["subtype"][0]["code"])
    assert codes == ["110122", "110123", "110122"]
