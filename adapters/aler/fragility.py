"""ALER's fragility referral (``segnalazione-fragilita``, flow F2) and its translation to
``tenancy.fragility-signal``.

A community manager or porter notices a fragile household (isolation, arrears that are not the tenant's fault,
minors at risk, degraded housing, ...) and ALER refers it to the Comune's social services. After the common
header (:mod:`adapters.aler._native`)::

    contratto     id_contratto, quartiere (code, label or alias), municipio (1-9)
    intestatario  codice_fiscale (codice fiscale, STP or ENI code) -> the envelope's subject
    nucleo        tipologia, componenti (how many people, 1-20), presenza_minori, presenza_over_65,
                  presenza_disabilita
    segnali       one or more fragility signal codes (code, Italian label or alias), each at most once

Signals are codes, never free text, and there is no health or violence code among them: a disclosure of
violence travels as ``segnalazione-riservata`` (flow F7) only. The contract id becomes a subject identifier
(``aler-contract``) for the crosswalk, never a payload field; the Comune answers under the same correlation id.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from adapters._json import load_json_object
from adapters.aler._native import (
    FragilitySignalCode,
    Header,
    HouseholdTypeCode,
    Id,
    Municipio,
    Native,
    Persona,
    QuartiereCode,
    build_envelope,
    check_unique,
    parse,
)
from adapters.aler.tenancy import subject_identifiers
from schemas.envelope import Envelope

__all__ = ["AlerFragilityMessage", "decode", "decode_document"]

MESSAGE_TYPE = "tenancy.fragility-signal"


class ContrattoZona(Native):
    id_contratto: Id
    quartiere: QuartiereCode
    municipio: Municipio


class NucleoProfilo(Native):
    tipologia: HouseholdTypeCode
    componenti: Annotated[int, Field(ge=1, le=20)]
    presenza_minori: bool
    presenza_over_65: bool
    presenza_disabilita: bool


class AlerFragilityMessage(Header):
    """ALER's ``segnalazione-fragilita``: a fragile household referred to the Comune (F2)."""

    tipo_messaggio: Literal["segnalazione-fragilita"]
    contratto: ContrattoZona
    intestatario: Persona
    nucleo: NucleoProfilo
    segnali: list[FragilitySignalCode] = Field(min_length=1, max_length=20)

    @field_validator("segnali")
    @classmethod
    def _unique_signals(cls, value: list[str]) -> list[str]:
        check_unique(value, "fragility signal")
        return value


def _payload(message: AlerFragilityMessage) -> dict[str, Any]:
    c, n = message.contratto, message.nucleo
    return {
        "signals": list(message.segnali),
        "quartiere": c.quartiere,
        "municipio": c.municipio,
        "household": {
            "type": n.tipologia,
            "size": n.componenti,
            "minors": n.presenza_minori,
            "over_65": n.presenza_over_65,
            "disability": n.presenza_disabilita,
        },
    }


def decode_document(document: dict[str, Any]) -> list[Envelope]:
    """A parsed ``segnalazione-fragilita`` -> one ``tenancy.fragility-signal`` envelope; raises DecodeError."""
    message = parse(AlerFragilityMessage, document, "fragility referral (segnalazione-fragilita)")
    identifiers = subject_identifiers(message.intestatario.codice_fiscale, message.contratto.id_contratto)
    return [build_envelope(message, MESSAGE_TYPE, identifiers, _payload(message))]


def decode(raw: bytes, content_type: str = "application/json") -> list[Envelope]:
    """ALER ``segnalazione-fragilita`` bytes -> one ``tenancy.fragility-signal`` envelope; raises DecodeError."""
    return decode_document(load_json_object(raw, content_type))
