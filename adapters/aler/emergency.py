"""ALER's emergency event (``evento-emergenza``, flow F10) and its translation to ``emergency.social-event``
(:class:`schemas.social.EmergencySocialEvent`).

Fire, flood, executive eviction, water cut off for arrears, a homeless person, a person put out by their host,
an unaccompanied minor (seed 004): ALER tells the emergency social service. Such flows are never blocked for a
missing consent and always audited. One message per household. After the common header
(:mod:`adapters.aler._native`)::

    evento     tipo (event type code, Italian label or alias, e.g. ``Incendio``), accaduto_il (optional: when it
               happened, ISO 8601 with a UTC offset; data_evento is when ALER reported it), riferimento
               (optional: ALER's own incident reference, at most 48 letters, digits and ``._:-``)
    luogo      id_edificio (ALER building id), quartiere (code, label or alias), municipio (1-9)
    nucleo     persone (1-20), minori, over_65, con_disabilita (counts; minori + over_65 <= persone)
    persona    optional: codice_fiscale (codice fiscale, STP or ENI code) of the holder or person involved
    contratto  optional: id_contratto, when the household is an ALER tenancy

At least one of ``persona``, ``contratto`` and ``evento.riferimento`` is required: an envelope needs a subject.
A person with no identifier at all (an unaccompanied minor, someone who will not give a name) is known by the
incident reference alone: subject identifier ``unidentified`` = ``aler:<riferimento>``, so that later messages
about the same incident reach the same pseudonym; the reference travels with the person's code too, when
there is one. Only this emergency message may do without a person identifier. The street address is never
part of the message; the building id says where to go.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import AwareDatetime, Field, StringConstraints, model_validator

from adapters._json import load_json_object
from adapters.aler._native import (
    EmergencyEventCode,
    Header,
    Id,
    Municipio,
    Native,
    Persona,
    QuartiereCode,
    build_envelope,
    parse,
    person_identifier,
)
from schemas.envelope import Envelope, Identifier
from schemas.errors import DecodeError, FieldProblem

__all__ = ["AlerEmergencyMessage", "decode", "decode_document"]

MESSAGE_TYPE = "emergency.social-event"

Count = Annotated[int, Field(ge=0, le=20)]

IncidentRef = Annotated[str, StringConstraints(min_length=1, max_length=48, pattern=r"^[A-Za-z0-9._:\-]+$")]
"""ALER's own reference of an incident: what identifies a person who has no identifier (``unidentified``)."""


class Evento(Native):
    tipo: EmergencyEventCode
    accaduto_il: AwareDatetime | None = None
    riferimento: IncidentRef | None = Field(
        default=None,
        description="ALER's own incident reference. Required when neither persona nor contratto is given "
                    "(a person with no identifier): the gateway knows the person by it, as aler:<riferimento>.",
    )


class Luogo(Native):
    id_edificio: Id
    quartiere: QuartiereCode
    municipio: Municipio


class NucleoConteggi(Native):
    persone: Annotated[int, Field(ge=1, le=20)]
    minori: Count
    over_65: Count
    con_disabilita: Count

    @model_validator(mode="after")
    def _within_total(self) -> Self:
        if self.minori + self.over_65 > self.persone:
            raise ValueError("minori and over_65 together cannot exceed persone")
        if self.con_disabilita > self.persone:
            raise ValueError("con_disabilita cannot exceed persone")
        return self


class ContrattoRiferimento(Native):
    id_contratto: Id


class AlerEmergencyMessage(Header):
    """ALER's ``evento-emergenza``: an event for the emergency social service (F10)."""

    tipo_messaggio: Literal["evento-emergenza"]
    evento: Evento
    luogo: Luogo
    nucleo: NucleoConteggi
    persona: Persona | None = None
    contratto: ContrattoRiferimento | None = None


def decode_document(document: dict[str, Any]) -> list[Envelope]:
    """A parsed ``evento-emergenza`` -> one ``emergency.social-event`` envelope; raises DecodeError."""
    message = parse(AlerEmergencyMessage, document, "emergency event (evento-emergenza)")
    identifiers: list[Identifier] = []
    if message.persona is not None:
        identifiers.append(person_identifier(message.persona.codice_fiscale))
    if message.contratto is not None:
        identifiers.append(Identifier(system="aler-contract", value=message.contratto.id_contratto))
    if message.evento.riferimento is not None:
        identifiers.append(Identifier(system="unidentified", value=f"aler:{message.evento.riferimento}"))
    if not identifiers:
        raise DecodeError(
            "contract",
            "message does not match ALER's emergency event (evento-emergenza) contract",
            [FieldProblem("/persona", "missing",
                          "give persona.codice_fiscale or contratto.id_contratto; for a person with no identifier, "
                          "give evento.riferimento (ALER's incident reference)")],
        )
    n = message.nucleo
    payload = {
        "event_type": message.evento.tipo,
        "quartiere": message.luogo.quartiere,
        "municipio": message.luogo.municipio,
        "building_id": message.luogo.id_edificio,
        "household": {"persons": n.persone, "minors": n.minori, "over_65": n.over_65,
                      "with_disability": n.con_disabilita},
        "occurred_at": message.evento.accaduto_il,
    }
    return [build_envelope(message, MESSAGE_TYPE, tuple(identifiers), payload)]


def decode(raw: bytes, content_type: str = "application/json") -> list[Envelope]:
    """ALER ``evento-emergenza`` bytes -> one ``emergency.social-event`` envelope; raises DecodeError."""
    return decode_document(load_json_object(raw, content_type))
