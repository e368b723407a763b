"""Canonical payloads of what ALER's tenancy system sends besides the arrears referral.

One model per message type (see :data:`TENANCY_MESSAGE_TYPES`):

==============================  ====  ==========================================================  ==========
message type                    flow  what it is                                                   labels
==============================  ====  ==========================================================  ==========
``tenancy.record``              load  the full tenancy record, for initial loads and backfills     S2 S3
``tenancy.fragility-signal``    F2    ALER flags a fragile household to the Comune (segnalazione)  S2 S3
``tenancy.eviction-milestone``  F9    a milestone of an eviction procedure, with its deadline      S2
``safety.disclosure``           F7    a safe way for the anti-violence service to make contact     S4 SDV R
==============================  ====  ==========================================================  ==========

ALER's other messages decode into types defined elsewhere: the F4 care request into ``care.service-request``
(:class:`schemas.health.CareServiceRequest`) and the F10 emergency event into ``emergency.social-event``
(:class:`schemas.social.EmergencySocialEvent`).

Rules that hold for every model here: frozen, unknown fields forbidden, coded values from ``schemas/codelists``
(never free text), amounts in euro cents, no names and no birth dates. The codice fiscale of the person a
message is about travels in the envelope's subject, never in a payload. Only ``tenancy.record`` carries the
street address, and no flow may let it cross (:data:`NEVER_CROSSES`). ``safety.disclosure`` carries nothing
from the tenancy record: the abuser may hold the contract, so not even a contract, unit or building id.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Annotated, Final, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from schemas.codelists import ArrearsKind, ArrearsStage, ContractType, HouseholdType, IseeBand, Quartiere, RentBand
from schemas.codelists import _coded as coded

__all__ = [
    "MINOR_AGE_BANDS",
    "NEVER_CROSSES",
    "OVER_65_AGE_BANDS",
    "TENANCY_MESSAGE_TYPES",
    "Address",
    "AgeBand",
    "EvictionMilestone",
    "FragilitySignal",
    "FragilitySignalReferral",
    "HouseholdMember",
    "HouseholdProfile",
    "HouseholdRelation",
    "SafeContactChannel",
    "SafeTimeWindow",
    "SafetyDisclosure",
    "TenancyArrears",
    "TenancyRecord",
]

if TYPE_CHECKING:  # static checkers see plain strings; at run time each is a validated enum string
    FragilitySignal = str
    HouseholdRelation = str
    AgeBand = str
    SafeContactChannel = str
    SafeTimeWindow = str
else:
    FragilitySignal = coded("fragility_signals")
    HouseholdRelation = coded("household_relations")
    AgeBand = coded("age_bands")
    SafeContactChannel = coded("safe_contact_channels")
    SafeTimeWindow = coded("safe_time_windows")

PartnerId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:\-]+$")]
"""An opaque ALER identifier (contract, unit, building): no spaces, no personal data by convention."""
Cents = Annotated[int, Field(ge=0, le=10_000_000_00)]
"""An amount in euro cents; amounts never travel as floats."""
Municipio = Annotated[int, Field(ge=1, le=9)]
"""One of Milan's nine municipi."""
HouseholdSize = Annotated[int, Field(ge=1, le=20)]

MINOR_AGE_BANDS: Final = frozenset({"age-0-5", "age-6-13", "age-14-17"})
"""Age bands whose members are minors (under 18)."""
OVER_65_AGE_BANDS: Final = frozenset({"age-65-74", "age-75-84", "age-85-plus"})
"""Age bands whose members are 65 or older."""

NEVER_CROSSES: Final[dict[str, tuple[str, ...]]] = {
    "tenancy.record": ("address", "address.street", "address.house_number"),
}
"""Payload paths, per message type, that no flow may list in ``allowed_fields``: ALER-internal data."""


def _unique(values: tuple[str, ...], what: str) -> None:
    if len(set(values)) != len(values):
        raise ValueError(f"each {what} may appear only once")


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- tenancy.record -------------------------------------------------------------------------------------------


class Address(_Payload):
    """Street address of the unit. Personal data in practice (with the unit it locates a household) and
    ALER-internal: never allowed to cross to any partner (:data:`NEVER_CROSSES`)."""

    street: Annotated[str, StringConstraints(min_length=1, max_length=120)]
    """Street name as ALER writes it, e.g. ``Via Civitavecchia``."""
    house_number: Annotated[str, StringConstraints(min_length=1, max_length=16, pattern=r"^[0-9A-Za-z/ \-]+$")]
    """House number with any suffix, e.g. ``12``, ``12/A``, ``7 bis``."""


class HouseholdMember(_Payload):
    """One person of the household, without name or birth date: a relation, an age band and three flags."""

    relation: HouseholdRelation
    """Relation to the contract holder (code list ``household-relations``); the holder is ``holder``."""
    age_band: AgeBand
    """Age band (code list ``age-bands``); its boundaries fall at 18 and 65, so it decides both flags below."""
    minor: bool
    """Under 18; must agree with ``age_band``."""
    over_65: bool
    """65 or older; must agree with ``age_band``."""
    disability: bool
    """A recognised disability (invalidità civile) is on ALER's file; never the condition itself."""

    @model_validator(mode="after")
    def _flags_agree_with_age_band(self) -> Self:
        if self.minor != (self.age_band in MINOR_AGE_BANDS):
            raise ValueError("minor flag must be true exactly for the age bands under 18")
        if self.over_65 != (self.age_band in OVER_65_AGE_BANDS):
            raise ValueError("over_65 flag must be true exactly for the age bands from 65")
        return self


class TenancyArrears(_Payload):
    """What the household owes ALER; absent from the record when nothing is owed."""

    amount_cents: Annotated[int, Field(ge=1, le=10_000_000_00)]
    """Total owed, in euro cents; at least one cent."""
    months: Annotated[int, Field(ge=0, le=600)]
    """Monthly instalments unpaid (0 when less than one month's rent is owed)."""
    since: date | None = None
    """First unpaid due date, when ALER knows it."""
    kind: ArrearsKind
    """What is owed: rent, charges or utilities (code list ``arrears-kinds``)."""
    stage: ArrearsStage
    """Where ALER's recovery procedure stands (code list ``arrears-stages``); never ``none`` here."""

    @model_validator(mode="after")
    def _owed(self) -> Self:
        if self.stage == "none":
            raise ValueError("arrears stage none means nothing is owed: leave the arrears out instead")
        return self


class TenancyRecord(_Payload):
    """``tenancy.record``: one ALER tenancy as a whole, for initial loads and backfills.

    The holder is the envelope's subject (codice fiscale and ``aler-contract`` id), not a payload field. No
    health or violence detail is ever part of it; a violence disclosure (``safety.disclosure``) is never
    written back to it.
    """

    contract_id: PartnerId
    """ALER contract id (opaque)."""
    contract_type: ContractType
    """``SAP`` (public housing services) or ``SAT`` (transitional housing services)."""
    start_date: date
    """First day of the contract."""
    end_date: date | None = None
    """Last day of the contract when it has one (SAT contracts are temporary); not before ``start_date``."""
    unit_id: PartnerId
    """ALER unit (alloggio) id."""
    building_id: PartnerId
    """ALER building (stabile) id; emergencies (F10) are located by it."""
    address: Address
    """Street and number: ALER-internal, never allowed to cross (:data:`NEVER_CROSSES`)."""
    quartiere: Quartiere
    """Neighbourhood code (code list ``quartieri``)."""
    municipio: Municipio
    """Municipio 1-9."""
    household_type: HouseholdType
    """Household type (code list ``household-types``, seed 004 list plus elderly single)."""
    members: tuple[HouseholdMember, ...] = Field(min_length=1, max_length=20)
    """Every person in the household, the holder included (exactly one ``holder``)."""
    rent_band: RentBand
    """Rent band (code list ``rent-bands``): protezione, accesso, permanenza, decadenza."""
    isee_band: IseeBand
    """ISEE band with the seed's cut-offs; the ISEE value itself is not part of the record."""
    monthly_rent_cents: Cents
    """Current monthly rent, in euro cents."""
    rent_over_30_percent_of_income: bool
    """Rent above 30% of household income (seed 004 hardship rule). ALER computes it from rent and the income
    on its file; the income never reaches the gateway, which takes the flag as given and never recomputes it."""
    arrears: TenancyArrears | None = None
    """What is owed, or absent when nothing is."""
    fragility_signals: tuple[FragilitySignal, ...] = Field(default=(), max_length=20)
    """Fragility signals on the tenancy (code list ``fragility-signals``), each at most once; never free text."""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.end_date is not None and self.end_date < self.start_date:
            raise ValueError("end_date must not be before start_date")
        if sum(member.relation == "holder" for member in self.members) != 1:
            raise ValueError("members must include exactly one holder")
        _unique(self.fragility_signals, "fragility signal")
        return self


# --- tenancy.fragility-signal (F2) ----------------------------------------------------------------------------


class HouseholdProfile(_Payload):
    """What the Comune needs to know about a household to take a referral in charge: no one is named."""

    type: HouseholdType
    """Household type (code list ``household-types``)."""
    size: HouseholdSize
    """Number of people, 1-20."""
    minors: bool
    """At least one member is under 18."""
    over_65: bool
    """At least one member is 65 or older."""
    disability: bool
    """At least one member has a recognised disability."""


class FragilitySignalReferral(_Payload):
    """``tenancy.fragility-signal``: ALER signals a fragile household to the Comune's social services (F2).

    The Comune answers with ``F3`` (taken in charge, opaque case token) under the same correlation id.
    """

    signals: tuple[FragilitySignal, ...] = Field(min_length=1, max_length=20)
    """What was observed (code list ``fragility-signals``), each at most once."""
    quartiere: Quartiere
    """Neighbourhood code, so the referral reaches the right territorial social service."""
    municipio: Municipio
    """Municipio 1-9."""
    household: HouseholdProfile
    """Household type, size and flags."""

    @model_validator(mode="after")
    def _no_repeats(self) -> Self:
        _unique(self.signals, "fragility signal")
        return self


# --- tenancy.eviction-milestone (F9) --------------------------------------------------------------------------


class EvictionMilestone(_Payload):
    """``tenancy.eviction-milestone``: an eviction procedure reached a stage with a deadline (F9)."""

    stage: ArrearsStage
    """Stage reached (code list ``arrears-stages``); never ``none``."""
    deadline: date
    """The date that matters for this stage: payment deadline, hearing or access date of the bailiff."""
    quartiere: Quartiere
    """Neighbourhood code."""
    municipio: Municipio
    """Municipio 1-9."""

    @model_validator(mode="after")
    def _a_procedure(self) -> Self:
        if self.stage == "none":
            raise ValueError("stage none is not an eviction milestone")
        return self


# --- safety.disclosure (F7) -----------------------------------------------------------------------------------

SafePhone = Annotated[str, StringConstraints(min_length=6, max_length=16, pattern=r"^\+?[0-9]{6,15}$")]
"""A phone number: optional ``+`` and 6-15 digits (separators removed by the adapter)."""


class SafetyDisclosure(_Payload):
    """``safety.disclosure``: a person disclosed violence and consents to be contacted by the anti-violence
    service (F7, S4 + SDV + R). Only a safe way to make contact travels.

    Nothing about the abuser and nothing from the tenancy record (no contract, unit or building id, no
    quartiere): the abuser may hold the contract. Never written back to the tenancy record, never sent to ALER.
    """

    channel: SafeContactChannel
    """How contact is safe (code list ``safe-contact-channels``)."""
    safe_phone: SafePhone | None = None
    """A number the person says is safe: personal data, allowed to cross only to the anti-violence service.
    Present exactly when ``channel`` is ``phone-safe-number``."""
    time_window: SafeTimeWindow
    """When contact is safe (code list ``safe-time-windows``)."""

    @model_validator(mode="after")
    def _phone_only_for_phone_channel(self) -> Self:
        if self.channel == "phone-safe-number" and self.safe_phone is None:
            raise ValueError("channel phone-safe-number needs safe_phone")
        if self.channel != "phone-safe-number" and self.safe_phone is not None:
            raise ValueError("safe_phone is only sent with channel phone-safe-number")
        return self


TENANCY_MESSAGE_TYPES: dict[str, type[BaseModel]] = {
    "tenancy.record": TenancyRecord,
    "tenancy.fragility-signal": FragilitySignalReferral,
    "tenancy.eviction-milestone": EvictionMilestone,
    "safety.disclosure": SafetyDisclosure,
}
"""The message types defined here, by name: to be merged into :data:`schemas.messages.MESSAGE_TYPES`."""
