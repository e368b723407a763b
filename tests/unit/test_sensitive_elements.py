"""Rule 7 at element level (plan C-12): a coded element whose code carries a sensitive label crosses only with
an explicit permit — the flow's declared ``permitted_labels`` or an explicit consent naming the label —
otherwise it is redacted, and a message that is only sensitive data is denied. Pure decide/minimise tests; the
same rule through the intake, relay and audit log is tests/unit/pipeline/test_sensitive_elements_on_memory_store.py."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from adapters.asst_fhir.systems import CARE_NEED_SYSTEM, DISCHARGE_LOGISTICS_SYSTEM
from gateway.identity.crosswalk import Crosswalk
from gateway.policy import ConsentRecord, Decision, DecisionRequest, Flow, PolicyRegistry, decide, load_registry
from gateway.policy.minimise import OnlySensitiveData, minimise, minimise_with_redactions
from gateway.routing import DECODERS
from gateway.simulators import asst_discharge, asst_encounter
from schemas.codelists import ITEM, SENSITIVE_LABELS, CodedField, coded_fields, load_codelist
from schemas.envelope import Envelope
from schemas.health import PSYCHOLOGICAL_SUPPORT, PSYCHOLOGICAL_SUPPORT_LABELS, CareDischargeNotice

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
REGISTRY = load_registry()
TOKENS = Crosswalk(b"k" * 32).token
CF = "RSSMRA85T10A562S"


def flow(flow_id: str, registry: PolicyRegistry = REGISTRY) -> Flow:
    return next(f for f in registry.flows if f.id == flow_id)


def with_flow(changed: Flow) -> PolicyRegistry:
    """The shipped registry with one flow redeclared."""
    return replace(REGISTRY, flows=tuple(changed if f.id == changed.id else f for f in REGISTRY.flows))


def asst(resource: dict[str, Any]) -> Envelope:
    [envelope] = DECODERS["asst"](orjson.dumps(resource), "application/fhir+json")
    return envelope.model_copy(update={"subject": envelope.subject.model_copy(update={"pseudonym": "sbj_a"})})


def discharge(needs: tuple[str, ...], logistics: tuple[str, ...] = ("mobility-aid",)) -> Envelope:
    """A protected discharge (F11) with these care needs and logistics."""
    resource = asst_discharge(CF, "stay-7", "corr-7")
    resource["hospitalization"]["specialArrangement"] = [
        *({"coding": [{"system": DISCHARGE_LOGISTICS_SYSTEM, "code": code}]} for code in logistics),
        *({"coding": [{"system": CARE_NEED_SYSTEM, "code": code}]} for code in needs),
    ]
    return asst(resource)


def decided(envelope: Envelope, recipient: str, registry: PolicyRegistry = REGISTRY,
            consents: tuple[ConsentRecord, ...] = ()) -> Decision:
    request = DecisionRequest(
        sender=envelope.sender, sender_role="system", recipient=recipient, message_type=envelope.message_type,
        purpose=envelope.purpose, subject_pseudonym="sbj_a",
        labels=frozenset(envelope.sensitivity) | set(envelope.payload.get("security_labels") or ()),
        occurred_at=envelope.occurred_at,
    )
    return decide(request, registry, consents, NOW)


def test_C12_a_psychological_care_need_is_redacted_from_the_discharge_to_the_comune_the_rest_crosses() -> None:
    envelope = discharge(("home-care", PSYCHOLOGICAL_SUPPORT, "meals-at-home"))
    decision = decided(envelope, "comune")
    assert decision.permitted and decision.permitted_labels == frozenset()
    assert decision.flow is not None
    out = minimise_with_redactions(envelope, decision.flow, "gw-1", TOKENS, decision.permitted_labels)
    assert out.envelope.payload["care_needs"] == ["home-care", "meals-at-home"]
    assert out.envelope.payload["discharge_date"] == "2026-11-18"
    assert out.redacted == ("PSY",)
    assert PSYCHOLOGICAL_SUPPORT not in orjson.dumps(out.envelope.model_dump(mode="json")).decode()
    # minimise without a decision's permit redacts too (fail closed), and the source envelope is untouched
    assert PSYCHOLOGICAL_SUPPORT not in minimise(envelope, decision.flow, "gw-2", TOKENS).payload["care_needs"]
    assert PSYCHOLOGICAL_SUPPORT in envelope.payload["care_needs"]
    # the landlord's copy has no care needs at all: nothing to redact
    to_aler = decided(envelope, "aler")
    assert to_aler.flow is not None
    landlord = minimise_with_redactions(envelope, to_aler.flow, "gw-3", TOKENS, to_aler.permitted_labels)
    assert landlord.redacted == () and landlord.envelope.payload["logistics"] == ["mobility-aid"]


def test_C12_an_explicit_permit_declared_by_the_flow_keeps_the_sensitive_care_need() -> None:
    envelope = discharge(("home-care", PSYCHOLOGICAL_SUPPORT))
    permits = flow("F11").model_copy(update={"permitted_labels": ("PSY",), "deny_labels": ("MH", "SDV", "HIV")})
    decision = decided(envelope, "comune", with_flow(permits))
    assert decision.permitted and decision.permitted_labels == frozenset({"PSY"})
    out = minimise_with_redactions(envelope, permits, "gw-1", TOKENS, decision.permitted_labels)
    assert out.envelope.payload["care_needs"] == ["home-care", PSYCHOLOGICAL_SUPPORT] and out.redacted == ()
    # a label the flow refuses is never permitted, whatever else it declares
    refused = flow("F11").model_copy(update={"permitted_labels": ("PSY",)})
    assert decided(envelope, "comune", with_flow(refused)).permitted_labels == frozenset()


def test_C12_only_an_explicit_consent_naming_the_label_permits_it_on_a_consent_flow() -> None:
    request = DecisionRequest(sender="aler", sender_role="system", recipient="asst",
                              message_type="care.service-request", purpose="care-coordination",
                              subject_pseudonym="sbj_a")
    consent = ConsentRecord(consent_id="cns-9", version=1, subject_pseudonym="sbj_a", status="active",
                            decision="permit", purposes=frozenset({"care-coordination"}),
                            recipients=frozenset({"asst"}), period_start=NOW - timedelta(days=1),
                            consent_type="explicit")
    plain = decide(request, REGISTRY, [consent], NOW)
    assert plain.permitted and plain.permitted_labels == frozenset()
    naming = replace(consent, security_labels=frozenset({"PSY", "R"}))
    psy = replace(request, labels=frozenset({"PSY", "R"}))
    decision = decide(psy, REGISTRY, [naming], NOW)
    assert decision.permitted and decision.permitted_labels == frozenset({"PSY"})
    express = replace(naming, consent_type="express")
    assert not decide(psy, REGISTRY, [express], NOW).permitted


def test_C12_a_discharge_made_only_of_sensitive_care_needs_is_denied() -> None:
    envelope = discharge((PSYCHOLOGICAL_SUPPORT,), logistics=())
    decision = decided(envelope, "comune")
    assert decision.permitted and decision.flow is not None
    with pytest.raises(OnlySensitiveData) as raised:
        minimise_with_redactions(envelope, decision.flow, "gw-1", TOKENS, decision.permitted_labels)
    assert raised.value.labels == ("PSY",)


def test_C12_a_sensitive_element_the_message_cannot_go_without_makes_it_only_sensitive_data() -> None:
    visit = asst(asst_encounter(CF, "enc-5", "corr-5", service=PSYCHOLOGICAL_SUPPORT))
    without_refusal = flow("F5").model_copy(update={"deny_labels": ()})
    assert decided(visit, "aler", with_flow(without_refusal)).permitted
    with pytest.raises(OnlySensitiveData):
        minimise(visit, without_refusal, "gw-1", TOKENS)
    assert minimise(visit, without_refusal, "gw-2", TOKENS, frozenset({"PSY"})).payload["service_type"] == \
        PSYCHOLOGICAL_SUPPORT


def test_coded_fields_are_found_from_the_payload_models() -> None:
    fields = coded_fields(CareDischargeNotice)
    assert CodedField(("care_needs", ITEM), "care_needs", True) in fields
    assert CodedField(("logistics", ITEM), "discharge_logistics", True) in fields


def test_code_list_labels_are_sensitive_labels_and_agree_with_the_models() -> None:
    assert load_codelist("care_needs").labels_of(PSYCHOLOGICAL_SUPPORT) == {"PSY"}
    assert load_codelist("care_services").labels_of(PSYCHOLOGICAL_SUPPORT) <= set(PSYCHOLOGICAL_SUPPORT_LABELS)
    assert load_codelist("care_needs").labels_of("home-care") == frozenset()
    assert load_codelist("service_areas").labels_of("violence") <= SENSITIVE_LABELS
