"""The bodies the gateway itself writes to Kafka, which no partner format describes: statuses on
``status.<sender>``, dead-letter entries on ``dlq.<partner>``, consent withdrawals on ``gateway.consent-events``,
restriction notices and canonical deliveries on ``out.<recipient>``. The AsyncAPI document
(:mod:`gateway.contracts.asyncapi`) publishes their JSON Schemas."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.policy.registry import LifecycleState
from schemas.envelope import Envelope

__all__ = [
    "CanonicalDelivery",
    "ConsentWithdrawnEvent",
    "DeadLetterEntry",
    "DeliveryLabels",
    "FieldProblemBody",
    "RecordCoordinates",
    "RestrictionNotice",
    "StatusMessage",
]

class _Body(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StatusMessage(_Body):
    """A status on ``status.<sender>``: what happened to a message the partner sent (rule 13: a reason class,
    never the reason behind a consent denial)."""

    message_type: Literal["referral.status"]
    message_id: str = Field(description="the sender's id of the message this status is about")
    correlation_id: str
    state: Literal["received", "forwarded", "denied", "rejected", "dropped"]
    reason_class: str | None = Field(description="why nothing was forwarded, as the sender may be told")
    recipients: list[str] = Field(description="organisations the message was forwarded to")
    lifecycle: LifecycleState | None = Field(
        default=None, description="what the recipient reported since about the referral"
    )
    at: datetime


class FieldProblemBody(_Body):
    """One problem in a dead-lettered message, located by JSON pointer; never the offending value."""

    pointer: str
    rule: str
    message: str


class RecordCoordinates(_Body):
    """Where the dead-lettered record is: a copy of the payload is never kept."""

    topic: str
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)


class DeadLetterEntry(_Body):
    """An entry on ``dlq.<partner>``: a record of ``in.<partner>`` that could not be accepted."""

    reason: str = Field(description="problem type slug, e.g. contract-violation or malformed-message")
    title: str
    detail: str
    problems: list[FieldProblemBody]
    source: RecordCoordinates
    message_id: str | None = Field(description="the record's message-id header, when it had one")
    request_id: str
    at: datetime


class ConsentWithdrawnEvent(_Body):
    """An event on ``gateway.consent-events``: a consent was withdrawn (rule 10)."""

    event: Literal["consent.withdrawn"]
    consent_ref: str
    withdrawn_at: datetime
    purposes: list[str]
    recipients: list[str]


class RestrictionNotice(_Body):
    """A notice on ``out.<recipient>`` after a withdrawal: stop processing what was received under the
    consent (GDPR art. 7(3) and 19); acknowledged over HTTP."""

    message_type: Literal["consent.restriction-notice"]
    notice_id: str
    consent_ref: str
    withdrawn_at: datetime
    legal_reference: str
    action: str
    disclosures: list[str] = Field(description="message ids of the disclosures made under the consent")
    acknowledge: str = Field(description="the HTTP request that acknowledges the notice")


class DeliveryLabels(_Body):
    """What travels with a disclosure besides the payload (rule 8)."""

    consent_ref: str | None
    obligations: list[str]
    refrains: list[str]


class CanonicalDelivery(Envelope):
    """A minimised canonical envelope with its labels: what a recipient without a native format receives."""

    labels: DeliveryLabels
