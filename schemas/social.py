"""Canonical payloads of the social-services flows: Comune case events, fragility referrals, eviction
milestones and emergency events.

* ``social.case-event`` (Comune -> gateway): a case was opened, changed status or was closed;
* ``social.case-status`` (F3, gateway -> ALER): a case token and the status, all ALER may learn of a case;
* ``social.case-referral`` (F2, gateway -> Comune): a new-case referral (segnalazione), the payload of
  ALER's ``tenancy.fragility-signal`` (:class:`schemas.tenancy.FragilitySignalReferral`);
* ``emergency.social-event`` (F10, ALER, Comune, police -> emergency social service): the event, a coded
  place and the household as counts.

``tenancy.eviction-milestone`` (F9) is :class:`schemas.tenancy.EvictionMilestone`; the Comune adapter
encodes it as it stands.

Every coded field takes a code of a versioned list in ``schemas/codelists/`` (Italian labels canonical).
Two rules are written into the models rather than left to callers:

* the hardship grade is set by a social worker and recorded as given; nothing here computes, infers or
  defaults it (GDPR art. 22, domain.md);
* the court-mandate level of a minor's case is accepted from the Comune and **never exported**: it exists
  only on ``social.case-event``, no outbound type has a field for it, and :data:`NEVER_CROSSES`
  lists it so the flow registry can refuse any flow that names it.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from schemas.codelists import Quartiere, SensitivityLabel, _coded
from schemas.tenancy import FragilitySignalReferral

__all__ = [
    "NEVER_CROSSES",
    "SOCIAL_MESSAGE_TYPES",
    "TERMINAL_CASE_STATUSES",
    "CaseEvent",
    "CaseStatus",
    "CourtMandateLevel",
    "EmergencyEventType",
    "EmergencyHousehold",
    "EmergencySocialEvent",
    "HardshipGrade",
    "Measure",
    "Municipio",
    "ServiceArea",
    "SocialCaseEvent",
    "SocialCaseStatus",
    "case_event_sensitivity",
]

if TYPE_CHECKING:  # static checkers see plain strings; at run time each is a validated enum string
    ServiceArea = str
    CaseStatus = str
    Measure = str
    CourtMandateLevel = str
    EmergencyEventType = str
else:
    ServiceArea = _coded("service_areas")
    CaseStatus = _coded("case_statuses")
    Measure = _coded("social_measures")
    CourtMandateLevel = _coded("court_mandate_levels")
    EmergencyEventType = _coded("emergency_event_types")

Municipio = Annotated[int, Field(ge=1, le=9)]
"""One of the nine Municipi of Milan."""

HardshipGrade = Annotated[int, Field(ge=1, le=4)]
"""Housing-hardship grade 1-4 (code list ``hardship-grades``), as a social worker set it. Never computed."""

OpaqueId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:\-]+$")]
"""A partner's own id (a case, a building): opaque, no spaces, no personal data by convention."""

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

    case_id: OpaqueId
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
    Accepted so the Comune's records decode whole; listed in :data:`NEVER_CROSSES`, absent from every
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
    """``social.case-status``: what ALER learns when the Comune acts on its referral (F3) — a case token, the
    event and the status; no raw case id, service area, measures, grade or court-mandate level.

    F3 lists ``case_id as token``: the minimiser replaces the Comune's case id with the crosswalk's opaque
    per-recipient token, so ALER can follow one case over time without ever learning its id.
    """

    case_id: OpaqueId
    """The gateway's opaque token for the case (``gwt_...``), never the Comune's case id."""
    event: CaseEvent
    status: CaseStatus


class EmergencyHousehold(_Payload):
    """Who is involved, as counts: enough to plan emergency housing, nobody named.

    Same shape and rules as ``schemas.tenancy.HouseholdCounts``, so what ALER sends validates here too.
    """

    persons: Annotated[int, Field(ge=1, le=20)]
    """Everyone involved."""
    minors: Count
    """Of whom under 18."""
    over_65: Count
    """Of whom 65 or older."""
    with_disability: Count
    """Of whom with a recognised disability."""

    @model_validator(mode="after")
    def _within_total(self) -> EmergencyHousehold:
        if self.minors + self.over_65 > self.persons:
            raise ValueError("minors and over_65 together cannot exceed persons")
        if self.with_disability > self.persons:
            raise ValueError("with_disability cannot exceed persons")
        return self


class EmergencySocialEvent(_Payload):
    """``emergency.social-event``: an event that needs the emergency social service (F10, seed 004 list).

    The place is coded — quartiere, municipio, the housing operator's building id — never a street address.
    A superset of ``schemas.tenancy.EmergencySocialEvent``: every payload ALER sends validates here, and the
    Comune can also report events outside public housing (no building id) and outside Milan (no municipio).
    """

    event_type: EmergencyEventType
    """What happened (code list ``emergency-event-types``)."""
    quartiere: Quartiere
    municipio: Municipio | None = None
    """Absent outside the city of Milan."""
    building_id: OpaqueId | None = None
    """The housing operator's opaque building id, when the event is in public housing."""
    household: EmergencyHousehold
    occurred_at: datetime | None = None
    """When the emergency happened, when the sender knows it (the envelope's ``occurred_at`` is when it was
    reported)."""


SOCIAL_MESSAGE_TYPES: dict[str, type[BaseModel]] = {
    "social.case-event": SocialCaseEvent,
    "social.case-status": SocialCaseStatus,
    "social.case-referral": FragilitySignalReferral,
    "emergency.social-event": EmergencySocialEvent,
}
"""The social-services message types, by name: merged into :data:`schemas.messages.MESSAGE_TYPES`.

``social.case-referral`` is the payload of ``tenancy.fragility-signal`` under the name the Comune receives
(F2's outbound type: F2 lets every field cross, so the shape is the same). ``tenancy.eviction-milestone`` is
registered by :mod:`schemas.tenancy`; the Comune's encoder reads that model. ``emergency.social-event`` here
replaces the narrower one in :mod:`schemas.tenancy` (same fields, building id and municipio optional, plus
``occurred_at``)."""

NEVER_CROSSES: Final[dict[str, tuple[str, ...]]] = {
    "social.case-event": ("court_mandate_level",),
}
"""Payload paths, per message type, that no flow may ever list in ``allowed_fields`` (same shape as
:data:`schemas.tenancy.NEVER_CROSSES`): the court-mandate level of a minor's case never leaves the gateway."""


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
