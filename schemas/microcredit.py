"""Canonical payload of what Fondazione Welfare Ambrosiano (FWA) sends back about a microcredit referral.

``referral.microcredit-outcome`` closes the loop of flow F1 ("nothing is fire-and-forget", seed 004): FWA
quotes the referral id the gateway minted when it forwarded the referral, and says where the request stands.
FWA never resends the applicant's codice fiscale; the referral id is how the gateway finds the person again.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from schemas.codelists import _coded

__all__ = [
    "MICROCREDIT_MESSAGE_TYPES",
    "MicrocreditOutcome",
    "OutcomeState",
    "RejectionReason",
    "RequestPurpose",
]

if TYPE_CHECKING:  # static checkers see plain strings; at run time each is a validated enum string
    OutcomeState = str
    RejectionReason = str
    RequestPurpose = str
else:
    OutcomeState = _coded("fwa_outcome_states")
    RejectionReason = _coded("fwa_rejection_reasons")
    RequestPurpose = _coded("fwa_request_purposes")  # what a request is for; F1's referral may carry it later

ApprovedCents = Annotated[int, Field(ge=1, le=10_000_000_00)]
"""An approved amount in euro cents: at least one cent; amounts never travel as floats."""


class MicrocreditOutcome(BaseModel):
    """``referral.microcredit-outcome``: the state FWA reached on a referral, and when."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    referral_id: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:\-]+$")]
    """The gateway-minted id of the referral FWA received (``id_segnalazione``)."""
    state: OutcomeState
    """Code of list ``fwa-outcome-states``: assessing, approved, rejected, withdrawn, counselling-started."""
    approved_amount_cents: ApprovedCents | None = None
    """The amount FWA approved: present if and only if ``state`` is ``approved``."""
    rejection_reason: RejectionReason | None = None
    """Why FWA rejected the request (code list ``fwa-rejection-reasons``); only with state ``rejected``."""
    decided_at: datetime
    """When FWA reached this state."""

    @model_validator(mode="after")
    def _fields_fit_state(self) -> MicrocreditOutcome:
        if (self.state == "approved") != (self.approved_amount_cents is not None):
            raise ValueError("approved_amount_cents is required when state is approved, and only then")
        if self.rejection_reason is not None and self.state != "rejected":
            raise ValueError("rejection_reason is allowed only when state is rejected")
        return self


MICROCREDIT_MESSAGE_TYPES: dict[str, type[BaseModel]] = {
    "referral.microcredit-outcome": MicrocreditOutcome,
}
"""The microcredit message types added by this module: merged into :data:`schemas.messages.MESSAGE_TYPES`."""
