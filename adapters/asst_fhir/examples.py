"""ASST's golden examples: FHIR R4 resources and Bundles as the trust sends them, the shapes of the HL7 Italia
implementation guides (FSE 2.0), and invalid ones with the problems the gateway reports (published under
``contracts/examples/asst/``)."""

from __future__ import annotations

import copy
from typing import Any

from adapters._golden import CF_ASST, CF_FSE, CF_FSE_OTHER, dumps, wrong_check_character
from adapters.asst_fhir.simulator import asst_discharge, asst_encounter
from adapters.asst_fhir.systems import (
    CARE_REQUEST_CATEGORY_SYSTEM,
    CARE_SERVICE_SYSTEM,
    ORGANISATION_SYSTEM,
    PREFERRED_CF_SYSTEM,
    PURPOSE_SYSTEM,
    QUARTIERE_SYSTEM,
)
from adapters.descriptor import GoldenExamples, Mutation

__all__ = ["EXAMPLES", "INVALID", "valid"]


def _text(summary: str) -> dict[str, str]:
    """A FHIR narrative (``text``) as the trust's systems write one: a line of what the record is, no person."""
    return {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml"><p>{summary}</p></div>'}



def _asst_meta(version: str) -> dict[str, Any]:
    return {"versionId": version, "lastUpdated": "2026-11-20T10:15:00+01:00",
            "tag": [{"system": PURPOSE_SYSTEM, "code": "care-coordination"},
                    {"system": ORGANISATION_SYSTEM, "code": "aler"}]}


def _subject() -> dict[str, Any]:
    return {"identifier": {"system": PREFERRED_CF_SYSTEM, "value": CF_ASST}}


def valid() -> dict[str, dict[str, Any]]:
    """Valid FHIR R4 resources and Bundles the trust sends, FSE 2.0 shapes included, by name."""
    encounter = asst_encounter(CF_ASST, "enc-0001", "ASST-K-0001")
    immunization = {
        "resourceType": "Immunization",
        "id": "imm-0001",
        "meta": _asst_meta("1"),
        "status": "completed",
        "vaccineCode": {"coding": [{"system": "http://www.whocc.no/atc", "code": "J07BB02"}]},
        "patient": _subject(),
        "occurrenceDateTime": "2026-10-21T11:00:00+02:00",
        "location": {"identifier": {"system": QUARTIERE_SYSTEM, "value": "gratosoglio"}},
    }
    service_request = {
        "resourceType": "ServiceRequest",
        "id": "req-0001",
        "meta": _asst_meta("2"),
        "status": "active",
        "intent": "order",
        "priority": "routine",
        "category": [{"coding": [{"system": CARE_REQUEST_CATEGORY_SYSTEM, "code": "nurse-visit"}]}],
        "code": {"coding": [{"system": CARE_SERVICE_SYSTEM, "code": "home-nursing"}]},
        "subject": _subject(),
        "occurrencePeriod": {"start": "2026-12-01", "end": "2026-12-05"},
        "requester": {"identifier": {"system": ORGANISATION_SYSTEM, "value": "aler"}},
        "authoredOn": "2026-11-20T10:00:00+01:00",
    }
    discharge = asst_discharge(CF_ASST, "stay-0001", "ASST-K-0002")
    patient_url = "urn:uuid:6f1c2a4e-8b1d-4c3e-9f00-000000000001"
    bundled_encounter = asst_encounter(CF_ASST, "enc-0002", "ASST-K-0003")
    bundled_encounter["subject"] = {"reference": patient_url}
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": patient_url,
             "resource": {"resourceType": "Patient", "id": "pat-0001",
                          "identifier": [{"system": PREFERRED_CF_SYSTEM, "value": CF_ASST}]},
             "request": {"method": "PUT", "url": "Patient/pat-0001"}},
            {"fullUrl": "urn:uuid:6f1c2a4e-8b1d-4c3e-9f00-000000000002",
             "resource": bundled_encounter, "request": {"method": "PUT", "url": "Encounter/enc-0002"}},
            {"fullUrl": "urn:uuid:6f1c2a4e-8b1d-4c3e-9f00-000000000003",
             "resource": {**copy.deepcopy(immunization), "id": "imm-0002"},
             "request": {"method": "PUT", "url": "Immunization/imm-0002"}},
        ],
    }
    narratives = {"encounter": "Visita infermieristica domiciliare", "immunization": "Vaccinazione antinfluenzale",
                  "service-request": "Richiesta di assistenza infermieristica domiciliare",
                  "discharge": "Dimissione protetta"}
    documents: dict[str, dict[str, Any]] = {"encounter": encounter, "immunization": immunization,
                                            "service-request": service_request, "discharge": discharge}
    for name, summary in narratives.items():
        documents[name] = {"resourceType": documents[name]["resourceType"], "text": _text(summary),
                           **{k: v for k, v in documents[name].items() if k != "resourceType"}}
    entries: list[dict[str, Any]] = bundle["entry"]
    for entry, summary in zip(entries, ["Assistito identificato da codice fiscale",
                                        "Visita infermieristica domiciliare", "Vaccinazione antinfluenzale"],
                              strict=True):
        entry["resource"]["text"] = _text(summary)
    return {**documents, "bundle": bundle, **_fse_valid()}


# --- ASST: the shapes of the HL7 Italia implementation guides (FSE 2.0) -------------------------------------
# Written here, with synthetic people: a vaccination document Bundle (Composition first, then the Patient by
# codice fiscale, the Immunizations, who gave them and where), with relative and with urn:uuid references, and
# Immunizations coded with AIC, ATC, SNOMED CT, CVX and ICD-11 together, as Italian systems send them.

_ATC = "http://www.whocc.no/atc"
_AIC = "https://www.aifa.gov.it/aic"
_SNOMED = "http://snomed.info/sct"
_CVX = "http://hl7.org/fhir/sid/cvx"
_ICD11 = "http://id.who.int/icd/release/11/mms"
_LOINC = "http://loinc.org"


def _covid_vaccine() -> dict[str, Any]:
    return {"coding": [
        {"system": _AIC, "code": "049269018", "display": "Comirnaty"},
        {"system": _ATC, "code": "J07BX03", "display": "Vaccino anti COVID-19"},
        {"system": _SNOMED, "code": "1119349007", "display": "SARS-CoV-2 mRNA vaccine"},
        {"system": _ICD11, "code": "XM0GQ8", "display": "COVID-19 vaccine, RNA based"},
    ], "text": "Vaccino anti COVID-19 a mRNA"}


def _fse_patient(cf: str, patient_id: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": patient_id, "text": _text("Assistito identificato da codice fiscale"),
            "identifier": [{"system": PREFERRED_CF_SYSTEM, "value": cf}], "gender": "female"}


def _fse_immunization(immunization_id: str, patient: str, vaccine: dict[str, Any], day: str, lot: str,
                      performer: str, location: str, dose: int) -> dict[str, Any]:
    return {
        "resourceType": "Immunization", "id": immunization_id,
        "text": _text(f"Vaccinazione: {vaccine['text']}, dose {dose}"),
        "status": "completed", "vaccineCode": vaccine, "patient": {"reference": patient},
        "occurrenceDateTime": day, "primarySource": True, "lotNumber": lot, "location": {"reference": location},
        "performer": [{"actor": {"reference": performer}}],
        "protocolApplied": [{"doseNumberPositiveInt": dose}],
    }


def _vaccination_document(cf: str, *, urn: bool) -> dict[str, Any]:
    """A vaccination document as FSE 2.0 sends it; references ``Patient/<id>`` or (``urn``) by full URL."""
    ids = {"Composition": "doc-vacc-1", "Patient": "example-it-1", "Immunization": "imm-it-covid",
           "Immunization2": "imm-it-flu", "Organization": "asst-fbf-sacco", "Practitioner": "inf-0001",
           "Location": "casa-comunita-1"}
    kinds = {"Immunization2": "Immunization"}
    base = "https://fse.example.it/fhir"
    if urn:
        urls = {key: f"urn:uuid:2b9f6d1c-3c4e-4a57-9e3a-00000000000{n}" for n, key in enumerate(ids, 1)}
        refs = urls
    else:
        urls = {key: f"{base}/{kinds.get(key, key)}/{rid}" for key, rid in ids.items()}
        refs = {key: f"{kinds.get(key, key)}/{rid}" for key, rid in ids.items()}
    flu = {"coding": [{"system": _ATC, "code": "J07BB02", "display": "Vaccino influenzale, antigene di superficie"},
                      {"system": _SNOMED, "code": "1181000221105"}], "text": "Vaccino antinfluenzale"}
    resources: dict[str, dict[str, Any]] = {
        "Composition": {
            "resourceType": "Composition", "id": ids["Composition"], "text": _text("Certificato vaccinale"),
            "status": "final", "type": {"coding": [{"system": _LOINC, "code": "82593-5",
                                                    "display": "Immunization summary report"}]},
            "subject": {"reference": refs["Patient"]}, "date": "2026-11-20T10:30:00+01:00",
            "author": [{"reference": refs["Organization"]}], "title": "Certificato vaccinale",
            "custodian": {"reference": refs["Organization"]},
            "section": [{"title": "Vaccinazioni", "code": {"coding": [{"system": _LOINC, "code": "11369-6",
                                                                      "display": "History of Immunization note"}]},
                         "text": _text("Vaccinazioni somministrate"),
                         "entry": [{"reference": refs["Immunization"]}, {"reference": refs["Immunization2"]}]}],
        },
        "Patient": _fse_patient(cf, ids["Patient"]),
        "Immunization": _fse_immunization(ids["Immunization"], refs["Patient"], _covid_vaccine(), "2026-10-14",
                                          "GH1234", refs["Practitioner"], refs["Location"], 5),
        "Immunization2": _fse_immunization(ids["Immunization2"], refs["Patient"], flu, "2026-10-14", "FL2026A",
                                           refs["Practitioner"], refs["Location"], 1),
        "Organization": {"resourceType": "Organization", "id": ids["Organization"],
                         "text": _text("ASST Fatebenefratelli Sacco"), "name": "ASST Fatebenefratelli Sacco"},
        "Practitioner": {"resourceType": "Practitioner", "id": ids["Practitioner"],
                         "text": _text("Infermiere di famiglia e di comunità"),
                         "identifier": [{"system": "https://fse.example.it/sid/operatore", "value": "INF-0001"}]},
        "Location": {"resourceType": "Location", "id": ids["Location"], "text": _text("Casa di Comunità"),
                     "identifier": [{"system": QUARTIERE_SYSTEM, "value": "gratosoglio"}],
                     "name": "Casa di Comunità", "managingOrganization": {"reference": refs["Organization"]}},
    }
    return {
        "resourceType": "Bundle", "id": "fse-vacc-1" + ("-urn" if urn else ""),
        "identifier": {"system": "urn:ietf:rfc:3986",
                       "value": "urn:uuid:7d7c3a52-1f6e-4f0e-8b55-" + ("00000000000b" if urn else "00000000000a")},
        "type": "document", "timestamp": "2026-11-20T10:30:00+01:00",
        "entry": [{"fullUrl": urls[key], "resource": resource} for key, resource in resources.items()],
    }


def _fse_valid() -> dict[str, dict[str, Any]]:
    pneumococcal = {"coding": [{"system": _CVX, "code": "216", "display": "PCV20"},
                               {"system": _ATC, "code": "J07AL02"}], "text": "Vaccino pneumococcico coniugato"}
    zoster = {"coding": [{"system": _AIC, "code": "046337010", "display": "Shingrix"},
                         {"system": _ICD11, "code": "XM7KE3"}], "text": "Vaccino herpes zoster ricombinante"}
    standalone = {
        "resourceType": "Immunization", "id": "imm-it-covid-2", "meta": _asst_meta("1"),
        "text": _text("Vaccinazione anti COVID-19"), "status": "completed", "vaccineCode": _covid_vaccine(),
        "patient": {"identifier": {"system": PREFERRED_CF_SYSTEM, "value": CF_FSE}},
        "occurrenceDateTime": "2026-10-14T09:40:00+02:00", "lotNumber": "GH1234",
        "location": {"identifier": {"system": QUARTIERE_SYSTEM, "value": "San Siro"}},
    }
    return {
        "document-vaccinazioni": _vaccination_document(CF_FSE, urn=False),
        "document-vaccinazioni-urn-uuid": _vaccination_document(CF_FSE, urn=True),
        "immunization-covid-aic-atc-snomed-icd11": standalone,
        "immunization-pneumococcal-cvx": {**copy.deepcopy(standalone), "id": "imm-it-pcv", "vaccineCode": pneumococcal,
                                          "text": _text("Vaccinazione antipneumococcica")},
        "immunization-zoster-aic": {**copy.deepcopy(standalone), "id": "imm-it-rzv", "vaccineCode": zoster,
                                    "text": _text("Vaccinazione anti herpes zoster")},
    }


INVALID: dict[str, tuple[Mutation, list[tuple[str, str]]]] = {
    "encounter-bad-check-character": (("encounter", "subject/identifier/value", wrong_check_character(CF_ASST)),
                                      [("/subject/identifier/value", "person-identifier")]),
    "encounter-unknown-service": (("encounter", "serviceType/coding/0/code", "acupuncture"),
                                  [("/serviceType/coding/0/code", "binding")]),
    "encounter-wrong-type": (("encounter", "status", 7), [("/status", "string_type")]),
    "service-request-missing-subject": (("service-request", "subject", ...), [("/subject", "missing")]),
    "immunization-unknown-field": (("immunization", "nome", "Mario"), [("/nome", "extra_forbidden")]),
    "unsupported-resource": (("encounter", "resourceType", "Observation"), [("/resourceType", "resource-type")]),
    "malformed-json": (b'{"resourceType": "Encounter", "id": ', [("", "json")]),
    "immunization-literal-patient-reference": (
        ("immunization-covid-aic-atc-snomed-icd11", "patient", {"reference": "Patient/example-it-1"}),
        [("/patient", "person-identifier")]),
    "immunization-unknown-aic-only": (
        ("immunization-covid-aic-atc-snomed-icd11", "vaccineCode",
         {"coding": [{"system": _AIC, "code": "000000000"}]}),
        [("/vaccineCode/coding/0/code", "binding")]),
    "immunization-icd11-only": (
        ("immunization-covid-aic-atc-snomed-icd11", "vaccineCode",
         {"coding": [{"system": _ICD11, "code": "XM0GQ8"}]}),
        [("/vaccineCode", "binding")]),
    "document-composition-not-first": (
        ("document-vaccinazioni", "entry/0/resource", {"resourceType": "Basic", "id": "not-a-composition",
                                                       "code": {"text": "altro"}}),
        [("/entry/0/resource/resourceType", "document")]),
    "document-without-identifier": (("document-vaccinazioni", "identifier", ...), [("/identifier", "required")]),
    "document-another-persons-immunization": (
        ("document-vaccinazioni", "entry/3/resource/patient",
         {"identifier": {"system": PREFERRED_CF_SYSTEM, "value": CF_FSE_OTHER}}),
        [("/entry/3/resource/patient", "document-subject")]),
    "patient-alone": (dumps(_fse_patient(CF_FSE, "example-it-1")), [("/resourceType", "resource-type")]),
}
"""Invalid example name -> (how it is made from a valid one, the problems it must produce)."""

EXAMPLES = GoldenExamples(valid=valid, invalid=INVALID)
