"""T-12: audit records export as valid FHIR R4 AuditEvent resources, following IHE BALP patterns.

Every export is checked by building the ``fhir.resources`` R4B model from it (the exporter does so too), and
field by field for what a privacy officer relies on: event type and subtype, action, outcome, purpose of use,
the agents (client, organisations, gateway) and the entities (opaque subject reference, consent, messages,
the record's place in the tamper-evident log). Records as the pipeline writes them are exported end to end
in tests/integration/test_audit_api.py.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any, Literal

import pytest
from fhir.resources.R4B.auditevent import AuditEvent

from gateway.audit.canonical import canonical_json
from gateway.audit.fhir_export import (
    ACT_CODE_POLICIES,
    AUDIT_LOG_INDEX_SYSTEM,
    CLIENT_SYSTEM,
    CONSENT_SYSTEM,
    MESSAGE_SYSTEM,
    SECURITY_LABEL_SYSTEM,
    SUBJECT_REF_SYSTEM,
    to_fhir_audit_event,
)
from gateway.audit.merkle import leaf_hash
from gateway.audit.record import AuditRecord, KafkaCoordinates, subject_ref
from gateway.policy.registry import load_registry

OCCURRED = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)
RECORDED = datetime(2026, 11, 22, 9, 30, 1, 250000, tzinfo=UTC)
SUBJECT = subject_ref(b"k" * 32)
DCM = "http://dicom.nema.org/resources/ontology/DCM"


def logged(record: AuditRecord, index: int = 41) -> dict[str, Any]:
    """The record as stored: its canonical JSON at ``index``, parsed back."""
    loaded: dict[str, Any] = json.loads(canonical_json(record.for_log(index, bytes(range(32)), RECORDED)))
    return loaded


def decision(outcome: Literal["permit", "deny"] = "permit") -> AuditRecord:
    permitted = outcome == "permit"
    return AuditRecord(
        event_type="decision", action="forward" if permitted else "deny", occurred_at=OCCURRED,
        outcome=outcome,
        reason=None if permitted else "no-applicable-consent", purpose="microcredit-assessment",
        legal_basis="6(1)(a)", flow_id="F1", decision_id="dec-1", consent_ref="cons-1@2" if permitted else None,
        policy_revision="2026.1", combining_rule="deny-overrides", matched_provision="base",
        client_id="aler-test", token_id="jti-1", requesting_org="aler", instance="gw-1", source_org="aler",
        recipient_org="fwa", subject_ref=SUBJECT, message_ids=("aler-m-1",), correlation_id="corr-1",
        request_id="req-1", kafka=KafkaCoordinates(topic="in.aler", partition=1, offset=7), labels=("S2",),
    )


def disclosure() -> AuditRecord:
    return AuditRecord(
        event_type="disclosure", action="forward", occurred_at=OCCURRED, outcome="permit",
        purpose="microcredit-assessment", legal_basis="6(1)(a)", flow_id="F1", decision_id="dec-1",
        consent_ref="cons-1@2", client_id="aler-test", token_id="jti-1", requesting_org="aler", instance="gw-1",
        source_org="aler", recipient_org="fwa", subject_ref=SUBJECT, message_ids=("aler-m-1", "gw-out-1"),
        correlation_id="corr-1", request_id="req-1", data_categories=("richiedente.codice_fiscale", "fascia_isee"),
        labels=("S2",), obligations=("PSEUD", "NORDSCLCD", "NOREUSE"),
    )


def consent_change(action: str) -> AuditRecord:
    return AuditRecord(
        event_type="consent-change", action=action, occurred_at=OCCURRED, outcome="success",
        purpose="housing-support,microcredit-assessment", consent_ref="cons-1@3", client_id="aler-test",
        requesting_org="aler", instance="gw-1", subject_ref=SUBJECT, request_id="req-2",
    )


def codes(codings: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(c["system"], c["code"]) for c in codings}


def identifiers(event: dict[str, Any], system: str) -> list[str]:
    return [e["what"]["identifier"]["value"] for e in event.get("entity", [])
            if e.get("what", {}).get("identifier", {}).get("system") == system]


@pytest.mark.parametrize(
    "record",
    [decision(), decision("deny"), disclosure(), consent_change("record-consent"),
     consent_change("withdraw-consent"),
     AuditRecord(event_type="delivery-dropped", action="drop-at-delivery", occurred_at=OCCURRED, outcome="deny",
                 reason="consent-withdrawn", purpose="microcredit-assessment", instance="gw-1",
                 recipient_org="fwa", consent_ref="cons-1@1", subject_ref=SUBJECT, message_ids=("gw-out-2",)),
     AuditRecord(event_type="privacy-query", action="read-audit-record", occurred_at=OCCURRED, outcome="success",
                 purpose="privacy-oversight", client_id="dpo-test", requesting_org="comune", instance="gw-1",
                 subject_ref=SUBJECT, queried_ref="audit-log/3")],
    ids=["decision-permit", "decision-deny", "disclosure", "consent-recorded", "consent-withdrawn",
         "delivery-dropped", "privacy-query"],
)
def test_T12_every_kind_of_record_exports_as_a_valid_r4_audit_event(record: AuditRecord) -> None:
    event = to_fhir_audit_event(logged(record))
    model = AuditEvent.model_validate(event)
    assert model.id == record.record_id
    assert event["recorded"] == "2026-11-22T09:30:01.250000Z"
    assert event["period"]["start"] == "2026-11-22T09:30:00Z"
    assert identifiers(event, SUBJECT_REF_SYSTEM) == [SUBJECT]
    assert identifiers(event, AUDIT_LOG_INDEX_SYSTEM) == ["41"]
    [position] = [e for e in event["entity"] if e.get("what", {}).get("identifier", {}).get("system")
                  == AUDIT_LOG_INDEX_SYSTEM]
    details = {d["type"]: d["valueString"] for d in position["detail"]}
    assert details["leaf-hash"] == leaf_hash(canonical_json(logged(record))).hex()
    assert details["prev-chain-hash"] == bytes(range(32)).hex()
    gateway_agent = event["agent"][-1]
    assert gateway_agent["who"]["identifier"]["value"] == "gw-1"
    assert gateway_agent["requestor"] is (record.event_type == "delivery-dropped")
    assert sum(a["requestor"] for a in event["agent"]) == 1


def test_T12_decisions_follow_the_balp_authorization_decision_pattern() -> None:
    permit = to_fhir_audit_event(logged(decision()))
    assert permit["meta"]["profile"] == ["https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.AuthZconsent"]
    assert (permit["type"]["system"], permit["type"]["code"]) == (DCM, "110113")
    assert codes(permit["subtype"]) == {("https://profiles.ihe.net/ITI/BALP/CodeSystem/AuthZsubType", "AuthZ-Consent")}
    assert permit["action"] == "E" and permit["outcome"] == "0" and "outcomeDesc" not in permit
    assert codes(permit["purposeOfEvent"][0]["coding"]) == {
        ("http://terminology.hl7.org/CodeSystem/v3-ActReason", "ELIGDTRM"),
        ("https://gateway.quartieri.example/fhir/CodeSystem/purpose", "microcredit-assessment"),
    }
    client = permit["agent"][0]
    assert client["who"]["identifier"] == {"system": CLIENT_SYSTEM, "value": "aler-test"}
    assert client["requestor"] is True and client["policy"] == ["jti-1"]
    assert identifiers(permit, CONSENT_SYSTEM) == ["cons-1@2"]
    assert permit["source"]["type"][0]["code"] == "6"

    deny = to_fhir_audit_event(logged(decision("deny")))
    assert deny["outcome"] == "4" and deny["outcomeDesc"] == "no-applicable-consent"
    assert codes(deny["subtype"]) == {("https://profiles.ihe.net/ITI/BALP/CodeSystem/AuthZsubType", "AuthZ-Role")}
    [details] = [e["detail"] for e in deny["entity"] if e.get("description") == "policy decision"]
    assert {d["type"]: d["valueString"] for d in details}["reason"] == "no-applicable-consent"


def test_T12_disclosures_follow_the_balp_privacy_disclosure_pattern() -> None:
    event = to_fhir_audit_event(logged(disclosure()))
    assert event["meta"]["profile"] == [
        "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PrivacyDisclosure.Source"]
    assert (event["type"]["code"], event["action"], event["outcome"]) == ("110106", "R", "0")
    assert codes(event["subtype"]) == {("http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle", "disclose")}
    roles = {a["type"]["coding"][0]["code"]: a["who"]["identifier"]["value"] for a in event["agent"]}
    assert roles["110153"] == "aler" and roles["110152"] == "fwa"
    assert identifiers(event, MESSAGE_SYSTEM) == ["aler-m-1", "gw-out-1"]
    [outgoing] = [e for e in event["entity"] if e.get("what", {}).get("identifier", {}).get("value") == "gw-out-1"]
    assert codes(outgoing["securityLabel"]) == {
        ("https://gateway.quartieri.example/fhir/CodeSystem/sensitivity", "S2"),
        ("http://terminology.hl7.org/CodeSystem/v3-ActCode", "PSEUD"),
        ("http://terminology.hl7.org/CodeSystem/v3-ActCode", "NORDSCLCD"),
        ("http://terminology.hl7.org/CodeSystem/v3-ActCode", "NOREUSE"),
    }
    assert [d["valueString"] for d in outgoing["detail"]] == ["richiedente.codice_fiscale", "fascia_isee"]


def test_T12_consent_changes_are_restful_create_and_update_with_each_purpose() -> None:
    recorded = to_fhir_audit_event(logged(consent_change("record-consent")))
    withdrawn = to_fhir_audit_event(logged(consent_change("withdraw-consent")))
    assert (recorded["action"], recorded["subtype"][0]["code"]) == ("C", "create")
    assert (withdrawn["action"], withdrawn["subtype"][0]["code"]) == ("U", "update")
    assert recorded["type"]["code"] == "rest" and "meta" not in recorded
    assert [c["coding"][-1]["code"] for c in recorded["purposeOfEvent"]] == ["housing-support",
                                                                            "microcredit-assessment"]
    author = recorded["agent"][1]
    assert author["type"]["coding"][0]["code"] == "AUT" and author["who"]["identifier"]["value"] == "aler"
    assert identifiers(recorded, CONSENT_SYSTEM) == ["cons-1@3"]


def test_T12_purpose_mapping_can_be_given_and_unknown_event_types_are_refused() -> None:
    event = to_fhir_audit_event(logged(decision()), purposes={"microcredit-assessment": None}, site="x/audit")
    assert codes(event["purposeOfEvent"][0]["coding"]) == {
        ("https://gateway.quartieri.example/fhir/CodeSystem/purpose", "microcredit-assessment")}
    assert event["source"]["site"] == "x/audit"
    with pytest.raises(ValueError, match="unknown audit event type"):
        to_fhir_audit_event({**logged(decision()), "event_type": "something-else"})


def test_T12_the_export_carries_nothing_the_record_does_not() -> None:
    """The record holds no name, codice fiscale or payload; the export adds only codes and gateway names."""
    record = logged(disclosure())
    values = {str(v) for v in record.values() if isinstance(v, str | int)}
    values |= {str(item) for v in record.values() if isinstance(v, list) for item in v}
    exported = to_fhir_audit_event(record)
    narrative = exported.pop("text")
    assert narrative["status"] == "generated"
    shown = re.findall(r"<li>[^:<]+: ([^<]*)</li>", narrative["div"])
    assert shown and set(shown) <= values, shown  # the narrative repeats the record's own codes, nothing else
    texts = _strings(exported)
    unexplained = {
        t for t in texts
        if t not in values and not t.startswith(("http://", "https://")) and not t.isdigit()
        and t != record["prev_chain_hash"] and len(t) != 64
    }
    assert unexplained <= {
        "Export", "Disclose Record Lifecycle Event", "Application", "Source Role ID", "Destination Role ID",
        "custodian", "Application Server", "Person", "Patient", "Security Resource", "Consent", "System Object",
        "Domain Resource", "Other", "policy decision", "XrequestId", "correlation id", "Data Repository",
        "position in the tamper-evident audit log (RFC 6962 leaf)", "AuditEvent", "R", "0", "leaf-hash",
        "prev-chain-hash", "data-category", "flow-id", "legal-basis", "policy-revision", "quartieri-gateway",
        "ELIGDTRM", "PSEUD", "NORDSCLCD", "NOREUSE", "disclose", "S2", "2026-11-22T09:30:00Z",
        "2026-11-22T09:30:01.250000Z", "4", "1", "2", "13", "17", "CST",
    }, unexplained


def _strings(node: Any) -> set[str]:
    if isinstance(node, str):
        return {node}
    if isinstance(node, dict):
        return set().union(*(_strings(v) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(_strings(v) for v in node)) if node else set()
    return set()


@pytest.mark.parametrize(
    ("record", "type_code"),
    [(AuditRecord(event_type="erasure", action="erase-subject", occurred_at=OCCURRED, outcome="success",
                  purpose="subject-request", client_id="dpo-test", requesting_org="gateway-privacy", instance="gw-1",
                  request_id="req-9", counts={"outbox-payloads": 2, "undelivered-dropped": 1}), "110110"),
     (AuditRecord(event_type="erasure", action="erase-subject", occurred_at=OCCURRED, outcome="failure",
                  reason="no-subject", purpose="subject-request", client_id="dpo-test",
                  requesting_org="gateway-privacy", instance="gw-1"), "110110"),
     (AuditRecord(event_type="retention", action="purge-expired", occurred_at=OCCURRED, outcome="success",
                  instance="gw-1", counts={"F1/outbox-payloads": 3, "F1/message-statuses": 1}), "110100")],
    ids=["erasure", "erasure-no-subject", "retention"],
)
def test_T12_erasure_and_retention_records_export_as_valid_audit_events_naming_no_one(
    record: AuditRecord, type_code: str
) -> None:
    event = to_fhir_audit_event(logged(record))
    AuditEvent.model_validate(event)
    assert (event["type"]["system"], event["type"]["code"]) == (DCM, type_code)
    assert codes(event["subtype"]) == {("http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle", "destroy")}
    assert event["action"] == "D"
    assert identifiers(event, SUBJECT_REF_SYSTEM) == []
    assert sum(a["requestor"] for a in event["agent"]) == 1
    counted = [e for e in event["entity"] if e.get("description", "").startswith("rows")]
    if record.counts:
        [entity] = counted
        assert {d["type"]: d["valueString"] for d in entity["detail"]} == {k: str(v) for k, v in record.counts.items()}
    else:
        assert counted == [] and event["outcome"] == "8" and event["outcomeDesc"] == "no-subject"


def test_T12_redacted_labels_are_details_and_a_consent_change_carries_the_version_hash() -> None:
    redacted = disclosure().model_copy(update={"labels": ("S3", "REDACTED:PSY")})
    event = to_fhir_audit_event(logged(redacted))
    AuditEvent.model_validate(event)
    [sent] = [e for e in event["entity"] if e["what"].get("identifier", {}).get("value") == "gw-out-1"]
    assert "REDACTED:PSY" not in json.dumps(sent.get("securityLabel", []))
    assert {"type": "redacted-label", "valueString": "PSY"} in sent["detail"]

    hashed = consent_change("record-consent").model_copy(update={"consent_hash": "sha256:" + "ab" * 32})
    change = to_fhir_audit_event(logged(hashed))
    AuditEvent.model_validate(change)
    [consent] = [e for e in change["entity"] if e["what"].get("identifier", {}).get("system") == CONSENT_SYSTEM]
    assert consent["detail"] == [{"type": "consent-hash", "valueString": "sha256:" + "ab" * 32}]


def test_T12_a_label_hl7_has_no_code_for_is_the_gateways_own_never_a_made_up_v3_actcode() -> None:
    """The F10 decisions carry EMERGENCY: HAPI's validator refused it as v3-ActCode, a code that does not exist."""
    event = to_fhir_audit_event(logged(disclosure()) | {"labels": ["S4", "EMERGENCY"], "obligations": ["PSEUD"]})
    labels = codes(next(e["securityLabel"] for e in event["entity"] if "securityLabel" in e))
    assert labels == {(SECURITY_LABEL_SYSTEM, "EMERGENCY"),
                      ("https://gateway.quartieri.example/fhir/CodeSystem/sensitivity", "S4"),
                      ("http://terminology.hl7.org/CodeSystem/v3-ActCode", "PSEUD")}


def test_T12_every_obligation_and_refrain_of_the_flows_is_a_v3_actcode_policy_code() -> None:
    registry = load_registry()
    used = {code for flow in registry.flows for code in (*flow.obligations, *flow.refrains)}
    assert used and used <= ACT_CODE_POLICIES
