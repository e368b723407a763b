"""The Comune's native case event (``evento-caso``) and its translation to ``social.case-event``.

The Comune's case-management system reports every opening, status change and closing of a social-service
case, with the municipal case id, the person's codice fiscale (or STP/ENI code), the service area, the active
measures, the hardship grade a social worker set and, for minors, the level of the judicial authority's
involvement. That level is accepted so the record decodes whole, and it stops here: it is never exported
(see :data:`schemas.social.NEVER_CROSSES`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AwareDatetime, Field, Strict, StringConstraints, ValidationError

from adapters.comune._native import (
    Id,
    InboundModel,
    NativeMunicipio,
    PersonCode,
    check_problems,
    contract_error,
    person_identifier,
    resolved_code,
)
from schemas.envelope import Envelope, Identifier, SubjectRef
from schemas.errors import DecodeError, FieldProblem, problems_from_validation
from schemas.social import TERMINAL_CASE_STATUSES, case_event_sensitivity

__all__ = ["CASE_EVENT_MESSAGE_TYPE", "ComuneCaseEvent", "case_event_from_document"]

CASE_EVENT_MESSAGE_TYPE = "social.case-event"

if TYPE_CHECKING:
    StatoCaso = str
    AreaServizio = str
    Misura = str
    LivelloMandato = str
else:
    StatoCaso = resolved_code("case_statuses")
    AreaServizio = resolved_code("service_areas")
    Misura = resolved_code("social_measures")
    LivelloMandato = resolved_code("court_mandate_levels")

_EVENTS = {"apertura": "opened", "cambio-stato": "status", "chiusura": "closed"}


class Persona(InboundModel):
    codice_fiscale: PersonCode
    """Codice fiscale, or STP/ENI code for people without one."""


class Caso(InboundModel):
    id_caso: Id
    evento: Literal["apertura", "cambio-stato", "chiusura"]
    stato: StatoCaso
    """Status after the event; ``chiusura`` carries a closing status (closed, not-competent), no other event does."""
    municipio: NativeMunicipio
    area: AreaServizio
    misure: tuple[Misura, ...] = Field(default=(), max_length=20)
    grado_disagio: Annotated[int, Strict(), Field(ge=1, le=4)] | None = None
    """Hardship grade 1-4 as the social worker set it; left out when the case has not been graded."""
    livello_mandato_tribunale: LivelloMandato | None = None
    """Judicial-authority involvement in a minor's case. Never exported."""


class ComuneCaseEvent(InboundModel):
    """What the Comune sends when a social-service case is opened, changes status or is closed."""

    id_messaggio: Id
    id_correlazione: Id | None = None
    """The correlation id of the referral this event answers (F2 -> F3), if any."""
    tipo_messaggio: Literal["evento-caso"]
    versione: Literal["1.0"]
    data_evento: AwareDatetime
    finalita: Annotated[str, StringConstraints(max_length=64)] | None = None
    destinatari: tuple[Id, ...] = ()
    persona: Persona
    caso: Caso


def _cross_field_problems(message: ComuneCaseEvent) -> list[FieldProblem]:
    caso = message.caso
    if (caso.evento == "chiusura") != (caso.stato in TERMINAL_CASE_STATUSES):
        return [FieldProblem(
            "/caso/stato", "status_event_mismatch",
            "evento chiusura needs stato closed or not-competent; apertura and cambio-stato need another stato",
        )]
    return []


def _payload(caso: Caso) -> dict[str, Any]:
    return {
        "case_id": caso.id_caso,
        "event": _EVENTS[caso.evento],
        "status": caso.stato,
        "municipio": caso.municipio,
        "service_area": caso.area,
        "measures": tuple(dict.fromkeys(caso.misure)),  # aliases may name one measure twice
        "hardship_grade": caso.grado_disagio,
        "court_mandate_level": caso.livello_mandato_tribunale,
    }


def case_event_from_document(document: dict[str, Any]) -> Envelope:
    """A parsed ``evento-caso`` -> one canonical ``social.case-event`` envelope; raises DecodeError."""
    what = "the Comune's case-event contract"
    try:
        message = ComuneCaseEvent.model_validate(document)
    except ValidationError as exc:
        raise contract_error(exc, what) from None
    check_problems(_cross_field_problems(message), what)
    caso = message.caso
    try:
        return Envelope(
            message_id=message.id_messaggio,
            correlation_id=message.id_correlazione or message.id_messaggio,
            message_type=CASE_EVENT_MESSAGE_TYPE,
            sender="comune",
            recipients=message.destinatari,
            subject=SubjectRef(identifiers=(
                person_identifier(message.persona.codice_fiscale),
                Identifier(system="comune-case", value=caso.id_caso),
            )),
            purpose=message.finalita,
            sensitivity=case_event_sensitivity(caso.area, caso.livello_mandato_tribunale),
            occurred_at=message.data_evento,
            payload=_payload(caso),
        )
    except ValidationError as exc:  # the native model already enforces every canonical rule
        raise DecodeError("contract", "message does not match the canonical case event",
                          problems_from_validation(exc)) from None
