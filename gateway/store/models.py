"""Value types the store reads and writes (``XRow``), kept apart from the SQL so callers never see SQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["MessageStatus", "OutboxRow", "Subject"]


@dataclass(frozen=True, slots=True)
class Subject:
    """A person as the gateway knows them: a pseudonym and the key of their audit references."""

    pseudonym: str
    subject_key: bytes | None
    """None once the subject was erased (crypto-shredded)."""


@dataclass(frozen=True, slots=True)
class MessageStatus:
    """What happened to one inbound message, as its sender may see it."""

    sender: str
    message_id: str
    correlation_id: str
    message_type: str
    state: str
    """``forwarded`` (at least one recipient), ``denied`` (none) or ``rejected`` (invalid)."""
    reason_class: str | None
    recipients: tuple[str, ...]
    received_at: datetime
    request_id: str | None = None
    lifecycle: str | None = None
    """What the recipient reported since: ``accepted``, ``rejected`` or ``completed`` (None until then)."""
    lifecycle_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """An outgoing message: queued for the relay, then delivered or dropped (``id`` is None until stored;
    whether it is still queued is the store's to say, :meth:`~gateway.store.outbox.OutboxRepository.inbox`)."""

    topic: str
    recipient: str
    message_id: str
    value: bytes
    key: bytes | None
    headers: tuple[tuple[str, str], ...]
    created_at: datetime
    consent_id: str | None = None
    consent_version: int | None = None
    subject_pseudonym: str | None = None
    id: int | None = None
