"""Typed payloads of the canonical message types, and the registry that maps a type name to its model.

Field paths of these payloads (``arrears.amount_cents``) are what the flow registry lists as allowed fields
per recipient, so renaming a field is a contract change: bump the message type's schema version.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from schemas.codelists import (
    ArrearsKind,
    ArrearsStage,
    ContractType,
    HouseholdType,
    IseeBand,
    Quartiere,
    RentBand,
    RequestType,
)
from schemas.health import HEALTH_MESSAGE_TYPES
from schemas.microcredit import MICROCREDIT_MESSAGE_TYPES
from schemas.social import SOCIAL_MESSAGE_TYPES
from schemas.statistics import STATISTICS_MESSAGE_TYPES
from schemas.tenancy import TENANCY_MESSAGE_TYPES

__all__ = [
    "MESSAGE_TYPES",
    "Arrears",
    "Eligibility",
    "Household",
    "MicrocreditReferral",
    "MicrocreditRequest",
    "ReferralStatus",
    "Tenancy",
    "TenancyArrearsReferral",
    "UnknownMessageType",
    "validate_payload",
]

Cents = Annotated[int, Field(ge=0, le=10_000_000_00)]
"""An amount in euro cents; amounts never travel as floats."""


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Tenancy(_Payload):
    """The ALER tenancy the referral is about. ALER-internal: no flow lets it reach FWA."""

    contract_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    contract_type: ContractType
    unit_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    quartiere: Quartiere
    municipio: Annotated[int, Field(ge=1, le=9)]
    rent_band: RentBand


class Eligibility(_Payload):
    """FWA's eligibility test (seed 004): living or working in the Metropolitan City of Milan."""

    resides_in_metro_area: bool
    works_in_metro_area: bool


class Household(_Payload):
    type: HouseholdType
    size: Annotated[int, Field(ge=1, le=20)]


class Arrears(_Payload):
    amount_cents: Cents
    months: Annotated[int, Field(ge=0, le=600)]
    since: date | None = None
    kind: ArrearsKind
    stage: ArrearsStage


class MicrocreditRequest(_Payload):
    type: RequestType
    amount_cents: Cents


class TenancyArrearsReferral(_Payload):
    """``tenancy.arrears-referral``: ALER refers a tenant in rent arrears (flow F1 and, later, F2/F9)."""

    tenancy: Tenancy
    eligibility: Eligibility
    household: Household
    isee_band: IseeBand
    isee_value_cents: Cents | None = None
    """Known to ALER; never crosses (F1 allows the band only)."""
    arrears: Arrears
    request: MicrocreditRequest


class ReferralHousehold(_Payload):
    type: HouseholdType


class ReferralArrears(_Payload):
    amount_cents: Cents
    months: Annotated[int, Field(ge=0, le=600)]


class MicrocreditReferral(_Payload):
    """``referral.microcredit``: what FWA receives under F1 — exactly the fields that purpose needs."""

    eligibility: Eligibility
    household: ReferralHousehold
    isee_band: IseeBand
    arrears: ReferralArrears
    request: MicrocreditRequest


class ReferralStatus(_Payload):
    """``referral.status``: what happened to a message, sent back to its sender."""

    state: Literal["received", "forwarded", "denied", "rejected", "dropped"]
    reason_class: str | None = None
    recipients: tuple[str, ...] = ()
    at: datetime


MESSAGE_TYPES: dict[str, type[BaseModel]] = {
    **TENANCY_MESSAGE_TYPES,
    **SOCIAL_MESSAGE_TYPES,
    **HEALTH_MESSAGE_TYPES,
    **MICROCREDIT_MESSAGE_TYPES,
    **STATISTICS_MESSAGE_TYPES,
    "tenancy.arrears-referral": TenancyArrearsReferral,
    "referral.microcredit": MicrocreditReferral,
    "referral.status": ReferralStatus,
}
"""Every canonical message type the gateway knows, by name."""


class UnknownMessageType(ValueError):
    """The envelope names a message type the gateway does not know."""


def validate_payload(message_type: str, payload: dict[str, Any]) -> BaseModel:
    """The payload parsed by the model of ``message_type``; raises pydantic's ValidationError or
    :class:`UnknownMessageType`."""
    model = MESSAGE_TYPES.get(message_type)
    if model is None:
        raise UnknownMessageType(f"unknown message type; known: {', '.join(sorted(MESSAGE_TYPES))}")
    return model.model_validate(payload)
