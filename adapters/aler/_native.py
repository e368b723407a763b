"""Building blocks shared by ALER's native JSON messages: the header, person codes, coded values, euro amounts,
and the last step of every decoder (native message -> canonical envelope).

Every ALER message starts with the same header (Italian field names)::

    id_messaggio     ALER's id for this message (a replay with the same id is not forwarded twice)
    id_correlazione  optional; ties a referral to every status and outcome that follows (default: id_messaggio)
    tipo_messaggio   which message this is (each module pins its own value)
    versione         "1.0"
    data_evento      when it happened, ISO 8601 with a UTC offset
    finalita         optional purpose code claimed by ALER (privacy.md vocabulary)
    destinatari      optional list of recipient organisation codes
    riferimento_gateway  optional, not on the S4 disclosure: a gateway token (``gwt_...``) ALER received for
                     this person or case (a Comune case token from flow F3), quoted back so that the gateway
                     finds the same person and case (and the Comune gets its own case id back where a flow lets
                     it); a token the gateway did not send to ALER is refused (``unknown-token``)

Coded fields accept a code, its Italian label or a known alias from the code list (the way quartiere names are
accepted) and always decode to the code. Error messages never echo a submitted value.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from gateway.identity.codice_fiscale import InvalidPersonIdentifier, classify, normalise
from schemas.codelists import load_codelist
from schemas.envelope import Envelope, Identifier, SensitivityLabel, SubjectRef
from schemas.errors import DecodeError, problems_from_validation
from schemas.tenancy import MINOR_AGE_BANDS, OVER_65_AGE_BANDS

__all__ = [
    "SENSITIVITY",
    "AgeBandCode",
    "ArrearsStageCode",
    "CareServiceCode",
    "CareUrgencyCode",
    "EmergencyEventCode",
    "Euro",
    "FragilitySignalCode",
    "GatewayToken",
    "Header",
    "HeaderBase",
    "HomeAccessCode",
    "HomeEntryCode",
    "HouseholdTypeCode",
    "Id",
    "InterpreterLanguageCode",
    "IseeBandCode",
    "Municipio",
    "Native",
    "PersonCode",
    "Persona",
    "QuartiereCode",
    "RelationCode",
    "SafeChannelCode",
    "SafeTimeCode",
    "VisitTimeCode",
    "build_envelope",
    "cents",
    "check_age_flags",
    "check_date_order",
    "check_unique",
    "make_envelope",
    "parse",
    "person_identifier",
]

Id = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:\-]+$")]
"""An ALER identifier: letters, digits and ``._:-``, at most 64 characters."""

GatewayToken = Annotated[str, StringConstraints(pattern=r"^gwt_[a-z2-7]{24}$")]
"""A crosswalk token the gateway minted for ALER (``gwt_`` and 24 base-32 characters), quoted back."""

Euro = Annotated[Decimal, Field(ge=0, le=Decimal("10000000"), max_digits=12, decimal_places=2)]
"""A euro amount with at most two decimals, as a string or a JSON number; becomes exact cents."""


def _person_code(value: str) -> str:
    try:
        classify(value)  # validates a codice fiscale fully (check character, omocodia) or an STP/ENI code
    except InvalidPersonIdentifier as exc:
        raise ValueError(f"not a valid codice fiscale, STP or ENI code: {exc.reason}") from None
    return normalise(value)


PersonCode = Annotated[str, StringConstraints(min_length=16, max_length=16), AfterValidator(_person_code)]
"""A codice fiscale (check character verified, omocodia accepted, kept as issued) or an STP/ENI code."""


def _native_code(name: str) -> Any:
    codes = load_codelist(name)
    allowed = ", ".join(sorted(codes.labels_it))

    def resolve(value: str) -> str:
        code = codes.resolve(value)
        if code is None:
            raise ValueError(
                f"not a code of list {codes.name} v{codes.version}; use a code, Italian label or alias: {allowed}"
            )
        return code

    return Annotated[str, StringConstraints(min_length=1, max_length=128), AfterValidator(resolve)]


if TYPE_CHECKING:  # static checkers see plain strings; at run time each resolves to a code of its list
    AgeBandCode = str
    ArrearsStageCode = str
    CareUrgencyCode = str
    CareServiceCode = str
    EmergencyEventCode = str
    FragilitySignalCode = str
    HomeAccessCode = str
    HomeEntryCode = str
    HouseholdTypeCode = str
    InterpreterLanguageCode = str
    IseeBandCode = str
    QuartiereCode = str
    RelationCode = str
    SafeChannelCode = str
    SafeTimeCode = str
    VisitTimeCode = str
else:
    AgeBandCode = _native_code("age_bands")
    ArrearsStageCode = _native_code("arrears_stages")
    CareUrgencyCode = _native_code("care_urgency")
    CareServiceCode = _native_code("requested_care_services")
    EmergencyEventCode = _native_code("emergency_event_types")
    FragilitySignalCode = _native_code("fragility_signals")
    HomeAccessCode = _native_code("home_access_notes")
    HomeEntryCode = _native_code("home_entry_methods")
    HouseholdTypeCode = _native_code("household_types")
    InterpreterLanguageCode = _native_code("interpreter_languages")
    IseeBandCode = _native_code("isee_bands")
    QuartiereCode = _native_code("quartieri")
    RelationCode = _native_code("household_relations")
    SafeChannelCode = _native_code("safe_contact_channels")
    SafeTimeCode = _native_code("safe_time_windows")
    VisitTimeCode = _native_code("visit_time_windows")

Municipio = Annotated[int, Field(ge=1, le=9)]
"""One of Milan's nine municipi."""

SENSITIVITY: Final[dict[str, tuple[SensitivityLabel, ...]]] = {
    "tenancy.record": ("S2", "S3"),
    "tenancy.fragility-signal": ("S2", "S3"),
    "tenancy.eviction-milestone": ("S2",),
    "care.service-request": ("S3",),
    "emergency.social-event": ("S2",),
    "safety.disclosure": ("S4", "SDV", "R"),
}
"""Sensitivity labels of each canonical type ALER's messages become (domain.md flows; S3 where disability flags
or a care request are involved). The arrears referral labels itself in :mod:`adapters.aler.arrears`."""


class Native(BaseModel):
    """Base of every ALER native model: immutable, unknown fields rejected, strings stripped."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class HeaderBase(Native):
    """The header fields every ALER message has; :class:`Header` adds the correlation id."""

    id_messaggio: Id
    versione: Literal["1.0"]
    data_evento: AwareDatetime
    finalita: Annotated[str, StringConstraints(max_length=64)] | None = None
    destinatari: tuple[Id, ...] = Field(default=(), max_length=10)

    def correlation(self) -> str:
        """The correlation id of the canonical envelope: the message's own id."""
        return self.id_messaggio

    def quoted_identifiers(self) -> tuple[Identifier, ...]:
        """Gateway tokens quoted back as subject identifiers: none here (:class:`Header` may carry one)."""
        return ()


class Header(HeaderBase):
    """The header most ALER messages start with (see the module docstring)."""

    id_correlazione: Id | None = None
    riferimento_gateway: GatewayToken | None = Field(
        default=None,
        description="A gateway token (gwt_...) the gateway sent to ALER for this person or case, e.g. the Comune "
                    "case token of a social.case-status (flow F3), quoted back so that the gateway finds the same "
                    "person and case. A token not sent to ALER is refused (problem rule unknown-token).",
    )

    def correlation(self) -> str:
        """``id_correlazione`` when given, else the message's own id."""
        return self.id_correlazione or self.id_messaggio

    def quoted_identifiers(self) -> tuple[Identifier, ...]:
        """The gateway token ALER quotes back, as a ``gateway-token`` subject identifier (none if not given)."""
        if self.riferimento_gateway is None:
            return ()
        return (Identifier(system="gateway-token", value=self.riferimento_gateway),)


class Persona(Native):
    """A person, by codice fiscale (or STP/ENI code) only."""

    codice_fiscale: PersonCode


_M = TypeVar("_M", bound=BaseModel)


def parse(model: type[_M], document: dict[str, Any], contract: str) -> _M:
    """``document`` validated as ``model``; a :class:`DecodeError` listing every problem otherwise."""
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        problems = problems_from_validation(exc)
        raise DecodeError("contract", f"message does not match ALER's {contract} contract", problems) from None


def person_identifier(code: str) -> Identifier:
    """The subject identifier for a code :data:`PersonCode` has already validated (not re-validated here)."""
    prefix = code[:3]
    if prefix in ("STP", "ENI") and code[3:4].isdigit():
        return Identifier(system="stp" if prefix == "STP" else "eni", value=code)
    return Identifier(system="cf", value=code)


def cents(euro: Decimal) -> int:
    """Exact euro cents of an amount with at most two decimals."""
    return int(euro * 100)


def check_age_flags(age_band: str, minor: bool, over_65: bool) -> None:
    """Raise ValueError unless the minor and over-65 flags agree with the age band."""
    if minor != (age_band in MINOR_AGE_BANDS):
        raise ValueError("minore must be true exactly for the age bands under 18")
    if over_65 != (age_band in OVER_65_AGE_BANDS):
        raise ValueError("over_65 must be true exactly for the age bands from 65")


def check_date_order(first: date | None, last: date | None, first_name: str) -> None:
    """Raise ValueError when ``last`` is before ``first``."""
    if first is not None and last is not None and last < first:
        raise ValueError(f"must not be before {first_name}")


def check_unique(values: Sequence[str], what: str) -> None:
    """Raise ValueError when a code appears twice."""
    if len(set(values)) != len(values):
        raise ValueError(f"each {what} may appear only once")


def make_envelope(
    *,
    message_id: str,
    correlation_id: str,
    message_type: str,
    recipients: tuple[str, ...],
    identifiers: tuple[Identifier, ...],
    purpose: str | None,
    occurred_at: datetime,
    payload: dict[str, Any],
) -> Envelope:
    """A canonical envelope from ALER, labelled for ``message_type``; raises pydantic's ValidationError."""
    return Envelope(
        message_id=message_id,
        correlation_id=correlation_id,
        message_type=message_type,
        sender="aler",
        recipients=recipients,
        subject=SubjectRef(identifiers=identifiers),
        purpose=purpose,
        sensitivity=SENSITIVITY[message_type],
        occurred_at=occurred_at,
        payload=payload,
    )


def build_envelope(
    header: HeaderBase, message_type: str, identifiers: tuple[Identifier, ...], payload: dict[str, Any]
) -> Envelope:
    """The canonical envelope for a validated native message; the payload is validated against its type."""
    try:
        return make_envelope(
            message_id=header.id_messaggio,
            correlation_id=header.correlation(),
            message_type=message_type,
            recipients=header.destinatari,
            identifiers=(*identifiers, *header.quoted_identifiers()),
            purpose=header.finalita,
            occurred_at=header.data_evento,
            payload=payload,
        )
    except ValidationError as exc:  # the native models enforce every canonical rule; this is a backstop
        problems = problems_from_validation(exc)
        raise DecodeError("contract", f"message does not match the canonical {message_type}", problems) from None
