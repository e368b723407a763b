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
from schemas.envelope import Envelope

__all__ = ["DECODERS", "ENCODERS", "Encoder", "OutboundLabels", "encode_canonical"]

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
