"""Relay: publishes committed outbox rows to the bus, re-checking consent at delivery (rule 9).

Delivery has two ways in, with one path from the lock on: the worker that committed a batch hands its rows to
:meth:`Relay.deliver` straight after the commit (no wait for a poll, no scan of the outbox), and the relay's
own loop (:meth:`Relay.run`) sweeps up whatever is still queued: rows of a worker that crashed or lost the bus
between its commit and its delivery, rows queued by a process without workers, consent events and notices.

Either way the rows are locked inside a transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so the worker,
the sweepers of other processes and a withdrawal never hand out the same row twice: a row someone else holds
is skipped and theirs to finish), their consents are read again (from the process's consent index, brought up
to date after the lock, or from the store), and they are published with the idempotent producer and taken out
of the outbox's queue (marked delivered) in the same transaction. A crash between publish and commit
re-publishes the rows: delivery is at least once, and every message carries a ``message-id`` header for the
recipient to deduplicate. A row whose consent was withdrawn after it was queued is dropped instead, and the
drop is audited; a withdrawal locks the queued rows of its consent before it commits (privacy.md W-01), so
nothing is delivered after a withdrawal has committed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, cast

from gateway.bus.errors import BusError
from gateway.bus.port import Bus, OutgoingRecord
from gateway.errors import DependencyUnavailable
from gateway.logging import get_logger
from gateway.observability.observer import PipelineObserver
from gateway.pipeline import ledger
from gateway.policy.consent import ConsentRecord
from gateway.policy.decision import applicable
from gateway.policy.registry import PolicyRegistry
from gateway.store import OutboxRow, PipelineStore, PipelineTransaction

if TYPE_CHECKING:
    from gateway.consents.index import ConsentIndex

__all__ = ["Relay"]

log = get_logger(__name__)


class Relay:
    """Moves outbox rows onto the bus."""

    def __init__(self, store: PipelineStore, bus: Bus, instance_id: str, batch_size: int = 200,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 registry: PolicyRegistry | None = None, consent_index: ConsentIndex | None = None) -> None:
        self.store = store
        self.consent_index = consent_index
        """The process's consent index (its workers decide from it), read for the re-check at delivery once it
        is loaded; without it the re-check reads the store."""
        self.registry = registry
        """For rule 4 at delivery (notice retired since, grantor evidence); without it only status, period and
        withdrawal are re-checked."""
        self.bus = bus
        self.instance_id = instance_id
        self.batch_size = batch_size
        self.clock = clock
        self._wake: asyncio.Event | None = None
        self.observer = PipelineObserver()

    def wake(self) -> None:
        """Something was queued (or the gateway is stopping): stop waiting and look at the outbox now."""
        if self._wake is not None:
            self._wake.set()

    async def deliver(self, queued: Sequence[OutboxRow]) -> int:
        """Deliver rows their worker has just committed (as ``enqueue`` returned them, with the ids the claim
        finds them by): lock those still undelivered, re-check their consents, publish, mark delivered. Returns
        how many it handled (published or dropped); a row another relay or a withdrawal holds is left to it.
        Raises :class:`DependencyUnavailable` when the store or the bus fails: nothing is marked, and the sweep
        delivers the rows later."""
        async with self.store.transaction() as tx:
            # locked and taken out of the queue in one statement; a failed publish queues them again
            rows = await tx.claim_undelivered(queued, dequeue=True)
            delivered = await self._publish(tx, rows, marked=True)
        self.observer.delivered(delivered, self.clock())
        return len(rows)

    async def relay_once(self, min_age_seconds: float | None = None) -> int:
        """Publish one batch; returns how many rows it handled (published or dropped). With
        ``min_age_seconds``, only rows queued at least that long ago: younger ones are still their worker's to
        deliver (:meth:`deliver`), and a sweep that took them would only race it."""
        queued_before = None if min_age_seconds is None else self.clock() - timedelta(seconds=min_age_seconds)
        async with self.store.transaction() as tx:
            rows = await tx.pending_outbox(self.batch_size, queued_before)
            delivered = await self._publish(tx, rows)
        self.observer.delivered(delivered, self.clock())
        return len(rows)

    async def _publish(self, tx: PipelineTransaction, rows: Sequence[OutboxRow], *,
                       marked: bool = False) -> list[OutboxRow]:
        """Publish the locked ``rows`` whose consent still allows it and mark them delivered (unless
        ``marked``: their claim did); drop the others. Returns the rows published (counted once the
        transaction has committed)."""
        if not rows:
            return []
        deliver: list[OutboxRow] = []
        latest = await self._latest_versions(tx, rows)
        for row in rows:
            reason = self._undeliverable(row, latest)
            if reason is None:
                deliver.append(row)
            else:
                await self._drop(tx, row, reason)
        try:
            await self.bus.publish([_record(r) for r in deliver])
        except BusError as exc:  # rolls the transaction back: the rows stay pending
            raise DependencyUnavailable(f"the bus is unavailable ({type(exc).__name__}); retry later") from exc
        if not marked:
            await tx.mark_delivered([r.id for r in deliver if r.id is not None])
        if deliver:
            log.info("relayed", count=len(deliver))
        return deliver

    async def run(self, stop: asyncio.Event, poll_seconds: float = 0.05,
                  sweep_min_age_seconds: float = 0.5) -> None:
        """Relay until ``stop`` is set, backing off while the store or bus is unavailable. Between batches it
        sleeps until :meth:`wake` or ``poll_seconds``. Woken, it relays whatever is queued (consent events,
        rows a delivery could not send); on its own, every ``poll_seconds``, it sweeps up rows queued at least
        ``sweep_min_age_seconds`` ago that no worker delivered (a crash between commit and delivery, another
        process's failed delivery), leaving younger rows to the workers that are delivering them."""
        self._wake = wake = asyncio.Event()
        backoff = poll_seconds
        woken = True  # the first look, at start, is a full one: what an earlier run left is delivered at once
        while not stop.is_set():
            wake.clear()  # set again by any commit from here on: its rows are looked at by the next batch
            try:
                handled = await self.relay_once(None if woken else sweep_min_age_seconds)
                backoff = poll_seconds
            except DependencyUnavailable as exc:
                log.warning("relay-retrying", error_type=type(exc.__cause__ or exc).__name__, retry_in_s=backoff)
                handled = 0
                backoff = min(backoff * 2, 5.0)
            if handled == 0 and not stop.is_set():
                # stop() wakes the relay too (Gateway.stop), so the wake event alone is waited on.
                woken = False
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=backoff)
                    woken = True

    async def drain(self) -> int:
        """Relay until the outbox is empty; returns the number of rows handled."""
        total = 0
        while handled := await self.relay_once():
            total += handled
        return total

    async def _latest_versions(self, tx: PipelineTransaction, rows: Sequence[OutboxRow]) -> Mapping[str, ConsentRecord]:
        """The latest version of the consent lineage of every locked row that has one, read after the rows were
        locked: from the process's consent index brought up to date in ``tx`` (one single-row read when no
        consent changed), or from the store when there is no loaded index or a row names no subject."""
        under = [r for r in rows if r.consent_id is not None]
        if not under:
            return {}
        subjects = {r.subject_pseudonym for r in under}
        if self.consent_index is not None and None not in subjects:
            latest = await self.consent_index.latest_of(tx, cast(set[str], subjects))
            if latest is not None:
                return latest
        return await tx.latest_consent_versions({r.consent_id for r in under if r.consent_id is not None})

    def _undeliverable(self, row: OutboxRow, latest_versions: Mapping[str, ConsentRecord]) -> str | None:
        """Why a queued row may no longer go (rule 9), from the latest version of its consent's lineage (read
        for the whole batch in one statement). The versions of a lineage share their provisions (withdrawal
        and re-consent change status only), so what can change after the decision is the status, the period,
        the withdrawal and the notice's standing."""
        if row.consent_id is None:
            return None
        latest = latest_versions.get(row.consent_id)
        if latest is None or latest.withdrawn:
            return "consent-withdrawn"
        if latest.status != "active" or latest.decision != "permit":
            return "no-applicable-consent"
        if not latest.in_period(self.clock()):
            return "consent-expired"
        if self.registry is not None and not applicable(latest, self.registry, self.clock()):
            return "no-applicable-consent"
        return None

    async def _drop(self, tx: PipelineTransaction, row: OutboxRow, reason: str) -> None:
        assert row.id is not None
        await tx.mark_dropped(row.id, reason)
        self.observer.dropped(row, reason)
        subject = await tx.subject_by_pseudonym(row.subject_pseudonym) if row.subject_pseudonym else None
        await tx.append_audit([ledger.drop_record(row, reason, subject, self.instance_id, self.clock())])
        log.info("dropped-at-delivery", message_id=row.message_id, recipient=row.recipient, reason=reason)


def _record(row: OutboxRow) -> OutgoingRecord:
    return OutgoingRecord(
        topic=row.topic, value=row.value, key=row.key,
        headers=tuple([(k, v.encode()) for k, v in row.headers]),  # a list first: quicker than a generator
    )
