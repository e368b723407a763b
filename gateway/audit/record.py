"""The audit record (privacy.md "Audit record"): one per decision and one per disclosure, per person.

BALP-aligned fields, and nothing personal: the subject appears only as a keyed per-subject reference
(:func:`subject_ref`), which stops resolving once the subject's key is destroyed (erasure by
crypto-shredding) while the log still verifies.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.uuids import uuid7_text
from schemas.trusted import TrustedBuilder

__all__ = [
    "AuditEventType", "AuditRecord", "KafkaCoordinates", "ReviewKind", "review_kind", "subject_ref", "trusted_record",
]

AuditEventType = Literal[
    "decision", "disclosure", "delivery-dropped", "consent-change", "privacy-query", "erasure", "retention",
    "token-issued", "dead-letter-replay", "console-session",
]
"""``token-issued``: an access token handed to a client (client, organisation, scopes, ``jti``, expiry); the
token endpoint answers with no token when this record cannot be written.
``erasure``: a subject crypto-shredded on a privacy officer's request (the record names no subject).
``retention``: stored payloads purged once their flow's retention ran out (counts per flow, nothing personal).
``dead-letter-replay``: an operator put a dead-lettered message back through the intake (who asked, the
dead-letter entry in ``queried_ref``, the source record's coordinates, and what came of it).
``console-session``: an officer signed in to the console (``sign-in``), signed out (``sign-out``) or failed to
sign in (``sign-in``, outcome ``failure``, with a coded reason and nothing the person typed)."""


def subject_ref(subject_key: bytes) -> str:
    """The audit reference of a subject: HMAC of a fixed label under that subject's own key."""
    return hmac.new(subject_key, b"audit-subject-ref/v1", hashlib.sha256).hexdigest()[:32]


ReviewKind = Literal["denial", "drop-at-delivery", "emergency"]
"""Why a record is queued for privacy-officer review: a denial, a message dropped at delivery, or a
decision under an emergency override."""


def review_kind(record: AuditRecord) -> ReviewKind | None:
    """Whether (and why) a privacy officer must review ``record`` (rule 11 and the review queue of privacy.md)."""
    if record.event_type == "delivery-dropped":
        return "drop-at-delivery"
    if record.event_type != "decision":
        return None
    if record.alert or "EMERGENCY" in record.labels:
        return "emergency"
    return "denial" if record.outcome == "deny" else None


class KafkaCoordinates(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    topic: str
    partition: int
    offset: int


class AuditRecord(BaseModel):
    """One audit event. ``log_index`` and ``prev_chain_hash`` are set when the record is appended."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    record_id: str = Field(default_factory=uuid7_text)
    event_type: AuditEventType
    action: str
    """What was done: ``forward``, ``deny``, ``drop-at-delivery``, ``record-consent``, ``withdraw-consent``,
    ``erase-subject``, ``purge-expired``."""
    occurred_at: datetime
    outcome: Literal["permit", "deny", "success", "failure"]
    reason: str | None = None
    """For denials, one of :data:`gateway.policy.DenialReason`."""
    purpose: str | None = None
    legal_basis: str | None = None
    flow_id: str | None = None
    decision_id: str | None = None
    consent_ref: str | None = None
    consent_hash: str | None = None
    """For consent changes: the hash of the consent version written (``sha256:...``), so that a stored consent
    altered afterwards no longer matches the log."""
    policy_revision: str | None = None
    combining_rule: str | None = None
    matched_provision: str | None = None
    client_id: str | None = None
    token_id: str | None = None
    requesting_org: str | None = None
    instance: str
    source_org: str | None = None
    recipient_org: str | None = None
    subject_ref: str | None = None
    message_ids: tuple[str, ...] = ()
    correlation_id: str | None = None
    request_id: str | None = None
    trace_id: str | None = None
    """W3C trace id the sender passed in ``traceparent``, if any."""
    kafka: KafkaCoordinates | None = None
    data_categories: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    obligations: tuple[str, ...] = ()
    queried_ref: str | None = None
    """For ``privacy-query`` records: what the privacy officer read, e.g. ``audit-log/17``."""
    counts: dict[str, int] | None = None
    """For ``erasure`` and ``retention`` records: what was removed, e.g. ``{"F1/outbox-payloads": 3}``."""
    scopes: tuple[str, ...] | None = None
    """For ``token-issued`` records: the scopes granted."""
    expires_at: datetime | None = None
    """For ``token-issued`` records: when the token expires."""
    alert: Literal[True] | None = None
    """Set on a decision taken under an emergency override (rule 11): an alert for the privacy officers, who
    find it in their review queue. Absent otherwise (so older records hash as they did)."""

    def for_log(self, log_index: int, prev_chain_hash: bytes, recorded_at: datetime) -> dict[str, Any]:
        """The JSON object that is canonicalised and hashed at position ``log_index``."""
        return self.log_body(log_index, prev_chain_hash, recorded_at.isoformat())

    def log_body(self, log_index: int, prev_chain_hash: bytes, recorded_at: str) -> dict[str, Any]:
        """:meth:`for_log` with the recording time already written (``datetime.isoformat``), as
        :func:`gateway.audit.chain.extend` writes it once for all the records it appends. The fields are
        ``model_dump(mode="json", exclude_none=True)``, called on the model's serialiser directly (a tenth less
        CPU for the same output: ``model_dump`` is a Python wrapper that passes every option on)."""
        body: dict[str, Any] = _SERIALISER.to_python(self, mode="json", exclude_none=True)
        body["log_index"] = log_index
        body["prev_chain_hash"] = prev_chain_hash.hex()
        body["recorded_at"] = recorded_at
        return body


_SERIALISER = AuditRecord.__pydantic_serializer__

trusted_record: TrustedBuilder[AuditRecord] = TrustedBuilder(AuditRecord)
"""Called with the fields as keywords: an :class:`AuditRecord` built from values the gateway produced itself, without
validating them again (:mod:`schemas.trusted`). For the ledger's records of each referral's decisions and
disclosures (two per referral), whose values come from an envelope validated at decoding, the submission, the
gateway's own :class:`~gateway.policy.Decision` and flow registry and a keyed hash, all of the types this model
declares (mypy checks the ledger), with the literals the ledger writes itself. The record equals the one
validated from the same values and hashes to the same bytes
(``tests/unit/pipeline/test_trusted_models_on_memory_store.py``). Any record built from outside input is
validated by the model's own constructor."""
