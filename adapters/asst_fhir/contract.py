"""JSON Schemas (2020-12) of the FHIR R4 JSON the gateway takes from the hospital trust and sends to it, built
from this adapter's own rules so that they cannot drift from it.

Inbound (:func:`inbound_schema`): Encounter, Immunization, ServiceRequest and Consent as one message each, the
Patient (and Condition) resources a Bundle carries for them, and the Bundle. Each schema says what the decoder
(:mod:`adapters.asst_fhir.inbound`) requires of the elements it reads: required elements, the bound codes as
enums (statuses, Encounter class, care services, request categories, influenza vaccines, care needs, discharge
logistics, visit logistics), the system URIs of :mod:`adapters.asst_fhir.systems`, the FHIR date formats of
the ``fhir.resources`` models and the precision the decoder needs, a person identifier (codice fiscale, STP or
ENI) or a reference for the subject, and how a message id is found. A resource's own elements are those of
its FHIR R4 definition (the ``fhir.resources`` model's): FHIR JSON allows no other property there, extensions
go in ``extension`` and ``modifierExtension``. Nested FHIR datatypes are left open (their definition is the FHIR
specification's), so the schemas allow the rest of FHIR.

The schemas are a necessary condition, not a sufficient one: a document one refuses, the decoder refuses; one
it accepts may still be refused for what a schema cannot see. That is the codice fiscale's check character and
date, references that must resolve to a Patient in the Bundle or contained in the resource, a period that
ends before it starts, at most one purpose tag, one code per visit logistics system, a season naming two
consecutive years, and (where the decoder reads the *first* coding or identifier in a system) a later valid
one next to an invalid first one. ``tests/unit/test_asst_contracts.py`` checks both directions.

Outbound (:func:`outbound_service_request_schema`): the ServiceRequest :func:`adapters.asst_fhir.encode_service_request`
writes for flow F4, exactly (closed objects): what the trust can rely on.
"""

from __future__ import annotations

import typing
from functools import cache
from typing import Any, Final

from fhir.resources.R4B import fhirtypes
from fhir.resources.R4B.bundle import Bundle, BundleEntry
from fhir.resources.R4B.composition import Composition
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.consent import Consent
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.immunization import Immunization
from fhir.resources.R4B.location import Location
from fhir.resources.R4B.organization import Organization
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.practitioner import Practitioner
from fhir.resources.R4B.practitionerrole import PractitionerRole
from fhir.resources.R4B.servicerequest import ServiceRequest

from adapters._patterns import anchored, person_code, spelling
from adapters.asst_fhir.formats import INBOUND_RESOURCES
from adapters.asst_fhir.inbound import (  # the decoder's own rules, private to this package
    _CONFIDENTIALITY_LABELS,
    _CONSENT_STATUSES,
    _CONTEXT_RESOURCES,
    _ENCOUNTER_STATUSES,
    _IMMUNIZATION_STATUSES,
    _INPATIENT_CLASSES,
    _MAX_MINUTES,
    _MESSAGE_RESOURCES,
    _MINUTES_PER_UNIT,
    _ORGANISATION,
    _PROTECTED_DISCHARGE,
    _REQUEST_INTENTS,
    _REQUEST_PRIORITIES,
    _REQUEST_STATUSES,
    _SENSITIVITY_LABELS,
    _TOKEN,
    BUNDLE_TYPES,
    MAX_BUNDLE_ENTRIES,
)
from adapters.asst_fhir.logistics import _EXTENSIONS, _SINGLE_CODES
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
    HOME_ACCESS_NOTE_SYSTEM,
    MESSAGE_SYSTEM,
    OBLIGATION_SYSTEM,
    ORGANISATION_SYSTEM,
    PREFERRED_CF_SYSTEM,
    PURPOSE_SYSTEM,
    QUARTIERE_SYSTEM,
    REFRAIN_SYSTEM,
    STP_ENI_SYSTEM,
    UCUM_SYSTEM,
)
from schemas.codelists import load_codelist
from schemas.health import (
    CareEncounter,
    CareImmunization,
    CareServiceRequest,
    RecordedConsent,
    VisitLogistics,
    vaccine_code_system,
)
from schemas.vaccines import _ATC, _CVX, AIC_SYSTEM, ATC_SYSTEM, CVX_SYSTEM, SNOMED_SYSTEM  # the lists' own rules

__all__ = ["INBOUND_RESOURCES", "inbound_schema", "outbound_service_request_schema"]

_MODELS: Final[dict[str, Any]] = {
    "Encounter": Encounter, "Immunization": Immunization, "ServiceRequest": ServiceRequest, "Consent": Consent,
    "Patient": Patient, "Condition": Condition, "Bundle": Bundle, "Composition": Composition,
    "Organization": Organization, "Practitioner": Practitioner, "PractitionerRole": PractitionerRole,
    "Location": Location,
}
_FHIR_R4: Final = "https://hl7.org/fhir/R4/"
_CAVEAT: Final = (
    "Meeting this schema is necessary, not sufficient: the gateway also checks the codice fiscale's check "
    "character and date, that references resolve to a Patient in the Bundle or contained in the resource, that "
    "periods do not end before they start, one purpose tag per resource, one code per visit logistics system, "
    "that a season names two consecutive years, and that the first coding or identifier in a system it reads "
    "is the valid one."
)


def _primitive_pattern(annotated: Any) -> str:
    """The FHIR regular expression a ``fhir.resources`` primitive type validates strings with."""
    pattern = typing.get_args(annotated)[1].pattern
    return str(getattr(pattern, "pattern", pattern)).removeprefix("^").removesuffix("$")


_DATE_TIME: Final = _primitive_pattern(fhirtypes.DateTimeType)
_INSTANT: Final = _primitive_pattern(fhirtypes.InstantType)
_FHIR_ID: Final = _primitive_pattern(fhirtypes.IdType)
_FULL_DATE_AHEAD: Final = "(?=[0-9]{4}-[0-9]{2}-[0-9]{2})"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/$defs/{name}"}


def _elements(model: Any) -> list[str]:
    """Every JSON property of the resource in FHIR R4 (the model's, without its own ``fhir_comments``)."""
    return sorted({"resourceType", *(f.alias or n for n, f in model.model_fields.items())} - {"fhir_comments"})


def _resource(name: str, description: str, properties: dict[str, Any], required: list[str],
              rules: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A resource: its FHIR elements (those not described here are any FHIR value), nothing else."""
    model = _MODELS[name]
    unknown = sorted(set(properties) - set(_elements(model)))
    if unknown:
        raise ValueError(f"{name} has no elements {unknown}")
    schema: dict[str, Any] = {
        "title": f"FHIR R4 {name}",
        "description": description,
        "type": "object",
        "required": ["resourceType", *required],
        "properties": {element: {} for element in _elements(model)} | properties
        | {"resourceType": {"const": name}},
        "additionalProperties": False,
        "externalDocs": {"url": f"{_FHIR_R4}{name.lower()}.html", "description": f"HL7 FHIR R4 {name}"},
    }
    if rules:
        schema["allOf"] = rules
    return schema


def _system_is(system: str) -> dict[str, Any]:
    return {"required": ["system"], "properties": {"system": {"const": system}}}


def _if_system(system: str, then: dict[str, Any]) -> dict[str, Any]:
    return {"if": _system_is(system), "then": then}


def _coding(system: str, codes: typing.Iterable[str]) -> dict[str, Any]:
    """A Coding in ``system`` whose code is one of ``codes``."""
    return {"type": "object", "required": ["system", "code"],
            "properties": {"system": {"const": system}, "code": {"enum": sorted(codes)}}}


def _codes(codelist: str) -> list[str]:
    return sorted(load_codelist(codelist).labels_it)


def _concept_with(coding: dict[str, Any], description: str) -> dict[str, Any]:
    """A CodeableConcept with at least one coding matching ``coding``."""
    return {"type": "object", "description": description, "required": ["coding"],
            "properties": {"coding": {"type": "array", "contains": coding}}}


def _canonical(model: Any, field: str) -> dict[str, Any]:
    """The JSON Schema of a canonical payload field (the value it comes from must meet it)."""
    schema: dict[str, Any] = model.model_json_schema()["properties"][field]
    present = [branch for branch in schema.get("anyOf", [schema]) if branch != {"type": "null"}]
    if len(present) != 1:
        raise ValueError(f"{model.__name__}.{field} has no single schema")
    return {k: v for k, v in present[0].items() if k != "title"}


def _record_id(model: Any, field: str) -> dict[str, Any]:
    """A FHIR id that is also a canonical record id (1-64 characters)."""
    return {"type": "string", "description": f"the record id ({field} of the canonical message)",
            "allOf": [{"pattern": anchored(_FHIR_ID)}, _canonical(model, field)]}


def _quartiere_identifier(required_value: bool) -> dict[str, Any]:
    identifier: dict[str, Any] = {**_system_is(QUARTIERE_SYSTEM)}
    if required_value:
        value = {"type": "string", "pattern": anchored(spelling("quartieri")),
                 "description": "a code, Italian name or alias of code list quartieri"}
        identifier = {"required": ["system", "value"],
                      "properties": {"system": {"const": QUARTIERE_SYSTEM}, "value": value}}
    return {"required": ["identifier"], "properties": {"identifier": identifier}}


def _first_identifier(system: str, value: dict[str, Any]) -> dict[str, Any]:
    """The decoder reads the first identifier with a value in ``system``: when there is one, one is valid."""
    given = {"required": ["system", "value"], "properties": {"system": {"const": system}}}
    valid = {"required": ["system", "value"], "properties": {"system": {"const": system}, "value": value}}
    return {"if": {"required": ["identifier"], "properties": {"identifier": {"contains": given}}},
            "then": {"properties": {"identifier": {"contains": valid}}}}


def _has_identifier(system: str) -> dict[str, Any]:
    return {"required": ["identifier"], "properties": {"identifier": {
        "contains": {"required": ["system", "value"], "properties": {"system": {"const": system}}}}}}


def _when(required: str) -> dict[str, Any]:
    """The decoder needs a time for the message: meta.lastUpdated or ``required``."""
    return {"anyOf": [{"required": ["meta"], "properties": {"meta": {"required": ["lastUpdated"]}}},
                      {"required": [required]}],
            "description": f"meta.lastUpdated or {required}: when the message happened"}


_IDENTIFIER_RULES: Final = [
    _first_identifier(MESSAGE_SYSTEM, _ref("Token")),
    _first_identifier(CORRELATION_SYSTEM, _ref("Token")),
]


def _definitions() -> dict[str, Any]:
    organisation = {"type": "string", "pattern": anchored(_ORGANISATION.pattern)}
    person = {"enum": sorted([*CF_SYSTEMS, STP_ENI_SYSTEM])}
    return {
        "Token": {"type": "string", "pattern": anchored(_TOKEN.pattern),
                  "description": "1-128 letters, digits and . _ : @ -"},
        "Organisation": {**organisation, "description": "a partner organisation code (aler, comune, ...)"},
        "DateTime": {"type": "string", "pattern": anchored(_DATE_TIME), "description": "FHIR dateTime"},
        "Day": {"type": "string", "pattern": anchored(_FULL_DATE_AHEAD + _DATE_TIME),
                "description": "FHIR dateTime of at least a full date (YYYY-MM-DD)"},
        "Instant": {"type": "string", "pattern": anchored(_INSTANT),
                    "description": "FHIR date and time, with seconds and a UTC offset"},
        "Meta": {
            "type": "object",
            "description": f"meta.tag names the purpose ({PURPOSE_SYSTEM}, at most one per resource: FHIR R4 has "
                           "no purpose element on these resources) and the recipient organisations "
                           f"({ORGANISATION_SYSTEM}); meta.security carries HL7 labels: "
                           f"{', '.join(sorted(_CONFIDENTIALITY_LABELS))} ({CONFIDENTIALITY_SYSTEM}), "
                           f"{', '.join(sorted(_SENSITIVITY_LABELS))} ({ACT_CODE_SYSTEM}), and masking at source. "
                           "A Bundle's tags and labels apply to entries without their own.",
            "properties": {
                "versionId": {"type": "string", "pattern": anchored(_FHIR_ID),
                              "description": "with the id, makes the message id <type>:<id>:<versionId>"},
                "lastUpdated": _ref("Instant"),
                "tag": {"type": "array", "items": {"allOf": [
                    _if_system(PURPOSE_SYSTEM, {"required": ["code"], "properties": {"code": organisation}}),
                    _if_system(ORGANISATION_SYSTEM, {"required": ["code"], "properties": {"code": organisation}}),
                ]}},
            },
        },
        "PersonReference": {
            "type": "object",
            "description": "The person: Reference.identifier with a codice fiscale (either system), an STP or ENI "
                           f"code ({STP_ENI_SYSTEM}), or a reference to a Patient in the Bundle (urn:uuid full "
                           "URL, Patient/<id> or an absolute URL) or contained in the resource (#id) that has one. "
                           f"The trust's own patient id ({ASST_PATIENT_SYSTEM}) comes along, but is not enough.",
            "anyOf": [
                {"required": ["reference"]},
                {"required": ["identifier"], "properties": {"identifier": {"required": ["system"],
                                                                           "properties": {"system": person}}}},
            ],
            "properties": {"identifier": {"allOf": [
                {"if": {"required": ["system"], "properties": {"system": person}},
                 "then": {"required": ["value"], "properties": {"value": {"type": "string",
                                                                         "pattern": anchored(person_code())}}}},
                _if_system(ASST_PATIENT_SYSTEM, {"required": ["value"], "properties": {
                    "value": {"type": "string", "minLength": 1, "maxLength": 64}}}),
            ]}},
        },
        "MessageIdentity": {
            "description": f"How a replay is recognised: an identifier in {MESSAGE_SYSTEM}, or id and "
                           "meta.versionId (message id <type>:<id>:<versionId>); in a Bundle a urn:uuid fullUrl "
                           "also does.",
            "anyOf": [_has_identifier(MESSAGE_SYSTEM),
                      {"required": ["id", "meta"], "properties": {"meta": {"required": ["versionId"]}}}],
        },
        "Encounter": _encounter(),
        "Immunization": _immunization(),
        "ServiceRequest": _service_request(),
        "Consent": _consent(),
        "Patient": _resource("Patient", "A Patient a message refers to: its identifiers (codice fiscale, STP or "
                                        "ENI code, the trust's patient id) identify the person; the rest is "
                                        "not read.", {}, []),
        "Condition": _resource("Condition", "A Condition an Encounter's diagnosis refers to: only its codes are "
                                            "read (clinical, they never leave the health domain).", {}, []),
        **{name: _resource(name, f"A {name} a message resource refers to (who, where): not read, never "
                                 "forwarded.", {}, [])
           for name in ("Organization", "Practitioner", "PractitionerRole", "Location")},
        "Composition": _resource("Composition", "The Composition a document Bundle starts with: its subject names "
                                                "the Patient the document is about; the rest is not read.",
                                 {"subject": {"type": "object"}}, ["subject"]),
        "OtherResource": {"type": "object", "required": ["resourceType"],
                          "description": "Another resource of a document Bundle (a section the gateway carries "
                                         "no flow for): left in the document, not read.",
                          "properties": {"resourceType": {"type": "string", "not": {"enum": sorted(
                              [*_MESSAGE_RESOURCES, *_CONTEXT_RESOURCES, "Composition"])}}}},
        "BundleEntry": _bundle_entry(),
        "Bundle": _bundle(),
    }


def _encounter() -> dict[str, Any]:
    care_classes = _codes("encounter_classes")
    discharge = {"required": ["class", "hospitalization"], "properties": {
        "class": {"required": ["code"], "properties": {"code": {"enum": sorted(_INPATIENT_CLASSES)}}},
        "hospitalization": {"required": ["dischargeDisposition"], "properties": {"dischargeDisposition": {
            "required": ["coding"], "properties": {"coding": {"contains": {
                "required": ["system", "code"],
                "properties": {"system": {"const": DISCHARGE_PATHWAY_SYSTEM}, "code": {"const": _PROTECTED_DISCHARGE}},
            }}}}}},
    }}
    arrangement_codes = {"allOf": [
        _if_system(CARE_NEED_SYSTEM, {"required": ["code"], "properties": {"code": {"enum": _codes("care_needs")}}}),
        _if_system(DISCHARGE_LOGISTICS_SYSTEM, {"required": ["code"], "properties": {
            "code": {"enum": _codes("discharge_logistics")}}}),
    ]}
    as_discharge = {
        "description": "A protected discharge (care.discharge-notice, F11): a finished inpatient stay with its "
                       "end, care needs and discharge logistics coded in specialArrangement.",
        "required": ["period"],
        "properties": {
            "status": {"const": "finished"},
            "period": {"required": ["end"], "properties": {"end": _ref("Day")}},
            "hospitalization": {"properties": {"specialArrangement": {"type": "array", "items": {
                "properties": {"coding": {"type": "array", "items": arrangement_codes}}}}}},
        },
    }
    lengths = [{"if": {"required": ["code"], "properties": {"code": {"const": unit}}},
                "then": {"properties": {"value": {"exclusiveMinimum": -0.5 / factor,
                                                  "exclusiveMaximum": (_MAX_MINUTES + 0.5) / factor}}}}
               for unit, factor in _MINUTES_PER_UNIT.items()]
    as_visit = {
        "description": f"A care visit (care.encounter, F5, F6): class {', '.join(care_classes)}, a service type, "
                       "a start with time, the length in UCUM min or h, the quartiere where it happened.",
        "required": ["serviceType", "period"],
        "properties": {
            "class": {"required": ["code"], "properties": {"code": {"enum": care_classes}}},
            "serviceType": _concept_with(_coding(CARE_SERVICE_SYSTEM, _codes("care_services")),
                                         "the care service (code list care_services)"),
            "period": {"required": ["start"], "properties": {"start": _ref("Instant"), "end": _ref("Instant")}},
            "length": {"type": "object", "required": ["value", "code"], "allOf": lengths, "properties": {
                "system": {"const": UCUM_SYSTEM}, "code": {"enum": list(_MINUTES_PER_UNIT)},
                "value": {"type": "number"}}},
            "location": {"type": "array",
                         "if": {"contains": {"required": ["location"],
                                             "properties": {"location": _quartiere_identifier(False)}}},
                         "then": {"contains": {"required": ["location"],
                                               "properties": {"location": _quartiere_identifier(True)}}}},
        },
    }
    return _resource(
        "Encounter",
        "A visit of the trust's community services (class VR, HH or AMB: care.encounter) or a protected "
        "hospital discharge (an inpatient class with hospitalization.dischargeDisposition protected-discharge: "
        "care.discharge-notice). Reason texts and displays are dropped; reasonCode and the codes of the "
        "Condition resources the diagnoses refer to are kept apart (clinical).",
        {
            "id": _record_id(CareEncounter, "encounter_id"),
            "meta": _ref("Meta"),
            "status": {"enum": list(_ENCOUNTER_STATUSES)},
            "class": {"type": "object", "required": ["system", "code"], "description": "HL7 v3 ActCode",
                      "properties": {"system": {"const": ACT_CODE_SYSTEM}, "code": {"type": "string"}}},
            "subject": _ref("PersonReference"),
        },
        ["id", "status", "class", "subject"],
        [*_IDENTIFIER_RULES, {"if": discharge, "then": as_discharge, "else": as_visit}],
    )


def _immunization() -> dict[str, Any]:
    listed: dict[str, list[str]] = {system: [] for system in (ATC_SYSTEM, SNOMED_SYSTEM, CVX_SYSTEM)}
    for code in _codes("vaccine_codes"):
        system = vaccine_code_system(code)
        if system is None:
            raise ValueError(f"vaccine code {code} has no system")
        listed[system].append(code)
    vaccine_codings = [
        {"type": "object", "required": ["system", "code"], "properties": {
            "system": {"const": ATC_SYSTEM}, "code": {"type": "string", "pattern": anchored(_ATC.pattern)}}},
        _coding(AIC_SYSTEM, _codes("aic_vaccines")),
        _coding(SNOMED_SYSTEM, listed[SNOMED_SYSTEM]),
        {"type": "object", "required": ["system", "code"], "properties": {
            "system": {"const": CVX_SYSTEM}, "code": {"type": "string", "pattern": anchored(_CVX.pattern)}}},
    ]
    return _resource(
        "Immunization",
        "A vaccination given, not given or recorded in error (care.immunization, F6, counted per vaccine group: "
        "influenza, COVID-19, pneumococcal, herpes zoster, other).",
        {
            "id": _record_id(CareImmunization, "immunization_id"),
            "meta": _ref("Meta"),
            "status": {"enum": list(_IMMUNIZATION_STATUSES)},
            "patient": _ref("PersonReference"),
            "vaccineCode": _concept_with({"anyOf": vaccine_codings},
                                         "a vaccine: an ATC code under J07, an AIC code of code list aic_vaccines, "
                                         "a SNOMED CT vaccine product of code list vaccine_codes or a CVX code; "
                                         "other codings (ICD-11, local codes) may come along"),
            "occurrenceDateTime": {**_ref("Day"), "description": "the day of the vaccination"},
            "occurrenceString": {"not": {}, "description": "free text is not accepted: give occurrenceDateTime"},
            "lotNumber": _canonical(CareImmunization, "lot_number"),
            "location": {"type": "object", "if": _quartiere_identifier(False), "then": _quartiere_identifier(True)},
        },
        ["id", "status", "patient", "vaccineCode", "occurrenceDateTime"],
        _IDENTIFIER_RULES,
    )


def _logistics_detail() -> dict[str, Any]:
    systems = [(system, codelist) for system, codelist in _SINGLE_CODES.values()]
    systems.append((HOME_ACCESS_NOTE_SYSTEM, "home_access_notes"))
    return {"type": "object", "required": ["coding"], "properties": {"coding": {
        "type": "array", "minItems": 1, "items": {"anyOf": [_coding(s, _codes(c)) for s, c in sorted(systems)]}}},
        "description": "visit logistics, coded only: "
                       + ", ".join(f"{c} ({s})" for s, c in sorted(systems))}


def _logistics_extensions(for_sending: bool) -> list[dict[str, Any]]:
    floor = _canonical(VisitLogistics, "floor")
    rules = []
    for field, (url, kind) in sorted(_EXTENSIONS.items()):
        value = {"type": "integer", **{k: floor[k] for k in ("minimum", "maximum")}} if field == "floor" else {
            "type": "boolean" if kind == "valueBoolean" else "integer"}
        rules.append({"required": ["url", kind], "properties": {"url": {"const": url}, kind: value}}
                     if for_sending else
                     {"if": {"required": ["url"], "properties": {"url": {"const": url}}},
                      "then": {"required": [kind], "properties": {kind: value}}})
    return rules


def _service_request() -> dict[str, Any]:
    request_id = {"allOf": [_ref("Token"), _canonical(CareServiceRequest, "request_id")]}
    return _resource(
        "ServiceRequest",
        "A request for a nurse visit, telemedicine or a vaccination, or the trust's update of one the gateway "
        "sent (care.service-request, F4): coded only, no note or patientInstruction. The request id is the "
        f"identifier in {CARE_REQUEST_SYSTEM} (the one the gateway sent), else the id.",
        {
            "id": _record_id(CareServiceRequest, "request_id"),
            "meta": _ref("Meta"),
            "status": {"enum": list(_REQUEST_STATUSES)},
            "intent": {"enum": list(_REQUEST_INTENTS)},
            "priority": {"enum": list(_REQUEST_PRIORITIES)},
            "category": {"type": "array", "contains": _concept_with(
                _coding(CARE_REQUEST_CATEGORY_SYSTEM, _codes("care_request_categories")),
                "the request category (code list care_request_categories)")},
            "code": _concept_with(_coding(CARE_SERVICE_SYSTEM, _codes("care_services")),
                                  "the requested service (code list care_services)"),
            "subject": _ref("PersonReference"),
            "occurrenceDateTime": _ref("Day"),
            "occurrencePeriod": {"type": "object", "properties": {"start": _ref("Day"), "end": _ref("Day")}},
            "occurrenceTiming": {"not": {}, "description": "give occurrenceDateTime or occurrencePeriod"},
            "requester": {"type": "object", "required": ["identifier"], "properties": {"identifier": {
                "required": ["system", "value"],
                "properties": {"system": {"const": ORGANISATION_SYSTEM}, "value": _ref("Organisation")}}},
                "description": "the requesting organisation, by Reference.identifier"},
            "authoredOn": _ref("Day"),
            "note": {"type": "array", "maxItems": 0, "description": "notes are not accepted: codes only"},
            "patientInstruction": {"not": {}, "description": "free-text instructions are not accepted"},
            "orderDetail": {"type": "array", "items": _logistics_detail()},
            "extension": {"type": "array", "items": {"allOf": _logistics_extensions(False)}},
        },
        ["status", "intent", "subject", "category", "code", "requester"],
        [*_IDENTIFIER_RULES, _first_identifier(CARE_REQUEST_SYSTEM, request_id),
         {"anyOf": [_has_identifier(CARE_REQUEST_SYSTEM), {"required": ["id"]}],
          "description": f"a request id: an identifier in {CARE_REQUEST_SYSTEM}, else the id"},
         _when("authoredOn")],
    )


def _consent() -> dict[str, Any]:
    organisation = {"required": ["code"], "properties": {"code": _ref("Organisation")}}
    actor_identifier = {"required": ["reference"], "properties": {"reference": {
        "required": ["identifier"], "properties": {"identifier": _system_is(ORGANISATION_SYSTEM)}}}}
    actor_valid = {"properties": {"reference": {"properties": {"identifier": {
        "required": ["value"], "properties": {"value": _ref("Organisation")}}}}}}
    return _resource(
        "Consent",
        "A consent given or refused (consent.record, for the consent registry): provision.type, at least one "
        "purpose of the purpose vocabulary, the recipient organisations as actors.",
        {
            "id": _record_id(RecordedConsent, "consent_id"),
            "meta": _ref("Meta"),
            "status": {"enum": list(_CONSENT_STATUSES)},
            "patient": _ref("PersonReference"),
            "dateTime": _ref("Day"),
            "provision": {"type": "object", "required": ["type", "purpose"], "properties": {
                "type": {"enum": ["permit", "deny"]},
                "purpose": {"type": "array", "contains": {**organisation, **_system_is(PURPOSE_SYSTEM),
                                                          "required": ["system", "code"]},
                            "items": _if_system(PURPOSE_SYSTEM, organisation)},
                "actor": {"type": "array", "items": {"if": actor_identifier, "then": actor_valid}},
                "period": {"type": "object", "properties": {"start": _ref("Day"), "end": _ref("Day")}},
            }},
        },
        ["status", "patient", "provision"],
        [*_IDENTIFIER_RULES, _when("dateTime")],
    )


def _entry_message_identity() -> dict[str, Any]:
    """Outside documents: a message resource's entry gives a urn:uuid fullUrl, or the resource its identity."""
    is_message = {"required": ["resource"], "properties": {"resource": {
        "required": ["resourceType"], "properties": {"resourceType": {"enum": sorted(_MESSAGE_RESOURCES)}}}}}
    return {"if": is_message, "then": {"anyOf": [
        {"required": ["fullUrl"], "properties": {"fullUrl": {
            "type": "string", "pattern": anchored("(?=urn:uuid:)" + _TOKEN.pattern)}}},
        {"properties": {"resource": _ref("MessageIdentity")}},
    ]}}


def _bundle_entry() -> dict[str, Any]:
    messages = sorted(_MESSAGE_RESOURCES)
    elements = sorted({f.alias or n for n, f in BundleEntry.model_fields.items()} - {"fhir_comments"})
    return {
        "type": "object",
        "description": "An entry: a message resource (Encounter, Immunization, ServiceRequest, Consent) or a "
                       "Patient, Condition, Organization, Practitioner, PractitionerRole or Location one refers "
                       "to, created or updated (POST or PUT); to cancel, update the resource with status "
                       "entered-in-error. A document Bundle also carries its Composition and may carry other "
                       "sections, which stay in the document.",
        "required": ["resource"],
        "properties": {element: {} for element in elements} | {
            "request": {"type": "object", "properties": {"method": {"enum": ["POST", "PUT"]}}},
            "resource": {"anyOf": [_ref(name) for name in [*messages, *sorted(_CONTEXT_RESOURCES), "Composition",
                                                            "OtherResource"]]},
        },
        "additionalProperties": False,
    }


def _bundle() -> dict[str, Any]:
    messages = sorted(_MESSAGE_RESOURCES)
    carried = sorted([*messages, *_CONTEXT_RESOURCES])
    document = {"required": ["type"], "properties": {"type": {"const": "document"}}}
    return _resource(
        "Bundle",
        f"A Bundle of type {', '.join(BUNDLE_TYPES)} carrying at least one message resource, with the Patient "
        "(and Condition, Organization, Practitioner, PractitionerRole, Location) resources they refer to; at most "
        f"{MAX_BUNDLE_ENTRIES} entries. A document Bundle (FSE 2.0) starts with its Composition, whose subject "
        "is the one Patient every message resource in it is about, and names the document in identifier; its "
        "other sections stay in the document. It is accepted or refused as a whole.",
        {
            "type": {"enum": list(BUNDLE_TYPES)},
            "meta": _ref("Meta"),
            "entry": {"type": "array", "maxItems": MAX_BUNDLE_ENTRIES, "items": _ref("BundleEntry"),
                      "contains": {"required": ["resource"], "properties": {"resource": {
                          "required": ["resourceType"], "properties": {"resourceType": {"enum": messages}}}}}},
        },
        ["type", "entry"],
        [{"if": {"required": ["type"], "properties": {"type": {"enum": ["transaction", "batch"]}}},
          "then": {"properties": {"entry": {"items": {"required": ["request"]}}}},
          "description": "a transaction or batch entry needs request (POST or PUT)"},
         {"if": document,
          "then": {"required": ["identifier"],
                   "properties": {"identifier": {"type": "object", "required": ["value"]},
                                  "entry": {"prefixItems": [{"required": ["resource"], "properties": {"resource": {
                                      "required": ["resourceType"],
                                      "properties": {"resourceType": {"const": "Composition"}}}}}]}}},
          "else": {"properties": {"entry": {"items": {
              "properties": {"resource": {"properties": {"resourceType": {"enum": carried}}}},
              "allOf": [_entry_message_identity()]}}}},
          "description": "a document starts with its Composition and names itself in identifier (the message "
                         "ids of its resources derive from it); other Bundles carry message resources and the "
                         "resources they refer to only, each message resource with a urn:uuid fullUrl or its own "
                         "identity"}],
    )


@cache
def _all_definitions() -> dict[str, Any]:
    return _definitions()


def inbound_schema(resource: str) -> dict[str, Any]:
    """The JSON Schema (without ``$schema`` and ``$id``) of ``resource`` as the trust sends it: a message
    resource on its own (Encounter, Immunization, ServiceRequest, Consent), a Bundle, or a Patient (as a Bundle
    carries one)."""
    if resource not in INBOUND_RESOURCES:
        raise ValueError(f"no inbound schema for {resource}")
    definitions = _all_definitions()
    body: dict[str, Any] = {"$ref": f"#/$defs/{resource}"}
    if resource in _MESSAGE_RESOURCES:
        body = {"allOf": [body, _ref("MessageIdentity")]}
    return {
        "title": f"FHIR R4 {resource} from the hospital trust",
        "description": f"{definitions[resource]['description']} {_CAVEAT}",
        **body,
        "$defs": _reachable(body, definitions),
    }


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"].removeprefix("#/$defs/")} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(_refs(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(value) for value in node))
    return set()


def _reachable(body: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    """The definitions ``body`` refers to, directly or through others."""
    wanted: set[str] = set()
    pending = _refs(body)
    while pending:
        name = pending.pop()
        if name not in wanted:
            wanted.add(name)
            pending |= _refs(definitions[name])
    return {name: definitions[name] for name in sorted(wanted)}


def _sent_concept(system: str, codelist: str) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "required": ["coding"], "properties": {"coding": {
        "type": "array", "minItems": 1, "maxItems": 1, "items": {
            "type": "object", "additionalProperties": False, "required": ["system", "code", "display"],
            "properties": {"system": {"const": system}, "code": {"enum": _codes(codelist)},
                           "display": {"type": "string", "description": "the Italian label of the code"}}}}}}


def _sent_coding(system: str, code: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "required": ["system", "code"],
            "properties": {"system": {"const": system}, "code": code}}


def _sent_identifier(system: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "required": ["system", "value"],
            "properties": {"system": {"const": system}, "value": value}}


def _sent_reference(kind: str, *identifiers: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "required": ["type", "identifier"],
            "properties": {"type": {"const": kind}, "identifier": {"anyOf": list(identifiers)}
                           if len(identifiers) > 1 else identifiers[0]}}


@cache
def outbound_service_request_schema() -> dict[str, Any]:
    """The JSON Schema (without ``$schema`` and ``$id``) of the ServiceRequest the gateway sends the trust."""
    day = {"type": "string", "pattern": anchored("[0-9]{4}-[0-9]{2}-[0-9]{2}"), "format": "date"}
    person = {"type": "string", "pattern": anchored(person_code())}
    security = [
        _sent_coding(CONFIDENTIALITY_SYSTEM, {"enum": sorted(_CONFIDENTIALITY_LABELS)}),
        _sent_coding(ACT_CODE_SYSTEM, {"enum": sorted(_SENSITIVITY_LABELS)}),
        _sent_coding(OBLIGATION_SYSTEM, {"type": "string", "minLength": 1}),
        _sent_coding(REFRAIN_SYSTEM, {"type": "string", "minLength": 1}),
    ]
    logistics = [(system, codelist) for system, codelist in _SINGLE_CODES.values()]
    logistics.append((HOME_ACCESS_NOTE_SYSTEM, "home_access_notes"))
    identifiers: dict[str, dict[str, Any]] = {
        CARE_REQUEST_SYSTEM: {"allOf": [_ref("Token"), _canonical(CareServiceRequest, "request_id")]},
        MESSAGE_SYSTEM: _ref("Token"),
        CORRELATION_SYSTEM: _ref("Token"),
    }
    schema: dict[str, Any] = {
        "title": "FHIR R4 ServiceRequest the gateway sends the hospital trust",
        "description": (
            "A care request (care.service-request, flow F4) as the trust receives it: minimised for the trust, "
            "coded only, no id (the trust's server assigns its own). The identifiers carry the request id "
            f"({CARE_REQUEST_SYSTEM}: the requester's id or the crosswalk token standing for it), the gateway's "
            f"message id ({MESSAGE_SYSTEM}) and the correlation id ({CORRELATION_SYSTEM}); quote them back in "
            "updates. The person is identified by codice fiscale or, without one, STP/ENI code, never by a "
            "pseudonym. meta.security carries the record's HL7 labels and the obligations and refrains the "
            "trust must honour; supportingInfo the consent the disclosure rests on, when it rests on one. The "
            "trust's updates of the request come back in the inbound ServiceRequest format."
        ),
        "type": "object",
        "additionalProperties": False,
        "required": ["resourceType", "identifier", "status", "intent", "category", "code", "subject", "requester"],
        "properties": {
            "resourceType": {"const": "ServiceRequest"},
            "text": {"type": "object", "additionalProperties": False, "required": ["status", "div"],
                     "description": "generated narrative: the category, service, status and priority, as "
                                    "Italian labels and codes; never the person",
                     "properties": {"status": {"const": "generated"},
                                    "div": {"type": "string", "pattern": "^<div xmlns=\"http://www.w3.org/1999/xhtml\">"}}},
            "meta": {"type": "object", "additionalProperties": False, "properties": {
                "lastUpdated": _ref("Instant"),
                "tag": {"type": "array", "maxItems": 1, "items": _sent_coding(PURPOSE_SYSTEM, _ref("Organisation"))},
                "security": {"type": "array", "items": {"anyOf": security}},
            }},
            "identifier": {"type": "array", "minItems": 3, "maxItems": 3,
                           "items": {"anyOf": [_sent_identifier(s, v) for s, v in identifiers.items()]},
                           "allOf": [{"contains": _sent_identifier(s, v)} for s, v in identifiers.items()]},
            "status": {"enum": list(_REQUEST_STATUSES)},
            "intent": {"enum": list(_REQUEST_INTENTS)},
            "priority": {"enum": list(_REQUEST_PRIORITIES)},
            "category": {"type": "array", "minItems": 1, "maxItems": 1,
                         "items": _sent_concept(CARE_REQUEST_CATEGORY_SYSTEM, "care_request_categories")},
            "code": _sent_concept(CARE_SERVICE_SYSTEM, "care_services"),
            "subject": _sent_reference("Patient", _sent_identifier(PREFERRED_CF_SYSTEM, person),
                                       _sent_identifier(STP_ENI_SYSTEM, person)),
            "occurrenceDateTime": {**day, "description": "the one day the service is wanted"},
            "occurrencePeriod": {"type": "object", "additionalProperties": False, "minProperties": 1,
                                 "properties": {"start": day, "end": day}},
            "requester": _sent_reference("Organization", _sent_identifier(ORGANISATION_SYSTEM, _ref("Organisation"))),
            "authoredOn": _ref("DateTime"),
            "supportingInfo": {"type": "array", "minItems": 1, "maxItems": 1, "items": _sent_reference(
                "Consent", _sent_identifier(CONSENT_SYSTEM, {"type": "string", "minLength": 1}))},
            "orderDetail": {"type": "array", "minItems": 1,
                            "items": {"anyOf": [_sent_concept(s, c) for s, c in sorted(logistics)]}},
            "extension": {"type": "array", "minItems": 1, "items": {"anyOf": [
                {**rule, "type": "object", "additionalProperties": False} for rule in _logistics_extensions(True)]}},
        },
        "not": {"required": ["occurrenceDateTime", "occurrencePeriod"]},
        "externalDocs": {"url": f"{_FHIR_R4}servicerequest.html", "description": "HL7 FHIR R4 ServiceRequest"},
    }
    return {**schema, "$defs": _reachable(schema, _all_definitions())}
