"""An in-memory store for fast unit tests of the pipeline: the unit of work of :mod:`gateway.store.ports`, held in
Python objects instead of a database.

What it is for: tests of the intake, the relay and the consent index that need a store's behaviour but not a
database, so that they run in milliseconds. It keeps the store's semantics, and ``tests/contract`` holds it to
the same answers as SQLite and PostgreSQL:

- a message id is claimed once per sender (a replay claims nothing);
- people are found and created under the same keyed lookup hashes (:mod:`gateway.store.keyed`), so a test can
  name a person as the store knows them, and an identifier never leads to two people;
- consent versions are numbered in commit order, with the change head the consent index follows;
- outgoing messages get ids in the order queued, and are claimed, delivered or dropped as in the SQL outbox;
- the audit log is appended through the same chain and Merkle code (:func:`gateway.audit.chain.extend`), with
  the same monotonic ``recorded_at``: for the same records at the same clock, the head, indexes and root equal
  the SQL store's, and :func:`gateway.audit.verify.verify_log` accepts its entries;
- transactions are all or nothing: a transaction works on its own copy of the state, which replaces the shared
  one only when the transaction ends without an exception. Transactions run one at a time (like SQLite's
  ``BEGIN IMMEDIATE``): a second one waits for the first to end.

What it is not: a production store, and never wired into the gateway. It lives in one process and dies with it
(nothing is durable, nothing is shared between processes), and it has no schema, migrations or SQL. It does not
keep what the pipeline and the consent registry do not use: signed checkpoints and signing keys, partner
clients and assertion ids, the privacy officers' review decisions and reports, retention, erasure (crypto-
shredding), statistics publications. Tests of those, of two processes on one database (PostgreSQL's row locks,
``SKIP LOCKED``), of a process killed mid-transaction, and of the schema stay on the SQL store. It has no
parsed-consent cache (it keeps parsed records), and ``prefetch_subjects`` and ``defer_new_subjects`` change
nothing (every read is in memory; no other writer can race a transaction). Copying the state per transaction
costs time in the state's size: it is meant for the few hundred rows of a test, not for a benchmark.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError

from gateway.audit.chain import GENESIS_CHAIN_HASH, ChainedEntry, ChainHead, extend
from gateway.audit.merkle import STORED_NODE_LEVEL, MerkleAccumulator, NodeKey, derived_nodes, leaf_range
from gateway.audit.record import AuditRecord, review_kind, subject_ref
from gateway.identity.crosswalk import MintedToken, seal, unseal
from gateway.policy.consent import ConsentRecord
from gateway.policy.registry import FINAL_LIFECYCLE_STATES
from gateway.statistics.counting import ActivityEvent, combine_decisions
from gateway.store import keyed
from gateway.store.models import MessageStatus, OutboxRow, Subject

__all__ = ["MemoryStore", "MemoryTransaction"]

_CORRECTABLE_ACTIVITY = ("month", "quartiere", "outcome", "weight", "vaccine_group")
"""What a care record sent again may change in the row it counted before (as :mod:`gateway.store.activity`)."""


def _conflict(what: str) -> IntegrityError:
    """The error the SQL store raises on a unique constraint, so that callers behave the same on both."""
    return IntegrityError(f"memory store: {what}", None, ValueError(what))


@dataclass(frozen=True, slots=True)
class _Token:
    recipient: str
    system: str
    subject_pseudonym: str
    sealed_value: bytes | None


@dataclass(frozen=True, slots=True)
class _Consent:
    change_seq: int
    record: ConsentRecord
    recorded_by: str


@dataclass(frozen=True, slots=True)
class _Queued:
    row: OutboxRow
    """With its id."""
    queued: bool = True
    """Still to deliver (the SQL stores' ``outbox_queue``)."""
    dropped_reason: str | None = None

    @property
    def undelivered(self) -> bool:
        return self.queued

    @property
    def delivered(self) -> bool:
        return not self.queued and self.dropped_reason is None


@dataclass(slots=True)
class _State:
    """Everything the store holds. Values are immutable; a transaction copies the containers (:meth:`copy`)."""

    subjects: dict[str, Subject] = field(default_factory=dict)
    """By pseudonym."""
    identifiers: dict[str, str] = field(default_factory=dict)
    """Lookup hash -> pseudonym."""
    tokens: dict[str, _Token] = field(default_factory=dict)
    consents: list[_Consent] = field(default_factory=list)
    """In commit order."""
    consent_head: int = 0
    messages: dict[tuple[str, str], MessageStatus] = field(default_factory=dict)
    outbox: dict[int, _Queued] = field(default_factory=dict)
    """By id, in id order."""
    last_outbox_id: int = 0
    audit: list[dict[str, Any]] = field(default_factory=list)
    """Entries as :meth:`MemoryTransaction.audit_entries` returns them, by index."""
    audit_record_ids: set[str] = field(default_factory=set)
    audit_chain_hash: bytes = GENESIS_CHAIN_HASH
    audit_frontier: tuple[bytes, ...] = ()
    audit_nodes: dict[NodeKey, bytes] = field(default_factory=dict)
    review_items: list[tuple[int, str, str | None, datetime]] = field(default_factory=list)
    """(audit index, kind, flow id, created at) of the records a privacy officer must review."""
    activity: list[tuple[ActivityEvent, str | None]] = field(default_factory=list)
    """Counted events (without their source record) and the keyed hash of that record, if any."""

    def copy(self) -> _State:
        return _State(
            subjects=dict(self.subjects), identifiers=dict(self.identifiers), tokens=dict(self.tokens),
            consents=list(self.consents), consent_head=self.consent_head, messages=dict(self.messages),
            outbox=dict(self.outbox), last_outbox_id=self.last_outbox_id, audit=list(self.audit),
            audit_record_ids=set(self.audit_record_ids), audit_chain_hash=self.audit_chain_hash,
            audit_frontier=self.audit_frontier, audit_nodes=dict(self.audit_nodes),
            review_items=list(self.review_items), activity=list(self.activity),
        )


class MemoryStore:
    """The store's unit of work in memory (see the module docstring): for fast unit tests, never production."""

    def __init__(self, pseudonym_key: bytes) -> None:
        self._pseudonym_key = pseudonym_key
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        """Clock of audit ``recorded_at`` times, as :attr:`gateway.store.store.Store.clock`."""
        self._state = _State()
        self._serial = asyncio.Lock()
        self._holder: asyncio.Task[Any] | None = None
        """The task whose transaction runs now."""

    @property
    def dialect(self) -> str:
        return "memory"

    async def migrate(self) -> None:
        """Nothing to do: there is no schema (kept so that a test may treat both stores alike)."""

    async def close(self) -> None:
        """Nothing to release."""

    def lookup_hash(self, system: str, value: str) -> str:
        return keyed.lookup_hash(self._pseudonym_key, system, value)

    def activity_source_key(self, source: str, resource_type: str, resource_id: str) -> str:
        return keyed.activity_source_key(self._pseudonym_key, source, resource_type, resource_id)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[MemoryTransaction]:
        """One atomic unit of work: its changes replace the shared state only if its block ends normally.

        Raises :class:`RuntimeError` when the task opening it holds another one already: it would wait for
        itself forever (the SQL stores would wait for their lock timeout, then fail)."""
        task = asyncio.current_task()
        if task is not None and task is self._holder:
            raise RuntimeError("a transaction of the in-memory store was opened inside another one of the same task")
        async with self._serial:
            self._holder = task
            tx = MemoryTransaction(self, self._state.copy())
            try:
                yield tx
                if tx._aborted:
                    raise RuntimeError("a transaction that failed ended without an error; it is rolled back")
                self._state = tx._state
            finally:
                tx._ended = True
                self._holder = None


class MemoryTransaction:
    """Reads and writes inside one transaction of a :class:`MemoryStore`."""

    def __init__(self, store: MemoryStore, state: _State) -> None:
        self._store = store
        self._state = state
        self._ended = False
        self._aborted = False
        """Set by a failed :meth:`insert_messages`: the transaction can only be rolled back."""

    @property
    def _s(self) -> _State:
        if self._ended:
            raise RuntimeError("this transaction has ended; open another one")
        if self._aborted:
            raise RuntimeError("this transaction failed (a status seen before); it can only be rolled back")
        return self._state

    # --- message statuses ------------------------------------------------------------------------------------

    async def claim_messages(self, statuses: Sequence[MessageStatus]) -> set[tuple[str, str]]:
        return self._claim(statuses)

    def _claim(self, statuses: Sequence[MessageStatus]) -> set[tuple[str, str]]:
        messages = self._s.messages
        claimed: set[tuple[str, str]] = set()
        for s in statuses:
            key = (s.sender, s.message_id)
            if key not in messages:
                messages[key] = replace(s, recipients=tuple(s.recipients), lifecycle=None, lifecycle_at=None)
                claimed.add(key)
        return claimed

    async def insert_messages(self, statuses: Sequence[MessageStatus]) -> bool:
        if any((s.sender, s.message_id) in self._s.messages for s in statuses):
            self._aborted = True  # as on PostgreSQL, where the failed copy aborts the transaction
            return False
        self._claim(statuses)
        return True

    async def update_messages(self, statuses: Sequence[MessageStatus]) -> None:
        messages = self._s.messages
        for s in statuses:
            key = (s.sender, s.message_id)
            if (current := messages.get(key)) is not None:
                messages[key] = replace(current, state=s.state, reason_class=s.reason_class,
                                        recipients=tuple(s.recipients))

    async def messages_many(self, keys: Collection[tuple[str, str]]) -> dict[tuple[str, str], MessageStatus]:
        messages = self._s.messages
        return {key: messages[key] for key in sorted(keys) if key in messages}

    async def message(self, sender: str, message_id: str) -> MessageStatus | None:
        return self._s.messages.get((sender, message_id))

    async def messages_by_correlation(self, sender: str, correlation_id: str) -> list[MessageStatus]:
        found = [m for m in self._s.messages.values() if m.sender == sender and m.correlation_id == correlation_id]
        return sorted(found, key=lambda m: m.received_at)

    async def advance_lifecycle(self, sender: str, correlation_id: str, state: str, at: datetime, *,
                                reported_by: str, message_types: Collection[str]) -> list[MessageStatus]:
        moved = []
        for m in await self.messages_by_correlation(sender, correlation_id):
            if (m.state == "forwarded" and reported_by in m.recipients and m.message_type in message_types
                    and m.lifecycle not in (*FINAL_LIFECYCLE_STATES, state)):
                self._s.messages[(m.sender, m.message_id)] = moved_status = replace(m, lifecycle=state,
                                                                                    lifecycle_at=at)
                moved.append(moved_status)
        return moved

    # --- subjects and crosswalk tokens ---------------------------------------------------------------------

    async def prefetch_subjects(self, identifiers: Iterable[tuple[str, str]]) -> None:
        """Nothing to fetch ahead: every read is in memory already."""
        for _ in identifiers:  # consumed, as the SQL store consumes it
            pass

    def defer_new_subjects(self) -> None:
        """Nothing to defer: no other transaction runs meanwhile, so new subjects are written at once, into this
        transaction's own state, and :meth:`write_new_subjects` always succeeds."""

    async def write_new_subjects(self) -> bool:
        return True

    async def subject(self, system: str, value: str, *, create: bool) -> Subject | None:
        state = self._s
        lookup = self._store.lookup_hash(system, value)
        pseudonym = state.identifiers.get(lookup)
        if pseudonym is not None:
            return state.subjects[pseudonym]
        if not create:
            return None
        subject = Subject("sbj_" + secrets.token_urlsafe(16), secrets.token_bytes(32))
        state.subjects[subject.pseudonym] = subject
        state.identifiers[lookup] = subject.pseudonym
        return subject

    async def link_identifier(self, subject: Subject, system: str, value: str) -> bool:
        identifiers = self._s.identifiers
        lookup = self._store.lookup_hash(system, value)
        holder = identifiers.get(lookup)
        if holder is not None:
            return holder == subject.pseudonym
        identifiers[lookup] = subject.pseudonym
        return True

    async def subject_by_pseudonym(self, pseudonym: str) -> Subject | None:
        return self._s.subjects.get(pseudonym)

    async def subject_of_disclosure(self, message_id: str, topics: Collection[str]) -> Subject | None:
        state = self._s
        for queued in state.outbox.values():
            pseudonym = queued.row.subject_pseudonym
            if (queued.row.message_id == message_id and queued.row.topic in topics and pseudonym is not None
                    and pseudonym in state.subjects):
                return state.subjects[pseudonym]
        return None

    async def record_tokens(self, minted: Sequence[MintedToken]) -> None:
        tokens = self._s.tokens
        key = self._store._pseudonym_key
        latest = {m.token: m for m in minted}  # as the SQL store: the last of a batch for one token is offered
        for token, m in latest.items():
            if token not in tokens:
                tokens[token] = _Token(m.recipient, m.system, m.subject_pseudonym,
                                       None if m.value is None else seal(key, m.token, m.value))

    async def subject_of_token(self, token: str, quoted_by: str) -> Subject | None:
        found = self._s.tokens.get(token)
        if found is None or found.recipient != quoted_by:
            return None
        return self._s.subjects.get(found.subject_pseudonym)

    async def token_identifier(self, token: str, quoted_by: str) -> tuple[str, str] | None:
        found = self._s.tokens.get(token)
        if found is None or found.recipient != quoted_by or found.sealed_value is None:
            return None
        value = unseal(self._store._pseudonym_key, token, found.sealed_value)
        return None if value is None else (found.system, value)

    # --- consents --------------------------------------------------------------------------------------------

    async def add_consent(self, record: ConsentRecord, recorded_by: str) -> None:
        """Store one version, numbered next in commit order; kept as the SQL store reads it back (parsed from
        its stored document)."""
        state = self._s
        if any(c.record.consent_id == record.consent_id and c.record.version == record.version
               for c in state.consents):
            raise _conflict(f"consent version {record.ref} exists")
        state.consent_head += 1
        state.consents.append(_Consent(state.consent_head, ConsentRecord.from_document(record.document()),
                                       recorded_by))

    async def consent_change_head(self) -> int:
        return self._s.consent_head

    async def subjects_with_consent_changes(self, after: int) -> set[str]:
        return {c.record.subject_pseudonym for c in self._s.consents if c.change_seq > after}

    async def latest_consents(self, chunk: int = 5_000) -> AsyncIterator[list[ConsentRecord]]:
        latest = list(self._latest_versions(None).values())
        for start in range(0, len(latest), chunk):
            yield latest[start:start + chunk]

    async def consents_for_many(self, pseudonyms: Collection[str]) -> dict[str, list[ConsentRecord]]:
        found: dict[str, list[ConsentRecord]] = {p: [] for p in pseudonyms}
        for c in self._s.consents:
            if c.record.subject_pseudonym in found:
                found[c.record.subject_pseudonym].append(c.record)
        return found

    async def consents_for(self, pseudonym: str) -> list[ConsentRecord]:
        return (await self.consents_for_many([pseudonym]))[pseudonym]

    async def latest_consent_versions(self, consent_ids: Collection[str]) -> dict[str, ConsentRecord]:
        return self._latest_versions(set(consent_ids)) if consent_ids else {}

    def _latest_versions(self, consent_ids: Collection[str] | None) -> dict[str, ConsentRecord]:
        latest: dict[str, ConsentRecord] = {}
        for c in self._s.consents:
            r = c.record
            if (consent_ids is None or r.consent_id in consent_ids) and (
                    r.consent_id not in latest or latest[r.consent_id].version < r.version):
                latest[r.consent_id] = r
        return latest

    async def consent_versions(self, consent_id: str) -> list[ConsentRecord]:
        return sorted((c.record for c in self._s.consents if c.record.consent_id == consent_id),
                      key=lambda r: r.version)

    async def consent_recorded_by(self, consent_id: str) -> str | None:
        return next((c.recorded_by for c in self._s.consents if c.record.consent_id == consent_id), None)

    async def consent_count(self) -> int:
        return len(self._s.consents)

    # --- the outbox ------------------------------------------------------------------------------------------

    async def enqueue(self, rows: Sequence[OutboxRow]) -> list[OutboxRow]:
        state = self._s
        taken = {(q.row.topic, q.row.message_id) for q in state.outbox.values()}
        for r in rows:
            if (r.topic, r.message_id) in taken:
                raise _conflict(f"outgoing message {r.message_id} on {r.topic} is queued already")
            taken.add((r.topic, r.message_id))
        queued = []
        for r in rows:
            state.last_outbox_id += 1
            state.outbox[state.last_outbox_id] = _Queued(replace(
                r, id=state.last_outbox_id, headers=tuple((str(k), str(v)) for k, v in r.headers)))
            queued.append(replace(r, id=state.last_outbox_id))
        return queued

    async def pending_outbox(self, limit: int, queued_before: datetime | None = None) -> list[OutboxRow]:
        found = [q.row for q in self._s.outbox.values()
                 if q.undelivered and (queued_before is None or q.row.created_at < queued_before)]
        return found[:limit]

    async def claim_undelivered(self, rows: Sequence[OutboxRow], *, dequeue: bool = False) -> list[OutboxRow]:
        queued = {(r.topic, r.message_id): r for r in rows}
        claimed = [replace(mine, id=q.row.id) for q in self._s.outbox.values()
                   if q.undelivered and (mine := queued.get((q.row.topic, q.row.message_id))) is not None]
        if dequeue:
            await self.mark_delivered([r.id for r in claimed if r.id is not None])
        return claimed

    async def mark_delivered(self, ids: Sequence[int]) -> None:
        outbox = self._s.outbox
        for row_id in ids:
            if (q := outbox.get(row_id)) is not None:
                outbox[row_id] = replace(q, queued=False)

    async def mark_dropped(self, row_id: int, reason: str) -> None:
        outbox = self._s.outbox
        if (q := outbox.get(row_id)) is not None:
            outbox[row_id] = replace(q, queued=False, dropped_reason=reason)

    async def outbox_message(self, recipient: str, message_id: str) -> OutboxRow | None:
        return next((q.row for q in self._s.outbox.values()
                     if q.row.recipient == recipient and q.row.message_id == message_id), None)

    async def inbox(self, recipient: str, after_id: int, limit: int) -> list[OutboxRow]:
        found = [q.row for q in self._s.outbox.values()
                 if q.row.recipient == recipient and (q.row.id or 0) > after_id and q.delivered
                 and len(q.row.value) > 0]
        return found[:limit]

    async def hold_pending_under(self, consent_id: str) -> int:
        """How many rows are still queued under a consent (nothing to lock: transactions run one at a time)."""
        return sum(1 for q in self._s.outbox.values() if q.row.consent_id == consent_id and q.undelivered)

    async def disclosures_under(self, consent_id: str) -> list[tuple[str, str]]:
        return [(q.row.recipient, q.row.message_id) for q in self._s.outbox.values()
                if q.row.consent_id == consent_id and q.delivered]

    async def outbox_backlog(self) -> tuple[int, datetime | None]:
        waiting = [q.row for q in self._s.outbox.values() if q.undelivered]
        return len(waiting), waiting[0].created_at if waiting else None

    # --- counted events --------------------------------------------------------------------------------------

    async def record_activity(self, events: Sequence[ActivityEvent]) -> None:
        """As :meth:`gateway.store.activity.ActivityRepository.record_activity`: an event naming its source
        record replaces (or, retracted, removes) the row counted for that record; other events are added."""
        latest: dict[tuple[str, str], ActivityEvent] = {}
        added: list[tuple[ActivityEvent, str | None]] = []
        for e in combine_decisions(events):  # a batch's alike decisions as one row, as in the SQL store
            if e.record is None:
                if not e.retracted:
                    added.append((_counted(e), None))
                continue
            key = (e.kind, self._store.activity_source_key(e.source, *e.record))
            latest.pop(key, None)
            latest[key] = e
        rows = self._s.activity
        withdrawn = {key for key, e in latest.items() if e.retracted}
        rows[:] = [(e, k) for e, k in rows if k is None or (e.kind, k) not in withdrawn]
        at: dict[tuple[str, str], int] = {(e.kind, k): n for n, (e, k) in enumerate(rows) if k is not None}
        for (kind, source_key), e in latest.items():
            if e.retracted:
                continue
            if (n := at.get((kind, source_key))) is not None:
                rows[n] = (replace(rows[n][0], **{name: getattr(e, name) for name in _CORRECTABLE_ACTIVITY}),
                           source_key)
            else:
                added.append((_counted(e), source_key))
        rows += added

    async def activity(self, month: str, kinds: Sequence[str]) -> list[ActivityEvent]:
        return [e for e, _ in self._s.activity if e.month == month and e.kind in kinds]

    # --- the audit log ---------------------------------------------------------------------------------------

    async def append_audit(self, records: Sequence[AuditRecord]) -> list[ChainedEntry]:
        """As :meth:`gateway.store.audit_log.AuditLogRepository.append_audit`: chained after the head, at the
        store's clock but never before the previous record, with the Merkle subtrees they complete and a review
        item for each record a privacy officer must review."""
        if not records:
            return []
        state = self._s
        ids = [r.record_id for r in records]
        if len(set(ids)) != len(ids) or not state.audit_record_ids.isdisjoint(ids):
            raise _conflict("an audit record id is stored already")
        head = self._head()
        head.tree.track_completed(STORED_NODE_LEVEL)
        now = self._store.clock()
        if state.audit and state.audit[-1]["recorded_at"] > now:
            now = state.audit[-1]["recorded_at"]
        entries = extend(head, records, now)
        for e, r in zip(entries, records, strict=True):
            state.audit.append({"idx": e.index, "record_id": r.record_id, "event_type": r.event_type,
                                "record": e.canonical.decode("utf-8"), "leaf_hash": e.leaf_hash,
                                "chain_hash": e.chain_hash, "subject_ref": r.subject_ref, "recorded_at": now})
            if (kind := review_kind(r)) is not None:
                state.review_items.append((e.index, kind, r.flow_id, now))
        state.audit_record_ids.update(ids)
        for key, value in head.tree.take_completed():
            state.audit_nodes.setdefault(key, value)  # never rewritten, as in the SQL store
        state.audit_chain_hash, state.audit_frontier = head.chain_hash, head.tree.frontier
        return entries

    def _head(self) -> ChainHead:
        state = self._s
        size = len(state.audit)
        return ChainHead(size=size, chain_hash=state.audit_chain_hash,
                         tree=MerkleAccumulator.from_frontier(size, state.audit_frontier))

    async def audit_head(self) -> ChainHead:
        return self._head()

    async def audit_entries(self, start: int = 0, limit: int = 10_000) -> list[dict[str, Any]]:
        return [dict(e) for e in self._s.audit[max(start, 0):max(start, 0) + limit]]

    async def audit_entry(self, index: int) -> dict[str, Any] | None:
        audit = self._s.audit
        return dict(audit[index]) if 0 <= index < len(audit) else None

    async def audit_records_for(self, subject_key: bytes) -> list[dict[str, Any]]:
        ref = subject_ref(subject_key)
        return [{"idx": e["idx"], "record": e["record"]} for e in self._s.audit if e["subject_ref"] == ref]

    async def audit_leaf_hashes(self, tree_size: int, start: int = 0) -> list[bytes]:
        return [e["leaf_hash"] for e in self._s.audit[max(start, 0):max(tree_size, 0)]]

    async def audit_tree_nodes(self, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
        state = self._s
        found: dict[NodeKey, bytes] = {}
        leaves: dict[int, bytes] = {}
        for key in dict.fromkeys(keys):
            if key[0] >= STORED_NODE_LEVEL:
                if key in state.audit_nodes:
                    found[key] = state.audit_nodes[key]
                continue
            start, end = leaf_range(key)
            leaves.update((i, state.audit[i]["leaf_hash"]) for i in range(start, min(end, len(state.audit))))
        return {**found, **derived_nodes(keys, leaves)}

    async def audit_nodes_completed_within(self, start: int, end: int) -> dict[NodeKey, bytes]:
        return {(level, index): value for (level, index), value in self._s.audit_nodes.items()
                if start >> level <= index < end >> level and end >> level > start >> level}

    async def review_items(self) -> list[tuple[int, str, str | None, datetime]]:
        """(audit index, kind, flow id, created at) of every record queued for a privacy officer's review."""
        return list(self._s.review_items)


def _counted(event: ActivityEvent) -> ActivityEvent:
    """The event as the store keeps it: its dimensions, not the source record it came from."""
    return replace(event, record=None, retracted=False)


if TYPE_CHECKING:  # mypy proves that both stores are the unit of work the pipeline and its tests use
    from gateway.store.ports import InspectableStore
    from gateway.store.store import Store

    def _conforms(sql: Store, memory: MemoryStore) -> tuple[InspectableStore, InspectableStore]:
        return sql, memory
