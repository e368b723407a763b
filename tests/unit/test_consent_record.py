"""The full consent record (privacy.md "Consent record", rules 4, 5 and 7): provisions and their nested level,
explicit consent, grantor evidence, notice versions, R4 and R5 forms, the produced FHIR R4 Consent."""

from __future__ import annotations

import copy
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fhir.resources.R4B.consent import Consent as ConsentR4
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.consents.fhir import EXTENSION_BASE, ORGANISATION_SYSTEM, PURPOSE_SYSTEM, parse_consent, to_fhir_r4
from gateway.errors import ContractViolation
from gateway.identity.synthetic import synthetic_codice_fiscale
from gateway.policy import ConsentRecord, DecisionRequest, decide, load_registry, sender_reason_class
from gateway.policy.consent import Grantor, Notice, Provision
from gateway.simulators import fhir_consent
from gateway.simulators.partners import notice_extension

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
REGISTRY = load_registry()
CF = synthetic_codice_fiscale(random.Random(7))
F1 = DecisionRequest(sender="aler", sender_role="system", recipient="fwa", message_type="tenancy.arrears-referral",
                     purpose="microcredit-assessment", subject_pseudonym="sbj_a")
F9_FWA = replace(F1, message_type="tenancy.eviction-milestone", purpose="housing-support")
F7 = DecisionRequest(sender="aler", sender_role="system", recipient="cav", message_type="safety.disclosure",
                     purpose="anti-violence-support", subject_pseudonym="sbj_a", labels=frozenset({"S4", "SDV"}))
MICROCREDIT_NOTICE = "https://gateway.quartieri.example/notices/microcredito"
PERMIT = ConsentRecord(consent_id="cns-1", version=1, subject_pseudonym="sbj_a", status="active", decision="permit",
                       purposes=frozenset({"microcredit-assessment", "housing-support"}), recipients=frozenset(),
                       period_start=NOW - timedelta(days=1), period_end=NOW + timedelta(days=30))


def nested(**elements: Any) -> dict[str, Any]:
    """A nested R4 provision that reverses a permit."""
    provision: dict[str, Any] = {"type": "deny"}
    if "recipients" in elements:
        provision["actor"] = [{"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                                    "code": "IRCP"}]},
                               "reference": {"identifier": {"system": ORGANISATION_SYSTEM, "value": r}}}
                              for r in elements["recipients"]]
    if "purposes" in elements:
        provision["purpose"] = [{"system": PURPOSE_SYSTEM, "code": p} for p in elements["purposes"]]
    return provision


def recorded(document: dict[str, Any], version: str = "4.0") -> ConsentRecord:
    _, draft = parse_consent(document, REGISTRY, version)  # type: ignore[arg-type]
    return replace(draft, consent_id="cns-1", subject_pseudonym="sbj_a", recorded_at=NOW)


def test_C10_a_nested_deny_for_one_recipient_reverses_the_permit_for_that_recipient_only() -> None:
    consent = recorded(fhir_consent(CF, purposes=("microcredit-assessment", "housing-support"),
                                    recipients=("fwa", "comune"), start=NOW - timedelta(days=1),
                                    nested=(nested(recipients=("fwa",), purposes=("housing-support",)),)))
    to_fwa = decide(F9_FWA, REGISTRY, [consent], NOW)
    assert (to_fwa.outcome, to_fwa.reason) == ("deny", "no-applicable-consent")
    assert to_fwa.matched_provision == "consent:cns-1@1/provision.provision[0]"
    microcredit = decide(F1, REGISTRY, [consent], NOW)
    assert microcredit.outcome == "permit" and microcredit.matched_provision == "consent:cns-1@1/provision"


def test_C10_a_nested_permit_reverses_a_base_deny() -> None:
    microcredit = Provision(purposes=frozenset({"microcredit-assessment"}))
    objection = replace(PERMIT, decision="deny", provisions=(microcredit,))
    assert decide(F1, REGISTRY, [objection], NOW).outcome == "permit"
    assert decide(F9_FWA, REGISTRY, [objection], NOW).outcome == "deny"


def test_C11_populated_elements_combine_with_and_and_values_within_one_with_or() -> None:
    both = Provision(recipients=frozenset({"fwa", "comune"}), purposes=frozenset({"housing-support", "statistics"}))
    consent = replace(PERMIT, provisions=(both,))
    # OR within an element: either recipient, either purpose, matches; AND across: both must match.
    assert decide(F9_FWA, REGISTRY, [consent], NOW).outcome == "deny"
    assert decide(F1, REGISTRY, [consent], NOW).outcome == "permit"  # recipient matches, purpose does not
    by_class = replace(PERMIT, provisions=(Provision(data_classes=frozenset({"tenancy.arrears-referral"}),
                                                     recipients=frozenset({"comune"})),))
    assert decide(F1, REGISTRY, [by_class], NOW).outcome == "permit"  # class matches, recipient does not
    empty = replace(PERMIT, provisions=(Provision(),))
    assert decide(F1, REGISTRY, [empty], NOW).outcome == "deny"  # every element empty: matches everything
    base_and = replace(PERMIT, recipients=frozenset({"comune"}))
    assert decide(F1, REGISTRY, [base_and], NOW).outcome == "deny"


def test_C11_a_data_period_matches_only_data_that_arose_inside_it() -> None:
    recent = replace(PERMIT, data_period_start=NOW - timedelta(days=90))
    assert decide(replace(F1, occurred_at=NOW - timedelta(days=10)), REGISTRY, [recent], NOW).outcome == "permit"
    assert decide(replace(F1, occurred_at=NOW - timedelta(days=400)), REGISTRY, [recent], NOW).outcome == "deny"
    assert decide(F1, REGISTRY, [recent], NOW).outcome == "deny"  # data of unknown date


def test_C11_an_action_other_than_disclose_does_not_cover_a_disclosure() -> None:
    assert decide(F1, REGISTRY, [replace(PERMIT, actions=frozenset({"access"}))], NOW).outcome == "deny"
    assert decide(F1, REGISTRY, [replace(PERMIT, actions=frozenset({"access", "disclose"}))], NOW).outcome == "permit"


def test_C12_violence_data_needs_an_explicit_consent_that_names_the_label() -> None:
    plain = replace(PERMIT, purposes=frozenset({"anti-violence-support"}), recipients=frozenset({"cav"}))
    assert decide(F7, REGISTRY, [plain], NOW).reason == "sensitive-label-denied"
    explicit_unlabelled = replace(plain, consent_type="explicit")
    assert decide(F7, REGISTRY, [explicit_unlabelled], NOW).reason == "sensitive-label-denied"
    express_labelled = replace(plain, security_labels=frozenset({"SDV"}))
    assert decide(F7, REGISTRY, [express_labelled], NOW).reason == "sensitive-label-denied"
    explicit = replace(plain, consent_type="explicit", security_labels=frozenset({"SDV"}))
    assert decide(F7, REGISTRY, [explicit], NOW).outcome == "permit"


def test_C15_a_sensitive_label_denial_on_a_consent_flow_tells_the_sender_what_no_consent_tells() -> None:
    plain = replace(PERMIT, purposes=frozenset({"anti-violence-support"}), recipients=frozenset({"cav"}))
    with_consent, without = decide(F7, REGISTRY, [plain], NOW), decide(F7, REGISTRY, [], NOW)
    assert with_consent.reason == "sensitive-label-denied" and without.reason == "no-applicable-consent"
    told = {sender_reason_class(d.reason, d.flow) for d in (with_consent, without) if d.reason}
    assert told == {"not-authorised"}


def test_explicit_flows_are_not_permitted_by_an_express_consent() -> None:
    f4 = DecisionRequest(sender="aler", sender_role="system", recipient="asst", message_type="care.service-request",
                         purpose="care-coordination", subject_pseudonym="sbj_a")
    express = replace(PERMIT, purposes=frozenset({"care-coordination"}))
    assert decide(f4, REGISTRY, [express], NOW).combining_rule == "explicit-consent-required"
    assert decide(f4, REGISTRY, [replace(express, consent_type="explicit")], NOW).outcome == "permit"


def test_C13_a_newer_opt_out_beats_an_older_opt_in() -> None:
    opt_out = replace(PERMIT, consent_id="cns-2", decision="deny", consent_type="opt-out",
                      purposes=frozenset({"microcredit-assessment"}), period_start=NOW - timedelta(hours=1))
    decision = decide(F1, REGISTRY, [PERMIT, opt_out], NOW)
    assert (decision.outcome, decision.consent_ref, decision.combining_rule) == ("deny", "cns-2@1", "deny-overrides")


def test_C22_a_guardian_without_evidence_gives_no_consent() -> None:
    guardian = replace(PERMIT, grantor=Grantor(role="support-administrator"))
    assert decide(F1, REGISTRY, [guardian], NOW).outcome == "deny"
    proven = replace(PERMIT, grantor=Grantor(role="support-administrator", evidence="Trib. Milano decreto 123/2026"))
    assert decide(F1, REGISTRY, [proven], NOW).outcome == "permit"


def test_C22_a_guardian_consent_without_evidence_is_refused_when_recorded() -> None:
    document = fhir_consent(CF)
    document["performer"] = [{"type": "RelatedPerson", "extension": [
        {"url": EXTENSION_BASE + "grantor-role", "valueCode": "guardian"}]}]
    with pytest.raises(ContractViolation) as refused:
        parse_consent(document, REGISTRY)
    assert refused.value.problems[0].rule == "grantor-evidence"
    document["performer"][0]["extension"].append({"url": EXTENSION_BASE + "grantor-evidence",
                                                  "valueString": "Trib. Milano decreto 123/2026"})
    assert recorded(document).grantor == Grantor("guardian", "Trib. Milano decreto 123/2026")


def test_C23_a_consent_on_a_notice_version_retired_since_no_longer_applies() -> None:
    retired = REGISTRY.notice(MICROCREDIT_NOTICE, "2025.1")
    current = REGISTRY.notice(MICROCREDIT_NOTICE, "2026.1")
    assert retired is not None and retired.status == "retired" and current is not None
    on_old = replace(PERMIT, notice=Notice(MICROCREDIT_NOTICE, "2025.1", retired.text_hash, "it"))
    assert decide(F1, REGISTRY, [on_old], NOW).outcome == "deny"
    on_current = replace(on_old, notice=Notice(MICROCREDIT_NOTICE, "2026.1", current.text_hash, "it"))
    assert decide(F1, REGISTRY, [on_current], NOW).outcome == "permit"


@pytest.mark.parametrize(("notice", "rule"), [
    (notice_extension(MICROCREDIT_NOTICE, "2025.1"), "notice-retired"),
    (notice_extension(MICROCREDIT_NOTICE, "2026.1", text_hash="sha256:" + "0" * 64), "notice-text"),
    (notice_extension(MICROCREDIT_NOTICE, "1999.1", text_hash="sha256:" + "0" * 64), "notice"),
])
def test_C23_a_consent_on_a_retired_unknown_or_altered_notice_is_refused(notice: dict[str, Any], rule: str) -> None:
    with pytest.raises(ContractViolation) as refused:
        parse_consent(fhir_consent(CF, notice=notice), REGISTRY)
    assert refused.value.problems[0].rule == rule


def test_an_active_permit_must_say_which_notice_was_shown() -> None:
    document = fhir_consent(CF)
    document["extension"] = [e for e in document["extension"] if not e["url"].endswith("/notice")]
    with pytest.raises(ContractViolation) as refused:
        parse_consent(document, REGISTRY)
    assert refused.value.problems[0].rule == "notice-required"
    assert recorded(fhir_consent(CF, decision="deny", notice=None)).decision == "deny"


def test_a_nested_provision_with_its_parents_type_or_a_second_level_is_refused() -> None:
    same = fhir_consent(CF, nested=({"type": "permit"},))
    deeper = fhir_consent(CF, nested=({"type": "deny", "provision": [{"type": "permit"}]},))
    for document, rule in ((same, "nested-reverses"), (deeper, "nesting-depth")):
        with pytest.raises(ContractViolation) as refused:
            parse_consent(document, REGISTRY)
        assert refused.value.problems[0].rule == rule


# --- R4 and R5 forms (C-19), the record produced, the stored document ---------------------------------------


def as_r5(r4: dict[str, Any]) -> dict[str, Any]:
    """The same consent in FHIR R5: decision at the top, validity on the resource, provision a list,
    ``class`` as ``documentType``, the grantor as ``grantor``, the basis as ``regulatoryBasis``."""
    r4 = copy.deepcopy(r4)
    provision = r4.pop("provision")
    decision = provision.pop("type")
    period = provision.pop("period", None)
    for child in provision.get("provision", []):
        child.pop("type", None)
        if "class" in child:
            child["documentType"] = child.pop("class")
    if "class" in provision:
        provision["documentType"] = provision.pop("class")
    r5: dict[str, Any] = {"resourceType": "Consent", "status": r4["status"], "extension": r4.get("extension", []),
                          "subject": r4["patient"], "decision": decision, "provision": [provision]}
    if period:
        r5["period"] = period
    if "performer" in r4:
        r5["grantor"] = r4["performer"]
    if "policyRule" in r4:
        r5["regulatoryBasis"] = [r4["policyRule"]]
    return r5


REQUESTS = [F1, F9_FWA, replace(F1, recipient="comune"), replace(F9_FWA, recipient="comune",
                                                                   message_type="tenancy.eviction-milestone"),
            replace(F1, occurred_at=NOW - timedelta(days=3))]

consent_documents = st.builds(
    lambda purposes, recipients, decision, nested_recipients, nested_purposes, kind, days: fhir_consent(
        CF, purposes=tuple(sorted(purposes)), recipients=tuple(sorted(recipients)), decision=decision,
        start=NOW - timedelta(days=days), consent_type=kind,
        nested=((nested(recipients=tuple(sorted(nested_recipients)), purposes=tuple(sorted(nested_purposes)))
                 | {"type": "permit" if decision == "deny" else "deny"},) if nested_recipients else ())),
    st.frozensets(st.sampled_from(["microcredit-assessment", "housing-support"]), min_size=1),
    st.frozensets(st.sampled_from(["fwa", "comune", "asst"])),
    st.sampled_from(["permit", "deny"]),
    st.frozensets(st.sampled_from(["fwa", "comune"])),
    st.frozensets(st.sampled_from(["microcredit-assessment", "housing-support"])),
    st.sampled_from(["explicit", "express", "opt-out"]),
    st.integers(-2, 400),
)


@settings(max_examples=150, deadline=None)
@given(consent_documents)
def test_C19_r4_and_r5_forms_of_one_consent_give_identical_decisions(document: dict[str, Any]) -> None:
    r4, r5 = recorded(document, "4.0"), recorded(as_r5(document), "5.0")
    assert r4 == r5
    for request in REQUESTS:
        one, other = decide(request, REGISTRY, [r4], NOW), decide(request, REGISTRY, [r5], NOW)
        assert (one.outcome, one.reason, one.matched_provision) == (other.outcome, other.reason,
                                                                    other.matched_provision)


@settings(max_examples=100, deadline=None)
@given(consent_documents)
def test_the_produced_fhir_r4_consent_reads_back_as_the_same_record(document: dict[str, Any]) -> None:
    record = recorded(document)
    produced = to_fhir_r4(record)
    ConsentR4.model_validate(produced)
    assert CF not in str(produced)
    produced["patient"] = document["patient"]  # the person by identifier, as a partner would send it back
    again = recorded(produced)
    assert replace(again, recorded_at=record.recorded_at) == record


def test_the_stored_document_round_trips_and_its_hash_changes_with_any_field() -> None:
    record = recorded(fhir_consent(CF, nested=(nested(recipients=("comune",)),)))
    assert ConsentRecord.from_document(record.document()) == record
    assert record.record_hash.startswith("sha256:") and len(record.record_hash) == 71
    assert replace(record, consent_type="explicit").record_hash != record.record_hash
    assert CF not in str(record.document())


def test_capture_evidence_and_the_notice_shown_are_kept() -> None:
    record = recorded(fhir_consent(CF))
    assert record.capture is not None and (record.capture.method, record.capture.channel) == ("assisted",
                                                                                               "casa-centre")
    assert record.notice is not None and record.notice.version == "2026.1" and record.notice.language == "it"


def test_M02_a_consent_adds_its_refrains_to_the_flows_labels() -> None:
    record = recorded(fhir_consent(CF, start=NOW - timedelta(days=1)))
    refraining = replace(record, refrains=frozenset({"NOINTEGRATE"}), obligations=frozenset({"ENCRYPT"}))
    decision = decide(F1, REGISTRY, [refraining], NOW)
    assert decision.flow is not None
    assert decision.refrains == (*decision.flow.refrains, "NOINTEGRATE")
    assert decision.obligations == (*decision.flow.obligations, "ENCRYPT")
    assert decide(F1, REGISTRY, [record], NOW).refrains == decision.flow.refrains


def test_the_produced_consent_keeps_the_policy_rule_coding_it_was_given() -> None:
    """HAPI's validator found the coding dropped: policyRule came back as bare text "OPTIN"."""
    produced = to_fhir_r4(recorded(fhir_consent(CF)))
    assert produced["policyRule"] == {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                                  "code": "OPTIN"}]}
    assert produced["text"]["status"] == "generated" and CF not in produced["text"]["div"]
