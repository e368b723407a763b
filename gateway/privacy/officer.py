"""Who asks the privacy office, and what they ask about: the officer (whose organisation bounds what they see),
one question of theirs (who, in which request, on which gateway instance, when: what its audit record says), and
the person it names by codice fiscale, STP or ENI code."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.audit.record import AuditRecord
from gateway.identity.codice_fiscale import InvalidPersonIdentifier, classify, validate
from gateway.pipeline import ledger
from schemas.errors import FieldProblem

__all__ = ["Officer", "Question", "aware", "person_identifier"]


@dataclass(frozen=True, slots=True)
class Officer:
    """Who asks: recorded in the ``privacy-query`` audit record of every question."""

    client_id: str
    organisation: str
    token_id: str | None = None
    sees_all: bool = False
    """An officer of the gateway's data protection office: reports cover every organisation. Any other
    officer's reports cover only what their own organisation sent, received or recorded."""

    def concerns(self, record: dict[str, Any]) -> bool:
        """Whether this officer may see an audit record (as stored JSON): always for the data protection office,
        else only if the officer's organisation sent, received or recorded what it is about."""
        return self.sees_all or self.organisation in (
            record.get("source_org"), record.get("recipient_org"), record.get("requesting_org"))


@dataclass(frozen=True, slots=True)
class Question:
    """One question an officer asks: every answer appends an audit record saying who asked it, in which request,
    on which gateway instance and when."""

    officer: Officer
    request_id: str
    instance_id: str
    at: datetime

    def audit(self, query: str, subject: str | None = None, queried_ref: str | None = None) -> AuditRecord:
        """The ``privacy-query`` record of this question (``subject``: the keyed reference of the person asked
        about; ``queried_ref``: what was read, e.g. ``audit-log/42``)."""
        officer = self.officer
        return ledger.privacy_query_record(query, officer.client_id, officer.token_id, officer.organisation,
                                           self.instance_id, self.request_id, self.at, subject, queried_ref)


def person_identifier(identifier: str) -> tuple[str, str]:
    """The identifier system (``cf``, ``stp``, ``eni``) and normalised value of a person's identifier; a
    :class:`gateway.errors.ContractViolation` (never echoing the identifier) when it is none of them."""
    from gateway.errors import ContractViolation

    try:
        kind = classify(identifier)
    except InvalidPersonIdentifier as exc:
        raise ContractViolation("the identifier is not a codice fiscale, STP or ENI code",
                                [FieldProblem("/identifier", "identifier", exc.reason)]) from None
    return kind, validate(identifier) if kind == "cf" else identifier.strip().upper()


def aware(value: datetime) -> datetime:
    """``value`` with UTC as its offset when it has none."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
