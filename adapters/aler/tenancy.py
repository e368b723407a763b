"""ALER's native tenancy record (``anagrafica-contratto``) and its translation to ``tenancy.record``.

One JSON message per tenancy, for initial loads and backfills (the bulk CSV export of the same records is
:mod:`adapters.aler.csv_export`). After the common header (:mod:`adapters.aler._native`)::

    contratto      id_contratto, tipo (SAP | SAT), data_inizio, data_fine (optional), fascia_canone
                   (protezione | accesso | permanenza | decadenza), canone_mensile_euro,
                   canone_oltre_30_reddito (ALER's own flag: rent above 30% of household income)
    unita          id_unita, id_edificio, via, civico, quartiere (code, label or alias), municipio (1-9)
    intestatario   codice_fiscale (codice fiscale, STP or ENI code) -> the envelope's subject
    nucleo         tipologia (household type), componenti: [{relazione, fascia_eta, minore, over_65,
                   disabilita}] -- every member, the holder included; no names, no birth dates
    isee           fascia (ISEE band; the value is not part of the record)
    morosita       optional, left out when nothing is owed: importo_euro (> 0), mensilita, dal (optional),
                   tipo (canone | spese | utenze), stadio (arrears stage, not ``none``)
    segnali_fragilita  optional list of fragility signal codes

The envelope's subject is the holder (codice fiscale) plus the ``aler-contract`` id, so an initial load builds
the crosswalk. Street and number land in ``address``, which no flow may let cross.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal, Self

from pydantic import Field, ValidationInfo, field_validator, model_validator

from adapters._json import load_json_object
from adapters.aler._native import (
    AgeBandCode,
    ArrearsStageCode,
    Euro,
    FragilitySignalCode,
    Header,
    HouseholdTypeCode,
    Id,
    IseeBandCode,
    Municipio,
    Native,
    Persona,
    QuartiereCode,
    RelationCode,
    build_envelope,
    cents,
    check_age_flags,
    check_date_order,
    check_unique,
    parse,
    person_identifier,
)
from schemas.envelope import Envelope, Identifier

__all__ = [
    "ARREARS_KINDS",
    "AlerTenancyRecordMessage",
    "Componente",
    "check_one_holder",
    "decode",
    "decode_document",
    "subject_identifiers",
]

MESSAGE_TYPE = "tenancy.record"

ARREARS_KINDS: dict[str, str] = {"canone": "rent", "spese": "charges", "utenze": "utilities"}
"""ALER's arrears kinds -> code list ``arrears-kinds``."""

Street = Annotated[str, Field(min_length=1, max_length=120)]
HouseNumber = Annotated[str, Field(min_length=1, max_length=16, pattern=r"^[0-9A-Za-z/ \-]+$")]


class Componente(Native):
    """One household member: relation to the holder, age band and three flags."""

    relazione: RelationCode
    fascia_eta: AgeBandCode
    minore: bool
    over_65: bool
    disabilita: bool

    @model_validator(mode="after")
    def _flags_agree(self) -> Self:
        check_age_flags(self.fascia_eta, self.minore, self.over_65)
        return self


def check_one_holder(members: list[Componente]) -> list[Componente]:
    """Raise ValueError unless exactly one member is the holder."""
    if sum(member.relazione == "holder" for member in members) != 1:
        raise ValueError("the household must list exactly one member with relazione holder (intestatario)")
    return members


class ContrattoAnagrafica(Native):
    id_contratto: Id
    tipo: Literal["SAP", "SAT"]
    data_inizio: date
    data_fine: date | None = None
    fascia_canone: Literal["protezione", "accesso", "permanenza", "decadenza"]
    canone_mensile_euro: Euro
    canone_oltre_30_reddito: bool

    @field_validator("data_fine")
    @classmethod
    def _after_start(cls, value: date | None, info: ValidationInfo) -> date | None:
        check_date_order(info.data.get("data_inizio"), value, "data_inizio")
        return value


class Unita(Native):
    id_unita: Id
    id_edificio: Id
    via: Street
    civico: HouseNumber
    quartiere: QuartiereCode
    municipio: Municipio


class NucleoAnagrafica(Native):
    tipologia: HouseholdTypeCode
    componenti: list[Componente] = Field(min_length=1, max_length=20)

    @field_validator("componenti")
    @classmethod
    def _one_holder(cls, value: list[Componente]) -> list[Componente]:
        return check_one_holder(value)


class IseeAnagrafica(Native):
    fascia: IseeBandCode


class MorositaAnagrafica(Native):
    importo_euro: Annotated[Euro, Field(gt=0)]
    mensilita: Annotated[int, Field(ge=0, le=600)]
    dal: date | None = None
    tipo: Literal["canone", "spese", "utenze"]
    stadio: ArrearsStageCode

    @field_validator("stadio")
    @classmethod
    def _not_none(cls, value: str) -> str:
        if value == "none":
            raise ValueError("stage none means nothing is owed: leave morosita out instead")
        return value


class AlerTenancyRecordMessage(Header):
    """ALER's ``anagrafica-contratto``: one tenancy as a whole (initial loads and backfills)."""

    tipo_messaggio: Literal["anagrafica-contratto"]
    contratto: ContrattoAnagrafica
    unita: Unita
    intestatario: Persona
    nucleo: NucleoAnagrafica
    isee: IseeAnagrafica
    morosita: MorositaAnagrafica | None = None
    segnali_fragilita: tuple[FragilitySignalCode, ...] = Field(default=(), max_length=20)

    @field_validator("segnali_fragilita")
    @classmethod
    def _unique_signals(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        check_unique(value, "fragility signal")
        return value


def member_payload(member: Componente) -> dict[str, object]:
    return {
        "relation": member.relazione,
        "age_band": member.fascia_eta,
        "minor": member.minore,
        "over_65": member.over_65,
        "disability": member.disabilita,
    }


def subject_identifiers(person_code: str, contract_id: str) -> tuple[Identifier, ...]:
    """The holder's codice fiscale (or STP/ENI code), then the ALER contract id."""
    return person_identifier(person_code), Identifier(system="aler-contract", value=contract_id)


def _payload(message: AlerTenancyRecordMessage) -> dict[str, Any]:
    c, u, n, m = message.contratto, message.unita, message.nucleo, message.morosita
    return {
        "contract_id": c.id_contratto,
        "contract_type": c.tipo,
        "start_date": c.data_inizio,
        "end_date": c.data_fine,
        "unit_id": u.id_unita,
        "building_id": u.id_edificio,
        "address": {"street": u.via, "house_number": u.civico},
        "quartiere": u.quartiere,
        "municipio": u.municipio,
        "household_type": n.tipologia,
        "members": [member_payload(member) for member in n.componenti],
        "rent_band": c.fascia_canone,
        "isee_band": message.isee.fascia,
        "monthly_rent_cents": cents(c.canone_mensile_euro),
        "rent_over_30_percent_of_income": c.canone_oltre_30_reddito,
        "arrears": None if m is None else {
            "amount_cents": cents(m.importo_euro),
            "months": m.mensilita,
            "since": m.dal,
            "kind": ARREARS_KINDS[m.tipo],
            "stage": m.stadio,
        },
        "fragility_signals": list(message.segnali_fragilita),
    }


def decode_document(document: dict[str, Any]) -> list[Envelope]:
    """A parsed ``anagrafica-contratto`` -> one ``tenancy.record`` envelope; raises DecodeError."""
    message = parse(AlerTenancyRecordMessage, document, "tenancy record (anagrafica-contratto)")
    identifiers = subject_identifiers(message.intestatario.codice_fiscale, message.contratto.id_contratto)
    return [build_envelope(message, MESSAGE_TYPE, identifiers, _payload(message))]


def decode(raw: bytes, content_type: str = "application/json") -> list[Envelope]:
    """ALER ``anagrafica-contratto`` bytes -> one ``tenancy.record`` envelope; raises DecodeError."""
    return decode_document(load_json_object(raw, content_type))

