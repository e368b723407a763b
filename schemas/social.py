"""Canonical payloads of the social-services flows: Comune case events, fragility referrals, eviction
milestones and emergency events.

* ``social.case-event`` (Comune -> gateway): a case was opened, changed status or was closed;
* ``social.case-status`` (F3, gateway -> ALER): the status only, what ALER may learn of a case;
* ``social.case-referral`` (F2, ALER -> Comune): a new-case referral (segnalazione);
* ``tenancy.eviction-milestone`` (F9, ALER -> Comune, FWA): an eviction-procedure stage and its deadline;
* ``emergency.social-event`` (F10, ALER, Comune, police -> emergency social service): the event, a coded
  place and the household as counts.

Every coded field takes a code of a versioned list in ``schemas/codelists/`` (Italian labels canonical).
Two rules are written into the models rather than left to callers:

* the hardship grade is set by a social worker and recorded as given; nothing here computes, infers or
  defaults it (GDPR art. 22, domain.md);
* the court-mandate level of a minor's case is accepted from the Comune and **never exported**: it exists
  only on ``social.case-event``, no outbound type has a field for it, and :data:`NEVER_EXPORTED_FIELDS`
  lists it so the flow registry can refuse any flow that names it.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from schemas.codelists import ArrearsStage, HouseholdType, Quartiere, _coded
from schemas.envelope import SensitivityLabel

__all__ = [
    "NEVER_EXPORTED_FIELDS",
    "SOCIAL_MESSAGE_TYPES",
    "TERMINAL_CASE_STATUSES",
    "CaseEvent",
    "CaseStatus",
    "CourtMandateLevel",
    "EmergencyEventType",
    "EmergencyHousehold",
    "EmergencyPlace",
    "EmergencySocialEvent",
    "FragilitySignal",
    "HardshipGrade",
    "Measure",
    "Municipio",
    "ReferredHousehold",
    "ServiceArea",
    "SocialCaseEvent",
    "SocialCaseReferral",
    "SocialCaseStatus",
    "TenancyEvictionMilestone",
    "case_event_sensitivity",
]

if TYPE_CHECKING:  # static checkers see plain strings; at run time each is a validated enum string
    ServiceArea = str
    CaseStatus = str
    Measure = str
    CourtMandateLevel = str
    EmergencyEventType = str
    FragilitySignal = str
else:
    ServiceArea = _coded("service_areas")
    CaseStatus = _coded("case_statuses")
    Measure = _coded("social_measures")
    CourtMandateLevel = _coded("court_mandate_levels")
    EmergencyEventType = _coded("emergency_event_types")
    FragilitySignal = _coded("fragility_signals")

Municipio = Annotated[int, Field(ge=1, le=9)]
"""One of the nine Municipi of Milan."""

HardshipGrade = Annotated[int, Field(ge=1, le=4)]
"""Housing-hardship grade 1-4 (code list ``hardship-grades``), as a social worker set it. Never computed."""

CaseId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:\-]+$")]
"""The Comune's own case id: opaque, no spaces, no personal data by convention."""

Count = Annotated[int, Field(ge=0, le=20)]

CaseEvent = Literal["opened", "status", "closed"]
"""What happened to a case: it was opened, its status changed, or it was closed."""

TERMINAL_CASE_STATUSES = frozenset({"closed", "not-competent"})
"""Statuses that end a case: a ``closed`` event carries one of them, and no other event does."""


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _unique(values: tuple[str, ...], what: str) -> tuple[str, ...]:
    if len(set(values)) != len(values):
        raise ValueError(f"each {what} may appear once")
    return values


class SocialCaseEvent(_Payload):
    """``social.case-event``: a Comune social-service case was opened, changed status or was closed.

    Comune-internal as a whole: the flows that start from it (F3 status to ALER) cross as
    :class:`SocialCaseStatus`, never as this type.
    """

    case_id: CaseId
    """The Comune's case id. Never reaches ALER: ALER gets an opaque gateway token instead (domain.md)."""
    event: CaseEvent
    status: CaseStatus
    """Status after the event (code list ``case-statuses``)."""
    municipio: Municipio
    service_area: ServiceArea
    """Service area of the welfare plan's chapter 5 (code list ``service-areas``); never exported to ALER."""
    measures: tuple[Measure, ...] = Field(default=(), max_length=20)
    """Measures active on the case (code list ``social-measures``), each once."""
    hardship_grade: HardshipGrade | None = None
    """Housing-hardship grade 1-4, set by a social worker after an assessment and carried as given. The gateway
    never computes, infers or defaults it (GDPR art. 22); absent when nobody has graded the case."""
    court_mandate_level: CourtMandateLevel | None = Field(
        default=None, json_schema_extra={"x-never-exported": True}
    )
    """NEVER EXPORTED. Judicial-authority involvement in a minor's case (code list ``court-mandate-levels``).
    Accepted so the Comune's records decode whole; listed in :data:`NEVER_EXPORTED_FIELDS`, absent from every
    outbound type and every encoder."""

    @field_validator("measures")
    @classmethod
    def _measures_once(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _unique(value, "measure")

    @model_validator(mode="after")
    def _status_fits_event(self) -> SocialCaseEvent:
        if (self.event == "closed") != (self.status in TERMINAL_CASE_STATUSES):
            raise ValueError("a closed event carries status closed or not-competent, and only a closed event does")
        return self


class SocialCaseStatus(_Payload):
    """``social.case-status``: what ALER learns when the Comune acts on its referral (F3) — the event and the
    status, nothing else: no case id, service area, measures, grade or court-mandate level."""

    event: CaseEvent
    status: CaseStatus


class ReferredHousehold(_Payload):
    """The household a fragility referral is about: type, size and flags, no names, ages or diagnoses."""

    type: HouseholdType
    size: Annotated[int, Field(ge=1, le=20)]
    has_minors: bool
    has_over_65: bool
    has_disability: bool
    """A person with a certified disability lives in the household (GDPR art. 9 data: F2 is S2/S3)."""


class SocialCaseReferral(_Payload):
    """``social.case-referral``: a housing operator refers a household to the Comune's social services (F2)."""

    signals: tuple[FragilitySignal, ...] = Field(min_length=1, max_length=10)
    """Why, as codes of list ``fragility-signals``; never free text."""
    quartiere: Quartiere
    municipio: Municipio
    household: ReferredHousehold

    @field_validator("signals")
    @classmethod
    def _signals_once(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _unique(value, "fragility signal")


class TenancyEvictionMilestone(_Payload):
    """``tenancy.eviction-milestone``: the eviction procedure of a tenancy reached a stage (F9)."""

    stage: ArrearsStage
    """Stage reached, a code of list ``arrears-stages`` other than ``none``."""
    deadline: date | None = None
    """The date the stage sets (e.g. the date the unit must be vacated); absent when the stage sets none."""
    quartiere: Quartiere
    municipio: Municipio

    @field_validator("stage")
    @classmethod
    def _a_milestone(cls, value: str) -> str:
        if value == "none":
            raise ValueError("an eviction milestone has a stage other than none")
        return value


class EmergencyPlace(_Payload):
    """Where an emergency happened, coded: no street address crosses (it locates a person)."""

    quartiere: Quartiere
    municipio: Municipio | None = None
    """Absent outside the city of Milan."""
    building_id: CaseId | None = None
    """The housing operator's opaque building id, when the event is in public housing."""


class EmergencyHousehold(_Payload):
    """Who is involved, as counts: adults (over 65s included), minors, over 65s, people with a disability."""

    adults: Count
    minors: Count
    over_65: Count
    with_disability: Count

    @model_validator(mode="after")
    def _counts_agree(self) -> EmergencyHousehold:
        if self.adults + self.minors == 0:
            raise ValueError("at least one adult or minor is involved")
        if self.over_65 > self.adults:
            raise ValueError("over_65 counts adults, so it cannot exceed adults")
        if self.with_disability > self.adults + self.minors:
            raise ValueError("with_disability cannot exceed adults plus minors")
        return self


class EmergencySocialEvent(_Payload):
    """``emergency.social-event``: an event that needs the emergency social service (F10)."""

    event_type: EmergencyEventType
    """Code of list ``emergency-event-types`` (seed 004 categories)."""
    place: EmergencyPlace
    household: EmergencyHousehold
    occurred_at: datetime
    """When the emergency happened (the envelope's ``occurred_at`` is when it was reported)."""


SOCIAL_MESSAGE_TYPES: dict[str, type[BaseModel]] = {
    "social.case-event": SocialCaseEvent,
    "social.case-status": SocialCaseStatus,
    "social.case-referral": SocialCaseReferral,
    "tenancy.eviction-milestone": TenancyEvictionMilestone,
    "emergency.social-event": EmergencySocialEvent,
}
"""The social-services message types, by name: merged into :data:`schemas.messages.MESSAGE_TYPES`."""

NEVER_EXPORTED_FIELDS: dict[str, frozenset[str]] = {
    "social.case-event": frozenset({"court_mandate_level"}),
}
"""Payload paths, per message type, that no flow may ever list in ``allowed_fields``."""


@cache
def _area_sensitivity() -> dict[str, tuple[SensitivityLabel, ...]]:
    text = resources.files("schemas").joinpath("codelists", "service_areas.yaml").read_text(encoding="utf-8")
    raw: dict[str, Any] = yaml.safe_load(text)
    return {str(entry["code"]): tuple(entry["sensitivity"]) for entry in raw["codes"]}


def case_event_sensitivity(service_area: str, court_mandate_level: str | None) -> tuple[SensitivityLabel, ...]:
    """Sensitivity labels of a case event: its service area's (code list ``service-areas``), plus S3 when a
    judicial authority is involved in a minor's case."""
    labels = list(_area_sensitivity()[service_area])
    if court_mandate_level not in (None, "none") and "S3" not in labels:
        labels.append("S3")
    return tuple(labels)
