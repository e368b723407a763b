"""The store as the pipeline sees it: a unit of work with exactly the reads and writes of the F1 hot path.

:class:`PipelineStore` opens a :class:`PipelineTransaction`; whatever is done through one commits together or not
at all. The intake (:mod:`gateway.pipeline.intake`), the relay (:mod:`gateway.pipeline.relay`), the consent index
(:mod:`gateway.consents.index`) and the crosswalk's token lookups (:mod:`gateway.identity.crosswalk`) need nothing
more, so they take these types rather than the SQL store itself. Two implementations conform:

- :class:`gateway.store.store.Store` (PostgreSQL or SQLite), whose transactions are
  :class:`~gateway.store.unit_of_work.StoreTransaction`: the gateway's own;
- :class:`gateway.store.memory.MemoryStore`, in memory, for fast unit tests of the pipeline.

:class:`ConsentStore` is the same for the consent registry (:mod:`gateway.consents.service`), which records,
withdraws and renews consents. :class:`InspectableStore` has both, and what a test looks at besides (statuses,
outgoing messages, the audit log); the store contract suite (``tests/contract``) holds both implementations to
the same answers. mypy checks that each conforms (structural typing: neither names these protocols).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Protocol

from gateway.audit.chain import ChainedEntry, ChainHead
from gateway.audit.merkle import NodeKey
from gateway.audit.record import AuditRecord
from gateway.identity.crosswalk import MintedToken, TokenLookup
from gateway.policy.consent import ConsentRecord
from gateway.statistics.counting import ActivityEvent
from gateway.store.models import MessageStatus, OutboxRow, Subject

__all__ = ["ConsentStore", "ConsentTransaction", "InspectableStore", "InspectableTransaction", "PipelineStore",
           "PipelineTransaction"]


class PipelineTransaction(TokenLookup, Protocol):
    """One unit of work of the pipeline: each method is documented on the SQL repository that implements it
    (:mod:`gateway.store.statuses`, :mod:`~gateway.store.subjects`, :mod:`~gateway.store.consents`,
    :mod:`~gateway.store.outbox`, :mod:`~gateway.store.activity`, :mod:`~gateway.store.audit_log`)."""

    # --- message statuses: written once per message id (decided, or claimed first), then its outcomes -------

    async def claim_messages(self, statuses: Sequence[MessageStatus]) -> set[tuple[str, str]]: ...

    async def insert_messages(self, statuses: Sequence[MessageStatus]) -> bool: ...

    async def update_messages(self, statuses: Sequence[MessageStatus]) -> None: ...

    async def messages_many(self, keys: Collection[tuple[str, str]]) -> dict[tuple[str, str], MessageStatus]: ...

    async def advance_lifecycle(self, sender: str, correlation_id: str, state: str, at: datetime, *,
                                reported_by: str, message_types: Collection[str]) -> list[MessageStatus]: ...

    # --- subjects: found or created by keyed identifier hashes, and the tokens minted for them -------------
    # (subject_of_token and token_identifier come from TokenLookup)

    async def prefetch_subjects(self, identifiers: Iterable[tuple[str, str]]) -> None: ...

    def defer_new_subjects(self) -> None: ...

    async def write_new_subjects(self) -> bool: ...

    async def subject(self, system: str, value: str, *, create: bool) -> Subject | None: ...

    async def link_identifier(self, subject: Subject, system: str, value: str) -> bool: ...

    async def subject_by_pseudonym(self, pseudonym: str) -> Subject | None: ...

    async def subject_of_disclosure(self, message_id: str, topics: Collection[str]) -> Subject | None: ...

    async def record_tokens(self, minted: Sequence[MintedToken]) -> None: ...

    # --- consents: versions numbered in commit order -------------------------------------------------------

    async def consent_change_head(self) -> int: ...

    async def subjects_with_consent_changes(self, after: int) -> set[str]: ...

    def latest_consents(self, chunk: int = 5_000) -> AsyncIterator[list[ConsentRecord]]: ...

    async def consents_for_many(self, pseudonyms: Collection[str]) -> dict[str, list[ConsentRecord]]: ...

    async def latest_consent_versions(self, consent_ids: Collection[str]) -> dict[str, ConsentRecord]: ...

    # --- the outbox: queued in id order, claimed, delivered or dropped -------------------------------------

    async def enqueue(self, rows: Sequence[OutboxRow]) -> list[OutboxRow]: ...

    async def claim_undelivered(self, rows: Sequence[OutboxRow], *, dequeue: bool = False) -> list[OutboxRow]: ...

    async def pending_outbox(self, limit: int, queued_before: datetime | None = None) -> list[OutboxRow]: ...

    async def mark_delivered(self, ids: Sequence[int]) -> None: ...

    async def mark_dropped(self, row_id: int, reason: str) -> None: ...

    # --- counted events and the audit log ------------------------------------------------------------------

    async def record_activity(self, events: Sequence[ActivityEvent]) -> None: ...

    async def append_audit(self, records: Sequence[AuditRecord]) -> list[ChainedEntry]: ...


class PipelineStore(Protocol):
    """Opens units of work for the pipeline."""

    def transaction(self) -> AbstractAsyncContextManager[PipelineTransaction]: ...


class ConsentTransaction(Protocol):
    """One unit of work of the consent registry (:mod:`gateway.consents.service`): a consent recorded, withdrawn
    or renewed commits with its audit records, and a withdrawal with its event and art. 19 notices."""

    async def subject(self, system: str, value: str, *, create: bool) -> Subject | None: ...

    async def subject_by_pseudonym(self, pseudonym: str) -> Subject | None: ...

    async def add_consent(self, record: ConsentRecord, recorded_by: str) -> None: ...

    async def consent_versions(self, consent_id: str) -> list[ConsentRecord]: ...

    async def consent_recorded_by(self, consent_id: str) -> str | None: ...

    async def hold_pending_under(self, consent_id: str) -> int: ...

    async def disclosures_under(self, consent_id: str) -> list[tuple[str, str]]: ...

    async def outbox_message(self, recipient: str, message_id: str) -> OutboxRow | None: ...

    async def enqueue(self, rows: Sequence[OutboxRow]) -> list[OutboxRow]: ...

    async def append_audit(self, records: Sequence[AuditRecord]) -> list[ChainedEntry]: ...


class ConsentStore(Protocol):
    """Opens units of work for the consent registry."""

    def transaction(self) -> AbstractAsyncContextManager[ConsentTransaction]: ...


class InspectableTransaction(PipelineTransaction, ConsentTransaction, Protocol):
    """The pipeline's and the consent registry's unit of work, plus what a test reads back afterwards."""

    async def message(self, sender: str, message_id: str) -> MessageStatus | None: ...

    async def inbox(self, recipient: str, after_id: int, limit: int) -> list[OutboxRow]: ...

    async def activity(self, month: str, kinds: Sequence[str]) -> list[ActivityEvent]: ...

    async def audit_head(self) -> ChainHead: ...

    async def audit_entries(self, start: int = 0, limit: int = 10_000) -> list[dict[str, Any]]: ...

    async def audit_leaf_hashes(self, tree_size: int, start: int = 0) -> list[bytes]: ...

    async def audit_tree_nodes(self, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]: ...

    async def audit_nodes_completed_within(self, start: int, end: int) -> dict[NodeKey, bytes]: ...


class InspectableStore(Protocol):
    """Opens :class:`InspectableTransaction` units of work; also has the store's keyed lookup hash, so that a
    test can name a person as the store knows them, and names the kind of store (a test of concurrency expects
    PostgreSQL's row locks, or one transaction at a time elsewhere)."""

    clock: Callable[[], datetime]
    """Clock of audit ``recorded_at`` times (a test fixes it to compare logs)."""

    def transaction(self) -> AbstractAsyncContextManager[InspectableTransaction]: ...

    def lookup_hash(self, system: str, value: str) -> str: ...

    @property
    def dialect(self) -> str:
        """``postgresql``, ``sqlite`` or ``memory``."""
        ...
