"""Emergency events (flow F10): the Comune's ``evento-emergenza`` in, and the
``segnalazione-pronto-intervento`` the emergency social service (Pronto Intervento Sociale) receives.

Both carry the event type (seed 004 categories), a coded place — quartiere, municipio and the housing
operator's building id, never a street address — and the household as counts. People without a codice
fiscale, STP or ENI code (a homeless person, an unaccompanied minor) are identified by the case id the
Comune opens for them or, before there is a case (a person found by the police who will not give a name), by
the Comune's own incident reference ``evento.riferimento``: subject identifier ``unidentified`` =
``comune:<riferimento>``, so that later messages about the same incident reach the same pseudonym. An emergency
is never held back for a missing identifier the person does not have. The emergency social service receives
the reference as ``persona.riferimento_evento`` (``<sender>:<reference>``) where the flow lets it cross.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

import orjson
from pydantic import AwareDatetime, Field, Strict, StringConstraints, ValidationError

from adapters.comune._native import (
    DisclosureLabels,
    Id,
    InboundModel,
    NativeCount,
    NativeMunicipio,
    OutboundHeader,
    OutboundModel,
    PersonCode,
    check_problems,
    contract_error,
    expect_type,
    person_code_of,
    person_identifier,
    resolved_code,
)
from schemas.envelope import Envelope, Identifier, SubjectRef
from schemas.errors import DecodeError, FieldProblem, problems_from_validation
from schemas.social import EmergencySocialEvent

__all__ = [
    "EMERGENCY_MESSAGE_TYPE",
    "ComuneEmergencyEvent",
    "EmergencyReferral",
    "emergency_event_from_document",
    "encode_emergency_event",
]

EMERGENCY_MESSAGE_TYPE = "emergency.social-event"

if TYPE_CHECKING:
    TipoEmergenza = str
    QuartiereNativo = str
else:
    TipoEmergenza = resolved_code("emergency_event_types")
    QuartiereNativo = resolved_code("quartieri")


# --- what the Comune sends ----------------------------------------------------------------------------------


class PersonaCoinvolta(InboundModel):
    """The person's code, or the case id the Comune opened for them; may be empty (or left out) when the
    event carries the Comune's incident reference instead."""

    codice_fiscale: PersonCode | None = None
    id_caso: Id | None = None


IncidentRef = Annotated[str, StringConstraints(min_length=1, max_length=48, pattern=r"^[A-Za-z0-9._:\-]+$")]
"""The Comune's own reference of an incident: what identifies a person who has no identifier."""


class Evento(InboundModel):
    tipo: TipoEmergenza
    accaduto_il: AwareDatetime
    riferimento: IncidentRef | None = Field(
        default=None,
        description="The Comune's own incident reference. Required when persona gives neither codice_fiscale "
                    "nor id_caso (a person with no identifier): the gateway knows the person by it.",
    )


class Luogo(InboundModel):
    quartiere: QuartiereNativo
    municipio: NativeMunicipio | None = None
    """Left out outside the city of Milan."""
    id_edificio: Id | None = None


class Nucleo(InboundModel):
    persone: Annotated[int, Strict(), Field(ge=1, le=20)]
    """Everyone involved."""
    minori: NativeCount
    """Of whom under 18."""
    over_65: NativeCount
    """Of whom 65 or older."""
    con_disabilita: NativeCount
    """Of whom with a recognised disability."""


class ComuneEmergencyEvent(InboundModel):
    """What the Comune sends when an event needs the emergency social service."""

    id_messaggio: Id
    id_correlazione: Id | None = None
    tipo_messaggio: Literal["evento-emergenza"]
    versione: Literal["1.0"]
    data_evento: AwareDatetime
    """When the event was reported."""
    finalita: Annotated[str, StringConstraints(max_length=64)] | None = None
    destinatari: tuple[Id, ...] = ()
    persona: PersonaCoinvolta = Field(default_factory=PersonaCoinvolta)
    evento: Evento
    luogo: Luogo
    nucleo: Nucleo


def _cross_field_problems(message: ComuneEmergencyEvent) -> list[FieldProblem]:
    problems = []
    persona = message.persona
    if persona.codice_fiscale is None and persona.id_caso is None and message.evento.riferimento is None:
        problems.append(FieldProblem("/persona", "identifier_required",
                                     "give codice_fiscale (or STP/ENI code), id_caso, or both; for a person with "
                                     "no identifier, give evento.riferimento (the Comune's incident reference)"))
    nucleo = message.nucleo
    if nucleo.minori + nucleo.over_65 > nucleo.persone:
        problems.append(FieldProblem("/nucleo", "counts_exceed_persons",
                                     "minori plus over_65 cannot exceed persone"))
    if nucleo.con_disabilita > nucleo.persone:
        problems.append(FieldProblem("/nucleo/con_disabilita", "counts_exceed_persons",
                                     "con_disabilita cannot exceed persone"))
    return problems


def _identifiers(message: ComuneEmergencyEvent) -> tuple[Identifier, ...]:
    persona, found = message.persona, []
    if persona.codice_fiscale is not None:
        found.append(person_identifier(persona.codice_fiscale))
    if persona.id_caso is not None:
        found.append(Identifier(system="comune-case", value=persona.id_caso))
    if message.evento.riferimento is not None:
        found.append(Identifier(system="unidentified", value=f"comune:{message.evento.riferimento}"))
    return tuple(found)


def _payload(message: ComuneEmergencyEvent) -> dict[str, Any]:
    luogo, nucleo = message.luogo, message.nucleo
    return {
        "event_type": message.evento.tipo,
        "quartiere": luogo.quartiere,
        "municipio": luogo.municipio,
        "building_id": luogo.id_edificio,
        "household": {
            "persons": nucleo.persone,
            "minors": nucleo.minori,
            "over_65": nucleo.over_65,
            "with_disability": nucleo.con_disabilita,
        },
        "occurred_at": message.evento.accaduto_il,
    }


def emergency_event_from_document(document: dict[str, Any]) -> Envelope:
    """A parsed ``evento-emergenza`` -> one canonical ``emergency.social-event`` envelope; raises DecodeError."""
    what = "the Comune's emergency-event contract"
    try:
        message = ComuneEmergencyEvent.model_validate(document)
    except ValidationError as exc:
        raise contract_error(exc, what) from None
    check_problems(_cross_field_problems(message), what)
    try:
        return Envelope(
            message_id=message.id_messaggio,
            correlation_id=message.id_correlazione or message.id_messaggio,
            message_type=EMERGENCY_MESSAGE_TYPE,
            sender="comune",
            recipients=message.destinatari,
            subject=SubjectRef(identifiers=_identifiers(message)),
            purpose=message.finalita,
            sensitivity=("S2",),
            occurred_at=message.data_evento,
            payload=_payload(message),
        )
    except ValidationError as exc:  # the native model already enforces every canonical rule
        raise DecodeError("contract", "message does not match the canonical emergency event",
                          problems_from_validation(exc)) from None


# --- what the emergency social service receives -------------------------------------------------------------


class PersonaSegnalata(OutboundModel):
    codice_fiscale: str | None
    """Codice fiscale, STP or ENI code, when the flow lets it cross."""
    id_caso: str | None
    """The Comune's case id, when the flow lets it cross."""
    riferimento_evento: str | None
    """``<sender>:<incident reference>`` for a person with no identifier, when the flow lets it cross."""


class EventoSegnalato(OutboundModel):
    tipo: str
    """Code of list ``emergency-event-types``."""
    accaduto_il: datetime | None
    """When it happened; null when the sender did not say."""


class LuogoSegnalato(OutboundModel):
    quartiere: str
    municipio: int | None
    id_edificio: str | None


class NucleoSegnalato(OutboundModel):
    persone: int
    minori: int
    over_65: int
    con_disabilita: int


class EmergencyReferral(OutboundHeader):
    """The ``segnalazione-pronto-intervento`` the emergency social service receives (F10)."""

    tipo_messaggio: Literal["segnalazione-pronto-intervento"] = "segnalazione-pronto-intervento"
    persona: PersonaSegnalata
    evento: EventoSegnalato
    luogo: LuogoSegnalato
    nucleo: NucleoSegnalato


def encode_emergency_event(envelope: Envelope, labels: DisclosureLabels) -> bytes:
    """A minimised ``emergency.social-event`` envelope -> the emergency service's JSON bytes."""
    expect_type(envelope, EMERGENCY_MESSAGE_TYPE)
    payload = envelope.payload_as(EmergencySocialEvent)
    person, case_id = person_code_of(envelope), envelope.subject.first("comune-case")
    incident = envelope.subject.first("unidentified")
    if person is None and case_id is None and incident is None:
        raise ValueError("an emergency referral needs the person's codice fiscale, STP or ENI code, a case id, "
                         "or the sender's incident reference")
    household = payload.household
    referral = EmergencyReferral(
        **OutboundHeader.header_fields(envelope, labels),
        persona=PersonaSegnalata(codice_fiscale=person, id_caso=case_id, riferimento_evento=incident),
        evento=EventoSegnalato(tipo=payload.event_type, accaduto_il=payload.occurred_at),
        luogo=LuogoSegnalato(quartiere=payload.quartiere, municipio=payload.municipio,
                             id_edificio=payload.building_id),
        nucleo=NucleoSegnalato(persone=household.persons, minori=household.minors, over_65=household.over_65,
                               con_disabilita=household.with_disability),
    )
    return orjson.dumps(referral.model_dump(mode="json"))
