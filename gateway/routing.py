"""Which adapter decodes what each partner sends, and which encodes what each recipient receives.

Tables, not branches, built from the partners' descriptors (:mod:`gateway.partners`): adding a partner or a
message type is a change in its adapter package and a flow in the registry, never here. The built-in tables
(:data:`DECODERS`, :data:`ENCODERS`) are built when first read; :func:`decoder_for` loads one partner's adapter only.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import TYPE_CHECKING

import orjson

from adapters.descriptor import Decoder, Encoder, OutboundLabels, PartnerDescriptor
from gateway.identifiers import holds_personal_data
from gateway.partners import built_in, check_partners, descriptor
from gateway.strict_json import looks_like_json, strictly_read
from schemas.envelope import Envelope
from schemas.errors import DecodeError, FieldProblem

__all__ = [
    "DECODERS", "ENCODERS", "Decoder", "Encoder", "OutboundLabels", "decoder_for", "decoders_of", "encode_canonical",
    "encoders_of", "screen_identifiers",
]


def encode_canonical(envelope: Envelope, labels: OutboundLabels) -> bytes:
    """The canonical envelope as JSON: for recipients without a native format of their own."""
    body = envelope.model_dump(mode="json", exclude_none=True)
    body["labels"] = {"consent_ref": labels.consent_ref, "obligations": labels.obligations,
                      "refrains": labels.refrains}
    return orjson.dumps(body)


def screen_identifiers(envelopes: list[Envelope]) -> list[Envelope]:
    """``envelopes``, unless a message or correlation id holds a person identifier (:class:`DecodeError`): those
    ids are written to the audit log and the status topics as they are, where no personal data may go. The
    screen sees through separators, case and a wrong check character
    (:func:`gateway.identifiers.holds_personal_data`). Every path that decodes a partner's message (the
    intake, the contract kit) calls it after the decoder. A correlation id equal to its message id (what a sender
    that gives none gets) is screened once."""
    problems = []
    for position, envelope in enumerate(envelopes, start=1):
        message_id, correlation_id = envelope.message_id, envelope.correlation_id
        personal_message_id = holds_personal_data(message_id)
        for what, personal in (("message id", personal_message_id),
                               ("correlation id", personal_message_id if correlation_id == message_id
                                else holds_personal_data(correlation_id))):
            if personal:
                problems.append(FieldProblem(
                    "", "personal-data-in-identifier",
                    f"the {what} of message {position} contains a person identifier; use one that names no person"))
    if problems:
        raise DecodeError("contract", "a message or correlation id contains a codice fiscale", problems)
    return envelopes


def _strict(decoder: Decoder) -> Decoder:
    """``decoder``, after a JSON document has been checked for repeated member names and deep nesting
    (:mod:`gateway.strict_json`): the adapters' parsers would keep the last of two members silently. The
    document the check parsed is handed to the adapter's JSON reader, so a message is parsed once.
    ``inspect.unwrap`` gives the adapter's own function back."""

    @functools.wraps(decoder)
    def decode(raw: bytes, content_type: str) -> list[Envelope]:
        if not looks_like_json(raw):
            return decoder(raw, content_type)
        with strictly_read(raw):
            return decoder(raw, content_type)

    return decode


def decoders_of(partners: Iterable[PartnerDescriptor]) -> dict[str, Decoder]:
    """Partner organisation -> decoder of the messages it sends (HTTP body or ``in.<partner>`` record), each
    behind the strict JSON check."""
    return {p.organisation: _strict(p.decode) for p in check_partners(partners) if p.decode is not None}


def encoders_of(partners: Iterable[PartnerDescriptor]) -> dict[tuple[str, str], Encoder]:
    """(recipient, outbound message type) -> encoder of what that recipient receives on ``out.<recipient>``;
    a delivery without one is the canonical envelope (:func:`encode_canonical`)."""
    return {delivery: encoder for p in check_partners(partners) for delivery, encoder in p.outbound().items()}


@functools.cache
def decoder_for(organisation: str) -> Decoder | None:
    """The decoder of what the built-in partner ``organisation`` sends (behind the strict JSON check), importing
    its adapter package only; None for an organisation that sends nothing the gateway decodes."""
    partner = descriptor(organisation)
    return None if partner is None or partner.decode is None else _strict(partner.decode)


@functools.cache
def _built_in_decoders() -> dict[str, Decoder]:
    return decoders_of(built_in())


@functools.cache
def _built_in_encoders() -> dict[tuple[str, str], Encoder]:
    return encoders_of(built_in())


if TYPE_CHECKING:
    DECODERS: dict[str, Decoder]
    """The built-in partners' decoders (:func:`decoders_of`), built when first read."""
    ENCODERS: dict[tuple[str, str], Encoder]
    """The built-in partners' encoders (:func:`encoders_of`), built when first read."""


def __getattr__(name: str) -> object:
    """:data:`DECODERS` and :data:`ENCODERS`, built when first read (PEP 562)."""
    if name == "DECODERS":
        return _built_in_decoders()
    if name == "ENCODERS":
        return _built_in_encoders()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
