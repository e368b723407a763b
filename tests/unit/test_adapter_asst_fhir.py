"""Tests for :mod:`adapters.asst_fhir`: the hospital trust's FHIR R4 resources <-> canonical care envelopes.

Decoding field by field (Encounter, Immunization, ServiceRequest, Consent, protected discharge); both codice
fiscale system URIs, STP/ENI codes and the trust's patient id; one rejection per binding the flows rely on,
with the JSON pointer the sender sees; Bundles of each accepted type with their references resolved; masking
at source; the PSY label on psychological support; the outbound ServiceRequest; official HL7 FHIR R4 examples
(``tests/fixtures/hl7``); and property tests: valid Encounters and Immunizations decode deterministically,
encode -> decode of a service request gives back the canonical payload, and no input escapes as anything but
a rejection with a reason.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.servicerequest import ServiceRequest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import gateway.consents.fhir
from adapters._golden import CF_FSE
from adapters.asst_fhir import decode, encode_service_request
from adapters.asst_fhir.systems import (
    ACT_CODE_SYSTEM,
    ASST_PATIENT_SYSTEM,
    CARE_NEED_SYSTEM,
    CARE_REQUEST_CATEGORY_SYSTEM,
    CARE_REQUEST_SYSTEM,
    CARE_SERVICE_SYSTEM,
    CF_SYSTEMS,
    CONFIDENTIALITY_SYSTEM,
    CONSENT_SYSTEM,
    CORRELATION_SYSTEM,
    DISCHARGE_LOGISTICS_SYSTEM,
    DISCHARGE_PATHWAY_SYSTEM,
    GATEWAY_SECURITY_SYSTEM,
    MESSAGE_SYSTEM,
    OBLIGATION_SYSTEM,
    OBSERVATION_VALUE_SYSTEM,
    ORGANISATION_SYSTEM,
    PREFERRED_CF_SYSTEM,
    PURPOSE_SYSTEM,
    QUARTIERE_SYSTEM,
    REFRAIN_SYSTEM,
    STP_ENI_SYSTEM,
    UCUM_SYSTEM,
)
from gateway.contracts.golden import golden_examples
from gateway.identity.codice_fiscale import omocodic_variant
from gateway.identity.crosswalk import Crosswalk
from gateway.identity.synthetic import synthetic_codice_fiscale
from gateway.policy.minimise import minimise, project
from gateway.policy.registry import Flow, load_registry
from gateway.routing import OutboundLabels
from schemas.codelists import load_codelist
from schemas.envelope import Envelope, Identifier, SubjectRef
from schemas.errors import DecodeError
from schemas.health import (
    HEALTH_MESSAGE_TYPES,
    CareEncounter,
    CareImmunization,
    CareServiceRequest,
    Vaccine,
    VisitLogistics,
    vaccine_code_system,
)
from schemas.messages import MESSAGE_TYPES
from schemas.vaccines import (
    vaccine_group,
)
from tests.adapter_checks import decoded_one, header_of, refusal
from tests.helpers import dumps, with_value

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hl7"
CF = "RSSMRA85T10A562S"
"""The widely used "Mario Rossi" specimen codice fiscale."""
CF_OMOCODIC = omocodic_variant(CF, 2)
STP = "STP0303080000001"
ENI = "ENI0303080000002"
PATIENT_URL = "urn:uuid:6f1c2a4e-8b1d-4c3e-9f00-000000000001"
V3_CLASS = ACT_CODE_SYSTEM


@pytest.fixture(scope="module", autouse=True)
def _care_message_types() -> Iterator[None]:
    """The care message types in the canonical registry, as the lead's merge of HEALTH_MESSAGE_TYPES into
    ``schemas.messages.MESSAGE_TYPES`` will have them; a no-op once merged."""
    with pytest.MonkeyPatch.context() as patch:
        for name, model in HEALTH_MESSAGE_TYPES.items():
            patch.setitem(MESSAGE_TYPES, name, model)
        yield


# --- builders ------------------------------------------------------------------------------------------------


def coding(system: str, code: str) -> dict[str, str]:
    return {"system": system, "code": code}


def concept(system: str, code: str) -> dict[str, Any]:
    return {"coding": [coding(system, code)]}


def patient(value: str = CF, system: str = PREFERRED_CF_SYSTEM, rid: str = "pat-1") -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": rid,
        "identifier": [
            {"system": "urn:oid:2.16.840.1.113883.2.4.6.3", "value": "123456789"},
            {"system": system, "value": value},
            {"system": ASST_PATIENT_SYSTEM, "value": "ASST-P-0042"},
        ],
        "name": [{"family": "Rossi", "given": ["Mario"]}],
    }


def by_identifier(value: str = CF, system: str = PREFERRED_CF_SYSTEM) -> dict[str, Any]:
    return {"identifier": {"system": system, "value": value}}


def meta(version: str = "3", **extra: Any) -> dict[str, Any]:
    return {
        "versionId": version,
        "lastUpdated": "2026-11-20T10:15:00+01:00",
        "tag": [coding(PURPOSE_SYSTEM, "care-coordination"), coding(ORGANISATION_SYSTEM, "aler")],
        **extra,
    }


def encounter(**changes: Any) -> dict[str, Any]:
    """A valid home-nursing visit whose subject is identified in the reference itself."""
    resource: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": "enc-1",
        "meta": meta(security=[coding(CONFIDENTIALITY_SYSTEM, "R")]),
        "identifier": [{"system": CORRELATION_SYSTEM, "value": "K-0001"}],
        "status": "finished",
        "class": coding(V3_CLASS, "HH"),
        "serviceType": {"coding": [{**coding(CARE_SERVICE_SYSTEM, "home-nursing"), "display": "home nursing"}]},
        "subject": by_identifier(),
        "period": {"start": "2026-11-20T09:00:00+01:00", "end": "2026-11-20T09:50:00+01:00"},
        "length": {"value": 0.75, "unit": "hours", "system": UCUM_SYSTEM, "code": "h"},
        "location": [{"location": {"identifier": {"system": QUARTIERE_SYSTEM, "value": "Molise Calvaire"}}}],
        "reasonCode": [{"coding": [{"system": "http://snomed.info/sct", "code": "38341003"}], "text": "hypertension"}],
        "diagnosis": [{"condition": {"reference": "#cond-1"}}],
        "contained": [
            {
                "resourceType": "Condition",
                "id": "cond-1",
                "subject": {"reference": "Patient/pat-1"},
                "code": {"coding": [coding("http://hl7.org/fhir/sid/icd-10", "I10")], "text": "hypertension"},
            }
        ],
    }
    resource.update(changes)
    return resource


def immunization(**changes: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Immunization",
        "id": "imm-1",
        "meta": meta(version="1"),
        "status": "completed",
        "vaccineCode": {"coding": [coding("urn:oid:1.2.36.1.2001.1005.17", "FLUVAX"),
                                   coding("http://www.whocc.no/atc", "J07BB02")]},
        "patient": by_identifier(),
        "occurrenceDateTime": "2026-10-21T11:00:00+02:00",
        "lotNumber": "AAJN11K",
        "location": {"identifier": {"system": QUARTIERE_SYSTEM, "value": "gratosoglio"}, "display": "CASA"},
    }
    resource.update(changes)
    return resource


def service_request(**changes: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": "req-1",
        "meta": meta(version="2"),
        "status": "active",
        "intent": "order",
        "priority": "routine",
        "category": [concept(CARE_REQUEST_CATEGORY_SYSTEM, "nurse-visit")],
        "code": concept(CARE_SERVICE_SYSTEM, "home-nursing"),
        "subject": by_identifier(),
        "occurrencePeriod": {"start": "2026-12-01", "end": "2026-12-05"},
        "requester": {"identifier": {"system": ORGANISATION_SYSTEM, "value": "aler"}},
        "authoredOn": "2026-11-20T10:00:00+01:00",
    }
    resource.update(changes)
    return resource


def consent(**changes: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Consent",
        "id": "cns-1",
        "meta": meta(version="1"),
        "status": "active",
        "scope": concept("http://terminology.hl7.org/CodeSystem/consentscope", "patient-privacy"),
        "category": [concept("http://loinc.org", "59284-0")],
        "patient": by_identifier(),
        "dateTime": "2026-11-19",
        "provision": {
            "type": "permit",
            "period": {"start": "2026-11-19T00:00:00+01:00", "end": "2027-11-19"},
            "purpose": [coding(PURPOSE_SYSTEM, "care-coordination")],
            "actor": [
                {"role": concept("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "IRCP"),
                 "reference": {"identifier": {"system": ORGANISATION_SYSTEM, "value": "aler"}}},
                {"role": concept("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "IRCP"),
                 "reference": {"identifier": {"system": ORGANISATION_SYSTEM, "value": "comune"}}},
            ],
        },
    }
    resource.update(changes)
    return resource


def discharge(**changes: Any) -> dict[str, Any]:
    """A protected discharge: an inpatient stay, finished, with care needs and logistics."""
    resource = encounter(
        id="stay-9",
        **{"class": coding(V3_CLASS, "IMP")},
        period={"start": "2026-11-02T08:00:00+01:00", "end": "2026-11-18T16:30:00+01:00"},
        hospitalization={
            "dischargeDisposition": concept(DISCHARGE_PATHWAY_SYSTEM, "protected-discharge"),
            "specialArrangement": [
                {"coding": [coding(DISCHARGE_LOGISTICS_SYSTEM, "mobility-aid"), coding(CARE_NEED_SYSTEM, "home-care")]},
                concept(DISCHARGE_LOGISTICS_SYSTEM, "escort-needed"),
                concept(CARE_NEED_SYSTEM, "meals-at-home"),
                concept("http://terminology.hl7.org/CodeSystem/encounter-special-arrangements", "wheel"),
            ],
        },
    )
    for key in ("serviceType", "length", "location"):
        del resource[key]
    resource.update(changes)
    return resource


def bundle(kind: str, *entries: dict[str, Any], **changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {"resourceType": "Bundle", "type": kind, "entry": list(entries)}
    document.update(changes)
    return document


def entry(resource: dict[str, Any], full_url: str | None = None, method: str | None = "PUT") -> dict[str, Any]:
    item: dict[str, Any] = {"resource": resource}
    if full_url:
        item["fullUrl"] = full_url
    if method:
        item["request"] = {"method": method, "url": resource["resourceType"]}
    return item


def decode_one(document: Any, content_type: str = "application/fhir+json") -> Envelope:
    return decoded_one(decode, document, content_type)


def rejection(document: Any, content_type: str = "application/fhir+json") -> DecodeError:
    return refusal(decode, document, content_type, never=(CF, CF.lower()))


def pointers(error: DecodeError) -> set[str]:
    return {problem.pointer for problem in error.problems}


# --- decoding valid resources --------------------------------------------------------------------------------


def test_encounter_decodes_field_by_field() -> None:
    envelope = decode_one(encounter())

    assert header_of(envelope) == {
        "message_id": "Encounter:enc-1:3", "correlation_id": "K-0001", "message_type": "care.encounter",
        "schema_version": "1.0", "sender": "asst", "recipients": ("aler",),
        "subject": {"identifiers": ({"system": "cf", "value": CF},), "pseudonym": None},
        "purpose": "care-coordination", "sensitivity": ("S3", "R"),
        "occurred_at": datetime(2026, 11, 20, 10, 15, tzinfo=timezone(timedelta(hours=1))),
    }
    assert envelope.payload == {
        "encounter_id": "enc-1",
        "status": "finished",
        "class_code": "HH",
        "service_type": "home-nursing",
        "period_start": "2026-11-20T09:00:00+01:00",
        "period_end": "2026-11-20T09:50:00+01:00",
        "length_minutes": 45,
        "quartiere": "molise-calvairate",
        "reason_codes": [{"system": "http://snomed.info/sct", "code": "38341003"}],
        "diagnosis_codes": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I10"}],
        "security_labels": ["R"],
        "masked_at_source": False,
    }


def test_free_text_never_enters_the_payload() -> None:
    body = json.dumps(decode_one(encounter()).model_dump(mode="json"))

    assert "hypertension" not in body
    assert "home nursing" not in body


def test_length_comes_from_the_period_when_the_source_gives_none() -> None:
    stated = decode_one(encounter(length={"value": 50, "system": UCUM_SYSTEM, "code": "min"}))
    derived = decode_one({k: v for k, v in encounter().items() if k != "length"})

    assert stated.payload["length_minutes"] == 50
    assert derived.payload["length_minutes"] == 50


def test_minimisation_can_strip_reasons_and_diagnoses_and_leave_a_valid_encounter() -> None:
    payload = decode_one(encounter()).payload
    logistics = tuple(k for k in payload if k not in ("reason_codes", "diagnosis_codes"))

    stripped = CareEncounter.model_validate(project(payload, logistics))

    assert stripped.reason_codes == () and stripped.diagnosis_codes == ()
    assert stripped.period_start.isoformat() == payload["period_start"]


def test_immunization_decodes_field_by_field() -> None:
    envelope = decode_one(immunization())

    assert envelope.message_type == "care.immunization"
    assert envelope.message_id == "Immunization:imm-1:1"
    assert envelope.correlation_id == envelope.message_id
    assert envelope.payload == {
        "immunization_id": "imm-1",
        "status": "completed",
        "vaccine": {"system": "http://www.whocc.no/atc", "code": "J07BB02", "group": "influenza"},
        "occurred_on": "2026-10-21",
        "lot_number": "AAJN11K",
        "season": "2026-2027",
        "quartiere": "gratosoglio",
        "security_labels": [],
        "masked_at_source": False,
    }


@pytest.mark.parametrize(
    ("occurrence", "series", "season"),
    [
        ("2026-08-01", None, "2026-2027"),
        ("2026-07-31", None, "2025-2026"),
        ("2027-01-15T10:00:00Z", None, "2026-2027"),
        ("2027-01-15", "2027-2028", "2027-2028"),
        ("2027-01-15", "first dose", "2026-2027"),
    ],
)
def test_season_is_the_series_when_it_names_one_else_august_to_july(
    occurrence: str, series: str | None, season: str
) -> None:
    resource = immunization(occurrenceDateTime=occurrence)
    if series:
        resource["protocolApplied"] = [{"series": series, "doseNumberPositiveInt": 1}]

    assert decode_one(resource).payload["season"] == season


@pytest.mark.parametrize(
    ("system", "code", "group"),
    [
        ("http://www.whocc.no/atc", "J07BB01", "influenza"),
        ("http://www.whocc.no/atc", "J07BB04", "influenza"),
        ("http://snomed.info/sct", "1181000221105", "influenza"),
        ("http://snomed.info/sct", "836377006", "influenza"),
        ("http://hl7.org/fhir/sid/cvx", "140", "influenza"),
        ("http://www.whocc.no/atc", "J07BX03", "covid-19"),
        ("https://www.aifa.gov.it/aic", "049269018", "covid-19"),
        ("http://snomed.info/sct", "1119349007", "covid-19"),
        ("http://hl7.org/fhir/sid/cvx", "208", "covid-19"),
        ("http://www.whocc.no/atc", "J07AL02", "pneumococcal"),
        ("http://hl7.org/fhir/sid/cvx", "216", "pneumococcal"),
        ("http://www.whocc.no/atc", "J07BK03", "zoster"),
        ("https://www.aifa.gov.it/aic", "046337010", "zoster"),
        ("http://hl7.org/fhir/sid/cvx", "187", "zoster"),
        ("http://www.whocc.no/atc", "J07BC02", "other"),
        ("http://www.whocc.no/atc", "J07", "other"),
        ("http://hl7.org/fhir/sid/cvx", "43", "other"),
    ],
)
def test_every_vaccine_code_is_accepted_with_its_group(system: str, code: str, group: str) -> None:
    envelope = decode_one(immunization(vaccineCode=concept(system, code)))

    assert envelope.payload["vaccine"] == {"system": system, "code": code, "group": group}


def test_the_most_specific_coding_names_the_vaccine_and_icd11_comes_along() -> None:
    """The HL7 Italia shape: AIC, ICD-11 and a generic ATC code; the group comes from the most specific."""
    vaccine = {"coding": [
        {"system": "http://id.who.int/icd/release/11/mms", "code": "XM0GQ8"},
        {"system": "http://hl7.org/fhir/sid/cvx", "code": "43"},
        {"system": "https://www.aifa.gov.it/aic", "code": "049269018"},
        {"system": "http://www.whocc.no/atc", "code": "J07BX03"},
    ]}

    envelope = decode_one(immunization(vaccineCode=vaccine))

    assert envelope.payload["vaccine"] == {"system": "http://www.whocc.no/atc", "code": "J07BX03",
                                           "group": "covid-19"}


@pytest.mark.parametrize(
    ("coding", "pointer", "says"),
    [
        ({"system": "https://www.aifa.gov.it/aic", "code": "012345678"}, "/vaccineCode/coding/0/code",
         "code list aic_vaccines"),
        ({"system": "http://www.whocc.no/atc", "code": "A10BA02"}, "/vaccineCode/coding/0/code", "J07"),
        ({"system": "http://snomed.info/sct", "code": "44054006"}, "/vaccineCode/coding/0/code", "SNOMED CT"),
        ({"system": "http://id.who.int/icd/release/11/mms", "code": "XM0GQ8"}, "/vaccineCode", "ATC code J07"),
    ],
)
def test_a_code_that_names_no_recognised_vaccine_is_refused_with_what_to_send(
        coding: dict[str, str], pointer: str, says: str) -> None:
    [problem] = rejection(immunization(vaccineCode={"coding": [coding]})).problems

    assert (problem.pointer, problem.rule) == (pointer, "binding")
    assert says in problem.message


def test_service_request_decodes_field_by_field() -> None:
    envelope = decode_one(service_request())

    assert envelope.message_type == "care.service-request"
    assert envelope.payload == {
        "request_id": "req-1",
        "status": "active",
        "intent": "order",
        "priority": "routine",
        "category": "nurse-visit",
        "service": "home-nursing",
        "requested_from": "2026-12-01",
        "requested_until": "2026-12-05",
        "requester": "aler",
        "authored_on": "2026-11-20T10:00:00+01:00",
        "security_labels": [],
        "masked_at_source": False,
    }


def test_consent_decodes_to_a_consent_record() -> None:
    envelope = decode_one(consent())

    assert envelope.message_type == "consent.record"
    assert envelope.subject.identifiers == (Identifier(system="cf", value=CF),)
    assert envelope.payload == {
        "consent_id": "cns-1",
        "status": "active",
        "provision_type": "permit",
        "purposes": ["care-coordination"],
        "actors": ["aler", "comune"],
        "period_start": "2026-11-19T00:00:00+01:00",
        "period_end": "2027-11-19T00:00:00Z",
        "recorded_at": "2026-11-19T00:00:00Z",
    }


def test_protected_discharge_becomes_a_discharge_notice_with_needs_and_logistics_apart() -> None:
    envelope = decode_one(discharge())

    assert envelope.message_type == "care.discharge-notice"
    assert envelope.occurred_at.isoformat() == "2026-11-20T10:15:00+01:00"
    assert envelope.payload == {
        "encounter_id": "stay-9",
        "discharge_date": "2026-11-18",
        "care_needs": ["home-care", "meals-at-home"],
        "logistics": ["escort-needed", "mobility-aid"],
        "security_labels": ["R"],
        "masked_at_source": False,
    }


def test_adapter_conventions_match_the_consent_registry() -> None:
    assert PURPOSE_SYSTEM == gateway.consents.fhir.PURPOSE_SYSTEM
    assert ORGANISATION_SYSTEM == gateway.consents.fhir.ORGANISATION_SYSTEM
    assert STP_ENI_SYSTEM == gateway.consents.fhir.STP_ENI_SYSTEM
    assert CF_SYSTEMS == gateway.consents.fhir.CF_SYSTEMS


# --- the person ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("system", sorted(CF_SYSTEMS))
@pytest.mark.parametrize("written", [CF, CF.lower(), f"  {CF} "])
def test_both_codice_fiscale_systems_give_the_same_identifier(system: str, written: str) -> None:
    by_reference = decode_one(encounter(subject=by_identifier(written, system)))
    in_bundle = decode(dumps(bundle("collection", entry(patient(written, system), PATIENT_URL, None),
                                    entry(encounter(subject={"reference": PATIENT_URL}), None, None))))

    assert by_reference.subject.identifiers == (Identifier(system="cf", value=CF),)
    assert in_bundle[0].subject.identifiers == (
        Identifier(system="cf", value=CF), Identifier(system="asst-patient", value="ASST-P-0042"),
    )


def test_an_omocodic_codice_fiscale_is_kept_as_issued() -> None:
    envelope = decode_one(encounter(subject=by_identifier(CF_OMOCODIC)))

    assert envelope.subject.identifiers == (Identifier(system="cf", value=CF_OMOCODIC),)


@pytest.mark.parametrize(("code", "kind"), [(STP, "stp"), (ENI, "eni"), (STP.lower(), "stp")])
@pytest.mark.parametrize("system", [STP_ENI_SYSTEM, PREFERRED_CF_SYSTEM])
def test_stp_and_eni_codes_are_accepted(code: str, kind: str, system: str) -> None:
    envelope = decode_one(immunization(patient=by_identifier(code, system)))

    assert envelope.subject.identifiers == (Identifier(system=kind, value=code.upper()),)


def test_contained_patient_resolves_the_subject() -> None:
    resource = encounter(subject={"reference": "#p"})
    resource["contained"].append(patient(STP, STP_ENI_SYSTEM, rid="p"))

    assert decode_one(resource).subject.identifiers == (
        Identifier(system="stp", value=STP), Identifier(system="asst-patient", value="ASST-P-0042"),
    )


def test_invalid_codice_fiscale_is_located_and_not_echoed() -> None:
    wrong = CF[:15] + "T"
    error = rejection(bundle("collection", entry(patient(wrong), PATIENT_URL, None),
                             entry(encounter(subject={"reference": PATIENT_URL}), None, None)))

    assert [(p.pointer, p.rule) for p in error.problems] == [("/entry/0/resource/identifier/1/value",
                                                             "person-identifier")]
    assert "check character" in error.problems[0].message
    assert wrong not in error.problems[0].message


def test_a_subject_without_codice_fiscale_stp_or_eni_is_rejected_at_subject() -> None:
    only_asst_id = by_identifier("ASST-P-0042", ASST_PATIENT_SYSTEM)

    assert pointers(rejection(encounter(subject=only_asst_id))) == {"/subject"}
    assert pointers(rejection(immunization(patient={"reference": "Patient/unknown"}))) == {"/patient"}
    assert pointers(rejection(service_request(subject=None))) == {"/subject"}


# --- one rejection per binding -------------------------------------------------------------------------------

BINDINGS: list[tuple[str, Any, str, Any, str]] = [
    # (what, builder, path, value, pointers separated by spaces)
    ("encounter status", encounter, "status", "done", "/status"),
    ("encounter class", encounter, "class/code", "IMP", "/class/code"),
    ("encounter class EMER", encounter, "class/code", "EMER", "/class/code"),
    ("encounter class system", encounter, "class/system", "http://example.org/classes", "/class/system"),
    ("encounter class missing", encounter, "class", None, "/class"),
    ("service type code", encounter, "serviceType/coding/0/code", "surgery", "/serviceType/coding/0/code"),
    ("service type missing", encounter, "serviceType", ..., "/serviceType"),
    ("period start missing", encounter, "period", {"end": "2026-11-20T09:50:00+01:00"}, "/period/start"),
    ("period start without time", encounter, "period", {"start": "2026-11-20"}, "/period/start"),
    ("period backwards", encounter, "period",
     {"start": "2026-11-20T09:00:00+01:00", "end": "2026-11-20T08:00:00+01:00"}, "/period/end"),
    ("length unit", encounter, "length", {"value": 5, "system": UCUM_SYSTEM, "code": "s"}, "/length/code"),
    ("length negative", encounter, "length", {"value": -5, "system": UCUM_SYSTEM, "code": "min"}, "/length/value"),
    ("length system", encounter, "length", {"value": 5, "system": "http://example.org", "code": "min"},
     "/length/system"),
    ("quartiere", encounter, "location/0/location/identifier/value", "Brera",
     "/location/0/location/identifier/value"),
    ("encounter id", encounter, "id", ..., "/id /meta/versionId"),
    ("immunization status", immunization, "status", "given", "/status"),
    ("vaccine ATC code", immunization, "vaccineCode/coding/1/code", "J06BB05", "/vaccineCode/coding/1/code"),
    ("vaccine code in the wrong system", immunization, "vaccineCode/coding/1/code", "836377006",
     "/vaccineCode/coding/1/code"),
    ("vaccine unknown system", immunization, "vaccineCode", concept("urn:oid:1.2.3", "FLU"), "/vaccineCode"),
    ("occurrence as text", immunization, "occurrenceDateTime", ..., "/occurrenceDateTime"),
    ("occurrence month only", immunization, "occurrenceDateTime", "2026-10", "/occurrenceDateTime"),
    ("lot number", immunization, "lotNumber", "lot\twith tab", "/lotNumber"),
    ("vaccination quartiere", immunization, "location/identifier/value", "Brera", "/location/identifier/value"),
    ("request status", service_request, "status", "open", "/status"),
    ("request intent", service_request, "intent", "request", "/intent"),
    ("request priority", service_request, "priority", "low", "/priority"),
    ("request category", service_request, "category/0/coding/0/code", "surgery", "/category/0/coding/0/code"),
    ("request category missing", service_request, "category", [concept("http://snomed.info/sct", "1")],
     "/category"),
    ("requested service", service_request, "code/coding/0/code", "surgery", "/code/coding/0/code"),
    ("requester", service_request, "requester", {"reference": "Organization/aler"}, "/requester"),
    ("request notes", service_request, "note", [{"text": "ring twice, the tenant is deaf"}], "/note"),
    ("request instructions", service_request, "patientInstruction", "bring documents", "/patientInstruction"),
    ("request timing", service_request, "occurrencePeriod", ..., "/occurrenceTiming"),
    ("request period backwards", service_request, "occurrencePeriod", {"start": "2026-12-05", "end": "2026-12-01"},
     "/occurrencePeriod/end"),
    ("consent status", consent, "status", "valid", "/status"),
    ("consent provision type", consent, "provision/type", ..., "/provision/type"),
    ("consent purpose", consent, "provision/purpose", [coding("http://example.org/purpose", "care")],
     "/provision/purpose"),
    ("two purposes", encounter, "meta/tag", [coding(PURPOSE_SYSTEM, "care-coordination"),
                                             coding(PURPOSE_SYSTEM, "statistics")], "/meta/tag/1/code"),
    ("recipient code", encounter, "meta/tag", [coding(ORGANISATION_SYSTEM, "ALER Milano")], "/meta/tag/0/code"),
    ("no version", encounter, "meta/versionId", ..., "/meta/versionId"),
    ("discharge not finished", discharge, "status", "in-progress", "/status"),
    ("discharge without end", discharge, "period", {"start": "2026-11-02T08:00:00+01:00"}, "/period/end"),
    ("discharge logistics code", discharge, "hospitalization/specialArrangement/1/coding/0/code", "lift",
     "/hospitalization/specialArrangement/1/coding/0/code"),
]


def binding_violation(builder: Any, path: str, value: Any, pointer: str) -> tuple[dict[str, Any], str]:
    """The resource of a :data:`BINDINGS` row, and the pointer(s) its violation is reported at."""
    document = with_value(builder(), path, value)
    if pointer == "/occurrenceTiming":
        document["occurrenceTiming"] = {"repeat": {"frequency": 1, "period": 1, "periodUnit": "wk"}}
    if path == "occurrenceDateTime" and value is ...:
        document["occurrenceString"] = "last autumn"
        pointer = "/occurrenceString"
    return document, pointer


@pytest.mark.parametrize(("builder", "path", "value", "pointer"), [b[1:] for b in BINDINGS],
                         ids=[b[0] for b in BINDINGS])
def test_every_binding_violation_is_reported_at_its_element(builder: Any, path: str, value: Any, pointer: str
                                                             ) -> None:
    document, pointer = binding_violation(builder, path, value, pointer)

    error = rejection(document)

    assert pointers(error) == set(pointer.split())


def test_binding_violations_in_a_bundle_name_the_entry() -> None:
    document = bundle(
        "batch",
        entry(patient(), PATIENT_URL),
        entry(encounter(subject={"reference": PATIENT_URL})),
        entry(immunization(vaccineCode=concept("http://www.whocc.no/atc", "A10BA02"))),
        entry(service_request(status="open")),
    )

    error = rejection(document)

    assert [(p.pointer, p.rule) for p in error.problems] == [
        ("/entry/2/resource/vaccineCode/coding/0/code", "binding"),
        ("/entry/3/resource/status", "binding"),
    ]


def test_every_problem_of_a_resource_is_reported_at_once() -> None:
    document = encounter(status="done", subject=None, serviceType=None)
    document["class"]["code"] = "IMP"

    assert pointers(rejection(document)) == {"/status", "/class/code", "/subject", "/serviceType"}


def test_structural_errors_come_from_the_fhir_model_with_pointers() -> None:
    error = rejection(encounter(unknownElement=1, period={"start": "2026-11-20T09:00:00"}))

    assert {(p.pointer, p.rule) for p in error.problems} >= {("/unknownElement", "extra_forbidden")}
    assert "/period/start" in pointers(error)


def test_a_resource_type_that_is_not_a_string_is_located() -> None:
    document = bundle("collection", entry(encounter(), None, None),
                      {"resource": {"resourceType": {"nested": True}}}, entry({"resourceType": "xhtml"}, None, None))

    assert pointers(rejection(document)) == {"/entry/1/resource/resourceType", "/entry/2/resource/resourceType"}


@pytest.mark.parametrize(
    ("body", "content_type", "kind", "rule"),
    [
        (dumps(encounter()), "text/xml", "malformed", "content-type"),
        (dumps(encounter()), "application/fhir+json; fhirVersion=3.0", "malformed", "fhir-version"),
        (b"{not json", "application/fhir+json", "malformed", "json"),
        (b"[]", "application/fhir+json", "malformed", "type"),
        (dumps({"resourceType": "Observation"}), "application/fhir+json", "contract", "resource-type"),
    ],
)
def test_documents_that_are_not_care_resources_are_refused(body: bytes, content_type: str, kind: str, rule: str
                                                           ) -> None:
    error = rejection(body, content_type)

    assert error.kind == kind
    assert error.problems[0].rule == rule


def test_plain_json_and_fhir_json_with_an_r4_version_are_accepted() -> None:
    assert decode(dumps(encounter()), "application/json")
    assert decode(dumps(encounter()), "application/fhir+json; fhirVersion=4.0; charset=utf-8")


# --- Bundles -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["transaction", "batch", "collection"])
def test_bundles_of_each_type_resolve_their_references(kind: str) -> None:
    method = None if kind == "collection" else "PUT"
    document = bundle(
        kind,
        entry(patient(), PATIENT_URL, method),
        entry(patient(STP, STP_ENI_SYSTEM, rid="123"), "https://fhir.asst.example/fhir/Patient/123", method),
        entry(patient(ENI, STP_ENI_SYSTEM, rid="456"), "urn:uuid:6f1c2a4e-8b1d-4c3e-9f00-000000000456", method),
        entry(encounter(subject={"reference": PATIENT_URL}), None, method),
        entry(immunization(patient={"reference": "Patient/123"}), None, method),
        entry(service_request(subject={"reference": "https://fhir.asst.example/fhir/Patient/123"}), None, method),
        entry(consent(patient={"reference": "Patient/456/_history/2"}), None, method),
    )

    envelopes = decode(dumps(document), "application/fhir+json")

    assert [e.message_type for e in envelopes] == [
        "care.encounter", "care.immunization", "care.service-request", "consent.record",
    ]
    assert [e.subject.identifiers[0] for e in envelopes] == [
        Identifier(system="cf", value=CF), Identifier(system="stp", value=STP), Identifier(system="stp", value=STP),
        Identifier(system="eni", value=ENI),
    ]
    assert all(e.sender == "asst" for e in envelopes)


def test_a_new_resource_in_a_bundle_takes_its_urn_uuid_as_message_id() -> None:
    fresh = encounter()
    del fresh["meta"]["versionId"]
    url = "urn:uuid:1c0ffee0-0000-4000-8000-00000000abcd"

    envelope = decode(dumps(bundle("transaction", entry(fresh, url, "POST"))))[0]

    assert envelope.message_id == url
    assert envelope.correlation_id == "K-0001"


def test_a_message_identifier_wins_over_the_version() -> None:
    resource = encounter()
    resource["identifier"].append({"system": MESSAGE_SYSTEM, "value": "ASST-M-77"})

    assert decode_one(resource).message_id == "ASST-M-77"


def test_bundle_tags_and_labels_apply_to_entries_without_their_own() -> None:
    own = encounter()
    bare = immunization(meta={"versionId": "1"})
    document = bundle(
        "collection", entry(own, None, None), entry(bare, None, None),
        meta={"security": [coding(ACT_CODE_SYSTEM, "MH")],
              "tag": [coding(PURPOSE_SYSTEM, "statistics"), coding(ORGANISATION_SYSTEM, "comune")]},
    )

    first, second = decode(dumps(document))

    assert (first.purpose, first.recipients) == ("care-coordination", ("aler",))
    assert (second.purpose, second.recipients) == ("statistics", ("comune",))
    assert first.sensitivity == ("S3", "MH", "R")
    assert second.sensitivity == ("S3", "MH")
    assert second.occurred_at == datetime(2026, 10, 21, 11, 0, tzinfo=timezone(timedelta(hours=2)))


def test_a_bundle_is_rejected_as_a_whole_with_every_problem() -> None:
    document = bundle(
        "transaction",
        entry(encounter()),
        {"request": {"method": "DELETE", "url": "Encounter/enc-0"}},
        entry({"resourceType": "Observation", "status": "final", "code": {"text": "x"}}),
        {"fullUrl": PATIENT_URL},
        entry(immunization(), method=None),
    )

    assert pointers(rejection(document)) == {
        "/entry/1/request/method", "/entry/2/resource/resourceType", "/entry/3/request", "/entry/3/resource",
        "/entry/4/request",
    }


@pytest.mark.parametrize(("document", "pointer"), [
    (bundle("searchset", entry(encounter(), None, None)), "/type"),
    (bundle("collection", entry(patient(), PATIENT_URL, None)), "/entry"),
    (bundle("collection"), "/entry"),
])
def test_bundles_the_gateway_does_not_take(document: dict[str, Any], pointer: str) -> None:
    assert pointers(rejection(document)) == {pointer}


# --- masking and labels --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mask", [coding(OBSERVATION_VALUE_SYSTEM, "MASKED"), coding(GATEWAY_SECURITY_SYSTEM, "oscurato")]
)
def test_data_masked_at_source_is_flagged(mask: dict[str, str]) -> None:
    resource = encounter()
    resource["meta"]["security"].append(mask)
    in_bundle = bundle("collection", entry(immunization(), None, None), meta={"security": [mask]})

    assert decode_one(resource).payload["masked_at_source"] is True
    assert decode(dumps(in_bundle))[0].payload["masked_at_source"] is True
    assert decode_one(encounter()).payload["masked_at_source"] is False


def test_labels_from_other_systems_are_not_sensitivity_labels() -> None:
    resource = encounter()
    resource["meta"]["security"] = [coding("http://example.org/labels", "PSY"), coding(CONFIDENTIALITY_SYSTEM, "U"),
                                    coding(REFRAIN_SYSTEM, "NOREUSE"), coding(ACT_CODE_SYSTEM, "SDV")]

    envelope = decode_one(resource)

    assert envelope.sensitivity == ("S3", "SDV")
    assert envelope.payload["security_labels"] == ["SDV"]


def test_psychological_support_always_carries_psy_and_r() -> None:
    visit = encounter(serviceType=concept(CARE_SERVICE_SYSTEM, "psychological-support"), meta=meta())
    request = service_request(code=concept(CARE_SERVICE_SYSTEM, "psychological-support"))

    for envelope in (decode_one(visit), decode_one(request)):
        assert envelope.sensitivity == ("S3", "PSY", "R")
        assert envelope.payload["security_labels"] == ["PSY", "R"]


def test_the_canonical_models_add_psy_and_r_to_psychological_support() -> None:
    payload = decode_one(encounter(serviceType=concept(CARE_SERVICE_SYSTEM, "psychological-support"))).payload
    request = decode_one(service_request()).payload

    stripped = CareEncounter.model_validate({k: v for k, v in payload.items() if k != "security_labels"})
    asked = CareServiceRequest.model_validate({**request, "service": "psychological-support", "security_labels": []})

    assert stripped.security_labels == ("PSY", "R")
    assert asked.security_labels == ("PSY", "R")


def test_the_canonical_model_checks_the_vaccine_code_against_its_system() -> None:
    with pytest.raises(ValidationError):
        Vaccine(system="http://www.whocc.no/atc", code="140")
    with pytest.raises(ValidationError):
        CareImmunization.model_validate({**decode_one(immunization()).payload, "season": "2026-2028"})


def test_every_care_message_type_has_a_json_schema() -> None:
    for name, model in HEALTH_MESSAGE_TYPES.items():
        schema = model.model_json_schema()
        assert schema["type"] == "object", name
    services = CareEncounter.model_json_schema()["properties"]["service_type"]
    assert services["enum"] == sorted(load_codelist("care_services").labels_it)


# --- outbound ServiceRequest ---------------------------------------------------------------------------------

LABELS = OutboundLabels(consent_ref="cns-1@2", obligations=("PSEUD",), refrains=("NORDSCLCD", "NOREUSE"))


def request_envelope(payload: dict[str, Any] | None = None, identifiers: tuple[Identifier, ...] | None = None
                     ) -> Envelope:
    return Envelope(
        message_id="gw-5b0d",
        correlation_id="K-0001",
        message_type="care.service-request",
        sender="aler",
        recipients=("asst",),
        subject=SubjectRef(identifiers=identifiers or (Identifier(system="cf", value=CF),)),
        purpose="care-coordination",
        sensitivity=("S3",),
        occurred_at=datetime(2026, 11, 20, 10, 0, tzinfo=UTC),
        payload=payload or decode_one(service_request()).payload,
    )


def test_service_request_encodes_to_valid_fhir_with_cf_and_labels() -> None:
    document = json.loads(encode_service_request(request_envelope(), LABELS))

    ServiceRequest.model_validate(document)
    assert document["resourceType"] == "ServiceRequest"
    assert "id" not in document
    assert document["subject"] == {"type": "Patient", "identifier": {"system": PREFERRED_CF_SYSTEM, "value": CF}}
    assert document["meta"]["security"] == [
        coding(OBLIGATION_SYSTEM, "PSEUD"), coding(REFRAIN_SYSTEM, "NORDSCLCD"), coding(REFRAIN_SYSTEM, "NOREUSE"),
    ]
    assert document["meta"]["tag"] == [coding(PURPOSE_SYSTEM, "care-coordination")]
    assert document["identifier"] == [{"system": CARE_REQUEST_SYSTEM, "value": "req-1"},
                                      {"system": MESSAGE_SYSTEM, "value": "gw-5b0d"},
                                      {"system": CORRELATION_SYSTEM, "value": "K-0001"}]
    assert document["supportingInfo"] == [{"type": "Consent", "identifier": {"system": CONSENT_SYSTEM,
                                                                             "value": "cns-1@2"}}]
    assert document["code"]["coding"][0]["display"] == "Assistenza infermieristica domiciliare"
    assert "note" not in document


def test_service_request_round_trips_through_the_trust() -> None:
    envelope = request_envelope()

    back = decode_one(json.loads(encode_service_request(envelope, LABELS)))

    assert back.payload == envelope.payload
    assert (back.message_id, back.correlation_id, back.purpose) == ("gw-5b0d", "K-0001", "care-coordination")
    assert back.subject == envelope.subject


def test_people_without_codice_fiscale_are_sent_with_their_stp_code() -> None:
    envelope = request_envelope(identifiers=(Identifier(system="stp", value=STP),))

    document = json.loads(encode_service_request(envelope, LABELS))

    assert document["subject"]["identifier"] == {"system": STP_ENI_SYSTEM, "value": STP}


def test_an_update_from_the_trust_keeps_the_request_id_the_gateway_sent() -> None:
    sent = json.loads(encode_service_request(request_envelope(), LABELS))
    update = {**sent, "id": "sr-7781", "status": "completed", "meta": {"versionId": "4"}}

    envelope = decode_one(update)

    assert envelope.payload["request_id"] == "req-1"
    assert envelope.payload["status"] == "completed"


def test_the_encoder_refuses_what_must_not_reach_the_trust() -> None:
    no_person = request_envelope(identifiers=(Identifier(system="aler-contract", value="C-1"),))
    masked = request_envelope({**decode_one(service_request()).payload, "masked_at_source": True})
    wrong_type = decode_one(encounter())

    for envelope, reason in ((no_person, "codice fiscale"), (masked, "masked"), (wrong_type, "care.service-request")):
        with pytest.raises(ValueError, match=reason):
            encode_service_request(envelope, LABELS)


# --- through the declared flows -----------------------------------------------------------------------------

CROSSWALK = Crosswalk(b"test-key-not-for-production-asst")


def declared_flow(sender: str, message_type: str, recipient: str) -> Flow:
    registry = load_registry()
    return next(f for f in registry.flows
                if (f.sender, f.message_type, f.recipient) == (sender, message_type, recipient))


def with_pseudonym(envelope: Envelope) -> Envelope:
    return envelope.model_copy(update={"subject": SubjectRef(identifiers=envelope.subject.identifiers,
                                                             pseudonym="psn-7f3a")})


def test_f4_request_minimised_with_a_crosswalk_token_reaches_the_trust_as_valid_fhir() -> None:
    original = request_envelope(identifiers=(Identifier(system="cf", value=CF),
                                             Identifier(system="aler-contract", value="ALER-C-1")))
    flow = declared_flow("aler", "care.service-request", "asst")

    outbound = minimise(with_pseudonym(original), flow, "gw-out-1", CROSSWALK.token)
    document = json.loads(encode_service_request(outbound, OutboundLabels("cns-1@1", flow.obligations,
                                                                          flow.refrains)))

    token = document["identifier"][0]["value"]
    assert token.startswith("gwt_") and token != "req-1"
    assert document["subject"]["identifier"] == {"system": PREFERRED_CF_SYSTEM, "value": CF}
    assert "ALER-C-1" not in json.dumps(document)
    assert decode_one(document).payload["request_id"] == token


def test_f5_gives_the_landlord_logistics_without_reasons_or_diagnoses() -> None:
    flow = declared_flow("asst", "care.encounter", "aler")

    outbound = minimise(with_pseudonym(decode_one(encounter())), flow, "gw-out-2", CROSSWALK.token)

    payload = CareEncounter.model_validate(outbound.payload)
    assert payload.reason_codes == () and payload.diagnosis_codes == ()
    assert payload.encounter_id.startswith("gwt_")
    assert payload.service_type == "home-nursing"


def test_f11_splits_care_needs_for_the_comune_from_logistics_for_the_landlord() -> None:
    notice = with_pseudonym(decode_one(discharge()))

    to_comune = minimise(notice, declared_flow("asst", "care.discharge-notice", "comune"), "gw-3", CROSSWALK.token)
    to_aler = minimise(notice, declared_flow("asst", "care.discharge-notice", "aler"), "gw-4", CROSSWALK.token)

    assert to_comune.payload["care_needs"] == ["home-care", "meals-at-home"]
    assert "logistics" not in to_comune.payload or to_comune.payload["logistics"] == []
    assert to_aler.payload["logistics"] == ["escort-needed", "mobility-aid"]
    assert "care_needs" not in to_aler.payload or to_aler.payload["care_needs"] == []


# --- official HL7 FHIR R4 examples ---------------------------------------------------------------------------

OFFICIAL: dict[str, set[str]] = {
    # file -> pointers of the problems it must be rejected with (see tests/fixtures/hl7/README.md)
    "Encounter-example.json": {"/class/code", "/subject", "/serviceType", "/period/start", "/meta/versionId"},
    "Encounter-f202.json": {"/subject", "/serviceType", "/period/start", "/meta/versionId"},
    "Immunization-example.json": {"/vaccineCode", "/patient", "/meta/versionId"},
    "ServiceRequest-example.json": {"/subject", "/category", "/code", "/requester", "/meta/versionId"},
    "Consent-consent-example-Out.json": {"/patient", "/provision/type", "/provision/purpose", "/meta/versionId"},
    "Patient-f201.json": {"/resourceType"},
    "Bundle-bundle-transaction.json": {
        "/entry", "/entry/5/request/method", "/entry/6/request/method", "/entry/7/resource/resourceType",
        "/entry/8/request/method", "/entry/9/request/method",
    },
}


def official(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return document


def test_every_official_example_in_the_fixtures_is_covered() -> None:
    assert sorted(p.name for p in FIXTURES.glob("*.json")) == sorted(OFFICIAL)
    assert (FIXTURES / "README.md").is_file()


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_official_examples_are_valid_fhir_r4_and_rejected_for_stated_reasons(name: str) -> None:
    error = rejection((FIXTURES / name).read_bytes())

    assert error.kind == "contract"
    assert pointers(error) == OFFICIAL[name]


def test_the_official_inpatient_example_is_refused_because_of_its_class() -> None:
    error = rejection(official("Encounter-example.json"))

    problem = next(p for p in error.problems if p.pointer == "/class/code")
    assert problem.rule == "binding"
    assert "VR" in problem.message and "protected discharge" in problem.message


def test_the_official_ambulatory_example_is_accepted_once_it_follows_the_conventions() -> None:
    resource = official("Encounter-f202.json")
    resource["meta"] = {"versionId": "1", "lastUpdated": "2013-01-28T14:00:00+01:00"}
    resource["serviceType"] = concept(CARE_SERVICE_SYSTEM, "chronic-follow-up")
    resource["period"] = {"start": "2013-01-28T13:00:00+01:00"}
    document = bundle("collection", entry(patient(rid="f201"), "https://fhir.asst.example/Patient/f201", None),
                      entry(resource, None, None))

    envelope = decode(dumps(document))[0]

    assert envelope.payload["length_minutes"] == 56
    assert envelope.payload["class_code"] == "AMB"
    assert envelope.payload["reason_codes"] == [] and envelope.payload["diagnosis_codes"] == []
    assert "tumor" not in json.dumps(envelope.model_dump(mode="json"))


def test_the_official_immunization_is_accepted_with_an_atc_code_and_a_codice_fiscale() -> None:
    resource = official("Immunization-example.json")
    resource["vaccineCode"]["coding"].append(coding("http://www.whocc.no/atc", "J07BB02"))
    resource["patient"] = by_identifier(CF, "urn:oid:2.16.840.1.113883.2.9.4.3.2")
    resource["meta"] = {"versionId": "1"}

    envelope = decode_one(resource)

    assert envelope.payload["lot_number"] == "AAJN11K"
    assert envelope.payload["season"] == "2012-2013"
    assert envelope.occurred_at == datetime(2013, 1, 10, tzinfo=UTC)


def test_the_official_consent_is_recorded_once_it_names_purpose_decision_and_person() -> None:
    resource = official("Consent-consent-example-Out.json")
    resource["patient"] = by_identifier()
    resource["provision"]["type"] = "deny"
    resource["provision"]["purpose"] = [coding(PURPOSE_SYSTEM, "care-coordination")]
    resource["meta"] = {"versionId": "1"}

    envelope = decode_one(resource)

    assert envelope.payload["provision_type"] == "deny"
    assert envelope.payload["actors"] == []


# --- property tests ------------------------------------------------------------------------------------------

FHIR_IDS = st.from_regex(r"[A-Za-z0-9\-.]{1,40}", fullmatch=True)
OFFSETS = st.sampled_from([UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=2)),
                           timezone(timedelta(hours=-5, minutes=-30))])
CODES = st.from_regex(r"[A-Za-z0-9.\-]{1,12}", fullmatch=True)


def codici_fiscali() -> st.SearchStrategy[str]:
    return st.builds(lambda seed, omocodia: synthetic_codice_fiscale(random.Random(seed), omocodia=omocodia),
                     st.integers(0, 2**32), st.booleans())


@st.composite
def valid_encounters(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """A valid Encounter and what its canonical payload must say."""
    cf = draw(codici_fiscali())
    start = draw(st.datetimes(datetime(2020, 1, 1), datetime(2030, 12, 31), timezones=OFFSETS))
    minutes = draw(st.integers(0, 600))
    service = draw(st.sampled_from(sorted(load_codelist("care_services").labels_it)))
    labels = draw(st.sets(st.sampled_from(["N", "R", "V", "PSY", "MH", "SDV", "HIV", "ETH"])))
    stated_length = draw(st.booleans())
    quartiere = draw(st.none() | st.sampled_from(["san-siro", "Gratosoglio", "S. Siro", "Molise Calvaire"]))
    reasons = draw(st.lists(st.tuples(st.sampled_from(["http://snomed.info/sct", "http://hl7.org/fhir/sid/icd-10"]),
                                      CODES), max_size=3, unique=True))
    rid, version = draw(FHIR_IDS), draw(FHIR_IDS)
    resource: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": rid,
        "meta": {"versionId": version, "security": [
            coding(CONFIDENTIALITY_SYSTEM if label in ("N", "R", "V") else ACT_CODE_SYSTEM, label) for label in labels
        ]},
        "status": draw(st.sampled_from(["planned", "arrived", "in-progress", "finished", "cancelled"])),
        "class": coding(V3_CLASS, draw(st.sampled_from(["VR", "HH", "AMB"]))),
        "serviceType": concept(CARE_SERVICE_SYSTEM, service),
        "subject": by_identifier(cf.lower() if draw(st.booleans()) else cf, draw(st.sampled_from(sorted(CF_SYSTEMS)))),
        "period": {"start": start.isoformat(), "end": (start + timedelta(minutes=minutes)).isoformat()},
        "reasonCode": [concept(system, code) for system, code in reasons],
    }
    if stated_length:
        resource["length"] = {"value": minutes, "system": UCUM_SYSTEM, "code": "min"}
    if quartiere:
        resource["location"] = [{"location": {"identifier": {"system": QUARTIERE_SYSTEM, "value": quartiere}}}]
    forced = {"PSY", "R"} if service == "psychological-support" else set()
    expected = {
        "message_id": f"Encounter:{rid}:{version}",
        "cf": cf,
        "service_type": service,
        "length_minutes": minutes,
        "period_start": start,
        "security_labels": sorted(labels | forced),
        "quartiere": None if quartiere is None else load_codelist("quartieri").resolve(quartiere),
        "reason_codes": [{"system": system, "code": code} for system, code in reasons],
    }
    return resource, expected


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_encounters())
def test_valid_encounters_decode_deterministically(case: tuple[dict[str, Any], dict[str, Any]]) -> None:
    resource, expected = case
    body = dumps(resource)

    first, second = decode(body, "application/fhir+json"), decode(body, "application/fhir+json")

    assert [e.model_dump() for e in first] == [e.model_dump() for e in second]
    envelope = first[0]
    payload = CareEncounter.model_validate(envelope.payload)
    assert envelope.message_id == expected["message_id"]
    assert envelope.subject.identifiers == (Identifier(system="cf", value=expected["cf"]),)
    assert payload.service_type == expected["service_type"]
    assert payload.length_minutes == expected["length_minutes"]
    assert payload.period_start == expected["period_start"]
    assert list(payload.security_labels) == expected["security_labels"]
    assert payload.quartiere == expected["quartiere"]
    assert [c.model_dump() for c in payload.reason_codes] == expected["reason_codes"]
    assert envelope.sensitivity == ("S3", *expected["security_labels"])


@st.composite
def valid_immunizations(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    vaccines = sorted(load_codelist("vaccine_codes").labels_it)
    code = draw(st.sampled_from(vaccines))
    system = vaccine_code_system(code)
    assert system is not None
    day = draw(st.dates(date(2015, 1, 1), date(2035, 12, 31)))
    with_time = draw(st.booleans())
    occurrence = (datetime.combine(day, datetime.min.time(), timezone(timedelta(hours=1))).isoformat()
                  if with_time else day.isoformat())
    lot = draw(st.none() | st.from_regex(r"[A-Z0-9][A-Z0-9\-]{0,11}", fullmatch=True))
    cf = draw(codici_fiscali())
    resource: dict[str, Any] = {
        "resourceType": "Immunization",
        "id": draw(FHIR_IDS),
        "meta": {"versionId": "1"},
        "status": draw(st.sampled_from(["completed", "not-done", "entered-in-error"])),
        "vaccineCode": concept(system, code),
        "patient": by_identifier(cf, draw(st.sampled_from(sorted(CF_SYSTEMS)))),
        "occurrenceDateTime": occurrence,
    }
    if lot:
        resource["lotNumber"] = lot
    first_year = day.year if day.month >= 8 else day.year - 1
    return resource, {"vaccine": {"system": system, "code": code, "group": vaccine_group(system, code)},
                      "day": day, "lot": lot,
                      "season": f"{first_year}-{first_year + 1}"}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_immunizations())
def test_valid_immunizations_decode_deterministically(case: tuple[dict[str, Any], dict[str, Any]]) -> None:
    resource, expected = case
    body = dumps(resource)

    first, second = decode(body), decode(body)

    assert [e.model_dump() for e in first] == [e.model_dump() for e in second]
    payload = CareImmunization.model_validate(first[0].payload)
    assert payload.vaccine.model_dump() == expected["vaccine"]
    assert payload.occurred_on == expected["day"]
    assert payload.lot_number == expected["lot"]
    assert payload.season == expected["season"]


def codes_of(codelist: str) -> st.SearchStrategy[str]:
    return st.sampled_from(sorted(load_codelist(codelist).labels_it))


VISIT_LOGISTICS = st.builds(
    VisitLogistics,
    floor=st.none() | st.integers(-2, 40),
    lift=st.none() | st.booleans(),
    entry=st.none() | codes_of("home_entry_methods"),
    time_window=st.none() | codes_of("visit_time_windows"),
    porter_can_accompany=st.none() | st.booleans(),
    interpreter_language=st.none() | codes_of("interpreter_languages"),
    access_notes=st.lists(codes_of("home_access_notes"), max_size=4).map(tuple),
)


@st.composite
def service_request_envelopes(draw: st.DrawFn) -> Envelope:
    service = draw(st.sampled_from(sorted(load_codelist("care_services").labels_it)))
    first = draw(st.none() | st.dates(date(2025, 1, 1), date(2030, 12, 31)))
    last = draw(st.none() | st.dates(first or date(2025, 1, 1), date(2031, 12, 31)))
    labels = set(draw(st.sets(st.sampled_from(["N", "R", "V", "MH", "SDV", "HIV", "ETH"]))))
    if service == "psychological-support":
        labels |= {"PSY", "R"}
    authored = draw(st.none() | st.datetimes(datetime(2025, 1, 1), datetime(2030, 1, 1), timezones=OFFSETS))
    payload = CareServiceRequest(
        request_id=draw(FHIR_IDS),
        status=draw(st.sampled_from(["draft", "active", "on-hold", "revoked", "completed", "entered-in-error"])),
        intent=draw(st.sampled_from(["proposal", "plan", "order", "original-order", "filler-order"])),
        priority=draw(st.none() | st.sampled_from(["routine", "urgent", "asap", "stat"])),
        category=draw(st.sampled_from(sorted(load_codelist("care_request_categories").labels_it))),
        service=service,
        requested_from=first,
        requested_until=last,
        requester=draw(st.sampled_from(["aler", "comune", "aler-varese"])),
        authored_on=authored,
        security_labels=tuple(sorted(labels)),
        logistics=draw(st.none() | VISIT_LOGISTICS),
    )
    person = draw(st.one_of(codici_fiscali().map(lambda cf: Identifier(system="cf", value=cf)),
                            st.just(Identifier(system="stp", value=STP)),
                            st.just(Identifier(system="eni", value=ENI))))
    return Envelope(
        message_id=draw(st.from_regex(r"[A-Za-z0-9._:@\-]{1,64}", fullmatch=True)),
        correlation_id=draw(st.from_regex(r"[A-Za-z0-9._:@\-]{1,64}", fullmatch=True)),
        message_type="care.service-request",
        sender="aler",
        recipients=("asst",),
        subject=SubjectRef(identifiers=(person,)),
        purpose=draw(st.sampled_from(["care-coordination", "vaccination-outreach"])),
        sensitivity=("S3",),
        occurred_at=draw(st.datetimes(datetime(2025, 1, 1), datetime(2030, 1, 1), timezones=OFFSETS)),
        payload=payload.model_dump(mode="json"),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(service_request_envelopes(), st.sets(st.sampled_from(["PSEUD", "ENCRYPT"])),
       st.sets(st.sampled_from(["NORDSCLCD", "NOREUSE", "NOPERSISTP"])), st.none() | st.just("cns-9@1"))
def test_encode_then_decode_gives_back_the_canonical_service_request(
    envelope: Envelope, obligations: set[str], refrains: set[str], consent_ref: str | None
) -> None:
    labels = OutboundLabels(consent_ref, tuple(sorted(obligations)), tuple(sorted(refrains)))

    raw = encode_service_request(envelope, labels)
    back = decode(raw, "application/fhir+json")

    assert len(back) == 1
    assert back[0].payload == envelope.payload
    assert back[0].subject == envelope.subject
    assert (back[0].message_id, back[0].correlation_id) == (envelope.message_id, envelope.correlation_id)
    assert back[0].occurred_at == envelope.occurred_at
    security = {(c["system"], c["code"]) for c in json.loads(raw)["meta"].get("security", [])}
    assert {(OBLIGATION_SYSTEM, o) for o in obligations} | {(REFRAIN_SYSTEM, r) for r in refrains} <= security


_SEED_DOCUMENT = bundle(
    "transaction",
    entry(patient(), PATIENT_URL),
    entry(encounter(subject={"reference": PATIENT_URL})),
    entry(immunization(patient={"reference": "Patient/pat-1"})),
    entry(service_request()),
    entry(consent()),
    entry(discharge()),
)
_JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), st.text(max_size=20),
    st.sampled_from(["", "2026", "2026-13-40", "#cond-1", "Patient/pat-1", PATIENT_URL, CF, CF[:15] + "X", "IMP",
                     {"resourceType": "Foo"}, {"resourceType": 7}, [], {}, [{}]]),
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if prefix:
        yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for k, item in enumerate(value):
            yield from _paths(item, (*prefix, k))


_SEED_PATHS = list(_paths(_SEED_DOCUMENT))


# --- FSE 2.0 document Bundles (the shapes of the HL7 Italia guides; golden examples) -----------------------------


def _golden(name: str) -> dict[str, Any]:
    return json.loads(golden_examples()[f"asst/valid/{name}.json"])  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", ["document-vaccinazioni", "document-vaccinazioni-urn-uuid"])
def test_a_vaccination_document_yields_its_immunizations_for_the_patient_named_by_codice_fiscale(name: str) -> None:
    document = _golden(name)

    envelopes = decode(dumps(document))

    assert [e.message_type for e in envelopes] == ["care.immunization", "care.immunization"]
    assert {e.subject.first("cf") for e in envelopes} == {CF_FSE}
    assert [e.payload["vaccine"]["group"] for e in envelopes] == ["covid-19", "influenza"]
    assert {e.payload["quartiere"] for e in envelopes} == {"gratosoglio"}  # from the Location entry (F6)
    assert all(e.message_id.startswith("fse-") for e in envelopes)
    assert [e.message_id for e in decode(dumps(document))] == [e.message_id for e in envelopes]  # a replay


def test_a_document_sent_again_under_another_identifier_is_a_new_message() -> None:
    document = _golden("document-vaccinazioni")
    again = {**document, "identifier": {"system": "urn:ietf:rfc:3986", "value": "urn:uuid:other-document"}}

    assert {e.message_id for e in decode(dumps(document))}.isdisjoint(e.message_id for e in decode(dumps(again)))


def test_sections_the_gateway_carries_no_flow_for_stay_in_the_document() -> None:
    document = _golden("document-vaccinazioni")
    document["entry"].append({"fullUrl": "https://fse.example.it/fhir/Observation/obs-1", "resource": {
        "resourceType": "Observation", "id": "obs-1", "status": "final", "code": {"text": "peso"},
        "subject": {"reference": "Patient/example-it-1"}}})

    assert [e.message_type for e in decode(dumps(document))] == ["care.immunization"] * 2


def test_outside_documents_other_resources_are_still_refused() -> None:
    document = _golden("document-vaccinazioni-urn-uuid")
    document["type"] = "collection"

    assert ("/entry/0/resource/resourceType", "resource-type") in [
        (p.pointer, p.rule) for p in rejection(document).problems]


def test_a_lone_immunization_with_only_a_literal_patient_reference_is_told_to_come_in_a_bundle() -> None:
    [problem] = rejection(immunization(patient={"reference": "Patient/example-it-1"})).problems

    assert (problem.pointer, problem.rule) == ("/patient", "person-identifier")
    assert "Patient/example-it-1 cannot be resolved" in problem.message and "Bundle" in problem.message
    assert "Reference.identifier" in problem.message


def test_an_unknown_quartiere_on_a_documents_location_is_refused_there() -> None:
    document = _golden("document-vaccinazioni")
    document["entry"][6]["resource"]["identifier"][0]["value"] = "Brera"

    problems = [(p.pointer, p.rule) for p in rejection(document).problems]

    assert problems == [("/entry/6/resource/identifier/0/value", "binding")]  # once, though two refer to it
