"""A person's consent as the decision sees it: one immutable version of a consent lineage.

Recorded from a FHIR R4 Consent (:mod:`gateway.consents`); stored under the subject's pseudonym, never
under a codice fiscale.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

__all__ = ["ConsentRecord", "ConsentStatus"]

ConsentStatus = Literal["draft", "active", "inactive", "entered-in-error"]


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    """One version of a consent."""

    consent_id: str
    """Lineage id: every version of one consent shares it."""
    version: int
    subject_pseudonym: str
    status: ConsentStatus
    decision: Literal["permit", "deny"]
    purposes: frozenset[str]
    recipients: frozenset[str] = field(default_factory=frozenset)
    """Organisations the provision names; empty means any recipient of a declared flow."""
    period_start: datetime | None = None
    period_end: datetime | None = None
    recorded_at: datetime | None = None
    withdrawn: bool = False
    """True for the version a withdrawal created."""

    @property
    def ref(self) -> str:
        """``id@version``, the consent reference written in decisions and outgoing messages."""
        return f"{self.consent_id}@{self.version}"

    def in_period(self, now: datetime) -> bool:
        return (self.period_start is None or self.period_start <= now) and (
            self.period_end is None or now < self.period_end
        )
