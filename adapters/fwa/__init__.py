"""Fondazione Welfare Ambrosiano adapter: microcredit referrals out, outcomes back.

* :func:`encode`: a minimised ``referral.microcredit`` envelope -> ``segnalazione-microcredito``
  (:mod:`adapters.fwa.referral`, flow F1); :func:`encode_referral` is the same with the disclosure labels as
  one value, the signature every encoder of :data:`DESCRIPTOR` has;
* :func:`decode`: what FWA sends, dispatched on ``tipo_messaggio``; today ``esito-segnalazione`` ->
  ``referral.microcredit-outcome`` (:mod:`adapters.fwa.outcome`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from adapters._json import load_json_object
from adapters.descriptor import ContractFormats, OutboundLabels, PartnerDescriptor
from adapters.fwa.examples import EXAMPLES
from adapters.fwa.outcome import FwaOutcomeMessage, decode_outcome, outcome_from_document
from adapters.fwa.referral import FwaReferral, encode
from schemas.envelope import Envelope
from schemas.errors import DecodeError, FieldProblem

__all__ = [
    "DESCRIPTOR", "INBOUND_KINDS", "FwaOutcomeMessage", "FwaReferral", "decode", "decode_outcome", "encode",
    "encode_referral",
]

INBOUND_KINDS: dict[str, Callable[[dict[str, Any]], Envelope]] = {
    "esito-segnalazione": outcome_from_document,
}
"""``tipo_messaggio`` -> translation of that native FWA message kind to a canonical envelope."""


def decode(raw: bytes, content_type: str = "application/json") -> list[Envelope]:
    """FWA message bytes -> canonical envelopes, by ``tipo_messaggio``; raises DecodeError."""
    document = load_json_object(raw, content_type)
    kinds = ", ".join(INBOUND_KINDS)
    if "tipo_messaggio" not in document:
        raise DecodeError("contract", "message does not say which kind it is", [
            FieldProblem("/tipo_messaggio", "union_tag_not_found", f"add tipo_messaggio, one of: {kinds}")])
    kind = document["tipo_messaggio"]
    translate = INBOUND_KINDS.get(kind) if isinstance(kind, str) else None
    if translate is None:
        raise DecodeError("contract", "message is of a kind FWA does not send", [
            FieldProblem("/tipo_messaggio", "union_tag_invalid", f"tipo_messaggio must be one of: {kinds}")])
    return [translate(document)]


def encode_referral(envelope: Envelope, labels: OutboundLabels) -> bytes:
    """A minimised ``referral.microcredit`` envelope and its disclosure labels -> FWA's referral (F1)."""
    return encode(envelope, consent_ref=labels.consent_ref, obligations=labels.obligations, refrains=labels.refrains)


DESCRIPTOR: Final = PartnerDescriptor(
    organisation="fwa", decode=decode, encoders={"referral.microcredit": encode_referral}, examples=EXAMPLES,
    formats=ContractFormats(
        inbound={"fwa/esito-segnalazione.schema.json": FwaOutcomeMessage},
        outbound={"fwa/segnalazione-microcredito.schema.json": FwaReferral},
        deliveries={("fwa", "referral.microcredit"): "fwa/segnalazione-microcredito.schema.json"},
    ),
)
"""FWA as the core sees it: outcomes in, microcredit referrals out (F1)."""
