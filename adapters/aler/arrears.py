"""ALER's native arrears referral (``segnalazione-morosita``) and its translation to the canonical envelope.

ALER's tenancy system speaks Italian field names and euro amounts with two decimals; the canonical model
speaks code-list codes and cents. Quartiere names are accepted as codes, Italian labels or known aliases
("Molise Calvaire"). The codice fiscale is validated (check character, omocodia) and canonicalised.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from adapters._json import load_json_object
from gateway.identity.codice_fiscale import InvalidPersonIdentifier, classify, validate
from schemas.codelists import ArrearsStage, HouseholdType, IseeBand, RequestType, load_codelist
from schemas.envelope import Envelope, Identifier, SubjectRef
from schemas.errors import DecodeError, problems_from_validation

__all__ = ["AlerArrearsMessage", "decode"]

Euro = Annotated[Decimal, Field(ge=0, le=Decimal("10000000"), max_digits=12, decimal_places=2)]
Id = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:\-]+$")]


class _Native(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class Contratto(_Native):
    id_contratto: Id
    tipo: Literal["SAP", "SAT"]
    id_unita: Id
    quartiere: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    municipio: Annotated[int, Field(ge=1, le=9)]
    fascia_canone: Literal["protezione", "accesso", "permanenza", "decadenza"]

    @field_validator("quartiere")
    @classmethod
    def _known_quartiere(cls, value: str) -> str:
        code = load_codelist("quartieri").resolve(value)
        if code is None:
            raise ValueError("unknown quartiere; use a code, Italian name or alias from code list quartieri")
        return code


class Intestatario(_Native):
    codice_fiscale: Annotated[str, StringConstraints(min_length=16, max_length=16)]
    residente_citta_metropolitana: bool
    lavora_citta_metropolitana: bool

    @field_validator("codice_fiscale")
    @classmethod
    def _valid_identifier(cls, value: str) -> str:
        try:
            kind = classify(value)
        except InvalidPersonIdentifier as exc:
            raise ValueError(f"not a valid codice fiscale, STP or ENI code: {exc.reason}") from None
        return validate(value) if kind == "cf" else value.upper()


class Nucleo(_Native):
    tipologia: HouseholdType
    componenti: Annotated[int, Field(ge=1, le=20)]


class Isee(_Native):
    fascia: IseeBand
    valore_euro: Euro | None = None


class Morosita(_Native):
    importo_euro: Euro
    mensilita: Annotated[int, Field(ge=0, le=600)]
    dal: date | None = None
    tipo: Literal["canone", "spese", "utenze"]
    stadio: ArrearsStage


class Richiesta(_Native):
    tipo: RequestType
    importo_euro: Euro


class AlerArrearsMessage(_Native):
    """What ALER sends when a tenant in arrears agrees to be referred for microcredit (F1)."""

    id_messaggio: Id
    id_correlazione: Id | None = None
    tipo_messaggio: Literal["segnalazione-morosita"]
    versione: Literal["1.0"]
    data_evento: datetime
    finalita: Annotated[str, StringConstraints(max_length=64)] | None = None
    destinatari: tuple[Id, ...] = ()
    contratto: Contratto
    intestatario: Intestatario
    nucleo: Nucleo
    isee: Isee
    morosita: Morosita
    richiesta: Richiesta


_ARREARS_KIND = {"canone": "rent", "spese": "charges", "utenze": "utilities"}


def _cents(euro: Decimal) -> int:
    return int(euro * 100)


def _payload(message: AlerArrearsMessage) -> dict[str, object]:
    c, i, n, m, r = message.contratto, message.intestatario, message.nucleo, message.morosita, message.richiesta
    return {
        "tenancy": {
            "contract_id": c.id_contratto,
            "contract_type": c.tipo,
            "unit_id": c.id_unita,
            "quartiere": c.quartiere,
            "municipio": c.municipio,
            "rent_band": c.fascia_canone,
        },
        "eligibility": {
            "resides_in_metro_area": i.residente_citta_metropolitana,
            "works_in_metro_area": i.lavora_citta_metropolitana,
        },
        "household": {"type": n.tipologia, "size": n.componenti},
        "isee_band": message.isee.fascia,
        "isee_value_cents": None if message.isee.valore_euro is None else _cents(message.isee.valore_euro),
        "arrears": {
            "amount_cents": _cents(m.importo_euro),
            "months": m.mensilita,
            "since": m.dal,
            "kind": _ARREARS_KIND[m.tipo],
            "stage": m.stadio,
        },
        "request": {"type": r.tipo, "amount_cents": _cents(r.importo_euro)},
    }


def decode(raw: bytes, content_type: str = "application/json") -> list[Envelope]:
    """ALER message bytes -> one canonical ``tenancy.arrears-referral`` envelope; raises DecodeError."""
    document = load_json_object(raw, content_type)
    try:
        message = AlerArrearsMessage.model_validate(document)
    except ValidationError as exc:
        problems = problems_from_validation(exc)
        raise DecodeError("contract", "message does not match ALER's arrears contract", problems) from None
    cf = message.intestatario.codice_fiscale
    try:
        envelope = Envelope(
            message_id=message.id_messaggio,
            correlation_id=message.id_correlazione or message.id_messaggio,
            message_type="tenancy.arrears-referral",
            sender="aler",
            recipients=message.destinatari,
            subject=SubjectRef(identifiers=(Identifier(system=classify(cf), value=cf),)),
            purpose=message.finalita,
            sensitivity=("S2",),
            occurred_at=message.data_evento,
            payload=_payload(message),
        )
    except ValidationError as exc:  # the native model already enforces every canonical rule
        problems = problems_from_validation(exc)
        raise DecodeError("contract", "message does not match the canonical arrears referral", problems) from None
    return [envelope]
