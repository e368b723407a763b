"""Which adapter decodes what each partner sends, and which encodes what each recipient receives.

A table, not branches: adding a partner or a message type is adding a row here and a flow in the registry.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import orjson

import adapters.aler
import adapters.asst_fhir
import adapters.comune
import adapters.fwa
from gateway.identifiers import holds_personal_data
from gateway.strict_json import check_strict_json, looks_like_json
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
    """``envelopes``, unless a message or correlation id holds a person identifier (:class:`DecodeError`): those
    ids are written to the audit log and the status topics as they are, where no personal data may go. The
    screen sees through separators, case and a wrong check character
    (:func:`gateway.identifiers.holds_personal_data`). Every path that decodes a partner's message (the
    intake, the contract kit) calls it after the decoder."""
    problems = [
        FieldProblem("", "personal-data-in-identifier",
                     f"the {what} of message {position} contains a person identifier; use one that names no person")
        for position, envelope in enumerate(envelopes, start=1)
        for what, value in (("message id", envelope.message_id), ("correlation id", envelope.correlation_id))
        if holds_personal_data(value)
    ]
    if problems:
        raise DecodeError("contract", "a message or correlation id contains a codice fiscale", problems)
    return envelopes


def _strict(decoder: Decoder) -> Decoder:
    """``decoder``, after a JSON document has been checked for repeated member names and deep nesting
    (:mod:`gateway.strict_json`): the adapters' parsers would keep the last of two members silently.
    ``inspect.unwrap`` gives the adapter's own function back."""

    @functools.wraps(decoder)
    def decode(raw: bytes, content_type: str) -> list[Envelope]:
        if looks_like_json(raw):
            check_strict_json(raw)
        return decoder(raw, content_type)

    return decode


DECODERS: dict[str, Decoder] = {
    "aler": _strict(adapters.aler.decode),
    "asst": _strict(adapters.asst_fhir.decode),
    "comune": _strict(adapters.comune.decode),
    "fwa": _strict(adapters.fwa.decode),
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
