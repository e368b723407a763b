"""FWA's native outcome (``esito-segnalazione``) and its translation to ``referral.microcredit-outcome``.

FWA answers each referral it received (``segnalazione-microcredito``) by quoting the gateway-minted
``id_segnalazione`` and the ``id_correlazione``; it never resends the applicant's codice fiscale, so the
subject is identified as ``Identifier(system="fwa-referral", value=id_segnalazione)`` and the gateway's
crosswalk finds the person. Amounts are euro with at most two decimals, in a string or a JSON number, and
become exact cents.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from adapters._json import load_json_object
from schemas.codelists import _coded
from schemas.envelope import Envelope, Identifier, SubjectRef
from schemas.errors import DecodeError, FieldProblem, problems_from_validation

__all__ = ["OUTCOME_MESSAGE_TYPE", "FwaOutcomeMessage", "decode_outcome", "outcome_from_document"]

OUTCOME_MESSAGE_TYPE = "referral.microcredit-outcome"

Id = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:\-]+$")]
Euro = Annotated[Decimal, Field(gt=0, le=Decimal("10000000"), max_digits=12, decimal_places=2)]

if TYPE_CHECKING:
    MotivoRifiuto = str
else:
    MotivoRifiuto = _coded("fwa_rejection_reasons")

Esito = Literal["in-istruttoria", "approvato", "respinto", "ritirato", "consulenza-avviata"]
ESITO_STATES: dict[str, str] = {
    "in-istruttoria": "assessing",
    "approvato": "approved",
    "respinto": "rejected",
    "ritirato": "withdrawn",
    "consulenza-avviata": "counselling-started",
}
"""FWA's ``esito`` word -> code of list ``fwa-outcome-states`` (where the words are listed as aliases)."""


class FwaOutcomeMessage(BaseModel):
    """What FWA sends when a referral changes state: in assessment, approved, rejected, withdrawn, or
    redirected to debt counselling."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    id_messaggio: Id
    """FWA's id for this message: a referral has several outcomes, each with its own id."""
    id_correlazione: Id
    """As received in the referral."""
    tipo_messaggio: Literal["esito-segnalazione"]
    versione: Literal["1.0"]
    id_segnalazione: Id
    """As received in the referral: the gateway-minted referral id."""
    esito: Esito
    importo_approvato_euro: Euro | None = None
    """Required when ``esito`` is ``approvato``, refused otherwise."""
    motivo: MotivoRifiuto | None = None
    """Why the request was rejected, a code of list ``fwa-rejection-reasons``; only with ``respinto``."""
    data_decisione: AwareDatetime
    """When FWA reached this state, with its UTC offset."""


def _cross_field_problems(message: FwaOutcomeMessage) -> list[FieldProblem]:
    problems = []
    approved = message.esito == "approvato"
    if approved and message.importo_approvato_euro is None:
        problems.append(FieldProblem("/importo_approvato_euro", "missing",
                                     "give the approved amount in euro when esito is approvato"))
    if not approved and message.importo_approvato_euro is not None:
        problems.append(FieldProblem("/importo_approvato_euro", "forbidden_for_esito",
                                     "send importo_approvato_euro only when esito is approvato"))
    if message.motivo is not None and message.esito != "respinto":
        problems.append(FieldProblem("/motivo", "forbidden_for_esito", "send motivo only when esito is respinto"))
    return problems


def _cents(euro: Decimal) -> int:
    return int(euro * 100)  # exact: at most two decimal places


def _payload(message: FwaOutcomeMessage, decided_at: datetime) -> dict[str, Any]:
    amount = message.importo_approvato_euro
    return {
        "referral_id": message.id_segnalazione,
        "state": ESITO_STATES[message.esito],
        "approved_amount_cents": None if amount is None else _cents(amount),
        "rejection_reason": message.motivo,
        "decided_at": decided_at,
    }


def outcome_from_document(document: dict[str, Any]) -> Envelope:
    """A parsed ``esito-segnalazione`` -> one canonical ``referral.microcredit-outcome`` envelope."""
    what = "message does not match FWA's outcome contract"
    try:
        message = FwaOutcomeMessage.model_validate(document)
    except ValidationError as exc:
        raise DecodeError("contract", what, problems_from_validation(exc)) from None
    problems = _cross_field_problems(message)
    if problems:
        raise DecodeError("contract", what, problems)
    try:
        return Envelope(
            message_id=message.id_messaggio,
            correlation_id=message.id_correlazione,
            message_type=OUTCOME_MESSAGE_TYPE,
            sender="fwa",
            recipients=("aler",),
            subject=SubjectRef(identifiers=(Identifier(system="fwa-referral", value=message.id_segnalazione),)),
            purpose="microcredit-assessment",
            sensitivity=("S2",),
            occurred_at=message.data_decisione,
            payload=_payload(message, message.data_decisione),
        )
    except ValidationError as exc:  # the native model already enforces every canonical rule
        raise DecodeError("contract", "message does not match the canonical microcredit outcome",
                          problems_from_validation(exc)) from None


def decode_outcome(raw: bytes, content_type: str = "application/json") -> list[Envelope]:
    """FWA outcome bytes -> one canonical ``referral.microcredit-outcome`` envelope; raises DecodeError."""
    return [outcome_from_document(load_json_object(raw, content_type))]
