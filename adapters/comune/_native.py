"""Pieces every Comune message shares: native field types, person identifiers, the outbound header and the
labels a disclosure carries.

Inbound code fields accept a code, its Italian label or a known alias of the named code list and become
the code; outbound messages always carry codes. Error messages name the rule and the code list, never the
value that broke it (it may be a codice fiscale).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Protocol

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
)

from gateway.identity.codice_fiscale import InvalidPersonIdentifier, classify, validate
from schemas.codelists import load_codelist
from schemas.envelope import Envelope, Identifier
from schemas.errors import DecodeError, FieldProblem, problems_from_validation

__all__ = [
    "DisclosureLabels",
    "Etichette",
    "Id",
    "InboundModel",
    "NativeCount",
    "NativeMunicipio",
    "OutboundHeader",
    "OutboundModel",
    "PersonCode",
    "check_problems",
    "contract_error",
    "expect_type",
    "person_code_of",
    "person_identifier",
    "resolved_code",
]

Id = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:\-]+$")]
"""An opaque id as partners write them: letters, digits and ``._:-``."""

NativeMunicipio = Annotated[int, Strict(), Field(ge=1, le=9)]
NativeCount = Annotated[int, Strict(), Field(ge=0, le=20)]


class InboundModel(BaseModel):
    """Base of what the Comune sends: frozen, unknown fields rejected, surrounding whitespace stripped."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


def resolved_code(list_name: str) -> Any:
    """A string type that accepts a code, Italian label or alias of code list ``list_name`` and yields the code."""
    codes = load_codelist(list_name)

    def resolve(value: str) -> str:
        code = codes.resolve(value)
        if code is None:
            raise ValueError(
                f"not in code list {codes.name} v{codes.version}; use a code, Italian label or alias. "
                f"Codes: {', '.join(codes.labels_it)}"
            )
        return code

    schema = {"type": "string", "description": f"a code, Italian label or alias of code list {codes.name}"}
    return Annotated[str, StringConstraints(min_length=1, max_length=128), AfterValidator(resolve),
                     WithJsonSchema(schema)]


def _person_code(value: str) -> str:
    try:
        kind = classify(value)
    except InvalidPersonIdentifier as exc:
        raise ValueError(f"not a valid codice fiscale, STP or ENI code: {exc.reason}") from None
    return validate(value) if kind == "cf" else value.upper()


PersonCode = Annotated[str, StringConstraints(min_length=16, max_length=16), AfterValidator(_person_code)]
"""A codice fiscale (validated, upper case, kept as issued, omocodia included) or an STP/ENI code."""


def person_identifier(code: str) -> Identifier:
    """The canonical identifier of a validated :data:`PersonCode`, in system ``cf``, ``stp`` or ``eni``."""
    return Identifier(system=classify(code), value=code)


def person_code_of(envelope: Envelope) -> str | None:
    """The codice fiscale, else the STP code, else the ENI code of the envelope's subject."""
    subject = envelope.subject
    return subject.first("cf") or subject.first("stp") or subject.first("eni")


def contract_error(exc: ValidationError, what: str) -> DecodeError:
    """A pydantic error on a native Comune message as a contract :class:`DecodeError`."""
    return DecodeError("contract", f"message does not match {what}", problems_from_validation(exc))


def check_problems(problems: list[FieldProblem], what: str) -> None:
    """Raise a contract :class:`DecodeError` when a cross-field check found ``problems``."""
    if problems:
        raise DecodeError("contract", f"message does not match {what}", problems)


class DisclosureLabels(Protocol):
    """What travels with a disclosure besides the payload (privacy.md rule 8); ``gateway.routing.OutboundLabels``
    is one. A protocol, so that adapters do not import the routing table that imports them."""

    @property
    def consent_ref(self) -> str | None: ...

    @property
    def obligations(self) -> tuple[str, ...]: ...

    @property
    def refrains(self) -> tuple[str, ...]: ...


class OutboundModel(BaseModel):
    """Base of what the gateway sends to the Comune: frozen, no field beyond those declared."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Etichette(OutboundModel):
    """Obligations and refrains (HL7 codes) the recipient must honour."""

    obblighi: tuple[str, ...] = ()
    divieti: tuple[str, ...] = ()


class OutboundHeader(OutboundModel):
    """Header fields of every message the gateway sends to the Comune."""

    tipo_messaggio: str
    versione: str = "1.0"
    id_messaggio: str
    """Gateway-minted id of this message."""
    id_correlazione: str
    """Quote it in every case event that answers this message."""
    ente_inviante: str
    """Organisation code of the partner the data comes from."""
    finalita_trattamento: str
    riferimento_consenso: str | None = None
    etichette: Etichette = Field(default_factory=Etichette)
    data_evento: datetime

    @classmethod
    def header_fields(cls, envelope: Envelope, labels: DisclosureLabels) -> dict[str, Any]:
        """The header values of the message built from ``envelope`` and ``labels``."""
        return {
            "id_messaggio": envelope.message_id,
            "id_correlazione": envelope.correlation_id,
            "ente_inviante": envelope.sender,
            "finalita_trattamento": envelope.purpose or "",
            "riferimento_consenso": labels.consent_ref,
            "etichette": Etichette(obblighi=labels.obligations, divieti=labels.refrains),
            "data_evento": envelope.occurred_at,
        }


def expect_type(envelope: Envelope, *message_types: str) -> None:
    """Refuse an envelope of a message type the encoder does not write."""
    if envelope.message_type not in message_types:
        raise ValueError(f"this encoder writes {' or '.join(message_types)} envelopes, not {envelope.message_type}")
