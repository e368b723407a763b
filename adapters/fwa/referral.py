"""FWA's native microcredit referral (``segnalazione-microcredito``) built from a minimised envelope.

The envelope reaching this encoder has already been projected to the fields flow F1 allows; the encoder
only renames and formats (cents -> euro strings). It carries the consent reference and the refrain and
obligation labels the recipient must honour (privacy.md rule 8). :class:`FwaReferral` is the contract (FWA's
published JSON Schema is generated from it); the encoder writes the same JSON directly (:func:`_referral_json`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic_core import to_jsonable_python

from schemas.envelope import Envelope
from schemas.messages import MicrocreditReferral

__all__ = ["FwaReferral", "encode"]

EuroText = Annotated[str, StringConstraints(pattern=r"^\d+\.\d{2}$")]


class _Native(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Richiedente(_Native):
    codice_fiscale: str


class Requisiti(_Native):
    residenza_citta_metropolitana: bool
    lavoro_citta_metropolitana: bool


class Nucleo(_Native):
    tipologia: str


class Morosita(_Native):
    importo_euro: EuroText
    mensilita: int


class Richiesta(_Native):
    tipo: str
    importo_euro: EuroText


class Etichette(_Native):
    obblighi: tuple[str, ...] = ()
    divieti: tuple[str, ...] = ()


class FwaReferral(_Native):
    """The referral FWA's system receives on ``out.fwa``."""

    tipo_messaggio: Literal["segnalazione-microcredito"] = "segnalazione-microcredito"
    versione: Literal["1.0"] = "1.0"
    id_segnalazione: str
    """Gateway-minted referral id; FWA quotes it in outcomes."""
    id_correlazione: str
    ente_inviante: str
    finalita_trattamento: str
    riferimento_consenso: str | None = None
    richiedente: Richiedente
    requisiti: Requisiti
    nucleo: Nucleo
    fascia_isee: str
    morosita: Morosita
    richiesta: Richiesta
    etichette: Etichette = Field(default_factory=Etichette)
    inviato_il: datetime


def _euro(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def encode(envelope: Envelope, *, consent_ref: str | None = None, obligations: tuple[str, ...] = (),
           refrains: tuple[str, ...] = ()) -> bytes:
    """A minimised ``referral.microcredit`` envelope -> FWA referral JSON bytes."""
    payload = envelope.payload_as(MicrocreditReferral)
    cf = envelope.subject.first("cf") or envelope.subject.first("stp") or envelope.subject.first("eni")
    if cf is None:
        raise ValueError("a microcredit referral needs the applicant's codice fiscale, STP or ENI code")
    return orjson.dumps(_referral_json(envelope, payload, cf, consent_ref, obligations, refrains))


def _referral_json(envelope: Envelope, payload: MicrocreditReferral, applicant: str, consent_ref: str | None,
                   obligations: tuple[str, ...], refrains: tuple[str, ...]) -> dict[str, Any]:
    """What ``FwaReferral(...).model_dump(mode="json")`` gives, written directly: every value comes from a
    validated envelope and payload model and has the type :class:`FwaReferral` declares, so building the model
    only to dump it again would validate the same values a second time (seven models per referral). The time
    is written by pydantic's own serialiser, as the model writes it (``Z`` for UTC). Tests in
    ``tests/unit/test_adapter_fwa.py`` hold the two to the same bytes over generated referrals, and the output
    to FWA's published contract."""
    return {
        "tipo_messaggio": "segnalazione-microcredito",
        "versione": "1.0",
        "id_segnalazione": envelope.message_id,
        "id_correlazione": envelope.correlation_id,
        "ente_inviante": envelope.sender,
        "finalita_trattamento": envelope.purpose or "",
        "riferimento_consenso": consent_ref,
        "richiedente": {"codice_fiscale": applicant},
        "requisiti": {
            "residenza_citta_metropolitana": payload.eligibility.resides_in_metro_area,
            "lavoro_citta_metropolitana": payload.eligibility.works_in_metro_area,
        },
        "nucleo": {"tipologia": payload.household.type},
        "fascia_isee": payload.isee_band,
        "morosita": {"importo_euro": _euro(payload.arrears.amount_cents), "mensilita": payload.arrears.months},
        "richiesta": {"tipo": payload.request.type, "importo_euro": _euro(payload.request.amount_cents)},
        "etichette": {"obblighi": list(obligations), "divieti": list(refrains)},
        "inviato_il": to_jsonable_python(envelope.occurred_at),
    }
