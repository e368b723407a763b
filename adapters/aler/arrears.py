"""ALER's native arrears referral (``segnalazione-morosita``) and its translation to the canonical envelope.

ALER's tenancy system speaks Italian field names and euro amounts with two decimals; the canonical model
speaks code-list codes and cents. Quartiere names are accepted as codes, Italian labels or known aliases
("Molise Calvaire"). The codice fiscale is validated (check character, omocodia) and canonicalised.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from adapters._json import load_json_object
from adapters.aler._native import person_identifier
from gateway.identity.codice_fiscale import InvalidPersonIdentifier, classify, normalise
from schemas.codelists import ArrearsStage, HouseholdType, IseeBand, RequestType, load_codelist
from schemas.envelope import Envelope, SubjectRef
from schemas.errors import DecodeError, problems_from_validation

__all__ = ["AlerArrearsMessage", "decode", "decode_document"]

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
            classify(value)  # validates a codice fiscale fully (check character, omocodia) or an STP/ENI code
        except InvalidPersonIdentifier as exc:
            raise ValueError(f"not a valid codice fiscale, STP or ENI code: {exc.reason}") from None
        return normalise(value)


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


def _payload(message: AlerArrearsMessage) -> dict[str, Any]:
    """The canonical ``tenancy.arrears-referral`` payload in its normalised JSON form, as
    :meth:`Envelope._normalise_payload <schemas.envelope.Envelope>` would leave it: fields in the model's
    order, dates as ISO text, absent optional values left out."""
    c, i, n, m, r = message.contratto, message.intestatario, message.nucleo, message.morosita, message.richiesta
    arrears: dict[str, Any] = {"amount_cents": _cents(m.importo_euro), "months": m.mensilita}
    if m.dal is not None:
        arrears["since"] = m.dal.isoformat()
    arrears["kind"] = _ARREARS_KIND[m.tipo]
    arrears["stage"] = m.stadio
    payload: dict[str, Any] = {
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
    }
    if message.isee.valore_euro is not None:
        payload["isee_value_cents"] = _cents(message.isee.valore_euro)
    payload["arrears"] = arrears
    payload["request"] = {"type": r.tipo, "amount_cents": _cents(r.importo_euro)}
    return payload


def _envelope(message: AlerArrearsMessage) -> Envelope:
    """The canonical envelope of a validated native message, built without validating it again.

    Every rule of the canonical model holds already: the native model is stricter field by field (identifiers,
    code lists, amounts within the canonical cents range, an aware-or-naive ``datetime`` kept as given), and
    the codice fiscale was validated by :meth:`Intestatario._valid_identifier`. The envelope is therefore
    assembled without validation (:meth:`Envelope.assemble`); ``tests/unit/test_adapter_aler.py`` checks, over
    generated messages, that it equals, byte for byte, the envelope the validating constructor builds from the
    same message. The subject is validated all the same: around an :class:`Identifier` already built, that costs
    half of ``model_construct``, whose loop over the fields runs in Python."""
    cf = message.intestatario.codice_fiscale
    subject = SubjectRef(identifiers=(person_identifier(cf),))
    return Envelope.assemble(
        message_id=message.id_messaggio,
        correlation_id=message.id_correlazione or message.id_messaggio,
        message_type="tenancy.arrears-referral",
        sender="aler",
        recipients=message.destinatari,
        subject=subject,
        purpose=message.finalita,
        sensitivity=("S2",),
        occurred_at=message.data_evento,
        payload=_payload(message),
    )


def decode_document(document: dict[str, Any]) -> list[Envelope]:
    """A parsed ALER arrears message -> one canonical ``tenancy.arrears-referral`` envelope; raises DecodeError."""
    try:
        message = AlerArrearsMessage.model_validate(document)
    except ValidationError as exc:
        problems = problems_from_validation(exc)
        raise DecodeError("contract", "message does not match ALER's arrears contract", problems) from None
    return [_envelope(message)]


def decode(raw: bytes, content_type: str = "application/json") -> list[Envelope]:
    """ALER message bytes -> one canonical ``tenancy.arrears-referral`` envelope; raises DecodeError."""
    return decode_document(load_json_object(raw, content_type))
