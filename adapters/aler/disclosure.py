"""ALER's confidential referral (``segnalazione-riservata``, flow F7) and its translation to
``safety.disclosure`` (S4 + SDV + R).

A tenant discloses violence to a community manager and consents to be contacted by the anti-violence service.
Only a safe way to make contact travels. After the common header (:mod:`adapters.aler._native`), without
``id_correlazione``::

    persona   codice_fiscale (codice fiscale, STP or ENI code) of the person who disclosed -> the subject;
              the consent registry is checked against it, and it crosses only to the anti-violence service
    contatto  canale (phone-safe-number, in-person-at-casa-centre, via-social-worker; or label or alias),
              telefono_sicuro (only with phone-safe-number, and then required: digits with an optional
              leading +; spaces, dots, dashes and brackets are removed), fascia_oraria (safe time window)

Nothing else is accepted: nothing about the abuser and nothing from the tenancy record -- no contract, unit or
building id, no quartiere, no household -- because the abuser may hold the contract. ``id_correlazione`` is
refused too, so that the disclosure cannot be threaded to a tenancy case: it starts its own lifecycle, keyed by
its own message id. The gateway never writes a disclosure back to the tenancy record and ALER has no encoder for
it.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, StringConstraints, ValidationInfo, field_validator

from adapters._json import load_json_object
from adapters.aler._native import (
    HeaderBase,
    Native,
    Persona,
    SafeChannelCode,
    SafeTimeCode,
    build_envelope,
    parse,
    person_identifier,
)
from schemas.envelope import Envelope

__all__ = ["AlerDisclosureMessage", "decode", "decode_document"]

MESSAGE_TYPE = "safety.disclosure"
PHONE_CHANNEL = "phone-safe-number"

_SEPARATORS = re.compile(r"[\s.\-()/]")


def _strip_separators(value: Any) -> Any:
    return _SEPARATORS.sub("", value) if isinstance(value, str) else value


SafePhone = Annotated[
    str, BeforeValidator(_strip_separators), StringConstraints(min_length=6, max_length=16, pattern=r"^\+?[0-9]+$")
]


class Contatto(Native):
    canale: SafeChannelCode
    telefono_sicuro: SafePhone | None = Field(default=None, validate_default=True)
    fascia_oraria: SafeTimeCode

    @field_validator("telefono_sicuro")
    @classmethod
    def _only_for_phone_channel(cls, value: str | None, info: ValidationInfo) -> str | None:
        channel = info.data.get("canale")
        if channel == PHONE_CHANNEL and value is None:
            raise ValueError(f"canale {PHONE_CHANNEL} needs telefono_sicuro")
        if channel is not None and channel != PHONE_CHANNEL and value is not None:
            raise ValueError(f"send telefono_sicuro only with canale {PHONE_CHANNEL}")
        return value


class AlerDisclosureMessage(HeaderBase):
    """ALER's ``segnalazione-riservata``: a safe way for the anti-violence service to make contact (F7)."""

    tipo_messaggio: Literal["segnalazione-riservata"]
    persona: Persona
    contatto: Contatto


def decode_document(document: dict[str, Any]) -> list[Envelope]:
    """A parsed ``segnalazione-riservata`` -> one ``safety.disclosure`` envelope; raises DecodeError."""
    message = parse(AlerDisclosureMessage, document, "confidential referral (segnalazione-riservata)")
    contact = message.contatto
    payload = {"channel": contact.canale, "safe_phone": contact.telefono_sicuro, "time_window": contact.fascia_oraria}
    return [build_envelope(message, MESSAGE_TYPE, (person_identifier(message.persona.codice_fiscale),), payload)]


def decode(raw: bytes, content_type: str = "application/json") -> list[Envelope]:
    """ALER ``segnalazione-riservata`` bytes -> one ``safety.disclosure`` envelope; raises DecodeError."""
    return decode_document(load_json_object(raw, content_type))
