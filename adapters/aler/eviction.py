"""ALER's eviction-procedure milestone (``evento-sfratto``, flow F9) and its translation to
``tenancy.eviction-milestone``.

When an eviction procedure reaches a stage with a deadline, ALER tells the Comune (and FWA, where a flow allows)
so that help can arrive before the deadline. After the common header (:mod:`adapters.aler._native`)::

    contratto     id_contratto, quartiere (code, label or alias), municipio (1-9)
    intestatario  codice_fiscale (codice fiscale, STP or ENI code) -> the envelope's subject
    procedura     stadio (arrears stage code, not ``none``), scadenza (the deadline, ISO date)

The contract id becomes a subject identifier (``aler-contract``), never a payload field.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import field_validator

from adapters._json import load_json_object
from adapters.aler._native import ArrearsStageCode, Header, Native, Persona, build_envelope, parse
from adapters.aler.fragility import ContrattoZona
from adapters.aler.tenancy import subject_identifiers
from schemas.envelope import Envelope

__all__ = ["AlerEvictionMessage", "decode", "decode_document"]

MESSAGE_TYPE = "tenancy.eviction-milestone"


class Procedura(Native):
    stadio: ArrearsStageCode
    scadenza: date

    @field_validator("stadio")
    @classmethod
    def _a_procedure(cls, value: str) -> str:
        if value == "none":
            raise ValueError("stage none is not an eviction milestone")
        return value


class AlerEvictionMessage(Header):
    """ALER's ``evento-sfratto``: an eviction procedure reached a stage with a deadline (F9)."""

    tipo_messaggio: Literal["evento-sfratto"]
    contratto: ContrattoZona
    intestatario: Persona
    procedura: Procedura


def decode_document(document: dict[str, Any]) -> list[Envelope]:
    """A parsed ``evento-sfratto`` -> one ``tenancy.eviction-milestone`` envelope; raises DecodeError."""
    message = parse(AlerEvictionMessage, document, "eviction milestone (evento-sfratto)")
    identifiers = subject_identifiers(message.intestatario.codice_fiscale, message.contratto.id_contratto)
    payload = {
        "stage": message.procedura.stadio,
        "deadline": message.procedura.scadenza,
        "quartiere": message.contratto.quartiere,
        "municipio": message.contratto.municipio,
    }
    return [build_envelope(message, MESSAGE_TYPE, identifiers, payload)]


def decode(raw: bytes, content_type: str = "application/json") -> list[Envelope]:
    """ALER ``evento-sfratto`` bytes -> one ``tenancy.eviction-milestone`` envelope; raises DecodeError."""
    return decode_document(load_json_object(raw, content_type))
