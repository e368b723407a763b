"""Each process's index of the consents in force, so that a decision reads no database.

The index holds, per subject pseudonym, the latest version of each of their consent lineages (the only ones a
decision looks at, privacy.md rule 4), loaded from the store when the process starts
(:meth:`ConsentIndex.load`) and kept exactly current afterwards: every consent version the store writes is
numbered in commit order (migration 0016), and each batch of messages, inside the transaction that decides it,
reads the latest number once (:meth:`ConsentIndex.current`). When it is past the number the index holds, the
subjects whose consents changed since are reloaded from the store before anything is decided; so a batch never
decides on consents older than what its own transaction could read, in whichever process the consent was
recorded, withdrawn or re-consented. Withdrawals keep their second safeguard: the relay re-checks the consent
of every queued message before it delivers it (rule 9, W-01), from the same index brought up to date after it
has locked the rows (:meth:`ConsentIndex.latest_of`), or from the store where the index is not loaded.

Until the index has loaded (or if loading failed and is being retried) :meth:`ConsentIndex.current` reads a
batch's consents from the store, as every decision did before the index existed: slower, never wrong.

Memory: one consent is kept as a small tuple (lineage id, version, period) around a shared *shape*, the consent
without those fields, interned, so that the thousands of consents given on the same form share one object; the
fields a decision never reads (capture, withdrawal details, controllers, legal basis, review date, recording
time) are dropped. A :class:`~gateway.policy.consent.ConsentRecord` is rebuilt only for the subjects of a batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import TYPE_CHECKING

from gateway.errors import DependencyUnavailable
from gateway.logging import get_logger
from gateway.policy.consent import ConsentRecord
from gateway.policy.decision import latest_per_lineage

if TYPE_CHECKING:
    from gateway.store.ports import PipelineStore, PipelineTransaction

__all__ = ["ConsentIndex"]

log = get_logger(__name__)

_Shape = tuple[object, ...]
"""A consent's field values in declaration order, without what is its own (see :meth:`ConsentIndex._entry`)."""
_Entry = tuple[str, int, int, int | None, int | None]
"""(lineage id, version, shape number, period start, period end) of one consent version, the period in
microseconds since the epoch: only atomic values, so the garbage collector stops tracking it (a million of them
would otherwise lengthen every full collection), and an int is smaller than a datetime."""
_BUILT_MAX = 8_192
"""Subjects whose rebuilt records :meth:`ConsentIndex.consents_of` keeps (a few hundred bytes each)."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_FIELDS = tuple(f.name for f in fields(ConsentRecord))
_ID, _VERSION, _SUBJECT = _FIELDS.index("consent_id"), _FIELDS.index("version"), _FIELDS.index("subject_pseudonym")
_START, _END = _FIELDS.index("period_start"), _FIELDS.index("period_end")
_VALUES = attrgetter(*_FIELDS)
_NOT_SHARED: tuple[tuple[int, object], ...] = tuple((_FIELDS.index(name), blank) for name, blank in (
    # what is the consent's own (kept beside the shape) and what a decision never reads (dropped)
    ("consent_id", ""), ("version", 0), ("subject_pseudonym", ""), ("period_start", None), ("period_end", None),
    ("recorded_at", None), ("withdrawal", None), ("capture", None), ("review_date", None),
    ("controllers", frozenset()), ("legal_basis", None),
))


class ConsentIndex:
    """The latest version of every consent lineage, by subject pseudonym (see the module docstring)."""

    def __init__(self) -> None:
        self._by_subject: dict[str, tuple[_Entry, ...]] = {}
        self._shape_numbers: dict[_Shape, int] = {}
        self._shapes: list[_Shape] = []
        self._seq: int | None = None
        """Number of the latest consent version applied; None until loaded."""
        self._built: dict[str, tuple[tuple[_Entry, ...], tuple[ConsentRecord, ...]]] = {}
        """Records rebuilt lately, by pseudonym, with the entries they were built from (see :meth:`consents_of`)."""
        self._catching_up = asyncio.Lock()

    @property
    def ready(self) -> bool:
        return self._seq is not None

    @property
    def seq(self) -> int | None:
        return self._seq

    def __len__(self) -> int:
        """Consent lineages held."""
        return sum(len(entries) for entries in self._by_subject.values())

    @property
    def subjects(self) -> int:
        return len(self._by_subject)

    @property
    def shapes(self) -> int:
        """Distinct consent shapes held (consents given on one form share one)."""
        return len(self._shapes)

    # --- loading and keeping current -------------------------------------------------------------------------

    async def load(self, store: PipelineStore) -> None:
        """Load every lineage's latest version. The head number is read before the consents, so that a version
        committed while loading is applied again by the next :meth:`current` (applying is idempotent)."""
        started = time.perf_counter()
        self._by_subject.clear()
        self._built.clear()
        self._seq = None
        held: dict[str, tuple[_Entry, ...]] = {}
        collecting = gc.isenabled()
        gc.disable()  # the cyclic collector re-scanned every parsed document kept so far: 3x slower loads
        try:
            async with store.transaction() as tx:
                head = await tx.consent_change_head()
                async for records in tx.latest_consents():
                    for record in records:  # tuples, not lists: tuples of atomic values leave the collector's view
                        held[record.subject_pseudonym] = (*held.get(record.subject_pseudonym, ()),
                                                          self._entry(record))
        finally:
            if collecting:
                gc.enable()
        self._by_subject = held
        self._seq = head
        log.info("consent-index-loaded", subjects=len(self._by_subject), lineages=len(self),
                 shapes=len(self._shapes), seconds=round(time.perf_counter() - started, 2))

    async def current(self, tx: PipelineTransaction, pseudonyms: Collection[str]
                      ) -> Mapping[str, Sequence[ConsentRecord]]:
        """The consents a decision needs for each subject in ``pseudonyms``, as of ``tx``: from the index once
        it is brought up to the store's latest consent version (one statement when nothing changed), or from
        the store while the index is not loaded."""
        if self._seq is None:
            return await tx.consents_for_many(pseudonyms)
        head = await tx.consent_change_head()
        if head != self._seq:
            await self._catch_up(tx, head)
        return {pseudonym: self.consents_of(pseudonym) for pseudonym in pseudonyms}

    async def latest_of(self, tx: PipelineTransaction, pseudonyms: Collection[str]
                        ) -> dict[str, ConsentRecord] | None:
        """The latest version of each consent lineage of the subjects in ``pseudonyms``, by consent id, as of
        ``tx`` (what :meth:`PipelineTransaction.latest_consent_versions` reads from the store for those
        lineages), or None while the index is not loaded. The relay's re-check at delivery (rule 9): it locks
        its rows first and asks after, so a withdrawal committed before the lock is seen here, through the
        head number, as it is by a decision; when nothing changed that costs one single-row read."""
        if self._seq is None:
            return None
        current = await self.current(tx, pseudonyms)
        return {record.consent_id: record for records in current.values() for record in records}

    async def refresh(self, store: PipelineStore) -> None:
        """Catch up in a transaction of its own (between batches, so that the next one finds nothing to do)."""
        if self._seq is None:
            return
        async with store.transaction() as tx:
            head = await tx.consent_change_head()
            if head != self._seq:
                await self._catch_up(tx, head)

    async def _catch_up(self, tx: PipelineTransaction, head: int) -> None:
        async with self._catching_up:  # two batches of this process never apply changes out of order
            held = self._seq
            if held is None or head <= held:
                return
            changed = await tx.subjects_with_consent_changes(held)
            fresh = await tx.consents_for_many(changed)
            for pseudonym in changed:
                self._replace(pseudonym, latest_per_lineage(fresh.get(pseudonym, ())))
            self._seq = head

    async def keep(self, store: PipelineStore, stop: asyncio.Event, refresh_seconds: float) -> None:
        """Load, then catch up every ``refresh_seconds`` until ``stop`` (a supervised task of each worker). While
        the store is unavailable it retries on the same rhythm; batches meanwhile read the store themselves (or
        fail closed with it)."""
        while not stop.is_set():
            try:
                if self._seq is None:
                    await self.load(store)
                else:
                    await self.refresh(store)
            except DependencyUnavailable as exc:
                log.warning("consent-index-retrying", error_type=type(exc.__cause__ or exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=refresh_seconds)

    # --- reading ---------------------------------------------------------------------------------------------

    def consents_of(self, pseudonym: str) -> tuple[ConsentRecord, ...]:
        """The latest version of each of a subject's consent lineages, as records a decision reads.

        The records of the last :data:`_BUILT_MAX` subjects asked about are kept with the entries they were built
        from, and handed out again while the subject's entries are the same objects (:meth:`_replace` puts new
        ones in place of changed ones): a batch's subjects are asked about by its decisions and again by the
        relay's re-check at delivery, and the same people come back in the next batches."""
        entries = self._by_subject.get(pseudonym, ())
        built = self._built.get(pseudonym)
        if built is not None and built[0] is entries:
            return built[1]
        found = []
        for consent_id, version, shape, start, end in entries:
            values = list(self._shapes[shape])  # positional construction: twice as fast as dataclasses.replace
            values[_ID], values[_VERSION], values[_SUBJECT] = consent_id, version, pseudonym
            values[_START], values[_END] = _moment(start), _moment(end)
            found.append(ConsentRecord(*values))  # type: ignore[arg-type]
        records = tuple(found)
        if len(self._built) >= _BUILT_MAX:
            del self._built[next(iter(self._built))]  # the oldest (dicts keep insertion order)
        self._built[pseudonym] = (entries, records)
        return records

    # --- compact form ----------------------------------------------------------------------------------------

    def _replace(self, pseudonym: str, records: Iterable[ConsentRecord]) -> None:
        self._built.pop(pseudonym, None)
        entries = tuple(self._entry(r) for r in records)
        if entries:
            self._by_subject[pseudonym] = entries
        else:
            self._by_subject.pop(pseudonym, None)

    def _entry(self, record: ConsentRecord) -> _Entry:
        values = list(_VALUES(record))
        for position, blank in _NOT_SHARED:
            values[position] = blank
        shape = tuple(values)
        number = self._shape_numbers.get(shape)
        if number is None:
            number = self._shape_numbers[shape] = len(self._shapes)
            self._shapes.append(shape)
        return (record.consent_id, record.version, number, _instant(record.period_start),
                _instant(record.period_end))


def _instant(value: datetime | None) -> int | None:
    return None if value is None else (value - _EPOCH) // _MICROSECOND


def _moment(value: int | None) -> datetime | None:
    return None if value is None else _EPOCH + value * _MICROSECOND
