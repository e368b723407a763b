"""Canonical models of the gateway: the envelope, typed payloads per message type, and code lists.

These are what adapters decode partner messages into and encode outgoing messages from; the published
contracts in ``contracts/`` are generated from them.
"""

from schemas.envelope import Envelope, Identifier, SensitivityLabel, SubjectRef
from schemas.messages import MESSAGE_TYPES, TenancyArrearsReferral, validate_payload

__all__ = [
    "MESSAGE_TYPES",
    "Envelope",
    "Identifier",
    "SensitivityLabel",
    "SubjectRef",
    "TenancyArrearsReferral",
    "validate_payload",
]
