"""Which adapter decodes what each partner sends, and which encodes what each recipient receives.

A table, not branches: adding a partner or a message type is adding a row here and a flow in the registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import orjson

import adapters.aler
import adapters.asst_fhir
import adapters.comune
import adapters.fwa
from gateway.identity.codice_fiscale import contains_codice_fiscale
from schemas.envelope import Envelope
from schemas.errors import DecodeError, FieldProblem

__all__ = ["DECODERS", "ENCODERS", "Encoder", "OutboundLabels", "encode_canonical", "screen_identifiers"]

Decoder = Callable[[bytes, str], list[Envelope]]


@dataclass(frozen=True, slots=True)
class OutboundLabels:
    """What travels with a disclosure besides the payload (rule 8)."""

    consent_ref: str | None
    obligations: tuple[str, ...]
    refrains: tuple[str, ...]


Encoder = Callable[[Envelope, OutboundLabels], bytes]


def encode_canonical(envelope: Envelope, labels: OutboundLabels) -> bytes:
    """The canonical envelope as JSON: for recipients without a native format of their own."""
    body = envelope.model_dump(mode="json", exclude_none=True)
    body["labels"] = {"consent_ref": labels.consent_ref, "obligations": labels.obligations,
                      "refrains": labels.refrains}
    return orjson.dumps(body)


def _fwa_referral(envelope: Envelope, labels: OutboundLabels) -> bytes:
    return adapters.fwa.encode(
        envelope, consent_ref=labels.consent_ref, obligations=labels.obligations, refrains=labels.refrains
    )


def screen_identifiers(envelopes: list[Envelope]) -> list[Envelope]:
    """``envelopes``, unless a message or correlation id holds a codice fiscale (:class:`DecodeError`): those
    ids are written to the audit log and the status topics as they are, where no personal data may go. Every
    path that decodes a partner's message (the intake, the contract kit) calls it after the decoder."""
    problems = [
        FieldProblem("", "personal-data-in-identifier",
                     f"the {what} of message {position} contains a codice fiscale; use one that names no person")
        for position, envelope in enumerate(envelopes, start=1)
        for what, value in (("message id", envelope.message_id), ("correlation id", envelope.correlation_id))
        if contains_codice_fiscale(value)
    ]
    if problems:
        raise DecodeError("contract", "a message or correlation id contains a codice fiscale", problems)
    return envelopes


DECODERS: dict[str, Decoder] = {
    "aler": adapters.aler.decode,
    "asst": adapters.asst_fhir.decode,
    "comune": adapters.comune.decode,
    "fwa": adapters.fwa.decode,
}
"""Partner organisation -> decoder of the messages it sends (HTTP body or ``in.<partner>`` record)."""

ENCODERS: dict[tuple[str, str], Encoder] = {
    ("fwa", "referral.microcredit"): _fwa_referral,
    ("asst", "care.service-request"): adapters.asst_fhir.encode_service_request,
    ("comune", "social.case-referral"): adapters.comune.encode_case_referral,
    ("comune", "tenancy.eviction-milestone"): adapters.comune.encode_eviction_milestone,
    ("pis", "emergency.social-event"): adapters.comune.encode_emergency_event,
}
"""(recipient, outbound message type) -> encoder of what that recipient receives on ``out.<recipient>``."""
