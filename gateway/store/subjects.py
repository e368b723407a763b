"""People the gateway knows: subjects, the identifiers that lead to them, and the crosswalk tokens minted for them.

Tables ``subjects`` (migration 0001), ``subject_identifiers`` (0004) and ``crosswalk_tokens`` (0006). A subject is
found through the keyed hash of any of their identifiers (:meth:`~gateway.store.store.Store.lookup_hash`), never
through the identifier itself; a token stands for a subject, or for one identifier kept sealed, towards the one
partner it was minted for. Erasure crypto-shreds a subject here (:meth:`SubjectsRepository.erase_subject`).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.identity.crosswalk import MintedToken, seal, unseal
from gateway.store.base import Repository, StoreContext
from gateway.store.models import Subject
from gateway.store.tables import crosswalk_tokens, subject_identifiers, subjects

__all__ = ["SubjectsRepository"]

_SUBJECTS_BY_HASH = (select(subject_identifiers.c.lookup_hash, subjects.c.pseudonym, subjects.c.subject_key)
                     .join(subjects, subject_identifiers.c.pseudonym == subjects.c.pseudonym))
# A batch's subjects, looked up by the hashes of their identifiers, with every batch a worker decides: on
# PostgreSQL text with one array parameter, run on the driver (the same text for any batch size, prepared once:
# see Repository._fetch); on SQLite built once, with an expanding IN list.
_PREFETCH_POSTGRESQL = """
SELECT subject_identifiers.lookup_hash, subjects.pseudonym, subjects.subject_key
FROM unnest($1::text[]) AS wanted(lookup_hash)
JOIN subject_identifiers ON subject_identifiers.lookup_hash = wanted.lookup_hash
JOIN subjects ON subjects.pseudonym = subject_identifiers.pseudonym
"""
"""The batch's hashes are joined, not tested with ``= ANY``: a prepared statement's generic plan tests ``= ANY`` of a
parameter by walking the whole array for every row it reads (8 ms for a batch of 200 against 2,000 identifiers,
the most expensive statement of the intake), while a join looks each hash up once."""
_PREFETCH = _SUBJECTS_BY_HASH.where(subject_identifiers.c.lookup_hash.in_(bindparam("hashes", expanding=True)))


class _ConcurrentSighting(Exception):
    """Another transaction wrote one of the identifiers a batch was about to write (rolls back a savepoint)."""


class SubjectsRepository(Repository):
    """Subjects, their identifiers and their crosswalk tokens."""

    def __init__(self, conn: AsyncConnection, store: StoreContext) -> None:
        super().__init__(conn, store)
        self._known: dict[str, Subject | None] = {}
        """Subjects found by :meth:`prefetch_subjects`, by lookup hash (None: no one has that identifier yet)."""
        self._hashes: dict[tuple[str, str], str] = {}
        """Lookup hashes :meth:`prefetch_subjects` computed, by (system, value): a keyed hash each, which the
        :meth:`subject` and :meth:`link_identifier` calls that follow need again."""
        self._deferred: tuple[dict[str, Subject], dict[str, str]] | None = None
        """Between :meth:`defer_new_subjects` and :meth:`write_new_subjects`: subjects created (by lookup hash)
        and identifiers linked (lookup hash -> pseudonym), not yet written."""

    async def prefetch_subjects(self, identifiers: Iterable[tuple[str, str]]) -> None:
        """Look up the subjects of many (system, value) identifiers in one statement, so that the
        :meth:`subject` and :meth:`link_identifier` calls of a batch that follow need no round trip for them."""
        lookups = {self._lookup_hash(system, value) for system, value in identifiers} - self._known.keys()
        if not lookups:
            return
        rows: Iterable[Sequence[Any]]
        if self._store.dialect == "postgresql":
            rows = await self._fetch(_PREFETCH_POSTGRESQL, sorted(lookups))
        else:
            rows = await self.conn.execute(_PREFETCH, {"hashes": sorted(lookups)})
        self._known.update(dict.fromkeys(lookups))
        for lookup_hash, pseudonym, subject_key in rows:
            self._known[lookup_hash] = Subject(pseudonym, subject_key)

    def _lookup_hash(self, system: str, value: str) -> str:
        """The identifier's lookup hash (:meth:`StoreContext.lookup_hash`), computed once per transaction."""
        found = self._hashes.get((system, value))
        if found is None:
            found = self._hashes[(system, value)] = self._store.lookup_hash(system, value)
        return found

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
        lookup = self._lookup_hash(system, value)
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
        lookup = self._lookup_hash(system, value)
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
