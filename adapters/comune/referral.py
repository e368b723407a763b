"""The fragility referral (``segnalazione-fragilita``, flow F2) as the Comune's social services receive it.

Built from a minimised ``social.case-referral`` envelope (or ``tenancy.fragility-signal``, the same payload
under ALER's name, should F2 forward it unrenamed): the encoder only renames. Fragility signals
travel as codes of list ``fragility-signals``, never as free text; the Comune answers with ``evento-caso``
messages quoting ``id_correlazione``.
"""

from __future__ import annotations

from typing import Literal

import orjson

from adapters.comune._native import DisclosureLabels, OutboundHeader, OutboundModel, expect_type, person_code_of
from schemas.envelope import Envelope
from schemas.tenancy import FragilitySignalReferral

__all__ = ["CASE_REFERRAL_MESSAGE_TYPES", "FragilityReferral", "encode_case_referral"]

CASE_REFERRAL_MESSAGE_TYPES = ("social.case-referral", "tenancy.fragility-signal")
"""The message types this encoder writes: one payload shape (:class:`schemas.tenancy.FragilitySignalReferral`)."""


class PersonaSegnalata(OutboundModel):
    codice_fiscale: str
    """Codice fiscale, or STP/ENI code: the Comune needs the person to open a case."""


class NucleoSegnalato(OutboundModel):
    tipologia: str
    componenti: int
    presenza_minori: bool
    presenza_over_65: bool
    presenza_disabilita: bool


class FragilityReferral(OutboundHeader):
    """The ``segnalazione-fragilita`` the Comune receives (F2)."""

    tipo_messaggio: Literal["segnalazione-fragilita"] = "segnalazione-fragilita"
    persona: PersonaSegnalata
    segnali: tuple[str, ...]
    """Codes of list ``fragility-signals``."""
    quartiere: str
    municipio: int
    nucleo: NucleoSegnalato


def encode_case_referral(envelope: Envelope, labels: DisclosureLabels) -> bytes:
    """A minimised ``social.case-referral`` envelope -> the Comune's ``segnalazione-fragilita`` JSON bytes."""
    expect_type(envelope, *CASE_REFERRAL_MESSAGE_TYPES)
    payload = envelope.payload_as(FragilitySignalReferral)
    person = person_code_of(envelope)
    if person is None:
        raise ValueError("a fragility referral needs the person's codice fiscale, STP or ENI code")
    household = payload.household
    referral = FragilityReferral(
        **OutboundHeader.header_fields(envelope, labels),
        persona=PersonaSegnalata(codice_fiscale=person),
        segnali=payload.signals,
        quartiere=payload.quartiere,
        municipio=payload.municipio,
        nucleo=NucleoSegnalato(
            tipologia=household.type,
            componenti=household.size,
            presenza_minori=household.minors,
            presenza_over_65=household.over_65,
            presenza_disabilita=household.disability,
        ),
    )
    return orjson.dumps(referral.model_dump(mode="json"))
