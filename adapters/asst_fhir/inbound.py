"""FHIR R4 resources from the hospital trust -> canonical care envelopes (pure translation, no I/O).

Accepted: one Encounter, Immunization, ServiceRequest or Consent, or a Bundle of type ``transaction``, ``batch`` or
``collection`` whose entries are those resources plus the Patient, Condition, Organization, Practitioner,
PractitionerRole and Location resources they refer to, or an FSE 2.0 ``document`` Bundle: its Composition first,
whose subject is the one Patient every message resource in it must be about; the message resources are taken out of
it (each named ``fse-<digest of the document identifier, type and id>``, so the same document sent again is a
replay) and its other sections stay in the document. Each message resource becomes one envelope; a Bundle is
accepted or rejected as a whole, with every problem listed at once (JSON pointers into the document the sender
posted, e.g. ``/entry/2/resource/vaccineCode``). Structure is checked by the ``fhir.resources`` R4B models; the
code bindings the flows rely on, which those models do not enforce, are checked here.

Translation rules (see :mod:`adapters.asst_fhir.systems` for every URI):

* Message type: Encounter with class VR / HH / AMB -> ``care.encounter``; a finished inpatient Encounter
  (IMP, ACUTE, NONAC, SS) whose ``hospitalization.dischargeDisposition`` is ``protected-discharge`` ->
  ``care.discharge-notice``; Immunization -> ``care.immunization``; ServiceRequest -> ``care.service-request``;
  Consent -> ``consent.record``.
* Subject: ``subject`` (``patient`` on Immunization and Consent) must lead to a codice fiscale, STP or ENI
  code: through ``Reference.identifier``, or a reference to a Patient in the Bundle (``urn:uuid:...`` full
  URL, ``Patient/123``, or an absolute URL) or contained in the resource (``#id``). A resource sent on its own
  with only a literal reference is told to come in a Bundle with its Patient, or to name the person by
  identifier.
* Vaccine: the ``vaccineCode`` coding that names a recognised vaccine (ATC J07*, AIC of list
  ``aic_vaccines``, SNOMED CT of list ``vaccine_codes``, CVX; :mod:`schemas.vaccines`) with its vaccine group,
  the most specific group first; other codings (ICD-11, local codes) may come along. The trust's patient id
  comes along when present. Codici fiscali are validated and given as issued, upper case.
* Message id: an ``identifier`` in ``MESSAGE_SYSTEM`` when present; else ``<type>:<id>:<meta.versionId>``
  (e.g. ``Encounter:enc-1:3``: each version of a record is a new message, a replayed version is not); else,
  in a Bundle, the entry's ``urn:uuid:`` full URL. Anything else is refused: a replay could not be recognised.
* Correlation id: an ``identifier`` in ``CORRELATION_SYSTEM``, else the message id.
* Purpose and recipients: ``meta.tag`` in ``PURPOSE_SYSTEM`` (at most one) and ``ORGANISATION_SYSTEM``; in a
  Bundle the Bundle's own tags apply to entries that have none.
* Sensitivity: ``S3`` (health data, GDPR art. 9) plus the HL7 labels of ``meta.security`` (the Bundle's labels
  apply to every entry); psychological support always adds ``PSY`` and ``R``. Masked records ("oscurato") are
  flagged ``masked_at_source``.
* Occurred at: ``meta.lastUpdated``; else the resource's own time (encounter start, vaccination day, request
  authored, consent given; a day without a time is midnight UTC).
* Record ids: the resource ``id``; for a ServiceRequest, the ``identifier`` in ``CARE_REQUEST_SYSTEM`` when
  present (the id the gateway sent the request with), else the ``id``.
* Free text never enters a payload: reason text and displays are dropped, ``ServiceRequest.note`` and
  ``patientInstruction`` are refused. Clinical codes (reasons, diagnoses from Condition resources the
  Encounter refers to) are kept apart so minimisation can strip them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Final

from fhir.resources.R4B import fhirtypes
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.consent import Consent
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.immunization import Immunization
from fhir.resources.R4B.servicerequest import ServiceRequest
from pydantic import BaseModel, ValidationError

from adapters._json import load_json_object
from adapters.asst_fhir.logistics import logistics_from_fhir
from adapters.asst_fhir.systems import (
    ACT_CODE_SYSTEM,
    ASST_PATIENT_SYSTEM,
    CARE_NEED_SYSTEM,
    CARE_REQUEST_CATEGORY_SYSTEM,
    CARE_REQUEST_SYSTEM,
    CARE_SERVICE_SYSTEM,
    CF_SYSTEMS,
    CONFIDENTIALITY_SYSTEM,
    CORRELATION_SYSTEM,
    DISCHARGE_LOGISTICS_SYSTEM,
    DISCHARGE_PATHWAY_SYSTEM,
    MASKED_CODES,
    MESSAGE_SYSTEM,
    ORGANISATION_SYSTEM,
    PURPOSE_SYSTEM,
    QUARTIERE_SYSTEM,
    STP_ENI_SYSTEM,
    UCUM_SYSTEM,
)
from gateway.identity.codice_fiscale import InvalidPersonIdentifier, classify, validate
from schemas.codelists import load_codelist
from schemas.envelope import Envelope, Identifier, SubjectRef
from schemas.errors import DecodeError, FieldProblem, problems_from_validation
from schemas.health import HEALTH_MESSAGE_TYPES, PSYCHOLOGICAL_SUPPORT, PSYCHOLOGICAL_SUPPORT_LABELS
from schemas.vaccines import AIC_SYSTEM, ATC_SYSTEM, CVX_SYSTEM, SNOMED_SYSTEM, VACCINE_SYSTEMS, vaccine_group

__all__ = ["BUNDLE_TYPES", "FHIR_CONTENT_TYPES", "MAX_BUNDLE_ENTRIES", "SENDER", "decode"]

FHIR_CONTENT_TYPES: Final = ("application/fhir+json", "application/json")
SENDER: Final = "asst"
BUNDLE_TYPES: Final = ("transaction", "batch", "collection", "document")
MAX_BUNDLE_ENTRIES: Final = 1000
"""Largest Bundle accepted; backfills send many Bundles, not one huge one."""

_MESSAGE_RESOURCES: Final[dict[str, type[Any]]] = {
    "Encounter": Encounter,
    "Immunization": Immunization,
    "ServiceRequest": ServiceRequest,
    "Consent": Consent,
}
_CONTEXT_RESOURCES: Final = frozenset({"Patient", "Condition", "Organization", "Practitioner", "PractitionerRole",
                                       "Location"})
"""Resources a Bundle may carry for its message resources to refer to: read (the Patient's identifiers, a
Condition's codes) or passed over (who gave the vaccine, where), never forwarded."""
_DOCUMENT: Final = "document"

_ENCOUNTER_STATUSES: Final = (
    "planned", "arrived", "triaged", "in-progress", "onleave", "finished", "cancelled", "entered-in-error", "unknown",
)
_IMMUNIZATION_STATUSES: Final = ("completed", "entered-in-error", "not-done")
_REQUEST_STATUSES: Final = ("draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown")
_REQUEST_INTENTS: Final = (
    "proposal", "plan", "directive", "order", "original-order", "reflex-order", "filler-order", "instance-order",
    "option",
)
_REQUEST_PRIORITIES: Final = ("routine", "urgent", "asap", "stat")
_CONSENT_STATUSES: Final = ("draft", "proposed", "active", "rejected", "inactive", "entered-in-error")
_INPATIENT_CLASSES: Final = frozenset({"IMP", "ACUTE", "NONAC", "SS"})
_PROTECTED_DISCHARGE: Final = "protected-discharge"
_CONFIDENTIALITY_LABELS: Final = frozenset({"N", "R", "V"})
_SENSITIVITY_LABELS: Final = frozenset({"PSY", "MH", "SDV", "HIV", "ETH"})
_MINUTES_PER_UNIT: Final = {"min": 1, "h": 60}
_MAX_MINUTES: Final = 525_600
_TOKEN: Final = re.compile(r"[A-Za-z0-9._:@\-]{1,128}")
_ORGANISATION: Final = re.compile(r"[a-z0-9][a-z0-9\-]{0,63}")
_SEASON: Final = re.compile(r"(\d{4})-(\d{4})")
_RESOURCE_NAME: Final = re.compile(r"[A-Z][A-Za-z]{0,63}")
_RELATIVE_REFERENCE: Final = re.compile(
    r"(?:.*/)?([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?"
)

_FIELD_POINTERS: Final[dict[str, dict[str, str]]] = {
    "care.encounter": {
        "encounter_id": "/id", "status": "/status", "class_code": "/class/code", "service_type": "/serviceType",
        "period_start": "/period/start", "period_end": "/period/end", "length_minutes": "/length",
        "quartiere": "/location", "reason_codes": "/reasonCode", "diagnosis_codes": "/diagnosis",
    },
    "care.discharge-notice": {
        "encounter_id": "/id", "discharge_date": "/period/end", "care_needs": "/hospitalization/specialArrangement",
        "logistics": "/hospitalization/specialArrangement",
    },
    "care.immunization": {
        "immunization_id": "/id", "status": "/status", "vaccine": "/vaccineCode",
        "occurred_on": "/occurrenceDateTime", "lot_number": "/lotNumber", "season": "/protocolApplied",
        "quartiere": "/location",
    },
    "care.service-request": {
        "request_id": "/identifier", "status": "/status", "intent": "/intent", "priority": "/priority",
        "category": "/category", "service": "/code", "requested_from": "/occurrencePeriod/start",
        "requested_until": "/occurrencePeriod/end", "requester": "/requester", "authored_on": "/authoredOn",
    },
    "consent.record": {
        "consent_id": "/id", "status": "/status", "provision_type": "/provision/type",
        "purposes": "/provision/purpose", "actors": "/provision/actor", "period_start": "/provision/period/start",
        "period_end": "/provision/period/end", "recorded_at": "/dateTime",
    },
}
"""Where, in the FHIR resource, each canonical field comes from: locates the rare problem only the canonical
model catches."""


# --- problems ------------------------------------------------------------------------------------------------


class _Problems(list[FieldProblem]):
    def add(self, pointer: str, rule: str, message: str) -> None:
        self.append(FieldProblem(pointer, rule, message))


def _raise(problems: list[FieldProblem]) -> None:
    if problems:  # a shared resource (one Location for two Immunizations) is reported once
        raise DecodeError("contract", "the FHIR content does not meet the gateway's care contract",
                          list(dict.fromkeys(problems)))


# --- where resources are -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Located:
    resource: Any
    """A validated fhir.resources model."""
    pointer: str
    """JSON pointer of the resource in the posted document ("" for a single resource)."""
    full_url: str | None = None


@dataclass(slots=True)
class _Index:
    """The Bundle's resources, to resolve references by full URL or by type and id."""

    by_url: dict[str, _Located] = field(default_factory=dict)
    by_type_id: dict[tuple[str, str], _Located] = field(default_factory=dict)
    in_bundle: bool = False
    """False for a resource sent on its own: a literal reference then has nothing to resolve against."""

    def add(self, located: _Located) -> None:
        if located.full_url:
            self.by_url.setdefault(located.full_url, located)
        rid = located.resource.id
        if rid:
            self.by_type_id.setdefault((located.resource.get_resource_type(), str(rid)), located)

    def resolve(self, reference: str | None, owner: _Located, resource_type: str) -> _Located | None:
        """The ``resource_type`` resource ``reference`` points to, contained in ``owner`` or in the Bundle."""
        if not reference:
            return None
        found: _Located | None = None
        if reference.startswith("#"):
            for k, item in enumerate(owner.resource.contained or []):
                if item.id == reference[1:]:
                    found = _Located(item, f"{owner.pointer}/contained/{k}")
                    break
        elif reference in self.by_url:
            found = self.by_url[reference]
        else:
            match = _RELATIVE_REFERENCE.fullmatch(reference)
            if match:
                found = self.by_type_id.get((match.group(1), match.group(2)))
        if found is None or found.resource.get_resource_type() != resource_type:
            return None
        return found


@dataclass(frozen=True, slots=True)
class _Meta:
    """What ``meta`` says: labels, masking, purpose and recipients."""

    labels: frozenset[str] = frozenset()
    masked: bool = False
    purpose: str | None = None
    recipients: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Draft:
    """A translated resource, before the envelope: message type, payload and what the header needs."""

    message_type: str
    payload: dict[str, Any]
    subject: tuple[Identifier, ...]
    when: datetime | None
    forced_labels: tuple[str, ...] = ()


# --- small readers -------------------------------------------------------------------------------------------


def _codings(concept: Any) -> list[Any]:
    return list(concept.coding or []) if concept is not None else []


def _first_code(
    concept: Any, pointer: str, system: str, codelist: str, what: str, problems: _Problems, *, required: bool = True
) -> str | None:
    """The first code of ``concept`` in ``system`` that list ``codelist`` knows; a problem when there is none."""
    codes = load_codelist(codelist)
    for j, coding in enumerate(_codings(concept)):
        if coding.system == system:
            if coding.code in codes:
                return str(coding.code)
            allowed = ", ".join(codes.labels_it)
            problems.add(f"{pointer}/coding/{j}/code", "binding", f"{what} must be one of: {allowed}")
            return None
    if required:
        problems.add(pointer, "required", f"code the {what} in system {system}")
    return None


def _when(value: Any, pointer: str, problems: _Problems, *, need_time: bool = False) -> datetime | None:
    """A FHIR dateTime as an aware datetime; a bare day is midnight UTC unless ``need_time``."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            problems.add(pointer, "timezone", "give the time with a UTC offset")
            return None
        return value
    if isinstance(value, date) and not need_time:
        return datetime.combine(value, time(0), UTC)
    problems.add(pointer, "precision", "give the date and time with a UTC offset" if need_time
                 else "give at least a full date (YYYY-MM-DD)")
    return None


def _day(value: Any, pointer: str, problems: _Problems) -> date | None:
    """A FHIR date or dateTime as the calendar day it names (in its own UTC offset)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if value is not None:
        problems.add(pointer, "precision", "give at least a full date (YYYY-MM-DD)")
    return None


def _identifier_value(resource: Any, system: str, pointer: str, problems: _Problems) -> str | None:
    """The value of the resource's ``identifier`` in ``system``, checked as an opaque token."""
    for k, ident in enumerate(resource.identifier or []):
        if ident.system == system and ident.value is not None:
            if not _TOKEN.fullmatch(ident.value):
                problems.add(f"{pointer}/identifier/{k}/value", "token",
                             "use 1-128 letters, digits and . _ : @ - only")
                return None
            return str(ident.value)
    return None


def _organisation(value: Any, pointer: str, problems: _Problems) -> str | None:
    if isinstance(value, str) and _ORGANISATION.fullmatch(value):
        return value
    problems.add(pointer, "organisation", "use a partner organisation code (lower case letters, digits, -)")
    return None


def _read_meta(meta: Any, pointer: str, problems: _Problems) -> _Meta:
    if meta is None:
        return _Meta()
    labels: set[str] = set()
    masked = False
    for coding in meta.security or []:
        pair = (coding.system, coding.code)
        if pair in MASKED_CODES:
            masked = True
        elif (coding.system == CONFIDENTIALITY_SYSTEM and coding.code in _CONFIDENTIALITY_LABELS) or (
            coding.system == ACT_CODE_SYSTEM and coding.code in _SENSITIVITY_LABELS
        ):
            labels.add(str(coding.code))
    purposes: list[str] = []
    recipients: list[str] = []
    for k, coding in enumerate(meta.tag or []):
        tag_pointer = f"{pointer}/meta/tag/{k}/code"
        if coding.system == PURPOSE_SYSTEM:
            if not isinstance(coding.code, str) or not _ORGANISATION.fullmatch(coding.code):
                problems.add(tag_pointer, "purpose", "use a purpose code of the purpose vocabulary")
            elif coding.code not in purposes:
                purposes.append(coding.code)
                if len(purposes) > 1:
                    problems.add(tag_pointer, "purpose", "tag one purpose per resource")
        elif coding.system == ORGANISATION_SYSTEM:
            code = _organisation(coding.code, tag_pointer, problems)
            if code and code not in recipients:
                recipients.append(code)
    return _Meta(frozenset(labels), masked, purposes[0] if purposes else None, tuple(recipients))


# --- the person ----------------------------------------------------------------------------------------------

_PERSON_HINT: Final = (
    "identify the person by codice fiscale (system http://hl7.it/sid/codiceFiscale or "
    f"urn:oid:2.16.840.1.113883.2.9.4.3.2), STP or ENI code (system {STP_ENI_SYSTEM}): in Reference.identifier, "
    "or in a Patient in the Bundle or contained in the resource"
)


def _person_identifier(ident: Any, pointer: str, problems: _Problems) -> Identifier | None:
    if ident is None or not isinstance(ident.value, str):
        return None
    if ident.system in CF_SYSTEMS or ident.system == STP_ENI_SYSTEM:
        try:
            kind = classify(ident.value)
        except InvalidPersonIdentifier as exc:
            problems.add(f"{pointer}/value", "person-identifier", f"not a valid codice fiscale, STP or ENI code: "
                                                                 f"{exc.reason}")
            return None
        value = validate(ident.value) if kind == "cf" else ident.value.strip().upper()
        return Identifier(system=kind, value=value)
    if ident.system == ASST_PATIENT_SYSTEM:
        if not 1 <= len(ident.value) <= 64:
            problems.add(f"{pointer}/value", "asst-patient", "the trust's patient id must have 1-64 characters")
            return None
        return Identifier(system="asst-patient", value=ident.value)
    return None


def _subject(reference: Any, pointer: str, owner: _Located, index: _Index, problems: _Problems
             ) -> tuple[Identifier, ...]:
    """Every identifier of the person ``reference`` leads to; a problem at ``pointer`` without CF/STP/ENI."""
    before = len(problems)
    found: dict[tuple[str, str], Identifier] = {}
    if reference is not None:
        direct = _person_identifier(reference.identifier, f"{pointer}/identifier", problems)
        if direct:
            found[(direct.system, direct.value)] = direct
        patient = index.resolve(reference.reference, owner, "Patient")
        if patient is not None:
            for k, ident in enumerate(patient.resource.identifier or []):
                item = _person_identifier(ident, f"{patient.pointer}/identifier/{k}", problems)
                if item:
                    found.setdefault((item.system, item.value), item)
    if len(problems) == before and not any(i.system in ("cf", "stp", "eni") for i in found.values()):
        literal = reference.reference if reference is not None else None
        if literal and not literal.startswith("#") and not index.in_bundle:
            problems.add(pointer, "person-identifier",
                         f"{literal[:80]} cannot be resolved in a resource sent on its own: send the resource in "
                         "a Bundle (document, transaction, batch or collection) together with that Patient, "
                         "or give the person's codice fiscale, STP or ENI code in Reference.identifier "
                         "(system http://hl7.it/sid/codiceFiscale)")
        else:
            problems.add(pointer, "person-identifier", _PERSON_HINT)
    return tuple(found.values())


# --- per resource --------------------------------------------------------------------------------------------


def _require_id(resource: Any, pointer: str, problems: _Problems) -> None:
    if not resource.id:
        problems.add(f"{pointer}/id", "required", "give the resource id the trust's system assigned")


def _check_status(value: Any, allowed: tuple[str, ...], pointer: str, what: str, problems: _Problems) -> None:
    if value not in allowed:
        problems.add(pointer, "binding", f"{what} must be one of: {', '.join(allowed)}")


def _encounter(located: _Located, index: _Index, problems: _Problems) -> _Draft:
    res, p = located.resource, located.pointer
    _require_id(res, p, problems)
    _check_status(res.status, _ENCOUNTER_STATUSES, f"{p}/status", "Encounter.status", problems)
    klass = res.class_fhir
    class_code = klass.code if klass is not None else None
    if klass is None:
        problems.add(f"{p}/class", "required", "give the encounter class (VR, HH or AMB)")
    elif klass.system != ACT_CODE_SYSTEM:
        problems.add(f"{p}/class/system", "binding", f"code the class in system {ACT_CODE_SYSTEM}")
    subject = _subject(res.subject, f"{p}/subject", located, index, problems)
    if class_code in _INPATIENT_CLASSES and _is_protected_discharge(res):
        return _discharge(located, subject, problems)
    if klass is not None and class_code not in load_codelist("encounter_classes"):
        problems.add(f"{p}/class/code", "binding",
                     "the care flows accept class VR (telemedicine), HH (home nursing) or AMB (local clinic); an "
                     "inpatient stay is accepted only as a protected discharge: finished, with "
                     f"hospitalization.dischargeDisposition {_PROTECTED_DISCHARGE} in system "
                     f"{DISCHARGE_PATHWAY_SYSTEM}")
    service = _first_code(res.serviceType, f"{p}/serviceType", CARE_SERVICE_SYSTEM, "care_services",
                          "service type", problems)
    start = end = None
    if res.period is None or res.period.start is None:
        problems.add(f"{p}/period/start", "required", "give when the visit starts (date and time with UTC offset)")
    else:
        start = _when(res.period.start, f"{p}/period/start", problems, need_time=True)
        end = _when(res.period.end, f"{p}/period/end", problems, need_time=True)
        if start and end and end < start:
            problems.add(f"{p}/period/end", "period", "the visit cannot end before it starts")
    minutes = _length_minutes(res.length, f"{p}/length", problems)
    if minutes is None and start and end and end >= start:
        minutes = min(int((end - start).total_seconds() // 60), _MAX_MINUTES)
    payload: dict[str, Any] = {
        "encounter_id": res.id,
        "status": res.status,
        "class_code": class_code,
        "service_type": service,
        "period_start": start,
        "period_end": end,
        "length_minutes": minutes,
        "quartiere": _quartiere(located, index, problems),
        "reason_codes": _clinical_codes(res.reasonCode or []),
        "diagnosis_codes": _diagnosis_codes(located, index),
    }
    forced = PSYCHOLOGICAL_SUPPORT_LABELS if service == PSYCHOLOGICAL_SUPPORT else ()
    return _Draft("care.encounter", payload, subject, start, forced)


def _is_protected_discharge(res: Any) -> bool:
    stay = res.hospitalization
    return stay is not None and any(
        c.system == DISCHARGE_PATHWAY_SYSTEM and c.code == _PROTECTED_DISCHARGE
        for c in _codings(stay.dischargeDisposition)
    )


def _discharge(located: _Located, subject: tuple[Identifier, ...], problems: _Problems) -> _Draft:
    res, p = located.resource, located.pointer
    if res.status in _ENCOUNTER_STATUSES and res.status != "finished":
        problems.add(f"{p}/status", "binding", "send a protected discharge when the stay is finished")
    discharged: date | None = None
    if res.period is None or res.period.end is None:
        problems.add(f"{p}/period/end", "required", "give the discharge date as the end of the stay")
    else:
        discharged = _day(res.period.end, f"{p}/period/end", problems)
    needs: set[str] = set()
    logistics: set[str] = set()
    wanted = {CARE_NEED_SYSTEM: ("care_needs", needs), DISCHARGE_LOGISTICS_SYSTEM: ("discharge_logistics", logistics)}
    for k, concept in enumerate(res.hospitalization.specialArrangement or []):
        for j, coding in enumerate(_codings(concept)):
            if coding.system in wanted:
                name, into = wanted[coding.system]
                codes = load_codelist(name)
                if coding.code in codes:
                    into.add(str(coding.code))
                else:
                    problems.add(f"{p}/hospitalization/specialArrangement/{k}/coding/{j}/code", "binding",
                                 f"must be one of: {', '.join(codes.labels_it)}")
    payload: dict[str, Any] = {
        "encounter_id": res.id,
        "discharge_date": discharged,
        "care_needs": sorted(needs),
        "logistics": sorted(logistics),
    }
    end = res.period.end if res.period is not None else None
    when = _when(end, f"{p}/period/end", _Problems()) if end is not None else None
    return _Draft("care.discharge-notice", payload, subject, when)


def _length_minutes(length: Any, pointer: str, problems: _Problems) -> int | None:
    if length is None:
        return None
    if length.system not in (None, UCUM_SYSTEM):
        problems.add(f"{pointer}/system", "binding", f"give the length in UCUM ({UCUM_SYSTEM})")
        return None
    if length.code not in _MINUTES_PER_UNIT or length.value is None:
        problems.add(f"{pointer}/code", "binding", "give the length as a value in UCUM min or h")
        return None
    try:
        minutes = (Decimal(length.value) * _MINUTES_PER_UNIT[length.code]).to_integral_value(ROUND_HALF_UP)
    except (InvalidOperation, ValueError):
        minutes = Decimal(-1)
    if not 0 <= minutes <= _MAX_MINUTES:
        problems.add(f"{pointer}/value", "range", f"the length must be 0-{_MAX_MINUTES} minutes")
        return None
    return int(minutes)


def _quartiere(located: _Located, index: _Index, problems: _Problems) -> str | None:
    """The neighbourhood of ``Encounter.location[].location`` or ``Immunization.location``: by the reference's
    identifier, or by an identifier of the Location resource it points to in the Bundle (FSE 2.0 documents name
    the place as a Location entry)."""
    res, pointer = located.resource, located.pointer
    places = [(f"{pointer}/location/{k}/location", place.location) for k, place in enumerate(res.location or [])
              ] if isinstance(res, Encounter) else [(f"{pointer}/location", res.location)]
    quartieri = load_codelist("quartieri")
    for where, reference in places:
        if reference is None:
            continue
        candidates = [(f"{where}/identifier", reference.identifier)]
        place = index.resolve(reference.reference, located, "Location")
        if place is not None:
            candidates += [(f"{place.pointer}/identifier/{k}", ident)
                           for k, ident in enumerate(place.resource.identifier or [])]
        for ident_pointer, ident in candidates:
            if ident is not None and ident.system == QUARTIERE_SYSTEM:
                code = quartieri.resolve(ident.value) if isinstance(ident.value, str) else None
                if code is None:
                    problems.add(f"{ident_pointer}/value", "binding",
                                 "unknown quartiere; use a code, Italian name or alias from code list quartieri")
                return code
    return None


def _clinical_codes(concepts: list[Any]) -> list[dict[str, str]]:
    """System and code of every coding (display and text dropped), unique, in order."""
    seen: dict[tuple[str, str], None] = {}
    for concept in concepts:
        for coding in _codings(concept):
            if coding.system and coding.code:
                seen.setdefault((str(coding.system), str(coding.code)), None)
    return [{"system": system, "code": code} for system, code in seen]


def _diagnosis_codes(located: _Located, index: _Index) -> list[dict[str, str]]:
    """Codes of the Condition resources the diagnoses refer to; uncoded diagnoses carry nothing."""
    concepts = []
    for diagnosis in located.resource.diagnosis or []:
        reference = diagnosis.condition.reference if diagnosis.condition is not None else None
        condition = index.resolve(reference, located, "Condition")
        if condition is not None and condition.resource.code is not None:
            concepts.append(condition.resource.code)
    return _clinical_codes(concepts)


def _immunization(located: _Located, index: _Index, problems: _Problems) -> _Draft:
    res, p = located.resource, located.pointer
    _require_id(res, p, problems)
    _check_status(res.status, _IMMUNIZATION_STATUSES, f"{p}/status", "Immunization.status", problems)
    subject = _subject(res.patient, f"{p}/patient", located, index, problems)
    vaccine = _vaccine(res.vaccineCode, f"{p}/vaccineCode", problems)
    occurred_on: date | None = None
    when: datetime | None = None
    if res.occurrenceString is not None:
        problems.add(f"{p}/occurrenceString", "coded-only", "give occurrenceDateTime; free text is not accepted")
    elif res.occurrenceDateTime is None:
        problems.add(f"{p}/occurrenceDateTime", "required", "give the day of the vaccination")
    else:
        occurred_on = _day(res.occurrenceDateTime, f"{p}/occurrenceDateTime", problems)
        when = _when(res.occurrenceDateTime, f"{p}/occurrenceDateTime", _Problems())
    payload: dict[str, Any] = {
        "immunization_id": res.id,
        "status": res.status,
        "vaccine": vaccine,
        "occurred_on": occurred_on,
        "lot_number": res.lotNumber,
        "season": _season(res, occurred_on),
        "quartiere": _quartiere(located, index, problems),
    }
    return _Draft("care.immunization", payload, subject, when)


_VACCINE_HINT: Final = (
    f"identify the vaccine by ATC code J07... ({ATC_SYSTEM}), AIC code of code list aic_vaccines ({AIC_SYSTEM}), "
    f"SNOMED CT vaccine product of code list vaccine_codes ({SNOMED_SYSTEM}) or CVX code ({CVX_SYSTEM}); other "
    "codings (ICD-11, local codes) may come along"
)


def _vaccine(concept: Any, pointer: str, problems: _Problems) -> dict[str, str] | None:
    """The coding of ``vaccineCode`` that names a recognised vaccine, with its group; the most specific group
    wins (an AIC pack next to its ATC code), then the order of :data:`VACCINE_SYSTEMS`, then the sender's."""
    found: list[tuple[bool, int, int, dict[str, str]]] = []
    unknown: tuple[int, str] | None = None
    for j, coding in enumerate(_codings(concept)):
        if coding.system not in VACCINE_SYSTEMS:
            continue
        group = vaccine_group(coding.system, coding.code) if isinstance(coding.code, str) else None
        if group is None:
            unknown = unknown or (j, str(coding.system))
            continue
        found.append((group == "other", VACCINE_SYSTEMS.index(coding.system), j,
                      {"system": str(coding.system), "code": coding.code, "group": group}))
    if found:
        return min(found, key=lambda item: item[:3])[3]
    if unknown is None:
        problems.add(pointer, "binding", _VACCINE_HINT)
    elif unknown[1] == AIC_SYSTEM:
        version = load_codelist("aic_vaccines").version
        problems.add(f"{pointer}/coding/{unknown[0]}/code", "binding",
                     f"this AIC code is not in code list aic_vaccines (version {version}): add the vaccine's ATC "
                     f"code ({ATC_SYSTEM}) as another coding")
    else:
        problems.add(f"{pointer}/coding/{unknown[0]}/code", "binding", "this code names no vaccine: "
                     + _VACCINE_HINT)
    return None


def _season(res: Any, day: date | None) -> str | None:
    """``protocolApplied.series`` when it names a season (``2026-2027``), else the season of ``day``."""
    for applied in res.protocolApplied or []:
        if isinstance(applied.series, str) and _SEASON.fullmatch(applied.series):
            return applied.series
    if day is None:
        return None
    first = day.year if day.month >= 8 else day.year - 1
    return f"{first}-{first + 1}"


def _service_request(located: _Located, index: _Index, problems: _Problems) -> _Draft:
    res, p = located.resource, located.pointer
    before = len(problems)
    request_id = _identifier_value(res, CARE_REQUEST_SYSTEM, p, problems)
    if request_id is None and len(problems) == before:
        _require_id(res, p, problems)
        request_id = res.id
    _check_status(res.status, _REQUEST_STATUSES, f"{p}/status", "ServiceRequest.status", problems)
    _check_status(res.intent, _REQUEST_INTENTS, f"{p}/intent", "ServiceRequest.intent", problems)
    if res.priority is not None:
        _check_status(res.priority, _REQUEST_PRIORITIES, f"{p}/priority", "ServiceRequest.priority", problems)
    if res.note:
        problems.add(f"{p}/note", "coded-only", "notes are not accepted: state the request with codes only")
    if res.patientInstruction is not None:
        problems.add(f"{p}/patientInstruction", "coded-only", "free-text instructions are not accepted")
    subject = _subject(res.subject, f"{p}/subject", located, index, problems)
    category = None
    before = len(problems)
    for k, concept in enumerate(res.category or []):
        category = _first_code(concept, f"{p}/category/{k}", CARE_REQUEST_CATEGORY_SYSTEM,
                               "care_request_categories", "request category", problems, required=False)
        if category or len(problems) > before:
            break
    if category is None and len(problems) == before:
        problems.add(f"{p}/category", "required", f"code the request category in system {CARE_REQUEST_CATEGORY_SYSTEM}")
    service = _first_code(res.code, f"{p}/code", CARE_SERVICE_SYSTEM, "care_services", "requested service", problems)
    start: Any = None
    end: Any = None
    if res.occurrenceTiming is not None:
        problems.add(f"{p}/occurrenceTiming", "binding", "give occurrenceDateTime or occurrencePeriod")
    elif res.occurrencePeriod is not None:
        start = _day(res.occurrencePeriod.start, f"{p}/occurrencePeriod/start", problems)
        end = _day(res.occurrencePeriod.end, f"{p}/occurrencePeriod/end", problems)
        if start and end and end < start:
            problems.add(f"{p}/occurrencePeriod/end", "period", "the period cannot end before it starts")
    else:
        start = _day(res.occurrenceDateTime, f"{p}/occurrenceDateTime", problems)
    requester = None
    ident = res.requester.identifier if res.requester is not None else None
    if ident is None or ident.system != ORGANISATION_SYSTEM:
        problems.add(f"{p}/requester", "required",
                     f"identify the requesting organisation by Reference.identifier in system {ORGANISATION_SYSTEM}")
    else:
        requester = _organisation(ident.value, f"{p}/requester/identifier/value", problems)
    authored = _when(res.authoredOn, f"{p}/authoredOn", problems)
    payload: dict[str, Any] = {
        "request_id": request_id,
        "status": res.status,
        "intent": res.intent,
        "priority": res.priority,
        "category": category,
        "service": service,
        "requested_from": start,
        "requested_until": end,
        "requester": requester,
        "authored_on": authored,
        "logistics": logistics_from_fhir(res, p, problems),
    }
    forced = PSYCHOLOGICAL_SUPPORT_LABELS if service == PSYCHOLOGICAL_SUPPORT else ()
    return _Draft("care.service-request", payload, subject, authored, forced)


def _consent(located: _Located, index: _Index, problems: _Problems) -> _Draft:
    res, p = located.resource, located.pointer
    _check_status(res.status, _CONSENT_STATUSES, f"{p}/status", "Consent.status", problems)
    subject = _subject(res.patient, f"{p}/patient", located, index, problems)
    provision = res.provision
    if provision is None or provision.type not in ("permit", "deny"):
        problems.add(f"{p}/provision/type", "required", "state provision.type: permit or deny")
    purposes: list[str] = []
    actors: list[str] = []
    period_start = period_end = None
    if provision is not None:
        for k, coding in enumerate(provision.purpose or []):
            if coding.system == PURPOSE_SYSTEM:
                code = _organisation(coding.code, f"{p}/provision/purpose/{k}/code", problems)
                if code and code not in purposes:
                    purposes.append(code)
        for k, actor in enumerate(provision.actor or []):
            ident = actor.reference.identifier if actor.reference is not None else None
            if ident is not None and ident.system == ORGANISATION_SYSTEM:
                code = _organisation(ident.value, f"{p}/provision/actor/{k}/reference/identifier/value", problems)
                if code and code not in actors:
                    actors.append(code)
        if provision.period is not None:
            period_start = _when(provision.period.start, f"{p}/provision/period/start", problems)
            period_end = _when(provision.period.end, f"{p}/provision/period/end", problems)
    if not purposes:
        problems.add(f"{p}/provision/purpose", "required", f"name at least one purpose in system {PURPOSE_SYSTEM}")
    recorded = _when(res.dateTime, f"{p}/dateTime", problems)
    payload: dict[str, Any] = {
        "consent_id": res.id,
        "status": res.status,
        "provision_type": provision.type if provision is not None else None,
        "purposes": purposes,
        "actors": actors,
        "period_start": period_start,
        "period_end": period_end,
        "recorded_at": recorded,
    }
    return _Draft("consent.record", payload, subject, recorded)


_TRANSLATORS: Final[dict[str, Callable[[_Located, _Index, _Problems], _Draft]]] = {
    "Encounter": _encounter,
    "Immunization": _immunization,
    "ServiceRequest": _service_request,
    "Consent": _consent,
}


# --- envelope ------------------------------------------------------------------------------------------------


def _message_id(located: _Located, problems: _Problems, document: _DocumentIds | None = None) -> str | None:
    res, p = located.resource, located.pointer
    given = _identifier_value(res, MESSAGE_SYSTEM, p, problems)
    if given:
        return given
    if document is not None:
        return document.message_id()
    version = res.meta.versionId if res.meta is not None else None
    if res.id and version:
        composed = f"{res.get_resource_type()}:{res.id}:{version}"
        if _TOKEN.fullmatch(composed):
            return composed
        problems.add(f"{p}/meta/versionId", "message-id", "id and meta.versionId together must stay within "
                                                          "128 characters")
        return None
    if located.full_url and located.full_url.startswith("urn:uuid:") and _TOKEN.fullmatch(located.full_url):
        return located.full_url
    problems.add(f"{p}/meta/versionId", "required",
                 "give meta.versionId with the id (or an identifier in system "
                 f"{MESSAGE_SYSTEM}, or a urn:uuid fullUrl in a Bundle) so that a replay is recognised")
    return None


def _envelope(located: _Located, index: _Index, defaults: _Meta, problems: _Problems,
              document: _DocumentIds | None = None) -> Envelope | None:
    before = len(problems)
    draft = _TRANSLATORS[located.resource.get_resource_type()](located, index, problems)
    meta = _read_meta(located.resource.meta, located.pointer, problems)
    message_id = _message_id(located, problems, document)
    correlation_id = _identifier_value(located.resource, CORRELATION_SYSTEM, located.pointer, problems)
    last_updated = located.resource.meta.lastUpdated if located.resource.meta is not None else None
    occurred_at = _when(last_updated, f"{located.pointer}/meta/lastUpdated", problems) or draft.when
    if occurred_at is None and len(problems) == before:
        problems.add(f"{located.pointer}/meta/lastUpdated", "required", "give meta.lastUpdated")
    if len(problems) > before or message_id is None or occurred_at is None:
        return None
    labels = sorted(meta.labels | defaults.labels | set(draft.forced_labels))
    model = HEALTH_MESSAGE_TYPES[draft.message_type]
    payload = {**draft.payload, "security_labels": labels, "masked_at_source": meta.masked or defaults.masked}
    if draft.message_type == "consent.record":
        del payload["security_labels"], payload["masked_at_source"]
    try:
        canonical = model.model_validate({k: v for k, v in payload.items() if v is not None})
    except ValidationError as exc:
        problems.extend(_located_problems(exc, draft.message_type, located.pointer))
        return None
    return Envelope(
        message_id=message_id,
        correlation_id=correlation_id or message_id,
        message_type=draft.message_type,
        sender=SENDER,
        recipients=meta.recipients or defaults.recipients,
        subject=SubjectRef(identifiers=draft.subject),
        purpose=meta.purpose or defaults.purpose,
        sensitivity=("S3", *labels),
        occurred_at=occurred_at,
        payload=canonical.model_dump(mode="json", exclude_none=True),
    )


def _located_problems(exc: ValidationError, message_type: str, pointer: str) -> list[FieldProblem]:
    """Canonical-model problems, placed at the FHIR element each field comes from."""
    fields = _FIELD_POINTERS[message_type]
    located = []
    for problem in problems_from_validation(exc):
        name = problem.pointer.split("/")[1] if problem.pointer else ""
        located.append(FieldProblem(pointer + fields.get(name, ""), problem.rule, problem.message))
    return located


# --- documents -----------------------------------------------------------------------------------------------


def _load(raw: bytes, content_type: str) -> dict[str, Any]:
    media_type, _, parameters = content_type.partition(";")
    media_type = media_type.strip().lower()
    if media_type not in FHIR_CONTENT_TYPES:
        raise DecodeError(
            "malformed",
            f"content type {media_type or '(none)'} is not accepted; send application/fhir+json",
            [FieldProblem("", "content-type", "send the resource as application/fhir+json (FHIR R4)")],
        )
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "fhirversion" and not value.strip().strip('"').startswith("4.0"):
            raise DecodeError("malformed", "only FHIR R4 is accepted",
                              [FieldProblem("", "fhir-version", "send FHIR R4 resources (fhirVersion=4.0)")])
    return load_json_object(raw, "application/json")


def _resource_type_problems(document: dict[str, Any]) -> list[FieldProblem]:
    """A problem for every ``resourceType`` in the document that names no FHIR resource type.

    Checked before the models see the document: fhir.resources fails with a bare TypeError or KeyError on them.
    """
    problems: list[FieldProblem] = []
    stack: list[tuple[Any, str]] = [(document, "")]
    while stack:
        value, pointer = stack.pop()
        if isinstance(value, dict):
            if "resourceType" in value:
                name = value["resourceType"]
                if not (isinstance(name, str) and _RESOURCE_NAME.fullmatch(name) and hasattr(fhirtypes, f"{name}Type")):
                    problems.append(FieldProblem(f"{pointer}/resourceType", "resource-type",
                                                 "name a FHIR R4 resource type"))
            stack.extend((item, f"{pointer}/{_escape(str(key))}") for key, item in value.items())
        elif isinstance(value, list):
            stack.extend((item, f"{pointer}/{k}") for k, item in enumerate(value))
    return sorted(problems, key=lambda problem: problem.pointer)


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _validate(model: type[BaseModel], document: dict[str, Any]) -> Any:
    """The fhir.resources model of ``document``; DecodeError with every structural problem."""
    wrong_types = _resource_type_problems(document)
    if wrong_types:
        raise DecodeError("contract", "the document is not valid FHIR R4", wrong_types)
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise DecodeError("contract", "the document is not valid FHIR R4", problems_from_validation(exc)) from None
    except RecursionError:
        raise DecodeError("malformed", "the document is nested too deeply",
                          [FieldProblem("", "depth", "send a less deeply nested document")]) from None
    except (TypeError, KeyError, AttributeError):  # fhir.resources failing on a shape it does not expect
        raise DecodeError("contract", "the document is not valid FHIR R4",
                          [FieldProblem("", "fhir", "the document could not be read as FHIR R4 JSON")]) from None


def decode(raw: bytes, content_type: str = "application/fhir+json") -> list[Envelope]:
    """FHIR R4 JSON from the trust -> one canonical envelope per message resource; raises DecodeError."""
    document = _load(raw, content_type)
    resource_type = document.get("resourceType")
    if resource_type == "Bundle":
        return _decode_bundle(_validate(Bundle, document))
    if not isinstance(resource_type, str) or resource_type not in _MESSAGE_RESOURCES:
        raise DecodeError("contract", "the document is not a resource the gateway accepts from the trust",
                          [FieldProblem("/resourceType", "resource-type",
                                        "send an Encounter, Immunization, ServiceRequest, Consent or a Bundle")])
    located = _Located(_validate(_MESSAGE_RESOURCES[resource_type], document), "")
    problems = _Problems()
    envelope = _envelope(located, _Index(), _Meta(), problems)
    _raise(problems)
    assert envelope is not None  # no problems means an envelope was built
    return [envelope]


def _decode_bundle(bundle: Any) -> list[Envelope]:
    problems = _Problems()
    if bundle.type not in BUNDLE_TYPES:
        problems.add("/type", "binding", f"send a Bundle of type {', '.join(BUNDLE_TYPES)}")
    entries = list(bundle.entry or [])
    if len(entries) > MAX_BUNDLE_ENTRIES:
        problems.add("/entry", "size", f"send at most {MAX_BUNDLE_ENTRIES} entries per Bundle")
    document = bundle.type == _DOCUMENT
    if document:
        _check_document_header(bundle, entries, problems)
    _raise(problems)
    index = _Index(in_bundle=True)
    messages: list[_Located] = []
    for i, entry in enumerate(entries):
        pointer = f"/entry/{i}"
        if entry.request is not None and entry.request.method not in ("POST", "PUT"):
            problems.add(f"{pointer}/request/method", "binding",
                         "send resources to create or update (POST or PUT); to cancel, update the resource "
                         "with status entered-in-error")
            continue
        if bundle.type in ("transaction", "batch") and entry.request is None:
            problems.add(f"{pointer}/request", "required", "a transaction or batch entry needs request (POST or PUT)")
        if entry.resource is None:
            problems.add(f"{pointer}/resource", "required", "give the entry's resource")
            continue
        kind = entry.resource.get_resource_type()
        located = _Located(entry.resource, f"{pointer}/resource", entry.fullUrl)
        if kind in _MESSAGE_RESOURCES:
            messages.append(located)
        elif document:
            pass  # the rest of a clinical document (its Composition, other sections) stays in the document
        elif kind not in _CONTEXT_RESOURCES:
            problems.add(f"{pointer}/resource/resourceType", "resource-type",
                         "a Bundle may carry Encounter, Immunization, ServiceRequest and Consent resources, with "
                         "the Patient, Condition, Organization, Practitioner, PractitionerRole and Location "
                         "resources they refer to (or send a document Bundle: Composition first)")
            continue
        index.add(located)
    if not messages:
        problems.add("/entry", "required", "carry at least one Encounter, Immunization, ServiceRequest or Consent")
    defaults = _read_meta(bundle.meta, "", problems)
    person: tuple[Identifier, ...] = ()
    if document:
        composition = _Located(entries[0].resource, "/entry/0/resource", entries[0].fullUrl)
        person = _subject(composition.resource.subject, "/entry/0/resource/subject", composition, index, problems)
    envelopes = []
    for located in messages:
        ids = _DocumentIds(bundle.identifier, located) if document else None
        envelope = _envelope(located, index, defaults, problems, ids)
        if envelope is not None and person and not _same_person(envelope.subject.identifiers, person):
            element = "patient" if located.resource.get_resource_type() in ("Immunization", "Consent") else "subject"
            problems.add(f"{located.pointer}/{element}", "document-subject",
                         "a document is about one person: refer to the Patient the Composition's subject names")
        envelopes.append(envelope)
    _raise(problems)
    return [envelope for envelope in envelopes if envelope is not None]


def _check_document_header(bundle: Any, entries: list[Any], problems: _Problems) -> None:
    """A document Bundle (FSE 2.0): its Composition first, and an identifier that names the document."""
    first = entries[0].resource if entries else None
    if first is None or first.get_resource_type() != "Composition":
        problems.add("/entry/0/resource/resourceType", "document",
                     "a document Bundle starts with its Composition (FHIR rule bdl-11)")
    elif first.subject is None:
        problems.add("/entry/0/resource/subject", "required",
                     "the Composition's subject names the Patient the document is about")
    ident = bundle.identifier
    if ident is None or not isinstance(ident.value, str) or not ident.value:
        problems.add("/identifier", "required",
                     "give the document's identifier (system and value, FHIR rule bdl-9): replays are recognised "
                     "by it")


def _same_person(found: tuple[Identifier, ...], person: tuple[Identifier, ...]) -> bool:
    return bool({(i.system, i.value) for i in found} & {(i.system, i.value) for i in person})


@dataclass(frozen=True, slots=True)
class _DocumentIds:
    """What names a resource taken out of a document: the document's identifier with the resource's own id."""

    identifier: Any
    located: _Located

    def message_id(self) -> str:
        """``fse-`` and a digest of (document identifier, resource type, id or full URL): the same resource of the
        same document sent again is recognised as a replay, whatever characters the identifier uses."""
        res = self.located.resource
        name = res.id or self.located.full_url or self.located.pointer
        basis = f"{self.identifier.system}|{self.identifier.value}|{res.get_resource_type()}/{name}"
        return "fse-" + hashlib.sha256(basis.encode("utf-8")).hexdigest()[:40]
