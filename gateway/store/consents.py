"""Consents: every version of every consent lineage, numbered in commit order.

Table ``consents`` (migration 0001; the stored R5-shaped document, consent type and record hash from 0004; the
commit-order number ``change_seq`` from 0016) and the single row of ``consent_change_head`` (0016) that hands
those numbers out. Versions are never rewritten: a change is a new version. Decisions read them here (or from
the process's consent index, :mod:`gateway.consents.index`, which loads and follows them through these reads).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import exists, func, insert, select, tuple_, update

from gateway.policy.consent import ConsentRecord
from gateway.store.base import Repository, _utc
from gateway.store.tables import consent_change_head, consents

__all__ = ["ConsentsRepository"]

_CHANGE_HEAD = select(consent_change_head.c.seq).where(consent_change_head.c.id == 1)
"""Read by every batch a worker decides and every delivery: built once (on PostgreSQL, run as the text below on the
driver, :meth:`~gateway.store.base.Repository._fetch`)."""
_CHANGE_HEAD_POSTGRESQL = "SELECT seq FROM consent_change_head WHERE id = 1"

_PARSED_CONSENTS_MAX = 200_000
"""Consent versions kept parsed per process (a few hundred bytes each)."""


class ConsentsRepository(Repository):
    """Consent versions and the commit-order head."""

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
        if self._store.dialect == "postgresql":
            ((seq,),) = await self._fetch(_CHANGE_HEAD_POSTGRESQL)
            return int(seq)
        return int((await self.conn.execute(_CHANGE_HEAD)).scalar_one())

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

    async def consent_count(self) -> int:
        """Consent records stored, every version counted (the size of the consent index, for metrics)."""
        return int((await self.conn.execute(select(func.count()).select_from(consents))).scalar_one())


def _consent(m: Any) -> ConsentRecord:
    if m["document"] is not None:
        return ConsentRecord.from_document(m["document"])
    return ConsentRecord(
        consent_id=m["consent_id"], version=m["version"], subject_pseudonym=m["subject_pseudonym"],
        status=m["status"], decision=m["decision"], purposes=frozenset(m["purposes"]),
        recipients=frozenset(m["recipients"]), period_start=_utc(m["period_start"]),
        period_end=_utc(m["period_end"]), recorded_at=_utc(m["recorded_at"]), withdrawn=bool(m["withdrawn"]),
    )
