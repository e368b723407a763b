"""Response models of the HTTP API (``XOut``), which the OpenAPI contract publishes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from gateway.policy.consent import ConsentRecord
from gateway.store import MessageStatus

__all__ = ["ConsentOut", "InboxMessageOut", "InboxOut", "StatusOut"]


class StatusOut(BaseModel):
    """What happened to a message the partner sent."""

    message_id: str
    correlation_id: str
    message_type: str
    state: str = Field(description="received, forwarded, denied")
    reason_class: str | None = Field(
        description="why nothing crossed, as a class; never reveals whether a consent exists"
    )
    recipients: list[str] = Field(description="organisations the message was forwarded to")
    received_at: datetime
    lifecycle: str | None = Field(
        default=None, description="what the recipient reported since: accepted, then rejected, completed or withdrawn"
    )
    lifecycle_at: datetime | None = None

    @classmethod
    def of(cls, status: MessageStatus) -> StatusOut:
        return cls(message_id=status.message_id, correlation_id=status.correlation_id,
                   message_type=status.message_type, state=status.state, reason_class=status.reason_class,
                   recipients=list(status.recipients), received_at=status.received_at,
                   lifecycle=status.lifecycle, lifecycle_at=status.lifecycle_at)


class InboxMessageOut(BaseModel):
    cursor: int = Field(description="pass as ?after= to read on from here")
    topic: str
    message_id: str
    headers: dict[str, str]
    body: Any


class InboxOut(BaseModel):
    messages: list[InboxMessageOut]
    next_after: int


class ConsentOut(BaseModel):
    consent_id: str
    version: int
    status: str
    decision: str
    purposes: list[str]
    recipients: list[str]
    period_start: datetime | None
    period_end: datetime | None
    recorded_at: datetime | None
    withdrawn: bool
    consent_type: str = Field(description="explicit, express or opt-out")
    record_hash: str = Field(description="sha256 of the RFC 8785 canonical form of `record`")
    record: dict[str, Any] = Field(
        description="the whole version, R5-shaped: grantor, notice, provisions with their nested level, capture "
                    "and withdrawal evidence; the person appears by pseudonym only"
    )

    @classmethod
    def of(cls, record: ConsentRecord) -> ConsentOut:
        return cls(consent_id=record.consent_id, version=record.version, status=record.status,
                   decision=record.decision, purposes=sorted(record.purposes), recipients=sorted(record.recipients),
                   period_start=record.period_start, period_end=record.period_end, recorded_at=record.recorded_at,
                   withdrawn=record.withdrawn, consent_type=record.consent_type, record_hash=record.record_hash,
                   record=record.document())
