"""Canonical payloads of the care message types: what the hospital trust's FHIR resources become inside.

Five message types, registered in :data:`HEALTH_MESSAGE_TYPES` (merged into
:data:`schemas.messages.MESSAGE_TYPES`):

==========================  ============================================================  =====================
message type                FHIR R4 source (adapters.asst_fhir)                           flows
==========================  ============================================================  =====================
``care.encounter``          Encounter, class VR / HH / AMB                                F5, F6
``care.immunization``       Immunization with a vaccine code (ATC J07, AIC, SNOMED, CVX)  F6
``care.service-request``    ServiceRequest (and the ServiceRequest the gateway sends)     F4
``care.discharge-notice``   inpatient Encounter closed as a protected discharge           F11
``consent.record``          Consent                                                       consent registry
==========================  ============================================================  =====================

Every field is coded: free text (notes, reason text, narrative) never enters a payload. Fields that only some
recipients may see are kept apart so that minimisation can drop them by path: clinical reasons and diagnoses
(``reason_codes``, ``diagnosis_codes``) are separate from logistics (status, period, place); care needs for the
Comune (``care_needs``) are separate from logistics for the landlord (``logistics``). Each payload carries the
HL7 sensitivity labels the source gave (``security_labels``) and whether the source masked the record
(``masked_at_source``, "oscurato": never forwarded, privacy.md rule 15). Psychological support always carries
``PSY`` and ``R``: the models add them, so no producer (and no minimised copy) can drop them.

Record ids (``encounter_id``, ``request_id``...) are opaque: the partner's own FHIR id, or the crosswalk token
(``gwt_...``) the minimiser puts in its place for a recipient that may not see the partner's id.

Field paths are what the flow registry lists as allowed fields, so renaming a field is a contract change.
"""

from __future__ import annotations

from datetime import date
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from schemas.codelists import Quartiere, _coded, load_codelist
from schemas.vaccines import VACCINE_SYSTEMS, vaccine_group

__all__ = [
    "HEALTH_MESSAGE_TYPES",
    "PSYCHOLOGICAL_SUPPORT",
    "PSYCHOLOGICAL_SUPPORT_LABELS",
    "VACCINE_SYSTEMS",
    "CareDischargeNotice",
    "CareEncounter",
    "CareImmunization",
    "CareServiceRequest",
    "ClinicalCode",
    "HL7Label",
    "RecordedConsent",
    "Vaccine",
    "VisitLogistics",
    "vaccine_code_system",
]

PSYCHOLOGICAL_SUPPORT = "psychological-support"
"""The extra-restricted care service (domain.md): the models give it :data:`PSYCHOLOGICAL_SUPPORT_LABELS`."""

HL7Label = Literal["N", "R", "V", "PSY", "MH", "SDV", "HIV", "ETH"]
"""HL7 confidentiality codes (N normal, R restricted, V very restricted; v3-Confidentiality) and sensitivity
codes (PSY psychiatry, MH mental health, SDV sexual and domestic violence, HIV, ETH substance abuse;
v3-ActCode). A subset of :data:`schemas.codelists.SensitivityLabel`."""

PSYCHOLOGICAL_SUPPORT_LABELS: tuple[HL7Label, ...] = ("PSY", "R")
"""HL7 labels every psychological-support record carries: psychiatry-related (PSY) and restricted (R)."""


RecordId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._\-]{1,64}$")]
"""An opaque record id, 1-64 letters, digits, ``.``, ``_``, ``-``: a FHIR id, or a gateway crosswalk token."""

OrganisationCode = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9\-]*$")]
"""A partner organisation code of the partner registry (``aler``, ``asst``, ``comune``, ``fwa``)."""

PurposeCode = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9\-]*$")]
"""A purpose code of the purpose vocabulary (privacy.md); the policy checks it is a known one."""

LotNumber = Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._/\-]*$")]
"""A vaccine lot number as printed on the pack."""


def _sorted_labels(labels: tuple[HL7Label, ...]) -> tuple[HL7Label, ...]:
    return tuple(sorted(set(labels)))


def _unique_codes(codes: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(sorted(set(codes)))


if TYPE_CHECKING:  # static checkers see plain strings; at run time each is a validated enum string
    CareService = str
    EncounterClass = str
    CareRequestCategory = str
    VaccineGroup = str
    CareNeed = str
    DischargeLogistics = str
    HomeAccessNote = str
    HomeEntryMethod = str
    InterpreterLanguage = str
    VisitTimeWindow = str
else:
    CareService = _coded("care_services")
    EncounterClass = _coded("encounter_classes")
    CareRequestCategory = _coded("care_request_categories")
    VaccineGroup = _coded("vaccine_groups")
    CareNeed = _coded("care_needs")
    DischargeLogistics = _coded("discharge_logistics")
    HomeAccessNote = _coded("home_access_notes")
    HomeEntryMethod = _coded("home_entry_methods")
    InterpreterLanguage = _coded("interpreter_languages")
    VisitTimeWindow = _coded("visit_time_windows")

SecurityLabels = Annotated[tuple[HL7Label, ...], AfterValidator(_sorted_labels)]
"""HL7 confidentiality (N, R, V) and sensitivity (PSY, MH, SDV, HIV, ETH) codes, sorted and without repeats."""

EncounterStatus = Literal[
    "planned", "arrived", "triaged", "in-progress", "onleave", "finished", "cancelled", "entered-in-error", "unknown"
]
ImmunizationStatus = Literal["completed", "entered-in-error", "not-done"]
RequestStatus = Literal["draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"]
RequestIntent = Literal[
    "proposal", "plan", "directive", "order", "original-order", "reflex-order", "filler-order", "instance-order",
    "option",
]
RequestPriority = Literal["routine", "urgent", "asap", "stat"]
ConsentStatus = Literal["draft", "proposed", "active", "rejected", "inactive", "entered-in-error"]


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Labelled(_Payload):
    security_labels: SecurityLabels = ()
    """HL7 labels from the source's ``meta.security`` (plus the ones this model forces)."""
    masked_at_source: bool = False
    """The source masked this record ("oscurato"): the policy never forwards it (privacy.md rule 15)."""


def _with_psy_labels(data: Any, service_field: str) -> Any:
    """``data`` with PSY and R added to its security labels when it is about psychological support."""
    if isinstance(data, dict) and data.get(service_field) == PSYCHOLOGICAL_SUPPORT:
        labels = data.get("security_labels") or ()
        if isinstance(labels, list | tuple):
            data = {**data, "security_labels": (*labels, *PSYCHOLOGICAL_SUPPORT_LABELS)}
    return data


class ClinicalCode(_Payload):
    """One code from a clinical code system (ICD-9-CM, SNOMED CT, ...), never its display text."""

    system: Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^\S+$")]
    """The FHIR code system URI, e.g. ``http://snomed.info/sct``."""
    code: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^\S+( \S+)*$")]


class CareEncounter(_Labelled):
    """``care.encounter``: a visit planned or done by the trust's community services (F5, F6)."""

    encounter_id: RecordId
    """The trust's Encounter id: opaque, quoted back in later versions of the same visit."""
    status: EncounterStatus
    class_code: EncounterClass
    """HL7 v3 ActCode: VR telemedicine, HH home nursing, AMB local clinic."""
    service_type: CareService
    period_start: AwareDatetime
    period_end: AwareDatetime | None = None
    length_minutes: Annotated[int, Field(ge=0, le=525_600)] | None = None
    """Minutes of care, as the source stated them or from the period; rebuilds care hours for F6."""
    quartiere: Quartiere | None = None
    """Neighbourhood where the care took place, when the source located it."""
    reason_codes: tuple[ClinicalCode, ...] = ()
    """Why the visit happened. Clinical: no flow lets it leave the health domain."""
    diagnosis_codes: tuple[ClinicalCode, ...] = ()
    """Diagnoses the visit dealt with. Clinical: no flow lets it leave the health domain."""

    @model_validator(mode="before")
    @classmethod
    def _psychological_support_labels(cls, data: Any) -> Any:
        return _with_psy_labels(data, "service_type")

    @model_validator(mode="after")
    def _consistent(self) -> CareEncounter:
        if self.period_end is not None and self.period_end < self.period_start:
            raise ValueError("period_end is before period_start")
        return self


def vaccine_code_system(code: str) -> str | None:
    """The FHIR code system of a code of list ``vaccine_codes``, or None for a code not in the list."""
    if code not in load_codelist("vaccine_codes"):
        return None
    return _vaccine_systems().get(code)


@cache
def _vaccine_systems() -> dict[str, str]:
    text = resources.files("schemas").joinpath("codelists", "vaccine_codes.yaml").read_text(encoding="utf-8")
    raw: dict[str, Any] = yaml.safe_load(text)
    return {str(entry["code"]): str(entry["system"]) for entry in raw["codes"]}


class Vaccine(_Payload):
    """A vaccine: its code in one of :data:`schemas.vaccines.VACCINE_SYSTEMS` (ATC J07, AIC, SNOMED CT, CVX)
    and the vaccine group (code list ``vaccine_groups``) that code belongs to (:func:`schemas.vaccines.vaccine_group`).
    A payload without a group (written before groups existed) gets the code's own."""

    system: Literal["http://www.whocc.no/atc", "https://www.aifa.gov.it/aic", "http://snomed.info/sct",
                    "http://hl7.org/fhir/sid/cvx"]
    code: Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{1,18}$")]
    group: VaccineGroup

    @model_validator(mode="before")
    @classmethod
    def _group_of_old_payloads(cls, data: Any) -> Any:
        if isinstance(data, dict) and "group" not in data:
            return {**data, "group": vaccine_group(data.get("system"), data.get("code"))}
        return data

    @model_validator(mode="after")
    def _code_in_system(self) -> Vaccine:
        group = vaccine_group(self.system, self.code)
        if group is None:
            raise ValueError("the code names no vaccine the gateway recognises in this code system")
        if group != self.group:
            raise ValueError(f"the vaccine code belongs to group {group}")
        return self


class CareImmunization(_Labelled):
    """``care.immunization``: a vaccination given, not given or recorded in error (F6 counts it per vaccine
    group)."""

    immunization_id: RecordId
    status: ImmunizationStatus
    vaccine: Vaccine
    occurred_on: date
    """The day the vaccine was given (or was due, when not given)."""
    lot_number: LotNumber | None = None
    season: Annotated[str, StringConstraints(pattern=r"^\d{4}-\d{4}$")]
    """Influenza season, e.g. ``2026-2027``: from 1 August of the first year to 31 July of the second."""
    quartiere: Quartiere | None = None
    """Neighbourhood where the vaccine was given, when the source located it (F6 counts per quartiere)."""

    @model_validator(mode="after")
    def _consecutive_years(self) -> CareImmunization:
        first, second = (int(part) for part in self.season.split("-"))
        if second != first + 1:
            raise ValueError("season must name two consecutive years, e.g. 2026-2027")
        return self


class VisitLogistics(_Payload):
    """How the visit can happen at the person's home, as the community manager knows it (F4): codes, numbers
    and yes/no only, never a name, a door code or a note. Every field is optional."""

    floor: Annotated[int, Field(ge=-2, le=40)] | None = None
    """Floor of the home: 0 the ground floor, negative below it."""
    lift: bool | None = None
    """Whether a working lift reaches the home."""
    entry: HomeEntryMethod | None = None
    """How a visitor gets in (code list ``home_entry_methods``): a category, never the name on the doorbell."""
    time_window: VisitTimeWindow | None = None
    """When the visit suits the person (code list ``visit_time_windows``)."""
    porter_can_accompany: bool | None = None
    """Whether the building's porter (custode) can accompany the visitor."""
    interpreter_language: InterpreterLanguage | None = None
    """Language an interpreter or mediator should speak (code list ``interpreter_languages``, BCP 47)."""
    access_notes: Annotated[tuple[HomeAccessNote, ...], AfterValidator(_unique_codes)] = ()
    """Further access notes (code list ``home_access_notes``), each at most once, sorted."""


class CareServiceRequest(_Labelled):
    """``care.service-request``: a request for a nurse visit, telemedicine or a vaccination (F4).

    Coded only: FHIR ``note`` and ``patientInstruction`` are refused at the border, never carried.
    """

    request_id: RecordId
    """Id of the request, kept across status updates: in FHIR the ``identifier`` in the care-request system, or
    the ServiceRequest ``id`` when there is none."""
    status: RequestStatus
    intent: RequestIntent
    priority: RequestPriority | None = None
    category: CareRequestCategory
    service: CareService
    """The requested service, code list ``care_services``."""
    requested_from: date | None = None
    """First day the service is wanted; with no ``requested_until``, the one day it is wanted."""
    requested_until: date | None = None
    requester: OrganisationCode
    """Partner organisation that asked for the service (``aler`` for F4)."""
    authored_on: AwareDatetime | None = None
    logistics: VisitLogistics | None = None
    """How the visit can happen at home (F4: what the community manager knows); coded, never free text.
    An empty object is the same as none."""

    @field_validator("logistics")
    @classmethod
    def _nothing_is_none(cls, value: VisitLogistics | None) -> VisitLogistics | None:
        if value is not None and not value.model_dump(exclude_none=True, exclude_defaults=True):
            return None
        return value

    @model_validator(mode="before")
    @classmethod
    def _psychological_support_labels(cls, data: Any) -> Any:
        return _with_psy_labels(data, "service")

    @model_validator(mode="after")
    def _consistent(self) -> CareServiceRequest:
        if self.requested_from and self.requested_until and self.requested_until < self.requested_from:
            raise ValueError("requested_until is before requested_from")
        return self


class CareDischargeNotice(_Labelled):
    """``care.discharge-notice``: a protected hospital discharge (dimissione protetta, F11).

    The Comune may receive ``care_needs``; the landlord only ``logistics`` and the date.
    """

    encounter_id: RecordId
    """The trust's id of the inpatient stay that ended."""
    discharge_date: date
    care_needs: tuple[CareNeed, ...] = ()
    """What social services should arrange at home (code list ``care_needs``)."""
    logistics: tuple[DischargeLogistics, ...] = ()
    """What the home must allow, never why (code list ``discharge_logistics``)."""


class RecordedConsent(_Payload):
    """``consent.record``: a FHIR Consent as the consent registry needs it; the person is the envelope subject."""

    consent_id: RecordId | None = None
    """The trust's Consent id, when the resource has one; the consent registry mints its own record id."""
    status: ConsentStatus
    provision_type: Literal["permit", "deny"]
    purposes: Annotated[tuple[PurposeCode, ...], Field(min_length=1)]
    """Purposes the provision covers; never empty (privacy.md rule 2: no purpose is never a wildcard)."""
    actors: tuple[OrganisationCode, ...] = ()
    """Recipient organisations the provision names; empty means any recipient a declared flow allows."""
    period_start: AwareDatetime | None = None
    period_end: AwareDatetime | None = None
    recorded_at: AwareDatetime | None = None
    """When the consent was given (FHIR ``Consent.dateTime``)."""

    @model_validator(mode="after")
    def _consistent(self) -> RecordedConsent:
        if self.period_start and self.period_end and self.period_end < self.period_start:
            raise ValueError("period_end is before period_start")
        return self


HEALTH_MESSAGE_TYPES: dict[str, type[BaseModel]] = {
    "care.encounter": CareEncounter,
    "care.immunization": CareImmunization,
    "care.service-request": CareServiceRequest,
    "care.discharge-notice": CareDischargeNotice,
    "consent.record": RecordedConsent,
}
"""The care message types by name, to merge into :data:`schemas.messages.MESSAGE_TYPES`."""
