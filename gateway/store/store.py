"""The store: the gateway's state in PostgreSQL (production) or SQLite (single machine), via SQLAlchemy.

One implementation over two engines; the same contract suite (``tests/contract/test_store_contract.py``)
runs against both. Every write of the pipeline happens inside :meth:`Store.transaction`, so a decision,
its audit records, its outgoing messages and the sender's status commit together or not at all.
Database failures surface as :class:`~gateway.errors.DependencyUnavailable` (retriable), never as a
half-written state.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from alembic import command
from alembic.config import Config
from sqlalchemy import and_, any_, bindparam, delete, event, exists, func, insert, or_, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from gateway.audit.chain import ChainedEntry, ChainHead, extend
from gateway.audit.checkpoint import Checkpoint, VerifierKey
from gateway.audit.merkle import MerkleAccumulator, NodeKey
from gateway.audit.record import AuditRecord, review_kind, subject_ref
from gateway.audit.stored import StoredCheckpoint, StoredSigningKey
from gateway.auth.models import PartnerClient
from gateway.errors import DependencyUnavailable
from gateway.identity.crosswalk import MintedToken, seal, unseal
from gateway.policy.consent import ConsentRecord
from gateway.policy.registry import FINAL_LIFECYCLE_STATES
from gateway.statistics.counting import ActivityEvent
from gateway.store.models import MessageStatus, OutboxRow, Subject
from gateway.store.tables import (
    audit_checkpoints,
    audit_head,
    audit_log,
    audit_merkle_nodes,
    audit_signing_keys,
    client_assertion_ids,
    consent_change_head,
    consents,
    crosswalk_tokens,
    messages,
    outbox,
    review_items,
    statistics_activity,
    subject_identifiers,
    subjects,
)
from gateway.store.tables import clients as clients_table

__all__ = ["Store", "StoreTransaction"]

_MIGRATIONS = Path(__file__).parent / "migrations"
_PARSED_CONSENTS_MAX = 200_000
"""Consent versions kept parsed per process (a few hundred bytes each)."""


def _utc(value: datetime | None) -> datetime | None:
    """SQLite hands datetimes back naive; every datetime in the gateway is UTC-aware."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class Store:
    """Connection pool plus schema management for one database."""

    def __init__(self, engine: AsyncEngine, pseudonym_key: bytes) -> None:
        self.engine = engine
        self._pseudonym_key = pseudonym_key
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        """Clock of audit ``recorded_at`` times (replaceable in tests); see :meth:`StoreTransaction.append_audit`."""
        self.parsed_consents: OrderedDict[tuple[str, int, str], ConsentRecord] = OrderedDict()
        """Consent versions already parsed from their stored documents, by (id, version, record hash): versions
        are immutable, and a rewritten document changes its hash, so an entry never goes stale. Bounded LRU."""

    @classmethod
    def connect(cls, url: str, pseudonym_key: bytes) -> Store:
        """A store on ``url`` (``postgresql+asyncpg://`` or ``sqlite+aiosqlite:///``)."""
        # JSON columns (statuses' recipients, outbox headers, consent documents, the audit frontier) through
        # orjson: the standard library's encoder and decoder were 7 % of the gateway's CPU per referral.
        json_options: dict[str, Any] = {"json_serializer": _json_text, "json_deserializer": orjson.loads}
        if url.startswith("sqlite"):
            engine = create_async_engine(url, connect_args={"timeout": 30}, **json_options)
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
            event.listen(engine.sync_engine, "begin", _sqlite_begin)
        else:
            # No pre-ping: it cost a round trip per transaction. A connection broken since its last use fails
            # its first statement; SQLAlchemy then invalidates the pool and the caller's retry (every caller
            # retries DependencyUnavailable) gets a fresh connection.
            engine = create_async_engine(url, pool_size=10, max_overflow=10, **json_options)
        return cls(engine, pseudonym_key)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision."""
        async with self._guard(), self.engine.begin() as conn:
            await conn.run_sync(_upgrade)

    async def close(self) -> None:
        await self.engine.dispose()

    def lookup_hash(self, system: str, value: str) -> str:
        """Keyed hash under which a person's identifier is looked up; the identifier itself is not stored."""
        return hmac.new(self._pseudonym_key, f"{system}:{value}".encode(), hashlib.sha256).hexdigest()

    def activity_source_key(self, source: str, resource_type: str, resource_id: str) -> str:
        """Keyed hash that recognises a counted care record sent again (F6), under a key derived from the
        pseudonym key for this use only; the record's id itself is not stored."""
        key = hashlib.sha256(b"statistics-source/v1\x00" + self._pseudonym_key).digest()
        message = f"{source}\x00{resource_type}\x00{resource_id}".encode()
        return hmac.new(key, message, hashlib.sha256).hexdigest()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[StoreTransaction]:
        """One atomic unit of work."""
        async with self._guard(), self.engine.begin() as conn:
            yield StoreTransaction(conn, self)

    @asynccontextmanager
    async def _guard(self) -> AsyncIterator[None]:
        try:
            yield
        except IntegrityError:
            raise
        except (OperationalError, DBAPIError, OSError, ConnectionError, TimeoutError) as exc:
            raise DependencyUnavailable(f"the store is unavailable ({type(exc).__name__}); retry later") from exc


class _ConcurrentSighting(Exception):
    """Another transaction wrote one of the identifiers a batch was about to write (rolls back a savepoint)."""


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode("utf-8")


_CORRECTABLE_ACTIVITY = ("month", "quartiere", "outcome", "weight", "vaccine_group")
"""What a care record sent again may change in the row it counted before."""


def _activity_row(e: ActivityEvent, source_key: str | None) -> dict[str, Any]:
    return {"month": e.month, "kind": e.kind, "source": e.source, "quartiere": e.quartiere, "flow_id": e.flow_id,
            "recipient": e.recipient, "outcome": e.outcome, "weight": e.weight, "source_key": source_key,
            "vaccine_group": e.vaccine_group}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The sqlite3 driver's own transaction handling breaks SAVEPOINTs and begins lazily; take over
    # (SQLAlchemy's documented recipe) so that transactions and nested savepoints behave as on PostgreSQL.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    # IMMEDIATE takes the write lock up front: writers queue on busy_timeout instead of failing when a
    # read lock cannot be upgraded, and the audit head read-then-write is serialised.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _upgrade(connection: Any) -> None:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


class StoreTransaction:
    """Reads and writes inside one transaction."""

    def __init__(self, conn: AsyncConnection, store: Store) -> None:
        self.conn = conn
        self._store = store
        self._known: dict[str, Subject | None] = {}
        """Subjects found by :meth:`prefetch_subjects`, by lookup hash (None: no one has that identifier yet)."""
        self._deferred: tuple[dict[str, Subject], dict[str, str]] | None = None
        """Between :meth:`defer_new_subjects` and :meth:`write_new_subjects`: subjects created (by lookup hash)
        and identifiers linked (lookup hash -> pseudonym), not yet written."""

    def _among(self, column: Any, values: Iterable[Any]) -> Any:
        """``column`` is one of ``values``: on PostgreSQL one array parameter (``= ANY($1)``), so the statement
        is the same text for any number of values (compiled and prepared once) instead of an ``IN`` list that
        SQLAlchemy renders again, one parameter per value, for every batch; an ``IN`` list on SQLite."""
        if self._store.dialect == "postgresql":
            return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
        return column.in_(list(values))

    # --- subjects -------------------------------------------------------------------------------------------

    async def prefetch_subjects(self, identifiers: Iterable[tuple[str, str]]) -> None:
        """Look up the subjects of many (system, value) identifiers in one statement, so that the
        :meth:`subject` and :meth:`link_identifier` calls of a batch that follow need no round trip for them."""
        lookups = {self._store.lookup_hash(system, value) for system, value in identifiers} - self._known.keys()
        if not lookups:
            return
        rows = await self.conn.execute(
            select(subject_identifiers.c.lookup_hash, subjects.c.pseudonym, subjects.c.subject_key)
            .join(subjects, subject_identifiers.c.pseudonym == subjects.c.pseudonym)
            .where(self._among(subject_identifiers.c.lookup_hash, sorted(lookups)))
        )
        self._known.update(dict.fromkeys(lookups))
        for r in rows:
            self._known[r.lookup_hash] = Subject(r.pseudonym, r.subject_key)

    def defer_new_subjects(self) -> None:
        """Keep the subjects :meth:`subject` creates and the identifiers :meth:`link_identifier` links in memory
        until :meth:`write_new_subjects`, which writes them all in two statements: a batch of people seen for the
        first time (a backfill, a new partner) then costs two round trips, not three or four per person. Nothing
        may refer to a new subject in the store before they are written."""
        self._deferred = ({}, {})

    async def write_new_subjects(self) -> bool:
        """Write what was deferred since :meth:`defer_new_subjects`, in a savepoint. False, with nothing written
        and the deferred subjects forgotten, when another transaction created or linked one of those identifiers
        meanwhile: the caller then identifies its people again without deferring (:meth:`subject` reads the
        store again for them)."""
        if self._deferred is None:
            return True
        created, links = self._deferred
        self._deferred = None
        if not links:
            return True
        now = datetime.now(UTC)
        dialect_insert = postgresql_insert if self._store.dialect == "postgresql" else sqlite_insert
        try:
            async with self.conn.begin_nested():
                if created:
                    written = await self.conn.execute(
                        dialect_insert(subjects).on_conflict_do_nothing().returning(subjects.c.pseudonym),
                        [{"pseudonym": s.pseudonym, "lookup_hash": lookup, "subject_key": s.subject_key,
                          "created_at": now} for lookup, s in created.items()])
                    if len(written.all()) != len(created):
                        raise _ConcurrentSighting
                linked = await self.conn.execute(
                    dialect_insert(subject_identifiers).on_conflict_do_nothing()
                    .returning(subject_identifiers.c.lookup_hash),
                    [{"lookup_hash": lookup, "pseudonym": pseudonym, "created_at": now}
                     for lookup, pseudonym in links.items()])
                if len(linked.all()) != len(links):
                    raise _ConcurrentSighting
        except _ConcurrentSighting:
            for lookup in links:
                self._known.pop(lookup, None)
            return False
        return True

    async def subject(self, system: str, value: str, *, create: bool) -> Subject | None:
        """The subject with this identifier (any identifier linked to them); created with a fresh pseudonym
        and key if ``create``."""
        lookup = self._store.lookup_hash(system, value)
        known = self._known.get(lookup)
        if known is not None:
            return known
        if lookup in self._known and not create:
            return None
        row = (
            await self.conn.execute(
                select(subjects.c.pseudonym, subjects.c.subject_key)
                .join(subject_identifiers, subject_identifiers.c.pseudonym == subjects.c.pseudonym)
                .where(subject_identifiers.c.lookup_hash == lookup)
            )
        ).first()
        if row is not None:
            return Subject(row.pseudonym, row.subject_key)
        if not create:
            return None
        subject = Subject("sbj_" + secrets.token_urlsafe(16), secrets.token_bytes(32))
        if self._deferred is not None:
            self._deferred[0][lookup] = subject
            self._deferred[1][lookup] = subject.pseudonym
            self._known[lookup] = subject
            return subject
        now = datetime.now(UTC)
        try:
            async with self.conn.begin_nested():
                await self.conn.execute(
                    insert(subjects).values(
                        pseudonym=subject.pseudonym, lookup_hash=lookup, subject_key=subject.subject_key,
                        created_at=now,
                    )
                )
                await self.conn.execute(
                    insert(subject_identifiers).values(lookup_hash=lookup, pseudonym=subject.pseudonym, created_at=now)
                )
        except IntegrityError:  # created concurrently by another worker: use theirs
            self._known.pop(lookup, None)
            return await self.subject(system, value, create=False)
        self._known[lookup] = subject
        return subject

    async def link_identifier(self, subject: Subject, system: str, value: str) -> bool:
        """Make ``subject`` findable through one more of their identifiers (rule 4: a subject matches through
        any identifier). False, and nothing changes, if the identifier already leads to someone else: two
        records are never merged on the gateway's own initiative."""
        lookup = self._store.lookup_hash(system, value)
        known = self._known.get(lookup)
        if known is not None:
            return known.pseudonym == subject.pseudonym
        holder = None if lookup in self._known else (
            await self.conn.execute(
                select(subject_identifiers.c.pseudonym).where(subject_identifiers.c.lookup_hash == lookup)
            )
        ).scalar()
        if holder is not None:
            return bool(holder == subject.pseudonym)
        if self._deferred is not None:
            self._deferred[1][lookup] = subject.pseudonym
            self._known[lookup] = subject
            return True
        try:
            async with self.conn.begin_nested():
                await self.conn.execute(insert(subject_identifiers).values(
                    lookup_hash=lookup, pseudonym=subject.pseudonym, created_at=datetime.now(UTC)))
        except IntegrityError:  # linked concurrently
            self._known.pop(lookup, None)
            return False
        self._known[lookup] = subject
        return True

    async def subject_by_pseudonym(self, pseudonym: str) -> Subject | None:
        row = (
            await self.conn.execute(
                select(subjects.c.pseudonym, subjects.c.subject_key).where(subjects.c.pseudonym == pseudonym)
            )
        ).first()
        return None if row is None else Subject(row.pseudonym, row.subject_key)

    # --- crosswalk tokens (migration 0006) -------------------------------------------------------------------

    async def record_tokens(self, minted: Sequence[MintedToken]) -> None:
        """Record tokens minted for recipients, in one statement; a token recorded before is left as it is.
        The identifier a token stands for is stored sealed (:func:`gateway.identity.crosswalk.seal`)."""
        if not minted:
            return
        now = datetime.now(UTC)
        key = self._store._pseudonym_key
        rows = {
            m.token: {
                "token": m.token, "recipient": m.recipient, "system": m.system,
                "subject_pseudonym": m.subject_pseudonym, "created_at": now,
                "sealed_value": None if m.value is None else seal(key, m.token, m.value),
            }
            for m in minted
        }
        dialect_insert = postgresql_insert if self._store.dialect == "postgresql" else sqlite_insert
        await self.conn.execute(
            dialect_insert(crosswalk_tokens).on_conflict_do_nothing(index_elements=["token"]), list(rows.values())
        )

    async def subject_of_token(self, token: str, quoted_by: str) -> Subject | None:
        """The subject a token stands for, when ``quoted_by`` is the partner it was minted for; else None."""
        row = (
            await self.conn.execute(
                select(subjects.c.pseudonym, subjects.c.subject_key)
                .join(crosswalk_tokens, crosswalk_tokens.c.subject_pseudonym == subjects.c.pseudonym)
                .where(crosswalk_tokens.c.token == token, crosswalk_tokens.c.recipient == quoted_by)
            )
        ).first()
        return None if row is None else Subject(row.pseudonym, row.subject_key)

    async def token_identifier(self, token: str, quoted_by: str) -> tuple[str, str] | None:
        """(system, value) of the identifier a token stands for, when ``quoted_by`` is the partner it was
        minted for and it stands for an identifier (not for the person as a whole); else None."""
        row = (
            await self.conn.execute(
                select(crosswalk_tokens.c.system, crosswalk_tokens.c.sealed_value)
                .where(crosswalk_tokens.c.token == token, crosswalk_tokens.c.recipient == quoted_by)
            )
        ).first()
        if row is None or row.sealed_value is None:
            return None
        value = unseal(self._store._pseudonym_key, token, bytes(row.sealed_value))
        return None if value is None else (str(row.system), value)

    # --- consents -------------------------------------------------------------------------------------------

    async def add_consent(self, record: ConsentRecord, recorded_by: str) -> None:
        """Store one consent version, numbered in commit order (migration 0016): the head row stays locked
        until this transaction ends, so no one sees a later number before this one has committed."""
        change_seq = (await self.conn.execute(
            update(consent_change_head).where(consent_change_head.c.id == 1)
            .values(seq=consent_change_head.c.seq + 1).returning(consent_change_head.c.seq)
        )).scalar_one()
        await self.conn.execute(
            insert(consents).values(change_seq=change_seq,
                consent_id=record.consent_id, version=record.version, subject_pseudonym=record.subject_pseudonym,
                status=record.status, decision=record.decision, purposes=sorted(record.purposes),
                recipients=sorted(record.recipients), period_start=record.period_start,
                period_end=record.period_end, withdrawn=record.withdrawn,
                recorded_at=record.recorded_at or datetime.now(UTC), recorded_by=recorded_by,
                consent_type=record.consent_type, document=record.document(), record_hash=record.record_hash,
            )
        )

    async def consents_for(self, pseudonym: str) -> list[ConsentRecord]:
        """Every version of every consent of a subject, each parsed from its stored document as it is now (for
        privacy officers, who compare it with the audit log; decisions use :meth:`consents_for_many`)."""
        rows = await self.conn.execute(select(consents).where(consents.c.subject_pseudonym == pseudonym))
        return [_consent(r._mapping) for r in rows]

    async def consents_for_many(self, pseudonyms: Collection[str]) -> dict[str, list[ConsentRecord]]:
        """Every version of every consent of each subject, for a whole batch in one or two statements (the
        intake's decisions; versions already parsed come from :attr:`Store.parsed_consents`)."""
        found: dict[str, list[ConsentRecord]] = {p: [] for p in pseudonyms}
        if found:
            for record in await self._consents_where(self._among(consents.c.subject_pseudonym, sorted(found))):
                found[record.subject_pseudonym].append(record)
        return found

    async def latest_consent_versions(self, consent_ids: Collection[str]) -> dict[str, ConsentRecord]:
        """The latest version of each consent lineage, in one or two statements (the relay's re-check)."""
        if not consent_ids:
            return {}
        latest = (select(consents.c.consent_id, func.max(consents.c.version).label("version"))
                  .where(self._among(consents.c.consent_id, sorted(consent_ids))).group_by(consents.c.consent_id)
                  .subquery())
        records = await self._consents_where(
            tuple_(consents.c.consent_id, consents.c.version).in_(select(latest.c.consent_id, latest.c.version)))
        return {r.consent_id: r for r in records}

    async def _consents_where(self, condition: Any) -> list[ConsentRecord]:
        """Consent versions matching ``condition``: their keys first, then the stored documents of those not
        parsed before (:attr:`Store.parsed_consents`), so a decision rarely re-reads or re-parses a document.
        A document rewritten in place under the same hash is not seen until the process restarts: that is
        tampering, which the privacy officers' consent history (read uncached) shows against the audit log."""
        cache = self._store.parsed_consents
        keys = (await self.conn.execute(
            select(consents.c.consent_id, consents.c.version, consents.c.record_hash).where(condition)
        )).all()
        found: dict[tuple[str, int], ConsentRecord] = {}
        for r in keys:
            cached = None if r.record_hash is None else cache.get((r.consent_id, r.version, r.record_hash))
            if cached is not None:
                cache.move_to_end((r.consent_id, r.version, r.record_hash))
                found[(r.consent_id, r.version)] = cached
        missing = [(r.consent_id, r.version) for r in keys if (r.consent_id, r.version) not in found]
        if missing:
            rows = await self.conn.execute(
                select(consents).where(tuple_(consents.c.consent_id, consents.c.version).in_(missing)))
            for row in rows:
                m = row._mapping
                record = found[(m["consent_id"], m["version"])] = _consent(m)
                if m["record_hash"] is not None:
                    cache[(m["consent_id"], m["version"], m["record_hash"])] = record
                    while len(cache) > _PARSED_CONSENTS_MAX:
                        cache.popitem(last=False)
        return [found[(r.consent_id, r.version)] for r in keys]

    async def consent_change_head(self) -> int:
        """The number of the latest committed consent version (0 before any): every version numbered up to it
        has committed (see :meth:`add_consent`)."""
        return int((await self.conn.execute(
            select(consent_change_head.c.seq).where(consent_change_head.c.id == 1))).scalar_one())

    async def subjects_with_consent_changes(self, after: int) -> set[str]:
        """Pseudonyms of the subjects with a consent version numbered above ``after``."""
        rows = await self.conn.execute(
            select(consents.c.subject_pseudonym).where(consents.c.change_seq > after).distinct())
        return {r.subject_pseudonym for r in rows}

    async def latest_consents(self, chunk: int = 5_000) -> AsyncIterator[list[ConsentRecord]]:
        """The latest version of every consent lineage, streamed in chunks through a server-side cursor (a
        process's consent index loading at start)."""
        newer = consents.alias("newer")
        query = select(consents).where(~exists().where(
            newer.c.consent_id == consents.c.consent_id, newer.c.version > consents.c.version))
        result = await self.conn.stream(query.execution_options(yield_per=chunk))
        async for rows in result.partitions():
            yield [_consent(r._mapping) for r in rows]

    async def consent_versions(self, consent_id: str) -> list[ConsentRecord]:
        """Every version of one consent, oldest first, parsed from the stored documents as they are now."""
        rows = await self.conn.execute(
            select(consents).where(consents.c.consent_id == consent_id).order_by(consents.c.version)
        )
        return [_consent(r._mapping) for r in rows]

    async def consent_recorded_by(self, consent_id: str) -> str | None:
        row = (
            await self.conn.execute(
                select(consents.c.recorded_by).where(consents.c.consent_id == consent_id).limit(1)
            )
        ).first()
        return None if row is None else str(row.recorded_by)

    # --- messages (status) ----------------------------------------------------------------------------------

    async def message(self, sender: str, message_id: str) -> MessageStatus | None:
        row = (
            await self.conn.execute(
                select(messages).where(messages.c.sender == sender, messages.c.message_id == message_id)
            )
        ).first()
        return None if row is None else _status(row._mapping)

    async def messages_by_correlation(self, sender: str, correlation_id: str) -> list[MessageStatus]:
        rows = await self.conn.execute(
            select(messages)
            .where(messages.c.sender == sender, messages.c.correlation_id == correlation_id)
            .order_by(messages.c.received_at)
        )
        return [_status(r._mapping) for r in rows]

    async def claim_messages(self, statuses: Sequence[MessageStatus]) -> set[tuple[str, str]]:
        """Insert the statuses of a batch in one statement; returns the (sender, message id) of those that
        were new. The others were seen before (replays), or appear twice in ``statuses`` (the first counts)."""
        if not statuses:
            return set()
        values: dict[tuple[str, str], dict[str, Any]] = {}
        for s in statuses:
            values.setdefault((s.sender, s.message_id), {
                "sender": s.sender, "message_id": s.message_id, "correlation_id": s.correlation_id,
                "message_type": s.message_type, "state": s.state, "reason_class": s.reason_class,
                "recipients": list(s.recipients), "received_at": s.received_at, "request_id": s.request_id,
            })
        dialect_insert = postgresql_insert if self._store.dialect == "postgresql" else sqlite_insert
        # Parameters as a list (SQLAlchemy's "insertmanyvalues"): one statement compiled once, not a VALUES
        # clause compiled anew for every batch size.
        statement = (dialect_insert(messages)
                     .on_conflict_do_nothing(index_elements=["sender", "message_id"])
                     .returning(messages.c.sender, messages.c.message_id))
        return {(r.sender, r.message_id) for r in await self.conn.execute(statement, list(values.values()))}

    async def messages_many(self, keys: Collection[tuple[str, str]]) -> dict[tuple[str, str], MessageStatus]:
        """The statuses of these (sender, message id), in one statement; unknown ones are absent."""
        if not keys:
            return {}
        rows = await self.conn.execute(
            select(messages).where(tuple_(messages.c.sender, messages.c.message_id).in_(sorted(keys))))
        return {(r.sender, r.message_id): _status(r._mapping) for r in rows}

    async def update_messages(self, statuses: Sequence[MessageStatus]) -> None:
        """Record the outcome (state, reason class, recipients) of many messages in one round trip."""
        if not statuses:
            return
        await self.conn.execute(
            update(messages)
            .where(messages.c.sender == bindparam("b_sender"), messages.c.message_id == bindparam("b_message_id"))
            .values(state=bindparam("b_state"), reason_class=bindparam("b_reason"),
                    recipients=bindparam("b_recipients")),
            [{"b_sender": s.sender, "b_message_id": s.message_id, "b_state": s.state, "b_reason": s.reason_class,
              "b_recipients": list(s.recipients)} for s in statuses],
        )

    async def advance_lifecycle(self, sender: str, correlation_id: str, state: str, at: datetime, *,
                                reported_by: str, message_types: Collection[str]) -> list[MessageStatus]:
        """Record the state ``reported_by`` reported on the referrals ``sender`` sent it under ``correlation_id``:
        the messages of ``message_types`` forwarded to ``reported_by``; returns the statuses that moved.
        One correlation id may follow a household across services, so a message denied, or forwarded only to
        another partner or under another purpose, does not move. ``completed`` and ``rejected`` are final, and
        a state already recorded is not recorded again."""
        current = await self.messages_by_correlation(sender, correlation_id)
        movable = [m.message_id for m in current
                   if m.state == "forwarded" and reported_by in m.recipients and m.message_type in message_types
                   and m.lifecycle not in (*FINAL_LIFECYCLE_STATES, state)]
        if not movable:
            return []
        await self.conn.execute(
            update(messages)
            .where(messages.c.sender == sender, messages.c.message_id.in_(movable))
            .values(lifecycle=state, lifecycle_at=at)
        )
        return [m for m in await self.messages_by_correlation(sender, correlation_id) if m.message_id in movable]

    # --- audit ----------------------------------------------------------------------------------------------

    async def append_audit(self, records: Sequence[AuditRecord]) -> list[ChainedEntry]:
        """Append records to the audit log, serialised on the head row so indexes never gap or repeat.

        ``recorded_at`` is the store's clock, but never earlier than the previous record's (read under the
        same lock): the log's times are monotonic by construction even if the wall clock steps back (T-13).
        The hashes of the Merkle subtrees the records complete are written too, in one more statement (proofs
        read them instead of every leaf hash; see :meth:`audit_tree_nodes`), and a review item for every
        record a privacy officer must review (:func:`gateway.audit.record.review_kind`).
        """
        if not records:
            return []
        head = await self._locked_head()
        head.tree.track_completed()
        now = self._store.clock()
        if head.size:
            previous = _utc((await self.conn.execute(
                select(audit_log.c.recorded_at).where(audit_log.c.idx == head.size - 1))).scalar_one_or_none())
            if previous is not None and previous > now:
                now = previous
        entries = extend(head, records, now)
        columns = ("idx", "record_id", "event_type", "record", "leaf_hash", "chain_hash", "subject_ref", "recorded_at")
        values = [(e.index, r.record_id, r.event_type, e.canonical.decode("utf-8"), e.leaf_hash, e.chain_hash,
                   r.subject_ref, now) for e, r in zip(entries, records, strict=True)]
        if not await self._copy(audit_log.name, columns, values):
            await self.conn.execute(insert(audit_log), [dict(zip(columns, v, strict=True)) for v in values])
        to_review = [
            {"audit_index": e.index, "kind": kind, "flow_id": r.flow_id, "created_at": now}
            for e, r in zip(entries, records, strict=True) if (kind := review_kind(r)) is not None
        ]
        if to_review:
            await self.conn.execute(insert(review_items), to_review)
        await self.add_audit_nodes(head.tree.take_completed())
        await self.conn.execute(
            update(audit_head)
            .where(audit_head.c.id == 1)
            .values(size=head.size, chain_hash=head.chain_hash, frontier=[h.hex() for h in head.tree.frontier])
        )
        return entries

    async def _locked_head(self) -> ChainHead:
        query = select(audit_head).where(audit_head.c.id == 1).with_for_update()
        row = (await self.conn.execute(query)).first()
        if row is None:
            head = ChainHead.genesis()
            try:
                async with self.conn.begin_nested():
                    await self.conn.execute(
                        insert(audit_head).values(id=1, size=0, chain_hash=head.chain_hash, frontier=[])
                    )
            except IntegrityError:
                pass
            row = (await self.conn.execute(query)).one()
        tree = MerkleAccumulator.from_frontier(row.size, [bytes.fromhex(h) for h in row.frontier])
        return ChainHead(size=row.size, chain_hash=row.chain_hash, tree=tree)

    async def audit_head(self) -> ChainHead:
        row = (await self.conn.execute(select(audit_head).where(audit_head.c.id == 1))).first()
        if row is None:
            return ChainHead.genesis()
        tree = MerkleAccumulator.from_frontier(row.size, [bytes.fromhex(h) for h in row.frontier])
        return ChainHead(size=row.size, chain_hash=row.chain_hash, tree=tree)

    async def audit_entries(self, start: int = 0, limit: int = 10_000) -> list[dict[str, Any]]:
        rows = await self.conn.execute(
            select(audit_log).where(audit_log.c.idx >= start).order_by(audit_log.c.idx).limit(limit)
        )
        return [dict(r._mapping) for r in rows]

    async def audit_entries_before(self, before: int | None, limit: int,
                                   event_types: Collection[str] = ()) -> list[dict[str, Any]]:
        """Up to ``limit`` records newest first, all below index ``before`` (None: from the newest): keyset
        pagination on the primary key, as fast on the millionth page as on the first; ``event_types`` filters."""
        query = select(audit_log.c.idx, audit_log.c.event_type, audit_log.c.record, audit_log.c.recorded_at)
        if before is not None:
            query = query.where(audit_log.c.idx < before)
        if event_types:
            query = query.where(audit_log.c.event_type.in_(list(event_types)))
        rows = await self.conn.execute(query.order_by(audit_log.c.idx.desc()).limit(limit))
        return [dict(r._mapping) for r in rows]

    async def first_audit_index_recorded_since(self, since: datetime) -> int:
        """The index of the first record recorded at or after ``since`` (the log size if none): a binary search
        on the primary key, since ``recorded_at`` never goes backwards along the log (T-13)."""
        head = await self.audit_head()
        low, high = 0, head.size
        while low < high:
            middle = (low + high) // 2
            at = _utc((await self.conn.execute(
                select(audit_log.c.recorded_at).where(audit_log.c.idx == middle))).scalar_one_or_none())
            if at is not None and at >= since:
                high = middle
            else:
                low = middle + 1
        return low

    async def review_items(self, limit: int, *, reviewed: bool | None = False) -> list[dict[str, Any]]:
        """Review items newest first with their audit record text: open ones (``reviewed=False``), closed
        ones (True) or both (None)."""
        query = (
            select(review_items, audit_log.c.record)
            .join(audit_log, audit_log.c.idx == review_items.c.audit_index)
            .order_by(review_items.c.audit_index.desc())
            .limit(limit)
        )
        if reviewed is not None:
            done = review_items.c.reviewed_at.is_not(None)
            query = query.where(done if reviewed else review_items.c.reviewed_at.is_(None))
        return [dict(r._mapping) for r in await self.conn.execute(query)]

    async def close_review_item(self, audit_index: int, reviewed_by: str, resolution: str, at: datetime,
                                comment: str | None = None) -> bool:
        """Close an open review item (with the officer's comment, if any); False if there is none at that index
        or it was closed already."""
        result = await self.conn.execute(
            update(review_items)
            .where(review_items.c.audit_index == audit_index, review_items.c.reviewed_at.is_(None))
            .values(reviewed_at=at, reviewed_by=reviewed_by, resolution=resolution, comment=comment)
        )
        return bool(result.rowcount)

    async def review_item(self, audit_index: int) -> dict[str, Any] | None:
        """The review item of one audit record (None: that record needs no review)."""
        row = (await self.conn.execute(select(review_items).where(review_items.c.audit_index == audit_index))).first()
        return None if row is None else dict(row._mapping)

    async def audit_records_for(self, subject_key: bytes) -> list[dict[str, Any]]:
        rows = await self.conn.execute(
            select(audit_log.c.idx, audit_log.c.record)
            .where(audit_log.c.subject_ref == subject_ref(subject_key))
            .order_by(audit_log.c.idx)
        )
        return [dict(r._mapping) for r in rows]

    # --- outbox ---------------------------------------------------------------------------------------------

    async def enqueue(self, rows: Sequence[OutboxRow]) -> None:
        """Queue outgoing messages; they get ids in the order given (the relay publishes in id order)."""
        if not rows:
            return
        columns = ("topic", "recipient", "message_id", "msg_key", "value", "headers", "consent_id",
                   "consent_version", "subject_pseudonym", "created_at")
        values = [(r.topic, r.recipient, r.message_id, r.key, r.value, _json_text([list(h) for h in r.headers]),
                   r.consent_id, r.consent_version, r.subject_pseudonym, r.created_at) for r in rows]
        if not await self._copy(outbox.name, columns, values):
            await self.conn.execute(insert(outbox), [
                {**dict(zip(columns, v, strict=True)), "headers": [list(h) for h in r.headers]}
                for v, r in zip(values, rows, strict=True)
            ])

    async def _copy(self, table: str, columns: Sequence[str], values: list[tuple[Any, ...]]) -> bool:
        """Write rows with PostgreSQL's COPY through the driver, inside this transaction: for a batch's audit
        records and outgoing messages it costs a fraction of an INSERT built and bound by SQLAlchemy. False on
        SQLite, where the caller inserts through SQLAlchemy (JSON columns are passed as JSON text)."""
        if self._store.dialect != "postgresql":
            return False
        raw = await self.conn.get_raw_connection()
        adapted: Any = raw.dbapi_connection
        if getattr(adapted, "_transaction", None) is None:
            # The driver begins the transaction with the first statement: COPY must not run before it.
            await self.conn.exec_driver_sql("SELECT 1")
        try:
            await adapted.driver_connection.copy_records_to_table(table, columns=list(columns), records=values)
        except (asyncpg.InterfaceError, asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError,
                asyncpg.AdminShutdownError) as exc:
            raise DependencyUnavailable(f"the store is unavailable ({type(exc).__name__}); retry later") from exc
        return True

    async def pending_outbox(self, limit: int, queued_before: datetime | None = None) -> list[OutboxRow]:
        """Oldest unpublished rows, locked so that concurrent relays (PostgreSQL) skip each other's rows;
        with ``queued_before``, only rows queued before then (older than their worker's own delivery)."""
        query = (
            select(outbox)
            .where(outbox.c.published_at.is_(None), outbox.c.dropped_reason.is_(None),
                   *(() if queued_before is None else (outbox.c.created_at < queued_before,)))
            .order_by(outbox.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [_outbox(r._mapping) for r in await self.conn.execute(query)]

    async def claim_undelivered(self, rows: Sequence[OutboxRow]) -> list[OutboxRow]:
        """``rows`` (as queued, without ids) that are still undelivered, with their ids, in id order, locked
        like :meth:`pending_outbox` locks its rows: one a relay or a withdrawal holds now is skipped (its holder
        sees it through), and one delivered or dropped meanwhile is not returned. The worker that queued them
        delivers them this way straight after its commit."""
        if not rows:
            return []
        found = await self.conn.execute(
            select(outbox.c.id, outbox.c.topic, outbox.c.message_id)
            .where(self._among(outbox.c.topic, sorted({r.topic for r in rows})),
                   self._among(outbox.c.message_id, [r.message_id for r in rows]),
                   outbox.c.published_at.is_(None), outbox.c.dropped_reason.is_(None))
            .order_by(outbox.c.id)
            .with_for_update(skip_locked=True)
        )
        queued = {(r.topic, r.message_id): r for r in rows}
        return [replace(row, id=row_id) for row_id, topic, message_id in found
                if (row := queued.get((topic, message_id))) is not None]

    async def outbox_backlog(self) -> tuple[int, datetime | None]:
        """How many outbox rows wait to be delivered, and when the oldest of them was queued (for metrics)."""
        waiting = outbox.c.published_at.is_(None) & outbox.c.dropped_reason.is_(None)
        count = (await self.conn.execute(select(func.count()).select_from(outbox).where(waiting))).scalar_one()
        oldest = (await self.conn.execute(
            select(outbox.c.created_at).where(waiting).order_by(outbox.c.id).limit(1))).scalar_one_or_none()
        return int(count), _utc(oldest)

    async def consent_count(self) -> int:
        """Consent records stored, every version counted (the size of the consent index, for metrics)."""
        return int((await self.conn.execute(select(func.count()).select_from(consents))).scalar_one())

    async def hold_pending_under(self, consent_id: str) -> int:
        """Lock the rows still queued under any version of a consent, waiting for a relay that holds them.

        A withdrawal calls this before writing its version. A relay that already claimed such a row publishes
        and commits first (the delivery came before the withdrawal, and is then among
        :meth:`disclosures_under`); any other row stays locked, so relays skip it until the withdrawal has
        committed and then drop it at delivery (rule 9). SQLite transactions are serial: there is nothing to
        wait for. Returns how many rows are held."""
        rows = await self.conn.execute(
            select(outbox.c.id)
            .where(outbox.c.consent_id == consent_id, outbox.c.published_at.is_(None),
                   outbox.c.dropped_reason.is_(None))
            .order_by(outbox.c.id)
            .with_for_update()
        )
        return len(rows.all())

    async def disclosures_under(self, consent_id: str) -> list[tuple[str, str]]:
        """(recipient, message id) of every outgoing message published under any version of a consent; rows
        still queued are not disclosures (a withdrawal has them dropped at delivery)."""
        rows = await self.conn.execute(
            select(outbox.c.recipient, outbox.c.message_id)
            .where(outbox.c.consent_id == consent_id, outbox.c.published_at.is_not(None))
            .order_by(outbox.c.id)
        )
        return [(r.recipient, r.message_id) for r in rows]

    async def outbox_message(self, recipient: str, message_id: str) -> OutboxRow | None:
        row = (
            await self.conn.execute(
                select(outbox).where(outbox.c.recipient == recipient, outbox.c.message_id == message_id)
            )
        ).first()
        return None if row is None else _outbox(row._mapping)

    async def subject_of_disclosure(self, message_id: str) -> Subject | None:
        """The subject of an outgoing message the gateway minted (a recipient quoting it back)."""
        row = (
            await self.conn.execute(
                select(subjects.c.pseudonym, subjects.c.subject_key)
                .join(outbox, outbox.c.subject_pseudonym == subjects.c.pseudonym)
                .where(outbox.c.message_id == message_id)
                .limit(1)
            )
        ).first()
        return None if row is None else Subject(row.pseudonym, row.subject_key)

    async def mark_published(self, ids: Sequence[int], at: datetime) -> None:
        if ids:
            await self.conn.execute(update(outbox).where(self._among(outbox.c.id, ids)).values(published_at=at))

    async def mark_dropped(self, row_id: int, reason: str) -> None:
        await self.conn.execute(update(outbox).where(outbox.c.id == row_id).values(dropped_reason=reason))

    async def inbox(self, recipient: str, after_id: int, limit: int) -> list[OutboxRow]:
        """Published messages for ``recipient`` after ``after_id`` (status messages and referrals alike)."""
        rows = await self.conn.execute(
            select(outbox)
            .where(outbox.c.recipient == recipient, outbox.c.id > after_id, outbox.c.published_at.is_not(None),
                   func.length(outbox.c.value) > 0)  # a payload purged at retention or erasure is gone
            .order_by(outbox.c.id)
            .limit(limit)
        )
        return [_outbox(r._mapping) for r in rows]

    # --- statistics activity (F6, F13) ----------------------------------------------------------------------

    async def record_activity(self, events: Sequence[ActivityEvent]) -> None:
        """Store counted events (the intake calls it once per batch). An event naming its source record (F6
        care) replaces the row of an earlier event for the same record — month, quartiere, outcome, weight and
        vaccine group — or, when it is a retraction, removes it; within the batch the last event for a record
        wins. Events without a record (F13 decisions) are always added."""
        latest: dict[tuple[str, str], ActivityEvent] = {}
        rows: list[dict[str, Any]] = []
        for e in events:
            if e.record is None:
                if not e.retracted:
                    rows.append(_activity_row(e, None))
                continue
            key = (e.kind, self._store.activity_source_key(e.source, *e.record))
            latest.pop(key, None)  # re-inserted so that rows keep the batch's order
            latest[key] = e
        rows += [_activity_row(e, source_key) for (_, source_key), e in latest.items() if not e.retracted]
        withdrawn = [(kind, source_key) for (kind, source_key), e in latest.items() if e.retracted]
        activity = statistics_activity.c
        if withdrawn:
            await self.conn.execute(delete(statistics_activity).where(or_(
                *(and_(activity.kind == kind, activity.source_key == source_key) for kind, source_key in withdrawn)
            )))
        if rows:
            dialect_insert = postgresql_insert if self._store.dialect == "postgresql" else sqlite_insert
            statement = dialect_insert(statistics_activity)
            await self.conn.execute(statement.on_conflict_do_update(
                index_elements=["kind", "source_key"],
                set_={name: statement.excluded[name] for name in _CORRECTABLE_ACTIVITY},
            ), rows)

    async def activity(self, month: str, kinds: Sequence[str]) -> list[ActivityEvent]:
        """The counted events of ``month`` of these kinds."""
        rows = await self.conn.execute(
            select(statistics_activity)
            .where(statistics_activity.c.month == month, statistics_activity.c.kind.in_(list(kinds)))
        )
        return [
            ActivityEvent(month=m["month"], kind=m["kind"], source=m["source"], quartiere=m["quartiere"],
                          flow_id=m["flow_id"], recipient=m["recipient"], outcome=m["outcome"], weight=m["weight"],
                          vaccine_group=m["vaccine_group"])
            for m in (r._mapping for r in rows)
        ]

    # --- audit checkpoints and proofs -----------------------------------------------------------------------
    # Signed checkpoints, the public halves of their signing keys, what proofs are computed from, and erasure
    # by crypto-shredding. Private signing keys never reach the database (gateway.audit.keys).

    async def locked_audit_head(self) -> ChainHead:
        """The audit head, locked until the transaction ends: appends wait, so a checkpoint signs a settled log."""
        return await self._locked_head()

    async def add_audit_checkpoint(self, checkpoint: Checkpoint, note: str, signed_at: datetime,
                                   signer: VerifierKey) -> StoredCheckpoint:
        """Store a signed checkpoint; ``signer`` is the key that signed first and must be registered."""
        values = {
            "tree_size": checkpoint.tree_size, "root_hash": checkpoint.root_hash, "note": note,
            "signed_at": signed_at, "key_name": signer.name, "key_id": signer.key_id.hex(),
        }
        result = await self.conn.execute(insert(audit_checkpoints).values(**values))
        assert result.inserted_primary_key is not None
        return StoredCheckpoint(
            id=int(result.inserted_primary_key[0]), tree_size=checkpoint.tree_size, root_hash=checkpoint.root_hash,
            note=note, signed_at=signed_at, key_name=signer.name, key_id=signer.key_id.hex(),
        )

    async def latest_audit_checkpoint(self) -> StoredCheckpoint | None:
        """The most recently signed checkpoint, or None before the first."""
        row = (
            await self.conn.execute(select(audit_checkpoints).order_by(audit_checkpoints.c.id.desc()).limit(1))
        ).first()
        return None if row is None else self._stored_checkpoint(row._mapping)

    async def audit_checkpoint_at(self, tree_size: int) -> StoredCheckpoint | None:
        """The most recent checkpoint signed at exactly ``tree_size`` records, if any."""
        row = (
            await self.conn.execute(
                select(audit_checkpoints)
                .where(audit_checkpoints.c.tree_size == tree_size)
                .order_by(audit_checkpoints.c.id.desc())
                .limit(1)
            )
        ).first()
        return None if row is None else self._stored_checkpoint(row._mapping)

    async def audit_checkpoints(self, after_id: int = 0, limit: int | None = None) -> list[StoredCheckpoint]:
        """Checkpoints in signing order, after ``after_id``."""
        query = select(audit_checkpoints).where(audit_checkpoints.c.id > after_id).order_by(audit_checkpoints.c.id)
        if limit is not None:
            query = query.limit(limit)
        return [self._stored_checkpoint(r._mapping) for r in await self.conn.execute(query)]

    async def add_audit_signing_key(self, key: VerifierKey, created_at: datetime) -> bool:
        """Register the public half of a signing key; False if it was registered already."""
        try:
            async with self.conn.begin_nested():
                await self.conn.execute(
                    insert(audit_signing_keys).values(
                        key_name=key.name, key_id=key.key_id.hex(), public_key=key.public_key, created_at=created_at,
                    )
                )
        except IntegrityError:
            return False
        return True

    async def retire_audit_signing_keys(self, keys: Sequence[VerifierKey], at: datetime) -> None:
        """Mark ``keys`` as no longer signing from ``at`` on; they keep verifying older checkpoints.

        Takes the audit head lock first, so no checkpoint is being signed with them while they are retired, and
        never dates the retirement before the latest checkpoint (clocks of two machines may differ).
        """
        await self._locked_head()
        latest = await self.latest_audit_checkpoint()
        if latest is not None and latest.signed_at > at:
            at = latest.signed_at
        for key in keys:
            await self.conn.execute(
                update(audit_signing_keys)
                .where(
                    audit_signing_keys.c.key_name == key.name,
                    audit_signing_keys.c.key_id == key.key_id.hex(),
                    audit_signing_keys.c.retired_at.is_(None),
                )
                .values(retired_at=at)
            )

    async def audit_signing_keys(self) -> list[StoredSigningKey]:
        """Every registered signing key, oldest first, retired ones included."""
        rows = await self.conn.execute(
            select(audit_signing_keys).order_by(
                audit_signing_keys.c.created_at, audit_signing_keys.c.key_name, audit_signing_keys.c.key_id
            )
        )
        return [
            StoredSigningKey(
                key_name=m["key_name"], key_id=m["key_id"], public_key=bytes(m["public_key"]),
                created_at=_utc(m["created_at"]) or datetime.now(UTC), retired_at=_utc(m["retired_at"]),
            )
            for m in (r._mapping for r in rows)
        ]

    async def audit_leaf_hashes(self, tree_size: int, start: int = 0) -> list[bytes]:
        """Stored leaf hashes of records ``start .. tree_size - 1`` in index order, in one query."""
        rows = await self.conn.execute(
            select(audit_log.c.leaf_hash)
            .where(audit_log.c.idx >= start, audit_log.c.idx < tree_size)
            .order_by(audit_log.c.idx)
        )
        return [bytes(h) for h in rows.scalars()]

    async def audit_tree_nodes(self, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
        """The stored hashes of these Merkle subtrees, in one query: level 0 from the records' leaf hashes,
        higher levels from ``audit_merkle_nodes``. Keys not stored (yet) are absent from the result."""
        # Plain SQL with one bind per key: the statement's text depends only on how many keys there are, so it
        # is compiled once per shape, and each (level, idx) term is a primary-key lookup on both engines.
        params: dict[str, int] = {}
        leaves: list[str] = []
        nodes: list[str] = []
        for n, (level, index) in enumerate(dict.fromkeys(keys)):
            params[f"i{n}"] = index
            if level == 0:
                leaves.append(f":i{n}")
            else:
                params[f"l{n}"] = level
                nodes.append(f"(level = :l{n} AND idx = :i{n})")
        parts = []  # only bind names are interpolated below, never a value
        if leaves:
            parts.append(f"SELECT 0 AS level, idx, leaf_hash AS hash FROM audit_log "  # noqa: S608
                         f"WHERE idx IN ({', '.join(leaves)})")
        if nodes:
            parts.append(f"SELECT level, idx, hash FROM audit_merkle_nodes WHERE {' OR '.join(nodes)}")  # noqa: S608
        if not parts:
            return {}
        rows = await self.conn.execute(text(" UNION ALL ".join(parts)), params)
        return {(int(r.level), int(r.idx)): bytes(r.hash) for r in rows}

    async def add_audit_nodes(self, nodes: Sequence[tuple[NodeKey, bytes]]) -> None:
        """Store hashes of complete Merkle subtrees (level >= 1) in one statement. A subtree stored before
        keeps its hash: nodes are never rewritten, so a wrong one stays for ``gateway audit verify`` to name."""
        if not nodes:
            return
        dialect_insert = postgresql_insert if self._store.dialect == "postgresql" else sqlite_insert
        await self.conn.execute(
            dialect_insert(audit_merkle_nodes).on_conflict_do_nothing(index_elements=["level", "idx"]),
            [{"level": level, "idx": index, "hash": value} for (level, index), value in nodes],
        )

    async def audit_nodes_completed_within(self, start: int, end: int) -> dict[NodeKey, bytes]:
        """Stored subtree hashes completed by records ``start .. end - 1`` (those whose last record is there)."""
        if end <= start:
            return {}
        nodes = audit_merkle_nodes.c
        ranges = [and_(nodes.level == level, nodes.idx >= start >> level, nodes.idx < end >> level)
                  for level in range(1, end.bit_length()) if end >> level > start >> level]
        if not ranges:
            return {}
        rows = await self.conn.execute(select(nodes.level, nodes.idx, nodes.hash).where(or_(*ranges)))
        return {(int(r.level), int(r.idx)): bytes(r.hash) for r in rows}

    async def audit_entry(self, index: int) -> dict[str, Any] | None:
        """The stored audit entry at ``index`` (``idx``, ``record``, hashes, ``recorded_at``), if any."""
        row = (await self.conn.execute(select(audit_log).where(audit_log.c.idx == index))).first()
        return None if row is None else dict(row._mapping)

    async def erase_subject(self, pseudonym: str) -> bool:
        """Crypto-shred a subject; False if no subject has this pseudonym.

        Destroys the key that their audit references are derived from, so that no one can find their records
        any more, and replaces their lookup hash with a random value, so that their identifier no longer leads
        to them (a later message about the same person starts a new, unlinked pseudonym). The row stays, so
        that consents and outbox rows keep their foreign keys; the audit log is untouched and still verifies.
        """
        result = await self.conn.execute(
            update(subjects)
            .where(subjects.c.pseudonym == pseudonym)
            .values(subject_key=None, lookup_hash=secrets.token_hex(32))
        )
        await self.conn.execute(delete(subject_identifiers).where(subject_identifiers.c.pseudonym == pseudonym))
        # Tokens handed out for them lead nowhere any more either.
        await self.conn.execute(delete(crosswalk_tokens).where(crosswalk_tokens.c.subject_pseudonym == pseudonym))
        return bool(result.rowcount)

    async def purge_subject_payloads(self, pseudonym: str) -> tuple[int, int]:
        """For an erasure: empty every outgoing payload about the subject, and drop those not yet delivered.

        Returns (payloads emptied, undelivered rows dropped). The rows' ids, recipients and consent references
        stay, so that art. 19 notices can still reach past recipients; the payload (which may name the person)
        does not.
        """
        about = (outbox.c.subject_pseudonym == pseudonym, func.length(outbox.c.value) > 0)
        dropped = await self.conn.execute(
            update(outbox)
            .where(*about, outbox.c.published_at.is_(None), outbox.c.dropped_reason.is_(None))
            .values(dropped_reason="subject-erased")
        )
        emptied = await self.conn.execute(update(outbox).where(*about).values(value=b"", msg_key=None))
        return int(emptied.rowcount), int(dropped.rowcount)

    # --- retention (D-08) -------------------------------------------------------------------------------------

    async def expired_outbox_candidates(self, created_before: datetime, after_id: int,
                                        limit: int) -> list[tuple[int, str, tuple[tuple[str, str], ...], datetime]]:
        """(id, recipient, headers, created_at) of delivered or dropped rows after ``after_id`` created before
        ``created_before`` whose payload is still stored, in id order."""
        rows = await self.conn.execute(
            select(outbox.c.id, outbox.c.recipient, outbox.c.headers, outbox.c.created_at)
            .where(outbox.c.id > after_id, outbox.c.created_at < created_before, func.length(outbox.c.value) > 0,
                   (outbox.c.published_at.is_not(None)) | (outbox.c.dropped_reason.is_not(None)))
            .order_by(outbox.c.id)
            .limit(limit)
        )
        return [(int(r.id), str(r.recipient), tuple((str(k), str(v)) for k, v in r.headers),
                 _utc(r.created_at) or datetime.now(UTC)) for r in rows]

    async def purge_outbox_payloads(self, ids: Sequence[int]) -> int:
        """Empty the payload (and Kafka key) of these outbox rows; their ids and routing metadata stay."""
        if not ids:
            return 0
        result = await self.conn.execute(
            update(outbox).where(outbox.c.id.in_(list(ids)), func.length(outbox.c.value) > 0)
            .values(value=b"", msg_key=None)
        )
        return int(result.rowcount)

    async def message_kinds_received_before(self, received_before: datetime) -> list[tuple[str, str]]:
        """Distinct (sender, message type) of message statuses received before ``received_before``."""
        rows = await self.conn.execute(
            select(messages.c.sender, messages.c.message_type).where(messages.c.received_at < received_before)
            .distinct()
        )
        return sorted((str(r.sender), str(r.message_type)) for r in rows)

    async def delete_messages(self, sender: str, message_type: str, received_before: datetime) -> int:
        """Delete the statuses of ``sender``'s messages of this type received before ``received_before``."""
        result = await self.conn.execute(
            delete(messages).where(messages.c.sender == sender, messages.c.message_type == message_type,
                                   messages.c.received_at < received_before)
        )
        return int(result.rowcount)

    @staticmethod
    def _stored_checkpoint(m: Any) -> StoredCheckpoint:
        return StoredCheckpoint(
            id=int(m["id"]), tree_size=int(m["tree_size"]), root_hash=bytes(m["root_hash"]), note=m["note"],
            signed_at=_utc(m["signed_at"]) or datetime.now(UTC), key_name=m["key_name"], key_id=m["key_id"],
        )


    # --- partner clients (issue 10 point 13; table ``clients``, migration 0010) ---------------------------------

    async def registered_clients(self) -> list[tuple[PartnerClient, datetime | None]]:
        """Every stored client with when it was disabled (None: enabled), by client id."""
        rows = await self.conn.execute(select(clients_table).order_by(clients_table.c.client_id))
        return [(PartnerClient(client_id=m["client_id"], secret_hash=m["secret_hash"], organisation=m["organisation"],
                               role=m["role"], scopes=frozenset(m["scopes"].split()), public_jwks=m["public_jwks"]),
                 _utc(m["disabled_at"]))
                for m in (r._mapping for r in rows)]

    async def add_client(self, client: PartnerClient, at: datetime) -> bool:
        """Store a new client, enabled; False (and nothing changed) if its id is taken already."""
        try:
            async with self.conn.begin_nested():
                await self.conn.execute(insert(clients_table).values(
                    client_id=client.client_id, secret_hash=client.secret_hash, organisation=client.organisation,
                    role=client.role, scopes=" ".join(sorted(client.scopes)), created_at=at, updated_at=at,
                    public_jwks=client.public_jwks))
        except IntegrityError:
            return False
        return True

    async def set_client_secret(self, client_id: str, secret_hash: str, at: datetime) -> bool:
        """Replace the secret hash of a client that authenticates with a secret; False if there is no such client
        (a client registered with keys is left as it is: it never gets a secret besides them)."""
        result = await self.conn.execute(update(clients_table).where(clients_table.c.client_id == client_id,
                                                                     clients_table.c.public_jwks.is_(None))
                                         .values(secret_hash=secret_hash, updated_at=at))
        return bool(result.rowcount)

    async def set_client_keys(self, client_id: str, public_jwks: str, at: datetime) -> bool:
        """Register new public keys for a client (``private_key_jwt`` from now on: a secret it had is dropped);
        False if there is no such client. ``public_jwks`` from :func:`gateway.auth.client_keys.registered_key_set`."""
        result = await self.conn.execute(update(clients_table).where(clients_table.c.client_id == client_id)
                                         .values(public_jwks=public_jwks, secret_hash=None, updated_at=at))
        return bool(result.rowcount)

    async def claim_assertion_id(self, client_id: str, jti: str, keep_until: datetime, now: datetime) -> bool:
        """Record that ``client_id`` used the assertion id ``jti``, kept until ``keep_until``; False (and nothing
        changed) if it did already: a replay. Ids of assertions expired by ``now`` are purged first. The primary
        key decides between two processes claiming the same id at once: one of them gets False."""
        await self.conn.execute(delete(client_assertion_ids).where(client_assertion_ids.c.keep_until < now))
        try:
            async with self.conn.begin_nested():
                await self.conn.execute(insert(client_assertion_ids).values(
                    client_id=client_id, jti=jti, keep_until=keep_until))
        except IntegrityError:
            return False
        return True

    async def assertion_ids_kept(self) -> int:
        """How many assertion ids are kept (for tests and operators)."""
        return int((await self.conn.execute(select(func.count()).select_from(client_assertion_ids))).scalar_one())

    async def disable_client(self, client_id: str, at: datetime) -> bool:
        """Disable a client from ``at`` on (kept disabled if it was already); False if there is no such client."""
        result = await self.conn.execute(
            update(clients_table).where(clients_table.c.client_id == client_id)
            .values(disabled_at=func.coalesce(clients_table.c.disabled_at, at), updated_at=at))
        return bool(result.rowcount)

def _consent(m: Any) -> ConsentRecord:
    if m["document"] is not None:
        return ConsentRecord.from_document(m["document"])
    return ConsentRecord(
        consent_id=m["consent_id"], version=m["version"], subject_pseudonym=m["subject_pseudonym"],
        status=m["status"], decision=m["decision"], purposes=frozenset(m["purposes"]),
        recipients=frozenset(m["recipients"]), period_start=_utc(m["period_start"]),
        period_end=_utc(m["period_end"]), recorded_at=_utc(m["recorded_at"]), withdrawn=bool(m["withdrawn"]),
    )


def _status(m: Any) -> MessageStatus:
    return MessageStatus(
        sender=m["sender"], message_id=m["message_id"], correlation_id=m["correlation_id"],
        message_type=m["message_type"], state=m["state"], reason_class=m["reason_class"],
        recipients=tuple(m["recipients"]), received_at=_utc(m["received_at"]) or datetime.now(UTC),
        request_id=m["request_id"], lifecycle=m["lifecycle"], lifecycle_at=_utc(m["lifecycle_at"]),
    )


def _outbox(m: Any) -> OutboxRow:
    return OutboxRow(
        id=m["id"], topic=m["topic"], recipient=m["recipient"], message_id=m["message_id"], value=m["value"],
        key=m["msg_key"], headers=tuple((str(k), str(v)) for k, v in m["headers"]),
        created_at=_utc(m["created_at"]) or datetime.now(UTC), consent_id=m["consent_id"],
        consent_version=m["consent_version"], subject_pseudonym=m["subject_pseudonym"],
        published_at=_utc(m["published_at"]),
    )
